"""Ingest bounded at the edge (issue 17): every refusal is a 4xx or exit 1 quoting the bound, early, nothing written.

Attacks: an XLSX declaring a DTD (entity expansion), an XLSX with broken XML (a traceback before), an
XLSX inflating to 150 MB of XML (minutes of a server thread before), a 3,000-column CSV (minutes of
profiling, then a failure), too many rows, an over-long cell, nested and binary Parquet columns (accepted,
then desensitization crashed), Unicode controls in headers, a declared 2 GB upload, a body longer than
declared or than the bound while it streams, and malformed multipart bodies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli.ingest import ingest as ingest_command
from app.settings import Settings
from core import Actor, NotFoundError
from desensitize.identifiers import uscc_check_char
from registry import FileInvalidError, FileRefusedError, FileTooLargeError, IngestLimits
from registry.source_files import read_source
from tests.conftest import bearer

CUSTODIAN = Actor("demo-custodian", "custodian")
PROVIDER = "双鸭山市市场监督管理局"
PROVIDER_CODE = "11230500MB1234567" + uscc_check_char("11230500MB1234567")
MIB = 1024 * 1024


@pytest.fixture
def database_url() -> None:
    """SQLite only: these checks run before the database is touched (test_ingest covers PostgreSQL)."""
    return None


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    return initialised[0]


@pytest.fixture
def client(instance: Instance) -> TestClient:
    return TestClient(create_app(instance=instance))


@pytest.fixture
def custodian(client: TestClient, initialised: tuple[Instance, dict[str, str]]) -> dict[str, str]:
    return bearer(client, initialised[1]["custodian"])


def set_limits(instance: Instance, monkeypatch: pytest.MonkeyPatch, **bounds: int) -> IngestLimits:
    ingestor = instance.registry.ingestor
    limits = IngestLimits(**bounds)
    monkeypatch.setattr(ingestor, "config", replace(ingestor.config, ingest_limits=limits))
    return limits


def untouched(instance: Instance, before: int) -> None:
    """Nothing written: no ledger entry, no vault file, no scratch left, no catalog entry."""
    assert instance.ledger.size() == before
    vault = instance.home / "vault"
    assert not vault.exists() or [p for p in vault.rglob("*") if p.is_file()] == []
    scratch = instance.home / ".scratch"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    with pytest.raises(NotFoundError):
        instance.registry.catalog.get("attacked")


def post(client: TestClient, headers: dict[str, str], filename: str, content: bytes) -> Any:
    return client.post(
        "/datasets/attacked/ingest",
        data={"provider": PROVIDER, "provider_code": PROVIDER_CODE},
        files={"file": (filename, content, "application/octet-stream")},
        headers=headers,
    )


# --- building hostile files ----------------------------------------------------------------


def xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def rewrite_xlsx(member: str, change: Callable[[bytes], bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(xlsx([["编号", "名称"], ["001", "甲"], ["002", "乙"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, change(data) if info.filename == member else data)
    return out.getvalue()


SHEET = "xl/worksheets/sheet1.xml"
DTD_XLSX = rewrite_xlsx(SHEET, lambda d: b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>' + d)
LAUGHS = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
BROKEN_XLSX = rewrite_xlsx(SHEET, lambda d: d[:-40])
BROKEN_WORKBOOK = rewrite_xlsx("xl/workbook.xml", lambda d: d[:-40])


def inflating_xlsx(inflated: int) -> bytes:
    """A valid-looking XLSX whose sheet XML inflates to ``inflated`` bytes (a few hundred KB on the wire)."""
    source = zipfile.ZipFile(io.BytesIO(xlsx([["编号"], ["001"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename != SHEET:
                target.writestr(info.filename, source.read(info.filename))
                continue
            row = b'<row><c t="inlineStr"><is><t>0000000000</t></is></c></row>'
            with target.open(SHEET, "w", force_zip64=True) as sheet:
                sheet.write(b'<?xml version="1.0"?><worksheet><sheetData>')
                written = 0
                block = row * 16384
                while written < inflated:
                    sheet.write(block)
                    written += len(block)
                sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


def parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


NESTED: dict[str, tuple[pa.Array, str]] = {
    "a list": (pa.array([[1, 2], [3]]), "a nested list"),
    "a struct": (pa.array([{"x": 1}, {"x": 2}]), "a nested struct"),
    "a map": (pa.array([[("k", 1)], [("k", 2)]], type=pa.map_(pa.string(), pa.int64())), "a nested map"),
    "binary": (pa.array([b"\x00\x01", b"\x02"], type=pa.binary()), "a binary"),
    "large binary": (pa.array([b"\x00", b"\x02"], type=pa.large_binary()), "a binary"),
    "fixed binary": (pa.array([b"ab", b"cd"], type=pa.binary(2)), "a binary"),
    "dictionary of binary": (pa.array([b"a", b"a"], type=pa.binary()).dictionary_encode(), "a binary"),
}


# --- XLSX: DTD and broken XML --------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "content", "message"),
    [
        ("a DTD", DTD_XLSX, "declares a DTD"),
        ("billion laughs", rewrite_xlsx(SHEET, lambda d: LAUGHS + d), "declares a DTD"),
        ("a DTD in the workbook part", rewrite_xlsx("xl/workbook.xml", lambda d: LAUGHS + d), "DTD"),
        ("UTF-16 XML", rewrite_xlsx(SHEET, lambda d: d.decode().encode("utf-16")), "is not UTF-8 XML"),
        ("broken sheet XML", BROKEN_XLSX, "its XML is damaged (ParseError)"),
        ("broken workbook XML", BROKEN_WORKBOOK, "not a readable XLSX workbook (ParseError)"),
    ],
)
def test_xlsx_with_a_dtd_or_broken_xml_is_refused_as_invalid(case: str, content: bytes, message: str) -> None:
    with pytest.raises(FileInvalidError) as refused:
        read_source(content, label="attacked.xlsx")
    assert message in str(refused.value), case
    assert "attacked.xlsx" in str(refused.value)


def test_xlsx_dtd_and_broken_xml_exit_1_on_the_cli_and_422_on_the_api(
    instance: Instance, client: TestClient, custodian: dict[str, str], tmp_path: Path
) -> None:
    cli = typer.Typer()
    cli.command("ingest")(ingest_command)
    cli.command("noop")(lambda: None)
    before = instance.ledger.size()
    for filename, content in (("dtd.xlsx", DTD_XLSX), ("broken.xlsx", BROKEN_XLSX)):
        path = tmp_path / filename
        path.write_bytes(content)
        args = ["ingest", str(path), "--name", "attacked", "--provider", PROVIDER, "--provider-code", PROVIDER_CODE]
        result = CliRunner().invoke(cli, [*args, "--home", str(instance.home), "--json"])
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.stderr and filename in result.stderr
        assert result.stdout == ""
        response = post(client, custodian, filename, content)
        assert response.status_code == 422, response.text
        assert filename in response.json()["detail"]
    untouched(instance, before)


# --- XLSX inflation ------------------------------------------------------------------------


def test_an_xlsx_inflating_to_150_mb_is_refused_from_its_zip_directory_at_once(
    instance: Instance, client: TestClient, custodian: dict[str, str]
) -> None:
    bomb = inflating_xlsx(150 * MIB)
    assert len(bomb) < 2 * MIB  # small on the wire
    started = time.perf_counter()
    with pytest.raises(FileTooLargeError) as refused:
        read_source(bomb, label="bomb.xlsx")
    elapsed = time.perf_counter() - started
    bound = IngestLimits().max_xlsx_inflated_bytes
    assert f"at most {bound:,} bytes" in str(refused.value) and "zip directory" in str(refused.value)
    assert elapsed < 1.0, f"refused in {elapsed:.2f} s"  # before: minutes of a server thread
    before = instance.ledger.size()
    response = post(client, custodian, "bomb.xlsx", bomb)
    assert response.status_code == 413 and f"{bound:,}" in response.json()["detail"]
    untouched(instance, before)


def test_the_inflation_bound_is_configurable_and_counted_while_inflating() -> None:
    small = inflating_xlsx(2 * MIB)
    with pytest.raises(FileTooLargeError, match="at most 1,048,576 bytes"):
        read_source(small, label="s.xlsx", limits=IngestLimits(max_xlsx_inflated_bytes=MIB))
    book = xlsx([["a"], ["1"]])
    parts = len(zipfile.ZipFile(io.BytesIO(book)).infolist())
    with pytest.raises(FileTooLargeError, match=f"has {parts} parts in its zip"):
        read_source(book, label="p.xlsx", limits=IngestLimits(max_xlsx_parts=parts - 1))
    assert read_source(book, label="p.xlsx", limits=IngestLimits(max_xlsx_parts=parts)).table.num_rows == 1


# --- columns, rows, cells ------------------------------------------------------------------


def test_a_3000_column_csv_is_refused_before_profiling(
    instance: Instance, client: TestClient, custodian: dict[str, str]
) -> None:
    header = ",".join(f"列{i}" for i in range(3000))
    rows = "\n".join(",".join(str(r) for _ in range(3000)) for r in range(200))
    content = f"{header}\n{rows}\n".encode()
    started = time.perf_counter()
    with pytest.raises(FileInvalidError) as refused:
        read_source(content, label="wide.csv")
    elapsed = time.perf_counter() - started
    assert "has 3,000 columns; at most 1,000" in str(refused.value)
    assert elapsed < 2.0, f"refused in {elapsed:.2f} s"
    before = instance.ledger.size()
    response = post(client, custodian, "wide.csv", content)
    assert response.status_code == 422 and "at most 1,000" in response.json()["detail"]
    untouched(instance, before)
    wide_xlsx = xlsx([[f"c{i}" for i in range(1500)], list(range(1500))])
    with pytest.raises(FileInvalidError, match="has 1,500 columns"):
        read_source(wide_xlsx, label="wide.xlsx")
    wide_parquet = parquet(pa.table({f"c{i}": [1] for i in range(1200)}))
    with pytest.raises(FileInvalidError, match="has 1,200 columns"):
        read_source(wide_parquet, label="wide.parquet")


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("rows.csv", b"a,b\n" + b"1,2\n" * 6),
        ("rows.xlsx", xlsx([["a", "b"], *([[1, 2]] * 6)])),
        ("rows.parquet", parquet(pa.table({"a": list(range(6))}))),
    ],
)
def test_rows_over_the_bound_are_refused(filename: str, content: bytes) -> None:
    limits = IngestLimits(max_rows=5)
    with pytest.raises(FileTooLargeError) as refused:
        read_source(content, label=filename, limits=limits)
    assert "at most 5 are ingested in one file" in str(refused.value)
    assert read_source(content, label=filename, limits=IngestLimits(max_rows=6)).table.num_rows == 6


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("long.csv", ("编号,备注\n1,短\n2," + "长" * 11 + "\n").encode()),
        ("long.xlsx", xlsx([["编号", "备注"], [1, "短"], [2, "长" * 11]])),
        ("long.parquet", parquet(pa.table({"编号": [1, 2], "备注": ["短", "长" * 11]}))),
    ],
)
def test_a_cell_over_the_bound_is_refused_naming_column_and_record(filename: str, content: bytes) -> None:
    with pytest.raises(FileInvalidError) as refused:
        read_source(content, label=filename, limits=IngestLimits(max_cell_chars=10))
    assert "record 2 of column 2 '备注' holds 11 characters; a cell holds at most 10" in str(refused.value)


def test_the_api_quotes_the_configured_bounds(
    instance: Instance, client: TestClient, custodian: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limits(instance, monkeypatch, max_rows=3, max_cell_chars=5)
    before = instance.ledger.size()
    too_many = post(client, custodian, "rows.csv", b"a\n1\n2\n3\n4\n")
    assert too_many.status_code == 413 and "at most 3 are ingested" in too_many.json()["detail"]
    too_long = post(client, custodian, "cell.csv", b"a\n123456\n")
    assert too_long.status_code == 422 and "at most 5" in too_long.json()["detail"]
    untouched(instance, before)


# --- nested and binary columns -------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(NESTED))
def test_nested_or_binary_parquet_columns_are_refused_naming_the_column(case: str) -> None:
    values, kind = NESTED[case]
    content = parquet(pa.table({"编号": ["1", "2"], "附件": values}))
    with pytest.raises(FileInvalidError) as refused:
        read_source(content, label="nested.parquet")
    assert f"column 2 '附件' is {kind} column" in str(refused.value)


def test_nested_columns_get_422_at_ingest_not_a_crash_at_desensitization(
    instance: Instance, client: TestClient, custodian: dict[str, str]
) -> None:
    before = instance.ledger.size()
    content = parquet(pa.table({"编号": ["1", "2"], "地址": pa.array([{"省": "黑龙江"}, {"省": "吉林"}])}))
    response = post(client, custodian, "nested.parquet", content)
    assert response.status_code == 422 and "'地址' is a nested struct column" in response.json()["detail"]
    untouched(instance, before)
    flat = parquet(pa.table({"编号": ["1", "2"], "金额": pa.array([1.5, 2.0]), "日期": pa.array([1, 2], pa.date32())}))
    assert post(client, custodian, "flat.parquet", flat).status_code == 200


# --- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "code", "kind"),
    [
        ("姓\u202e名", "U+202E", "invisible format"),  # right-to-left override
        ("姓\u200b名", "U+200B", "invisible format"),  # zero-width space
        ("姓\u0085名", "U+0085", "control"),  # next line (C1)
        ("姓\u2028名", "U+2028", "line separator"),
        ("姓\ue000名", "U+E000", "private-use"),
    ],
)
def test_unicode_controls_in_headers_are_refused(header: str, code: str, kind: str) -> None:
    content = f"编号,{header}\n1,2\n".encode()
    with pytest.raises(FileInvalidError) as refused:
        read_source(content, label="h.csv")
    assert f"header of column 2 contains the {kind} character {code} at character 2" in str(refused.value)
    named = parquet(pa.table({"编号": [1], header: [2]}))
    with pytest.raises(FileInvalidError, match=re.escape(code)):
        read_source(named, label="h.parquet")


def test_ordinary_headers_and_the_refused_family() -> None:
    parsed = read_source("编号,名称 (全称),amount_2024\n1,甲,3\n".encode(), label="ok.csv")
    assert parsed.table.column_names == ["编号", "名称 (全称)", "amount_2024"]
    assert issubclass(FileInvalidError, FileRefusedError) and issubclass(FileTooLargeError, FileRefusedError)
    with pytest.raises(ValueError, match="max_rows must be a positive integer"):
        IngestLimits(max_rows=0)


# --- the upload's size: declared and streamed ----------------------------------------------


class Asgi:
    """Drive the ASGI app directly, counting how much of the body it asked for."""

    def __init__(self, app: Any, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = headers
        self.received = 0

    def post(self, chunks: list[bytes], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        pending: Iterator[bytes] = iter(chunks)
        messages: list[dict[str, Any]] = []
        all_headers = {**self.headers, **headers}

        async def receive() -> dict[str, Any]:
            chunk = next(pending, None)
            if chunk is None:
                return {"type": "http.disconnect"}
            self.received += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/datasets/attacked/ingest",
            "raw_path": b"/datasets/attacked/ingest",
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in all_headers.items()],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        # In a thread of its own: a session-wide event loop (Playwright's, in the browser tests) may be
        # running in this one, and asyncio.run refuses to nest.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, self.app(scope, receive, send)).result()
        start = next(m for m in messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        return start["status"], json.loads(body)


BOUNDARY = "keyongboundary"


def multipart_head(filename: str = "big.csv") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="provider"\r\n\r\n{PROVIDER}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="provider_code"\r\n\r\n{PROVIDER_CODE}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()


def test_a_declared_2_gb_upload_is_refused_before_the_body_is_read(
    instance: Instance, client: TestClient, custodian: dict[str, str]
) -> None:
    asgi = Asgi(client.app, custodian)
    before = instance.ledger.size()
    chunks = [multipart_head(), b"a\n" + b"1\n" * 1000]
    status, body = asgi.post(
        chunks, {"content-type": f"multipart/form-data; boundary={BOUNDARY}", "content-length": str(2 * 1024**3)}
    )
    assert status == 413 and "declares 2,147,483,648 bytes" in body["detail"]
    assert f"{IngestLimits().max_upload_bytes:,} bytes" in body["detail"]
    assert asgi.received == 0  # not a byte of the body was read
    untouched(instance, before)


def test_a_body_longer_than_declared_or_than_the_bound_is_refused_while_streaming(
    instance: Instance, client: TestClient, custodian: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = set_limits(instance, monkeypatch, max_upload_bytes=100_000)
    asgi = Asgi(client.app, custodian)
    before = instance.ledger.size()
    multipart = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    chunks = [multipart_head(), *([b"1234567,89\n" * 1000] * 100)]  # 1.1 MB of file, no Content-Length

    status, body = asgi.post(chunks, multipart)
    assert status == 413 and f"{limits.max_upload_bytes:,} bytes" in body["detail"]
    assert asgi.received < 200_000  # stopped at the bound, not after the whole body

    asgi.received = 0
    status, body = asgi.post(chunks[:3], {**multipart, "content-length": "5000"})  # lies about its length
    assert status == 400 and "longer than its declared Content-Length of 5,000" in body["detail"]
    assert asgi.received < 30_000
    untouched(instance, before)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"a,b\n1,2\n", "text/csv", 415, "multipart/form-data"),
        (b"--x\r\ngarbage", "multipart/form-data; boundary=x", 422, "no `file` part"),
        (
            b'--x\r\nContent-Disposition: form-data; name="provider"\r\n\r\np\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            422,
            "no `file` part",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="evil"\r\n\r\np\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            422,
            "unknown form field 'evil'",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\na\n1\n\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            422,
            "`provider`",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="provider"\r\n\r\n\xff\xfe\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            422,
            "not valid UTF-8",
        ),
    ],
)
def test_malformed_multipart_bodies_get_4xx(
    instance: Instance,
    client: TestClient,
    custodian: dict[str, str],
    body: bytes,
    content_type: str,
    status: int,
    message: str,
) -> None:
    before = instance.ledger.size()
    response = client.post(
        "/datasets/attacked/ingest", content=body, headers={**custodian, "content-type": content_type}
    )
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    untouched(instance, before)


def test_roles_are_checked_before_the_body_is_read(
    client: TestClient, initialised: tuple[Instance, dict[str, str]]
) -> None:
    agency = Asgi(client.app, bearer(client, initialised[1]["agency"]))
    status, _ = agency.post(
        [multipart_head(), b"a\n1\n"], {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    )
    assert status == 403 and agency.received == 0
    anonymous = Asgi(client.app, {})
    multipart = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    status, _ = anonymous.post([b"x"], {**multipart, "content-length": str(2 * 1024**3)})
    assert status == 401 and anonymous.received == 0
    # Without a content type the body counts as JSON, and the edge refuses its declared size first.
    bare = Asgi(client.app, {})
    status, _ = bare.post([b"x"], {"content-length": str(2 * 1024**3)})
    assert status == 413 and bare.received == 0


def test_the_bounds_are_settings_of_the_instance(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "configured", ingest_max_columns=2, ingest_max_upload_bytes=1000)
    instance, result = Instance.init(settings)
    try:
        assert instance.registry.ingestor.limits.max_columns == 2
        with pytest.raises(FileInvalidError, match="has 3 columns; at most 2"):
            instance.registry.ingestor.ingest(
                b"a,b,c\n1,2,3\n", name="wide", provider=PROVIDER, provider_code=PROVIDER_CODE, by=CUSTODIAN,
                source_name="w.csv",
            )  # fmt: skip
        client = TestClient(create_app(instance=instance))
        response = post(client, bearer(client, result.tokens["custodian"]), "big.csv", b"a\n" + b"1\n" * 1000)
        assert response.status_code == 413 and "bound of 1,000 bytes" in response.json()["detail"]
    finally:
        instance.close()


def test_a_client_that_disconnects_mid_upload_gets_400_and_leaves_nothing(
    instance: Instance, client: TestClient, custodian: dict[str, str]
) -> None:
    asgi = Asgi(client.app, custodian)
    before = instance.ledger.size()
    multipart = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    status, body = asgi.post([multipart_head(), b"a\n1\n"], multipart)  # then http.disconnect
    assert status == 400 and "disconnected" in body["detail"]
    untouched(instance, before)
