"""The product store in an object storage (issue 19): approved outputs re-sealed as new objects.

Why not the staged-and-renamed directory of :mod:`sandbox.release_review`: an object store has no rename
and no in-place update. So each approved output is read from the storage (the worker that wrote it may be
on another host), its plaintext checked against the SHA-256 the guard judged, re-sealed under the
licence's products key and put create-only at ``products/<product>/<file>`` *before* the deciding vote's
transaction commits (the product row names those keys). If that transaction rolls back, the objects put
are deleted; killed in between, they are objects no row names, removed by the storage sweeper after its
grace period. Objects already under the product's prefix when its name is free are such leftovers of an
earlier attempt: they are removed first (no row refers to them); when the name is taken the approval is
refused, as the local store does.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import Change, ObjectExistsError, Storage, StorageError
from registry import PRODUCT_STORE, AtRest, VaultError, products_scope
from sandbox.copy_cache import private_dir
from sandbox.release_models import ReleaseError

__all__ = ["store_objects"]


def store_objects(
    change: Change,
    at_rest: AtRest,
    storage: Storage,
    product: str,
    outputs: builtins.list[dict[str, Any]],
    *,
    job_id: int,
    licence_id: int,
    name_taken: bool,
) -> tuple[builtins.list[dict[str, Any]], Callable[[], None]]:
    """The product's artifacts (``name``, ``bytes``, ``sha256``, ``path`` = key) and an undo that deletes them."""
    prefix = f"{PRODUCT_STORE}/{product}"
    leftovers = [o.key for o in storage.list(prefix)]
    if leftovers and name_taken:
        raise ReleaseError(f"the product store already holds {product!r}; nothing was registered")
    for key in leftovers:
        storage.delete(key)
    put: builtins.list[str] = []

    def undo() -> None:
        for key in put:
            storage.delete(key)

    artifacts: builtins.list[dict[str, Any]] = []
    try:
        with private_dir(at_rest, "keyong-release-") as directory:
            for index, output in enumerate(outputs):
                name = Path(str(output["name"])).name
                plain = directory / f"{index}.plain"
                _checked_plain(at_rest, str(output["path"]), plain, str(output["sha256"]), job_id, name)
                key = f"{prefix}/{name}"
                try:
                    stored = at_rest.put_object(key, plain, products_scope(licence_id), by=change.actor, change=change)
                except ObjectExistsError:
                    raise ReleaseError(f"the product store already holds {key}; nothing was registered") from None
                put.append(key)
                if stored.sha256 != output["sha256"]:
                    raise ReleaseError(f"output {name!r} of job {job_id} changed while it was staged")
                artifacts.append({"name": output["name"], "bytes": stored.size, "sha256": stored.sha256, "path": key})
    except BaseException:
        undo()
        raise
    return artifacts, undo


def _checked_plain(at_rest: AtRest, key: str, target: Path, sha256: str, job_id: int, name: str) -> None:
    """The output's plaintext at ``target``, checked against what the guard judged (:meth:`AtRest.stage_artifact`:
    a key, never an arbitrary absolute path, red team 19, B1); a missing or altered output is refused."""
    try:
        at_rest.stage_artifact(key, target, sha256=sha256)
    except (VaultError, StorageError, FileNotFoundError):  # StorageError: also a mismatch or a missing object
        raise ReleaseError(f"output {name!r} of job {job_id} is missing or changed since the guard judged it") from None
