"""Changes to catalog entries that wait for the agency, and revocation (黑龙江 第十六条).

A change towards a more restrictive 共享类型 or 开放类型 becomes a pending request the agency decides;
less restrictive or neutral changes apply at once. Revocation of an entry already in use keeps it
served for six months (第十六条: 提交目录撤销申请, 经审核后撤销); a decision is final.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from core import Actor, Change, NotFoundError, Recorder, RegistryError, require_role
from registry.catalog_rules import (
    AGENCY,
    CUSTODIAN,
    apply_changes,
    catalog_row,
    is_restriction,
    merge_changes,
    normalize_changes,
    refuse_revoked,
    request_view,
    require_reason,
    resource_in_use,
    resource_view,
    subject,
    types_payload,
)
from registry.catalog_views import RequestView, ResourceView
from registry.config import RegistryConfig
from registry.models import CatalogRequestRow, ResourceRow
from registry.vocabulary import RequestState, ResourceState


class CatalogApproval:
    """Updates, the agency's decisions on requests, and revocation with its grace period."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def update(self, name: str, changes: Mapping[str, Any], *, by: Actor, reason: str) -> ResourceView | RequestView:
        """Change catalog fields (custodian), keyed in English or Chinese.

        A more restrictive 共享类型 or 开放类型 becomes a pending request the agency decides
        (:meth:`decide`); anything else applies at once. Levels and flags change through
        :meth:`classify`; the name and the data items do not change here.
        """
        require_role(by, CUSTODIAN)
        reason = require_reason(reason)
        normalized = normalize_changes(changes)
        now = self.config.now()
        with self.recorder.change(by) as change:
            row = catalog_row(change.session, name, lock=True)
            refuse_revoked(row, "changed")
            diff = merge_changes(row, normalized)
            if is_restriction(row, diff):
                request = CatalogRequestRow(
                    resource_id=row.id,
                    kind="restrict",
                    changes=diff,
                    reason=reason,
                    state=RequestState.PENDING.value,
                    requested_by=by.name,
                    requested_at=now,
                )
                change.session.add(request)
                change.session.flush()
                change.log(
                    "catalog.change_requested",
                    subject(name),
                    {"request": request.id, "kind": "restrict", "fields": sorted(diff), **types_payload(diff)},
                )
                return request_view(request, name)
            apply_changes(row, diff, now)
            change.session.flush()
            change.log("catalog.updated", subject(name), {"fields": sorted(diff), **types_payload(diff)})
            return resource_view(row, self.config.now())

    def decide(self, request_id: int, approve: bool, *, by: Actor, reason: str) -> RequestView:
        """The agency approves or rejects a pending restriction or revocation; approval applies it."""
        require_role(by, AGENCY)
        reason = require_reason(reason)
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            request = session.get(CatalogRequestRow, request_id, with_for_update=True)
            if request is None:
                raise NotFoundError(f"no catalog request {request_id}")
            if request.state != RequestState.PENDING:
                raise RegistryError(
                    f"catalog request {request_id} was already {request.state} by {request.decided_by}: "
                    "a decision is final; file a new request"
                )
            row = session.execute(
                select(ResourceRow).where(ResourceRow.id == request.resource_id).with_for_update()
            ).scalar_one()
            request.decided_by, request.decided_at, request.decision_reason = by.name, now, reason
            payload = {"request": request.id, "kind": request.kind}
            if not approve:
                request.state = RequestState.REJECTED.value
                change.log("catalog.change_rejected", subject(row.name), payload)
                session.flush()
                return request_view(request, row.name)
            request.state = RequestState.APPROVED.value
            change.log("catalog.change_approved", subject(row.name), payload)
            if request.kind == "restrict":
                refuse_revoked(row, "changed")
                # Checked again against the entry as it is now; it may have changed since the request.
                diff = merge_changes(row, request.changes, require_change=False)
                if diff:
                    apply_changes(row, diff, now)
                    change.log(
                        "catalog.updated",
                        subject(row.name),
                        {"fields": sorted(diff), "request": request.id, **types_payload(diff)},
                    )
            elif request.kind == "revoke":
                self._revoke(change, row, request, now)
            else:  # pragma: no cover - kinds are written by this module only
                raise RegistryError(f"unknown catalog request kind {request.kind!r}")
            session.flush()
            return request_view(request, row.name)

    # --- revocation (黑龙江 第十六条) --------------------------------------------------------------

    def request_revocation(self, name: str, *, by: Actor, reason: str) -> RequestView:
        """The custodian asks to revoke an entry (黑龙江 第十六条: 提交目录撤销申请, 经审核后撤销)."""
        require_role(by, CUSTODIAN)
        reason = require_reason(reason)
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            row = catalog_row(session, name, lock=True)
            if row.state != ResourceState.PUBLISHED:
                raise RegistryError(f"dataset {name!r} is already {row.state}")
            pending = session.scalar(
                select(CatalogRequestRow.id).where(
                    CatalogRequestRow.resource_id == row.id,
                    CatalogRequestRow.kind == "revoke",
                    CatalogRequestRow.state == RequestState.PENDING.value,
                )
            )
            if pending is not None:
                raise RegistryError(f"dataset {name!r} already has a pending revocation request ({pending})")
            request = CatalogRequestRow(
                resource_id=row.id,
                kind="revoke",
                changes={"state": ResourceState.REVOKED.value},
                reason=reason,
                state=RequestState.PENDING.value,
                requested_by=by.name,
                requested_at=now,
            )
            session.add(request)
            session.flush()
            change.log(
                "catalog.revocation_requested",
                subject(name),
                {"request": request.id, "in_use": resource_in_use(session, row.id)},
            )
            return request_view(request, name)

    def finalize_revocations(self, *, by: Actor) -> builtins.list[str]:
        """Revoke for good the entries whose six-month grace has ended (黑龙江 第十六条); their names."""
        require_role(by, CUSTODIAN, AGENCY)
        now = self.config.now()
        with self.recorder.change(by) as change:
            rows = change.session.scalars(
                select(ResourceRow)
                .where(ResourceRow.state == ResourceState.REVOKING.value, ResourceRow.available_until <= now)
                .order_by(ResourceRow.name)
                .with_for_update()
            ).all()
            for row in rows:
                row.state = ResourceState.REVOKED.value
                row.updated_at = now
                until = row.available_until.isoformat() if row.available_until else None
                change.log(
                    "catalog.revoked",
                    subject(row.name),
                    {"state": ResourceState.REVOKED.value, "available_until": until, "grace_ended": True},
                )
            return [row.name for row in rows]

    def _revoke(self, change: Change, row: ResourceRow, request: CatalogRequestRow, now: datetime) -> None:
        """Approved revocation: in use -> REVOKING for the grace period; otherwise REVOKED at once."""
        if row.state != ResourceState.PUBLISHED:
            raise RegistryError(f"dataset {row.name!r} is already {row.state}")
        in_use = resource_in_use(change.session, row.id)
        grace = self.config.revocation_grace_days if in_use else 0
        row.state = (ResourceState.REVOKING if in_use else ResourceState.REVOKED).value
        row.available_until = now + timedelta(days=grace)
        row.revoke_reason = request.reason
        row.updated_at = now
        change.log(
            "catalog.revoked",
            subject(row.name),
            {
                "request": request.id,
                "state": row.state,
                "in_use": in_use,
                "grace_days": grace,
                "available_until": row.available_until.isoformat(),
            },
        )


__all__ = ["CatalogApproval"]
