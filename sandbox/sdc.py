"""Soft rules of statistical disclosure control (SDC), and the mitigations an operator may apply.

Why soft: an aggregate that fails a threshold is not a raw record, but it may single out a small
group; the agency reviews it (双鸭山 rules: products are reviewed before release). The defaults are
SACRO/ACRO's so reviewers meet familiar rules: minimum cell count 10 and zero cells for frequency
tables, the p% rule (p = 10) and the n-k rule (n = 2, k = 90) for magnitude tables, residual degrees
of freedom >= 10 for regressions, and OpenSAFELY's level-4 cap of 5,000 rows. The mitigations are
GB/T 37964-2019 suppression (抑制) with secondary suppression, and rounding (a form of 泛化).
Everything here is vectorized over the table's columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

COUNT_NAMES = re.compile(r"^(n|count|counts|freq|frequency|size|人数|计数|数量|频数|户数|人次|样本量|obs|n_obs)$", re.I)
TOP_NAMES = re.compile(r"^(max|top1|largest|最大值|最大)$", re.I)
SECOND_NAMES = re.compile(r"^(top2|second|second_largest|次大值)$", re.I)
TOTAL_NAMES = re.compile(r"^(sum|total|合计|总额|总和)$", re.I)
DF_NAMES = re.compile(r"^(df|df_resid|df_residual|residual_df|自由度|残差自由度)$", re.I)
DF_TEXT = re.compile(r"(?:Df Residuals|df_resid|residual degrees of freedom|残差自由度)\s*[:=]?\s*(\d+)", re.I)


@dataclass(frozen=True, slots=True)
class SdcConfig:
    """Per-instance thresholds (all configurable; defaults as ACRO and OpenSAFELY)."""

    min_cell_count: int = 10
    flag_zero_cells: bool = True
    p_percent: float = 10.0
    nk_n: int = 2
    nk_k: float = 90.0
    min_residual_df: int = 10
    max_rows: int = 5000


@dataclass(frozen=True, slots=True)
class SoftIssue:
    """One soft problem of one table; the guard turns it into a finding (no cell value is echoed)."""

    rule: str
    location: str
    detail: str


def count_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding counts: by name, integer dtype, non-negative."""
    import pandas as pd

    found: list[str] = []
    for column in frame.columns:
        series = frame[column]
        if COUNT_NAMES.match(str(column)) and pd.api.types.is_numeric_dtype(series):
            found.append(str(column))
    return found


def _named(frame: pd.DataFrame, pattern: re.Pattern[str]) -> str | None:
    import pandas as pd

    for column in frame.columns:
        if pattern.match(str(column)) and pd.api.types.is_numeric_dtype(frame[column]):
            return str(column)
    return None


