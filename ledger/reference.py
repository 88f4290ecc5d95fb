"""The reference verifier: the whole ledger walked row by row in plain Python, the code a regulator can read.

It needs the database and the log's public key, nothing else: no signing key and no writer. It
recomputes the chain, the Merkle tree, every stored node and checkpoint root, and every
checkpoint signature, and names the first bad entry for edits, deletions, insertions and
reordering. A rewrite that recomputed every later hash is caught by the signed checkpoints (and
bounded to the entries after the last checkpoint that still matches); truncation by checkpoints
or stored nodes that reach past the end.

:mod:`ledger.fastverify` gives the very same report faster; it uses :func:`checkpoint_problems`
and :func:`recompute_entry` from here, and hands storage it cannot mirror exactly to
:func:`verify_reference` itself, so both verifiers share one definition of every check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from ledger.checkpoints import SignedCheckpoint, public_key_hex
from ledger.entry import GENESIS, entry_body
from ledger.keyring import ROTATION_ACTION, is_key, signature_problems
from ledger.merkle import TreeAppender
from ledger.queries import ENTRY_COLUMNS, all_checkpoints
from ledger.report import VerifyReport
from ledger.storage import entries, nodes, prepare_engine, read_transaction

__all__ = ["CHUNK", "office_key", "recompute_entry", "rotation_rows", "trusted_hexes", "verify_reference"]

CHUNK = 50_000
"""Rows per ``fetchmany``: the Merkle problems of a chunk are reported after its row problems."""


def trusted_hexes(public_keys: Ed25519PublicKey | Sequence[Ed25519PublicKey]) -> list[str]:
    """The raw hex of each key a verifier trusts (one key, or several across rotations)."""
    keys = [public_keys] if isinstance(public_keys, Ed25519PublicKey) else list(public_keys)
    if not keys:
        raise ValueError("a verifier needs at least one public key it trusts")
    return [public_key_hex(key) for key in keys]


def rotation_rows(connection: Connection) -> list[tuple[int, Any]]:
    """The rotation entries ``(seq, payload)`` in seq order (the action is indexed)."""
    query = select(entries.c.seq, entries.c.payload).where(entries.c.action == ROTATION_ACTION).order_by(entries.c.seq)
    return [(int(seq), payload) for seq, payload in connection.execute(query)]


def recompute_entry(row: Sequence[Any]) -> tuple[bool, bytes]:
    """One stored entry ``(seq, time, actor, role, action, subject, payload, prev_hash, hash)``
    checked against its own hash: (content does not match, the Merkle leaf it contributes).

    A ``hash`` or ``prev_hash`` that is not hex makes the content mismatch, and the tree then
    gets the leaf of ``sha256(str(hash))``: tampered rows still occupy their leaf position.
    """
    seq, time, actor, role, action, subject, payload, prev_hash, stored = row
    sha256 = hashlib.sha256
    try:
        digest = bytes.fromhex(stored)
        body = entry_body(seq, time, actor, role, action, subject, payload, prev_hash)
        computed = sha256(bytes.fromhex(prev_hash) + body).digest()
    except (ValueError, TypeError):
        digest, computed = sha256(str(stored).encode()).digest(), b""
    return computed != digest, sha256(b"\x00" + digest).digest()


def office_key(connection: Connection) -> str | None:
    """The public key the ledger's last rotation named (None before any rotation): only it may sign."""
    payload = connection.execute(
        select(entries.c.payload).where(entries.c.action == ROTATION_ACTION).order_by(entries.c.seq.desc()).limit(1)
    ).scalar_one_or_none()
    if payload is None:
        return None
    try:
        named = json.loads(payload).get("public_key")
    except (ValueError, AttributeError):
        return ""  # a malformed rotation: nobody is in office, so nothing is signed until it is looked at
    return str(named) if is_key(named) else ""


