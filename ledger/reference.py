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
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from ledger.checkpoints import SignedCheckpoint, public_key_hex
from ledger.entry import GENESIS, entry_body
from ledger.keyring import ROTATION_ACTION, is_key, signature_problems
from ledger.merkle import TreeAppender
from ledger.note import NoteError, Verifier, open_note, parse_checkpoint_body
from ledger.note.lines import split_note
from ledger.queries import ENTRY_COLUMNS, ENTRY_FIELDS, all_checkpoints
from ledger.report import Problem, VerifyReport
from ledger.storage import entries, nodes, prepare_engine, read_transaction

__all__ = [
    "CHUNK",
    "note_problems",
    "office_key",
    "reaches_past",
    "recompute_entry",
    "rotation_rows",
    "trusted_hexes",
    "verify_reference",
]

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
    # A seq that is not an integer names no tree size: such a row follows no rotation (the chain walk
    # reports it as ``unreadable``), so the checkpoints of the key it would name fail as foreign.
    return [(seq, payload) for seq, payload in connection.execute(query) if type(seq) is int]


def note_problems(cps: Sequence[SignedCheckpoint]) -> list[Problem]:
    """Checkpoints whose stored signed note is not their own tree head signed by their own key.

    The note is what ``GET /ledger/checkpoint.note`` serves witnesses (C2SP tlog-checkpoint): its body
    must carry this row's tree size and root, and its signature line, named after the body's origin,
    must verify under the row's public key (which :func:`ledger.keyring.checkpoint_problems` checks
    against the key schedule). Both verifiers call this on the same rows (FINDINGS21a F1).
    """
    return [
        Problem(
            None, "checkpoint_note", f"checkpoint of size {cp.tree_size} stores a note that is not its signed tree head"
        )
        for cp in cps
        if not _note_matches(cp)
    ]


def _note_matches(cp: SignedCheckpoint) -> bool:
    note = cp.note
    if not isinstance(note, str) or not isinstance(cp.public_key, str):
        return False
    try:
        text, _ = split_note(note)
        body = parse_checkpoint_body(text)
        if body.tree_size != cp.tree_size or body.root_hash.hex() != cp.root:
            return False
        open_note(note, [Verifier.from_public_key(body.origin, bytes.fromhex(cp.public_key))])
    except (NoteError, ValueError, TypeError):
        return False
    return True


def reaches_past(coord: tuple[Any, Any], size: int) -> bool:
    """Whether stored node ``(level, idx)`` covers entries past ``size``; a level outside 0..63 fits no
    tree of 64-bit size, so it does too (and ``1 << level`` is never computed for a hostile level)."""
    level, idx = coord
    if not 0 <= level < 64:
        return True
    return bool((idx + 1) << level > size)


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
    *,
    lock_timeout_ms: int | None = None,
) -> VerifyReport:
    """Verify the ledger in ``engine``'s database against the log's ``public_key`` (or keys: see
    :mod:`ledger.keyring` for how rotations are followed from any one trusted key).

    Everything is read in one snapshot; ``progress`` hears how many entries each chunk held. Stored
    text that is not UTF-8 (only someone writing the SQLite file can store it) stops sqlite3's strict
    read; the walk is then done again reading text leniently, so that the report names each such row
    as ``unreadable`` instead of the verification failing without one (FINDINGS21a F2). The lenient
    read costs a Python call per text value, so only such a ledger pays for it. ``lock_timeout_ms``: how long
    its read waits on a lock another session holds on PostgreSQL (:func:`ledger.storage.read_transaction`).
    """
    try:
        return _verify(engine, public_key, progress, lenient=False, lock_timeout_ms=lock_timeout_ms)
    except (sqlite3.OperationalError, OperationalError) as exc:
        if _DECODE_ERROR not in str(exc):
            raise
    return _verify(engine, public_key, None, lenient=True, lock_timeout_ms=lock_timeout_ms)


_DECODE_ERROR = "Could not decode to UTF-8"
"""How Python's sqlite3 refuses stored text that is not UTF-8."""


class _NotUtf8(bytes):
    """Stored TEXT whose bytes are not UTF-8, as the lenient read returns it (a BLOB of those bytes)."""


