"""The joined view of a link group: who is whom across the tables, and its risk as an attacker reads it.

Why apart from the search (``desensitize.joint``): the joined view is both what the search works on
(integer arrays) and what the result is verified against (a pandas join of the returned frames,
measured with ``desensitize.risk``), and the two must agree on three rules a naive
``DataFrame.merge`` breaks:

* **A null person key joins nothing.** pandas joins NaN to NaN, which would glue every person
  whose pseudonym is missing into one "person" and link rows of different people. Each row
  without a key (null or blank) is a person of its own here: it cannot be linked, and it is
  counted once (GB/T 37964-2019 附录B: the linkage the K-匿名模型 guards against runs on the key).
* **A person counts once.** A person with five enrolment rows joined to one residents row gives
  five joined rows but one person; a class of the joined view is safe when it holds k distinct
  *persons* (records deduplicated per person and quasi-identifier tuple), else five rows of one
  person would pass for a 5-anonymous class.
* **Presence is an attribute.** Whether a person appears in a table at all (is enrolled in social
  insurance, say) is visible in the joined frames and may be known to an attacker, so each table's
  presence is a quasi-identifier of the joined view (``"<dataset>.(present)"``).

A bound on the joined rows (many rows per person in two tables multiply) refuses a group whose
join would blow up, with the number it would reach.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from desensitize.risk import measure_risk

__all__ = [
    "MAX_JOINED_ROWS",
    "PRESENT",
    "JoinedIndex",
    "blank_keys",
    "joined_index",
    "joined_size",
    "measure_joined",
    "person_ids",
]

#: Default bound on the rows of a joined view (a person's rows multiply across the tables).
MAX_JOINED_ROWS = 5_000_000
#: The suffix of a table's presence column in the joined view: ``"<dataset>.(present)"``.
PRESENT = "(present)"


def blank_keys(keys: pd.Series) -> np.ndarray:
    """Null keys, and keys that are empty or only spaces (they would join each other)."""
    null = keys.isna().to_numpy(dtype=bool)
    text = keys.astype("str").str.strip()
    return np.asarray(null | text.eq("").fillna(True).to_numpy(dtype=bool))


def person_ids(keys: Sequence[pd.Series]) -> tuple[list[np.ndarray], int]:
    """Per table, a person id per row (the same key, the same id in every table), and how many persons.

    A row without a key gets an id of its own (it joins nothing).
    """
    texts = [k.astype("str").reset_index(drop=True) for k in keys]
    blanks = [blank_keys(k) for k in keys]
    codes, _ = pd.factorize(pd.concat(texts, ignore_index=True) if texts else pd.Series([], dtype="str"))
    codes = np.asarray(codes, dtype=np.int64)
    blank = np.concatenate(blanks) if blanks else np.zeros(0, dtype=bool)
    n_keyed = len(pd.unique(codes[~blank])) if (~blank).any() else 0
    # Dense ids: keyed persons first, then one per keyless row.
    dense = np.full(len(codes), -1, dtype=np.int64)
    dense[~blank] = pd.factorize(codes[~blank])[0]
    dense[blank] = n_keyed + np.arange(int(blank.sum()))
    out, at = [], 0
    for k in keys:
        out.append(dense[at : at + len(k)])
        at += len(k)
    return out, n_keyed + int(blank.sum())


def joined_size(table_persons: Sequence[np.ndarray], n_persons: int) -> int:
    """The rows of the outer join on the person: per person, the product of its rows in each table (0 counts 1)."""
    size = np.ones(n_persons, dtype=np.float64)
    for persons in table_persons:
        size *= np.maximum(np.bincount(persons, minlength=n_persons), 1)
    return int(size.sum())


def _check_size(table_persons: Sequence[np.ndarray], n_persons: int, bound: int) -> int:
    size = joined_size(table_persons, n_persons)
    if size > bound:
        raise ValueError(
            f"the joined view would hold {size:,} rows (more than the bound of {bound:,}): persons with many rows "
            "in several tables multiply; the group cannot be linked row by row"
        )
    return size


@dataclass(slots=True)
class JoinedIndex:
    """The outer join on the person as arrays: per joined row, its person and its row in each table (-1: absent)."""

    person: np.ndarray
    rows: list[np.ndarray]
    n_persons: int


def joined_index(table_persons: Sequence[np.ndarray], n_persons: int, bound: int = MAX_JOINED_ROWS) -> JoinedIndex:
    """Every person, times its rows in each table (a person absent from a table has one row there, -1)."""
    _check_size(table_persons, n_persons, bound)
    joined = pd.DataFrame({"p": np.arange(n_persons, dtype=np.int64)})
    for i, persons in enumerate(table_persons):
        own = pd.DataFrame({"p": persons, f"r{i}": np.arange(len(persons), dtype=np.int64)})
        joined = joined.merge(own, on="p", how="left", sort=False)
    rows = [joined[f"r{i}"].fillna(-1).to_numpy(dtype=np.int64) for i in range(len(table_persons))]
    return JoinedIndex(joined["p"].to_numpy(dtype=np.int64), rows, n_persons)


def measure_joined(
    tables: Sequence[tuple[str, pd.DataFrame, str, Sequence[str]]],
    *,
    threshold: float,
    bound: int = MAX_JOINED_ROWS,
) -> tuple[dict[str, Any], int, pd.DataFrame]:
    """Risk of the joined view of ``(name, frame, person key, quasi-identifier columns)`` per person.

    Built with pandas from the frames alone (not from the search's arrays), so it verifies what an
    attacker holding the frames can join. Returns the ``desensitize.risk`` figures over the records
    deduplicated per person and quasi-identifier tuple (k = distinct persons of the smallest class,
    average = classes / records), the joined rows before deduplication, and the deduplicated records
    (columns ``"<dataset>.<column>"``, the presence columns and ``"(person)"``).
    """
    persons, n_persons = person_ids([frame[key] for _, frame, key, _ in tables])
    _check_size(persons, n_persons, bound)
    joined = pd.DataFrame({"(person)": np.arange(n_persons, dtype=np.int64)})
    columns: list[str] = []
    for (name, frame, _, qi), ids in zip(tables, persons, strict=True):
        own = frame[list(qi)].reset_index(drop=True).copy()
        own.columns = [f"{name}.{c}" for c in qi]
        own[f"{name}.{PRESENT}"] = True
        own["(person)"] = ids
        joined = joined.merge(own, on="(person)", how="left", sort=False)
        joined[f"{name}.{PRESENT}"] = joined[f"{name}.{PRESENT}"].fillna(False).astype(bool)
        columns += [*own.columns[:-1]]
    records = joined.drop_duplicates(ignore_index=True)
    return measure_risk(records, columns, threshold=threshold), len(joined), records
