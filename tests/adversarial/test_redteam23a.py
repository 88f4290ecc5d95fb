"""Independent red team of the odd-cells defence (odd23): odd inputs must end as clear refusals, fail closed.

Each test is an attack through one entry (the ``keyong`` CLI, the HTTP API, the ``desensitize`` library
face); it PASSES while the defence holds and FAILS while the attack works (a found bug is a failing test).
The promise attacked (docs/guide.md; BRIEF): "Bad input gets a clear error and loses nothing: malformed
files, wrong encodings …": a service answers a bad request with a 4xx, never a 500; the CLI exits 1 with a
message, never a traceback; the library refuses with a ``DesensitizeError`` naming the stage and the
column; nothing half-written (no dataset row without its vault file). Rule under it: 双鸭山市公共数据管理
暂行办法 第三十五条 (the desensitized copy is the only data a sandbox mounts, so a copy must either be
made whole or refused).

Findings (each a test below):

- F1 ingest: a Parquet ``date32`` beyond year 9999 or before year 1 (Arrow holds ±5.8 million years) is a raw
  ``ValueError`` ("year 65347 is out of range") from the profiler's ``table.to_pandas()``: a 500 at the API, a
  traceback at the CLI.
- F2 ingest: a Parquet ``time64``/``time32`` outside 00:00–24:00 (Arrow does not check) is the same raw
  ``ValueError`` ("hour must be in 0..23").
- F3 ingest: a Parquet ``timestamp`` whose time zone no database knows (``tz="Mars/Olympus"``) is a raw
  ``ArrowInvalid`` ("The zoneinfo module or pytz package must be installed.").
- F4 library: a categorical column whose categories hold bytes (or a nested value, or a lone surrogate)
  that no row uses crashes the entry check itself with an ``IndexError``.
- F5 library: the exit check looks at ``object`` columns only: a kept column of another dtype the copy
  cannot hold (a categorical mixing numbers and text, a sparse column) passes, and the
  registry's write of the copy then fails outside every refusal (a raw ``ArrowInvalid``/``TypeError``).
- F6 library: an Arrow ``binary`` column (``pd.ArrowDtype(pa.binary())``) passes the entry check that
  refuses bytes, and is kept as bytes in the copy.
- F7 API on PostgreSQL: a utility report holding +inf (a relative error over subnormal raw values) cannot be
  stored in PostgreSQL's JSON: the version's commit fails with a DataError, a 500 (files are removed).
- F8 library: a column label whose ``str()`` raises escapes ``desensitize_table`` raw.
- F9 library: a forked child killed by SIGKILL (the OOM killer) is refused as "a value it does not handle …
  check that column's values", naming the wrong stage; a child's MemoryError passes through raw instead.
- F10 every entry: a 9999-12-31 placeholder date (长期) in a personal table overflows the month coarsening's
  nanosecond datetimes; the refusal names neither the column nor the record.
- F11 ingest: a non-UTF-8 dictionary entry no record uses is refused naming record 1, which is fine.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, Settings, create_app
from app.cli.root import cli
from core import Actor, NotFoundError
from desensitize import DesensitizeError, desensitize_table, load_policy
from tests.conftest import bearer
from tests.test_registry_licences import uscc

pytestmark = pytest.mark.attack

PEPPER = b"redteam23a-pepper-0123456789abcdef"
PROVIDER_CODE = uscc(7)
CUSTODIAN = Actor("demo-custodian", "custodian")
ROWS = 30


@pytest.fixture
def database_url() -> None:
    """SQLite: the attacks are on files and tables, not on the database."""
    return None


@pytest.fixture
def keys(initialised: tuple[Instance, dict[str, str]]) -> dict[str, str]:
    return initialised[1]


@pytest.fixture
def client(instance: Instance) -> TestClient:
    return TestClient(create_app(instance=instance), raise_server_exceptions=False)


# --- files whose cells Arrow holds but Python and pandas cannot -------------------------------------------


def _odd_columns() -> dict[str, pa.Array]:
    """Column values a Parquet file can carry that no ``datetime`` (or time zone database) can."""
    days = pa.array([23_000_000 + i for i in range(ROWS)], pa.int32())  # ~ year 65,000
    return {
        "date_after_9999": days.cast(pa.date32()),
        "date_before_1": pa.array([-800_000 - i for i in range(ROWS)], pa.int32()).cast(pa.date32()),
        "time_past_midnight": pa.array([2 * 86_400_000_000 + i for i in range(ROWS)], pa.int64()).cast(pa.time64("us")),
        "time_negative": pa.array([-1 - i for i in range(ROWS)], pa.int32()).cast(pa.time32("s")),
        "unknown_time_zone": pa.array(range(ROWS), pa.int64()).cast(pa.timestamp("us", tz="Mars/Olympus")),
    }


ODD = sorted(_odd_columns())


def _parquet(kind: str) -> bytes:
    table = pa.table(
        {
            "姓名": pa.array([f"张{i}" for i in range(ROWS)]),
            "城市": pa.array(["北京", "上海", "广州"] * (ROWS // 3)),
            "登记": _odd_columns()[kind],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _absent(instance: Instance, name: str) -> bool:
    try:
        instance.registry.catalog.get(name)
    except NotFoundError:
        return True
    return False


def _vault_files(instance: Instance) -> list[Path]:
    vault = instance.home / "vault"
    return [p for p in vault.rglob("*") if p.is_file()] if vault.exists() else []


@pytest.mark.parametrize("kind", ODD)
def test_api_ingest_of_a_parquet_cell_no_datetime_holds_is_a_4xx(
    client: TestClient, keys: dict[str, str], instance: Instance, kind: str
) -> None:
    """F1–F3 at the API: was a 500 (the profiler's ``to_pandas`` raised a raw ValueError / ArrowInvalid)."""
    custodian = bearer(client, keys["custodian"])
    before = _vault_files(instance)
    answer = client.post(
        "/datasets/oddtimes/ingest",
        headers=custodian,
        files={"file": ("odd.parquet", _parquet(kind), "application/octet-stream")},
        data={"provider": "某局", "provider_code": PROVIDER_CODE, "level": "L3"},
    )
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert "登记" in answer.json()["detail"]  # the message names the column to fix
    assert _absent(instance, "oddtimes") and _vault_files(instance) == before


@pytest.mark.parametrize("kind", ODD)
def test_cli_ingest_of_a_parquet_cell_no_datetime_holds_exits_1(instance: Instance, tmp_path: Path, kind: str) -> None:
    """F1–F3 at the CLI: was a traceback."""
    path = tmp_path / "odd.parquet"
    path.write_bytes(_parquet(kind))
    args = ["dataset", "ingest", str(path), "--name", "oddtimes", "--provider", "某局"]
    args += ["--provider-code", PROVIDER_CODE]
    result = CliRunner().invoke(cli, ["--home", str(instance.home), *args])
    assert result.exit_code == 1, (result.exit_code, repr(result.exception), result.output[-300:])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "登记" in result.output
    assert _absent(instance, "oddtimes")


# --- the library face: the entry and exit checks themselves ----------------------------------------------


def _frame(column: object) -> pd.DataFrame:
    sexes = np.random.default_rng(1).choice(["男", "女"], ROWS)
    return pd.DataFrame({"性别": sexes, "攻击列": column})


def _desensitize(frame: pd.DataFrame, pii_type: str | None = None) -> pd.DataFrame:
    types = {"性别": "gender", "攻击列": pii_type}
    return desensitize_table(frame, types, load_policy("L3"), pepper=PEPPER).frame


@pytest.mark.parametrize(
    "odd",
    [b"\x01\x02", ("a", "b"), "\ud800"],
    ids=["bytes", "tuple", "surrogate"],
)
def test_a_categorical_with_an_odd_category_no_row_uses_is_refused_not_an_index_error(odd: object) -> None:
    """F4: ``check_column`` looks for the record holding the odd category; when none does,
    ``np.flatnonzero(hits)[0]`` raised ``IndexError`` out of the entry check (no stage, no column named)."""
    column = pd.Categorical(["a"] * ROWS, categories=pd.Index(["a", odd], dtype=object))
    try:
        _desensitize(_frame(column))
    except DesensitizeError as refused:
        assert refused.stage == "entry" and refused.column == "攻击列"


def _stored(frame: pd.DataFrame) -> None:
    """What ``registry.copies.Copies._store`` does with the copy, outside every refusal."""
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), io.BytesIO(), compression="zstd")


