"""SDC as ACRO computes it (issue 15, principle 7), checked on ACRO's own test data and the results its
table tests assert (AI-SDC/ACRO ``test/test_tables.py``): the guard re-derives the job's tables from
the copy (here ACRO's charities data) and finds the same cells. ACRO's defaults are Keyong's: minimum
cell 10, p% 10, n-k n = 2 k = 90%, zeros disclosive.

One deliberate difference: ACRO counts a cell's rows, the guard counts the contributors whose value
the cell aggregates (a mean over 5 non-missing incomes among 59 rows is a mean of 5). On ACRO's data
that flags one more cell of the mean table than ACRO does; every cell ACRO flags is flagged too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sandbox.guard import SourceCopy, judge

DATA = Path(__file__).parent / "data" / "acro_charities.parquet"


@pytest.fixture(scope="module")
def charities() -> pd.DataFrame:
    return pd.read_parquet(DATA)


def _judged(tmp: Path, name: str, table: pd.DataFrame, copy: pd.DataFrame, *, index: bool = True) -> dict[str, int]:
    """Cells flagged per rule when a job writes ``table`` as CSV from ``copy``."""
    tmp.mkdir(parents=True, exist_ok=True)
    table.to_csv(tmp / name, index=index)
    data = (tmp / name).read_bytes()
    outputs = [{"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    judged = judge(tmp, outputs, sources={"copy": SourceCopy.from_frame("copy", copy)})
    counts: dict[str, int] = {"verdict": {"pass": 0, "review": 1, "block": 2}[judged.verdict]}
    for finding in judged.findings:
        cells = int(finding.detail.split(" ")[0]) if finding.detail.split(" ")[0].isdigit() else 1
        counts[finding.rule] = counts.get(finding.rule, 0) + cells
    return counts


def test_frequency_crosstab_six_cells_below_threshold(charities: pd.DataFrame, tmp_path: Path) -> None:
    """ACRO test_crosstab_without_suppression: "MinimumThresholdCheck: fail - 6 cells"; R/G sums to 48."""
    table = pd.crosstab(charities.year, charities.grant_type)
    assert table["R/G"].sum() == 48
    found = _judged(tmp_path, "counts.csv", table, charities)
    assert found["sdc.min_cell_count"] == 6 and found["verdict"] == 1
    assert set(found) == {"verdict", "sdc.min_cell_count"}


def test_mean_crosstab_dominance_as_acro_counts_it(charities: pd.DataFrame, tmp_path: Path) -> None:
    """ACRO test_crosstab_multiple: NKCheck 1 cell, PPercentCheck 2 cells, MinimumThresholdCheck 6 cells."""
    table = pd.crosstab(charities.year, charities.grant_type, values=charities.inc_grants, aggfunc="mean")
    found = _judged(tmp_path, "means.csv", table, charities)
    assert found["sdc.nk_rule"] == 1
    assert found["sdc.p_percent"] == 2
    assert found["sdc.min_cell_count"] == 7  # ACRO's 6 (all R/G) + 2010/N: 5 incomes among 59 rows


def test_pivot_table_passes(charities: pd.DataFrame, tmp_path: Path) -> None:
    """ACRO test_pivot_table_without_suppression: mean and sum by grant type pass (a multi-row header)."""
    table = charities.pivot_table(index=["grant_type"], values=["inc_grants"], aggfunc=["mean", "sum"])
    assert table["mean"]["inc_grants"].sum() == pytest.approx(36293992.0, rel=1e-6)
    assert _judged(tmp_path, "pivot.csv", table, charities) == {"verdict": 0}


def test_negative_values_make_dominance_undefined(charities: pd.DataFrame, tmp_path: Path) -> None:
    """ACRO test_tables_negatives: review, "Dominance not defined when negative value are present"."""
    negative = charities.copy()
    negative.loc[0:10, "inc_grants"] = -10
    table = pd.crosstab(negative.year, negative.grant_type, values=negative.inc_grants, aggfunc="mean")
    found = _judged(tmp_path, "neg.csv", table, negative)
    assert found["verdict"] == 1 and found["sdc.dominance_undefined"] >= 1


def test_a_cell_whose_contributors_are_all_zero_fails_p_percent(tmp_path: Path) -> None:
    """ACRO's p% rule: with top1 == 0 the ratio is (total - top1 - top2) = 0 < p: all-zero cells reveal
    every contributor's value."""
    rng = np.random.default_rng(3)
    copy = pd.DataFrame({"区县": ["甲"] * 20 + ["乙"] * 20, "金额": np.r_[np.zeros(20), rng.uniform(100, 110, 20)]})
    table = copy.groupby("区县")["金额"].sum().reset_index()
    found = _judged(tmp_path, "sums.csv", table, copy, index=False)
    assert found["sdc.p_percent"] == 1 and "sdc.nk_rule" not in found


def test_n_k_uses_greater_or_equal(tmp_path: Path) -> None:
    """ACRO: ``top_n_sum / sum >= k``. Two contributors holding exactly 90% of a cell fail."""
    rest = [1.0] * 18  # 18 others hold 18 of 180
    copy = pd.DataFrame({"g": ["a"] * 20 + ["b"] * 20, "v": [81.0, 81.0, *rest] + [10.0] * 20})
    table = copy.groupby("g")["v"].sum().reset_index()
    found = _judged(tmp_path, "t.csv", table, copy, index=False)
    assert found.get("sdc.nk_rule") == 1
