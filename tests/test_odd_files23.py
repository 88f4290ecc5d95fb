"""Odd files through the CLI and the API: exit 1 or a 4xx naming the column, never a traceback or a 500.

The guide: "Bad input gets a clear error and loses nothing: malformed files, wrong encodings …". A raw
file is the custodian's input (资源目录 registration, 双鸭山市公共数据管理暂行办法 第十一条: the resource is
graded and desensitized before use); one Keyong cannot hold is refused saying what to change, and a refused
step leaves nothing behind: no catalog entry or vault file for an ingest, no desensitized version, copy,
fingerprints or ledger entry for a desensitization (no copy without its ledger entry, 第三十五条).

Attacks (red team odd23): a Parquet text column whose bytes are CESU-8 (lone surrogates) — Parquet's
reader does not check UTF-8, profiling then failed with a raw ArrowException; an age column exported as
floats with infinity for "unknown" — the k-anonymity ladder overflowed (OverflowError); and a value no
stage foresaw, simulated by a stage that raises — the pipeline's face now refuses it (fail closed).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import desensitize.pipeline as pipeline
from app import Instance, create_app
from app.cli.desensitize import desensitize as desensitize_command
from app.cli.ingest import ingest as ingest_command
from core import NotFoundError
from desensitize.identifiers import uscc_check_char
from registry import FileInvalidError
from registry.source_files import read_source
from tests.conftest import bearer

PROVIDER = "双鸭山市民政局"
PROVIDER_CODE = "11230500MB1234567" + uscc_check_char("11230500MB1234567")
ROWS = 60
#: "张三" with its second character written as CESU-8 would write a surrogate pair's first half (ED A0 80).
CESU = "张".encode() + b"\xed\xa0\x80"


@pytest.fixture
def database_url() -> None:
    """SQLite: these refusals happen before any difference between the databases matters."""
    return None


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    return initialised[0]


@pytest.fixture
def client(instance: Instance) -> TestClient:
    return TestClient(create_app(instance=instance), raise_server_exceptions=False)


@pytest.fixture
def custodian(client: TestClient, initialised: tuple[Instance, dict[str, str]]) -> dict[str, str]:
    return bearer(client, initialised[1]["custodian"])


def parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def cesu_names(rows: int = ROWS, bad: int = 7) -> pa.Array:
    """A name column of ``rows`` names, the one at ``bad`` (from 0) in CESU-8 bytes marked as UTF-8 text."""
    cells = [f"李{i}".encode() for i in range(rows)]
    cells[bad] = CESU
    return pa.array(cells, pa.binary()).view(pa.string())


def post(client: TestClient, headers: dict[str, str], name: str, filename: str, content: bytes) -> Any:
    return client.post(
        f"/datasets/{name}/ingest",
        data={"provider": PROVIDER, "provider_code": PROVIDER_CODE, "level": "L4"},
        files={"file": (filename, content, "application/octet-stream")},
        headers=headers,
    )


def cli(*commands: tuple[str, Any]) -> typer.Typer:
    app = typer.Typer()
    for name, command in commands:
        app.command(name)(command)
    app.command("noop")(lambda: None)
    return app


def nothing_desensitized(instance: Instance, name: str, ledger_before: int) -> None:
    """No desensitized version, no copy, no fingerprints, no ledger entry."""
    assert instance.ledger.size() == ledger_before
    assert [v.kind for v in instance.registry.catalog.get(name).versions] == ["raw"]
    for directory in ("copies", "fingerprints"):
        assert not [p for p in (instance.home / directory).rglob("*") if p.is_file()], directory


# --- a Parquet text column that is not UTF-8 -------------------------------------------------------


@pytest.mark.parametrize("encoded", ["plain", "dictionary"])
def test_a_parquet_text_column_that_is_not_utf8_is_refused_naming_column_and_record(encoded: str) -> None:
    names = cesu_names()
    table = pa.table(
        {"编号": [str(i) for i in range(ROWS)], "姓名": names.dictionary_encode() if encoded != "plain" else names}
    )
    with pytest.raises(FileInvalidError) as refused:
        read_source(parquet(table), label="people.parquet")
    message = str(refused.value)
    assert "people.parquet: record 8 of column 2 '姓名' is not UTF-8 text" in message
    assert "re-export the file with its text in UTF-8" in message


def test_a_parquet_text_column_that_is_not_utf8_exits_1_and_gets_422(
    instance: Instance, client: TestClient, custodian: dict[str, str], tmp_path: Path
) -> None:
    content = parquet(pa.table({"编号": [str(i) for i in range(ROWS)], "姓名": cesu_names()}))
    path = tmp_path / "people.parquet"
    path.write_bytes(content)
    before = instance.ledger.size()
    args = ["ingest", str(path), "--name", "people", "--provider", PROVIDER, "--provider-code", PROVIDER_CODE]
    result = CliRunner().invoke(cli(("ingest", ingest_command)), [*args, "--home", str(instance.home), "--json"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr and "record 8 of column 2 '姓名' is not UTF-8" in result.stderr
    assert result.stdout == ""
    response = post(client, custodian, "people", "people.parquet", content)
    assert response.status_code == 422, response.text
    assert "'姓名' is not UTF-8 text" in response.json()["detail"]
    assert instance.ledger.size() == before
    vault = instance.home / "vault"
    assert not vault.exists() or not [p for p in vault.rglob("*") if p.is_file()]
    with pytest.raises(NotFoundError):
        instance.registry.catalog.get("people")


def test_a_parquet_file_whose_column_names_are_not_utf8_is_refused() -> None:
    """The footer's names are decoded when the file is opened: a raw UnicodeDecodeError before (a 500)."""
    content = parquet(pa.table({"xm": ["李一", "李二"], "bh": ["1", "2"]}))
    assert content.count(b"xm") >= 1
    with pytest.raises(FileInvalidError, match=r"people\.parquet: its column names are not UTF-8 text"):
        read_source(content.replace(b"xm", b"\xed\xa0"), label="people.parquet")