@pytest.mark.parametrize(
    "column",
    [
        pd.Categorical([1 if i % 2 else "a" for i in range(ROWS)]),
        pd.arrays.SparseArray([0] * (ROWS - 1) + [1]),
    ],
    ids=["categorical-mixed", "sparse"],
)
def test_a_kept_column_the_copy_cannot_hold_is_refused_at_the_exit(column: object) -> None:
    """F5: ``check_copy`` converts ``object`` columns only; these dtypes passed and the copy could not be
    written (a raw ArrowInvalid / TypeError in the registry, after the whole run)."""
    try:
        frame = _desensitize(_frame(column))
    except DesensitizeError as refused:
        assert refused.column == "攻击列"
        return
    _stored(frame)  # the copy the pipeline returned must be one the registry can write


def test_an_arrow_binary_column_is_refused_as_bytes() -> None:
    """F6: the entry check refuses cells of bytes in ``object`` columns, but an Arrow ``binary`` column
    skipped it ("Arrow strings hold neither bytes …") and its bytes were kept in the copy."""
    column = pd.array([f"v{i % 3}".encode() for i in range(ROWS)], dtype=pd.ArrowDtype(pa.binary()))
    with pytest.raises(DesensitizeError) as refused:
        _desensitize(_frame(column))
    assert refused.value.stage == "entry" and refused.value.column == "攻击列"