def check_table(frame: pd.DataFrame, config: SdcConfig | None = None) -> list[SoftIssue]:
    """Soft issues of one output table."""
    import numpy as np
    import pandas as pd

    config = config or SdcConfig()
    issues: list[SoftIssue] = []
    if len(frame) > config.max_rows:
        issues.append(
            SoftIssue("sdc.row_cap", "table", f"{len(frame)} rows exceed the cap of {config.max_rows} for review")
        )
    for column in count_columns(frame):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        small = int(np.sum((values > 0) & (values < config.min_cell_count)))
        zeros = int(np.sum(values == 0))
        if small:
            issues.append(
                SoftIssue(
                    "sdc.min_cell_count",
                    f"column {column}",
                    f"{small} cell(s) below the minimum count of {config.min_cell_count}",
                )
            )
        if zeros and config.flag_zero_cells:
            issues.append(SoftIssue("sdc.zero_cell", f"column {column}", f"{zeros} zero cell(s)"))
    top, second, total = _named(frame, TOP_NAMES), _named(frame, SECOND_NAMES), _named(frame, TOTAL_NAMES)
    if top and total:
        t1 = pd.to_numeric(frame[top], errors="coerce").to_numpy(dtype=float)
        t2 = pd.to_numeric(frame[second], errors="coerce").to_numpy(dtype=float) if second else np.zeros(len(frame))
        tot = pd.to_numeric(frame[total], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            p_fail = (tot - t1 - t2) < (config.p_percent / 100.0) * t1
            nk_fail = (t1 + (t2 if config.nk_n >= 2 else 0)) > (config.nk_k / 100.0) * tot
        if int(np.sum(p_fail)):
            issues.append(
                SoftIssue("sdc.p_percent", f"column {total}", f"{int(np.sum(p_fail))} cell(s) fail the p% rule")
            )
        if int(np.sum(nk_fail)):
            issues.append(SoftIssue("sdc.nk_rule", f"column {total}", f"{int(np.sum(nk_fail))} cell(s) fail n-k"))
    df_column = _named(frame, DF_NAMES)
    if df_column:
        df = pd.to_numeric(frame[df_column], errors="coerce")
        low = int((df < config.min_residual_df).sum())
        if low:
            issues.append(
                SoftIssue(
                    "sdc.residual_df",
                    f"column {df_column}",
                    f"{low} model(s) with residual degrees of freedom below {config.min_residual_df}",
                )
            )
    return issues


def check_text(text: str, config: SdcConfig | None = None) -> list[SoftIssue]:
    """Residual degrees of freedom stated in a text output (e.g. a statsmodels summary)."""
    config = config or SdcConfig()
    low = [int(m.group(1)) for m in DF_TEXT.finditer(text) if int(m.group(1)) < config.min_residual_df]
    if low:
        return [
            SoftIssue(
                "sdc.residual_df", "text", f"{len(low)} model(s) state residual df below {config.min_residual_df}"
            )
        ]
    return []


def round_base(frame: pd.DataFrame, columns: list[str] | None = None, base: int = 5) -> pd.DataFrame:
    """Counts rounded to the nearest multiple of ``base`` (ACRO's rounding option)."""
    import numpy as np
    import pandas as pd

    out = frame.copy()
    for column in columns if columns is not None else count_columns(frame):
        values = pd.to_numeric(out[column], errors="coerce")
        out[column] = (np.round(values / base) * base).astype(values.dtype if values.dtype.kind == "f" else "Int64")
    return out


def suppress_small_cells(
    frame: pd.DataFrame,
    count: str,
    by: list[str],
    *,
    threshold: int = 10,
    value_columns: list[str] | None = None,
) -> pd.DataFrame:
    """Primary suppression of cells below ``threshold`` and secondary suppression along each grouping.

    Why secondary: with row or column totals published, a lone suppressed cell in a row or column
    is restored by subtraction; so in every group of each dimension in ``by`` that has exactly one
    suppressed cell, the smallest other cell is suppressed too, repeated until stable. Suppressed
    cells become null in ``count`` and ``value_columns``.
    """
    import numpy as np
    import pandas as pd

    out = frame.copy().reset_index(drop=True)
    counts = pd.to_numeric(out[count], errors="coerce").to_numpy(dtype=float)
    hidden = (counts < threshold) & ~np.isnan(counts)
    changed = True
    while changed:
        changed = False
        for dim in by:
            keys = pd.factorize(out[dim])[0]
            hidden_per_group = np.bincount(keys, weights=hidden.astype(float), minlength=keys.max() + 1)
            members_per_group = np.bincount(keys, minlength=keys.max() + 1)
            lone = np.flatnonzero((hidden_per_group == 1) & (members_per_group > 1))
            for group in lone:
                candidates = np.flatnonzero((keys == group) & ~hidden)
                if len(candidates):
                    hidden[candidates[np.argmin(counts[candidates])]] = True
                    changed = True
    for column in [count, *(value_columns or [])]:
        out[column] = out[column].astype("Float64" if pd.api.types.is_numeric_dtype(out[column]) else object)
        out.loc[hidden, column] = pd.NA
    return out


def mitigations() -> dict[str, Any]:
    """What an operator may apply and re-check, by name."""
    return {"suppress_small_cells": suppress_small_cells, "round_base": round_base}


__all__ = [
    "SdcConfig",
    "SoftIssue",
    "check_table",
    "check_text",
    "count_columns",
    "mitigations",
    "round_base",
    "suppress_small_cells",
]