def _lenient_text(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")  # strict, as sqlite3's own decoding (surrogates refused too)
    except UnicodeDecodeError:
        return _NotUtf8(raw)


@contextmanager
def _text_read(connection: Connection, lenient: bool) -> Iterator[None]:
    """Read TEXT leniently on this SQLite connection for the block (the pool's connection is restored)."""
    driver = connection.connection.driver_connection
    if not lenient or not isinstance(driver, sqlite3.Connection):
        yield
        return
    before = driver.text_factory
    driver.text_factory = _lenient_text
    try:
        yield
    finally:
        driver.text_factory = before


def _verify(
    engine: Engine,
    public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey],
    progress: Callable[[int], None] | None,
    *,
    lenient: bool,
    lock_timeout_ms: int | None,
) -> VerifyReport:
    report = VerifyReport()
    with read_transaction(prepare_engine(engine), lock_timeout_ms) as connection, _text_read(connection, lenient):
        stored = all_checkpoints(connection)
        cps = [cp for cp in stored if type(cp.tree_size) is int]
        for cp in stored:
            if type(cp.tree_size) is not int:
                report.add(None, "unreadable", f"a checkpoint's tree size is not an integer: {_shown(cp.tree_size)}")
        all_nodes = list(connection.execute(select(nodes.c.level, nodes.c.idx, nodes.c.hash)))
        stored_nodes = {(lv, ix): h for lv, ix, h in all_nodes if type(lv) is int and type(ix) is int}
        for level, idx, _ in all_nodes:
            if not (type(level) is int and type(idx) is int):
                report.add(
                    None,
                    "merkle_node",
                    f"a stored Merkle node has coordinates that are not integers: ({_shown(level)}, {_shown(idx)})",
                )
        report.checkpoints = len(stored)
        for problem in signature_problems(cps, rotation_rows(connection), trusted_hexes(public_key)) + note_problems(
            cps
        ):
            report.add(problem.seq, problem.kind, problem.detail)
        merkle = _MerkleCheck([cp for cp in cps if cp.tree_size > 0], stored_nodes, report)
        chain = _ChainCheck(report, lenient)
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
        report.head = chain.prev if isinstance(chain.prev, str) else _shown(chain.prev)
        if merkle.pending is not None:
            report.add(
                size + 1,
                "truncated",
                f"a checkpoint of size {merkle.pending.tree_size} was signed but only {size} entries remain",
            )
        if merkle.pending is None and any(reaches_past(coord, size) for coord in stored_nodes):
            report.add(size + 1, "truncated", "stored Merkle nodes cover entries that no longer exist")
    return report


def _shown(value: object) -> str:
    """A stored value that is not what its column should hold, short enough for a problem's detail."""
    text = repr(bytes(value) if isinstance(value, bytes) else value)
    return text if len(text) <= 80 else text[:77] + "..."


class _ChainCheck:
    """Walks the entries in seq order: gaps in seq, links to the previous hash, each entry's hash.

    A row whose ``seq`` is not an integer, or (read leniently) whose text is not UTF-8, is reported
    ``unreadable`` at the position it holds, then checked like any row there: its link and its hash
    (which cannot match), its Merkle leaf as :func:`recompute_entry` gives it.
    """

    def __init__(self, report: VerifyReport, lenient: bool = False) -> None:
        self._report = report
        self._lenient = lenient
        self.expected = 1
        self.prev: Any = GENESIS.hex()

    def feed(self, rows: Sequence[Sequence[Any]]) -> list[bytes]:
        """Check a chunk of rows; the Merkle leaves they contribute, in order."""
        report = self._report
        expected, prev = self.expected, self.prev
        leaves: list[bytes] = []
        for row in rows:
            seq, prev_hash, stored = row[0], row[7], row[8]
            if type(seq) is not int:
                detail = f"the entry after {expected - 1} has a seq that is not an integer: {_shown(seq)}"
                report.add(expected, "unreadable", detail)
                seq = expected
            if self._lenient:
                self._undecodable(seq, row)
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

    def _undecodable(self, seq: int, row: Sequence[Any]) -> None:
        names = [name for name, value in zip(ENTRY_FIELDS, row, strict=True) if type(value) is _NotUtf8]
        if names:
            self._report.add(seq, "unreadable", f"entry {seq} stores text that is not UTF-8 in {', '.join(names)}")


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
