"""The ledger service: serialized appends, checkpoints, proofs, and the thin doors to verification and export.

Appends run inside the caller's transaction when the domain change and its entry must stand
or fall together, and are acknowledged only after that transaction commits. Writers are
serialized across processes (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a transaction-scoped
advisory lock), so concurrent writers never fork the chain or reuse a seq.

:class:`Ledger` is the writer and holds the signing key. Verification needs neither: it lives in
:class:`ledger.verifier.LedgerVerifier` (the database and the public key), and
:meth:`Ledger.verify` only hands its engine and public key over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection, Engine

from ledger.checkpoints import (
    ConsistencyProof,
    InclusionProof,
    SignedCheckpoint,
    checkpoint_statement,
    public_key_hex,
)
from ledger.entry import Entry, EntryError, Record, chain_hash, entry_body, format_time, parse_time
from ledger.entry_reads import entries_query, entry_from_row
from ledger.errors import LedgerError
from ledger.export import export_jsonl
from ledger.head import cut_before_append, note_head, remembering
from ledger.keyring import ACTIVATION_ACTION, ROTATION_ACTION, KeySchedule, first_key, key_schedule, rotation_payload
from ledger.merkle import TreeAppender, consistency_proof, inclusion_proof, leaf_hash, subtree_root
from ledger.note import Checkpoint as NoteCheckpoint
from ledger.note import Verifier, WitnessPolicy, sign_note, verify_cosignature
from ledger.queries import (
    ENTRY_COLUMNS,
    DbNodeSource,
    chain_head,
    checkpoint_at,
    ledger_size,
    row_entry,
)
from ledger.reference import office_key, rotation_rows
from ledger.report import Problem, VerifyReport
from ledger.storage import (
    BUSY_TIMEOUT_MS,
    bulk_insert,
    checkpoints,
    cosignatures,
    entries,
    is_write_connection,
    lock_for_append,
    prepare_engine,
    read_transaction,
    write_options,
)
from ledger.verifier import LedgerVerifier

# Names that lived here before verification, checkpoints and node reads had modules of their
# own; ``from ledger.service import ...`` keeps working for them.
__all__ = [
    "ConsistencyProof",
    "DbNodeSource",
    "EntryError",
    "InclusionProof",
    "Ledger",
    "LedgerError",
    "Problem",
    "SignedCheckpoint",
    "VerifyReport",
    "checkpoint_statement",
    "public_key_hex",
]


class Ledger:
    """The instance's ledger over one database: the writer, the one holder of the signing key.

    It appends, checkpoints, and reads entries and proofs. Verification needs no writer and no
    signing key; :meth:`verify` and :meth:`export` hand the engine to the modules that do them.
    """

    def __init__(
        self,
        engine: Engine,
        signing_key: Ed25519PrivateKey,
        *,
        origin: str,
        checkpoint_every: int = 1000,
        checkpoint_max_age: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] | None = None,
        payload_screen: Callable[[Any], list[str]] | None = None,
        reload_key: Callable[[], Ed25519PrivateKey] | None = None,
        head_file: Path | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be positive")
        self._engine = prepare_engine(engine)
        self._use_key(signing_key)
        # Called when another process rotated the key (the ledger names a newer one than ours):
        # returns the key now on disk. Without it, this process stops signing checkpoints.
        self._reload_key = reload_key
        self.origin = origin
        self.checkpoint_every = checkpoint_every
        self.checkpoint_max_age = checkpoint_max_age
        self._clock = clock or (lambda: datetime.now(UTC))
        # Injected by the application (the ledger imports nothing of Keyong's): names the kinds
        # of personal data found in an entry, which is then refused.
        self._screen = payload_screen
        # (size, head hash, appender): reused when the head still matches, so an append need
        # not re-read the Merkle frontier. Replaced, never mutated outside the write lock.
        self._frontier: tuple[int, str, TreeAppender] | None = None
        self._frontier_lock = threading.Lock()
        self._head_file = head_file  # where each commit's head is remembered, outside the database (ledger.head)

    def _use_key(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()
        self.public_key_hex = public_key_hex(self.public_key)

    # --- writing ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction that may append; commit happens when the block exits cleanly."""
        with self._engine.connect() as connection:
            connection.execution_options(**write_options(self._engine))
            with remembering(connection, self._head_file), connection.begin():
                yield connection

    def append(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        subject: str,
        payload: dict[str, Any] | None = None,
        connection: Connection | None = None,
    ) -> Entry:
        """Append one entry; inside ``connection``'s transaction when given, else in its own."""
        return self.append_many([Record(actor, role, action, subject, payload)], connection=connection)[0]

    def append_many(self, records: Iterable[Record], *, connection: Connection | None = None) -> list[Entry]:
        """Append entries in one transaction: all of them are acknowledged, or none."""
        batch = list(records)
        payloads = [record.validated_payload() for record in batch]  # refuse bad input before locking
        if self._screen is not None:
            for record in batch:
                kinds = self._screen([record.actor, record.subject, record.payload])
                if kinds:
                    raise EntryError(
                        f"entry {record.action} {record.subject!r} carries what looks like {', '.join(kinds)}: "
                        "ledger entries carry identifiers and hashes, never personal data"
                    )
        if not batch:
            return []
        if connection is None:
            with self.transaction() as own:
                return self._append(own, batch, payloads)
        if not is_write_connection(connection):
            raise LedgerError("appending needs a write transaction from Ledger.transaction()")
        if not connection.in_transaction():
            raise LedgerError("appending needs a connection inside a transaction")
        return self._append(connection, batch, payloads)

    def _append(self, connection: Connection, batch: list[Record], payloads: list[str]) -> list[Entry]:
        lock_for_append(connection)
        size, prev = chain_head(connection)
        appender = self._appender(connection, size, prev)
        cut_before_append(connection, self._head_file, size, appender.root)  # before the head moves past it
        last_cp = connection.execute(
            select(checkpoints.c.tree_size, checkpoints.c.time).order_by(checkpoints.c.tree_size.desc()).limit(1)
        ).first()
        last_cp_size = int(last_cp.tree_size) if last_cp else 0
        moment = self._clock()
        now = format_time(moment)
        rows: list[tuple[Any, ...]] = []
        new_nodes: list[tuple[int, int, str]] = []
        made: list[Entry] = []
        due_sizes: list[tuple[int, str]] = []
        start = size
        leaves: list[bytes] = []
        for record, payload in zip(batch, payloads, strict=True):
            size += 1
            body = entry_body(size, now, record.actor, record.role, record.action, record.subject, payload, prev)
            digest = chain_hash(bytes.fromhex(prev), body)
            leaves.append(leaf_hash(digest))
            hex_digest = digest.hex()
            row = (size, now, record.actor, record.role, record.action, record.subject, payload, prev, hex_digest)
            rows.append(row)
            made.append(Entry(*row[:6], record.payload or {}, *row[7:]))  # the payload as given, not its JSON
            prev = hex_digest
        # Checkpoints fall every `checkpoint_every` entries after the last one, also mid-batch.
        first_due = max(last_cp_size + self.checkpoint_every, start + 1)
        cuts = set(range(first_due, size + 1, self.checkpoint_every))
        done = start
        for cut in sorted(cuts | {size}):
            for level, idx, node in appender.extend(leaves[done - start : cut - start]):
                new_nodes.append((level, idx, node.hex()))
            done = cut
            if cut in cuts:
                due_sizes.append((cut, appender.root().hex()))
                last_cp_size = cut
        bulk_insert(connection, "ledger_entries", ENTRY_COLUMNS, rows)
        if new_nodes:
            bulk_insert(connection, "ledger_nodes", "level, idx, hash", new_nodes)
        if last_cp is not None and not due_sizes and size > last_cp_size:
            age = moment - parse_time(last_cp.time)
            if age >= self.checkpoint_max_age:
                due_sizes.append((size, appender.root().hex()))
        if due_sizes and not self._in_office(connection):
            due_sizes = []  # a retired key signs nothing; the entries stand, checkpointed by the new key later
        note_head(connection, size, appender.root().hex())
        for tree_size, root in due_sizes:
            self._insert_checkpoint(connection, tree_size, root, now)
        with self._frontier_lock:
            self._frontier = (size, prev, appender)
        return made

    def _appender(self, connection: Connection, size: int, head: str) -> TreeAppender:
        with self._frontier_lock:
            cached, self._frontier = self._frontier, None
        if cached is not None and cached[0] == size and cached[1] == head:
            return cached[2]
        return TreeAppender.from_source(DbNodeSource(connection), size)

    def _sign(self, tree_size: int, root: str, time: str) -> SignedCheckpoint:
        signature = self._key.sign(checkpoint_statement(tree_size, root, time)).hex()
        body = NoteCheckpoint(origin=self.origin, tree_size=tree_size, root_hash=bytes.fromhex(root)).body()
        note = sign_note(body, self.origin, self._key)
        return SignedCheckpoint(tree_size, root, time, signature, self.public_key_hex, note)

    def _insert_checkpoint(self, connection: Connection, tree_size: int, root: str, time: str) -> SignedCheckpoint:
        signed = self._sign(tree_size, root, time)
        connection.execute(insert(checkpoints), [{**signed.as_json(), "note": signed.note}])
        note_head(connection, tree_size, root, signed.as_json())
        return signed

    def checkpoint(self) -> SignedCheckpoint:
        """A signed checkpoint of the current head (on demand); the latest one if already current."""
        with self.transaction() as connection:
            lock_for_append(connection)
            size = ledger_size(connection)
            latest = checkpoint_at(connection)
            if latest is not None and latest.tree_size == size:
                return latest
            if not self._in_office(connection):
                raise LedgerError(
                    "the ledger's signing key was rotated and this process holds the retired one: restart it"
                )
            root = subtree_root(DbNodeSource(connection), 0, size).hex()
            return self._insert_checkpoint(connection, size, root, format_time(self._clock()))

    def _in_office(self, connection: Connection) -> bool:
        """Whether our key is the one the ledger's last rotation named (any key before a rotation);
        reloads the key once when another process rotated it."""
        office = office_key(connection)
        if office is None or office == self.public_key_hex:
            return True
        if self._reload_key is not None:
            fresh = self._reload_key()
            if public_key_hex(fresh.public_key()) == office:
                self._use_key(fresh)
                return True
        return False

    def rotate_key(self, new_key: Ed25519PrivateKey, *, actor: str, role: str) -> tuple[Entry, Entry]:
        """Hand signing over to ``new_key`` (SATRE 2.4.05), in one transaction.

        Appends the rotation entry (both public keys: :func:`ledger.keyring.rotation_payload`) and signs
        a checkpoint of exactly its size with the *old* key, so the old key vouches for its successor;
        then appends ``ledger.key_activated`` and signs a checkpoint of that size with the new key, so
        a verifier that trusts only the new key is anchored at once. Refused if this process does not
        hold the key in office. Returns the two entries.
        """
        new_hex = public_key_hex(new_key.public_key())
        if new_hex == self.public_key_hex:
            raise LedgerError("the new ledger key is the current one")
        old_key = self._key
        try:
            with self.transaction() as connection:
                lock_for_append(connection)
                if not self._in_office(connection):  # (may reload the key another process put in office)
                    raise LedgerError("this process holds a retired ledger key: it cannot rotate it")
                old_key = self._key
                payload = rotation_payload(self.public_key_hex, new_hex)
                subject = f"ledger-key:{payload['key_id']}"
                rotation = self._append_signed(connection, Record(actor, role, ROTATION_ACTION, subject, payload))
                self._use_key(new_key)
                activation = Record(actor, role, ACTIVATION_ACTION, subject, {"key_id": payload["key_id"]})
                activated = self._append_signed(connection, activation)
        except BaseException:
            self._use_key(old_key)  # nothing was committed: the old key stays in office
            raise
        return rotation, activated

    def _append_signed(self, connection: Connection, record: Record) -> Entry:
        """Append one entry and sign a checkpoint of exactly its size with the key held now."""
        entry = self._append(connection, [record], [record.validated_payload()])[0]
        if checkpoint_at(connection, entry.seq) is None:
            root = subtree_root(DbNodeSource(connection), 0, entry.seq).hex()
            self._insert_checkpoint(connection, entry.seq, root, entry.time)
        return entry

    def key_schedule(self) -> KeySchedule:
        """The ledger's signing keys in order, each with the tree sizes it signs (``keyong ledger public-key``)."""
        with self._engine.connect() as connection:
            rotations = rotation_rows(connection)
        start = self.public_key_hex
        if rotations:
            start = first_key(rotations, [], [self.public_key_hex])
        return key_schedule(rotations, start)

    def verifier_for(self, key_hex: str) -> Verifier:
        """A C2SP note verifier for one of the ledger's keys (a checkpoint's ``public_key``)."""
        return Verifier.from_public_key(self.origin, Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)))

    def checkpoint_if_due(self) -> SignedCheckpoint | None:
        """Checkpoint when entries were appended and the last checkpoint is older than the max age."""
        latest = self.latest_checkpoint()
        size = self.size()
        if size == 0 or (latest is not None and latest.tree_size == size):
            return None
        if latest is not None:
            age = self._clock() - parse_time(latest.time)
            if age < self.checkpoint_max_age:
                return None
        return self.checkpoint()

    def add_cosignature(self, tree_size: int, line: str, policy: WitnessPolicy) -> str:
        """Store a witness's cosignature/v1 line over checkpoint ``tree_size``; returns the witness.

        The line must verify under one of the policy's witnesses over exactly this checkpoint's
        note body, so a stored cosignature is always one a regulator's policy check will count.
        """
        with self.transaction() as connection:
            signed = checkpoint_at(connection, tree_size)
            if signed is None:
                raise LedgerError(f"no checkpoint of size {tree_size}")
            body = NoteCheckpoint(origin=self.origin, tree_size=tree_size, root_hash=bytes.fromhex(signed.root)).body()
            for witness in policy.witnesses:
                timestamp = verify_cosignature(body, line, witness)
                if timestamp is not None:
                    break
            else:
                raise LedgerError("the cosignature does not verify under any configured witness for that checkpoint")
            exists = connection.execute(
                select(cosignatures.c.witness).where(
                    cosignatures.c.tree_size == tree_size, cosignatures.c.witness == witness.name
                )
            ).first()
            if exists is not None:
                raise LedgerError(f"witness {witness.name!r} already cosigned checkpoint {tree_size}")
            connection.execute(
                insert(cosignatures),
                [
                    {
                        "tree_size": tree_size,
                        "witness": witness.name,
                        "line": line.rstrip("\n") + "\n",
                        "timestamp": timestamp,
                    }
                ],
            )
            return witness.name

    @property
    def engine(self) -> Engine:  # an application bounds its requests' waits on it (app.bounded_waits)
        return self._engine

    @property
    def verifier(self) -> Verifier:
        """The ledger's key as a C2SP note verifier (``origin+hash+base64``)."""
        return Verifier.from_public_key(self.origin, self.public_key)

    # --- reading ---------------------------------------------------------------------------

    def size(self) -> int:
        with self._engine.connect() as connection:
            return ledger_size(connection)

    def head(self) -> tuple[int, str]:
        with self._engine.connect() as connection:
            return chain_head(connection)

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self._engine.connect() as connection:
            return checkpoint_at(connection)

    def checkpoint_note(self, tree_size: int | None = None) -> str:
        """The checkpoint as a C2SP signed note, with every stored witness cosignature appended."""
        with self._engine.connect() as connection:
            signed = checkpoint_at(connection, tree_size)
            if signed is None:
                raise LedgerError("no checkpoint yet")
            lines = connection.execute(
                select(cosignatures.c.line)
                .where(cosignatures.c.tree_size == signed.tree_size)
                .order_by(cosignatures.c.witness)
            ).scalars()
            return signed.note + "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def get(self, seq: int) -> Entry:
        with self._engine.connect() as connection:
            row = connection.execute(select(entries).where(entries.c.seq == seq)).first()
        if row is None:
            raise LedgerError(f"no ledger entry {seq}")
        return row_entry(row)

    def entries(
        self,
        *,
        action: str | None = None,
        subject: str | None = None,
        actor: str | None = None,
        since: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[Entry]:
        """Entries matching every given filter, in seq order after ``after`` (for pagination).

        The query is :func:`ledger.entry_reads.entries_query`'s, which read-only callers run without this
        engine (``keyong ledger show``, issue 21)."""
        sql, params = entries_query(action=action, subject=subject, actor=actor, since=since, after=after, limit=limit)
        with self._engine.connect() as connection:
            return [entry_from_row(row._mapping) for row in connection.execute(text(sql), params)]

    def prove(self, seq: int, *, tree_size: int | None = None, checkpoint_if_needed: bool = False) -> InclusionProof:
        """Inclusion proof of entry ``seq`` against the latest (or the given) signed checkpoint."""
        if seq < 1:
            raise LedgerError("entries are numbered from 1")
        if checkpoint_if_needed and tree_size is None:
            latest = self.latest_checkpoint()
            if latest is None or latest.tree_size < seq:
                self.checkpoint()
        with read_transaction(self._engine) as connection:
            signed = checkpoint_at(connection, tree_size)
            if signed is None:
                raise LedgerError("no checkpoint of that size" if tree_size else "no checkpoint yet")
            if seq > signed.tree_size:
                raise LedgerError(
                    f"entry {seq} is newer than the latest checkpoint (size {signed.tree_size}); checkpoint first"
                )
            entry_hash = connection.execute(select(entries.c.hash).where(entries.c.seq == seq)).scalar_one_or_none()
            if entry_hash is None:
                raise LedgerError(f"no ledger entry {seq}")
            path = inclusion_proof(DbNodeSource(connection), seq - 1, signed.tree_size)
        return InclusionProof(seq, entry_hash, signed.tree_size, signed.root, [p.hex() for p in path], signed)

    def consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """RFC 9162 consistency proof between two tree sizes of this ledger."""
        if not 0 <= old_size <= new_size:
            raise LedgerError("need 0 <= OLD_SIZE <= NEW_SIZE")
        with read_transaction(self._engine) as connection:
            size = ledger_size(connection)
            if new_size > size:
                raise LedgerError(f"the ledger holds {size} entries, fewer than {new_size}")
            source = DbNodeSource(connection)
            path = consistency_proof(source, old_size, new_size)
            old_root = subtree_root(source, 0, old_size)
            new_root = subtree_root(source, 0, new_size)
        return ConsistencyProof(old_size, new_size, old_root.hex(), new_root.hex(), [p.hex() for p in path])

    # --- verification and export -----------------------------------------------------------

    def verify(
        self,
        progress: Callable[[int], None] | None = None,
        *,
        reference: bool = False,
        lock_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> VerifyReport:
        """Verify this ledger against its public key: see :meth:`LedgerVerifier.verify`.

        Names the first bad entry for edits, deletions, insertions and reordering; a rewrite
        that recomputed every later hash is caught by the signed checkpoints. The signing key
        plays no part: the verifier gets the engine and the public key only. A read waiting on another
        session's lock past ``lock_timeout_ms`` raises :class:`~ledger.errors.LedgerBusyError`.
        """
        verifier = LedgerVerifier(
            self._engine, self.public_key, head_file=self._head_file, lock_timeout_ms=lock_timeout_ms
        )
        return verifier.verify(progress, reference=reference)

    def export(self, out: IO[str], progress: Callable[[int], None] | None = None) -> tuple[int, int]:
        """JSON lines for regulators: every entry (its fields plus ``hash``), then every checkpoint."""
        return export_jsonl(self._engine, out, progress)
