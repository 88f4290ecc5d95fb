"""Utility of a desensitized copy (desensitize.utility): non-uniform entropy (de Waal & Willenborg
1999; ARX MetricMDNUEntropy) and the workload's relative errors, against hand computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from desensitize.pipeline import desensitize_table
from desensitize.policy import load_policy
from desensitize.utility import column_loss, measure_utility, relative_error
from samples import synthetic

PEPPER = b"test-pepper-risk16-0123456789abcdef"


def test_relative_error() -> None:
    assert relative_error(10, 12) == pytest.approx(0.2)
    assert relative_error(-10, -5) == pytest.approx(0.5)
    assert relative_error(0, 5) is None  # undefined against a zero answer
    assert relative_error(10, None) == 1.0 and relative_error(10, float("nan")) == 1.0  # the copy lost it


def test_non_uniform_entropy_by_hand() -> None:
    raw = pd.Series(["a", "a", "b", "c"])
    generalized = pd.Series(["x", "x", "x", "c"])
    # loss = 2 log2(3/2) + log2(3/1) + log2(1/1); most (all suppressed) = 2 log2(4/2) + 2 log2(4) = 6.
    loss = 2 * math.log2(1.5) + math.log2(3)
    assert column_loss(raw, generalized, np.ones(4, dtype=bool)) == pytest.approx(loss / 6, abs=1e-6)
    # The last row suppressed: it counts as '*', frequency n = 4: + log2(4/1) = 2.
    kept = np.array([True, True, True, False])
    assert column_loss(raw, generalized, kept) == pytest.approx((loss + 2) / 6, abs=1e-6)
    assert column_loss(raw, raw, np.ones(4, dtype=bool)) == 0.0
    assert column_loss(raw, pd.Series(["*"] * 4), np.ones(4, dtype=bool)) == pytest.approx(1.0)


def _small() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    raw = pd.DataFrame({"region": ["A", "A", "A", "B", "B"], "x": [12, 18, 30, 41, 49], "y": [25, 37, 61, 83, 99]})
    copy = pd.DataFrame({"region": ["A", "A", "A", "B", "B"], "x": [10, 20, 30, 40, 50], "y": [32, 62, 92, 122, 152]})
    return raw, copy, raw[["region"]], np.ones(5, dtype=bool)


def test_workload_means_quantiles_and_regression_by_hand() -> None:
    raw, copy, generalized, kept = _small()
    qi = [{"column": "region", "level": 0, "ladder": ["value", "*"]}]
    utility = measure_utility(
        raw, copy, kept=kept, generalized=generalized, types={"region": "address"}, quasi_identifiers=qi
    )
    lines = {line["query"]: line for line in utility["workload"]}
    assert lines["count by region"]["relative_error"] == 0.0
    mean_x = lines["mean of x by region"]
    assert mean_x["raw"] == pytest.approx(30.0) and mean_x["copy"] == pytest.approx(30.0)
    assert mean_x["relative_error"] == 0.0 and mean_x["cells"] == 2  # A: 20 vs 20, B: 45 vs 45
    # Medians: A 18 vs 20 (2/18), B 45 vs 45.
    assert lines["median of x by region"]["relative_error"] == pytest.approx((2 / 18 + 0) / 2, abs=1e-6)
    # p90 (linear): A 27.6 vs 28, B 48.2 vs 49.
    p90 = (0.4 / 27.6 + 0.8 / 48.2) / 2
    assert lines["p90 of x by region"]["relative_error"] == pytest.approx(p90, abs=1e-6)
    # raw: y = 1 + 2x exactly; copy: y = 2 + 3x exactly.
    regression = lines["OLS x ~ y (R²; coefficients)"]  # the first numeric column (x) on the others (y)
    assert regression["coefficients"]["terms"] == ["(intercept)", "y"]
    assert regression["raw"] == pytest.approx(1.0) and regression["copy"] == pytest.approx(1.0)
    # x = (y - 1) / 2 raw, x = (y - 2) / 3 copy: intercept -0.5 vs -2/3, slope 0.5 vs 1/3.
    expected = (abs(-2 / 3 + 0.5) / 0.5 + abs(1 / 3 - 0.5) / 0.5) / 2
    assert regression["relative_error"] == pytest.approx(expected, abs=1e-6)
    column = utility["columns"][0]
    assert column == {
        "name": "region", "generalization_height": 0, "max_height": 1, "suppressed_share": 0.0,
        "non_uniform_entropy": 0.0,
    }  # fmt: skip
    summary = utility["summary"]
    # count by region, mean/median/p90 of x and of y by region, the regression.
    assert summary["queries"] == len(utility["workload"]) == 8 and summary["region"] == "region"
    # mean of y: A 41 vs 62, B 91 vs 137.
    assert lines["mean of y by region"]["relative_error"] == pytest.approx((21 / 41 + 46 / 91) / 2, abs=1e-6)
    errors = sorted(line["relative_error"] for line in utility["workload"])
    assert summary["max_relative_error"] == errors[-1]
    assert summary["median_relative_error"] == pytest.approx((errors[3] + errors[4]) / 2, abs=1e-6)


def test_counts_measure_what_suppression_removed() -> None:
    raw, _, generalized, _ = _small()
    kept = np.array([True, True, True, True, False])
    copy = raw[kept].reset_index(drop=True)
    raw = raw.assign(s=["m", "f", "m", "f", "m"])
    copy = copy.assign(s=["m", "f", "m", "f"])
    generalized = raw[["region", "s"]]
    qi = [
        {"column": "region", "level": 0, "ladder": ["value", "*"]},
        {"column": "s", "level": 0, "ladder": ["value"]},
    ]
    utility = measure_utility(raw, copy, kept=kept, generalized=generalized, types={}, quasi_identifiers=qi)
    lines = {line["query"]: line for line in utility["workload"]}
    # region: A 3 -> 3 (0), B 2 -> 1 (0.5).
    assert lines["count by region"]["relative_error"] == pytest.approx(0.25)
    assert lines["count by region"]["raw"] == 5 and lines["count by region"]["copy"] == 4
    # pairs: (A,m) 2->2, (A,f) 1->1, (B,f) 1->1, (B,m) 1->0 -> mean 0.25, max 1.
    pairs = lines["count by pairs of quasi-identifiers (1 pairs)"]
    assert pairs["relative_error"] == pytest.approx(0.25) and pairs["max_cell_error"] == 1.0 and pairs["cells"] == 4
    assert utility["columns"][0]["suppressed_share"] == pytest.approx(0.2)
    assert "mean of x overall" in lines  # no region-typed column: numeric statistics overall


def test_mismatched_rows_are_refused() -> None:
    raw, copy, generalized, kept = _small()
    with pytest.raises(ValueError, match="same rows"):
        measure_utility(raw, copy.iloc[:3], kept=kept, generalized=generalized, types={}, quasi_identifiers=[])


def test_pipeline_report_holds_utility_and_stays_small() -> None:
    tables = synthetic.generate_all(3000, seed=4)
    residents = tables["residents"]
    types = {
        "姓名": "person_name", "公民身份号码": "cn_resident_id", "性别": "gender", "民族": "ethnicity",
        "出生日期": "birth_date", "手机号码": "cn_phone", "住址": "address", "户籍地": "household_region",
        "备注": None,
    }  # fmt: skip
    result = desensitize_table(residents, types, load_policy("L3"), pepper=PEPPER)
    utility = result.report["utility"]
    names = [c["name"] for c in utility["columns"]]
    assert set(names) == {"性别", "民族", "出生日期", "住址", "户籍地", "姓名"}  # the surname: red team 23 F1
    by_name = {c["name"]: c for c in utility["columns"]}
    assert by_name["性别"]["non_uniform_entropy"] == pytest.approx(
        column_loss(residents["性别"], residents["性别"], result.kept_rows), abs=1e-6
    )
    assert 0 < by_name["出生日期"]["non_uniform_entropy"] <= 1  # dates generalized
    queries = [line["query"] for line in utility["workload"]]
    assert "count by 性别" in queries and any(q.startswith("count by pairs") for q in queries)
    assert utility["summary"]["queries"] == len(queries)
    assert len(json.dumps(result.report, ensure_ascii=False)) < 20_000
    # A numeric column rounded at L3 (incomes to 100): small but non-zero error, by district.
    insurance = tables["social_insurance"]
    insurance_types = {"身份证号": "cn_resident_id", "姓名": "person_name", "月缴费基数": "income"}
    copy = desensitize_table(insurance, insurance_types, load_policy("L3"), pepper=PEPPER)
    lines = {line["query"]: line for line in copy.report["utility"]["workload"]}
    mean = lines["mean of 月缴费基数 overall"]
    assert mean["relative_error"] == pytest.approx(relative_error(mean["raw"], mean["copy"]), abs=1e-6)
    assert 0 < mean["relative_error"] < 0.01
