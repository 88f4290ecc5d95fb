"""Soft SDC rules and the mitigations (ACRO defaults: min count 10, p% p=10, n-k n=2 k=90, df >= 10, 5,000 rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sandbox.sdc import SdcConfig, check_table, check_text, round_base, suppress_small_cells


def _rules(frame: pd.DataFrame, config: SdcConfig | None = None) -> set[str]:
    return {i.rule for i in check_table(frame, config)}


def test_frequency_table_small_and_zero_cells() -> None:
    ok = pd.DataFrame({"区县": ["尖山区", "岭东区"], "人数": [120, 45]})
    assert _rules(ok) == set()
    small = pd.DataFrame({"区县": ["尖山区", "岭东区", "宝山区"], "n": [120, 3, 0]})
    assert _rules(small) == {"sdc.min_cell_count", "sdc.zero_cell"}
    assert _rules(small, SdcConfig(min_cell_count=2, flag_zero_cells=False)) == set()


def test_magnitude_table_dominance() -> None:
    # total 100: top1 95 -> n-k (95+3 > 90) and p% (100-95-3 = 2 < 9.5) both fail
    frame = pd.DataFrame({"行业": ["a", "b"], "sum": [100.0, 100.0], "max": [95.0, 30.0], "top2": [3.0, 20.0]})
    issues = check_table(frame)
    assert {i.rule for i in issues} == {"sdc.p_percent", "sdc.nk_rule"}
    assert all("1 cell" in i.detail for i in issues)


def test_residual_degrees_of_freedom_column_and_text() -> None:
    assert _rules(pd.DataFrame({"term": ["x"], "coef": [0.3], "df_resid": [4]})) == {"sdc.residual_df"}
    assert _rules(pd.DataFrame({"term": ["x"], "coef": [0.3], "df_resid": [400]})) == set()
    assert check_text("Df Residuals:  7\nR-squared: 0.3")[0].rule == "sdc.residual_df"
    assert check_text("Df Residuals:  700") == []


def test_row_cap() -> None:
    frame = pd.DataFrame({"x": np.arange(5001) % 7})
    assert "sdc.row_cap" in _rules(frame)
    assert "sdc.row_cap" not in _rules(frame.head(5000))


def test_round_base_five() -> None:
    frame = pd.DataFrame({"g": ["a", "b", "c"], "n": [12, 13, 7]})
    assert round_base(frame)["n"].tolist() == [10, 15, 5]


def test_secondary_suppression_keeps_totals_from_restoring_cells() -> None:
    # A 2x3 table: one small cell per row would be restorable from the row total; secondary
    # suppression hides a second cell in each row and each column.
    frame = pd.DataFrame(
        {"sex": ["男", "男", "男", "女", "女", "女"], "band": ["a", "b", "c"] * 2, "n": [3, 40, 50, 60, 70, 80]}
    )
    out = suppress_small_cells(frame, "n", ["sex", "band"])
    hidden = out["n"].isna()
    assert hidden.iloc[0]  # the primary cell
    for dim in ("sex", "band"):
        per_group = hidden.groupby(frame[dim]).sum()
        assert not (per_group == 1).any(), per_group  # never exactly one hidden cell in a row/column
    assert check_table(out.dropna()) == []
