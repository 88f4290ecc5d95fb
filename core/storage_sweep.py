"""The sweeper: objects no database row refers to, older than a grace period, are removed (issue 19).

Why: objects are written create-only *before* the row that names them commits (core.storage), so a
writer that dies between the two leaves an object no row names; and a replaced or purged artifact's
old object is left for the sweeper rather than deleted inside the transaction (a rolled-back
transaction must not have deleted what its row still names). The grace period (default 24 h) keeps
the objects of writers that are between their put and their commit right now.

Fail closed: the referenced set is read completely *before* anything is listed or deleted; if any
provider raises, nothing is deleted (:class:`SweepRefusedError`). An object is deleted only when its
key lies under one of the swept prefixes, no provider names it and it is older than the grace period.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from core.storage import Storage, StorageError, check_key

__all__ = [
    "DEFAULT_GRACE",
    "ReferencedKeys",
    "SweepRefusedError",
    "SweepReport",
    "referenced_keys",
    "sweep",
]

DEFAULT_GRACE = timedelta(hours=24)


@runtime_checkable
class ReferencedKeys(Protocol):
    """A domain service whose rows name storage objects: it lists every key they name (the registry's
    vault, copies, fingerprints and licence copies; the sandbox's job outputs, logs and products)."""

    def storage_keys(self) -> Iterable[str]: ...


class SweepRefusedError(StorageError):
    """The referenced set could not be read completely: the sweep deleted nothing."""


@dataclass(frozen=True)
class SweepReport:
    """What one sweep removed (or, with ``dry_run``, would remove) and what it kept."""

    prefixes: tuple[str, ...]
    deleted: tuple[str, ...]
    bytes: int
    kept_young: int
    kept_referenced: int
    dry_run: bool
    grace_seconds: float
    errors: tuple[str, ...] = field(default=())

    @property
    def count(self) -> int:
        return len(self.deleted)

    def as_json(self) -> dict[str, object]:
        return {
            "prefixes": list(self.prefixes),
            "deleted": list(self.deleted),
            "count": self.count,
            "bytes": self.bytes,
            "kept_young": self.kept_young,
            "kept_referenced": self.kept_referenced,
            "dry_run": self.dry_run,
            "grace_seconds": self.grace_seconds,
            "errors": list(self.errors),
        }


def referenced_keys(providers: Iterable[ReferencedKeys]) -> frozenset[str]:
    """Every key any provider names, read completely, or :class:`SweepRefusedError` (nothing half-read)."""
    keys: set[str] = set()
    for provider in providers:
        try:
            keys.update(provider.storage_keys())
        except Exception as exc:
            name = type(provider).__name__
            raise SweepRefusedError(
                f"the sweep deleted nothing: the keys {name} refers to could not be read ({type(exc).__name__}: {exc})"
            ) from None
    return frozenset(keys)


def sweep(
    storage: Storage,
    *,
    prefixes: Sequence[str],
    referenced: Iterable[str],
    grace: timedelta = DEFAULT_GRACE,
    now: datetime | None = None,
    dry_run: bool = False,
) -> SweepReport:
    """Delete objects under ``prefixes`` that are not in ``referenced`` and older than ``grace``.

    ``referenced`` is consumed whole before the first listing: a generator that raises midway aborts
    the sweep with nothing deleted. A failed delete is reported in ``errors`` and the sweep goes on
    (the object stays; the next sweep tries again); so is a prefix that cannot be listed safely (a
    symlink planted in the home, red team 19 B4): nothing under it is touched.
    """
    if grace < timedelta(0):
        raise StorageError("the sweeper's grace period cannot be negative")
    for prefix in prefixes:
        check_key(prefix)
    try:
        names = frozenset(referenced)
    except Exception as exc:
        raise SweepRefusedError(
            f"the sweep deleted nothing: the referenced keys could not be read ({type(exc).__name__}: {exc})"
        ) from None
    cutoff = (now or datetime.now(UTC)) - grace
    deleted: list[str] = []
    errors: list[str] = []
    size = young = kept = 0
    for prefix in prefixes:
        try:
            listed = list(storage.list(prefix))
        except StorageError as exc:  # e.g. the prefix is a symlink in the home: reported, never followed
            errors.append(str(exc))
            continue
        for info in listed:
            if info.key in names:
                kept += 1
            elif info.modified > cutoff:
                young += 1
            else:
                if not dry_run:
                    try:
                        storage.delete(info.key)
                    except StorageError as exc:
                        errors.append(str(exc))
                        continue
                deleted.append(info.key)
                size += info.size
    return SweepReport(
        prefixes=tuple(prefixes),
        deleted=tuple(deleted),
        bytes=size,
        kept_young=young,
        kept_referenced=kept,
        dry_run=dry_run,
        grace_seconds=grace.total_seconds(),
        errors=tuple(errors),
    )
