"""Retention per dataset version and the one recorded path by which data is deleted (SATRE 3.1.09, 2.2.06).

The custodian sets a retention period per dataset (``retention_days``; the instance default applies
when it has none, and none means "kept until purged"). Each version expires ``retention_days`` after
it was made; every version of a catalog entry whose revocation is final (黑龙江 第十六条: the six-month
grace has ended) is due too. The logs are another matter: usage records and the ledger are kept at
least three years (双鸭山 第二十条) and are never purged here; a deletion *adds* ledger entries.

:meth:`Retention.purge` is the only way data of a dataset version is deleted: the raw copy in the
vault, the desensitized copy, its fingerprints, the versions derived from it, and the products derived
only from the versions purged. It refuses while a live licence serves the version or a queued or
running job reads it or a release request still open was made from a job that read it (naming them:
a product must not be registered over data already deleted), records one ``data.deleted`` ledger
entry per file (what, why, by whom, its SHA-256 and size: never contents), marks each version deleted
in the catalog (its metadata stays) and each such product ``deleted``. Files are deleted after the
transaction commits; a process killed in between leaves files of versions marked deleted, which
:meth:`Retention.settle` (run at every start) deletes.
:func:`destroy_version_data` is where one version's data is destroyed.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core import (
    Actor,
    Change,
    NotFoundError,
    PermissionDeniedError,
    Recorder,
    RegistryError,
    Storage,
    require_role,
)
from registry.atrest import dataset_scope
from registry.catalog_rules import CUSTODIAN, catalog_row, subject
from registry.config import RegistryConfig
from registry.datakeys import destroy_scope
from registry.egress import Custodians, is_custodian
from registry.models import LicenceCopyRow, LicenceDatasetRow, LicenceRow, ProductRow, ResourceRow, VersionRow
from registry.objects import delete_stored, stored, stored_digest
from registry.vocabulary import LicenceState, ProductState, ResourceState, VersionKind

__all__ = ["DueVersion", "JobsUsing", "PurgeResult", "ReleasesUsing", "Retention", "destroy_version_data"]

#: ``jobs_using(dataset)``: the queued or running jobs that read the dataset, as ``(job id, version)``.
JobsUsing = Callable[[str], list[tuple[int, int | None]]]
#: ``releases_using(dataset)``: the open release requests whose job read the dataset, as ``(release id, version)``.
ReleasesUsing = Callable[[str], list[tuple[int, int | None]]]

MAX_RETENTION_DAYS = 36_500
_ENDED = {LicenceState.REVOKED.value, LicenceState.EXPIRED.value}


@dataclass(frozen=True, slots=True)
class DueVersion:
    """One live version and when it expires; ``due`` once that time has come, ``blocked`` says what holds it."""

    dataset: str
    version: int
    kind: str
    created_at: datetime
    retention_days: int | None
    expires_at: datetime | None
    due: bool
    why: str  # "retention" | "revoked" | ""
    blocked: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "kind": self.kind,
            "created_at": self.created_at.isoformat(),
            "retention_days": self.retention_days,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "due": self.due,
            "why": self.why,
            "blocked": self.blocked,
        }


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a purge deleted: versions, files (with their hashes) and products."""

    dataset: str
    versions: list[int]
    files: list[dict[str, Any]]
    products: list[str]
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "versions": self.versions,
            "files": self.files,
            "products": self.products,
            "reason": self.reason,
        }


