"""k-anonymity (GB/T 37964-2019 附录B K-匿名模型): generalization ladders, suppression, l-diversity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desensitize.kanonymity import build_ladder, group_sizes, k_anonymize, l_diversity
from samples import synthetic

QI_TYPES = {
    "出生日期": "birth_date",
    "性别": "gender",
    "民族": "ethnicity",
    "住址": "address",
    "户籍地": "household_region",
}


def _min_group(frame: pd.DataFrame, columns: list[str]) -> int:
    """Smallest group by plain pandas, independent of the module's own counting."""
    return int(frame.groupby(columns, dropna=False, sort=False)[columns[0]].transform("size").min())


@pytest.fixture(scope="module")
def residents() -> pd.DataFrame:
    return synthetic.residents(4000, seed=3)


def test_residents_reach_k(residents: pd.DataFrame) -> None:
    frame = residents[[*QI_TYPES, "姓名"]]
    before = frame.copy()
    result = k_anonymize(frame, QI_TYPES, k=5, max_suppression=0.05)
    report = result.report
    assert frame.equals(before)  # the input is left alone
    assert len(result.frame) > 0.9 * len(frame)
    assert _min_group(result.frame, list(QI_TYPES)) >= 5
    assert report["k_target"] == 5 and report["k_achieved"] >= 5
    assert report["k_achieved"] == _min_group(result.frame, list(QI_TYPES))
    assert report["suppressed_rows"] == len(frame) - len(result.frame) == int((~result.kept).sum())
    assert report["suppressed_rows"] <= report["suppression_budget_rows"] == 200
    assert report["violating_rows_before"] > report["suppressed_rows"]
    assert report["steps"], "raw birth dates and full addresses cannot be 5-anonymous without generalization"
    levels = {q["column"]: q for q in report["quasi_identifiers"]}
    assert levels["性别"]["level"] == 0 and levels["性别"]["ladder"] == ["value"]  # gender is never generalized
    assert levels["出生日期"]["generalization"] != "value"
    # Rows that were kept keep their order and their non-QI values.
    assert result.frame["姓名"].tolist() == frame["姓名"][result.kept].tolist()


def test_generalized_values_follow_the_ladders(residents: pd.DataFrame) -> None:
    result = k_anonymize(residents[list(QI_TYPES)], QI_TYPES, k=5)
    levels = {q["column"]: q["generalization"] for q in result.report["quasi_identifiers"]}
    birth = result.frame["出生日期"]
    if levels["出生日期"].endswith("year band"):
        # Numbers, not labels: the band's first year (Int64), the width in the report.
        width = int(levels["出生日期"].split("-")[0])
        assert str(birth.dtype) == "Int64"
        assert (birth.dropna() % width == 0).all()
        assert result.report["representation"]["出生日期"] == {"kind": "band_start_year", "width": width}
        assert birth.mean() > 1900  # computable as it is
    if levels["住址"] == "district":
        assert result.frame["住址"].str.fullmatch(r"黑龙江省双鸭山市\w+[区县]").all()


def test_greedy_takes_the_step_that_removes_most_violations() -> None:
    # Ages 20..59 each once, gender balanced: only generalizing age can help; gender cannot move.
    frame = pd.DataFrame({"age": np.arange(20, 60), "sex": ["男", "女"] * 20})
    result = k_anonymize(frame, {"age": "age", "sex": "gender"}, k=5, max_suppression=0.0)
    assert result.report["steps"][0]["column"] == "age"
    assert result.report["suppressed_rows"] == 0
    assert _min_group(result.frame, ["age", "sex"]) >= 5
    # Midpoints of the integers each band holds: 20-29 -> 24.5, 20-39 -> 29.5.
    assert set(result.frame["age"]) <= {24.5, 34.5, 44.5, 54.5, 29.5, 49.5}
    assert result.frame["age"].dtype == np.float64


def test_rows_that_cannot_be_generalized_are_suppressed_and_reported() -> None:
    frame = pd.DataFrame({"性别": ["男"] * 10 + ["女"] * 10 + ["未知"], "x": range(21)})
    result = k_anonymize(frame, {"性别": "gender"}, k=5, max_suppression=0.0)
    assert result.report["suppressed_rows"] == 1
    assert "未知" not in set(result.frame["性别"])
    assert result.kept.tolist() == [True] * 20 + [False]
    assert result.report["k_achieved"] == 10


def test_generalization_stops_when_it_cannot_help() -> None:
    # Two rows of a rare gender value: no generalization of age can merge them with anyone else.
    ages = [30] * 10 + [31] * 10 + [30] * 10 + [31] * 10 + [30, 31]
    frame = pd.DataFrame({"sex": ["男"] * 20 + ["女"] * 20 + ["未知"] * 2, "age": ages})
    result = k_anonymize(frame, {"sex": "gender", "age": "age"}, k=5, max_suppression=0.0)
    assert result.report["steps"] == []  # ages stay exact
    assert result.report["stopped"] == "no generalization helps the remaining rows"
    assert result.report["suppressed_rows"] == 2
    assert result.frame["age"].tolist() == frame["age"][:40].tolist()


