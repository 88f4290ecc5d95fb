"""Re-identification risk (desensitize.risk) against hand-computed examples, and the risk threshold
of a level's policy enforced by k-anonymity and the pipeline.

Definitions: ARX RiskModelSampleSummary (prosecutor / journalist / marketer), sdcMicro measure_risk
and freqCalc (F_k from sampling weights; Templ, Kowarik & Meindl 2015, JSS 67(4)); thresholds from
GB/T 37964-2019 第6章 (the controller verifies the result against an acceptable re-identification risk).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desensitize.kanonymity import k_anonymize
from desensitize.pipeline import desensitize_table
from desensitize.policy import Policy, PolicyError, load_policy
from desensitize.risk import NO_QI_NOTE, class_ids, classes_to_drop, measure_risk, required_k
from samples import synthetic

PEPPER = b"test-pepper-risk16-0123456789abcdef"


def _ten_rows() -> pd.DataFrame:
    """Classes of sizes 1, 2, 3 and 4 over (region, sex); a sensitive diagnosis."""
    return pd.DataFrame(
        {
            "region": ["A", "B", "B", "C", "C", "C", "D", "D", "D", "D"],
            "sex": ["男", "女", "女", "男", "男", "男", "女", "女", "女", "女"],
            "diagnosis": ["flu", "flu", "cold", "flu", "flu", "flu", "x", "y", None, "x"],
        }
    )


def test_prosecutor_marketer_and_uniques_match_the_hand_computation() -> None:
    risk = measure_risk(_ten_rows(), ["region", "sex"], threshold=0.3, sensitive_column="diagnosis")
    assert risk["records"] == 10 and risk["classes"] == 4 and risk["k"] == 1 and risk["note"] is None
    # 1/f per record: 1, 1/2 x2, 1/3 x3, 1/4 x4 -> highest 1, average (1+1+1+1)/10 = classes/records.
    assert risk["prosecutor"] == pytest.approx({"highest": 1.0, "average": 0.4, "records_above_threshold": 0.6})
    assert risk["marketer"] == pytest.approx(0.4)
    assert risk["sample_uniques"] == 1 and risk["sample_uniques_share"] == pytest.approx(0.1)
    # Census by default: journalist = prosecutor.
    assert risk["journalist"] == risk["prosecutor"]
    # l: class A {flu} 1, B {flu, cold} 2, C {flu} 1, D {x, y} 2 -> 1.
    assert risk["l"] == 1


def test_records_at_risk_do_not_count_a_risk_equal_to_the_threshold() -> None:
    risk = measure_risk(_ten_rows(), ["region", "sex"], threshold=0.25)
    assert risk["prosecutor"]["records_above_threshold"] == pytest.approx(0.6)  # 1/4 is not above 0.25
    risk = measure_risk(_ten_rows(), ["region", "sex"], threshold=0.2)
    assert risk["prosecutor"]["records_above_threshold"] == pytest.approx(1.0)


def test_matches_sdcmicro_published_examples() -> None:
    # sdcMicro tests/testthat/test_freqCalc.R: region A x5, status single/married/married/single/widow,
    # agegroup 5 -> fk = 2, 2, 2, 2, 1.
    frame = pd.DataFrame(
        {"region": ["A"] * 5, "status": ["single", "married", "married", "single", "widow"], "agegroup": ["5"] * 5}
    )
    risk = measure_risk(frame, ["region", "status", "agegroup"])
    assert risk["k"] == 1 and risk["classes"] == 3 and risk["sample_uniques"] == 1
    assert risk["prosecutor"]["average"] == pytest.approx((4 * 0.5 + 1) / 5)  # mean of 1/fk
    # sdcMicro tests/testthat/test_ldiversity.R: distinct l per group 3, 3, 3, 2, 2, 2, 2 (the NA
    # occupations form one group) -> l = 2.
    frame = pd.DataFrame(
        {
            "sex": ["female", "female", "female", "male", "male", "female", "female"],
            "occupation": [None, None, None, "teacher", "teacher", "nurse", "nurse"],
            "ethnicity": ["other"] * 5 + ["majority"] * 2,
            "sensitive": [1, 0, 2, 1, 0, 0, 1],
        }
    )
    risk = measure_risk(frame, ["sex", "occupation", "ethnicity"], sensitive_column="sensitive")
    assert risk["l"] == 2 and risk["classes"] == 3 and risk["k"] == 2


def test_journalist_with_a_sampling_fraction() -> None:
    # F_c = f_c / 0.5 = 2, 4, 6, 8: record risks 1/2, 1/4 x2, 1/6 x3, 1/8 x4.
    risk = measure_risk(_ten_rows(), ["region", "sex"], threshold=0.2, sampling_fraction=0.5)
    assert risk["journalist"]["highest"] == pytest.approx(0.5)
    assert risk["journalist"]["average"] == pytest.approx((0.5 + 2 / 4 + 3 / 6 + 4 / 8) / 10)
    assert risk["journalist"]["records_above_threshold"] == pytest.approx(0.3)  # 1/2 and 1/4 x2
    assert risk["marketer"] == pytest.approx(4 * 0.5 / 10)  # sum of f_c/F_c over records
    assert risk["prosecutor"]["highest"] == 1.0  # the prosecutor knows the target is in the table


def test_journalist_with_weights_sums_them_per_class_as_sdcmicro() -> None:
    frame = _ten_rows().assign(w=[3.0, 1, 1, 2, 2, 2, 1, 1, 1, 1])
    risk = measure_risk(frame, ["region", "sex"], weights="w")
    # F: A 3, B 2, C 6, D 4 -> risks 1/3, 1/2 x2, 1/6 x3, 1/4 x4.
    assert risk["journalist"]["highest"] == pytest.approx(0.5)
    assert risk["journalist"]["average"] == pytest.approx((1 / 3 + 1 + 0.5 + 1) / 10)
    assert risk["marketer"] == pytest.approx((1 / 3 + 1 + 0.5 + 1) / 10)


def test_nulls_are_a_value_of_their_own() -> None:
    frame = pd.DataFrame({"a": ["x", None, None, "x"], "b": [None, None, None, None]})
    risk = measure_risk(frame, ["a", "b"])
    assert risk["classes"] == 2 and risk["k"] == 2


def test_no_quasi_identifiers_is_not_applicable() -> None:
    risk = measure_risk(_ten_rows(), [], sensitive_column="diagnosis")
    assert risk["note"] == NO_QI_NOTE == "n/a, no quasi-identifiers"
    assert risk["k"] is None and risk["l"] is None and risk["prosecutor"] is None and risk["marketer"] is None
    assert risk["records"] == 10


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        measure_risk(_ten_rows(), ["sex"], threshold=0)
    with pytest.raises(ValueError, match="sampling_fraction"):
        measure_risk(_ten_rows(), ["sex"], sampling_fraction=1.5)
    with pytest.raises(ValueError, match="not both"):
        measure_risk(_ten_rows(), ["sex"], sampling_fraction=0.5, weights=np.ones(10))
    with pytest.raises(ValueError, match="weights"):
        measure_risk(_ten_rows(), ["sex"], weights=np.zeros(10))
    with pytest.raises(KeyError, match="nope"):
        measure_risk(_ten_rows(), ["nope"])


def test_required_k_and_classes_to_drop() -> None:
    assert required_k(5, None) == 5
    assert required_k(5, 0.2) == 5 and required_k(5, 0.1) == 10 and required_k(5, 0.15) == 7
    assert required_k(12, 0.2) == 12
    # Classes of 95 and 5 records: 2/100 = 0.02; dropping the 5 gives 1/95 <= 0.015.
    ids = np.array([0] * 95 + [1] * 5)
    assert classes_to_drop(ids, 0.015).tolist() == [False, True]
    assert classes_to_drop(ids, 0.02).tolist() == [False, False]  # already met
    assert classes_to_drop(np.zeros(10, dtype=np.int64), 0.05).tolist() == [False]  # cannot be met: keep


def _ages() -> pd.DataFrame:
    """100 people, 20 distinct ages (20..39), 5 of each: 5-anonymous, average risk 20/100 = 0.2."""
    return pd.DataFrame({"age": np.repeat(np.arange(20, 40), 5), "x": np.arange(100)})


def test_a_table_that_meets_k_but_not_the_average_risk_is_generalized_further() -> None:
    met_k = k_anonymize(_ages(), {"age": "age"}, k=5)
    assert met_k.report["steps"] == [] and met_k.report["k_achieved"] == 5
    result = k_anonymize(_ages(), {"age": "age"}, k=5, max_average_risk=0.1)
    report = result.report
    assert [(s["column"], s["to"], s["for"]) for s in report["steps"]] == [("age", "5-year band", "average risk")]
    assert report["groups"] == 4 and report["k_achieved"] == 25  # bands 20-24 ... 35-39
    assert report["average_risk_achieved"] == pytest.approx(0.04) and report["suppressed_rows"] == 0


def test_the_highest_risk_threshold_raises_k() -> None:
    result = k_anonymize(_ages(), {"age": "age"}, k=5, max_highest_risk=0.1)
    assert result.report["k_required"] == 10 and result.report["k_achieved"] >= 10
    assert result.report["steps"][0]["for"] == "k"


def test_when_no_ladder_helps_the_smallest_classes_are_suppressed_for_the_average() -> None:
    frame = pd.DataFrame({"sex": ["男"] * 95 + ["女"] * 5})
    result = k_anonymize(frame, {"sex": "gender"}, k=5, max_average_risk=0.015)
    assert result.report["suppressed_for_average_risk"] == 5 and len(result.frame) == 95
    assert set(result.frame["sex"]) == {"男"}


def _policy(**risk: float) -> Policy:
    return Policy.model_validate(
        {"level": "L3", "k": 5, "max_suppression": 0.05, "quasi_identifiers": ["gender", "age"], "risk": risk}
    )


def test_pipeline_reports_risk_before_and_after_and_meets_the_threshold() -> None:
    frame = _ages().assign(sex=np.tile(["男", "女"], 50))
    types = {"age": "age", "sex": "gender", "x": None}
    result = desensitize_table(frame, types, _policy(highest=0.2, average=0.1), pepper=PEPPER)
    risk = result.report["risk"]
    assert risk["quasi_identifiers"] == ["age", "sex"]
    assert risk["threshold"] == {"highest": 0.2, "average": 0.1, "record_threshold": 0.2}
    # Raw: age x sex has 40 classes (ages of 5 alternate 男/女: sizes 3 and 2).
    assert risk["before"]["classes"] == 40 and risk["before"]["k"] == 2
    assert risk["before"]["prosecutor"]["average"] == pytest.approx(0.4)
    after = risk["after"]
    assert after["k"] >= 5 and after["prosecutor"]["highest"] <= 0.2 and after["prosecutor"]["average"] <= 0.1
    assert risk["met"] is True and risk["reason"] is None and risk["steps"]
    # The copy's risk, taken from the search's classes, equals a fresh measurement of the copy.
    assert after == measure_risk(result.frame, ["age", "sex"], threshold=0.2)
    assert set(result.report["seconds"]) >= {"risk", "utility"}


def test_pipeline_marks_a_copy_that_cannot_meet_the_threshold() -> None:
    frame = pd.DataFrame({"sex": ["男"] * 10, "age": [30] * 10})
    result = desensitize_table(frame, {"sex": "gender", "age": "age"}, _policy(average=0.05), pepper=PEPPER)
    risk = result.report["risk"]
    assert risk["after"]["prosecutor"]["average"] == pytest.approx(0.1)
    assert risk["met"] is False and "average prosecutor risk 0.1000 > 0.05" in risk["reason"]


def test_no_quasi_identifiers_reports_k_as_not_applicable() -> None:
    frame = pd.DataFrame({"code": [f"c{i}" for i in range(14)], "v": range(14)})
    result = desensitize_table(frame, {"code": None, "v": None}, load_policy("L3"), pepper=PEPPER)
    k = result.report["k_anonymity"]
    assert k["k_achieved"] is None and k["note"] == "n/a, no quasi-identifiers"
    risk = result.report["risk"]
    assert risk["before"]["k"] is None and risk["after"]["note"] == NO_QI_NOTE
    assert risk["met"] is True and risk["reason"] == NO_QI_NOTE


def test_policies_state_stricter_thresholds_at_higher_levels() -> None:
    l3, l4 = load_policy("L3").risk, load_policy("L4").risk
    assert load_policy("L1").risk is None and load_policy("L2").risk is None
    assert l3 is not None and l4 is not None
    assert l4.highest is not None and l3.highest is not None and l4.highest < l3.highest
    assert l4.average is not None and l3.average is not None and l4.average < l3.average
    assert math.ceil(1 / l3.highest) >= load_policy("L3").k


def test_risk_threshold_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="average cannot exceed highest"):
        Policy.model_validate({"level": "L3", "risk": {"average": 0.5, "highest": 0.1}})
    with pytest.raises(ValueError, match="greater than 0"):
        Policy.model_validate({"level": "L3", "risk": {"highest": 0}})
    path = tmp_path / "L3.json"
    path.write_text(json.dumps({"level": "L3", "risk": {"top": 0.1}}), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"risk\.top: unknown key"):
        load_policy("L3", path)
    # A policy without a threshold keeps its digest (no "risk": null in the canonical JSON).
    assert "risk" not in load_policy("L1").canonical_json()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(st.integers(18, 60), st.sampled_from(["男", "女"])), min_size=1, max_size=120),
    k=st.integers(1, 6),
    average=st.sampled_from([None, 0.05, 0.1, 0.3]),
)
def test_the_search_reports_what_a_fresh_measurement_finds(
    rows: list[tuple[int, str]], k: int, average: float | None
) -> None:
    frame = pd.DataFrame(rows, columns=["age", "sex"])
    result = k_anonymize(frame, {"age": "age", "sex": "gender"}, k=k, max_average_risk=average)
    report = result.report
    if not len(result.frame):
        assert report["k_achieved"] is None
        return
    fresh = measure_risk(result.frame, ["age", "sex"])
    assert report["k_achieved"] == fresh["k"] >= k
    assert report["average_risk_achieved"] == pytest.approx(fresh["prosecutor"]["average"])
    if average is not None and fresh["prosecutor"]["average"] > average + 1e-12:
        # Not met: only when no suppression of whole classes could meet it on the copy's classes.
        ids = class_ids(result.frame, ["age", "sex"])
        assert not classes_to_drop(ids, average).any()


def test_shipped_l4_policy_on_residents_meets_its_threshold() -> None:
    residents = synthetic.residents(3000, seed=5)
    types = {
        "姓名": "person_name", "公民身份号码": "cn_resident_id", "性别": "gender", "民族": "ethnicity",
        "出生日期": "birth_date", "手机号码": "cn_phone", "住址": "address", "户籍地": "household_region",
        "备注": None,
    }  # fmt: skip
    result = desensitize_table(residents, types, load_policy("L4"), pepper=PEPPER)
    risk = result.report["risk"]
    assert risk["before"]["sample_uniques_share"] > 0.9  # raw birth dates and addresses single people out
    assert risk["after"]["k"] >= 10 and risk["after"]["sample_uniques"] == 0
    assert risk["after"]["prosecutor"]["highest"] <= 0.1 and risk["after"]["prosecutor"]["average"] <= 0.05
    assert risk["after"]["prosecutor"]["records_above_threshold"] == 0.0
    assert risk["met"] is True and result.report["k_anonymity"]["k_required"] == 10
