"""fix23a: the defences behind red team 23a's findings that its own tests do not reach.

Rule under them: 双鸭山市公共数据管理暂行办法 第三十五条 (a desensitized copy is made whole or refused, with a message
that says what to change), and the guide's "bad input gets a clear error and loses nothing".
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desensitize import DesensitizeError, desensitize_table, load_policy
from desensitize.cells import check_report
from desensitize.forking import Forked, WorkerLostError
from desensitize.quasi import MAX_QUASI_IDENTIFIERS, coarsen_date
from desensitize.utility import relative_error
from registry.config import IngestLimits
from registry.source_checks import FileInvalidError
from registry.source_files import read_source


def _out_of_memory() -> int:
    raise MemoryError


def test_a_forked_child_out_of_memory_is_the_same_error_as_one_killed() -> None:
    """F9: a child's MemoryError came back raw, a SIGKILLed child as a RuntimeError: now one error, naming the task."""
    with Forked(_out_of_memory, "the raw fingerprints") as forked, pytest.raises(WorkerLostError) as lost:
        forked.result()
    assert lost.value.task == "the raw fingerprints" and "out of memory" in str(lost.value)


def test_a_relative_error_that_overflows_has_no_number() -> None:
    """F7: |copy − raw| / |raw| over a subnormal raw answer was +inf, which PostgreSQL's json refuses."""
    assert relative_error(5e-324, 1.0) is None
    assert relative_error(2.0, 3.0) == 0.5


def test_a_report_holding_infinity_or_nan_is_refused() -> None:
    """F7, fail closed: whatever stage puts a non-finite number into the report, it is refused naming where."""
    check_report({"utility": {"workload": [{"relative_error": 0.5}]}})
    for odd in (float("inf"), np.float64("nan")):
        with pytest.raises(DesensitizeError) as refused:
            check_report({"utility": {"workload": [{"relative_error": odd}]}})
        assert "report.utility.workload[0].relative_error" in str(refused.value)


def test_a_date_after_2262_is_coarsened_to_its_month_and_in_range_dates_stay_nanoseconds() -> None:
    """F10: 9999-12-31 (长期) overflowed the month coarsening; dates within the range keep their dtype."""
    wide = coarsen_date(pd.Series(["9999-12-31", "2030-05-17", None]), "month")
    assert [str(v)[:10] for v in wide.iloc[:2]] == ["9999-12-01", "2030-05-01"] and wide.isna().iloc[2]
    assert str(coarsen_date(pd.Series(["9999-12-31"]), "day").iloc[0])[:10] == "9999-12-31"
    assert coarsen_date(pd.Series(["2029-12-31", "2030-05-17"]), "month").dtype == "datetime64[ns]"


def test_more_quasi_identifiers_than_the_search_takes_are_refused_naming_the_bound() -> None:
    """W: the k-anonymity search's work grows ~ with the cube of the quasi-identifiers: above the bound, a refusal."""
    rng = np.random.default_rng(7)
    rows = 60
    frame = pd.DataFrame({"性别": rng.choice(["男", "女"], rows)})
    for j in range(MAX_QUASI_IDENTIFIERS):
        frame[f"c{j}"] = [f"v{i}" for i in rng.integers(0, 30, rows)]  # 20+ distinct values: a quasi-identifier
    with pytest.raises(DesensitizeError) as refused:
        desensitize_table(frame, {"性别": "gender"}, load_policy("L3"), pepper=b"fix23a-pepper-0123456789abcdef")
    assert refused.value.stage == "k-anonymity" and str(MAX_QUASI_IDENTIFIERS) in str(refused.value)


def test_a_date64_after_9999_is_refused_at_ingest_naming_column_and_record() -> None:
    """F1 for date64 (milliseconds): the same range as date32, the record named."""
    millis = [0, 0, 400_000 * 365 * 86_400_000]
    table = pa.table({"姓名": ["甲", "乙", "丙"], "日期": pa.array(millis, pa.int64()).cast(pa.date64())})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    with pytest.raises(FileInvalidError) as refused:
        read_source(buffer.getvalue(), "utf-8", label="d.parquet", limits=IngestLimits())
    assert "'日期'" in str(refused.value) and "record 3" in str(refused.value)


def test_a_timestamp_after_9999_is_refused_at_ingest_like_a_date() -> None:
    """F1 for timestamps: pandas holds a millisecond timestamp of the year 400,000 that no later stage reads as a
    date; refused at ingest as dates are. Nanosecond timestamps (1677–2262) are never out of range."""
    seconds = [0, 1, 400_000 * 365 * 86_400]
    table = pa.table({"姓名": ["甲", "乙", "丙"], "时刻": pa.array(seconds, pa.int64()).cast(pa.timestamp("s"))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    with pytest.raises(FileInvalidError) as refused:
        read_source(buffer.getvalue(), "utf-8", label="t.parquet", limits=IngestLimits())
    assert "'时刻'" in str(refused.value) and "record 3" in str(refused.value)
    fine = pa.table({"时刻": pa.array([0, 10**18], pa.int64()).cast(pa.timestamp("ns", tz="Asia/Shanghai"))})
    buffer = io.BytesIO()
    pq.write_table(fine, buffer)
    assert read_source(buffer.getvalue(), "utf-8", label="n.parquet", limits=IngestLimits()).table.num_rows == 2
