"""``keyong dataset ingest``: raw files become a catalog entry, profiler suggestions, a vault copy and a
raw version — all or nothing — on SQLite and PostgreSQL.

Rules exercised: the 资源目录 entry of a new dataset (双鸭山 第十二条), classification suggestions
(第十一条 分类分级), the raw copy encrypted at rest (黑龙江 第三十八条) and never out of the domain
(双鸭山 第三十五条), every change in the ledger in its own transaction (双鸭山 第二十条).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli.ingest import ingest as ingest_command
from core import Actor, NotFoundError, PermissionDeniedError, RegistryError
from desensitize.identifiers import uscc_check_char
from registry import IngestLimits, Registry, RegistryConfig
from registry.vault import Vault
from samples import synthetic
from tests.conftest import bearer

CUSTODIAN = Actor("demo-custodian", "custodian")
PROVIDER = "双鸭山市市场监督管理局"
PROVIDER_CODE = "11230500MB1234567" + uscc_check_char("11230500MB1234567")
RESULT_KEYS = {"dataset", "version", "rows", "columns", "encoding", "sha256", "vault_path"}


@dataclass
class Env:
    instance: Instance
    registry: Registry
    tokens: dict[str, str]
    tmp: Path

    @property
    def vault(self) -> Vault:
        return Vault(self.instance.home, self.instance.keys.vault_key)

    def seq(self) -> int:
        return self.instance.ledger.size()

    def entries_after(self, seq: int) -> list[tuple[str, str]]:
        return [(e.action, e.subject) for e in self.instance.ledger.entries(after=seq)]

    def vault_files(self) -> list[Path]:
        root = self.instance.home / "vault"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def ingest(self, path: Path, name: str = "market_entities", **kwargs: object) -> object:
        options: dict[str, object] = {"provider": PROVIDER, "provider_code": PROVIDER_CODE, "by": CUSTODIAN}
        options.update(kwargs)
        return self.registry.ingestor.ingest(path, name=name, **options)  # type: ignore[arg-type]


@pytest.fixture
def env(initialised: tuple[Instance, dict[str, str]], clock: object, tmp_path: Path) -> Env:
    instance, tokens = initialised
    config = RegistryConfig(home=instance.home, clock=clock, vault_key=instance.keys.vault_key)  # type: ignore[arg-type]
    return Env(instance, Registry(instance.engine, instance.ledger, config), tokens, tmp_path)


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return synthetic.generate_all(400, seed=3)


def as_text(df: pd.DataFrame) -> list[dict[str, str]]:
    """The table as the CSV writer renders it, every cell a string."""
    buffer = io.StringIO()
    df.to_csv(buffer, index=False, date_format="%Y-%m-%d")
    buffer.seek(0)
    return pd.read_csv(buffer, dtype=str, keep_default_na=False).to_dict("records")


def test_a_gb18030_csv_is_published_profiled_vaulted_and_versioned(env: Env, tables: dict[str, pd.DataFrame]) -> None:
    """A new dataset: catalog entry with profiled items, suggestions, encrypted raw copy, raw version v1."""
    path = env.tmp / "market_entities.csv"
    synthetic.write_csv(tables["market_entities"], path, encoding="gb18030")
    before = env.seq()
    result = env.ingest(path)

    data = result.as_json()  # type: ignore[attr-defined]
    assert set(data) == RESULT_KEYS
    assert data["dataset"] == "market_entities" and data["version"] == 1
    assert data["encoding"] == "gb18030"
    assert data["rows"] == len(tables["market_entities"])
    assert data["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # the source file's bytes
    columns = {c["name"]: c for c in data["columns"]}
    assert list(columns) == list(tables["market_entities"].columns)
    assert {c["type"] for c in columns.values()} == {"string"}
    assert (columns["统一社会信用代码"]["pii_type"], columns["统一社会信用代码"]["level"]) == ("uscc", "L2")
    assert (columns["法定代表人"]["pii_type"], columns["法定代表人"]["level"]) == ("person_name", "L3")
    assert all(set(c) == {"name", "type", "pii_type", "level", "confidence"} for c in data["columns"])

    # The vault holds the canonical Parquet, encrypted; it decrypts to the file's cells, as text.
    raw = (env.instance.home / data["vault_path"]).read_bytes()
    assert (
        "统一社会信用代码".encode() not in raw and tables["market_entities"]["统一社会信用代码"][0].encode() not in raw
    )
    table = env.vault.read_table(data["vault_path"])
    assert table.to_pandas().fillna("").to_dict("records") == as_text(tables["market_entities"])

    entry = env.registry.catalog.get("market_entities")
    assert (entry.provider_name, entry.provider_code, entry.data_format) == (PROVIDER, PROVIDER_CODE, "CSV")
    assert entry.level.value == "L3"  # the highest suggested level (法定代表人, 住所)
    items = {i.name: i for i in entry.items}
    assert items["统一社会信用代码"].pii_type == "uscc" and items["统一社会信用代码"].suggested_level.value == "L2"
    assert items["法定代表人"].confidence is not None and items["法定代表人"].confidence >= 0.9
    [version] = entry.versions
    assert (version.version, version.kind, version.rows, version.path) == (1, "raw", data["rows"], data["vault_path"])
    assert version.content_sha256 == data["sha256"]
    assert version.report["parquet_sha256"] == hashlib.sha256(env.vault.open(data["vault_path"])).hexdigest()
    assert version.report["source"]["encoding"] == "gb18030"

    assert env.entries_after(before) == [
        ("catalog.published", "dataset:market_entities"),
        ("catalog.suggested", "dataset:market_entities"),
        ("dataset.version_added", "dataset:market_entities"),
        ("dataset.ingested", "dataset:market_entities"),
    ]
    ingested = env.instance.ledger.entries(action="dataset.ingested")[-1]
    assert ingested.actor == "demo-custodian" and ingested.role == "custodian"
    assert ingested.payload["source_sha256"] == data["sha256"]
    assert ingested.payload["vault_path"] == data["vault_path"]
    assert ingested.payload["encoding"] == "gb18030" and ingested.payload["format"] == "CSV"


def test_a_utf8_bom_csv_keeps_leading_zeros_and_the_x_of_ids(env: Env) -> None:
    """CSV cells are read as strings: codes keep their leading zeros, IDs their X, empty cells are null."""
    path = env.tmp / "codes.csv"
    text = '编号,公民身份号码,备注\n000123,11010519491231002X,\n007,11010519491231002x,"含,逗号"\n'
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    result = env.ingest(path, name="codes")
    assert result.encoding == "utf-8-sig"  # type: ignore[attr-defined]
    table = env.vault.read_table(result.vault_path)  # type: ignore[attr-defined]
    assert table.column_names == ["编号", "公民身份号码", "备注"]  # the BOM is not part of the first header
    assert table.to_pylist() == [
        {"编号": "000123", "公民身份号码": "11010519491231002X", "备注": None},
        {"编号": "007", "公民身份号码": "11010519491231002x", "备注": "含,逗号"},
    ]
    entry = env.registry.catalog.get("codes")
    assert entry.level.value == "L4" and entry.sensitive_personal_info  # resident IDs: sensitive PI


def test_a_plain_utf8_csv_and_an_explicit_encoding(env: Env, tables: dict[str, pd.DataFrame]) -> None:
    path = env.tmp / "residents.csv"
    synthetic.write_csv(tables["residents"], path)
    result = env.ingest(path, name="residents", encoding="utf-8", level="L4")
    assert result.encoding == "utf-8" and result.rows == len(tables["residents"])  # type: ignore[attr-defined]
    gb = env.tmp / "entities.csv"
    synthetic.write_csv(tables["market_entities"], gb, encoding="gb18030")
    assert env.ingest(gb, name="entities", encoding="gb18030").encoding == "gb18030"  # type: ignore[attr-defined]


def test_a_parquet_file_keeps_its_types(env: Env, tables: dict[str, pd.DataFrame]) -> None:
    path = env.tmp / "residents.parquet"
    tables["residents"].to_parquet(path)
    result = env.ingest(path, name="residents")
    data = result.as_json()  # type: ignore[attr-defined]
    assert data["encoding"] is None
    types = {c["name"]: c["type"] for c in data["columns"]}
    assert types["出生日期"].startswith("timestamp") and types["公民身份号码"] in ("string", "large_string")
    entry = env.registry.catalog.get("residents")
    assert entry.data_format == "Parquet" and entry.level.value == "L4"
    table = env.vault.read_table(data["vault_path"])
    assert table.column("公民身份号码").to_pylist() == tables["residents"]["公民身份号码"].tolist()


def test_an_xlsx_file_is_read_as_text(env: Env) -> None:
    """XLSX cells become the text a person reads: text IDs intact, whole numbers without '.0', ISO dates."""
    import datetime as dt

    path = env.tmp / "entities.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "登记"
    sheet.append(["统一社会信用代码", "注册资本", "成立日期", "邮编"])
    sheet.append([PROVIDER_CODE, 120, dt.datetime(2020, 5, 17), "001234"])
    sheet.append([None, None, None, None])  # a blank row between blocks
    sheet.append([PROVIDER_CODE, 12.5, dt.date(2019, 1, 2), "000001"])
    book.save(path)
    result = env.ingest(path, name="entities")
    table = env.vault.read_table(result.vault_path)  # type: ignore[attr-defined]
    assert table.to_pylist() == [
        {"统一社会信用代码": PROVIDER_CODE, "注册资本": "120", "成立日期": "2020-05-17", "邮编": "001234"},
        {"统一社会信用代码": PROVIDER_CODE, "注册资本": "12.5", "成立日期": "2019-01-02", "邮编": "000001"},
    ]
    entry = env.registry.catalog.get("entities")
    assert entry.data_format == "XLSX" and entry.versions[0].report["source"]["sheet"] == "登记"
    assert result.encoding is None  # type: ignore[attr-defined]


def _xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


MALFORMED: list[tuple[str, str, bytes, str]] = [
    ("empty file", "a.csv", b"", "is empty"),
    ("only blank lines", "a.csv", b"\n\n  \n", "is empty"),
    ("header without rows", "a.csv", "姓名,性别\n".encode(), "header but no rows"),
    ("a row too short", "a.csv", b"a,b,c\n1,2,3\n4,5\n", "record 3 (line 3) has 2 fields where the header has 3"),
    ("a row too long", "a.csv", b"a,b\n1,2\n3,4\n5,6,7\n", "record 4 (line 4) has 3 fields where the header has 2"),
    ("duplicate headers", "a.csv", "姓名,年龄,姓名\n1,2,3\n".encode(), "'姓名' appears twice (columns 1 and 3)"),
    ("headers equal once trimmed", "a.csv", b"a, a\n1,2\n", "'a' appears twice"),
    ("an empty header", "a.csv", b"a,,c\n1,2,3\n", "column 2 has an empty header"),
    ("no header row", "a.csv", b"11010519491231002X,13912345678\n11010519491231002X,13812345678\n", "looks like data"),
    ("binary garbage", "a.csv", bytes(range(256)) * 8, "neither UTF-8 nor GB18030"),
    ("latin-1 text", "a.csv", b"name,city\ncaf\xe9,x\n", "not valid UTF-8 from byte offset 13"),
    ("a NUL byte", "a.csv", b"a,b\n1,\x002\n", "control character U+0000 on line 2"),
    ("an unterminated quote", "a.csv", b'a,b\n1,"2\n3,4\n', "not a well-formed CSV"),
    ("semicolon-separated", "a.csv", b"a;b;c\n1;2;3\n", "looks delimited by ';'"),
    ("a legacy .xls", "a.xls", b"\xd0\xcf\x11\xe0garbage", "legacy binary Excel"),
    ("garbage named .parquet", "a.parquet", b"PAR1 not really", "not a readable Parquet file"),
    ("garbage named .xlsx", "a.xlsx", b"PK\x03\x04 not a zip", "not a readable XLSX workbook"),
    ("xlsx value beyond the header", "a.xlsx", _xlsx([["a", "b"], [1, 2], [3, 4, 5]]), "value in column 3"),
    ("xlsx empty header", "a.xlsx", _xlsx([["a", None, "c"], [1, 2, 3]]), "column 2 has an empty header"),
    ("xlsx header only", "a.xlsx", _xlsx([["a", "b"]]), "header but no rows"),
]


def test_malformed_files_are_refused_and_leave_nothing_behind(env: Env) -> None:
    """Each malformed file is refused with a message saying where; no vault file, entry or ledger entry."""
    before = env.seq()
    for case, filename, content, message in MALFORMED:
        path = env.tmp / filename
        path.write_bytes(content)
        with pytest.raises(RegistryError) as refused:
            env.ingest(path, name="broken")
        assert message in str(refused.value), f"{case}: {refused.value}"
        assert env.vault_files() == [], case
    assert env.seq() == before
    with pytest.raises(NotFoundError):
        env.registry.catalog.get("broken")


def test_gb18030_forced_as_utf8_names_the_byte_offset(env: Env, tables: dict[str, pd.DataFrame]) -> None:
    path = env.tmp / "entities.csv"
    synthetic.write_csv(tables["market_entities"], path, encoding="gb18030")
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError) as python_says:
        raw.decode("utf-8")
    offset = python_says.value.start  # 统 is CD B3 in GB18030: a valid UTF-8 pair, so not always byte 0
    with pytest.raises(RegistryError, match=f"not valid UTF-8: byte 0x{raw[offset]:02x} at offset {offset} "):
        env.ingest(path, encoding="utf-8")
    with pytest.raises(RegistryError, match="unknown encoding 'latin-1'"):
        env.ingest(path, encoding="latin-1")
    assert env.vault_files() == []


def test_a_refusal_by_the_catalog_removes_the_vault_copy(env: Env, tables: dict[str, pd.DataFrame]) -> None:
    """Grading a dataset with resident IDs L2 is refused (双鸭山 第十一条) after the vault write: it is undone."""
    path = env.tmp / "residents.csv"
    synthetic.write_csv(tables["residents"], path)
    before = env.seq()
    with pytest.raises(RegistryError, match="graded L2"):
        env.ingest(path, name="residents", level="L2")
    assert env.vault_files() == []
    assert env.seq() == before
    with pytest.raises(NotFoundError):
        env.registry.catalog.get("residents")


def test_new_datasets_need_a_valid_provider_code_and_a_machine_name(env: Env, tables: dict[str, pd.DataFrame]) -> None:
    path = env.tmp / "entities.csv"
    synthetic.write_csv(tables["market_entities"], path)
    before = env.seq()
    with pytest.raises(RegistryError, match="--provider-code"):
        env.ingest(path, provider_code=None)
    with pytest.raises(RegistryError, match="not a valid 统一社会信用代码"):
        env.ingest(path, provider_code="91230502MA0000000A")
    with pytest.raises(RegistryError, match="not a machine name"):
        env.ingest(path, name="Market Entities")
    with pytest.raises(RegistryError, match="SQL keyword"):
        env.ingest(path, name="select")
    with pytest.raises(RegistryError, match="unknown level"):
        env.ingest(path, level="L5")
    assert env.seq() == before and env.vault_files() == []


def test_only_the_custodian_ingests(env: Env, tables: dict[str, pd.DataFrame]) -> None:
    path = env.tmp / "entities.csv"
    synthetic.write_csv(tables["market_entities"], path)
    before = env.seq()
    for role in ("agency", "operator", "regulator"):
        with pytest.raises(PermissionDeniedError, match=f"role '{role}' may not do this"):
            env.ingest(path, by=Actor(f"demo-{role}", role))
    assert env.seq() == before and env.vault_files() == []
    assert env.ingest(path, by=Actor.host()).version == 1  # type: ignore[attr-defined]


def test_reingesting_adds_a_new_raw_version(env: Env, tables: dict[str, pd.DataFrame]) -> None:
    """The same dataset ingested again: version 2 beside version 1, each with its own vault copy."""
    path = env.tmp / "entities.csv"
    synthetic.write_csv(tables["market_entities"], path, encoding="gb18030")
    first = env.ingest(path)
    smaller = env.tmp / "entities-update.csv"
    synthetic.write_csv(tables["market_entities"].head(5), smaller)
    before = env.seq()
    second = env.ingest(smaller, provider_code=None)  # the entry exists: its provider code is known
    assert second.version == 2 and second.rows == 5 and second.encoding == "utf-8"  # type: ignore[attr-defined]
    assert env.entries_after(before) == [
        ("catalog.suggested", "dataset:market_entities"),
        ("dataset.version_added", "dataset:market_entities"),
        ("dataset.ingested", "dataset:market_entities"),
    ]
    versions = env.registry.catalog.get("market_entities").versions
    assert [(v.version, v.kind, v.rows) for v in versions] == [(1, "raw", first.rows), (2, "raw", 5)]  # type: ignore[attr-defined]
    assert versions[0].path != versions[1].path and len(env.vault_files()) == 2
    assert env.vault.read_table(versions[0].path).num_rows == first.rows  # type: ignore[attr-defined]


def test_reingesting_other_columns_or_from_another_provider_is_refused(
    env: Env, tables: dict[str, pd.DataFrame]
) -> None:
    """A new version keeps the catalogued (and classified) columns; it comes from the same provider."""
    path = env.tmp / "entities.csv"
    synthetic.write_csv(tables["market_entities"], path)
    env.ingest(path)
    other = env.tmp / "other.csv"
    synthetic.write_csv(tables["market_entities"].drop(columns=["住所"]).assign(手机号码="13912345678"), other)
    before = env.seq()
    with pytest.raises(RegistryError, match="missing: 住所; not catalogued: 手机号码"):
        env.ingest(other)
    with pytest.raises(RegistryError, match="is provided by 双鸭山市市场监督管理局"):
        env.ingest(path, provider="另一个部门")
    assert env.seq() == before and len(env.vault_files()) == 1


# --- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> Iterator[typer.Typer]:
    app = typer.Typer()
    app.command("ingest")(ingest_command)

    @app.command("noop")
    def noop() -> None:  # two commands, so typer keeps the sub-command name
        pass

    yield app


def test_cli_ingest_json_contract(env: Env, cli: typer.Typer, tables: dict[str, pd.DataFrame]) -> None:
    path = env.tmp / "entities.csv"
    synthetic.write_csv(tables["market_entities"], path, encoding="gb18030")
    home = str(env.instance.home)
    args = ["ingest", str(path), "--name", "market_entities", "--provider", PROVIDER, "--home", home]
    result = CliRunner().invoke(cli, [*args, "--provider-code", PROVIDER_CODE, "--level", "L4", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)  # stdout is exactly the JSON document
    assert set(data) == RESULT_KEYS and data["version"] == 1 and data["encoding"] == "gb18030"
    assert env.registry.catalog.get("market_entities").level.value == "L4"
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.stderr
    assert "market_entities" in again.stdout and "v2" in again.stdout


def test_cli_refusals_exit_1_with_the_reason(env: Env, cli: typer.Typer) -> None:
    path = env.tmp / "ragged.csv"
    path.write_bytes(b"a,b\n1\n")
    home = str(env.instance.home)
    args = ["ingest", str(path), "--name", "ragged", "--provider", PROVIDER, "--provider-code", PROVIDER_CODE]
    result = CliRunner().invoke(cli, [*args, "--home", home, "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "record 2 (line 2) has 1 fields where the header has 2" in result.stderr
    missing = CliRunner().invoke(cli, ["ingest", str(env.tmp / "nope.csv"), "--name", "x1", "--provider", "p",
                                       "--home", home])  # fmt: skip
    assert missing.exit_code == 1 and "is not a file" in missing.stderr
    assert env.vault_files() == []


# --- API -------------------------------------------------------------------------------------


def test_api_custodian_uploads_and_other_roles_are_forbidden(
    env: Env, tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app(instance=env.instance))
    buffer = io.BytesIO()
    tables["market_entities"].to_csv(buffer, index=False, encoding="gb18030", date_format="%Y-%m-%d")
    content = buffer.getvalue()
    form = {"provider": PROVIDER, "provider_code": PROVIDER_CODE}
    upload = {"file": ("市场主体.csv", content, "text/csv")}

    headers = {role: bearer(client, key) for role, key in env.tokens.items()}  # token exchanges are ledgered
    before = env.seq()
    for role in ("agency", "operator", "regulator"):
        refused = client.post("/datasets/market_entities/ingest", data=form, files=upload, headers=headers[role])
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == f"role {role!r} may not do this; allowed: custodian"
    assert env.seq() == before

    custodian = headers["custodian"]
    response = client.post("/datasets/market_entities/ingest", data=form, files=upload, headers=custodian)
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == RESULT_KEYS and data["encoding"] == "gb18030" and data["version"] == 1
    assert data["sha256"] == hashlib.sha256(content).hexdigest()
    version = env.registry.catalog.get("market_entities").versions[0]
    assert version.report["source"]["file"] == "市场主体.csv"
    assert list((env.instance.home / ".scratch").iterdir()) == []  # scratch removed

    ragged = client.post(
        "/datasets/market_entities/ingest",
        data=form,
        files={"file": ("bad.csv", b"a,b\n1,2,3\n", "text/csv")},
        headers=custodian,
    )
    assert ragged.status_code == 409 and "bad.csv is not a well-formed CSV" in ragged.json()["detail"]

    # Over the limit while streaming, and declared over the limit before reading: 413, nothing written.
    before = env.seq()
    ingestor = env.instance.registry.ingestor
    limited = partial(replace, ingestor.config)
    monkeypatch.setattr(ingestor, "config", limited(ingest_limits=IngestLimits(max_upload_bytes=len(content) - 1)))
    large = client.post("/datasets/market_entities/ingest", data=form, files=upload, headers=custodian)
    assert large.status_code == 413 and "exceeds" in large.json()["detail"]
    monkeypatch.setattr(ingestor, "config", limited(ingest_limits=IngestLimits(max_upload_bytes=100)))
    huge = {"file": ("huge.csv", b"a\n" + b"1\n" * 50_000, "text/csv")}
    assert client.post("/datasets/market_entities/ingest", data=form, files=huge, headers=custodian).status_code == 413
    assert len(env.vault_files()) == 1 and env.seq() == before
    assert list((env.instance.home / ".scratch").iterdir()) == []


def test_parquet_upload_through_the_api(env: Env, tables: dict[str, pd.DataFrame]) -> None:
    client = TestClient(create_app(instance=env.instance))
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(tables["market_entities"], preserve_index=False), buffer)
    response = client.post(
        "/datasets/entities/ingest",
        data={"provider": PROVIDER, "provider_code": PROVIDER_CODE, "level": "L3"},
        files={"file": ("entities.parquet", buffer.getvalue(), "application/octet-stream")},
        headers=bearer(client, env.tokens["custodian"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["encoding"] is None
    assert env.registry.catalog.get("entities").data_format == "Parquet"
