"""Which entries ``keyong ledger show`` lists, as one SQL query that needs no SQLAlchemy (issue 21).

Why plain SQL: listing a page of entries is a read a person waits for, and the SQLAlchemy path (the
writer's open of the home, the ORM, the registry) cost it about two seconds before it printed a line.
The filters (action, subject, actor, a time floor, a seq to page after, a bounded limit) are written
here once: :meth:`ledger.Ledger.entries` runs the same query through its engine, and a read-only
caller (``app.instance_read``) runs it on a connection that cannot write. Either way the rows become
:class:`~ledger.entry.Entry` by :func:`entry_from_row`.

This module imports nothing but the standard library and :mod:`ledger.entry`: the caller gives a
:data:`Rows` function (SQL with ``:name`` parameters in, rows as mappings out).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ledger.entry import HASHED_FIELDS, Entry, strict_json

__all__ = ["MAX_PAGE", "Rows", "entries_query", "entry_from_row", "read_entries"]

#: Runs one query (``:name`` parameters) and returns its rows as mappings.
Rows = Callable[[str, Mapping[str, Any]], Sequence[Mapping[str, Any]]]

#: The most entries one page holds (the CLI's and the API's ``limit`` bound).
MAX_PAGE = 10_000
#: ``ledger.storage.entries`` (a test holds the name and columns to the table).
ENTRIES_TABLE = "ledger_entries"
_COLUMNS = ", ".join((*HASHED_FIELDS, "hash"))
#: The text columns an entry carries as they are stored.
_TEXT = ("time", "actor", "role", "action", "subject", "prev_hash", "hash")


def entries_query(
    *,
    action: str | None = None,
    subject: str | None = None,
    actor: str | None = None,
    since: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of the entries matching every given filter, in seq order after ``after``.

    ``since`` compares as text: entry times are fixed-width ISO 8601 UTC (:func:`ledger.entry.format_time`),
    so text order is time order. ``limit`` is held to 1..:data:`MAX_PAGE`.
    """
    where = ["seq > :after"]
    params: dict[str, Any] = {"after": after, "limit": max(1, min(limit, MAX_PAGE))}
    for name, value in (("action", action), ("subject", subject), ("actor", actor)):
        if value:
            where.append(f"{name} = :{name}")
            params[name] = value
    if since:
        where.append("time >= :since")
        params["since"] = since
    return f"SELECT {_COLUMNS} FROM {ENTRIES_TABLE} WHERE {' AND '.join(where)} ORDER BY seq LIMIT :limit", params


def entry_from_row(row: Mapping[Any, Any]) -> Entry:
    """An entry from a row of ``ledger_entries`` (the payload column holds its canonical JSON).

    A stored value that is not text (a reader that hands back undecodable text as bytes, someone who
    edited the database) raises ``ValueError`` naming the entry and the field, rather than printing it.
    """
    seq = row["seq"]
    for name in (*_TEXT, "payload"):
        if not isinstance(row[name], str):
            raise ValueError(f"ledger entry {seq}: the stored {name} is not text")
    return Entry(
        seq=seq,
        time=row["time"],
        actor=row["actor"],
        role=row["role"],
        action=row["action"],
        subject=row["subject"],
        payload=_payload(seq, row["payload"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _payload(seq: Any, text: str) -> Any:
    """The stored payload decoded, or ``ValueError`` naming the entry: an edited row holding ``NaN``, an
    infinity (``1e999``) or nesting too deep to decode would otherwise print output that is not JSON, or a
    traceback (red team 21d). The verifier still reports such a row by its hash; this is only the reading."""
    try:
        payload = strict_json(text)
    except RecursionError:
        raise ValueError(f"ledger entry {seq}: the stored payload is nested too deep to read") from None
    except ValueError as exc:
        raise ValueError(f"ledger entry {seq}: the stored payload is not JSON: {exc}") from None
    return payload


def read_entries(
    rows: Rows,
    *,
    action: str | None = None,
    subject: str | None = None,
    actor: str | None = None,
    since: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[Entry]:
    """The entries :meth:`ledger.Ledger.entries` gives for the same filters, read through ``rows``."""
    sql, params = entries_query(action=action, subject=subject, actor=actor, since=since, after=after, limit=limit)
    return [entry_from_row(row) for row in rows(sql, params)]