def test_an_out_of_range_date_after_ingest_is_a_named_refusal() -> None:
    """HOLDS: a timestamp a nanosecond ``datetime64`` cannot hold (year 1) is refused naming the stage, or (since
    fix23a F10 coarsens dates outside the nanosecond range) desensitized: no birth date kept finer than a month."""
    column = pd.Series([dt.datetime(1, 1, 1) + dt.timedelta(days=i) for i in range(ROWS)], dtype="datetime64[us]")
    try:
        copy = _desensitize(_frame(column), "birth_date")
    except DesensitizeError as refused:
        assert refused.stage is not None
        return
    kept = copy["攻击列"].dropna()
    assert len(kept) and (kept.dt.day == 1).all() and kept.min().year == 1, kept.unique()[:5]


# --- a report the API cannot answer with ------------------------------------------------------------------


def _tiny_ages_parquet() -> bytes:
    """Ages stored as subnormal doubles (5e-324 × i): finite numbers, banded without complaint."""
    rng = np.random.default_rng(1)
    table = pa.table(
        {
            "性别": pa.array(rng.choice(["男", "女"], 60)),
            "民族": pa.array(rng.choice(["汉", "回"], 60)),
            "年龄": pa.array([5e-324 * i for i in range(60)], pa.float64()),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


@pytest.fixture
def pg_instance(pg_url: str, tmp_path: Path) -> Iterator[tuple[Instance, dict[str, str]]]:
    instance, result = Instance.init(Settings(home=tmp_path / "pg-home", database_url=pg_url))
    try:
        yield instance, result.tokens
    finally:
        instance.close()


def test_api_desensitize_whose_report_holds_infinity_is_not_a_5xx_on_postgresql(
    pg_instance: tuple[Instance, dict[str, str]],
) -> None:
    """F7: the utility report divides by the raw values; ages stored as subnormal doubles make a
    ``relative_error`` of +inf. SQLite stores ``Infinity`` (and the API shows null), but PostgreSQL's JSON
    refuses the token: the version's commit fails with a DataError, which the API answers with a 500."""
    instance, keys = pg_instance
    client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    custodian = bearer(client, keys["custodian"])
    answer = client.post(
        "/datasets/tiny/ingest",
        headers=custodian,
        files={"file": ("tiny.parquet", _tiny_ages_parquet(), "application/octet-stream")},
        data={"provider": "某局", "provider_code": PROVIDER_CODE, "level": "L4"},
    )
    assert answer.status_code == 200, answer.text[:300]
    columns = {
        "性别": {"level": "L4", "pii_type": "gender", "sensitive_personal_info": True},
        "民族": {"level": "L4", "pii_type": "ethnicity", "sensitive_personal_info": True},
        "年龄": {"level": "L4", "pii_type": "age", "sensitive_personal_info": True},
    }
    instance.registry.catalog.classify("tiny", level="L4", columns=columns, by=CUSTODIAN, reason="ages are ages")
    made = client.post("/datasets/tiny/desensitize", headers=custodian, json={})
    assert made.status_code < 500, made.text[:300]
    shown = client.get("/datasets/tiny/desensitization", headers=custodian)
    assert shown.status_code < 500, shown.text[:300]


# --- the refusal's own machinery ----------------------------------------------------------------------------


class _NameWithoutText:
    """A column label whose ``str()`` raises (the brief: "a column name that is not str")."""

    def __str__(self) -> str:
        raise RuntimeError("this label has no text")

    def __hash__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        return self is other


def test_a_column_label_without_text_is_a_desensitize_error() -> None:
    """F8 (low, library face only): non-text labels are turned into text with ``str(c)`` before any check;
    a label whose ``str()`` raises escaped ``desensitize_table`` raw, neither a refusal nor named."""
    sexes = np.random.default_rng(1).choice(["男", "女"], ROWS)
    frame = pd.DataFrame({"性别": sexes, _NameWithoutText(): ["x"] * ROWS})
    with pytest.raises(DesensitizeError):
        desensitize_table(frame, {"性别": "gender"}, load_policy("L3"), pepper=PEPPER)


def test_a_forked_child_killed_by_a_signal_is_not_blamed_on_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """F9 (low): the raw fingerprints run in a forked child on a large table; when the kernel kills it (the
    OOM killer sends SIGKILL) the refusal says the table holds "a value it does not handle … check that
    column's values", which no edit of the data fixes (a retry with more memory does), and names the wrong
    stage. A child's ``MemoryError`` meanwhile passes through raw: the same cause, two different answers."""
    import os
    import signal

    import desensitize.pipeline as pipeline

    parent = os.getpid()
    real = pipeline.raw_prints  # type: ignore[attr-defined]

    def killed(*args: object, **kwargs: object) -> object:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "worth_forking", lambda rows, workers=None: True)
    monkeypatch.setattr(pipeline, "raw_prints", killed)
    frame = _frame([f"11010119900307{i:04d}" for i in range(ROWS)])
    with pytest.raises(Exception) as failed:
        _desensitize(frame, "cn_resident_id")
    message = str(failed.value)
    assert "value it does not handle" not in message and "check that column" not in message, message
    assert "SIGKILL" in message or "signal" in message, message


# --- a placeholder date every register holds ------------------------------------------------------------------


def _validity_dates(rows: int = 200) -> list[str]:
    """An ID card's 有效期至: real dates, and 9999-12-31 for 长期 (valid for life), as registers write it."""
    rng = np.random.default_rng(4)
    return [
        "9999-12-31" if i % 5 == 0 else f"20{rng.integers(25, 40)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        for i in range(rows)
    ]


def test_a_placeholder_date_in_a_personal_table_is_handled_or_refused_naming_its_column() -> None:
    """F10: in a personal table (L3) a date column is a default quasi-identifier, coarsened to the month in
    nanosecond datetimes; 9999-12-31 (长期) overflows them. The refusal names no column and no record ("the
    stage after 'transform' … OutOfBoundsDatetime: 9999-12-01 … check that column's values"): the custodian
    is not told which of the columns to look at. A register's placeholder should be desensitized, or refused
    naming 有效期至."""
    rows = 200
    frame = pd.DataFrame(
        {
            "姓名": [f"张{i}" for i in range(rows)],
            "性别": ["男" if i % 2 else "女" for i in range(rows)],
            "有效期至": _validity_dates(rows),
        }
    )
    types = {"姓名": "person_name", "性别": "gender", "有效期至": None}
    try:
        desensitize_table(frame, types, load_policy("L3"), pepper=PEPPER)
    except DesensitizeError as refused:
        assert refused.column == "有效期至" and "有效期至" in str(refused), str(refused)


def test_cli_desensitize_of_a_csv_with_a_placeholder_date_names_the_column(instance: Instance, tmp_path: Path) -> None:
    """F10 at the CLI: the ingest of an ordinary CSV succeeds, its desensitization exits 1 naming no column."""
    dates = _validity_dates()
    lines = ["姓名,性别,有效期至", *(f"张{i},{'男' if i % 2 else '女'},{d}" for i, d in enumerate(dates))]
    path = tmp_path / "ids.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    home = ["--home", str(instance.home)]
    ingest = ["dataset", "ingest", str(path), "--name", "idcards", "--provider", "某局", "--level", "L3"]
    ingested = runner.invoke(cli, [*home, *ingest, "--provider-code", PROVIDER_CODE])
    assert ingested.exit_code == 0, ingested.output[-300:]
    made = runner.invoke(cli, [*home, "dataset", "desensitize", "idcards"])
    assert made.exit_code == 0 or (made.exit_code == 1 and "有效期至" in made.output), made.output[-400:]


# --- a refusal that points at the wrong record -----------------------------------------------------------------


def _text_with_raw_bytes(values: list[bytes]) -> pa.Array:
    """A ``string`` array holding exactly these bytes (Arrow builds it without validating them)."""
    offsets = np.cumsum([0, *(len(v) for v in values)]).astype(np.int32)
    data = pa.py_buffer(b"".join(values))
    return pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets.tobytes()), data])


def test_a_non_utf8_dictionary_entry_no_record_uses_is_not_blamed_on_record_1(instance: Instance) -> None:
    """F11 (low): a dictionary column whose dictionary holds a CESU-8 surrogate no record uses is refused
    (good) as "record 1 of column 2 '类' is not UTF-8 text", but record 1 holds "ok": the provider is sent to
    a record that is fine (``_first_invalid_utf8`` finds no bad cell after decoding and answers index 0)."""
    from registry import FileInvalidError

    column = pa.DictionaryArray.from_arrays(
        pa.array([0] * ROWS, pa.int32()), _text_with_raw_bytes([b"ok", b"\xed\xa0\x80"])
    )
    buffer = io.BytesIO()
    pq.write_table(pa.table({"姓名": [f"张{i}" for i in range(ROWS)], "类": column}), buffer)
    with pytest.raises(FileInvalidError) as refused:
        instance.registry.ingestor.ingest(
            buffer.getvalue(), name="dicts", provider="某局", provider_code=PROVIDER_CODE, by=CUSTODIAN,
            source_name="d.parquet",
        )  # fmt: skip
    assert "record 1 " not in str(refused.value), str(refused.value)
