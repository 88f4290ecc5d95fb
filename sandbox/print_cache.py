"""The guard's fingerprint sets, kept by a worker between jobs under the identity the database records.

Why (issue 21): loading a set (fetch each object from the storage, unseal it, check its SHA-256 against
the row, read the arrays and re-check them) cost a worker ~65 ms of every small job, twice the judgement
itself, for sets that never change: a set is written once with its copy and the row records each file's
plaintext SHA-256 (``fingerprint_files``, issue 19). So a worker keeps the sets it loaded, keyed by
*what the row records now*: where the set lies and the digest of every file. Each job reads that record
again (one small query) and re-uses a set only when it is the same; a row that names other files or other
digests (a new copy, a reused id) misses and loads afresh, exactly as before. A row that records no
digests (a set from before issue 19) is never cached: nothing would tell a changed set from the kept one.

Fail closed, as the guard is: any error reading the record is an error of the fingerprints (the caller
then judges without them and sends the output to review at best, ``guard.no_fingerprints``), never a
silent use of a kept set. The arrays of a kept set are made read-only, so no judgement can alter what the
next one probes with. The cache is small and bounded (``MAX_SETS`` sets and ``MAX_BYTES`` of arrays, least
recently used first out; a set larger than the bound alone is not kept): a worker's jobs read few
datasets, and a set of a large table is large.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Engine

__all__ = ["MAX_BYTES", "MAX_SETS", "PrintCache", "base_identity", "licence_identity"]

MAX_SETS = 8
#: The most array bytes kept at once (a set of a million-row table is tens of MB; the newest stays).
MAX_BYTES = 256 << 20
T = TypeVar("T")


def _json(value: Any) -> Any:
    """A JSON column as SQLite (text) or PostgreSQL (decoded) returns it through ``text()``."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _identity(kind: str, owner: Hashable, prefix: Any, files: Any) -> tuple[Hashable, ...] | None:
    """The recorded identity of one set; ``None`` (never cached) without a prefix or recorded digests."""
    if not isinstance(prefix, str) or not prefix or not isinstance(files, Mapping) or not files:
        return None
    if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in files.items()):
        return None
    return (kind, owner, prefix, tuple(sorted(files.items())))


def base_identity(engine: Engine, dataset: str, version: int) -> tuple[Hashable, ...] | None:
    """What ``dataset_versions`` records now for the prints of ``dataset`` v``version`` (a desensitized copy)."""
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT v.report FROM dataset_versions v JOIN resources r ON r.id = v.resource_id "
                "WHERE r.name = :name AND v.version = :version AND v.kind = 'desensitized'"
            ),
            {"name": dataset, "version": int(version)},
        ).first()
    report = _json(row[0]) if row is not None else None
    if not isinstance(report, Mapping):
        return None
    return _identity("base", (dataset, int(version)), report.get("fingerprints"), report.get("fingerprint_files"))


def licence_identity(engine: Engine, copy_id: int) -> tuple[Hashable, ...] | None:
    """What ``licence_copies`` records now for the prints of licence copy ``copy_id``."""
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT fingerprints, report, shares_base FROM licence_copies WHERE id = :id"), {"id": int(copy_id)}
        ).first()
    if row is None or bool(row[2]):
        return None
    report = _json(row[1])
    files = report.get("fingerprint_files") if isinstance(report, Mapping) else None
    return _identity("licence", int(copy_id), row[0], files)


def _nbytes(value: Any) -> int:
    """The bytes of a set's arrays (0 for what holds none)."""
    return sum(int(getattr(a, "nbytes", 0)) for a in (getattr(value, "arrays", None) or {}).values())


def _frozen(value: T) -> T:
    """The set with its arrays read-only (a ``FingerprintSet``; anything else is returned as it is)."""
    for array in (getattr(value, "arrays", None) or {}).values():
        flags = getattr(array, "flags", None)
        if flags is not None:
            flags.writeable = False
    return value


class PrintCache:
    """Sets by recorded identity, at most ``size`` of them (see the module docstring)."""

    def __init__(self, size: int = MAX_SETS, max_bytes: int = MAX_BYTES) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._sets: OrderedDict[tuple[Hashable, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, identity: Callable[[], tuple[Hashable, ...] | None], load: Callable[[], T]) -> T:
        """The kept set whose identity is the row's now, else ``load()`` (kept when the row names one both
        before and after the load: a row changing meanwhile is loaded again next time, never mis-kept)."""
        before = identity()
        if before is not None:
            with self._lock:
                if before in self._sets:
                    self._sets.move_to_end(before)
                    self.hits += 1
                    return self._sets[before]  # type: ignore[no-any-return]
        self.misses += 1
        loaded = load()
        if before is not None and loaded is not None and _nbytes(loaded) <= self.max_bytes and identity() == before:
            with self._lock:
                self._sets[before] = _frozen(loaded)
                while len(self._sets) > self.size or sum(map(_nbytes, self._sets.values())) > self.max_bytes:
                    self._sets.popitem(last=False)
        return loaded

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()
