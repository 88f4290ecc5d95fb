"""The licence state machine, and reading licences.

A licence is granted as a draft, publicised (公示, 双鸭山 第四十八条: 公示无异议的 … 签订授权运营协议) for
``publicity_days`` during which objections may be filed, then activated; it may be suspended and
restored, and ends revoked or expired. Every transition is made by the agency with a reason, kept
as a :class:`LicenceEventRow` and in the ledger. Ending a licence destroys the operator's copies
(第六十二条, :meth:`registry.workdirs.Workdirs.destroy`).
"""

from __future__ import annotations

import builtins
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, Change, NotFoundError, Recorder, RegistryError, require_role
from registry.access_consent import consent_basis, consent_refusal
from registry.config import RegistryConfig
from registry.eligibility import licensing_refusal
from registry.licence_terms import require_reason
from registry.licence_views import DestructionView, LicenceView, destruction_view, licence_view
from registry.linkage import LicenceCopies
from registry.models import DestructionRow, LicenceEventRow, LicenceRow, ObjectionRow, OperatorRow
from registry.operators import operator_row
from registry.people import operator_people_refusal
from registry.vocabulary import LicenceState, Qualification
from registry.workdirs import Workdirs

S = LicenceState
TRANSITIONS: dict[LicenceState, frozenset[LicenceState]] = {
    S.DRAFT: frozenset({S.PUBLICITY, S.ACTIVE, S.REVOKED, S.EXPIRED}),  # ACTIVE only when publicity_days == 0
    S.PUBLICITY: frozenset({S.ACTIVE, S.REVOKED, S.EXPIRED}),  # ACTIVE only after 公示, without open objection
    S.ACTIVE: frozenset({S.SUSPENDED, S.REVOKED, S.EXPIRED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.REVOKED, S.EXPIRED}),  # ACTIVE = restore
    S.REVOKED: frozenset(),
    S.EXPIRED: frozenset(),
}
"""Which transitions exist at all; the conditions on each are in :meth:`LicenceLifecycle.check_transition`."""

_ACTION = {
    S.PUBLICITY: "licence.publicity_started",
    S.ACTIVE: "licence.activated",
    S.SUSPENDED: "licence.suspended",
    S.REVOKED: "licence.revoked",
    S.EXPIRED: "licence.expired",
}


def licence_row(session: Session, licence_id: int) -> LicenceRow:
    row = session.get(LicenceRow, licence_id)
    if row is None:
        raise NotFoundError(f"no licence {licence_id}")
    return row


