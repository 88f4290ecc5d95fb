"""Usage monitoring (使用监测): violations, findings for the agency, and automatic suspension.

双鸭山市公共数据管理暂行办法 第三十一条 and 黑龙江省政务数据管理暂行办法 第二十七条: when data is used
otherwise than licensed — 超范围调用 (out of scope), 超目的调用 (out of purpose), 3 个月未调用 (three
months without use) or a security anomaly — the authority has the user rectify within a time limit,
and closes access (关停或中断调用服务, 终止其数据使用权限) when it does not. Keyong turns each of these
into a :class:`FindingRow` the agency reads and resolves, and closes access by itself when an
operator accumulates ``config.violation_limit`` refused attempts within ``violation_window_hours``:
the agency restores it (``Licences.restore_operator``) once the operator has rectified.

Violations are for deliberate acts: a name the platform does not know (a typo) is a usage error and
a scope check's dry run is a question, neither ever reaches :meth:`Monitoring.record_violation`
(:mod:`registry.scope`). Before closing access, the platform urges the operator (第三十一条: 督促…限期
整改): the refusal that leaves one violation to the limit says so (:attr:`RecordedViolation.warning`).

Acts the platform takes on its own (an automatic suspension, a finding raised by a refused job) are
ledgered under :data:`MONITOR`, so the ledger never shows a person doing what a rule did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func, select

from core import Actor, Change, NotFoundError, Recorder, RegistryError, require_role
from registry.config import RegistryConfig
from registry.models import FindingRow, LicenceDatasetRow, LicenceRow, OperatorRow, ViolationRow
from registry.vocabulary import FindingKind, LicenceState, Qualification, ViolationKind

MONITOR = Actor("keyong:monitor", "system")
"""The actor of acts a rule takes by itself (automatic suspension, findings raised by a refusal)."""

# Refusals that are not the operator's doing (the catalog withdrew a dataset, an objection is open):
# logged as violations so the attempt is on record, but they neither raise findings nor count
# towards automatic suspension.
NOT_SERVED = "dataset_not_served"
UNDER_OBJECTION = "dataset_under_objection"

SUSPENDING_KINDS = frozenset(
    {ViolationKind.NO_LICENCE, ViolationKind.OUT_OF_SCOPE, ViolationKind.OUT_OF_PURPOSE, ViolationKind.EXPIRED}
)
"""Violations that count towards automatic suspension (第三十一条: 超范围调用, 超目的调用).

