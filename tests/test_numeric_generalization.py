"""Numeric generalization stays numeric (issue 16): banded numbers and generalized dates are numbers
and dates in the copy, so pandas, SQL (DuckDB over the Parquet copy, as the sandbox's sql jobs run)
and the DP programs compute with them directly; top and bottom coding are stated in the report.

GB/T 37964-2019 附录A 泛化技术 (incl. 顶层与底层编码): the techniques are the same as before, only
their results are typed. Numbers below are computed by hand.
"""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desensitize import desensitize_table, load_policy
from desensitize.fingerprints import FingerprintSet
from desensitize.kanonymity import k_anonymize
from desensitize.policy import Policy, PolicyError, Rule
from desensitize.transforms import TransformError, date_band, date_month, date_year, transform_column
from dp.programs import dp_query, dp_train

PEPPER = b"numeric-generalization-test-pepper"

# Five people in two districts; incomes chosen so that each coding and band shows.
_DISTRICTS = ["尖山区", "尖山区", "宝山区", "宝山区", "宝山区"]
_INCOMES = [1200, 1800, 2500, 25000, 500]
# Bands of 1000 over whole yuan hold 1000..1999: midpoint 1499.5. 25000 >= top 20000 -> 20000;
# 500 < bottom 1000 -> 1000.
_MIDPOINTS = [1499.5, 1499.5, 2499.5, 20000.0, 1000.0]


def _policy(**income: object) -> Policy:
    params = {"width": 1000, "bottom": 1000, "top": 20000, **income}
    return Policy.model_validate(
        {
            "level": "L4",
            "k": 1,
            "rules": {
                "cn_resident_id": {"action": "pseudonymize"},
                "income": {"action": "band", "params": params},
                "birth_date": {"action": "date_year"},
            },
        }
    )


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "身份证号": [f"23050219800101{i:04d}" for i in range(5)],
            "区县": _DISTRICTS,
            "月收入": _INCOMES,
            "出生日期": pd.to_datetime(["1961-03-02", "1964-12-31", "1975-06-01", "1980-01-01", None]),
        }
    )


_TYPES = {"身份证号": "cn_resident_id", "区县": None, "月收入": "income", "出生日期": "birth_date"}


@pytest.fixture(scope="module")
def copy() -> pd.DataFrame:
    return desensitize_table(_table(), _TYPES, _policy(label=True), pepper=PEPPER).frame


