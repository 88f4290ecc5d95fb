"""Removing the registry's objects through :class:`core.Storage`: one object, or a set under a prefix.

Why one place: a fingerprint set is several objects under one key prefix (``fingerprints/NAME/STEM/``,
``licence-copies/ID/STEM.prints/``), and on the embedded home it is also a directory that should go
with its files, as it always did. Retention, licence ends and refused commits all remove objects here;
nothing else deletes an artifact (the sweeper aside: :mod:`core.storage_sweep`, objects no row names).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil

from core import Storage, StorageError, check_key, stream_sha256

__all__ = ["delete_object", "delete_set", "delete_stored", "stored", "stored_digest"]


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


def _object_digest(storage: Storage, key: str) -> tuple[str, int]:
    with storage.open(key) as handle:
        return stream_sha256(handle)


def stored_digest(storage: Storage, key: str) -> tuple[str | None, int]:
    """SHA-256 and size of the stored (sealed) bytes of object ``key``; of a set under ``key`` (fingerprints),
    SHA-256 of its sorted ``"relpath sha256"`` manifest lines (as ``registry.workdirs`` records a licence's
    tree); ``(None, 0)`` when nothing is stored there, or ``key`` is no storage key (a forged row: never followed).
    """
    try:
        check_key(key)
        if storage.exists(key):
            return _object_digest(storage, key)
        members = sorted(storage.list(key), key=lambda info: info.key)
    except StorageError:
        return None, 0
    if not members:
        return None, 0
    lines, total = [], 0
    for info in members:
        digest, size = _object_digest(storage, info.key)
        lines.append(f"{info.key[len(key) + 1 :]} {digest}\n")
        total += size
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest(), total


def delete_stored(storage: Storage, key: str) -> None:
    """Object ``key``, or the set under it, deleted; the emptied directory of the home with it."""
    if storage.exists(key):
        delete_object(storage, key)
    else:
        delete_set(storage, key)
    local = storage.local_path(key)
    if local is not None:
        with contextlib.suppress(OSError):
            local.parent.rmdir()  # only when it was the dataset's last file there


def stored(storage: Storage, key: str) -> bool:
    """Whether anything is stored at ``key`` (an object, or a set under it); cheap: no byte is read."""
    try:
        return storage.exists(check_key(key)) or next(iter(storage.list(key)), None) is not None
    except StorageError:
        return False