Blocked exports have their own rule (a finding for the agency, :meth:`Monitoring.record_blocked_export`):
the export guard already stopped them, and the agency judges whether they show intent.
"""

_FINDING_OF = {
    ViolationKind.OUT_OF_SCOPE: FindingKind.OUT_OF_SCOPE,
    ViolationKind.OUT_OF_PURPOSE: FindingKind.OUT_OF_PURPOSE,
}


@dataclass(frozen=True, slots=True)
class RecordedViolation:
    """A violation just recorded, and where its operator now stands towards automatic suspension."""

    id: int
    counted: bool  # it counts towards automatic suspension (:data:`SUSPENDING_KINDS`, operator qualified)
    count: int  # counting violations in the window since the last automatic suspension, this one included
    limit: int
    suspended: bool  # this violation closed the operator's access

    @property
    def warning(self) -> str | None:
        """What the refusal adds for its operator: the last warning, or that access is now closed."""
        if self.suspended:
            return (
                f"this was violation {self.count} of {self.limit}: this operator is now suspended and its access "
                "closed until the agency restores it (双鸭山 第三十一条)"
            )
        if self.counted and self.count == self.limit - 1:
            return (
                f"warning: violation {self.count} of {self.limit} — one more violation suspends this operator "
                "(双鸭山 第三十一条: 关停或中断调用服务)"
            )
        return None


class FindingView(BaseModel):
    """A finding as the agency and regulators read it."""

    id: int
    kind: str
    operator: str | None
    licence_id: int | None
    resource_id: int | None
    detail: str
    state: str
    raised_at: datetime
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: str

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class ViolationView(BaseModel):
    id: int
    operator: str
    licence_id: int | None
    kind: str
    detail: str
    subject: str
    at: datetime

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def _finding_view(row: FindingRow, operator: str | None) -> FindingView:
    return FindingView(
        id=row.id,
        kind=row.kind,
        operator=operator,
        licence_id=row.licence_id,
        resource_id=row.resource_id,
        detail=row.detail,
        state=row.state,
        raised_at=row.raised_at,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
        resolution=row.resolution,
    )


class Monitoring:
    """Violations, findings and automatic suspension; the licences call it inside their changes."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    # --- inside a caller's change -----------------------------------------------------------

    def raise_finding(
        self,
        change: Change,
        kind: FindingKind,
        detail: str,
        *,
        operator: OperatorRow | None = None,
        licence_id: int | None = None,
        resource_id: int | None = None,
        actor: Actor | None = None,
    ) -> FindingRow:
        """Add an open finding for the agency and its ``finding.raised`` ledger entry."""
        row = FindingRow(
            kind=str(kind),
            operator_id=operator.id if operator else None,
            licence_id=licence_id,
            resource_id=resource_id,
            detail=detail,
            state="open",
            raised_at=self.config.now(),
        )
        change.session.add(row)
        change.session.flush()
        payload: dict[str, object] = {"kind": str(kind), "operator": operator.name if operator else None}
        if licence_id is not None:
            payload["licence"] = licence_id
        if resource_id is not None:
            payload["resource"] = resource_id
        change.log("finding.raised", f"finding:{row.id}", payload, actor=actor)
        return row

    def record_violation(
        self,
        change: Change,
        *,
        operator: OperatorRow | None,
        operator_name: str,
        kind: str,
        detail: str,
        subject: str = "",
        licence_id: int | None = None,
    ) -> RecordedViolation:
        """Record a refused attempt; raise its finding; suspend the operator when the limit is reached.

        第三十一条 / 黑龙江 第二十七条: 超范围调用 and 超目的调用 are findings for the agency; enough
        violations within the window close the operator's access at once (``operator.auto_suspended``).
        The answer says where the operator now stands, so the refusal can warn it before the last one
        (第三十一条: the user is first urged to rectify, 督促限期整改, before access is closed).
        """
        now = self.config.now()
        row = ViolationRow(
            operator_id=operator.id if operator else None,
            operator_name=operator_name,
            licence_id=licence_id,
            kind=kind,
            detail=detail,
            subject=subject,
            at=now,
        )
        change.session.add(row)
        change.session.flush()
        finding_kind = _FINDING_OF.get(ViolationKind(kind)) if kind in set(ViolationKind) else None
        if finding_kind is not None:
            self.raise_finding(change, finding_kind, detail, operator=operator, licence_id=licence_id, actor=MONITOR)
        limit = self.config.violation_limit
        if operator is not None and kind in SUSPENDING_KINDS and operator.qualification == Qualification.QUALIFIED:
            count = self._suspending_violations(change, operator, now)
            if count >= limit:
                self._auto_suspend(change, operator, count)
                return RecordedViolation(row.id, counted=True, count=count, limit=limit, suspended=True)
            return RecordedViolation(row.id, counted=True, count=count, limit=limit, suspended=False)
        return RecordedViolation(row.id, counted=False, count=0, limit=limit, suspended=False)

    def _suspending_violations(self, change: Change, operator: OperatorRow, now: datetime) -> int:
        """Violations in the window since the operator's last automatic suspension.

        A suspension consumes the violations that caused it: once the agency restores the operator,
        it takes ``violation_limit`` fresh violations to close access again.
        """
        since = now - timedelta(hours=self.config.violation_window_hours)
        last = change.session.scalar(
            select(func.max(FindingRow.raised_at)).where(
                FindingRow.operator_id == operator.id, FindingRow.kind == str(FindingKind.AUTO_SUSPENDED)
            )
        )
        query = select(func.count(ViolationRow.id)).where(
            ViolationRow.operator_id == operator.id,
            ViolationRow.kind.in_([str(k) for k in SUSPENDING_KINDS]),
            ViolationRow.at >= since,
        )
        if last is not None:
            query = query.where(ViolationRow.at > last)
        return int(change.session.scalar(query) or 0)

    def _auto_suspend(self, change: Change, operator: OperatorRow, count: int) -> None:
        window = self.config.violation_window_hours
        reason = (
            f"{count} refused attempts within {window:g} h (limit {self.config.violation_limit}): "
            "access closed until the agency restores it (双鸭山 第三十一条, 黑龙江 第二十七条)"
        )
        operator.qualification = Qualification.SUSPENDED
        operator.suspended_reason = reason
        change.log(
            "operator.auto_suspended",
            f"operator:{operator.name}",
            {"violations": count, "limit": self.config.violation_limit, "window_hours": window},
            actor=MONITOR,
        )
        self.raise_finding(change, FindingKind.AUTO_SUSPENDED, reason, operator=operator, actor=MONITOR)

    # --- public ------------------------------------------------------------------------------

    def record_blocked_export(
        self, operator: str, *, subject: str, licence_id: int | None = None, by: Actor
    ) -> FindingView | None:
        """The export guard blocked an output of ``operator``'s job ``subject``; repeated blocks are a finding.

        ``config.blocked_export_limit`` blocks within ``blocked_export_window_hours`` raise one
        ``repeated_blocked_exports`` finding (a security anomaly, 第三十一条), and no second one while it
        is open. Returns the finding when one was raised.
        """
        require_role(by, "agency", "operator")
        if by.role == "operator" and by.name != operator:
            raise NotFoundError(f"no operator named {operator!r}")
        with self.recorder.change(by) as change:
            row = change.session.scalar(select(OperatorRow).where(OperatorRow.name == operator))
            if row is None:
                raise NotFoundError(f"no operator named {operator!r}: add it with `keyong operator add`")
            now = self.config.now()
            change.session.add(
                ViolationRow(
                    operator_id=row.id,
                    operator_name=row.name,
                    licence_id=licence_id,
                    kind=str(ViolationKind.BLOCKED_EXPORT),
                    detail="the export guard blocked an output",
                    subject=subject,
                    at=now,
                )
            )
            change.session.flush()
            since = now - timedelta(hours=self.config.blocked_export_window_hours)
            count = int(
                change.session.scalar(
                    select(func.count(ViolationRow.id)).where(
                        ViolationRow.operator_id == row.id,
                        ViolationRow.kind == str(ViolationKind.BLOCKED_EXPORT),
                        ViolationRow.at >= since,
                    )
                )
                or 0
            )
            if count < self.config.blocked_export_limit:
                return None
            already = change.session.scalar(
                select(FindingRow.id).where(
                    FindingRow.operator_id == row.id,
                    FindingRow.kind == str(FindingKind.BLOCKED_EXPORTS),
                    FindingRow.state == "open",
                )
            )
            if already is not None:
                return None
            window = self.config.blocked_export_window_hours
            finding = self.raise_finding(
                change,
                FindingKind.BLOCKED_EXPORTS,
                f"{count} blocked exports within {window:g} h (limit {self.config.blocked_export_limit}), "
                f"latest {subject}",
                operator=row,
                licence_id=licence_id,
            )
            return _finding_view(finding, row.name)

    def scan_idle(self, *, by: Actor) -> list[FindingView]:
        """Raise an ``unused_3_months`` finding for every licensed dataset idle ``config.idle_days``.

        双鸭山 第三十一条 / 黑龙江 第二十七条: 数据3个月未调用. Idle time counts from the last admitted job,
        or from the licence's (latest) activation when never used. One finding per idle stretch: a
        dataset already reported since its last use is not reported again.
        """
        require_role(by, "agency")
        now = self.config.now()
        limit = timedelta(days=self.config.idle_days)
        raised: list[FindingView] = []
        with self.recorder.change(by) as change:
            licences = change.session.scalars(
                select(LicenceRow).where(LicenceRow.state == str(LicenceState.ACTIVE)).order_by(LicenceRow.id)
            ).all()
            for licence in licences:
                activations = [e.at for e in licence.events if e.to_state == LicenceState.ACTIVE]
                activated = activations[-1] if activations else licence.created_at
                for ds in licence.datasets:
                    since = max(ds.last_used_at, activated) if ds.last_used_at else activated
                    if now - since < limit:
                        continue
                    if self._idle_reported(change, ds, since):
                        continue
                    days = (now - since).days
                    finding = self.raise_finding(
                        change,
                        FindingKind.IDLE,
                        f"dataset {ds.resource.name!r} of licence {licence.id} unused for {days} days "
                        f"(limit {self.config.idle_days}; 双鸭山 第三十一条: 数据3个月未调用)",
                        operator=licence.operator,
                        licence_id=licence.id,
                        resource_id=ds.resource_id,
                    )
                    raised.append(_finding_view(finding, licence.operator.name))
        return raised

    @staticmethod
    def _idle_reported(change: Change, ds: LicenceDatasetRow, since: datetime) -> bool:
        return (
            change.session.scalar(
                select(FindingRow.id).where(
                    FindingRow.kind == str(FindingKind.IDLE),
                    FindingRow.licence_id == ds.licence_id,
                    FindingRow.resource_id == ds.resource_id,
                    FindingRow.raised_at >= since,
                )
            )
            is not None
        )

    def list_findings(
        self, *, viewer: Actor, state: str | None = None, kind: str | None = None, operator: str | None = None
    ) -> list[FindingView]:
        """Findings for the agency and regulators, oldest first."""
        require_role(viewer, "agency", "regulator")
        with self.recorder.read() as session:
            query = select(FindingRow, OperatorRow.name).outerjoin(
                OperatorRow, FindingRow.operator_id == OperatorRow.id
            )
            if state:
                query = query.where(FindingRow.state == state)
            if kind:
                query = query.where(FindingRow.kind == kind)
            if operator:
                query = query.where(OperatorRow.name == operator)
            return [_finding_view(row, name) for row, name in session.execute(query.order_by(FindingRow.id))]

    def get_finding(self, finding_id: int, *, viewer: Actor) -> FindingView:
        require_role(viewer, "agency", "regulator")
        with self.recorder.read() as session:
            row = session.get(FindingRow, finding_id)
            if row is None:
                raise NotFoundError(f"no finding {finding_id}")
            name = session.get(OperatorRow, row.operator_id).name if row.operator_id else None  # type: ignore[union-attr]
            return _finding_view(row, name)

    def resolve_finding(self, finding_id: int, *, by: Actor, resolution: str) -> FindingView:
        """The agency closes a finding, saying what was done (整改 completed, warning issued, ...)."""
        require_role(by, "agency")
        if not resolution.strip():
            raise RegistryError("resolving a finding needs a resolution: say what was done about it")
        with self.recorder.change(by) as change:
            row = change.session.get(FindingRow, finding_id)
            if row is None:
                raise NotFoundError(f"no finding {finding_id}")
            if row.state != "open":
                raise RegistryError(f"finding {finding_id} is already resolved ({row.resolution})")
            row.state = "resolved"
            row.resolved_by = by.name
            row.resolved_at = self.config.now()
            row.resolution = resolution.strip()
            change.log("finding.resolved", f"finding:{row.id}", {"kind": row.kind})
            name = change.session.get(OperatorRow, row.operator_id).name if row.operator_id else None  # type: ignore[union-attr]
            return _finding_view(row, name)

    def list_violations(self, *, viewer: Actor, operator: str | None = None) -> list[ViolationView]:
        """Refused and blocked attempts, oldest first (agency and regulators)."""
        require_role(viewer, "agency", "regulator")
        with self.recorder.read() as session:
            query = select(ViolationRow)
            if operator:
                query = query.where(ViolationRow.operator_name == operator)
            return [
                ViolationView(
                    id=v.id,
                    operator=v.operator_name,
                    licence_id=v.licence_id,
                    kind=v.kind,
                    detail=v.detail,
                    subject=v.subject,
                    at=v.at,
                )
                for v in session.scalars(query.order_by(ViolationRow.id))
            ]
