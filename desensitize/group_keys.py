"""Rows' tuples of integer codes as one integer key: the grouping under k-anonymity's sizes and classes.

Why one owner: the class sizes a round tests (``desensitize.kanonymity``), the classes it keeps and the trials
of each candidate step (``desensitize.step_trials``) must group rows the same way; a mixed-radix key (each
column's codes in ``0 .. card - 1``) is a bijection of the tuple, re-densified only before it would overflow
64 bits, so one ``factorize`` of it numbers the groups as factorizing column by column would.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["dense_ids", "mixed_key"]


def mixed_key(codes: Sequence[np.ndarray], cards: Sequence[int], n: int) -> tuple[np.ndarray, int]:
    """One int64 per row equal for equal tuples of ``codes`` over ``n`` rows, and the key's span (its bound)."""
    key = np.zeros(n, dtype=np.int64)
    span = 1
    for column, card in zip(codes, cards, strict=True):
        if span * card >= 2**62:
            key = pd.factorize(key)[0].astype(np.int64)
            span = int(key.max()) + 1 if n else 1
        key = key * card + column
        span *= card
    return key, span


def dense_ids(codes: Sequence[np.ndarray], cards: Sequence[int], n: int) -> np.ndarray:
    """Per row, a dense id of its tuple of ``codes``, numbered in order of first appearance."""
    key, _ = mixed_key(codes, cards, n)
    return np.asarray(pd.factorize(key)[0], dtype=np.int64)
