"""The start-up sweep: what multi-step writes left when their process died, removed or put back (issue 17).

Why one owner: every multi-step write of the registry (an ingest's vault file, a desensitized copy
and its fingerprints, a release's product store, a licence's destruction) writes files before the
transaction that records them commits. Each first notes, in a :class:`registry.scratch.Scratch` whose
``flock`` lives as long as its process, the home-relative paths it may create; the files carry names
no committed row uses yet; the scratch is released only after the commit or the rollback. So after a
``kill -9`` at any step the home holds at most: a dead scratch, files no committed row names (removed
here), or a licence tree moved aside for destruction (settled by :func:`registry.workdirs.settle_tombstones`).

The invariant users see: a version, a product or a destruction exists with its files, or neither
does; the ledger (appended in the same transaction as the rows) records exactly what committed.

Safe beside live operations in other processes, by order: list the candidates first, then learn which
operations are live (their noted paths are spared), then read which paths committed rows name (a live
operation commits before it releases its scratch). Cheap: directory listings two levels deep, two
narrow queries (version paths, product names) and a ``stat`` per named path, which also finds the
rows whose files are gone (reported, never created by a crash: files are written before their rows
commit and removed only after, Keyong never deletes a version's or a product's files).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from core import Recorder
from registry.models import LicenceCopyRow, ProductRow, VersionRow
from registry.scratch import Swept, sweep
from registry.vault import DIRECTORY as VAULT_DIRECTORY
from registry.workdirs import list_tombstones, settle_tombstones

COPIES_DIRECTORY = "copies"
FINGERPRINTS_DIRECTORY = "fingerprints"
PRODUCT_STORE = "products"
LICENCE_COPIES_DIRECTORY = "licence-copies"

_log = logging.getLogger(__name__)


def _version_paths(session: Session) -> set[str]:
    return set(session.scalars(select(VersionRow.path)))


def _fingerprint_paths(session: Session) -> set[str]:
    """A copy ``copies/NAME/STEM.parquet.kyv`` (sealed, issue 22) or ``STEM.parquet`` (written in clear by an
    earlier Keyong) has its fingerprints at ``fingerprints/NAME/STEM``."""
    found = set()
    for path in session.scalars(select(VersionRow.path).where(VersionRow.path.startswith(f"{COPIES_DIRECTORY}/"))):
        parts = path.split("/")
        stem = parts[-1].removesuffix(".kyv")
        if len(parts) == 3 and stem.endswith(".parquet"):
            found.add(f"{FINGERPRINTS_DIRECTORY}/{parts[1]}/{stem.removesuffix('.parquet')}")
    return found


def _licence_copy_paths(session: Session) -> set[str]:
    """A licence copy ``licence-copies/ID/STEM.parquet.kyv`` and its prints ``licence-copies/ID/STEM.prints``
    (issue 23; a copy sharing its base file names a path outside this tree, which is ignored here)."""
    found: set[str] = set()
    if not inspect(session.connection()).has_table(LicenceCopyRow.__tablename__):
        return found  # a schema before 0019 (rolled back, or an older Keyong's run): no row names any copy
    for path, prints in session.execute(select(LicenceCopyRow.path, LicenceCopyRow.fingerprints)):
        found.update(p for p in (path, prints) if p)
    return found


def _product_paths(session: Session) -> set[str]:
    return {f"{PRODUCT_STORE}/{name}" for name in session.scalars(select(ProductRow.name))}


@dataclass(frozen=True, slots=True)
class Tree:
    """Entries of the home (``depth`` levels below ``directory``) that exist only while a row names them."""

    directory: str
    depth: int
    referenced: Callable[[Session], set[str]]


TREES = (
    Tree(VAULT_DIRECTORY, 2, _version_paths),  # vault/NAME/vN-ID.kyv: a raw version's sealed copy
    Tree(COPIES_DIRECTORY, 2, _version_paths),  # copies/NAME/STEM.parquet: a desensitized version
    Tree(FINGERPRINTS_DIRECTORY, 2, _fingerprint_paths),  # fingerprints/NAME/STEM/: that version's prints
    Tree(PRODUCT_STORE, 1, _product_paths),  # products/NAME/: a registered product's files
    Tree(LICENCE_COPIES_DIRECTORY, 2, _licence_copy_paths),  # licence-copies/ID/STEM.*: a licence's copy
)


def _entries(home: Path, tree: Tree) -> list[str]:
    """Home-relative names ``tree.depth`` levels below its directory (os.scandir: pathlib costs 10× more)."""
    level = [tree.directory]
    for _ in range(tree.depth):
        below: list[str] = []
        for relative in level:
            try:
                with os.scandir(os.path.join(home, relative)) as listing:
                    below.extend(f"{relative}/{entry.name}" for entry in listing)
            except (NotADirectoryError, FileNotFoundError):
                continue
        level = below
    return sorted(level)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def sweep_home(home: Path, recorder: Recorder, *, trees: Sequence[Tree] = TREES) -> Swept:
    """Remove dead operations' scratch and the files no committed row names; settle tombstones; report
    the rows whose files are gone (``Swept.missing``: nothing of Keyong deletes them, so the disk or a
    hand did, and the host must restore them from a backup).

    ``trees``: the artifact trees kept in the home; none when the artifacts lie in an object storage
    (issue 19: their leftovers are the object sweeper's, and a row's object is not missing from the home).
    """
    home = Path(home)
    listed = [(tree, _entries(home, tree)) for tree in trees]
    tombstones = list_tombstones(home)
    swept = sweep(home)
    with recorder.read() as session:
        cache: dict[Any, set[str]] = {}
        for tree, entries in listed:
            if tree.referenced not in cache:
                cache[tree.referenced] = tree.referenced(session)
            named = cache[tree.referenced]
            for relative in entries:
                if relative not in named and not swept.is_live(relative):
                    _remove(home / relative)
                    swept.removed.append(relative)
            prefix = f"{tree.directory}/"
            root = str(home)
            swept.missing.extend(
                sorted(r for r in named if r.startswith(prefix) and not os.path.exists(os.path.join(root, r)))
            )
        if tombstones:
            swept.removed.extend(settle_tombstones(home, tombstones, swept, session))
    for removed in swept.removed:
        _log.warning("settled %s, left by an operation that did not finish", removed)
    for missing in swept.missing:
        _log.error("%s is named by a committed row but missing from the home: restore it from a backup", missing)
    return swept


def reclaim(home: Path, relative: str) -> bool:
    """Remove ``relative``, which the caller found no committed row names, unless a live operation noted it.

    For a long-running process that meets a dead operation's leftover before any start has swept it
    (a server approving a release whose store a killed CLI vote left): ``True`` if it is gone.
    """
    if sweep(home).is_live(relative):
        return False
    _remove(Path(home) / relative)
    _log.warning("removed %s, left by an operation that did not finish", relative)
    return True


__all__ = [
    "COPIES_DIRECTORY",
    "FINGERPRINTS_DIRECTORY",
    "LICENCE_COPIES_DIRECTORY",
    "PRODUCT_STORE",
    "TREES",
    "Tree",
    "reclaim",
    "sweep_home",
]
