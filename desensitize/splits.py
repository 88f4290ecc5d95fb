"""Kept attributes that split the k-anonymous classes are quasi-identifiers too (issue 23, red team 23).

Why: the default rules of ``desensitize.quasi`` decide column by column, before k-anonymity, on a
column's type, name or count of distinct values. Red team 23 kept what they let through beside a
copy that met k: the surname a masked name keeps (F1: 22 % of rows unique once it is counted),
three categories of 19 values each (F2: 73 % unique on the three alone), a category with one
person's value, a birth month written as an integer column (F3). What a neighbour knows is not
limited to columns of 20 values or more. So the decision is made on the data, after the search, as
sdcMicro's and ARX's practice measures the risk over every key variable an intruder may hold
(GB/T 37964-2019 附录B: 准标识符 are the attributes "that, combined with other data, can identify a
person"):

every column still in the copy that is a *candidate* — in a personal table
(``desensitize.policy.PERSONAL_LEVELS``), not already a quasi-identifier, not a pseudonym or a key
the custodian kept, not free text, not a sensitive type of the policy (l-diversity's target) and not
ruled out by the custodian (``not_quasi``) — is measured against the final equivalence classes of
the kept rows. When adding it to the quasi-identifiers leaves a class of fewer than the required k
rows (which a value of its own, held by fewer than k rows, always does), it **splits classes**:
it becomes a quasi-identifier (``basis`` ``splits classes``; ladder: numbers climb bands of growing
width and stay numbers, issue 16; a masked name's surname becomes ``**``, the name masked whole;
anything else goes from its value to ``*``) and the search runs
again with it. When no column splits the classes alone, the candidates left are measured together
(two columns of few values each can single out what neither does alone); if together they split,
the one with the most distinct values becomes a quasi-identifier, and the loop goes on. Each round
adds at least one column, so the loop ends after at most as many rounds as there are candidates;
``MAX_ROUNDS`` bounds it further, after which every candidate that still splits joins at once (fail
closed). The rounds are reported (``report["k_anonymity"]["splits"]``).

A column that an analysis needs verbatim (a label, a grouping) is kept out only by the custodian's
ledgered ruling (``not_quasi``), which the copy's report then states, with ``was`` ``splits classes``
when it does.

Columns the transform added (a band's label) are not candidates. Imports nothing of Keyong outside
``desensitize``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desensitize.policy import PERSONAL_LEVELS, Policy
from desensitize.risk import column_codes

__all__ = ["MAX_ROUNDS", "SPLITS", "candidates", "ladder_type", "smallest_split", "splitting"]

#: ``basis`` of a quasi-identifier found by splitting the classes.
SPLITS = "splits classes"
#: Rounds of "search, measure, add" before every splitting candidate joins at once.
MAX_ROUNDS = 6
#: Actions after which a column is not a candidate: dropped, a pseudonym, redacted free text.
_SETTLED = frozenset({"drop", "pseudonymize", "redact_text"})


def candidates(
    frame: pd.DataFrame,
    types: Mapping[str, str | None],
    actions: Mapping[str, str],
    policy: Policy,
    *,
    settled: Collection[str],
    not_quasi: Collection[str],
    quasi_identifiers: Collection[str],
) -> list[str]:
    """The columns measured against the classes (see the module docstring), in the frame's order."""
    if policy.level not in PERSONAL_LEVELS:
        return []
    out: list[str] = []
    for column in frame.columns:
        if column not in types or column in quasi_identifiers or column in settled or column in not_quasi:
            continue
        pii_type = types[column]
        if pii_type == "free_text" or actions.get(column, "keep") in _SETTLED:
            continue
        if pii_type is not None and pii_type in policy.sensitive:
            continue
        out.append(column)
    return out


def ladder_type(values: pd.Series, action: str) -> str:
    """``number`` for numbers (bands, numbers stay numbers), ``masked_name`` for a masked name's surname
    (value, ``**``), ``text`` for anything else (value, ``*``)."""
    if action == "mask_name":
        return "masked_name"
    numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
    return "number" if numeric else "text"


_codes = column_codes  # nulls one value of their own


def _smallest(classes: np.ndarray, columns: Sequence[tuple[np.ndarray, int]]) -> int:
    """The smallest class over ``classes`` and the columns' codes (nulls one value)."""
    key = classes.astype(np.int64)
    for codes, card in columns:
        key = pd.factorize(key * card + codes)[0].astype(np.int64)
    return int(np.bincount(key).min())


def smallest_split(frame: pd.DataFrame, classes: np.ndarray | None, column: str) -> int | None:
    """The smallest class once ``column`` is added to the classes (None: no rows)."""
    if not len(frame):
        return None
    ids = classes if classes is not None else np.zeros(len(frame), dtype=np.int64)
    return _smallest(ids, [_codes(frame[column])])


def splitting(
    frame: pd.DataFrame, classes: np.ndarray | None, columns: Sequence[str], k: int, *, last: bool = False
) -> dict[str, dict[str, Any]]:
    """The candidates that split the classes of ``frame`` (its kept rows; ``classes`` per row, None: one
    class) below ``k``: column -> {"smallest_class": ..., "alone": whether it splits them alone}.
    ``last``: every candidate that splits, alone or in the combination, joins (fail closed)."""
    if not len(frame) or not columns:
        return {}
    ids = classes if classes is not None else np.zeros(len(frame), dtype=np.int64)
    coded = {c: _codes(frame[c]) for c in columns}
    found: dict[str, dict[str, Any]] = {}
    for column in columns:
        smallest = _smallest(ids, [coded[column]])
        if smallest < k:
            found[column] = {"smallest_class": smallest, "alone": True}
    rest = [c for c in columns if c not in found]
    if (found and not last) or len(rest) < 2:
        return found
    together = _smallest(ids, [coded[c] for c in rest])
    if together >= k:
        return found
    if last:
        return {**found, **{c: {"smallest_class": together, "alone": False} for c in rest}}
    widest = max(rest, key=lambda c: coded[c][1])
    return {widest: {"smallest_class": together, "alone": False}}