def verify_reference(
    engine: Engine,
    public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey],
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Verify the ledger in ``engine``'s database against the log's ``public_key`` (or keys: see
    :mod:`ledger.keyring` for how rotations are followed from any one trusted key).

    Everything is read in one snapshot; ``progress`` hears how many entries each chunk held.
    """
    report = VerifyReport()
    with read_transaction(prepare_engine(engine)) as connection:
        cps = all_checkpoints(connection)
        stored_nodes = {
            (level, idx): h for level, idx, h in connection.execute(select(nodes.c.level, nodes.c.idx, nodes.c.hash))
        }
        report.checkpoints = len(cps)
        for problem in signature_problems(cps, rotation_rows(connection), trusted_hexes(public_key)):
            report.add(problem.seq, problem.kind, problem.detail)
        merkle = _MerkleCheck([cp for cp in cps if cp.tree_size > 0], stored_nodes, report)
        chain = _ChainCheck(report)
        # The driver's own cursor, in this transaction: SQLAlchemy's row wrapping would cost
        # about as much as the hashing.
        result = connection.connection.cursor()
        result.execute(f"SELECT {ENTRY_COLUMNS} FROM ledger_entries ORDER BY seq")
        while chunk := result.fetchmany(CHUNK):
            merkle.feed(chain.feed(chunk))
            if progress is not None:
                progress(len(chunk))
        size = merkle.appender.size
        report.entries = size
        report.head = chain.prev
        if merkle.pending is not None:
            report.add(
                size + 1,
                "truncated",
                f"a checkpoint of size {merkle.pending.tree_size} was signed but only {size} entries remain",
            )
        beyond = [coord for coord in stored_nodes if (coord[1] + 1) << coord[0] > size]
        if beyond and merkle.pending is None:
            report.add(size + 1, "truncated", "stored Merkle nodes cover entries that no longer exist")
    return report


class _ChainCheck:
    """Walks the entries in seq order: gaps in seq, links to the previous hash, each entry's hash."""

    def __init__(self, report: VerifyReport) -> None:
        self._report = report
        self.expected = 1
        self.prev = GENESIS.hex()

    def feed(self, rows: Sequence[Sequence[Any]]) -> list[bytes]:
        """Check a chunk of rows; the Merkle leaves they contribute, in order."""
        report = self._report
        expected, prev = self.expected, self.prev
        leaves: list[bytes] = []
        for row in rows:
            seq, prev_hash, stored = row[0], row[7], row[8]
            if seq != expected:
                if seq > expected:
                    report.add(expected, "missing", f"entries {expected}..{seq - 1} are missing (deleted)")
                else:
                    report.add(seq, "order", f"entry {seq} appears out of order")
                expected = seq
            if prev_hash != prev:
                report.add(seq, "link", "prev_hash does not match the previous entry's hash")
            bad, leaf = recompute_entry(row)
            if bad:
                report.add(seq, "hash", "content does not match its hash (edited, inserted or reordered)")
            leaves.append(leaf)
            prev = stored
            expected += 1
        self.expected, self.prev = expected, prev
        return leaves


class _MerkleCheck:
    """Rebuilds the Merkle tree from verified leaves, comparing stored nodes and checkpoint roots."""

    def __init__(
        self, checkpoints: list[SignedCheckpoint], stored: dict[tuple[int, int], str], report: VerifyReport
    ) -> None:
        self.appender = TreeAppender()
        self._checkpoints = iter(checkpoints)
        self.pending: SignedCheckpoint | None = next(self._checkpoints, None)
        self._stored = stored
        self._report = report
        self._last_good = 0

    def feed(self, leaves: list[bytes]) -> None:
        start = self.appender.size
        done = 0
        while done < len(leaves):
            cut = len(leaves)
            if self.pending is not None and self.pending.tree_size - start <= len(leaves):
                cut = self.pending.tree_size - start
            self._compare(self.appender.extend(leaves[done:cut]))
            done = cut
            if self.pending is not None and self.appender.size == self.pending.tree_size:
                self._check_root(self.pending)
                self.pending = next(self._checkpoints, None)

    def _compare(self, nodes: list[tuple[int, int, bytes]]) -> None:
        for level, idx, node in nodes:
            if self._stored.pop((level, idx), None) != node.hex():
                first = idx * (1 << level) + 1
                self._report.add(first, "merkle_node", f"stored Merkle node ({level}, {idx}) does not match entries")

    def _check_root(self, checkpoint: SignedCheckpoint) -> None:
        if self.appender.root().hex() == checkpoint.root:
            self._last_good = checkpoint.tree_size
            return
        self._report.add(
            self._last_good + 1,
            "checkpoint_root",
            f"signed checkpoint of size {checkpoint.tree_size} does not match entries "
            f"{self._last_good + 1}..{checkpoint.tree_size}: history was rewritten",
        )
