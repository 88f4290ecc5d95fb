"""Red team 21c: uploaded files of column types the ingest and the desensitizer had not met.

Each case was a 500 at the API (``POST /datasets/{name}/ingest`` or ``/desensitize``) and a traceback on the
CLI; a raw file is the custodian's input, so a shape Keyong cannot hold is a 422 naming the column, and one it
can hold is ingested and desensitized (资源目录 registration, 双鸭山 第十一条: the resource is graded and
desensitized before use). A refused upload leaves nothing behind: no ledger entry, no catalog entry.
"""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from core import NotFoundError
from desensitize.identifiers import uscc_check_char
from tests.conftest import bearer

PROVIDER = "双鸭山市市场监督管理局"
PROVIDER_CODE = "11230500MB1234567" + uscc_check_char("11230500MB1234567")
ROWS = 60


@pytest.fixture
def database_url() -> None:
    """SQLite: the failures were in reading and profiling the file, before any database difference."""
    return None


@pytest.fixture
def client(initialised: tuple[Instance, dict[str, str]]) -> TestClient:
    return TestClient(create_app(instance=initialised[0]), raise_server_exceptions=False)


@pytest.fixture
def custodian(client: TestClient, initialised: tuple[Instance, dict[str, str]]) -> dict[str, str]:
    return bearer(client, initialised[1]["custodian"])


def parquet(**columns: pa.Array) -> bytes:
    cities = pa.array([("北京", "上海", "广州")[i % 3] for i in range(ROWS)])
    buffer = io.BytesIO()
    pq.write_table(pa.table({"city": cities, **columns}), buffer)
    return buffer.getvalue()


def ingest(client: TestClient, headers: dict[str, str], name: str, filename: str, content: bytes) -> object:
    return client.post(
        f"/datasets/{name}/ingest",
        data={"provider": PROVIDER, "provider_code": PROVIDER_CODE, "level": "L4"},
        files={"file": (filename, content, "application/octet-stream")},
        headers=headers,
    )


def test_a_uint64_column_above_int64_is_ingested_and_desensitized(
    client: TestClient, custodian: dict[str, str]
) -> None:
    """F1: the fingerprints rendered every integer column through Int64; 2**63 has no Int64 (TypeError, 500)."""
    content = parquet(u=pa.array([2**63 + i for i in range(ROWS)], pa.uint64()))
    assert ingest(client, custodian, "wide_numbers", "u.parquet", content).status_code == 200  # type: ignore[attr-defined]
    made = client.post("/datasets/wide_numbers/desensitize", headers=custodian, json={})
    assert made.status_code == 201, made.text
    assert {c["name"] for c in made.json()["columns"]} == {"city", "u"}


def test_a_time_of_day_with_nanoseconds_is_refused_naming_the_column(
    client: TestClient, custodian: dict[str, str], initialised: tuple[Instance, dict[str, str]]
) -> None:
    """F2: time64[ns] with a sub-microsecond part cannot become a Python time (ArrowInvalid while profiling,
    500); whole microseconds in the same type still ingest."""
    instance = initialised[0]
    before = instance.ledger.size()
    refused = ingest(client, custodian, "clock_times", "t.parquet", parquet(t=pa.array([1] * ROWS, pa.time64("ns"))))
    assert refused.status_code == 422, refused.text  # type: ignore[attr-defined]
    assert "'t'" in refused.json()["detail"] and "nanoseconds" in refused.json()["detail"]  # type: ignore[attr-defined]
    assert instance.ledger.size() == before
    with pytest.raises(NotFoundError):
        instance.registry.catalog.get("clock_times")
    whole = parquet(t=pa.array([1000 * i for i in range(ROWS)], pa.time64("ns")).dictionary_encode())
    assert ingest(client, custodian, "clock_times", "t.parquet", whole).status_code == 200  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        (
            "far.csv",
            ("出生日期,n\n" + "".join(f"{'9999-12-31' if i % 2 else '0001-01-01'},1\n" for i in range(ROWS))).encode(),
        ),
        (
            "far8.csv",
            ("出生日期,n\n" + "".join(f"{'99991231' if i % 7 == 0 else '19900101'},1\n" for i in range(ROWS))).encode(),
        ),
    ],
)
def test_birth_dates_at_the_ends_of_the_calendar_are_profiled_not_a_crash(
    client: TestClient, custodian: dict[str, str], filename: str, content: bytes
) -> None:
    """F3: the birth-date validator merged each format's parse into a datetime64[ns] series; pandas reads
    0001-01-01 and 9999-12-31 at a coarser unit that nanoseconds cannot hold (OutOfBoundsDatetime, 500)."""
    response = ingest(client, custodian, "births", filename, content)
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    assert client.post("/datasets/births/desensitize", headers=custodian, json={}).status_code == 201


def test_the_birth_date_validator_still_tells_dates_in_range_from_the_rest() -> None:
    """The rewrite of F3 keeps the rule: a birth date lies between 1900-01-01 and today."""
    import pandas as pd

    from desensitize.validators import valid_values

    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    values = pd.Series(["1990-01-02", "19900102", "1899-12-31", tomorrow, "0001-01-01", "9999-12-31", "x", None])
    assert valid_values("birth_date", values).tolist() == [True, True, False, False, False, False, False, False]


@pytest.mark.parametrize(("column", "pii_type"), [("gender", "age"), ("gender", "income"), ("stamp", "age")])
def test_a_grading_that_does_not_fit_the_values_is_refused_at_desensitization(
    client: TestClient,
    custodian: dict[str, str],
    initialised: tuple[Instance, dict[str, str]],
    column: str,
    pii_type: str,
) -> None:
    """F10: the custodian grades a text or time column as ``age`` or ``income``; the policy's band action needs
    numbers and raised ``TransformError`` out of ``registry.copies`` (500 at the API, a CLI traceback). It is the
    grading's fault: 409 naming the column and the action, no desensitized version, nothing ledgered."""
    instance = initialised[0]
    content = parquet(
        gender=pa.array([("男", "女")[i % 2] for i in range(ROWS)]),
        stamp=pa.array([dt.time(i % 24, i % 60) for i in range(ROWS)]),
    )
    assert ingest(client, custodian, "graded", "g.parquet", content).status_code == 200  # type: ignore[attr-defined]
    grading = {"分级": "L4", "个人信息": True, "columns": {column: {"分级": "L4", "PII类型": pii_type}}, "reason": "r"}
    assert client.put("/datasets/graded/classification", headers=custodian, json=grading).status_code == 200
    before = instance.ledger.size()
    refused = client.post("/datasets/graded/desensitize", headers=custodian, json={})
    assert refused.status_code == 409, refused.text
    assert repr(column) in refused.json()["detail"] and "band" in refused.json()["detail"]
    assert instance.ledger.size() == before
    assert [v.kind for v in instance.registry.catalog.get("graded").versions] == ["raw"]