# --- desensitization refusals: a 4xx and exit 1, nothing half-written -------------------------------


def ages_with_infinity() -> bytes:
    """A register's ages exported as floats, "unknown" written as infinity (as some statistics tools do)."""
    ages = [float(20 + i % 50) for i in range(ROWS)]
    ages[3] = float("inf")
    cities = [("尖山区", "岭东区", "四方台区")[i % 3] for i in range(ROWS)]
    return parquet(pa.table({"区县": cities, "年龄": pa.array(ages, pa.float64())}))


def test_an_infinite_age_is_refused_naming_the_column_not_a_500(
    instance: Instance, client: TestClient, custodian: dict[str, str], tmp_path: Path
) -> None:
    assert post(client, custodian, "ages", "ages.parquet", ages_with_infinity()).status_code == 200
    grading = {"分级": "L4", "个人信息": True, "columns": {"年龄": {"分级": "L4", "PII类型": "age"}}, "reason": "年龄"}
    assert client.put("/datasets/ages/classification", headers=custodian, json=grading).status_code == 200
    before = instance.ledger.size()
    refused = client.post("/datasets/ages/desensitize", headers=custodian, json={})
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "column '年龄' (age)" in detail and "infinite, the first in record 4" in detail
    nothing_desensitized(instance, "ages", before)
    result = CliRunner().invoke(
        cli(("desensitize", desensitize_command)), ["desensitize", "ages", "--home", str(instance.home), "--json"]
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr and "infinite" in result.stderr and result.stdout == ""
    nothing_desensitized(instance, "ages", before)


def test_an_unforeseen_failure_in_a_stage_is_a_409_and_exit_1_with_nothing_written(
    instance: Instance, client: TestClient, custodian: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: a value no check foresaw (simulated: the utility measure raises a library's TypeError)
    is a refusal naming the stage — not a 500 and a traceback — and the registry writes nothing."""
    cities = [("尖山区", "岭东区", "四方台区")[i % 3] for i in range(ROWS)]
    table = pa.table({"区县": cities, "人数": pa.array([i % 7 for i in range(ROWS)], pa.int64())})
    assert post(client, custodian, "counts", "counts.parquet", parquet(table)).status_code == 200

    def unforeseen(*_: Any, **__: Any) -> Any:
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(pipeline, "measure_utility", unforeseen)
    before = instance.ledger.size()
    refused = client.post("/datasets/counts/desensitize", headers=custodian, json={})
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "dataset 'counts'" in detail and "the stage after 'k-anonymity'" in detail
    assert "TypeError: unhashable type" in detail and "nothing was written" in detail
    nothing_desensitized(instance, "counts", before)
    result = CliRunner().invoke(
        cli(("desensitize", desensitize_command)), ["desensitize", "counts", "--home", str(instance.home)]
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr and "the stage after 'k-anonymity'" in result.stderr
    nothing_desensitized(instance, "counts", before)
