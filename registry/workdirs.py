"""Each licence's work directory, and its destruction when the licence ends.

When a licence ends, the operator's working copies and outputs for it are destroyed and the
destruction is logged (双鸭山 第六十二条: 以数据覆写、物理销毁等不可逆方式删除相关数据; DESIGN.md). The
sandbox keeps everything of a licence under :meth:`Workdirs.workdir`, so that one tree is all there
is to destroy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from core import Actor, Change, RegistryError
from registry.config import RegistryConfig
from registry.models import DestructionRow, LicenceRow
from registry.operators import NAME_RE
from registry.usage import record_usage


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

        The deletion runs last inside the change: if it fails, the transaction rolls back and the
        licence stays as it was, so no destruction is ever recorded that did not happen. (Should the
        commit itself fail after the deletion, the files are gone unrecorded and the licence keeps its
        state; ending it again records an empty destruction — safe for the data, weaker as evidence.)
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
        if root.is_symlink():
            root.unlink()
        elif root.exists():
            shutil.rmtree(root)
        return record


__all__ = ["Workdirs"]
