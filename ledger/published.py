"""The ledger published to an object store, so a regulator verifies it with bucket read access and a key.

Why (issue 19; DESIGN.md, Scale-out and Ledger): on several machines the regulator should not need an
account on the PostgreSQL primary to check the log. Every signed checkpoint is therefore written to
the bucket next to the artifacts, with what it takes to recompute it:

* ``ledger/checkpoints/<size>``: the C2SP signed note exactly as the log signed it (tlog-checkpoint);
* ``ledger/checkpoints/<size>.json``: the checkpoint as ``keyong ledger export`` writes it (tree size,
  root, time, Ed25519 signature, public key) plus the RFC 9162 consistency proof from the previous
  checkpoint (``consistency``: ``old_size``, ``path``), so checkpoints chain without the entries;
* ``ledger/entries/<first>-<last>.jsonl``: the entries after the previous checkpoint up to this one,
  one export line each (canonical JSON of the hashed fields plus ``hash``), at most :data:`BATCH` per
  object, so the hash chain and every Merkle root can be recomputed (双鸭山市公共数据管理暂行办法
  第六十条: 来源可溯、去向可查、行为留痕、责任可究);
* ``ledger/tile/<L>/<N>[.p/<W>]``: the Merkle tree as C2SP tlog-tiles (:mod:`ledger.tiles`), so any tlog
  client computes inclusion and consistency proofs against the published checkpoints by itself;
* ``ledger/cosignatures/<size>/<sha256 of the line>``: each witness cosignature/v1 line, one object
  each, since witnesses cosign after the checkpoint was published and objects are never rewritten.

Object-store rules (core.storage): every object is written once and never rewritten; there is no
"latest" object, a reader lists ``ledger/checkpoints/`` and takes the largest. Publishing again is
idempotent: an object already there with the same bytes is fine, with other bytes it is
:class:`PublishConflictError` (someone altered the bucket, or two logs share one). The bytes are a
pure function of the database rows, so any process may publish and they agree.

This module imports nothing of Keyong's: the store is the small :class:`ObjectStore` protocol, which
``core.Storage`` satisfies.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from ledger.checkpoints import SignedCheckpoint
from ledger.entry import canonical_json
from ledger.errors import LedgerError
from ledger.merkle import consistency_proof
from ledger.queries import DbNodeSource, all_checkpoints, row_entry
from ledger.storage import checkpoints, cosignatures, entries, read_transaction
from ledger.tiles import TILE_WIDTH, parse_tile_path, tile_path, tiles_between

__all__ = [
    "BATCH",
    "EXPORTS_PREFIX",
    "PUBLISHED_PREFIX",
    "DirectoryStore",
    "LedgerPublisher",
    "ObjectStore",
    "PublishConflictError",
    "PublishResult",
    "PublishedKey",
    "checkpoint_json_key",
    "checkpoint_note_key",
    "cosignature_key",
    "entries_key",
    "entry_line",
    "parse_published_key",
]

PUBLISHED_PREFIX = "ledger"
#: At most this many entries per entries object: a regulator streams the log a few MB at a time.
BATCH = 10_000
#: Audit exports (``keyong ledger export --to-storage``) lie here; the published-log verifier skips them.
EXPORTS_PREFIX = f"{PUBLISHED_PREFIX}/exports"

_NUMBER = r"(0|[1-9][0-9]{0,18})"
_KEYS = (
    ("note", re.compile(rf"^ledger/checkpoints/{_NUMBER}$")),
    ("checkpoint", re.compile(rf"^ledger/checkpoints/{_NUMBER}\.json$")),
    ("entries", re.compile(rf"^ledger/entries/{_NUMBER}-{_NUMBER}\.jsonl$")),
    ("cosignature", re.compile(rf"^ledger/cosignatures/{_NUMBER}/([0-9a-f]{{64}})$")),
    ("export", re.compile(r"^ledger/exports/[^/]+$")),
)
TILES_PREFIX = f"{PUBLISHED_PREFIX}/tile/"


class Listed(Protocol):
    @property
    def key(self) -> str: ...


class ObjectStore(Protocol):
    """What publishing and verifying need of a store; ``core.Storage`` (local or S3) has it."""

    def put(self, key: str, data: bytes) -> object:
        """Create-only: raises when the key is taken."""
        ...

    def read(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> Iterable[Listed]: ...


@dataclass(frozen=True)
class _Listed:
    key: str


class DirectoryStore:
    """A copy of the bucket on disk, read-only: what ``python -m ledger.published_verify DIR`` reads.

    A regulator may download ``ledger/`` with any S3 client and check it with nothing of Keyong's
    installed but this package. Keys are relative POSIX paths; one that leaves the directory is refused.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = self.root.resolve().as_uri()

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if key.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise LedgerError(f"not a storage key: {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes) -> object:
        raise LedgerError(f"{self.url} is a read-only copy: {key} is not written")

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise LedgerError(f"no object {key} in {self.url}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterable[Listed]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        files = (p for p in base.rglob("*") if p.is_file() and not p.name.endswith(".part"))
        return [_Listed(p.relative_to(self.root).as_posix()) for p in sorted(files)]


class PublishConflictError(LedgerError):
    """A published object holds other bytes than the database says it must: the bucket was altered."""


@dataclass(frozen=True)
class PublishedKey:
    """A key under ``ledger/`` read back: its kind and the numbers in it (``digest`` for cosignatures)."""

    kind: str
    numbers: tuple[int, ...]
    digest: str = ""


def checkpoint_note_key(tree_size: int) -> str:
    return f"{PUBLISHED_PREFIX}/checkpoints/{tree_size}"


def checkpoint_json_key(tree_size: int) -> str:
    return f"{PUBLISHED_PREFIX}/checkpoints/{tree_size}.json"


def entries_key(first: int, last: int) -> str:
    return f"{PUBLISHED_PREFIX}/entries/{first}-{last}.jsonl"


def cosignature_key(tree_size: int, line: str) -> str:
    """Content-addressed: the key names the line's SHA-256, so an altered line no longer fits its key."""
    return f"{PUBLISHED_PREFIX}/cosignatures/{tree_size}/{hashlib.sha256(line.encode('utf-8')).hexdigest()}"


def parse_published_key(key: str) -> PublishedKey | None:
    """What a key under ``ledger/`` is, or ``None`` for anything the layout does not have."""
    if key.startswith(TILES_PREFIX):
        tile = parse_tile_path(key.removeprefix(f"{PUBLISHED_PREFIX}/"))
        return None if tile is None else PublishedKey("tile", tile)
    for kind, pattern in _KEYS:
        match = pattern.match(key)
        if match is None:
            continue
        groups = match.groups()
        if kind == "cosignature":
            return PublishedKey(kind, (int(groups[0]),), groups[1])
        return PublishedKey(kind, tuple(int(g) for g in groups if g is not None))
    return None


def entry_line(entry: dict[str, Any]) -> bytes:
    """One entries-object line: canonical JSON of the hashed fields plus ``hash``, then a newline."""
    return canonical_json(entry) + b"\n"


def _batches(start: int, end: int) -> list[tuple[int, int]]:
    """Entries ``start+1 .. end`` cut at multiples of :data:`BATCH`: the same cuts whoever publishes."""
    cuts: list[tuple[int, int]] = []
    first = start + 1
    while first <= end:
        last = min(end, (first - 1) // BATCH * BATCH + BATCH)
        cuts.append((first, last))
        first = last + 1
    return cuts


def _tile(source: DbNodeSource, level: int, index: int, width: int) -> bytes:
    """A tlog-tiles hash tile from the database: leaf hashes at level 0, stored perfect nodes above."""
    start = index * TILE_WIDTH
    if level == 0:
        return b"".join(source.leaf_hashes(start, start + width))
    coords = [(8 * level, i) for i in range(start, start + width)]
    found = source.perfect_nodes(coords)
    if len(found) != width:
        raise LedgerError(f"the ledger's Merkle nodes for tile {level}/{index} are incomplete: nothing published")
    return b"".join(found[c] for c in coords)


@dataclass
class PublishResult:
    """What one publication did: checkpoints newly complete, objects written, objects already there."""

    published: list[int] = field(default_factory=list)
    written: int = 0
    present: int = 0
    latest: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"published": self.published, "written": self.written, "present": self.present, "latest": self.latest}


class LedgerPublisher:
    """Writes the database's checkpoints, entries and cosignatures to a store, catching up from where it stands."""

    def __init__(self, engine: Engine, store: ObjectStore) -> None:
        self._engine = engine
        self._store = store
        # What this publisher has seen complete in the store: after the first (listing) publication a
        # long-lived publisher (the server's loop) neither lists nor re-reads the whole prefix again.
        self._done: int | None = None
        self._cosigned: set[str] = set()

    def state(self) -> tuple[int, int]:
        """(latest checkpoint size, cosignature count): cheap, so a loop publishes only on a change."""
        with self._engine.connect() as connection:
            size = connection.execute(select(func.coalesce(func.max(checkpoints.c.tree_size), -1))).scalar_one()
            count = connection.execute(select(func.count()).select_from(cosignatures)).scalar_one()
        return int(size), int(count)

    def publish(self, *, recheck: bool = False) -> PublishResult:
        """Publish every checkpoint not yet complete in the store, and every cosignature not yet there.

        A checkpoint counts as published once its ``.json`` is listed (written last). The first call
        lists ``ledger/``; later calls on the same publisher start after the checkpoint it last saw
        complete. ``recheck`` re-derives every object and compares it with the stored bytes (slow;
        after an incident).
        """
        result = PublishResult()
        first = recheck or self._done is None
        listed = {item.key for item in self._store.list(PUBLISHED_PREFIX)} if first else self._cosigned
        done = -1 if first or self._done is None else self._done
        with read_transaction(self._engine) as connection:
            cps = all_checkpoints(connection)
            previous = 0
            for signed in cps:
                pending = signed.tree_size > done and checkpoint_json_key(signed.tree_size) not in listed
                if recheck or pending:
                    self._publish_checkpoint(connection, signed, previous, result)
                    result.published.append(signed.tree_size)
                previous = signed.tree_size
            rows = connection.execute(
                select(cosignatures.c.tree_size, cosignatures.c.line).order_by(
                    cosignatures.c.tree_size, cosignatures.c.witness
                )
            ).all()
        cosigned: set[str] = set()
        for tree_size, line in rows:
            text = line if line.endswith("\n") else line + "\n"
            key = cosignature_key(int(tree_size), text)
            if recheck or key not in listed:
                self._put(key, text.encode("utf-8"), result)
            cosigned.add(key)
        result.latest = cps[-1].tree_size if cps else None
        self._done, self._cosigned = (result.latest if result.latest is not None else -1), cosigned
        return result

    def _publish_checkpoint(
        self, connection: Connection, signed: SignedCheckpoint, previous: int, result: PublishResult
    ) -> None:
        """Entries first, then the note, then the ``.json`` that marks the checkpoint published."""
        for first, last in _batches(previous, signed.tree_size):
            rows = connection.execute(
                select(entries).where(entries.c.seq >= first, entries.c.seq <= last).order_by(entries.c.seq)
            ).all()
            if len(rows) != last - first + 1:
                raise LedgerError(f"the ledger has a hole between entries {first} and {last}: nothing published")
            self._put(entries_key(first, last), b"".join(entry_line(row_entry(r).as_json()) for r in rows), result)
        source = DbNodeSource(connection)
        for level, index, width in tiles_between(previous, signed.tree_size):
            self._put(
                f"{PUBLISHED_PREFIX}/{tile_path(level, index, width)}", _tile(source, level, index, width), result
            )
        self._put(checkpoint_note_key(signed.tree_size), signed.note.encode("utf-8"), result)
        path = consistency_proof(source, previous, signed.tree_size) if previous else []
        document = {**signed.as_json(), "consistency": {"old_size": previous, "path": [p.hex() for p in path]}}
        self._put(checkpoint_json_key(signed.tree_size), canonical_json(document) + b"\n", result)

    def _put(self, key: str, data: bytes, result: PublishResult) -> None:
        """Create-only; an existing object must hold exactly ``data`` (else :class:`PublishConflictError`)."""
        if not self._store.exists(key):
            try:
                self._store.put(key, data)
            except Exception:
                if not self._store.exists(key):
                    raise
                # another publisher won the race: its bytes must be ours
            else:
                result.written += 1
                return
        if self._store.read(key) != data:
            raise PublishConflictError(
                f"published object {key} differs from what the ledger database holds: "
                "the bucket was altered (or another log publishes there); nothing was overwritten"
            )
        result.present += 1
