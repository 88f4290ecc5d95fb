"""Kept attributes that split the k classes become quasi-identifiers (desensitize.splits; red team 23 F1-F3),
and reasons that print as nothing are refused (F6)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from desensitize.kanonymity import group_sizes
from desensitize.keys import visible_reason
from desensitize.pipeline import desensitize_table
from desensitize.policy import load_policy
from desensitize.splits import SPLITS, splitting

PEPPER = b"test-splits-pepper-0123456789abcdef"


def _people(n: int = 1200, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    born = pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 60 * 365, n), unit="D")
    return pd.DataFrame(
        {
            "身份证号": [f"23050{i:013d}" for i in range(n)],
            "性别": rng.choice(["男", "女"], n),
            "出生日期": born,
        }
    )


TYPES = {"身份证号": "cn_resident_id", "性别": "gender", "出生日期": "birth_date"}


def _qis(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["column"]: q for q in report["k_anonymity"]["quasi_identifiers"]}


def test_a_birth_month_as_an_integer_column_splits_the_classes_and_is_banded() -> None:
    """F3 closed by the same mechanism: 出生月 (1-12, an integer: numbers stay numbers, never a date) splits the
    L4 classes (birth year bands x sex), so it is a quasi-identifier of basis ``splits classes`` on the number
    ladder: generalized (a band or suppressed) until k holds with it, never kept at month precision."""
    raw = _people()
    born = raw["出生日期"]
    raw["出生年"], raw["出生月"] = born.dt.year, born.dt.month
    types = {"身份证号": "cn_resident_id", "性别": "gender"}
    result = desensitize_table(raw.drop(columns="出生日期"), types, load_policy("L4"), pepper=PEPPER)
    qis = _qis(result.report)
    assert qis["出生月"]["basis"] == SPLITS and qis["出生月"]["ladder_type"] == "number"
    assert qis["出生月"]["level"] >= 1  # banded or suppressed: the month itself is gone
    assert result.frame["出生月"].nunique(dropna=True) < 12
    k = result.report["k_anonymity"]
    assert int(group_sizes(result.frame, list(qis)).min()) >= k["k_required"]
    splits = k["splits"]
    assert splits["rounds"] >= 1 and "出生月" in {a["column"] for a in splits["added"]}


def test_a_category_that_does_not_split_the_classes_stays_as_it_is() -> None:
    """A kept category whose every value is common within every class is measured, not made a quasi-identifier:
    the rule is the data's, not a distinct count."""
    raw = _people()
    raw["是否"] = np.where(np.arange(len(raw)) % 2 == 0, "是", "否")
    raw["出生日期"] = pd.Timestamp("1980-06-01")  # one class per sex: 600 rows each
    result = desensitize_table(raw, TYPES, load_policy("L4"), pepper=PEPPER)
    assert "是否" not in _qis(result.report)
    assert set(result.frame["是否"]) == {"是", "否"}
    assert result.report["k_anonymity"]["splits"]["rounds"] == 0


def test_two_columns_that_split_only_together_are_caught() -> None:
    """Fail closed: neither column splits a class below k alone, but their combination does: one joins."""
    frame = pd.DataFrame({"a": ["x", "y"] * 20, "b": ["p"] * 10 + ["q"] * 10 + ["p"] * 10 + ["q"] * 10})
    frame.loc[0, "b"] = "q"  # (x, q) has 11 rows and (x, p) 9
    classes = np.zeros(len(frame), dtype=np.int64)
    assert splitting(frame, classes, ["a", "b"], 10) == {"a": {"smallest_class": 9, "alone": False}}
    assert set(splitting(frame, classes, ["a", "b"], 10, last=True)) == {"a", "b"}
    assert splitting(frame, classes, ["a", "b"], 9) == {}


def test_a_ruling_keeps_a_splitting_column_out_and_the_report_says_it_would_have_split() -> None:
    """The custodian's ledgered ruling is the one way out; the report states what it keeps out."""
    raw = _people()
    raw["状态"] = np.where(np.arange(len(raw)) % 7 == 0, "暂停", "正常")
    result = desensitize_table(raw, TYPES, load_policy("L4"), pepper=PEPPER, not_quasi={"状态": "分析标签"})
    assert "状态" not in _qis(result.report)
    ruling = result.report["quasi_identifier_rulings"][0]
    assert ruling == {"column": "状态", "reason": "分析标签", "was": SPLITS}
    without = desensitize_table(raw, TYPES, load_policy("L4"), pepper=PEPPER)
    assert _qis(without.report)["状态"]["basis"] == SPLITS


def test_masked_surnames_that_split_are_masked_whole_and_public_levels_are_not_measured() -> None:
    raw = _people(600)
    rng = np.random.default_rng(2)
    raw["姓名"] = [
        f"{s}{g}"
        for s, g in zip(rng.choice(list("王李张刘陈杨赵黄周吴"), 600), rng.choice(list("伟芳娜敏静"), 600), strict=True)
    ]
    types = {**TYPES, "姓名": "person_name"}
    result = desensitize_table(raw, types, load_policy("L3"), pepper=PEPPER)
    name = _qis(result.report)["姓名"]
    assert name["basis"] == SPLITS and name["ladder_type"] == "masked_name"
    assert result.frame["姓名"].str.endswith("*").all()
    public = desensitize_table(raw, types, load_policy("L2"), pepper=PEPPER)
    assert public.report["k_anonymity"]["quasi_identifiers"] == []
    assert public.report["k_anonymity"]["splits"]["rounds"] == 0


@pytest.mark.parametrize(
    "blank", ["\u3164", "\u115f", "\u1160", "\uffa0", "\u2800", "\u034f", "\u0301\u0301", "\u3164\u034f \u2800"]
)
def test_reasons_that_print_as_nothing_are_refused(blank: str) -> None:
    assert not visible_reason(blank)


@pytest.mark.parametrize("reason", ["业务需要", "e\u0301", "—", "1", "ok", "\u3164理由"])
def test_reasons_with_something_that_prints_are_accepted(reason: str) -> None:
    assert visible_reason(reason)
