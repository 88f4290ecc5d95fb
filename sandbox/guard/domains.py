"""Which copy columns a table column belongs to, by the values it holds (``sandbox.guard.explain``,
``sandbox.guard.rules.records``).

Why by domain and not by name: column names prove nothing, so a column is tied to the copy column
whose distinct values hold all of its own (tying a table of groups to the copy), or most of them
beyond what chance gives (finding records mixed with an attacker's filler rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sandbox.guard.source import KeyedColumn, SourceColumn, SourceCopy, combine

#: Half-width of the neighbourhood in which a whole-number domain's density is measured.
DENSITY_WINDOW = 50
#: Rows of a large column a share of domain membership is measured on.
SAMPLE_ROWS = 20_000


def copy_like_rows(keys: list[KeyedColumn], source: SourceCopy, text: list[bool]) -> np.ndarray:
    """Rows at least half of whose text cells (and two) are values of the copy: rows an attacker's
    filler rows would otherwise dilute. Only text counts: numbers land in a dense numeric domain by
    chance, and rows chosen by such chance would make every coincidence look like a match."""
    if not keys or sum(text) < 2:
        return np.ones(len(keys[0].codes) if keys else 0, dtype=bool)
    score = np.zeros(len(keys[0].codes), dtype=np.int64)
    for column, is_text in zip(keys, text, strict=True):
        if len(column.keys) == 0 or not is_text:
            continue
        known = np.zeros(len(column.keys), dtype=bool)
        for c in source.columns:
            known |= c.keys.get_indexer(column.keys) >= 0
        score += np.where(column.codes >= 0, known[np.maximum(column.codes, 0)], False)
    return score >= max(2, (sum(text) + 1) // 2)


def domain_candidates(
    keys: list[KeyedColumn], source: SourceCopy, *, share: float = 1.0, rows: np.ndarray | None = None
) -> list[list[SourceColumn]]:
    """Per table column: the copy columns whose domain holds its (non-margin) values, tightest first.

    ``share`` 1.0 (tying a table to the copy): every value. Less (finding records by content): at
    least that share of the column's filled rows among ``rows`` (default all), so filler an attacker
    mixes in does not hide them."""
    found: list[list[SourceColumn]] = []
    for column in keys:
        distinct = column.values()
        if len(distinct) == 0:
            found.append([])
            continue
        if share >= 1.0:
            fits = [
                c
                for c in source.columns
                if c.distinct >= len(distinct) and bool((c.keys.get_indexer(distinct) >= 0).all())
            ]
        else:
            codes = column.codes[(column.codes >= 0) & (rows if rows is not None else True)]
            if len(codes) > SAMPLE_ROWS:  # a sample first: a column far from the share costs no full lookup
                codes = codes[np.linspace(0, len(codes) - 1, SAMPLE_ROWS).astype(np.int64)]
            used = np.unique(codes)
            fits = []
            for c in source.columns:
                inside = np.zeros(len(column.keys), dtype=bool)
                inside[used] = c.keys.get_indexer(column.keys[used]) >= 0
                rate = inside[codes].sum() / max(len(codes), 1)
                if inside.any() and rate >= share and rate >= _beyond_chance(column, used, codes, c):
                    fits.append(c)
        found.append(sorted(fits, key=lambda c: c.distinct))
    return found


def _beyond_chance(column: KeyedColumn, used: np.ndarray, codes: np.ndarray, source: SourceColumn) -> float:
    """The share of a numeric column's rows that must lie in a numeric copy column's domain to show it
    holds that column's values: halfway from what chance gives (how dense the domain is around each
    value: computed bounds of rounded incomes land on someone's income often) to all of them."""
    if source.sorted_numbers is None or len(source.sorted_numbers) == 0:
        return 0.0
    values = pd.to_numeric(pd.Series(column.keys[used], dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        return 0.0
    domain = source.sorted_numbers
    whole = bool(np.all(domain == np.floor(domain)))
    if not whole:
        return 0.0  # a continuous domain: landing on one of its values by chance is unlikely
    window = DENSITY_WINDOW
    near = np.searchsorted(domain, values + window, side="right") - np.searchsorted(
        domain, values - window, side="left"
    )
    density = np.zeros(len(column.keys))
    density[used] = near / (2 * window + 1)
    expected = float(density[codes].mean()) if len(codes) else 0.0
    return expected + (1.0 - expected) / 2


def rows_repeat(keys: list[KeyedColumn], columns: list[int], rows: np.ndarray | None = None) -> bool:
    """Do two rows (of ``rows``, default all) share their keys in ``columns``?"""
    if not keys:
        return False
    count = len(keys[0].codes) if rows is None else int(rows.sum())
    if not columns:
        return count > 1
    combined = combine([(keys[i].codes + 1, len(keys[i].keys) + 1) for i in columns])[0]
    if rows is not None:
        combined = combined[rows]
    return bool(pd.Series(combined).duplicated().any())


__all__ = ["DENSITY_WINDOW", "SAMPLE_ROWS", "copy_like_rows", "domain_candidates", "rows_repeat"]