def _inside(home: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside the home, or None for a path that leaves it (never followed)."""
    candidate = Path(relative) if Path(relative).is_absolute() else home / relative
    try:
        resolved = candidate.resolve()
    except OSError:
        return None
    base = home.resolve()
    return resolved if base in resolved.parents else None


def _unlink(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only when it was the dataset's last file there


def version_files(version: VersionRow) -> list[tuple[str, str]]:
    """``(what, home-relative path)`` of every file of one version: raw vault copy, or copy and fingerprints."""
    if version.kind == VersionKind.RAW.value:
        return [("raw", version.path)]
    files = [("copy", version.path)]
    report = version.report or {}
    if isinstance(report.get("fingerprints"), str):
        files.append(("fingerprints", report["fingerprints"]))
    return files


def destroy_version_data(
    change: Change, storage: Storage, dataset: str, version: VersionRow, *, reason: str, by: Actor
) -> list[dict[str, Any]]:
    """Destroy one dataset version's data: each object hashed (its stored, sealed bytes), ledgered
    (``data.deleted``) and deleted through ``storage`` once the change commits. The one place where a
    version's data is destroyed.

    The data key is per dataset, not per version (``registry.datakeys``): :meth:`Retention.purge`
    destroys it, in the same change, once no version of the dataset is left, so a copy of a file that
    survived (a backup, a disk remnant) stays unreadable.
    """
    deleted: list[dict[str, Any]] = []
    # Issue 23: the licences' copies derived from this version go with it (their rows, and their files).
    derived = change.session.scalars(select(LicenceCopyRow).where(LicenceCopyRow.base_version_id == version.id))
    files = list(version_files(version))
    for copy in derived.all():
        if not copy.shares_base:
            files += [("licence_copy", copy.path), ("licence_copy_fingerprints", copy.fingerprints or "")]
        change.session.delete(copy)
    for what, relative in [(w, r) for w, r in files if r]:
        sha256, size = stored_digest(storage, relative)
        record = {"what": what, "version": version.version, "sha256": sha256, "bytes": size, "reason": reason}
        change.log("data.deleted", subject(dataset), {**record, "present": sha256 is not None}, actor=by)
        deleted.append(record)
        if sha256 is not None:
            change.on_commit(functools.partial(delete_stored, storage, relative))
    return deleted


class Retention:
    """Retention periods, what is due, and the purge (custodian), over the registry's recorder."""

    def __init__(
        self,
        recorder: Recorder,
        config: RegistryConfig,
        *,
        default_days: int | None = None,
        custodians: Custodians | None = None,
    ) -> None:
        self.recorder = recorder
        self.config = config
        self.default_days = default_days
        #: Active custodian -> organisation (``registry.egress``): whose datasets a custodian may purge.
        self.custodians = custodians
        #: Set by the composition (``app.instance``): which queued or running jobs read a dataset.
        #: Without it a purge is refused, since a running job's data cannot be known to be free.
        self.jobs_using: JobsUsing | None = None
        #: Likewise (``app.instance``): which open release requests were made from a job that read a dataset.
        #: Without it a purge is refused too: a pending request's lineage cannot be known to be free.
        self.releases_using: ReleasesUsing | None = None

    def _own(self, row: ResourceRow, by: Actor, doing: str) -> None:
        """Only a custodian of the dataset (its publisher or its provider's department, as for egress) or the
        host sets its retention or purges it: another department's custodian never destroys data it does not
        hold (双鸭山 第四十四条 数据持有权; 第六十二条 销毁 by the holder). Without the hook, nobody (fail closed)."""
        if by.is_host:
            return
        active = dict(self.custodians()) if self.custodians is not None else {}
        if not is_custodian(by.name, row, active):
            raise PermissionDeniedError(
                f"{by.name!r} is not an active custodian of dataset {row.name!r} (provided by {row.provider_name}): "
                f"it may not {doing}"
            )

    # --- the period -------------------------------------------------------------------------

    def set_retention(self, name: str, days: int | None, *, by: Actor) -> dict[str, Any]:
        """Set (or clear, with None) how many days each version of ``name`` is kept after it was made."""
        require_role(by, CUSTODIAN)
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS
        ):
            raise RegistryError(
                f"retention must be a whole number of days from 1 to {MAX_RETENTION_DAYS}, not {days!r}"
            )
        with self.recorder.change(by) as change:
            row = catalog_row(change.session, name, lock=True)
            self._own(row, by, "set its retention")
            previous = row.retention_days
            row.retention_days = days
            row.updated_at = self.config.now()
            change.log("dataset.retention_set", subject(name), {"retention_days": days, "previous": previous})
        return {"dataset": name, "retention_days": days, "previous": previous, "default_days": self.default_days}

    # --- what is due ------------------------------------------------------------------------

    def schedule(self, *, due_only: bool = False, dataset: str | None = None) -> list[DueVersion]:
        """Every live version with its expiry; ``due_only`` keeps those whose time has come."""
        now = self.config.now()
        found: list[DueVersion] = []
        with self.recorder.read() as session:
            query = select(ResourceRow).order_by(ResourceRow.name)
            if dataset is not None:
                query = query.where(ResourceRow.name == dataset)
            rows = list(session.scalars(query))
            if dataset is not None and not rows:
                raise NotFoundError(f"no dataset {dataset!r} in the catalog")
            for row in rows:
                live_licences = self._live_licences(session, row)
                days = row.retention_days if row.retention_days is not None else self.default_days
                revoked = row.state == ResourceState.REVOKED.value and (
                    row.available_until is None or row.available_until <= now
                )
                for version in row.versions:
                    if version.deleted_at is not None:
                        continue
                    expires = version.created_at + timedelta(days=days) if days else None
                    why = "revoked" if revoked else ("retention" if expires is not None and expires <= now else "")
                    if due_only and not why:
                        continue
                    blocked = self._holds(row, version, live_licences)
                    found.append(
                        DueVersion(
                            row.name,
                            version.version,
                            version.kind,
                            version.created_at,
                            days,
                            expires,
                            bool(why),
                            why,
                            blocked,
                        )
                    )
        return found

    def _live_licences(self, session: Any, row: ResourceRow) -> list[int]:
        query = (
            select(LicenceRow.id)
            .join(LicenceDatasetRow, LicenceDatasetRow.licence_id == LicenceRow.id)
            .where(LicenceDatasetRow.resource_id == row.id, LicenceRow.state.not_in(_ENDED))
            .order_by(LicenceRow.id)
        )
        return list(session.scalars(query))

    def _holds(self, row: ResourceRow, version: VersionRow, live_licences: list[int]) -> list[str]:
        """What keeps ``version`` from being purged: a live licence serving it, a job reading it, an open
        release request made from a job that read it (its product would name deleted data as its source)."""
        holds: list[str] = []
        if live_licences and version.id in _served_ids(row):
            holds.extend(f"licence {lid} is live and serves version {version.version}" for lid in live_licences)
        if self.jobs_using is None:
            holds.append("no job check is configured: a running job cannot be ruled out")
        else:
            holds.extend(
                f"job {job} is queued or running over version {used}"
                for job, used in self.jobs_using(row.name)
                if used is None or used == version.version or used in _children(row, version)
            )
        if self.releases_using is None:
            holds.append("no release check is configured: a pending release request cannot be ruled out")
        else:
            holds.extend(
                f"release request {release} is pending over version {used}: decide or withdraw it first"
                for release, used in self.releases_using(row.name)
                if used is None or used == version.version or used in _children(row, version)
            )
        return holds

    # --- the purge --------------------------------------------------------------------------

    def purge(self, name: str, *, version: int | None = None, reason: str, by: Actor) -> PurgeResult:
        """Delete ``version`` of ``name`` (with the versions derived from it), or every live version;
        refused, naming what holds it, while a live licence serves it or a job reads it."""
        require_role(by, CUSTODIAN)
        reason = (reason or "").strip()
        if not reason or len(reason) > 500:
            raise RegistryError("a purge needs a reason (1 to 500 characters): it is recorded with every deletion")
        with self.recorder.change(by) as change:
            row = catalog_row(change.session, name, lock=True)
            self._own(row, by, "purge it")
            targets = self._targets(row, version)
            live = self._live_licences(change.session, row)
            holds = [hold for target in targets for hold in self._holds(row, target, live)]
            if version is None and live:
                holds.extend(
                    f"licence {lid} is live on {name!r}"
                    for lid in live
                    if f"licence {lid} is live" not in " ".join(holds)
                )
            if holds:
                raise RegistryError(f"dataset {name!r} cannot be purged now: " + "; ".join(dict.fromkeys(holds)))
            now = self.config.now()
            files: list[dict[str, Any]] = []
            for target in targets:
                files.extend(destroy_version_data(change, self.config.artifacts(), name, target, reason=reason, by=by))
                target.deleted_at, target.deleted_by, target.deleted_reason = now, by.name, reason
                change.log(
                    "dataset.version_deleted",
                    subject(name),
                    {
                        "version": target.version,
                        "kind": target.kind,
                        "content_sha256": target.content_sha256,
                        "reason": reason,
                    },
                )
            if all(v.deleted_at is not None for v in row.versions):  # nothing of the dataset is left to open
                destroy_scope(
                    change, dataset_scope(name), now=now, reason=reason, covers="desensitized copies and fingerprints"
                )
            products = self._purge_products(change, row, targets, reason=reason, by=by)
        return PurgeResult(name, [t.version for t in targets], files, products, reason)

    def _targets(self, row: ResourceRow, version: int | None) -> list[VersionRow]:
        live = [v for v in row.versions if v.deleted_at is None]
        if version is None:
            if not live:
                raise RegistryError(f"dataset {row.name!r} has no live version to purge")
            return live
        chosen = next((v for v in row.versions if v.version == version), None)
        if chosen is None:
            raise NotFoundError(f"dataset {row.name!r} has no version {version}")
        if chosen.deleted_at is not None:
            raise RegistryError(
                f"version {version} of {row.name!r} was already deleted on {chosen.deleted_at.isoformat()}"
            )
        derived = set(_children(row, chosen))
        return [chosen, *(v for v in live if v.version in derived)]

    def _purge_products(
        self, change: Change, row: ResourceRow, targets: list[VersionRow], *, reason: str, by: Actor
    ) -> list[str]:
        """Products whose every source is a purged version of this dataset (or one deleted before) go too."""
        gone = {(row.name, v.version) for v in row.versions if v.deleted_at is not None}
        gone |= {(row.name, t.version) for t in targets}
        purged: list[str] = []
        products = change.session.scalars(select(ProductRow).where(ProductRow.state != ProductState.DELETED.value))
        for product in products:
            sources = {(str(d.get("name")), d.get("version")) for d in (product.lineage or {}).get("datasets", [])}
            if not sources or not sources <= gone:
                continue
            for artifact in product.artifacts or []:
                path = _inside(self.config.home, str(artifact.get("path", "")))
                present = path is not None and path.is_file()
                change.log(
                    "data.deleted",
                    f"product:{product.name}",
                    {
                        "what": "product",
                        "artifact": artifact.get("name"),
                        "sha256": artifact.get("sha256"),
                        "bytes": artifact.get("bytes"),
                        "reason": reason,
                        "present": present,
                    },
                    actor=by,
                )
                if present and path is not None:
                    change.on_commit(functools.partial(_unlink, path))
            change.log(
                "product.deleted",
                f"product:{product.name}",
                {"from": product.state, "reason": reason, "sources": sorted(f"{n}@{v}" for n, v in sources)},
            )
            product.state = ProductState.DELETED.value
            purged.append(product.name)
        return purged

    # --- the sweep and the settling ---------------------------------------------------------

    def sweep(self, *, by: Actor) -> dict[str, Any]:
        """Purge every due version that nothing holds; report the held ones with what holds them."""
        purged: list[dict[str, Any]] = []
        held: list[dict[str, Any]] = []
        for due in self.schedule(due_only=True):
            if due.blocked:
                held.append(due.as_json())
                continue
            why = (
                f"retention of {due.retention_days} days ended"
                if due.why == "retention"
                else "catalog entry revoked; its grace has ended"
            )
            try:
                purged.append(self.purge(due.dataset, version=due.version, reason=why, by=by).as_json())
            except RegistryError as exc:  # purged with its parent already, or held since the schedule was read
                if "already deleted" not in str(exc):
                    held.append({**due.as_json(), "blocked": [str(exc)]})
        return {"purged": purged, "held": held}

    def settle(self) -> list[str]:
        """At start: delete files of versions marked deleted whose deletion a crash interrupted."""
        removed: list[str] = []
        storage = self.config.artifacts()
        with self.recorder.read() as session:
            versions = list(session.scalars(select(VersionRow).where(VersionRow.deleted_at.is_not(None))))
            for version in versions:
                for _, relative in version_files(version):
                    if stored(storage, relative):
                        delete_stored(storage, relative)
                        removed.append(relative)
        return removed


def _children(row: ResourceRow, version: VersionRow) -> list[int]:
    """Numbers of the live versions derived from ``version`` (a raw version's desensitized copies)."""
    return [v.version for v in row.versions if v.parent_id == version.id and v.deleted_at is None]


def _served_ids(row: ResourceRow) -> set[int]:
    """The version a licence serves now: the newest live desensitized one, and the raw version it came from."""
    live = [v for v in row.versions if v.deleted_at is None]
    copies = [v for v in live if v.kind == VersionKind.DESENSITIZED.value]
    if not copies:
        return {v.id for v in live}  # nothing desensitized yet: every version may still become what is served
    newest = copies[-1]
    return {newest.id, *([newest.parent_id] if newest.parent_id else [])}
