"""The ledger service: serialized appends, checkpoints, proofs, verification and export.

Appends run inside the caller's transaction when the domain change and its entry must stand
or fall together, and are acknowledged only after that transaction commits. Writers are
serialized across processes (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a transaction-scoped
advisory lock), so concurrent writers never fork the chain or reuse a seq.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.engine import Connection, Engine

from ledger.entry import (
    GENESIS,
    Entry,
    EntryError,
    Record,
    canonical_json,
    chain_hash,
    entry_body,
    format_time,
    parse_time,
)
from ledger.merkle import (
    STORED_MIN_LEVEL,
    TreeAppender,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    subtree_root,
)
from ledger.note import Checkpoint as NoteCheckpoint
from ledger.note import Verifier, WitnessPolicy, sign_note, verify_cosignature
from ledger.report import Problem, VerifyReport
from ledger.storage import (
    checkpoints,
    cosignatures,
    entries,
    is_write_connection,
    lock_for_append,
    nodes,
    prepare_engine,
    write_options,
)

_ENTRY_COLUMNS = "seq, time, actor, role, action, subject, payload, prev_hash, hash"


class LedgerError(Exception):
    """A ledger operation was refused."""


def public_key_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def checkpoint_statement(tree_size: int, root: str, time: str) -> bytes:
    """What a checkpoint's Ed25519 signature covers: canonical JSON of {tree_size, root, time}."""
    return canonical_json({"tree_size": tree_size, "root": root, "time": time})


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    tree_size: int
    root: str
    time: str
    signature: str
    public_key: str
    note: str = field(default="", compare=False)

    def statement(self) -> bytes:
        return checkpoint_statement(self.tree_size, self.root, self.time)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(bytes.fromhex(self.signature), self.statement())
        except (InvalidSignature, ValueError):
            return False
        return True

    def as_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root": self.root,
            "time": self.time,
            "signature": self.signature,
            "public_key": self.public_key,
        }


@dataclass(frozen=True, slots=True)
class InclusionProof:
    seq: int
    entry_hash: str
    tree_size: int
    root: str
    path: list[str]
    checkpoint: SignedCheckpoint

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "entry_hash": self.entry_hash,
            "leaf_index": self.seq - 1,
            "tree_size": self.tree_size,
            "root": self.root,
            "path": self.path,
            "checkpoint": self.checkpoint.as_json(),
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    path: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": self.old_root,
            "new_root": self.new_root,
            "path": self.path,
        }


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


def _row_entry(row: Any) -> Entry:
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


