"""Superseded licence copies: deleted once no queued or running job names them (red team 23, F8).

Why: a newer base copy of a dataset re-makes every living licence's copy of it. The licence's earlier copy
used to be deleted in the same transaction, so a job admitted with it (its spec names the copy and its
path) and still queued was then failed by the worker as "desensitized copy missing", as if data had been
lost: nothing leaked, but the operator's job was lost and the reason misled. A copy a queued or running job
names is therefore *held*: its row and files stay (new jobs mount the successor: the scope check picks the
copy of the newest base version), the hold is ledgered (``licence.copy_held``), and it is deleted
(``licence.copy_deleted``, reason "superseded") at the next :meth:`registry.linkage.LicenceCopies.sweep`
— run before every job's admission (``ensure_for``), whenever a licence's copies are made (``ensure``) and
after a newer base copy (``refresh_dataset``) — once no queued or running job names it. Keeping a copy no
longer than a job needs it is what 双鸭山 第六十二条 and data minimisation ask; a licence that ends drops
every copy of it at once, held or not (its jobs never run: the worker refuses an ended licence).

Which copies jobs name is the sandbox's to say (its jobs table): ``copies_in_use`` is composed in by
``app.instance`` (``sandbox.holds.licence_copies_in_use``), as retention's ``jobs_using`` is. Without it
(a registry used alone) a superseded copy is deleted at once, as before.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import Change, RegistryError, Storage
from registry.models import LicenceCopyRow
from registry.objects import delete_object, delete_set

__all__ = ["CopiesInUse", "delete_copies", "free_superseded", "plain", "supersede", "superseded"]

#: ``copies_in_use()``: the ids of the licence copies that queued or running jobs name.
CopiesInUse = Callable[[], set[int]]


def supersede(change: Change, storage: Storage, licence_id: int, resource_id: int, in_use: CopiesInUse | None) -> None:
    """The licence's earlier copies of a dataset: deleted (files once the change commits), or held while a
    queued or running job names them (ledgered)."""
    older = change.session.scalars(
        select(LicenceCopyRow).where(LicenceCopyRow.licence_id == licence_id, LicenceCopyRow.resource_id == resource_id)
    ).all()
    named = in_use() if in_use is not None and older else set()
    free = [row for row in older if row.id not in named]
    for row in older:
        if row.id in named:
            change.log(
                "licence.copy_held",
                f"licence:{row.licence_id}",
                {
                    "copy": row.id,
                    "base_version": row.base_version,
                    "reason": "superseded; kept while a queued or running job names it, deleted after",
                },
            )
    delete_copies(change, storage, free, reason="superseded")


def superseded(session: Session) -> builtins.list[LicenceCopyRow]:
    """Every copy with a newer copy of the same licence and dataset (the newest has the highest id)."""
    newest = (
        select(LicenceCopyRow.licence_id, LicenceCopyRow.resource_id, func.max(LicenceCopyRow.id).label("newest"))
        .group_by(LicenceCopyRow.licence_id, LicenceCopyRow.resource_id)
        .subquery()
    )
    query = (
        select(LicenceCopyRow)
        .join(
            newest,
            (newest.c.licence_id == LicenceCopyRow.licence_id) & (newest.c.resource_id == LicenceCopyRow.resource_id),
        )
        .where(LicenceCopyRow.id < newest.c.newest)
        .order_by(LicenceCopyRow.id)
    )
    return list(session.scalars(query))


def free_superseded(session: Session, in_use: CopiesInUse | None) -> builtins.list[int]:
    """The superseded copies no queued or running job names any more (ids): to delete now."""
    rows = superseded(session)
    if not rows:
        return []
    named = in_use() if in_use is not None else set()
    return [row.id for row in rows if row.id not in named]


def delete_copies(change: Change, storage: Storage, rows: builtins.list[LicenceCopyRow], *, reason: str) -> None:
    """Rows deleted with the change, their objects once it commits (a shared base file is not the licence's)."""
    for row in rows:
        files = (row.path, row.fingerprints)
        change.session.delete(row)
        if row.shares_base:  # only its row goes: the base file is not the licence's
            continue
        change.log(
            "licence.copy_deleted",
            f"licence:{row.licence_id}",
            {"copy": row.id, "base_version": row.base_version, "reason": reason},
        )
        change.on_commit(_remover(storage, *files))
    change.session.flush()


def plain(value: Any) -> Any:
    """The report as plain JSON values: numpy scalars as Python ones, NaN and infinities as None (a JSON
    column on PostgreSQL and the ledger's canonical JSON take neither); anything else is refused."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise RegistryError(f"the joint report holds a {type(value).__name__}, not JSON: it cannot be recorded")


def _remover(storage: Storage, copy: str, prints: str | None) -> Callable[[], None]:
    """Removes a copy's objects once called (after the commit that deleted their row)."""

    def remove() -> None:
        delete_object(storage, copy)
        if prints:
            delete_set(storage, prints)

    return remove
