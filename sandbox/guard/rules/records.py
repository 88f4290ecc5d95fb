"""Record-level data found by content, whatever the columns are called and however the table is turned.

Why by content: renaming ``公民身份号码`` to ``k``, reordering the columns, transposing the table or
adding a count column of ones does not make a list of people a statistic. A table is record-level
(hard: GB/T 37964-2019 — a record that singles out a person is not de-identified; 双鸭山 第五十四条 —
no raw records out) when, read either way round:

* its rows reproduce the copy's rows: several columns take their values from the copy's columns and
  the same combination repeats (one row per person, not one per group);
* a large share of its rows are combinations that fewer than the minimum cell count of the copy's
  rows share (unique people, or groups too small to publish: "frequency tables" of one row each);
* it holds a key: a column of mostly distinct values over many rows (a row number, an id);
* rows match the raw table's rows or quasi-identifier tuples (the fingerprints' row kinds).

Which copy columns a table column belongs to is decided by domains (``sandbox.guard.explain``);
columns the platform explained as aggregates are not values of the copy and are left out, and
columns that break the match (filler an attacker interleaves) are dropped greedily.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from desensitize.fingerprints import FingerprintError
from sandbox.guard.content import Content, Table
from sandbox.guard.context import Context
from sandbox.guard.explain import domain_candidates, groups_of, rows_repeat
from sandbox.guard.findings import HARD, Finding
from sandbox.guard.source import SourceColumn, SourceCopy

ROW_KINDS = ("rows_raw", "rows_desensitized", "qi_rows_raw", "qi_rows_desensitized")
#: A column belongs to a copy column when at least this share of its filled rows are that column's
#: values (filler rows or cells an attacker mixes in do not hide the rest).
MOSTLY = 0.5


def _sizes(source: SourceCopy, columns: list[SourceColumn], codes: list[np.ndarray]) -> np.ndarray:
    """Per table row: how many copy rows share its combination on ``columns`` (0 when none)."""
    group, t_group = groups_of(source, columns, codes)
    counts = np.bincount(group, minlength=int(group.max(initial=-1)) + 1)
    return np.where(t_group >= 0, counts[np.maximum(t_group, 0)], 0)


def _mapped(table: Table, ctx: Context, source: SourceCopy) -> list[tuple[int, SourceColumn, np.ndarray]]:
    """Table columns read as copy columns, most identifying first, filler dropped."""
    explanation = ctx.explanation(table)
    measures = {m.column for m in explanation.measures} if explanation is not None else set()
    keys = ctx.keyed(table)
    candidates = domain_candidates(keys, source, share=MOSTLY)
    pairs = [(i, c[0]) for i, c in enumerate(candidates) if c and i not in measures]
    pairs.sort(key=lambda p: -p[1].distinct)
    chosen: list[tuple[int, SourceColumn, np.ndarray]] = []
    matched = table.rows
    for i, column in pairs:
        codes = keys[i].into(column)
        trial = [*chosen, (i, column, codes)]
        now = int((_sizes(source, [c for _, c, _ in trial], [k for _, _, k in trial]) > 0).sum())
        if now >= 0.5 * matched or not chosen:
            chosen, matched = trial, now
    return chosen


def _shown(table: Table, ctx: Context) -> np.ndarray:
    """Rows that show something: a row whose every explained measure is suppressed discloses no size."""
    explanation = ctx.explanation(table)
    if explanation is None or not explanation.measures:
        return np.ones(table.rows, dtype=bool)
    sizes = np.stack([m.sizes for m in explanation.measures], axis=1)
    return ~np.all(np.isnan(sizes), axis=1)


def _against(table: Table, ctx: Context, source: SourceCopy, file: str, where: str) -> list[Finding]:
    chosen = _mapped(table, ctx, source)
    if not chosen:
        return []
    sizes = _sizes(source, [c for _, c, _ in chosen], [k for _, _, k in chosen])
    shown = _shown(table, ctx)
    matched = (sizes > 0) & shown
    threshold = ctx.config.sdc.min_cell_count
    rare = matched & (sizes < threshold)
    columns = ", ".join(str(i + 1) for i, _, _ in sorted(chosen, key=lambda c: c[0]))
    findings: list[Finding] = []
    floor = max(3, ctx.config.max_matching_rows + 1)
    if int(rare.sum()) >= floor and rare.sum() >= ctx.config.rare_row_share * matched.sum():
        findings.append(
            Finding(
                "record.rare_combinations",
                HARD,
                file,
                f"{where}rows",
                f"{int(rare.sum())} of {int(matched.sum())} row(s) describe combinations of columns {columns} that "
                f"fewer than {threshold} rows of dataset {source.name} share: a list of people, not of groups",
            )
        )
    identifying = len(chosen) >= 2 or chosen[0][1].distinct >= 0.5 * max(source.rows, 1)
    explained = ctx.explanation(table)
    if (
        identifying
        and int(matched.sum()) >= threshold
        and rows_repeat(ctx.keyed(table), [i for i, _, _ in chosen], matched)
        and not (explained is not None and explained.complete)
    ):
        findings.append(
            Finding(
                "record.source_rows",
                HARD,
                file,
                f"{where}rows",
                f"{int(matched.sum())} row(s) reproduce rows of dataset {source.name} on columns {columns}, "
                "one row per record: record-level data",
            )
        )
    return findings


def _key_like(table: Table, ctx: Context, file: str, where: str) -> list[Finding]:
    explanation = ctx.explanation(table)
    if table.rows < ctx.config.keylike_min_rows or (explanation is not None and explanation.complete):
        return []
    findings: list[Finding] = []
    for i, series in enumerate(table.columns):
        if pd.api.types.is_float_dtype(series.dtype) and not bool((series.dropna() % 1 == 0).all()):
            continue  # continuous measures are naturally distinct
        if series.nunique(dropna=True) >= ctx.config.keylike_distinct_share * table.rows:
            findings.append(
                Finding(
                    "record.key_like_column",
                    HARD,
                    file,
                    f"{where}column {i + 1}",
                    f"mostly distinct values over {table.rows} rows: a record key",
                )
            )
    return findings


def _fingerprint_rows(table: Table, ctx: Context, file: str, where: str) -> list[Finding]:
    findings: list[Finding] = []
    frame = table.frame()
    frame.columns = table.header if len(set(table.header)) == len(table.header) else frame.columns
    for name, prints in ctx.probe.prints.items():
        for kind in ROW_KINDS:
            wanted = prints.row_columns(kind)
            if not wanted or (not all(c in frame.columns for c in wanted) and frame.shape[1] != len(wanted)):
                continue
            try:
                hits = int(prints.contains_rows(frame.astype(object).where(frame.notna(), None), kind).sum())
            except (FingerprintError, KeyError, ValueError, TypeError):
                continue
            if hits > ctx.config.max_matching_rows:
                findings.append(
                    Finding(
                        "record.matching_rows",
                        HARD,
                        file,
                        f"{where}rows",
                        f"{hits} row(s) match {kind.replace('_', ' ')} of dataset {name}",
                    )
                )
    return findings


def check(content: Content, ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    for table in content.tables:
        readings = [table, ctx.turned(table)]
        for reading in (r for r in readings if r is not None and r.rows):
            where = "" if reading.location == "table" else f"{reading.location} "
            for source in ctx.sources:
                findings += _against(reading, ctx, source, content.file, where)
            findings += _key_like(reading, ctx, content.file, where)
        findings += _fingerprint_rows(table, ctx, content.file, "" if table.location == "table" else table.location)
    return findings


__all__ = ["check"]
