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

from desensitize import FingerprintError
from sandbox.guard.content import Content, Table
from sandbox.guard.context import Context
from sandbox.guard.domains import copy_like_rows, domain_candidates, rows_repeat
from sandbox.guard.explain import groups_of
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
    """Table columns read as copy columns, most identifying first, filler dropped (once per table)."""
    key = ("records.mapped", id(table), source.name)
    if key not in ctx.memo:
        ctx.memo[key] = _map(table, ctx, source)
    mapped: list[tuple[int, SourceColumn, np.ndarray]] = ctx.memo[key]
    return mapped


def _map(table: Table, ctx: Context, source: SourceCopy) -> list[tuple[int, SourceColumn, np.ndarray]]:
    explanation = ctx.explanation(table)
    measures = {m.column for m in explanation.measures} if explanation is not None else set()
    keys = ctx.keyed(table)
    text = [not pd.api.types.is_numeric_dtype(c.dtype) for c in table.columns]
    likely = copy_like_rows(keys, source, text)
    candidates = domain_candidates(keys, source, share=MOSTLY, rows=likely if likely.any() else None)
    pairs = [(i, c[0]) for i, c in enumerate(candidates) if c and i not in measures]
    pairs.sort(key=lambda p: -p[1].distinct)
    chosen: list[tuple[int, SourceColumn, np.ndarray]] = []
    matched = table.rows
    for i, column in pairs:
        if any(column is c for _, c, _ in chosen):
            continue  # one copy column is one attribute: a second table column on it adds nothing
        codes = keys[i].into(column)
        trial = [*chosen, (i, column, codes)]
        now = int((_sizes(source, [c for _, c, _ in trial], [k for _, _, k in trial]) > 0).sum())
        if now >= 0.5 * matched or not chosen:
            chosen, matched = trial, now
    return chosen


def _against(
    table: Table, ctx: Context, source: SourceCopy, file: str, where: str, *, turned: bool = False
) -> list[Finding]:
    chosen = _mapped(table, ctx, source)
    if not chosen:
        return []
    if turned and len(chosen) < 2:
        return []  # a table read the other way round is a list of people only if its rows span attributes
    # Every listed row counts, its measures shown or suppressed: a row lists its combination either way.
    sizes = _sizes(source, [c for _, c, _ in chosen], [k for _, _, k in chosen])
    matched = sizes > 0
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
        if len(table.factorized(i)[1]) < ctx.config.keylike_distinct_share * table.rows:
            continue
        if pd.api.types.is_numeric_dtype(series.dtype) and not _numbering(series):
            continue  # distinct measures (rounded means, bounds) are no key; a numbering of the rows is
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


def _numbering(series: pd.Series) -> bool:
    """Whole numbers that number the rows: mostly steps of one once sorted (row_number(), an index)."""
    values = series.dropna().to_numpy(dtype=np.float64)
    if len(values) < 2 or not bool(np.all(values == np.floor(values))):
        return False
    steps = np.diff(np.sort(values))
    return bool(np.mean(steps == 1) >= 0.5)


def _by_content(table: Table, ctx: Context, file: str, where: str) -> list[Finding]:
    """Rows matching the fingerprints' row kinds once the table's columns are read as the copy's
    columns by their values (renamed and reordered columns of copy rows)."""
    findings: list[Finding] = []
    for source in ctx.sources:
        prints = ctx.probe.prints.get(source.name)
        if prints is None:
            continue
        chosen = {c.name: i for i, c, _ in _mapped(table, ctx, source)}
        for kind in ("rows_desensitized", "qi_rows_desensitized"):
            wanted = prints.row_columns(kind)
            if not wanted or not all(c in chosen for c in wanted):
                continue
            frame = pd.DataFrame({c: table.columns[chosen[c]].reset_index(drop=True) for c in wanted})
            try:
                hits = int(prints.contains_rows(frame.astype(object).where(frame.notna(), None), kind).sum())
            except (FingerprintError, KeyError, ValueError, TypeError):
                continue
            if hits > ctx.config.max_matching_rows and not _groups_only(table, ctx):
                findings.append(
                    Finding("record.matching_rows", HARD, file, f"{where}rows",
                            f"{hits} row(s) match {kind.replace('_', ' ')} of dataset {source.name}")
                )  # fmt: skip
    return findings


def _groups_only(table: Table, ctx: Context) -> bool:
    """A table the platform re-derived, rows one per group: its rows are groups, not people (their sizes
    are judged by the rarity rule and SDC, not by matching a row of the copy).

    A "group" of one copy row is that row: a dump of the copy whose numeric columns (band midpoints,
    years, issue 16) re-derive as the "mean" of one row each is a list of records, not of groups."""
    explanation = ctx.explanation(table)
    if explanation is None or not explanation.complete or not explanation.measures:
        return False
    singles = max(int((np.asarray(m.sizes) == 1).sum()) for m in explanation.measures)
    return singles <= ctx.config.max_matching_rows


def _shape(table: Table, ctx: Context, file: str, where: str) -> list[Finding]:
    """Headers are names, not content: very wide tables and long names are refused."""
    findings: list[Finding] = []
    config = ctx.config
    if len(table.header) > config.max_columns:
        detail = f"more than {config.max_columns} columns: a table of groups has rows, not columns"
        findings.append(Finding("table.shape", HARD, file, f"{where}header", detail))
    if any(len(h) > config.max_header_chars for h in table.header):
        detail = f"a column name longer than {config.max_header_chars} characters"
        findings.append(Finding("table.shape", HARD, file, f"{where}header", detail))
    return findings


def _fingerprint_rows(table: Table, ctx: Context, file: str, where: str) -> list[Finding]:
    if _groups_only(table, ctx):
        return []
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


def shape_findings(content: Content, ctx: Context) -> list[Finding]:
    """Tables too wide or with names too long: refused before any other rule spends time on them."""
    return [
        f
        for t in content.tables
        for f in _shape(t, ctx, content.file, "" if t.location == "table" else f"{t.location} ")
    ]


def _by_a_copy(table: Table, ctx: Context) -> bool:
    """Some reading of ``table`` is re-derived whole from one granted copy (not from a joined view)."""
    return any(
        (e := ctx.explanation(r)) is not None and e.complete and not e.source.members for r in ctx.readings(table)
    )


def check(content: Content, ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    for table in content.tables:
        where = "" if table.location == "table" else f"{table.location} "
        turned = ctx.turned(table)
        # A table of one copy's groups is not rare for being rare in a joined view (issue 23): the join
        # keeps only the persons found in every dataset, so an honest group of the copy shrinks there.
        sources = [s for s in ctx.sources if not (s.members and _by_a_copy(table, ctx))]
        for reading in (r for r in (table, turned) if r is not None and r.rows):
            at = "" if reading.location == "table" else f"{reading.location} "
            for source in sources:
                findings += _against(reading, ctx, source, content.file, at, turned=reading is turned)
            findings += _key_like(reading, ctx, content.file, at)
        findings += _fingerprint_rows(table, ctx, content.file, where)
        findings += _by_content(table, ctx, content.file, where)
    return findings


__all__ = ["check", "shape_findings"]
