"""Differencing across releases: totals that, with a total already released, isolate a small group.

Why (ACRO's "linked tables" review, SACRO's differencing warning): two releases from the same copy
whose totals differ by fewer than the minimum cell count describe, by subtraction, a group too
small to publish (the employees of one employer, minus one). The guard compares each output's
totals with those of every product already released from the same datasets, by any operator, and
sends near pairs to review naming the earlier product; the reviewer decides whether the two really
describe nested groups.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sandbox.guard.content import Content
from sandbox.guard.context import Context
from sandbox.guard.explain import Explanation
from sandbox.guard.findings import SOFT, Finding
from sandbox.guard.readers import TABULAR, read_output
from sandbox.guard.source import KeyedColumn

#: Tables up to this many rows count every whole-number cell as a total; larger ones only their column sums.
TOTALS_SMALL_TABLE_ROWS = 20
#: At most this many totals are kept per file (a huge table's cells are not totals).
MAX_TOTALS = 10_000

#: ``released(dataset) -> [(product name, [artifact paths])]``: what was already released from a dataset.
Released = Callable[[str], Sequence[tuple[str, Sequence[Path]]]]


def aggregate_totals(frame: pd.DataFrame, *, small_table_rows: int = TOTALS_SMALL_TABLE_ROWS) -> np.ndarray:
    """The totals an aggregate output states: whole, non-negative numbers of a small table's cells, and
    the column sums of every whole-number column (the total a reader can always compute)."""
    found: list[np.ndarray] = []
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        values = values[values.notna()]
        if values.empty or len(values) < 0.9 * len(frame):
            continue
        numbers = values.to_numpy(dtype=np.float64)
        if not (np.all(numbers >= 0) and np.all(numbers == np.floor(numbers))):
            continue
        if len(frame) <= small_table_rows:
            found.append(numbers)
        found.append(np.array([numbers.sum()]))
    if not found:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(found).astype(np.int64))[:MAX_TOTALS]


def content_totals(content: Content) -> np.ndarray:
    found = [np.zeros(0, dtype=np.int64)] + [aggregate_totals(t.frame()) for t in content.tables if not t.nested]
    return np.unique(np.concatenate(found))


def totals_of_files(paths: Iterable[Path]) -> np.ndarray:
    """The totals of a released product's tabular artifacts (unreadable or non-tabular files give none)."""
    found = [np.zeros(0, dtype=np.int64)]
    for path in paths:
        if path.suffix.lower() in TABULAR and path.is_file():
            content = read_output(path, path.name)
            if not content.findings:
                found.append(content_totals(content))
    return np.unique(np.concatenate(found))


def nested_differences(
    explanation: Explanation, keys: list[KeyedColumn], sizes: np.ndarray, ctx: Context, file: str, where: str
) -> list[Finding]:
    """Rows of one table whose groups nest (a margin row and a row inside it) and whose sizes differ by
    fewer than the minimum cell count: subtracting one from the other isolates that handful of records
    (ACRO's secondary suppression guards a crosstab's margins against exactly this)."""
    threshold = ctx.config.sdc.min_cell_count
    if len(explanation.groupings) < 2 or len(explanation.dims) > 6:
        return []
    codes = [keys[i].into(column) for i, column in explanation.dims]
    margins = [keys[i].margins() for i, _ in explanation.dims]
    index: dict[tuple[int | None, ...], float] = {}
    rows: list[tuple[tuple[int | None, ...], float]] = []
    for r in range(len(sizes)):
        constraint = tuple(None if margins[d][r] else int(codes[d][r]) for d in range(len(codes)))
        index.setdefault(constraint, sizes[r])
        rows.append((constraint, sizes[r]))
    pairs = 0
    for constraint, size in rows:
        fixed = [d for d, value in enumerate(constraint) if value is not None]
        for count in range(len(fixed)):
            for dropped in itertools.combinations(fixed, len(fixed) - count):
                parent = tuple(None if d in dropped else v for d, v in enumerate(constraint))
                if parent != constraint and parent in index and 0 < index[parent] - size < threshold:
                    pairs += 1
    if not pairs:
        return []
    detail = f"{pairs} pair(s) of rows, one group inside the other, differ by fewer than {threshold} records"
    return [Finding("sdc.differencing", SOFT, file, f"{where}rows", f"{detail}: subtraction isolates them")]


def differencing_findings(
    totals: np.ndarray, file: str, earlier: Sequence[tuple[str, np.ndarray]], threshold: int
) -> list[Finding]:
    """Totals that, with a total already released from the same dataset (by any operator), isolate a group
    smaller than ``threshold``: two totals of at least ``threshold`` whose difference is between 1 and
    ``threshold - 1``. A soft finding naming the earlier product."""
    findings: list[Finding] = []
    mine = totals[totals >= threshold]
    if len(mine) == 0:
        return findings
    for product, released in earlier:
        theirs = np.sort(released[released >= threshold])
        if len(theirs) == 0:
            continue
        near = np.searchsorted(theirs, mine + threshold, side="left") - np.searchsorted(
            theirs, mine - threshold, side="right"
        )
        equal = np.searchsorted(theirs, mine, side="right") - np.searchsorted(theirs, mine, side="left")
        hits = int(((near - equal) > 0).sum())
        if hits:
            findings.append(
                Finding(
                    "sdc.differencing",
                    SOFT,
                    file,
                    "totals",
                    f"{hits} total(s) differ from totals released in product {product!r} by fewer than {threshold}: "
                    "together they may isolate a group below the threshold",
                )
            )
    return findings


__all__ = [
    "MAX_TOTALS",
    "TOTALS_SMALL_TABLE_ROWS",
    "Released",
    "aggregate_totals",
    "content_totals",
    "differencing_findings",
    "nested_differences",
    "totals_of_files",
]
