"""What the registry holds, counted for the instance-wide usage report (issue 22, SATRE 2.2.13).

Counts and byte totals only: no names of people, no data, no reasons. Bytes are measured on the
files under the instance home, by what the registry keeps there (its layout: ``vault/`` raw copies,
``copies/`` desensitized copies, ``fingerprints/``, ``work/`` job attempts' outputs, ``products/``), so
the report states what is stored, not what the rows claim. Symbolic links are not followed (a link
out of the home is counted as the link itself).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import Storage
from registry.leftovers import COPIES_DIRECTORY, FINGERPRINTS_DIRECTORY, PRODUCT_STORE
from registry.models import LicenceRow, OperatorRow, ProductRow, ResourceRow, VersionRow

#: Top-level directories of the home by kind; anything else is ``other`` (the database, secrets, logs…).
STORED_KINDS = {
    "vault_raw": "vault",
    "copies": COPIES_DIRECTORY,
    "fingerprints": FINGERPRINTS_DIRECTORY,
    "outputs": "work",
    "products": PRODUCT_STORE,
}


def _tree_bytes(root: Path) -> tuple[int, int]:
    """``(files, bytes)`` under ``root``, without following links; unreadable entries are skipped."""
    files = total = 0
    for folder, _dirs, names in os.walk(root, followlinks=False, onerror=None):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:  # removed meanwhile (a sweep, a purge): not stored any more
                continue
            files += 1
    return files, total


def _stored(storage: Storage, prefix: str) -> tuple[int, int]:
    """``(objects, bytes)`` under ``prefix`` of an object storage (issue 19)."""
    files = total = 0
    for info in storage.list(prefix):
        files += 1
        total += info.size
    return files, total


def stored_bytes(home: Path, storage: Storage | None = None) -> dict[str, dict[str, int]]:
    """Files and bytes per kind (:data:`STORED_KINDS`, plus ``other`` and ``total``): under the home, or
    in ``storage`` (the registry's ``config.artifacts()``) for a kind it keeps elsewhere than the home."""
    out: dict[str, dict[str, int]] = {}
    known = set(STORED_KINDS.values())
    for kind, directory in STORED_KINDS.items():
        local = storage.local_path(directory) if storage is not None else home / directory
        if storage is not None and local != home / directory:
            files, size = _stored(storage, directory)
        else:
            files, size = _tree_bytes(home / directory) if (home / directory).is_dir() else (0, 0)
        out[kind] = {"files": files, "bytes": size}
    other_files = other_bytes = 0
    if home.is_dir():
        for entry in home.iterdir():
            if entry.name in known:
                continue
            if entry.is_dir() and not entry.is_symlink():
                files, size = _tree_bytes(entry)
            else:
                files, size = 1, entry.lstat().st_size
            other_files += files
            other_bytes += size
    out["other"] = {"files": other_files, "bytes": other_bytes}
    out["total"] = {
        "files": sum(v["files"] for v in out.values()),
        "bytes": sum(v["bytes"] for v in out.values()),
    }
    return out


def _by(session: Session, column: Any, *where: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    return {str(key): int(n) for key, n in sorted(rows, key=lambda r: str(r[0]))}


def registry_counts(session: Session, since: datetime | None) -> dict[str, Any]:
    """Operators, licences, datasets, versions and products: totals by state, and how many are new since
    ``since`` (when given)."""
    new: dict[str, int] = {}
    if since is not None:
        new = {
            "operators": int(session.scalar(select(func.count()).where(OperatorRow.created_at >= since)) or 0),
            "licences": int(session.scalar(select(func.count()).where(LicenceRow.created_at >= since)) or 0),
            "datasets": int(session.scalar(select(func.count()).where(ResourceRow.created_at >= since)) or 0),
            "versions": int(session.scalar(select(func.count()).where(VersionRow.created_at >= since)) or 0),
            "products": int(session.scalar(select(func.count()).where(ProductRow.registered_at >= since)) or 0),
        }
    return {
        "operators": {
            "total": int(session.scalar(select(func.count()).select_from(OperatorRow)) or 0),
            "by_qualification": _by(session, OperatorRow.qualification),
        },
        "licences_by_state": _by(session, LicenceRow.state),
        "datasets_by_state": _by(session, ResourceRow.state),
        "versions_by_kind": _by(session, VersionRow.kind, VersionRow.deleted_at.is_(None)),
        "versions_deleted": int(session.scalar(select(func.count()).where(VersionRow.deleted_at.is_not(None))) or 0),
        "products_by_state": _by(session, ProductRow.state),
        "new_in_window": new,
    }


__all__ = ["STORED_KINDS", "registry_counts", "stored_bytes"]
