"""Reads of the ledger tables that the writer, the proofs, the verifiers and the export share.

Entries and checkpoints come back as :class:`~ledger.entry.Entry` and
:class:`~ledger.checkpoints.SignedCheckpoint`; the Merkle tree as a
:class:`~ledger.merkle.NodeSource`, so that proofs are computed from the stored perfect nodes
with O(1) queries. Every function reads through the caller's connection and transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.engine import Connection

from ledger.checkpoints import SignedCheckpoint
from ledger.entry import GENESIS, HASHED_FIELDS, Entry
from ledger.errors import LedgerError
from ledger.merkle import STORED_MIN_LEVEL, leaf_hash
from ledger.storage import checkpoints, entries, nodes

__all__ = [
    "ENTRY_COLUMNS",
    "ENTRY_FIELDS",
    "DbNodeSource",
    "all_checkpoints",
    "chain_head",
    "checkpoint_at",
    "ledger_size",
    "row_entry",
]

ENTRY_FIELDS = (*HASHED_FIELDS, "hash")
"""The entry columns in the order the driver-level reads and writes use (and the reference's rows have)."""

ENTRY_COLUMNS = ", ".join(ENTRY_FIELDS)
"""The same, as an SQL column list."""


class DbNodeSource:
    """Merkle leaves and stored perfect subtrees read through one connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        rows = self._connection.execute(
            select(entries.c.hash).where(entries.c.seq > start, entries.c.seq <= end).order_by(entries.c.seq)
        ).scalars()
        hashes = [leaf_hash(bytes.fromhex(h)) for h in rows]
        if len(hashes) != end - start:
            raise LedgerError(f"ledger has a hole between entries {start + 1} and {end}")
        return hashes

    def perfect_nodes(self, coords: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        wanted = [c for c in coords if c[0] >= STORED_MIN_LEVEL]
        if not wanted:
            return {}
        rows = self._connection.execute(
            select(nodes.c.level, nodes.c.idx, nodes.c.hash).where(tuple_(nodes.c.level, nodes.c.idx).in_(wanted))
        )
        return {(level, idx): bytes.fromhex(h) for level, idx, h in rows}


def row_entry(row: Any) -> Entry:
    """An entry from a row of ``ledger_entries`` (the payload column holds its canonical JSON)."""
    return Entry(
        seq=row.seq,
        time=row.time,
        actor=row.actor,
        role=row.role,
        action=row.action,
        subject=row.subject,
        payload=json.loads(row.payload),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _checkpoint(row: Any) -> SignedCheckpoint:
    return SignedCheckpoint(row.tree_size, row.root, row.time, row.signature, row.public_key, row.note)


def checkpoint_at(connection: Connection, tree_size: int | None = None) -> SignedCheckpoint | None:
    """The checkpoint of ``tree_size``, or the latest one when no size is given."""
    query = select(checkpoints)
    if tree_size is not None:
        query = query.where(checkpoints.c.tree_size == tree_size)
    row = connection.execute(query.order_by(checkpoints.c.tree_size.desc()).limit(1)).first()
    return None if row is None else _checkpoint(row)


def all_checkpoints(connection: Connection) -> list[SignedCheckpoint]:
    """Every stored checkpoint, smallest tree size first."""
    return [_checkpoint(row) for row in connection.execute(select(checkpoints).order_by(checkpoints.c.tree_size))]


def ledger_size(connection: Connection) -> int:
    """How many entries the ledger holds (the highest seq; 0 when empty)."""
    return int(connection.execute(select(func.coalesce(func.max(entries.c.seq), 0))).scalar_one())


def chain_head(connection: Connection) -> tuple[int, str]:
    """The last entry's seq and hash; ``(0, GENESIS)`` for an empty ledger."""
    row = connection.execute(select(entries.c.seq, entries.c.hash).order_by(entries.c.seq.desc()).limit(1)).first()
    return (int(row.seq), str(row.hash)) if row else (0, GENESIS.hex())
