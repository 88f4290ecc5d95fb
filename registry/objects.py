"""Removing the registry's objects through :class:`core.Storage`: one object, or a set under a prefix.

Why one place: a fingerprint set is several objects under one key prefix (``fingerprints/NAME/STEM/``,
``licence-copies/ID/STEM.prints/``), and on the embedded home it is also a directory that should go
with its files, as it always did. Retention, licence ends and refused commits all remove objects here;
nothing else deletes an artifact (the sweeper aside: :mod:`core.storage_sweep`, objects no row names).
"""

from __future__ import annotations

import contextlib
import shutil

from core import Storage, StorageError

__all__ = ["delete_object", "delete_set"]


def delete_object(storage: Storage, key: str) -> None:
    """Remove ``key`` (absent is not an error); an emptied directory of the home is left for the sweep."""
    storage.delete(key)


def delete_set(storage: Storage, prefix: str) -> None:
    """Remove every object under ``prefix`` and, on the home, the directory that held them."""
    with contextlib.suppress(StorageError):
        for info in list(storage.list(prefix)):
            storage.delete(info.key)
    local = storage.local_path(prefix)
    if local is not None and local.is_dir() and not local.is_symlink():
        shutil.rmtree(local, ignore_errors=True)