class LicenceLifecycle:
    """Transitions of licences (one by one, or all those due), and reads for every role."""

    def __init__(self, recorder: Recorder, config: RegistryConfig, workdirs: Workdirs) -> None:
        self.recorder = recorder
        self.config = config
        self.workdirs = workdirs
        #: The licence copies (issue 23; set by ``registry.Registry``): made once a licence is active, deleted
        #: when it ends. None: none are made here (the scope check then refuses jobs until they are).
        self.linkage: LicenceCopies | None = None

    def transition(self, licence_id: int, to_state: LicenceState | str, *, by: Actor, reason: str) -> LicenceView:
        """Move a licence to ``to_state``; refused when the transition or its conditions do not hold.

        draft → publicity (公示, 第四十八条), or → active only when its publicity period is 0 days;
        publicity → active once 公示 has ended with no open objection; active ⇄ suspended (restore);
        becoming active (restored too) needs the operator's people standing (:mod:`registry.people`),
        and (not when restored) every dataset's custodian's agreement or access delegation
        (:mod:`registry.access_consent`, SATRE 1.5.04);
        any living state → revoked, or → expired once ``valid_until`` has passed; nothing leaves
        revoked or expired. Ending a licence destroys the operator's copies (第六十二条).
        """
        require_role(by, "agency")
        reason = require_reason(reason, "a licence transition")
        try:
            target = LicenceState(to_state)
        except ValueError:
            raise RegistryError(f"unknown licence state {to_state!r}; one of {', '.join(LicenceState)}") from None
        with self.recorder.change(by) as change:
            row = licence_row(change.session, licence_id)
            refusal = self.check_transition(change.session, row, target)
            if refusal:
                raise RegistryError(refusal)
            self.apply(change, row, target, reason=reason, by=by)
            return licence_view(row)

    def check_transition(self, session: Session, row: LicenceRow, target: LicenceState) -> str | None:
        current = LicenceState(row.state)
        now = self.config.now()
        if current.ended:
            return f"licence {row.id} is {current}: nothing follows (grant a new licence instead)"
        if target == current:
            return f"licence {row.id} is already {current}"
        if target not in TRANSITIONS[current]:
            return f"licence {row.id} cannot go from {current} to {target}"
        if target == S.EXPIRED and now.date() <= row.valid_until:
            return f"licence {row.id} is valid until {row.valid_until}: revoke it to end it earlier"
        if target == S.PUBLICITY and row.publicity_days == 0:
            return f"licence {row.id} has a publicity period of 0 days: activate it directly"
        if target != S.ACTIVE:
            return None
        if current == S.DRAFT and row.publicity_days > 0:
            return (
                f"licence {row.id} must be publicised (公示, 双鸭山 第四十八条) for {row.publicity_days} days "
                "before it becomes active: move it to publicity first"
            )
        if current == S.PUBLICITY and row.publicity_ends_at is not None and now < row.publicity_ends_at:
            return f"licence {row.id} is in publicity (公示) until {row.publicity_ends_at.isoformat()}"
        if now.date() > row.valid_until:
            return f"licence {row.id} ended on {row.valid_until}: it can only expire"
        objection = session.scalar(
            select(ObjectionRow.id).where(
                ObjectionRow.target_kind == "licence", ObjectionRow.target_id == row.id, ObjectionRow.state == "open"
            )
        )
        if objection is not None:
            return (
                f"objection {objection} against licence {row.id} is open: it cannot become active until the "
                "objection is resolved (第四十八条: 公示无异议的)"
            )
        if row.operator.qualification != Qualification.QUALIFIED:
            return f"operator {row.operator.name!r} is suspended: restore it first"
        people = operator_people_refusal(session, row.operator.name, now.date())
        if people:  # SATRE 3.2.02, 1.6.04: its people known, bound by the terms and trained (registry.people)
            return f"licence {row.id} cannot become active: {people}"
        if current != S.SUSPENDED:
            for ds in row.datasets:
                refusal = licensing_refusal(ds.resource, now)
                if refusal:
                    return f"licence {row.id} cannot become active: {refusal}"
            consent = consent_refusal(session, row, now)  # SATRE 1.5.04: every custodian agreed or delegated
            if consent:
                return f"licence {row.id} cannot become active: {consent}"
        return None

    def apply(self, change: Change, row: LicenceRow, target: LicenceState, *, reason: str, by: Actor) -> None:
        """Record a transition already checked: state, event, ledger entry; destruction when it ends."""
        now = self.config.now()
        current = LicenceState(row.state)
        row.state = str(target)
        row.updated_at = now
        payload: dict[str, object] = {"from": str(current), "reason": reason}
        if target == S.PUBLICITY:
            row.publicity_ends_at = now + timedelta(days=row.publicity_days)
            payload["ends_at"] = row.publicity_ends_at.isoformat()
        if target == S.ACTIVE and current != S.SUSPENDED:  # what each dataset's access stood on (SATRE 1.5.04)
            payload["consent"] = consent_basis(change.session, row, now)
        change.session.add(
            LicenceEventRow(
                licence=row, from_state=str(current), to_state=str(target), by=by.name, reason=reason, at=now
            )
        )
        action = "licence.restored" if current == S.SUSPENDED and target == S.ACTIVE else _ACTION[target]
        change.log(action, f"licence:{row.id}", payload, actor=by)
        if target.ended:
            self.workdirs.destroy(change, row, by=by)
        linkage = self.linkage
        if linkage is not None and target.ended:
            linkage.drop_licence(change, row.id)  # 第六十二条: its copies go with it
        elif linkage is not None and target == S.ACTIVE:
            licence_id = row.id  # its copies made once the activation committed (files, then their rows)
            change.on_commit(lambda: linkage.try_ensure(licence_id))
        change.session.flush()

    def suspend(self, operator_name: str, *, by: Actor, reason: str) -> list[LicenceView]:
        """Suspend every active licence of an operator (``keyong licence suspend OPERATOR --reason``)."""
        require_role(by, "agency")
        reason = require_reason(reason, "suspending licences")
        with self.recorder.change(by) as change:
            op = operator_row(change.session, operator_name)
            rows = change.session.scalars(
                select(LicenceRow)
                .where(LicenceRow.operator_id == op.id, LicenceRow.state == str(S.ACTIVE))
                .order_by(LicenceRow.id)
            ).all()
            if not rows:
                raise RegistryError(f"operator {operator_name!r} has no active licence to suspend")
            for row in rows:
                self.apply(change, row, S.SUSPENDED, reason=reason, by=by)
            return [licence_view(r) for r in rows]

    def activate_due(self, *, by: Actor) -> list[LicenceView]:
        """Activate every licence whose 公示 has ended without an open objection (and that may activate)."""
        require_role(by, "agency")
        done: list[LicenceView] = []
        with self.recorder.change(by) as change:
            rows = change.session.scalars(
                select(LicenceRow).where(LicenceRow.state == str(S.PUBLICITY)).order_by(LicenceRow.id)
            ).all()
            for row in rows:
                if self.check_transition(change.session, row, S.ACTIVE) is None:
                    self.apply(
                        change, row, S.ACTIVE, reason="公示期满无异议 (publicity ended without objection)", by=by
                    )
                    done.append(licence_view(row))
        return done

    def expire_due(self, *, by: Actor) -> list[LicenceView]:
        """Expire every living licence whose ``valid_until`` has passed, destroying its copies."""
        require_role(by, "agency")
        with self.recorder.change(by) as change:
            return [licence_view(r) for r in self.expire(change, None, by=by)]

    def expire(self, change: Change, operator_id: int | None, *, by: Actor) -> list[LicenceRow]:
        today = self.config.now().date()
        living = [str(s) for s in LicenceState if not s.ended]
        query = select(LicenceRow).where(LicenceRow.state.in_(living), LicenceRow.valid_until < today)
        if operator_id is not None:
            query = query.where(LicenceRow.operator_id == operator_id)
        rows = change.session.scalars(query.order_by(LicenceRow.id)).all()
        for row in rows:
            self.apply(change, row, S.EXPIRED, reason=f"valid_until {row.valid_until} passed", by=by)
        return list(rows)

    # --- reading -----------------------------------------------------------------------------

    def get(self, licence_id: int, *, viewer: Actor) -> LicenceView:
        """One licence; an operator sees only its own (another's is "not found", not "forbidden")."""
        require_role(viewer, "agency", "regulator", "operator")
        with self.recorder.read() as session:
            row = session.get(LicenceRow, licence_id)
            if row is None or (viewer.role == "operator" and row.operator.name != viewer.name):
                raise NotFoundError(f"no licence {licence_id}")
            return licence_view(row)

    def list(
        self, *, viewer: Actor, operator: str | None = None, state: LicenceState | str | None = None
    ) -> builtins.list[LicenceView]:
        """Licences, oldest first; an operator sees only its own whatever ``operator`` says."""
        require_role(viewer, "agency", "regulator", "operator")
        with self.recorder.read() as session:
            query = select(LicenceRow).join(OperatorRow, LicenceRow.operator_id == OperatorRow.id)
            if viewer.role == "operator":
                if operator is not None and operator != viewer.name:
                    return []
                operator = viewer.name
            if operator:
                query = query.where(OperatorRow.name == operator)
            if state:
                query = query.where(LicenceRow.state == str(state))
            return [licence_view(r) for r in session.scalars(query.order_by(LicenceRow.id))]

    def destructions(self, licence_id: int, *, viewer: Actor) -> builtins.list[DestructionView]:
        """The destruction records of a licence (agency, regulators, and its operator)."""
        self.get(licence_id, viewer=viewer)
        with self.recorder.read() as session:
            rows = session.scalars(
                select(DestructionRow).where(DestructionRow.licence_id == licence_id).order_by(DestructionRow.id)
            )
            return [destruction_view(r) for r in rows]


__all__ = ["TRANSITIONS", "LicenceLifecycle", "licence_row"]
