"""Nobody reaches a dataset without its custodian's agreement (SATRE 1.5.04; issue 22).

Why: granting a licence is the agency's decision (双鸭山 第四十八条), but the data are the custodian's
(数据资源持有权, 三权分置: 第四十四条), and data a department holds reaches a third party only with the
providing department's agreement (第三十三条: 提供给第三方的，应当经数据提供部门同意; 第四十三条 for data
obtained by sharing). So a licence becomes *active* (its operator's jobs reach the datasets inside the
sandbox) only when, for every dataset in its scope, one of these holds:

* that dataset's custodian agreed to this licence: its own authenticated act, with a reason
  (``licence.access_agreed``), or
* the custodian recorded a standing *access* delegation of that agreement to the agency, live when the
  licence activates (``registry.egress`` with ``kind="access"``: reason, optional expiry, withdrawable).

A custodian's refusal (``licence.access_refused``) keeps the licence from ever becoming active; the
agency revokes it and may grant another. Absent agreement means not active: nothing needs to be
recorded to keep control. Decisions are made while the licence is draft or in 公示, once per
dataset, and are never edited. Activation snapshots the basis per dataset in its ledger entry; a
delegation withdrawn later binds licences not yet active, as an egress delegation binds new release
requests only; restoring a suspended licence does not ask again (its basis stands).

Whose dataset, and that the host administrator never acts for a custodian, is
:func:`registry.egress.require_custodian_of`'s to say (one owner per rule).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import (
    Actor,
    Base,
    NotFoundError,
    PermissionDeniedError,
    Recorder,
    RegistryError,
    text_sha256,
    utcnow,
)
from registry.config import RegistryConfig
from registry.egress import EGRESS_REASON_CHARS, Custodians, custodian_datasets, live_delegations, require_custodian_of
from registry.freeze import require_not_frozen
from registry.models import LicenceRow
from registry.vocabulary import LicenceState

#: A custodian's two answers to a licence over its dataset.
DECISIONS = ("agree", "refuse")
#: States in which a licence waits for agreements (it has not become active yet).
_PENDING = (LicenceState.DRAFT.value, LicenceState.PUBLICITY.value)


class LicenceAgreementRow(Base):
    """One custodian's decision on one dataset of one licence (never edited)."""

    __tablename__ = "licence_agreements"
    __table_args__ = (
        UniqueConstraint("licence_id", "resource_id", name="uq_licence_agreements_licence_id_resource_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"))
    custodian: Mapped[str] = mapped_column(String(160))
    org: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))  # agree | refuse
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True, slots=True)
class ConsentView:
    """Per dataset of a licence: agreed, refused, delegated (to the agency) or awaiting its custodian."""

    licence: int
    state: str
    datasets: dict[str, dict[str, Any]]

    @property
    def complete(self) -> bool:
        return all(item["status"] in ("agreed", "delegated") for item in self.datasets.values())

    def as_json(self) -> dict[str, Any]:
        return {"licence": self.licence, "state": self.state, "complete": self.complete, "datasets": self.datasets}


def consent_status(session: Session, row: LicenceRow, now: datetime) -> dict[str, dict[str, Any]]:
    """Dataset name -> its consent for licence ``row``: a decision on it first, else a live access delegation."""
    decided = {
        a.resource_id: a
        for a in session.scalars(select(LicenceAgreementRow).where(LicenceAgreementRow.licence_id == row.id))
    }
    names = [d.resource.name for d in row.datasets]
    delegated = live_delegations(session, names, now, "access")
    status: dict[str, dict[str, Any]] = {}
    for item in row.datasets:
        name = item.resource.name
        decision = decided.get(item.resource_id)
        if decision is not None:
            status[name] = {
                "status": "agreed" if decision.decision == "agree" else "refused",
                "by": decision.custodian,
                "org": decision.org,
                "reason": decision.reason,
                "at": decision.decided_at.isoformat(),
            }
        elif name in delegated:
            status[name] = {"status": "delegated", "delegation": delegated[name]}
        else:
            status[name] = {"status": "awaiting"}
    return status


def consent_refusal(session: Session, row: LicenceRow, now: datetime) -> str | None:
    """Why licence ``row`` cannot become active for want of its custodians' agreement, or None."""
    status = consent_status(session, row, now)
    refused = [f"{name} (by {s['by']}: {s['reason']})" for name, s in status.items() if s["status"] == "refused"]
    if refused:
        return (
            f"the custodian refused access to {', '.join(refused)} (SATRE 1.5.04; 双鸭山 第三十三条): it cannot "
            "become active; revoke it and grant a licence without that dataset"
        )
    awaiting = [name for name, s in status.items() if s["status"] == "awaiting"]
    if awaiting:
        listed = ", ".join(awaiting)
        return (
            f"dataset(s) {listed} await their custodian's agreement (SATRE 1.5.04; 双鸭山 第三十三条, 第四十四条): "
            f"the custodian agrees with `keyong licence agree {row.id} --dataset NAME` (or POST "
            f"/licences/{row.id}/consent), or records a standing access delegation to the agency with "
            "`keyong dataset delegate NAME --access`"
        )
    return None