class Ledger:
    """The instance's ledger over one database."""

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
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be positive")
        self._engine = prepare_engine(engine)
        self._key = signing_key
        self.public_key = signing_key.public_key()
        self.public_key_hex = public_key_hex(self.public_key)
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

    # --- writing ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction that may append; commit happens when the block exits cleanly."""
        with self._engine.connect() as connection:
            connection.execution_options(**write_options(self._engine))
            with connection.begin():
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
        head = connection.execute(select(entries.c.seq, entries.c.hash).order_by(entries.c.seq.desc()).limit(1)).first()
        size, prev = (int(head.seq), str(head.hash)) if head else (0, GENESIS.hex())
        appender = self._appender(connection, size, prev)
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
            rows.append(
                (size, now, record.actor, record.role, record.action, record.subject, payload, prev, hex_digest)
            )
            made.append(
                Entry(
                    size,
                    now,
                    record.actor,
                    record.role,
                    record.action,
                    record.subject,
                    record.payload or {},
                    prev,
                    hex_digest,
                )
            )
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
        _bulk_insert(connection, "ledger_entries", _ENTRY_COLUMNS, rows)
        if new_nodes:
            _bulk_insert(connection, "ledger_nodes", "level, idx, hash", new_nodes)
        if last_cp is not None and not due_sizes and size > last_cp_size:
            age = moment - parse_time(last_cp.time)
            if age >= self.checkpoint_max_age:
                due_sizes.append((size, appender.root().hex()))
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
        return signed

    def checkpoint(self) -> SignedCheckpoint:
        """A signed checkpoint of the current head (on demand); the latest one if already current."""
        with self.transaction() as connection:
            lock_for_append(connection)
            size = connection.execute(select(func.coalesce(func.max(entries.c.seq), 0))).scalar_one()
            latest = self._latest_checkpoint(connection)
            if latest is not None and latest.tree_size == size:
                return latest
            root = subtree_root(DbNodeSource(connection), 0, size).hex()
            return self._insert_checkpoint(connection, size, root, format_time(self._clock()))

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
            signed = self._latest_checkpoint(connection, tree_size)
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
    def verifier(self) -> Verifier:
        """The ledger's key as a C2SP note verifier (``origin+hash+base64``)."""
        return Verifier.from_public_key(self.origin, self.public_key)

    # --- reading ---------------------------------------------------------------------------

    def size(self) -> int:
        with self._engine.connect() as connection:
            return int(connection.execute(select(func.coalesce(func.max(entries.c.seq), 0))).scalar_one())

    def head(self) -> tuple[int, str]:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(entries.c.seq, entries.c.hash).order_by(entries.c.seq.desc()).limit(1)
            ).first()
        return (int(row.seq), str(row.hash)) if row else (0, GENESIS.hex())

    @staticmethod
    def _latest_checkpoint(connection: Connection, tree_size: int | None = None) -> SignedCheckpoint | None:
        query = select(checkpoints)
        if tree_size is not None:
            query = query.where(checkpoints.c.tree_size == tree_size)
        row = connection.execute(query.order_by(checkpoints.c.tree_size.desc()).limit(1)).first()
        if row is None:
            return None
        return SignedCheckpoint(row.tree_size, row.root, row.time, row.signature, row.public_key, row.note)

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self._engine.connect() as connection:
            return self._latest_checkpoint(connection)

    def checkpoint_note(self, tree_size: int | None = None) -> str:
        """The checkpoint as a C2SP signed note, with every stored witness cosignature appended."""
        with self._engine.connect() as connection:
            signed = self._latest_checkpoint(connection, tree_size)
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
        return _row_entry(row)

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
        """Entries matching every given filter, in seq order after ``after`` (for pagination)."""
        query = select(entries).where(entries.c.seq > after)
        if action:
            query = query.where(entries.c.action == action)
        if subject:
            query = query.where(entries.c.subject == subject)
        if actor:
            query = query.where(entries.c.actor == actor)
        if since:
            query = query.where(entries.c.time >= since)
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(entries.c.seq).limit(max(1, min(limit, 10_000))))
            return [_row_entry(row) for row in rows]

    def prove(self, seq: int, *, tree_size: int | None = None, checkpoint_if_needed: bool = False) -> InclusionProof:
        """Inclusion proof of entry ``seq`` against the latest (or the given) signed checkpoint."""
        if seq < 1:
            raise LedgerError("entries are numbered from 1")
        if checkpoint_if_needed and tree_size is None:
            latest = self.latest_checkpoint()
            if latest is None or latest.tree_size < seq:
                self.checkpoint()
        with self._read() as connection:
            signed = self._latest_checkpoint(connection, tree_size)
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
        with self._read() as connection:
            size = int(connection.execute(select(func.coalesce(func.max(entries.c.seq), 0))).scalar_one())
            if new_size > size:
                raise LedgerError(f"the ledger holds {size} entries, fewer than {new_size}")
            source = DbNodeSource(connection)
            path = consistency_proof(source, old_size, new_size)
            old_root = subtree_root(source, 0, old_size)
            new_root = subtree_root(source, 0, new_size)
        return ConsistencyProof(old_size, new_size, old_root.hex(), new_root.hex(), [p.hex() for p in path])

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read transaction that sees one snapshot (REPEATABLE READ on PostgreSQL)."""
        with self._engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection

    # --- verification and export -----------------------------------------------------------

    def verify(self, progress: Callable[[int], None] | None = None, *, reference: bool = False) -> VerifyReport:
        """Recompute the chain, the Merkle tree, every stored node and checkpoint, and every signature.

        Names the first bad entry for edits, deletions, insertions and reordering; a rewrite
        that recomputed every later hash is caught by the signed checkpoints (and bounded to the
        entries after the last checkpoint that still matches); truncation by checkpoints or
        stored nodes that reach past the end.

        By default the vectorized verifier (:mod:`ledger.fastverify`, ~2x faster, the same report)
        does the work and ``progress`` hears of all entries at once when it is done;
        ``reference=True`` walks the rows here in plain Python, the code a regulator can read.
        """
        if not reference:
            from ledger.fastverify import fast_verify  # heavy imports (duckdb, ADBC) only when used

            url = self._engine.url.render_as_string(hide_password=False)
            report = fast_verify(url, self.public_key, self.public_key_hex)
            if progress is not None:
                progress(report.entries)
            return report
        report = VerifyReport()
        with self._read() as connection:
            cps = [
                SignedCheckpoint(r.tree_size, r.root, r.time, r.signature, r.public_key, r.note)
                for r in connection.execute(select(checkpoints).order_by(checkpoints.c.tree_size))
            ]
            stored_nodes = {
                (level, idx): h
                for level, idx, h in connection.execute(select(nodes.c.level, nodes.c.idx, nodes.c.hash))
            }
            report.checkpoints = len(cps)
            for cp in cps:
                if cp.public_key != self.public_key_hex:
                    report.add(None, "checkpoint_key", f"checkpoint of size {cp.tree_size} names a foreign public key")
                if not cp.verify(self.public_key):
                    report.add(None, "checkpoint_signature", f"checkpoint of size {cp.tree_size} has a bad signature")
            sizes = [cp for cp in cps if cp.tree_size > 0]
            merkle = _MerkleCheck(sizes, stored_nodes, report)
            expected = 1
            prev = GENESIS.hex()
            sha256 = hashlib.sha256
            # The driver's own cursor, in this transaction: SQLAlchemy's row wrapping would cost
            # about as much as the hashing.
            result = connection.connection.cursor()
            result.execute(f"SELECT {_ENTRY_COLUMNS} FROM ledger_entries ORDER BY seq")
            while chunk := result.fetchmany(50_000):
                leaves: list[bytes] = []
                for seq, time, actor, role, action, subject, payload, prev_hash, stored in chunk:
                    if seq != expected:
                        if seq > expected:
                            report.add(expected, "missing", f"entries {expected}..{seq - 1} are missing (deleted)")
                        else:
                            report.add(seq, "order", f"entry {seq} appears out of order")
                        expected = seq
                    if prev_hash != prev:
                        report.add(seq, "link", "prev_hash does not match the previous entry's hash")
                    try:
                        digest = bytes.fromhex(stored)
                        computed = sha256(
                            bytes.fromhex(prev_hash)
                            + entry_body(seq, time, actor, role, action, subject, payload, prev_hash)
                        ).digest()
                    except (ValueError, TypeError):
                        digest, computed = sha256(str(stored).encode()).digest(), b""
                    if computed != digest:
                        report.add(seq, "hash", "content does not match its hash (edited, inserted or reordered)")
                    leaves.append(sha256(b"\x00" + digest).digest())
                    prev = stored
                    expected += 1
                merkle.feed(leaves)
                if progress is not None:
                    progress(len(chunk))
            appender = merkle.appender
            next_cp = merkle.pending
            report.entries = appender.size
            report.head = prev
            if next_cp is not None:
                report.add(
                    appender.size + 1,
                    "truncated",
                    f"a checkpoint of size {next_cp.tree_size} was signed but only {appender.size} entries remain",
                )
            beyond = [coord for coord in stored_nodes if (coord[1] + 1) << coord[0] > appender.size]
            if beyond and next_cp is None:
                report.add(appender.size + 1, "truncated", "stored Merkle nodes cover entries that no longer exist")
        return report

    def export(self, out: IO[str], progress: Callable[[int], None] | None = None) -> tuple[int, int]:
        """JSON lines for regulators: every entry (its fields plus ``hash``), then every checkpoint."""
        count = 0
        with self._read() as connection:
            result = connection.exec_driver_sql(f"SELECT {_ENTRY_COLUMNS} FROM ledger_entries ORDER BY seq")
            while chunk := result.fetchmany(20_000):
                for seq, time, actor, role, action, subject, payload, prev_hash, stored in chunk:
                    # The payload text is already canonical JSON: splice it in instead of re-encoding.
                    head = json.dumps(
                        {"action": action, "actor": actor, "prev_hash": prev_hash, "role": role, "seq": seq},
                        ensure_ascii=False,
                        separators=(",", ":"),
                    )
                    tail = json.dumps(
                        {"subject": subject, "time": time, "hash": stored}, ensure_ascii=False, separators=(",", ":")
                    )
                    out.write(f'{head[:-1]},"payload":{payload},{tail[1:]}\n')
                count += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            cps = connection.execute(select(checkpoints).order_by(checkpoints.c.tree_size)).all()
            for r in cps:
                signed = SignedCheckpoint(r.tree_size, r.root, r.time, r.signature, r.public_key)
                out.write(json.dumps(signed.as_json(), separators=(",", ":")) + "\n")
        return count, len(cps)


def _bulk_insert(connection: Connection, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert plain str/int rows at the driver level, inside the caller's transaction.

    SQLAlchemy's per-row parameter processing would cost more than the hashing. PostgreSQL
    takes the rows through COPY (several times faster than INSERT; COPY fires no UPDATE or
    DELETE triggers, and INSERT is all an append does); SQLite through executemany.
    """
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    placeholders = ", ".join([mark] * (columns.count(",") + 1))
    connection.exec_driver_sql(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)


class _MerkleCheck:
    """Rebuilds the Merkle tree from verified leaves, comparing stored nodes and checkpoint roots."""

    def __init__(self, checkpoints: list[SignedCheckpoint], stored: dict[tuple[int, int], str], report: VerifyReport):
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
]
