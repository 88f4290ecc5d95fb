"""The distinct combinations of a table's coded columns, found once per set of columns.

Why: the guard glues cells of a row back together to find a key split over them
(``rules.identifiers``), and a 1M-row output has few distinct combinations of the columns it glues
(districts × age bands × sexes …) among its many rows. Finding them by hashing every row again for every
ordered pair and triple of columns cost most of the rule's second; here each unordered set of columns is
walked once (a mixed-radix key scattered into a bitmap when the key space is small, a hash otherwise),
and every order of the same columns is a permutation of the result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sandbox.guard.source import combine

#: Above this many possible combinations the bitmap would cost more than hashing the rows.
BITMAP_MAX = 1 << 24


class Combinations:
    """Distinct combinations of code columns (codes ``0..radix-1`` per row, no negatives)."""

    def __init__(self, codes: Sequence[np.ndarray], radices: Sequence[int]) -> None:
        self._codes = codes
        self._radices = radices
        self._seen: dict[tuple[int, ...], list[np.ndarray]] = {}

    def distinct(self, columns: Sequence[int]) -> list[np.ndarray]:
        """One code array per column of ``columns``, in that order: every distinct combination once."""
        ordered = tuple(sorted(columns))
        found = self._seen.get(ordered)
        if found is None:
            found = self._seen[ordered] = self._walk(ordered)
        return [found[ordered.index(column)] for column in columns]

    def _walk(self, columns: tuple[int, ...]) -> list[np.ndarray]:
        radices = [self._radices[i] for i in columns]
        if int(np.prod(radices, dtype=np.float64)) <= BITMAP_MAX:
            key = self._codes[columns[0]].astype(np.int64)
            for i, radix in zip(columns[1:], radices[1:], strict=True):
                key = key * radix + self._codes[i]
            present = np.zeros(int(np.prod(radices)), dtype=bool)
            present[key] = True
            keys = np.flatnonzero(present)
            parts: list[np.ndarray] = []
            for radix in reversed(radices):
                keys, part = np.divmod(keys, radix)
                parts.append(part)
            return parts[::-1]
        key = combine([(self._codes[i], radix) for i, radix in zip(columns, radices, strict=True)])[0]
        rows = first_rows(pd.factorize(key)[0])
        return [self._codes[i][rows] for i in columns]


def first_rows(groups: np.ndarray) -> np.ndarray:
    """The first row of each group id (ids 0..G-1 as ``pd.factorize`` numbers them)."""
    first = np.full(int(groups.max(initial=-1)) + 1, -1, dtype=np.int64)
    first[groups[::-1]] = np.arange(len(groups) - 1, -1, -1)
    return first
