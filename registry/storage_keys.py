"""Every storage key the registry's rows refer to, for the sweeper of unreferenced objects (issue 19).

Why: objects are put before the row that names them commits, so a writer that dies in between leaves an
object no row names; :mod:`core.storage_sweep` removes such objects after a grace period. It may remove
only what *no* row names, so this list errs on the side of keeping: a key is listed if any row of the
registry could still lead a reader to it. The sweeper composes this with the sandbox's own list
(job outputs) through the ``ReferencedKeys`` protocol (``storage_keys()``).

What is listed:

* every live dataset version's object (``vault/…`` raw, ``copies/…`` desensitized; ``datasets/…`` of an
  earlier layout), and its fingerprint set (the files the report records; for a set recorded before
  issue 19, whatever is stored under its prefix). A deleted version's objects are *not* listed: retention
  destroyed them (双鸭山 第六十二条 销毁), and any that a crash left are the sweeper's to remove;
* every licence copy and its fingerprint set (``licence-copies/…``);
* every registered product's store (``products/NAME/…``, in any state: a product's files are deleted by
  retention, never by the sweeper) and each artifact path that is a storage key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from core import Storage, StorageError, check_key
from registry.leftovers import PRODUCT_STORE
from registry.models import LicenceCopyRow, ProductRow, VersionRow

__all__ = ["referenced_keys"]


def _key(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return check_key(value)
    except StorageError:
        return None  # an absolute path of an earlier layout, or a forged row: never a key to keep or follow


def _set(storage: Storage, prefix: object, files: object) -> Iterator[str]:
    """The keys of a fingerprint set: its recorded files, else what is stored under its prefix."""
    base = _key(prefix)
    if base is None:
        return
    if isinstance(files, Mapping) and files:
        yield from (f"{base}/{name}" for name in files)
        return
    yield from (info.key for info in storage.list(base))


def referenced_keys(session: Session, storage: Storage) -> Iterator[str]:
    """Every key the registry's rows name (module docstring), each at most once."""
    seen: set[str] = set()
    for key in _all(session, storage):
        if key not in seen:
            seen.add(key)
            yield key


def _all(session: Session, storage: Storage) -> Iterator[str]:
    for path, report in session.execute(
        select(VersionRow.path, VersionRow.report).where(VersionRow.deleted_at.is_(None))
    ):
        if (key := _key(path)) is not None:
            yield key
        facts: Mapping[str, Any] = report or {}
        if facts.get("fingerprints"):
            yield from _set(storage, facts["fingerprints"], facts.get("fingerprint_files"))
    if inspect(session.connection()).has_table(LicenceCopyRow.__tablename__):
        copies = select(LicenceCopyRow.path, LicenceCopyRow.fingerprints, LicenceCopyRow.report)
        for path, prints, report in session.execute(copies):
            if (key := _key(path)) is not None:
                yield key
            if prints:
                yield from _set(storage, prints, (report or {}).get("fingerprint_files"))
    for name, artifacts in session.execute(select(ProductRow.name, ProductRow.artifacts)):
        if (store := _key(f"{PRODUCT_STORE}/{name}")) is not None:
            yield from (info.key for info in storage.list(store))
        for artifact in artifacts or []:
            if isinstance(artifact, Mapping) and (key := _key(artifact.get("path"))) is not None:
                yield key
