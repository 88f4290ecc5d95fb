"""Statistical tables: pass only when the platform accounts for every cell, then SDC as ACRO computes it.

Why: ``pass`` means the platform itself can derive the table from the copy (``sandbox.guard.explain``)
— anything else goes to the agency's review (soft), never out unseen. Of a table the platform
derived, it knows every cell's contributors, so the rules of statistical disclosure control run on
the platform's own counts, not on what a column is called (SACRO/ACRO's defaults, ``sandbox.sdc``):

* minimum cell count: a cell shown with fewer than 10 contributors; zeros where zeros disclose;
* dominance for magnitude cells (sums, means, medians), from the copy's own values per group: the
  p% rule ``(total - x1 - x2) < p·x1`` (a cell whose contributors are all zero fires: ACRO does, it
  reveals every value) and the n-k rule ``x1 + x2 >= k·total`` (ACRO's ``>=``); negative values
  make dominance undefined (ACRO: review);
* a minimum or maximum is one person's value (review);
* residual degrees of freedom of models, and OpenSAFELY's 5,000-row cap.

DP answers the platform signed need none of this: their noise is the protection (issue 8).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sandbox.guard.content import Content, Table
from sandbox.guard.context import Context
from sandbox.guard.explain import EXTREME, MAGNITUDE, Explanation, Measure
from sandbox.guard.findings import SOFT, Finding
from sandbox.guard.labels import unaccounted
from sandbox.guard.rules.differencing import nested_differences
from sandbox.sdc import check_table


def _soft(rule: str, file: str, location: str, detail: str) -> Finding:
    return Finding(rule, SOFT, file, location, detail)


def dominance(explanation: Explanation, measure: Measure) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per table row: (largest, second largest, total, negatives) of the measure's column in its group."""
    rows = len(measure.sizes)
    top1, top2, total, negative = (np.zeros(rows) for _ in range(4))
    column = measure.source
    if column is None or column.numbers is None:
        return top1, top2, total, negative
    for table_rows, grouped, t_group in explanation.groupings:
        group = grouped
        if measure.condition is not None:  # a wide table's column: only the copy rows of its value
            group = np.where(measure.condition[0].codes == measure.condition[1], grouped, -1)
        frame = pd.DataFrame({"g": group, "v": column.numbers}).dropna()
        frame = frame[frame["g"] >= 0]
        ranked = frame.sort_values(["g", "v"], ascending=[True, False])
        ranked["rank"] = ranked.groupby("g").cumcount()
        count = int(group.max(initial=-1)) + 2
        first = np.zeros(count)
        second = np.zeros(count)
        for rank, target in ((0, first), (1, second)):
            picked = ranked[ranked["rank"] == rank]
            target[picked["g"].to_numpy()] = picked["v"].to_numpy()
        sums = np.bincount(frame["g"], weights=frame["v"], minlength=count)
        negatives = np.bincount(frame["g"], weights=(frame["v"] < 0).astype(float), minlength=count)
        at = np.where(t_group >= 0, t_group, count - 1)
        top1[table_rows], top2[table_rows], total[table_rows], negative[table_rows] = (
            first[at], second[at], sums[at], negatives[at]
        )  # fmt: skip
    return top1, top2, total, negative


def _measure_findings(explanation: Explanation, measure: Measure, ctx: Context, file: str, where: str) -> list[Finding]:
    sdc = ctx.config.sdc
    location = f"{where}column {measure.column + 1}"
    shown = ~np.isnan(measure.sizes)
    sizes = measure.sizes[shown]
    findings: list[Finding] = []
    small = int(((sizes > 0) & (sizes < sdc.min_cell_count)).sum())
    if small:
        findings.append(
            _soft("sdc.min_cell_count", file, location, f"{small} cell(s) of fewer than {sdc.min_cell_count} records")
        )
    zeros = int((sizes == 0).sum())
    if zeros and sdc.flag_zero_cells:
        findings.append(_soft("sdc.zero_cell", file, location, f"{zeros} cell(s) with no records"))
    if measure.kind == EXTREME:
        findings.append(_soft("sdc.extreme_value", file, location, f"{measure.what}: each cell is one record's value"))
    if measure.kind == MAGNITUDE:
        findings += _dominance_findings(explanation, measure, shown, ctx, file, location)
    return findings