def test_fewer_rows_than_k_suppresses_everything() -> None:
    frame = pd.DataFrame({"age": [30, 31, 32]})
    result = k_anonymize(frame, {"age": "age"}, k=5)
    assert len(result.frame) == 0
    assert result.report["suppressed_rows"] == 3 and result.report["k_achieved"] is None


def test_k_of_one_changes_nothing(residents: pd.DataFrame) -> None:
    frame = residents[list(QI_TYPES)]
    result = k_anonymize(frame, QI_TYPES, k=1)
    assert result.frame.equals(frame.reset_index(drop=True))
    assert result.report["steps"] == [] and result.report["suppressed_rows"] == 0


def test_no_quasi_identifiers_reports_k_as_not_applicable() -> None:
    # k = the number of rows would be a vacuous figure shown as a strong one (issue 16).
    frame = pd.DataFrame({"x": range(7)})
    result = k_anonymize(frame, {}, k=5)
    assert result.report["k_achieved"] is None and result.report["note"] == "n/a, no quasi-identifiers"
    assert len(result.frame) == 7 and result.report["suppressed_rows"] == 0


def test_nulls_form_their_own_group() -> None:
    frame = pd.DataFrame({"民族": ["汉族"] * 5 + [None] * 5})
    result = k_anonymize(frame, {"民族": "ethnicity"}, k=5)
    assert result.report["steps"] == [] and len(result.frame) == 10


def test_l_diversity_counts_distinct_sensitive_values_per_group() -> None:
    frame = pd.DataFrame(
        {
            "g": ["a"] * 4 + ["b"] * 4 + ["c"] * 4,
            "diagnosis": ["flu", "flu", "flu", "flu", "flu", "cold", "cold", None, "x", "y", "z", "x"],
        }
    )
    report = l_diversity(frame, ["g"], "diagnosis")
    assert report == {"column": "diagnosis", "l": 1, "groups": 3, "groups_below_2": 1}
    result = k_anonymize(frame, {"g": None}, k=4, sensitive_column="diagnosis")
    assert result.report["l_diversity"]["l"] == 1


def test_ladders() -> None:
    dates = ["1961-03-02", "1961-07-01", "1963-01-01", "1967-01-01", "1977-01-01", "1985-01-01"]
    birth = build_ladder(pd.Series(pd.to_datetime(dates)), "birth_date")
    assert birth.names == ["value", "year", "5-year band", "10-year band", "20-year band", "*"]
    assert birth.values(1, pd.Series(dates)).tolist() == [1961, 1961, 1963, 1967, 1977, 1985]
    assert birth.values(2, pd.Series(dates)).tolist()[:4] == [1960] * 3 + [1965]  # first year of 1960-1964
    assert birth.values(4, pd.Series(dates)).tolist()[-2:] == [1960, 1980]  # 1960-1979, 1980-1999
    assert str(birth.values(2, pd.Series(dates)).dtype) == "Int64"
    assert birth.representation(2) == {"kind": "band_start_year", "width": 5}
    assert birth.representation(1) == {"kind": "year"} and birth.representation(0) is None
    assert birth.values(5, pd.Series(dates)).isna().all()  # ``*``: null
    ethnicity = build_ladder(pd.Series(["汉族", "满族", "朝鲜族"]), "ethnicity")
    assert ethnicity.names == ["value", "汉族/少数民族", "*"]
    assert ethnicity.values(1, pd.Series(["汉族", "满族", "朝鲜族"])).tolist() == ["汉族", "少数民族", "少数民族"]
    jianshan, baoshan = "黑龙江省双鸭山市尖山区", "黑龙江省双鸭山市宝山区"
    places = [f"{jianshan}1号", f"{jianshan}2号", baoshan, "黑龙江省哈尔滨市道里区", "吉林省长春市南关区"]
    address = build_ladder(pd.Series(places), "address")
    assert address.names == ["value", "district", "city", "province", "*"]
    assert address.values(1, pd.Series(places)).tolist()[:3] == [jianshan, jianshan, baoshan]
    assert address.values(3, pd.Series(places)).tolist() == ["黑龙江省"] * 4 + ["吉林省"]
    years = build_ladder(pd.Series([1961, 1963, 1967, 1977, None], dtype="Int64"), "birth_date")
    assert years.names == ["value", "5-year band", "10-year band", "20-year band", "*"]
    assert years.values(1, pd.Series(range(5))).tolist()[:4] == [1960, 1960, 1965, 1975]
    assert pd.isna(years.values(1, pd.Series(range(5))).iloc[4])  # null stays null below the top
    assert years.values(4, pd.Series(range(5))).isna().all()
    bands = build_ladder(pd.Series(["1960-1964", "1965-1969", "1980-1984"]), "birth_date")
    assert bands.names == ["value", "10-year band", "*"]  # already 5-year bands; 20-year is the same split as 10
    assert bands.values(1, pd.Series(range(3))).tolist() == [1960, 1960, 1980]
    ethnicity_top = build_ladder(pd.Series(["汉族", "满族"]), "ethnicity")
    assert ethnicity_top.values(ethnicity_top.top, pd.Series(range(2))).tolist() == ["*", "*"]  # text stays text
    assert build_ladder(pd.Series(["男", "女"]), "gender").names == ["value"]