def _parquet(frame: pd.DataFrame) -> bytes:
    """The copy as registry/copies.py writes it (Arrow from pandas, zstd Parquet)."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, compression="zstd")
    return buffer.getvalue()


# --------------------------------------------------------------------------- the copy's values


def test_banded_income_is_the_band_midpoint_and_coded(copy: pd.DataFrame) -> None:
    assert copy["月收入"].dtype == np.float64
    assert copy["月收入"].tolist() == _MIDPOINTS
    # The label column is there for readers who want it, the numbers stay in the column itself.
    assert copy["月收入_区间"].tolist() == ["1000-1999", "1000-1999", "2000-2999", "≥20000", "<1000"]


def test_pandas_groupby_mean_works_on_the_copy(copy: pd.DataFrame) -> None:
    means = copy.groupby("区县")["月收入"].mean()
    assert means["尖山区"] == pytest.approx(1499.5)
    assert means["宝山区"] == pytest.approx((2499.5 + 20000.0 + 1000.0) / 3)


def test_sql_over_the_parquet_copy(copy: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "copy.parquet"
    path.write_bytes(_parquet(copy))
    schema = pq.read_schema(path)
    assert schema.field("月收入").type == pa.float64()
    assert schema.field("出生日期").type == pa.int64()
    con = duckdb.connect(":memory:")
    rows = con.execute(
        f"SELECT 区县, AVG(月收入), SUM(月收入), COUNT(*) FILTER (WHERE 出生日期 >= 1970) "
        f"FROM read_parquet('{path}') GROUP BY 区县 ORDER BY 区县"
    ).fetchall()
    assert rows[0][0] == "宝山区" and rows[0][1] == pytest.approx(23499.5 / 3) and rows[0][3] == 2
    assert rows[1] == ("尖山区", pytest.approx(1499.5), pytest.approx(2999.0), 0)


def test_dp_query_mean_over_a_banded_column(copy: pd.DataFrame) -> None:
    """The DP program reads the banded column as the numbers it holds (no label parsing)."""
    plan = {
        "kind": "dp-query",
        "dataset": "t",
        "table": "/data/t.parquet",
        "person_key": "身份证号",
        "max_rows_per_person": 1,
        "rows_bound": 5,
        "aggregate": "mean",
        "column": "月收入",
        "bounds": [0, 30000],
        "epsilon": 1e9,  # noise negligible: the answer is the copy's mean
        "group_by": [{"column": "区县", "values": ["尖山区", "宝山区"]}],
        "quantile": None,
        "bins": None,
        "categories": None,
    }
    frame = pd.read_parquet(io.BytesIO(_parquet(copy)))
    got = {row["group"]["区县"]: row["value"] for row in dp_query.run_query(plan, frame)["rows"]}
    assert got["尖山区"] == pytest.approx(1499.5, rel=1e-3)
    assert got["宝山区"] == pytest.approx(23499.5 / 3, rel=1e-3)
    assert dp_query.numeric_values(frame["月收入"]).tolist() == _MIDPOINTS


def test_dp_train_encodes_banded_numbers_and_years_as_numbers(copy: pd.DataFrame) -> None:
    plan = {
        "features": [
            {"column": "月收入", "type": "numeric", "bounds": [0, 20000]},
            {"column": "出生日期", "type": "numeric", "bounds": [1950, 2000]},
        ],
        "label": {"column": "区县", "values": ["尖山区", "宝山区"]},
    }
    x, y = dp_train.encode(plan, copy)
    # 1499.5 / 20000 = 0.074975; (1961 - 1950) / 50 = 0.22; the null year -> 0.5.
    assert x[0].tolist() == pytest.approx([0.074975, 0.22])
    assert x[4].tolist() == pytest.approx([0.05, 0.5])
    assert y.tolist() == [0, 0, 1, 1, 1]


def test_date_year_is_an_integer(copy: pd.DataFrame) -> None:
    assert str(copy["出生日期"].dtype) == "Int64"
    assert copy["出生日期"].tolist()[:4] == [1961, 1964, 1975, 1980] and pd.isna(copy["出生日期"].iloc[4])


# --------------------------------------------------------------------------- the report


def test_top_and_bottom_coding_are_reported() -> None:
    report = desensitize_table(_table(), _TYPES, _policy(label=True), pepper=PEPPER).report
    by_name = {c["name"]: c for c in report["columns"]}
    assert by_name["月收入"]["representation"] == {
        "kind": "midpoint",
        "unit": "yuan",
        "width": 1000.0,
        "edges": None,
        "whole_numbers": True,
        "bottom_coded_below": 1000.0,
        "top_coded_at": 20000.0,
        "bottom_coded_rows": 1,
        "top_coded_rows": 1,
        "label_column": "月收入_区间",
    }
    assert by_name["出生日期"]["representation"] == {"kind": "year"}
    assert "representation" not in by_name["身份证号"] and "representation" not in by_name["区县"]


def test_no_label_column_by_default() -> None:
    result = desensitize_table(_table(), _TYPES, _policy(), pepper=PEPPER)
    assert "月收入_区间" not in result.frame.columns
    assert {c["name"]: c for c in result.report["columns"]}["月收入"]["representation"]["label_column"] is None


def test_a_label_column_may_not_replace_a_column() -> None:
    table = _table().assign(月收入_区间="x")
    with pytest.raises(TransformError, match="月收入_区间"):
        desensitize_table(table, {**_TYPES, "月收入_区间": None}, _policy(label=True), pepper=PEPPER)


def test_shipped_l4_income_is_banded_and_top_coded() -> None:
    rule = load_policy("L4").rule_for("income")
    values = pd.Series([3000, 3999, 19999, 20000, 25000, None], dtype="Int64")
    result = transform_column(values, rule, pii_type="income", pepper=PEPPER, column="月缴费基数")
    assert result.values is not None
    assert result.values.tolist()[:5] == [3499.5, 3499.5, 19499.5, 20000.0, 20000.0]
    assert result.representation is not None and result.representation["top_coded_rows"] == 2


# --------------------------------------------------------------------------- dates


def test_date_month_keeps_a_date() -> None:
    dates = pd.Series(pd.to_datetime(["1990-05-03 12:30:00", None, "1961-12-31 00:00:00"]))
    out = date_month(dates)
    assert pd.api.types.is_datetime64_any_dtype(out.dtype)
    assert out.tolist()[0] == pd.Timestamp("1990-05-01") and pd.isna(out.iloc[1])
    assert out.iloc[2] == pd.Timestamp("1961-12-01")
    text = pd.Series(["1990-05-03", "1988年5月", "19771231", "2001/1/2", "1990", "1990-13-01", None], dtype="str")
    assert date_month(text).tolist()[:4] == [
        pd.Timestamp(d) for d in ("1990-05-01", "1988-05-01", "1977-12-01", "2001-01-01")
    ]
    assert date_month(text).iloc[4:].isna().all()  # a year alone, a month 13, null: suppressed
    assert date_month(pd.Series([19900503, None])).tolist()[0] == pd.Timestamp("1990-05-01")
    with pytest.raises(TransformError, match="YYYYMMDD"):
        date_month(pd.Series([1990]))


def test_date_month_keeps_the_time_zone() -> None:
    dates = pd.Series(pd.to_datetime(["2020-03-15 08:00"]).tz_localize("Asia/Shanghai"))
    assert date_month(dates).iloc[0] == pd.Timestamp("2020-03-01", tz="Asia/Shanghai")


def test_text_dates_and_datetimes_agree() -> None:
    """The Arrow path (text, parsed once per distinct value) and the pandas path (datetime64) give
    the same year, band and month for the same dates."""
    rng = np.random.default_rng(7)
    stamps = pd.Series(pd.to_datetime("1930-01-01") + pd.to_timedelta(rng.integers(0, 30000, 3000), unit="D"))
    stamps[::17] = pd.NaT
    text = pd.Series(stamps.dt.strftime("%Y-%m-%d"), dtype="str")
    assert date_year(text).equals(date_year(stamps))
    assert date_band(text, width=5).equals(date_band(stamps, width=5))
    by_text, by_date = date_month(text), date_month(stamps)
    assert by_text.isna().equals(by_date.isna())
    assert (by_text.dropna().to_numpy(dtype="datetime64[s]") == by_date.dropna().to_numpy(dtype="datetime64[s]")).all()


def test_date_band_is_the_first_year_with_its_width_reported() -> None:
    rule = Rule(action="date_band", params={"width": 10})
    dates = pd.Series(pd.to_datetime(["1969-12-31", "1970-01-01"]))
    result = transform_column(dates, rule, pii_type="birth_date", pepper=PEPPER, column="出生日期")
    assert result.values is not None and result.values.tolist() == [1960, 1970]
    assert result.representation == {"kind": "band_start_year", "width": 10}
    month = transform_column(dates, Rule(action="date_month"), pii_type="birth_date", pepper=PEPPER, column="d")
    assert month.representation == {"kind": "month"}


def test_policy_keeps_date_month_to_dates_and_labels_off_quasi_identifiers() -> None:
    Policy.model_validate({"level": "L3", "rules": {"birth_date": {"action": "date_month"}}})
    with pytest.raises(ValueError, match="date_month"):
        Policy.model_validate({"level": "L3", "rules": {"income": {"action": "date_month"}}})
    with pytest.raises(ValueError, match="default"):
        Policy.model_validate({"level": "L3", "default": {"action": "date_month"}})
    with pytest.raises(ValueError, match="label"):
        Policy.model_validate(
            {
                "level": "L4",
                "quasi_identifiers": ["age"],
                "rules": {"age": {"action": "band", "params": {"width": 5, "label": True}}},
            }
        )
    assert isinstance(PolicyError("x"), ValueError)


# --------------------------------------------------------------------------- k-anonymity


def test_quasi_identifier_ladders_write_numbers_and_report_them() -> None:
    # Ages 20..59 once each, gender alternating: 10-year bands give groups of 5 per gender.
    frame = pd.DataFrame({"age": np.arange(20, 60), "sex": ["男", "女"] * 20})
    result = k_anonymize(frame, {"age": "age", "sex": "gender"}, k=5, max_suppression=0.0)
    assert result.report["quasi_identifiers"][0]["generalization"] == "10-year band"
    # 20-29 holds the integers 20..29: midpoint 24.5.
    assert result.frame["age"].tolist() == [a // 10 * 10 + 4.5 for a in range(20, 60)]
    assert result.report["representation"]["age"]["kind"] == "midpoint"
    assert result.report["representation"]["age"]["width"] == 10.0
    assert result.report["representation"]["sex"] is None  # never generalized
    assert result.frame.groupby("sex")["age"].mean().to_dict() == {"女": 39.5, "男": 39.5}


def test_top_of_a_numeric_ladder_is_null_and_birth_years_stay_integers() -> None:
    # Age and birth date single out every row together; the search settles on 5-year birth bands
    # and suppresses age entirely (``*`` written as NaN, stated as "suppressed").
    born = pd.to_datetime([f"{1960 + i // 4}-0{1 + i % 4}-01" for i in range(40)])
    frame = pd.DataFrame({"age": np.arange(20, 60), "sex": ["男", "女"] * 20, "born": born})
    result = k_anonymize(frame, {"age": "age", "sex": "gender", "born": "birth_date"}, k=5, max_suppression=0.0)
    representation = result.report["representation"]
    assert representation["age"] == {"kind": "suppressed", "value": None}
    assert result.frame["age"].isna().all() and result.frame["age"].dtype == np.float64
    assert representation["born"] == {"kind": "band_start_year", "width": 5}
    assert str(result.frame["born"].dtype) == "Int64"
    assert result.frame["born"].tolist() == [1960 + (i // 4) // 5 * 5 for i in range(40)]


def test_numeric_copies_hash_deterministically(copy: pd.DataFrame) -> None:
    """The guard's fingerprints hash quasi-identifier tuples and rows of the copy: the same numbers
    give the same hashes, also after the Parquet round trip a job's output goes through."""
    raw = _table()
    build = dict(pepper=PEPPER, quasi_identifier_columns=["月收入", "出生日期"], workers=1)
    first = FingerprintSet.build(raw, copy, _TYPES, **build)  # type: ignore[arg-type]
    again = FingerprintSet.build(raw, copy.copy(), _TYPES, **build)  # type: ignore[arg-type]
    for kind in ("qi_rows_desensitized", "rows_desensitized"):
        assert np.array_equal(first.arrays[kind], again.arrays[kind])
    read_back = pd.read_parquet(io.BytesIO(_parquet(copy)))
    assert first.contains_rows(read_back, "qi_rows_desensitized").all()
    assert first.contains_rows(read_back, "rows_desensitized").all()


def test_the_guard_still_recognises_a_dump_of_a_numeric_copy(tmp_path: Path) -> None:
    """Red team: with birth years as numbers, the guard could re-derive a dump of the copy as a table of
    "groups" of one row each (the year the "mean" of its row) and excuse it from row matching. A
    group of one copy row is that row: the dump is matched as records (the demo's exfiltration job)."""
    import hashlib

    from sandbox.guard import SourceCopy, judge
    from tests.adversarial import residents

    _, l4_copy, prints = residents()
    assert str(l4_copy["出生日期"].dtype) == "Int64"
    data = l4_copy.head(500).to_csv(index=False).encode("utf-8")
    (tmp_path / "residents_sample.csv").write_bytes(data)
    outputs = [{"name": "residents_sample.csv", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    judged = judge(
        tmp_path,
        outputs,
        fingerprints={"residents": prints},
        sources={"residents": SourceCopy.from_frame("residents", l4_copy)},
    )
    assert judged.verdict == "block"
    assert "record.matching_rows" in {f.rule for f in judged.findings}
