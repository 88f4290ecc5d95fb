"""Each licence's work directory, and its destruction when the licence ends.

When a licence ends, the operator's working copies and outputs for it are destroyed and the
destruction is logged (双鸭山 第六十二条: 以数据覆写、物理销毁等不可逆方式删除相关数据; DESIGN.md). The
sandbox keeps everything of a licence under :meth:`Workdirs.workdir`, so that one tree is all there
is to destroy.

Crash safety (issue 17): inside the ending transaction the tree is only *moved* aside, to a tombstone
named for the destruction record (``work/<op>/.destroyed-licence-<id>-<record>-<manifest>``), under a
scratch that notes it; it is deleted once the transaction has committed, and moved back if it rolls
back. A process killed in between leaves a tombstone that the next start settles
(:func:`settle_tombstones`): deleted if its destruction record committed, moved back if not. So the
ledger never records a destruction that did not happen, and never misses one that did.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, Change, RegistryError, crash_point
from registry.atrest import licence_scope, products_scope
from registry.config import RegistryConfig
from registry.datakeys import destroy_scope
from registry.models import DestructionRow, LicenceRow
from registry.operators import NAME_RE
from registry.scratch import Scratch, Swept
from registry.usage import record_usage
from registry.vocabulary import LicenceState

WORK_DIRECTORY = "work"
_TOMBSTONE = re.compile(r"^\.destroyed-licence-(\d+)-(\d+)-([0-9a-f]{12})$")
_log = logging.getLogger(__name__)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def list_tombstones(home: Path) -> list[Path]:
    """The licence trees moved aside for destruction and not yet deleted (cheap: one level per operator)."""
    work = home / WORK_DIRECTORY
    if not work.is_dir():
        return []
    found: list[Path] = []
    with os.scandir(work) as operators:
        for operator in operators:
            if operator.is_dir(follow_symlinks=False):
                with os.scandir(operator.path) as entries:
                    found.extend(Path(e.path) for e in entries if e.name.startswith(".") and _TOMBSTONE.match(e.name))
    return sorted(found)


def settle_tombstones(home: Path, tombstones: list[Path], swept: Swept, session: Session) -> list[str]:
    """Delete the tombstones whose destruction committed; move back those whose transaction did not.

    ``tombstones`` were listed before ``swept`` learnt which operations are live; a live one's is spared.
    """
    settled: list[str] = []
    for tomb in tombstones:
        relative = tomb.relative_to(home).as_posix()
        match = _TOMBSTONE.match(tomb.name)
        if match is None or swept.is_live(relative) or not (tomb.exists() or tomb.is_symlink()):
            continue
        licence_id, record_id, manifest = int(match[1]), int(match[2]), match[3]
        committed = session.scalar(
            select(DestructionRow.id).where(
                DestructionRow.id == record_id,
                DestructionRow.licence_id == licence_id,
                DestructionRow.manifest_sha256.startswith(manifest),
            )
        )
        if committed is not None:
            _remove(tomb)
            settled.append(relative)
            continue
        root = tomb.with_name(f"licence-{licence_id}")
        if root.exists() or root.is_symlink():
            _log.warning("%s: its destruction never committed, but %s exists again; left for the host", tomb, root)
            continue
        os.rename(tomb, root)
        settled.append(relative)
    return settled


def tree_manifest(root: Path) -> tuple[list[str], int]:
    """``"relpath sha256"`` lines (sorted) of every file under ``root``, and their total bytes.

    Symbolic links are recorded by their target text (``symlink:`` prefix) and never followed, so a
    link a job planted cannot make the destruction read or delete anything outside the tree.
    """
    lines: list[str] = []
    total = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(directory)
        names = filenames + [d for d in dirnames if (base / d).is_symlink()]
        for name in names:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                digest = hashlib.sha256(b"symlink:" + os.readlink(path).encode("utf-8", "surrogateescape"))
            else:
                digest = hashlib.sha256()
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
                total += path.stat().st_size
            lines.append(f"{rel} {digest.hexdigest()}")
    return sorted(lines), total


class Workdirs:
    """Where a licence's work lives, and its destruction (the state machine calls :meth:`destroy`)."""

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config

    def workdir(self, operator: str, licence_id: int) -> Path:
        """Where the sandbox keeps everything for one licence: working copies, outputs, scratch.

        ``<home>/work/<operator>/licence-<id>``; the directory is not created here. Everything under it
        is destroyed when the licence ends, so nothing of a licence may be kept anywhere else.
        """
        if not NAME_RE.match(operator):
            raise RegistryError(f"{operator!r} is not an operator name")
        return self.config.home / "work" / operator / f"licence-{int(licence_id)}"

    def destroy(self, change: Change, row: LicenceRow, *, by: Actor) -> DestructionRow:
        """Destroy the licence's work directory and log what was destroyed (双鸭山 第六十二条).

        Every file is hashed (SHA-256), then the tree is deleted; a :class:`DestructionRow` keeps the
        file count, bytes and the SHA-256 of the manifest (sorted ``"relpath sha256\\n"`` lines), so an
        auditor holding a copy can prove which files existed without Keyong keeping any of them. A
        ``copy.destroyed`` usage record is written per dataset and ``licence.destroyed`` to the ledger.

        "Irreversible" here means the files are unlinked from a normal filesystem and nothing of them
        stays reachable through Keyong. It gives no guarantee against remnants on SSDs (wear levelling,
        TRIM timing), snapshots or backups of the volume; the stronger design is crypto-shredding —
        encrypt each licence's work area under its own key and destroy the key — which 第六十二条's
        数据覆写 would approach on storage that cannot overwrite in place.

        Inside the change the tree is only moved to its tombstone; it is deleted after the commit, or
        moved back if the transaction rolls back (or, after a ``kill -9``, by the next start's sweep),
        so no destruction is ever recorded that did not happen and none happens unrecorded.
        """
        root = self.workdir(row.operator.name, row.id)
        lines, total = tree_manifest(root) if root.is_dir() and not root.is_symlink() else ([], 0)
        manifest = hashlib.sha256("".join(f"{line}\n" for line in lines).encode("utf-8")).hexdigest()
        now = self.config.now()
        record = DestructionRow(
            licence_id=row.id, files=len(lines), bytes=total, manifest_sha256=manifest, by=by.name, at=now
        )
        change.session.add(record)
        change.session.flush()
        for ds in row.datasets:
            usage = record_usage(
                change.session,
                resource_id=ds.resource_id,
                event="copy.destroyed",
                licence_id=row.id,
                operator_id=row.operator_id,
                detail={"destruction": record.id, "manifest_sha256": manifest},
            )
            usage.at = now
        change.log(
            "licence.destroyed",
            f"licence:{row.id}",
            {"destruction": record.id, "files": len(lines), "bytes": total, "manifest_sha256": manifest},
            actor=by,
        )
        if root.is_symlink() or root.exists():
            self._move_aside(change, root, f".destroyed-{root.name}-{record.id}-{manifest[:12]}")
        self._shred(change, row, now)
        return record

    @staticmethod
    def _shred(change: Change, row: LicenceRow, now: datetime) -> None:
        """Destroy the licence's data keys with its files (crypto-shredding, issue 22, SATRE 2.8.01).

        The outputs' key goes whenever the licence ends: a copy of its work area left anywhere (a
        backup, a disk remnant) can no longer be read. The key of its products goes only on
        revocation: a product released under a licence that merely expired stays deliverable.
        """
        reason = f"licence {row.id} {row.state}"
        destroy_scope(change, licence_scope(row.id), now=now, reason=reason, covers="job outputs and logs")
        if row.state == str(LicenceState.REVOKED):
            destroy_scope(change, products_scope(row.id), now=now, reason=reason, covers="released products")

    def _move_aside(self, change: Change, root: Path, tomb_name: str) -> None:
        """Move the tree to its tombstone now; delete it after the commit, move it back on a rollback."""
        tomb = root.with_name(tomb_name)
        scratch = Scratch(self.config.home, purpose="destroy")
        try:
            scratch.note_paths(tomb.relative_to(self.config.home).as_posix())
            os.rename(root, tomb)
        except BaseException:
            scratch.close()
            raise
        crash_point("licence.tree-moved")

        def delete() -> None:
            crash_point("licence.destruction-committed")
            _remove(tomb)
            scratch.close()

        def restore() -> None:
            with contextlib.suppress(OSError):
                if not (root.exists() or root.is_symlink()):
                    os.rename(tomb, root)
            scratch.close()

        change.on_commit(delete)
        change.on_rollback(restore)


__all__ = ["WORK_DIRECTORY", "Workdirs", "list_tombstones", "settle_tombstones"]