def test_age_ladder_writes_midpoints_by_hand() -> None:
    ages = pd.Series([20, 23, 27, 31, 36, 44, None], dtype="Int64")
    ladder = build_ladder(ages, "age")
    assert ladder.names == ["value", "5-year band", "10-year band", "20-year band", "*"]
    # 20-24 holds the integers 20..24: midpoint 22; 25-29 -> 27; 30-34 -> 32; 35-39 -> 37; 40-44 -> 42.
    assert ladder.values(1, ages).tolist()[:6] == [22.0, 22.0, 27.0, 32.0, 37.0, 42.0]
    assert np.isnan(ladder.values(1, ages).iloc[6])  # null stays null
    assert ladder.values(2, ages).tolist()[:6] == [24.5, 24.5, 24.5, 34.5, 34.5, 44.5]
    assert ladder.values(3, ages).tolist()[:6] == [29.5] * 5 + [49.5]
    assert ladder.values(4, ages).isna().all() and ladder.values(4, ages).dtype == np.float64  # ``*``: NaN
    five = ladder.representation(1)
    assert five is not None and five["kind"] == "midpoint" and five["width"] == 5.0 and five["whole_numbers"]
    assert ladder.representation(4) == {"kind": "suppressed", "value": None}
    # Text bands of a copy made before numbers: read as their band, written as its midpoint.
    text = build_ladder(pd.Series(["30-34", "35-39", "40-44"]), "age")
    assert text.values(1, pd.Series(range(3))).tolist() == [34.5, 34.5, 44.5]


def test_unreadable_dates_become_null_and_group_with_nulls() -> None:
    # "unknown" cannot be generalized to a year: it is written as null and counted with the nulls,
    # so the groups measured are the groups written.
    values = pd.Series(["1961-03-02", "1962-01-01", "unknown", None])
    ladder = build_ladder(values, "birth_date")
    assert ladder.values(1, values).tolist()[:2] == [1961, 1962]
    assert ladder.values(1, values).isna().tolist() == [False, False, True, True]
    assert ladder.codes[1][2] == ladder.codes[1][3]


def test_group_sizes_equal_pandas_groupby(residents: pd.DataFrame) -> None:
    columns = ["性别", "民族", "户籍地"]
    expected = residents.groupby(columns, dropna=False)[columns[0]].transform("size").to_numpy()
    assert np.array_equal(group_sizes(residents, columns), expected)


_POOLS = {
    "birth": pd.to_datetime(["1950-01-01", "1955-06-01", "1962-03-03", "1970-12-31", "1988-08-08", "2001-01-01"]),
    "sex": ["男", "女"],
    "nation": ["汉族", "满族", "回族", None],
    "where": ["黑龙江省双鸭山市尖山区", "黑龙江省双鸭山市宝清县", "黑龙江省哈尔滨市道里区", "吉林省长春市南关区"],
}
_TYPES = {"birth": "birth_date", "sex": "gender", "nation": "ethnicity", "where": "household_region"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(*(st.integers(0, len(p) - 1) for p in _POOLS.values())), min_size=0, max_size=80),
    k=st.integers(1, 7),
    max_suppression=st.sampled_from([0.0, 0.05, 0.2]),
)
def test_every_output_group_has_at_least_k_rows(rows: list[tuple[int, ...]], k: int, max_suppression: float) -> None:
    frame = pd.DataFrame(
        {name: [pool[r[i]] for r in rows] for i, (name, pool) in enumerate(_POOLS.items())},
        columns=list(_POOLS),
    )
    frame["birth"] = pd.to_datetime(frame["birth"])
    result = k_anonymize(frame, _TYPES, k=k, max_suppression=max_suppression)
    out = result.frame
    assert len(out) + result.report["suppressed_rows"] == len(frame)
    if len(out):
        assert _min_group(out, list(_TYPES)) >= k
        assert result.report["k_achieved"] == _min_group(out, list(_TYPES))
    suppressed = result.report["suppressed_rows"]
    if suppressed > result.report["suppression_budget_rows"]:
        # Over budget only when generalization is exhausted or could not help: even with every
        # other attribute at ``*`` (groups by gender alone) at least as many rows would violate.
        at_top = all(q["level"] == len(q["ladder"]) - 1 for q in result.report["quasi_identifiers"])
        by_gender = frame.groupby("sex", dropna=False)["sex"].transform("size") if len(frame) else pd.Series([])
        assert at_top or int((by_gender < k).sum()) >= suppressed
