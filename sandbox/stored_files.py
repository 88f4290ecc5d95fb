"""Job outputs and product artifacts as the server reads them: objects in the instance's storage (issue 19).

Why a module of its own: the rows (``jobs.outputs``, ``products.artifacts``) record storage keys (the
home-relative paths they always recorded), and the worker that wrote an output may be on another host,
or gone. So the server never opens ``home / path``: it reads the object through the storage named by
``RegistryConfig.storage`` (the home itself on an embedded instance) and unseals it frame by frame
(:meth:`registry.AtRest.object_chunks`), writing plaintext only where a delivery is stamped.
An absolute path (a row from before the home layout) is read only inside the home's ``work/`` and
``products/`` trees (:meth:`registry.AtRest.artifact_chunks`): a forged row never names another file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from core import Recorder, Storage
from registry import AtRest, DataKeys, RegistryConfig

__all__ = ["config_storage", "deliver_file", "stored_at_rest", "write_plain"]


def config_storage(config: RegistryConfig) -> Storage:
    """The storage of ``config`` (``RegistryConfig.storage``), else the home: the embedded default."""
    return config.artifacts()  # the registry's one rule for where artifacts lie


def stored_at_rest(recorder: Recorder, config: RegistryConfig) -> AtRest:
    """The at-rest sealer over ``config``'s data keys and storage."""
    return AtRest(DataKeys(recorder, config), Path(config.home), config_storage(config))


def write_plain(at_rest: AtRest, key: str, target: Path, *, mode: int = 0o600) -> Path:
    """The plaintext of ``key`` written to ``target`` (created new); removed again on any failure. ``key`` is
    a storage key, or a legacy path inside the home's work/ or products/ (red team 19, B1)."""
    return at_rest.artifact_to(key, target, mode=mode)


def deliver_file(made: Path, target: Path) -> None:
    """Move ``made`` to ``target`` atomically: a rename on one filesystem, else a copy renamed into place."""
    try:
        os.replace(made, target)
    except OSError:  # another filesystem (EXDEV): never a half-written file under the final name
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(made, partial)
        os.replace(partial, target)
