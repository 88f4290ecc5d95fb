"""Group sizes after raising one ladder a level, computed on the current classes instead of the rows.

Why: the greedy search of ``desensitize.kanonymity`` tries, at every step, each ladder one level up
and measures every row's group size; on a million rows each trial built a key over every column and
factorized it. When a ladder's next level is a function of its current one (every ladder that
coarsens: a year's band, a district's city), the rows of one current class all land in the same
class of the trial, so the trial's classes are found over one representative row per current class
(tens of thousands, not a million) and their sizes summed from the current class sizes. The sizes
per row are the same integers as counting the rows directly; a level that is not a function of the
one below is counted on the rows as before.

The classes one level up are kept too (``ids_after``): the search's next step starts from them
instead of numbering a million rows again (the same first-appearance numbering, see there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from desensitize.group_keys import dense_ids

__all__ = ["StepTrials"]


class _Ladder(Protocol):
    codes: list[np.ndarray]
    cards: list[int]


def coarsens(ladder: _Ladder, level: int) -> bool:
    """Whether ``ladder``'s level + 1 is a function of its level (rows sharing a code there share one above).

    Every level of a ladder is a function of level 0 (``desensitize.ladders``: labels per distinct
    value), so one row per level-0 code tells: far fewer than the rows when values repeat."""
    base = ladder.codes[0]
    one_row = np.full(ladder.cards[0], -1, dtype=np.int64)
    one_row[base] = np.arange(len(base), dtype=np.int64)  # some row holding each level-0 code
    rows = one_row[one_row >= 0]
    width = np.int64(ladder.cards[level + 1])
    pairs = np.unique(ladder.codes[level][rows] * width + ladder.codes[level + 1][rows])
    return len(np.unique(pairs // width)) == len(pairs)


class StepTrials:
    """The classes at ``levels`` and, per ladder, the row sizes one level up (``sizes``)."""

    def __init__(
        self,
        ladders: Sequence[_Ladder],
        levels: Sequence[int],
        n: int,
        rows: Callable[[Sequence[int]], np.ndarray],
        functional: Callable[[int, int], bool],
        ids: np.ndarray | None = None,
    ) -> None:
        """``ids``: the rows' classes at ``levels`` when known (``ids_after`` of the previous step)."""
        self._ladders, self._levels, self._rows, self._functional = ladders, list(levels), rows, functional
        if ids is None:
            current = [lad.codes[lv] for lad, lv in zip(ladders, levels, strict=True)]
            ids = dense_ids(current, [lad.cards[lv] for lad, lv in zip(ladders, levels, strict=True)], n)
        self._ids = ids
        self._merged: dict[int, np.ndarray] = {}
        self._counts = np.bincount(self._ids)
        first = np.ones(n, dtype=bool)
        if n:
            running = np.maximum.accumulate(self._ids)
            first[1:] = self._ids[1:] > running[:-1]  # ids follow first appearance: a new id starts a class
        self._reps = np.flatnonzero(first)  # one row per current class, in id order

    def sizes(self, index: int) -> np.ndarray:
        """Per row, its group's size with ladder ``index`` one level up (the others where they are)."""
        trial = list(self._levels)
        trial[index] += 1
        if not self._functional(index, self._levels[index]):
            return self._rows(trial)
        codes = [lad.codes[lv][self._reps] for lad, lv in zip(self._ladders, trial, strict=True)]
        cards = [lad.cards[lv] for lad, lv in zip(self._ladders, trial, strict=True)]
        merged = dense_ids(codes, cards, len(self._reps))
        self._merged[index] = merged
        per_class = np.bincount(merged, weights=self._counts).astype(np.int64)
        return np.asarray(per_class[merged][self._ids], dtype=np.int64)

    def ids_after(self, index: int) -> np.ndarray | None:
        """Per row, its class with ladder ``index`` one level up, numbered as ``dense_ids`` over the rows
        would (None: that trial was counted on the rows). Why the same: a row's class up there is its
        current class's (the level is a function of the current one), and each new class first appears
        at the first row of its first current class, which is that class's representative, in row order."""
        merged = self._merged.get(index)
        return None if merged is None else np.asarray(merged[self._ids], dtype=np.int64)
