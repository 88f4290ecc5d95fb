"""The joined view of a link group, as the guard re-derives joined tables from it (issue 23).

Why: a licence may grant datasets *jointly* (``keyong licence grant --joint A,B``); their licence copies
share one per-licence person key and k holds on their join, so a job may join them and publish
aggregates of the join. The guard passes only what it can re-derive (issue 15): a table of counts by
``性别 × 参保状态`` over ``residents JOIN social_insurance`` ties to neither copy alone, so without the
join every honest joined aggregate went to a person and its SDC checks (minimum cell count, dominance)
never ran on the joined counts. Here the mounted copies of one link group are joined as SQL's
``JOIN … ON a.key = b.key`` would (an inner join; a null or blank key joins nothing, as NULL = NULL is
not true in SQL) and handed to the guard as one more source, named after the group
(``residents+social_insurance``). Only the copies a job mounted are joined, never raw data
(原始数据不出域, 数据可用不可见, 双鸭山 第三十五条); datasets not granted jointly carry no person key
in the job's spec and are never joined (their per-licence keys would not join anyway).

A bound on the joined rows (a person's rows multiply across the tables, as ``desensitize.joint_view``
bounds the registry's joined view): beyond it no joined source is made, and a joined table stays
unaccounted for — review, as before (fail closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sandbox.guard.source import SourceCopy

#: Default bound on the rows of a joined view the guard builds (beyond it: no joined source, review).
MAX_JOINED_ROWS = 2_000_000
_KEY = "(person)"


@dataclass(frozen=True, slots=True)
class LinkedCopy:
    """A mounted licence copy of a link group: its dataset, its rows and the column it joins on."""

    name: str
    frame: pd.DataFrame
    person_key: str


def _keyed(copy: LinkedCopy) -> np.ndarray:
    """Per row of the copy: does it hold a join key (null, empty or blank keys join nothing in SQL)."""
    column = copy.frame[copy.person_key]
    return np.asarray(column.notna().to_numpy(dtype=bool) & (column.astype(str).str.strip() != "").to_numpy())


def _keys(copy: LinkedCopy) -> pd.Series:
    """The copy's join keys as text, of the rows that hold one."""
    return copy.frame[copy.person_key][_keyed(copy)].astype(str)


def joined_rows(copies: Sequence[LinkedCopy]) -> int:
    """The rows of the inner join of ``copies`` on their person keys: per key found in every copy, the
    product of its rows in each (computed from the key counts, before anything is joined)."""
    counts = [_keys(c).value_counts() for c in copies]
    if not counts:
        return 0
    common = counts[0].index
    for other in counts[1:]:
        common = common.intersection(other.index)
    product = np.ones(len(common), dtype=np.float64)  # floats: a fan-out overflows int64 before the bound
    for found in counts:
        product *= found.reindex(common).to_numpy(dtype=np.float64)
    return int(min(product.sum(), 2.0**62))


def _names(copies: Sequence[LinkedCopy]) -> list[dict[str, str]]:
    """Each copy's columns as the joined view names them: as they are, or ``dataset.column`` where two
    copies share a column name (the job's SQL tells them apart by table, the guard by dataset)."""
    seen: dict[str, int] = {}
    for copy in copies:
        for column in copy.frame.columns:
            seen[str(column)] = seen.get(str(column), 0) + 1
    return [
        {str(c): (str(c) if seen[str(c)] == 1 else f"{copy.name}.{c}") for c in copy.frame.columns} for copy in copies
    ]


def joined_frame(copies: Sequence[LinkedCopy], bound: int = MAX_JOINED_ROWS) -> pd.DataFrame | None:
    """The inner join of ``copies`` on their person keys (every column of every copy), or None when it
    would hold more than ``bound`` rows or fewer than two copies are given."""
    if len(copies) < 2 or joined_rows(copies) > bound:
        return None
    joined: pd.DataFrame | None = None
    for copy, names in zip(copies, _names(copies), strict=True):
        own = copy.frame[_keyed(copy)].rename(columns=names).reset_index(drop=True)
        own[_KEY] = own[names[copy.person_key]].astype(str).to_numpy()
        joined = own if joined is None else joined.merge(own, on=_KEY, how="inner", sort=False)
    assert joined is not None
    return joined.drop(columns=[_KEY])


def joined_source(copies: Sequence[LinkedCopy], bound: int = MAX_JOINED_ROWS) -> SourceCopy | None:
    """The joined view as a source the guard ties tables to (named ``a+b``, the datasets sorted), or None
    (fewer than two copies, or the join beyond ``bound``: the joined tables stay for a person)."""
    frame = joined_frame(copies, bound)
    if frame is None:
        return None
    members = tuple(sorted(c.name for c in copies))
    source = SourceCopy.from_frame("+".join(members), frame)
    source.members = members
    return source


__all__ = ["MAX_JOINED_ROWS", "LinkedCopy", "joined_frame", "joined_rows", "joined_source"]