def consent_basis(session: Session, row: LicenceRow, now: datetime) -> dict[str, str]:
    """What an activation stood on, per dataset, for its ledger entry: ``agreed:NAME`` or ``delegated:ID``."""
    basis = {}
    for name, s in consent_status(session, row, now).items():
        basis[name] = f"agreed:{s['by']}" if s["status"] == "agreed" else f"{s['status']}:{s.get('delegation', '')}"
    return basis


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise RegistryError("a custodian's decision on a licence needs a reason: it is recorded")
    if len(text) > EGRESS_REASON_CHARS:
        raise RegistryError(f"the reason is at most {EGRESS_REASON_CHARS} characters")
    return text


class LicenceConsent:
    """Custodians' agreements to, and refusals of, licences over their datasets; each ledgered."""

    def __init__(self, recorder: Recorder, config: RegistryConfig, custodians: Custodians | None = None) -> None:
        self.recorder = recorder
        self.config = config
        self.custodians = custodians

    def decide(self, licence_id: int, dataset: str, decision: str, *, by: Actor, reason: str) -> ConsentView:
        """``by`` (a custodian of ``dataset``, acting itself) agrees to or refuses licence ``licence_id``."""
        if decision not in DECISIONS:
            raise RegistryError(f"a decision is one of {', '.join(DECISIONS)}, not {decision!r}")
        reason = _reason(reason)
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            if decision == "agree":  # opening data is not done while an incident froze the platform
                require_not_frozen(session, "agreeing to a licence")
            resource, org = require_custodian_of(session, dataset, by, self.custodians, "a decision on a licence")
            row = session.get(LicenceRow, licence_id)
            if row is None:
                raise NotFoundError(f"no licence {licence_id}")
            if resource.id not in {d.resource_id for d in row.datasets}:
                raise RegistryError(f"licence {licence_id} does not cover dataset {dataset!r}")
            if row.state not in _PENDING:
                raise RegistryError(
                    f"licence {licence_id} is {row.state}: a custodian decides while it is draft or in 公示"
                )
            earlier = session.scalar(
                select(LicenceAgreementRow).where(
                    LicenceAgreementRow.licence_id == row.id, LicenceAgreementRow.resource_id == resource.id
                )
            )
            if earlier is not None:
                raise RegistryError(
                    f"dataset {dataset!r} of licence {licence_id} was already decided ({earlier.decision}) by "
                    f"{earlier.custodian}: a decision is not changed"
                )
            session.add(
                LicenceAgreementRow(
                    licence_id=row.id,
                    resource_id=resource.id,
                    custodian=by.name,
                    org=org,
                    decision=decision,
                    reason=reason,
                    decided_at=now,
                )
            )
            session.flush()
            action = "licence.access_agreed" if decision == "agree" else "licence.access_refused"
            change.log(
                action,
                f"licence:{row.id}",
                {"dataset": resource.name, "org": org, "reason_sha256": text_sha256(reason)},
            )
            return ConsentView(row.id, row.state, consent_status(session, row, now))

    def get(self, licence_id: int, *, viewer: Actor) -> ConsentView:
        """A licence's consent per dataset: the agency, regulators, the host, its operator and its custodians."""
        with self.recorder.read() as session:
            row = session.get(LicenceRow, licence_id)
            if row is None:
                raise NotFoundError(f"no licence {licence_id}")
            if not self._may_read(session, row, viewer):
                raise NotFoundError(f"no licence {licence_id}")
            return ConsentView(row.id, row.state, consent_status(session, row, self.config.now()))

    def _may_read(self, session: Session, row: LicenceRow, viewer: Actor) -> bool:
        if viewer.is_host or viewer.role in ("agency", "regulator"):
            return True
        if viewer.role == "operator":
            return row.operator.name == viewer.name
        names = [d.resource.name for d in row.datasets]
        return viewer.role == "custodian" and bool(custodian_datasets(session, names, viewer, self.custodians))

    def awaiting(self, *, by: Actor) -> builtins.list[ConsentView]:
        """Licences not yet active with a dataset of ``by``'s awaiting its decision (a custodian's inbox)."""
        if by.role != "custodian" or by.is_host:
            raise PermissionDeniedError("only a custodian has licences awaiting its agreement")
        now = self.config.now()
        with self.recorder.read() as session:
            mine = set(custodian_datasets(session, None, by, self.custodians))
            rows = session.scalars(select(LicenceRow).where(LicenceRow.state.in_(_PENDING)).order_by(LicenceRow.id))
            found = []
            for row in rows:
                status = consent_status(session, row, now)
                if any(s["status"] == "awaiting" for name, s in status.items() if name in mine):
                    found.append(ConsentView(row.id, row.state, status))
            return found


__all__ = [
    "DECISIONS",
    "ConsentView",
    "LicenceAgreementRow",
    "LicenceConsent",
    "consent_basis",
    "consent_refusal",
    "consent_status",
]