def _dominance_findings(
    explanation: Explanation, measure: Measure, shown: np.ndarray, ctx: Context, file: str, location: str
) -> list[Finding]:
    sdc = ctx.config.sdc
    top1, top2, total, negative = (a[shown] for a in dominance(explanation, measure))
    if bool((negative > 0).any()):
        return [_soft("sdc.dominance_undefined", file, location, "negative values: dominance is not defined")]
    rest = total - top1 - top2
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(top1 == 0, rest, rest / np.where(top1 == 0, 1, top1))
        nk = (top1 + (top2 if sdc.nk_n >= 2 else 0)) / total
    findings: list[Finding] = []
    p_cells = int((ratio < sdc.p_percent / 100.0).sum())
    if p_cells:
        findings.append(
            _soft("sdc.p_percent", file, location, f"{p_cells} cell(s) fail the p% rule (p = {sdc.p_percent:g})")
        )
    nk_cells = int((nk >= sdc.nk_k / 100.0).sum())
    if nk_cells:
        findings.append(
            _soft(
                "sdc.nk_rule",
                file,
                location,
                f"{nk_cells} cell(s) fail the n-k rule (n = {sdc.nk_n}, k = {sdc.nk_k:g})",
            )
        )
    return findings


def table_findings(table: Table, ctx: Context, file: str) -> list[Finding]:
    """Soft findings of one table: unaccounted, or the SDC rules over the platform's own counts."""
    where = "" if table.location == "table" else f"{table.location} "
    frame = table.frame()
    findings: list[Finding] = []
    if table.rows > ctx.config.sdc.max_rows:
        return [_soft("sdc.row_cap", file, f"{where}table", f"{table.rows} rows exceed {ctx.config.sdc.max_rows}")]
    findings += [_soft(i.rule, file, f"{where}{i.location}", i.detail) for i in check_table(frame, ctx.config.sdc)
                 if i.rule == "sdc.residual_df"]  # fmt: skip
    explanation = ctx.explanation(table)
    for other in ctx.readings(table)[1:]:  # turned, or without a multi-row header
        if explanation is not None and explanation.complete:
            break
        tied = ctx.explanation(other)
        if tied is not None and tied.complete:
            table, explanation, where = other, tied, f"{other.location} "
    if explanation is None:
        detail = "a table the platform cannot tie to a granted copy: a person checks it"
        return [*findings, _soft("table.unaccounted", file, f"{where}table", detail)]
    if not explanation.complete:
        reason = explanation.problem or (
            f"column {explanation.unexplained[0] + 1} cannot be derived by re-aggregating dataset "
            f"{explanation.source.name}"
        )
        return [*findings, _soft("table.unaccounted", file, f"{where}table", f"{reason}: a person checks it")]
    labels = unaccounted(table.header, ctx)
    if labels:
        detail = f"column {labels[0] + 1}'s name is not accounted for (not the copy's, nor the job's own words)"
        return [*findings, _soft("table.unaccounted", file, f"{where}header", f"{detail}: a person checks it")]
    findings += nested_differences(explanation, ctx.keyed(table), row_sizes(explanation, table.rows), ctx, file, where)
    if not explanation.measures:
        return findings + _group_list(explanation, table, ctx, file, where)
    for measure in explanation.measures:
        findings += _measure_findings(explanation, measure, ctx, file, where)
    return findings


def row_sizes(explanation: Explanation, rows: int) -> np.ndarray:
    """Per table row: the number of copy rows in its group."""
    sizes = np.zeros(rows)
    for members, group, t_group in explanation.groupings:
        counts = np.bincount(group, minlength=int(group.max(initial=-1)) + 2)
        sizes[members] = counts[np.where(t_group >= 0, t_group, len(counts) - 1)]
    return sizes


def _group_list(explanation: Explanation, table: Table, ctx: Context, file: str, where: str) -> list[Finding]:
    """A table of groups without measures still says each group exists: its sizes must be publishable."""
    sizes = row_sizes(explanation, table.rows)
    small = int((sizes < ctx.config.sdc.min_cell_count).sum())
    if not small:
        return []
    return [_soft("sdc.min_cell_count", file, f"{where}rows", f"{small} listed group(s) of fewer than "
                  f"{ctx.config.sdc.min_cell_count} records")]  # fmt: skip


def check(content: Content, ctx: Context) -> list[Finding]:
    if content.signed:
        return []
    findings: list[Finding] = []
    for table in content.tables:
        findings += table_findings(table, ctx, content.file)
    return findings


__all__ = ["check", "dominance", "table_findings"]
