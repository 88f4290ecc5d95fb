"""Requests with statutory deadlines as first-class objects (issue 24): a work order per request.

Why: the regulations put clocks on the departments that hold data — review an application for 有条件
共享 data in 1 working day and state the reasons of a refusal (黑龙江 第二十二条, 双鸭山 第二十七条), answer
a data demand in 3 (黑龙江 第二十九条, 双鸭山 第三十二条), verify and correct under a 校核 request in 5 and
report back (黑龙江 第二十四条, 双鸭山 第二十八条; 济源 第四十条: 10), review an application for 有条件开放
data in 5 (黑龙江 第三十四条, 双鸭山 第三十九条; 济源 第四十一条: 10), update the catalog after a change
(黑龙江 第十五条: 3, 第十二条: 5 after the authority's comments; 双鸭山 第十三条: 10; 济源 第十九条: 5). The
rule set is the instance profile's (:mod:`registry.request_rules`); the due date is counted on the Chinese
working-day calendar (:mod:`registry.calendar`) when the request is received, and kept with it.

The state machine: ``submitted`` → ``in_review`` → ``granted`` | ``refused`` (reasons required:
应说明具体原因) | ``answered`` (the result reported back) | ``withdrawn`` (by its requester). Every
transition is one ledgered change with its reason's digest, and a history row with the reason's words.

Who sees what: a custodian the requests it answers — decided per request (:mod:`registry.request_access`:
a dataset's custodians as :mod:`registry.egress` reads them; for a catalog entry, its organisation's) —
its queue, ordered by due time, and never one it asked itself; an operator (or another requester) its own;
the agency and regulators all of them. Overdue is visible: an open request past its due day is ``overdue``
in every list, and raises one monitoring finding (``request_overdue``) for the agency, from
:meth:`Requests.sweep_overdue` — run by the server's scheduler and by ``keyong request list --overdue`` —
or from the late decision or withdrawal itself (:mod:`registry.request_clock`).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core import Actor, Change, NotFoundError, PermissionDeniedError, Recorder, RegistryError, require_role
from registry import request_access as access
from registry.calendar import WorkCalendar, china_date
from registry.config import RegistryConfig
from registry.egress import Custodians, custodian_datasets
from registry.models import ResourceRow
from registry.monitoring import Monitoring
from registry.request_clock import RequestClock
from registry.request_models import OPEN_STATES, RequestEventRow, RequestRow
from registry.request_rules import KINDS, OUTCOMES, rule_for
from registry.vocabulary import SUBJECT_KINDS

#: Who submits requests (a regulator changes nothing; the host administrator acts for a named requester).
SUBMITTERS = ("operator", "custodian", "agency")
REASON_CHARS = 2000
DETAIL_CHARS = 4000
NAME_CHARS = 160
#: Working days before the due day at which an open request is "due soon" (0: only on the due day).
DUE_SOON_WORKING_DAYS = 1
#: Open requests one requester may have at once: no one fills the departments' queues and the agency's findings.
MAX_OPEN_PER_REQUESTER = 200


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A request as its readers see it: its clock, its state, and (with ``history``) its steps."""

    row: RequestRow
    overdue: bool
    due_soon: bool
    history: tuple[dict[str, Any], ...] = ()
    #: Why the override file could not be read (the package's calendar counted ``due_soon``), or None.
    calendar_problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        r = self.row
        late = r.decided_at is not None and r.decided_at > r.due_at
        data: dict[str, Any] = {
            "id": r.id,
            "kind": r.kind,
            "variant": r.variant,
            "profile": r.profile,
            "requester": r.requester,
            "requester_role": r.requester_role,
            "provider": r.provider,
            "subject_kind": r.subject_kind,
            "subject": r.subject,
            "detail": r.detail,
            "legal_basis": r.legal_basis,
            "working_days": r.working_days,
            "state": r.state,
            "received_at": r.received_at.isoformat(),
            "received": r.received_on.isoformat(),
            "due": r.due_on.isoformat(),
            "due_at": r.due_at.isoformat(),
            "provisional": r.provisional,
            "provisional_reason": r.provisional_reason,
            "overdue": self.overdue,
            "due_soon": self.due_soon,
            "late": late,
            "decided_by": r.decided_by,
            "decided_at": r.decided_at.isoformat() if r.decided_at else None,
            "reason": r.decision_reason,
            "leads_to": r.leads_to,
            "finding": r.overdue_finding_id,
        }
        if self.history:
            data["history"] = list(self.history)
        if self.calendar_problem:
            data["calendar_problem"] = self.calendar_problem
        return data


_text = access.clean_text


def _event(row: RequestEventRow) -> dict[str, Any]:
    return {
        "at": row.at.isoformat(),
        "actor": row.actor,
        "role": row.role,
        "action": row.action,
        "from": row.from_state,
        "to": row.to_state,
        "reason": row.reason,
    }


class Requests(RequestClock):
    """Submit, review, decide and list requests; each step one ledgered change."""

    def __init__(
        self, recorder: Recorder, config: RegistryConfig, monitoring: Monitoring, custodians: Custodians | None
    ) -> None:
        self.recorder = recorder
        self.config = config
        self.monitoring = monitoring
        self.custodians = custodians

    # --- the clock ---------------------------------------------------------------------------------

    def _record(
        self, row: RequestRow, calendar: WorkCalendar, now: datetime, history: Any = (), problem: str | None = None
    ) -> RequestRecord:
        is_open = row.state in OPEN_STATES
        overdue = is_open and now > row.due_at
        today = china_date(now)
        soon_until = today
        for _ in range(DUE_SOON_WORKING_DAYS):
            soon_until += timedelta(days=1)
            while not calendar.is_workday(soon_until):
                soon_until += timedelta(days=1)
        due_soon = is_open and not overdue and row.due_on <= soon_until
        return RequestRecord(row, overdue, due_soon, tuple(history), problem)

    def _reading_calendar(self) -> tuple[WorkCalendar, str | None]:
        """Recount provisional due dates, then the calendar to show ``due_soon`` with (never an error: stored due
        dates suffice, a broken override file is flagged and the package's calendar used)."""
        self.recount()
        return self.readable_calendar()

    # --- who ---------------------------------------------------------------------------------------

    def _active(self) -> dict[str, str | None]:
        return dict(self.custodians()) if self.custodians is not None else {}

    def departments(self, session: Session, actor: Actor) -> frozenset[str]:
        """For display: the departments an active custodian answers for — its organisation's (by name or
        统一社会信用代码, :func:`registry.request_access.organisation_departments`) and the 提供方 of the
        datasets it is a custodian of (:func:`registry.egress.is_custodian`). Who acts on one request is
        decided per request (:func:`registry.request_access.answers`)."""
        if actor.role != "custodian" or self.custodians is None:
            return frozenset()
        active = self._active()
        if actor.name not in active:
            return frozenset()
        datasets = custodian_datasets(session, None, actor, self.custodians)
        providers = session.scalars(select(ResourceRow.provider_name).where(ResourceRow.name.in_(datasets)))
        return access.organisation_departments(session, active.get(actor.name)) | {p.strip() for p in providers}

    def _answers(self, session: Session, actor: Actor, row: RequestRow) -> bool:
        return actor.role == "custodian" and access.answers(session, actor.name, row, self._active())

    def _require_provider(self, session: Session, actor: Actor, row: RequestRow, doing: str) -> None:
        """Only the provider's custodians (or the host administrator) act on its requests; never its requester."""
        if actor.is_host:
            return
        if actor.role != "custodian":
            raise PermissionDeniedError(f"{doing} is the providing department's act: role custodian of {row.provider}")
        if not self._answers(session, actor, row):
            raise PermissionDeniedError(
                f"request {row.id} is for {row.provider!r} to answer; {actor.name!r} is no custodian of "
                f"{row.subject_kind} {row.subject!r}"
            )
        if actor.name == row.requester:
            raise PermissionDeniedError(
                f"{actor.name!r} asked in request {row.id}: another custodian of the department decides"
            )

    # --- steps -------------------------------------------------------------------------------------

    def _subject(self, change: Change, subject_kind: str, subject: str, provider: str | None) -> str:
        """Check the subject and return the provider: a dataset's is its catalog entry's 提供方."""
        if subject_kind not in SUBJECT_KINDS:
            raise RegistryError(f"subject kind must be one of {', '.join(SUBJECT_KINDS)}")
        if subject_kind == "dataset":
            resource = change.session.scalar(select(ResourceRow).where(ResourceRow.name == subject))
            if resource is None:
                raise NotFoundError(
                    f"no dataset {subject!r} in the catalog (a demand for data not yet in it: catalog_entry)"
                )
            if provider and provider != resource.provider_name:
                raise RegistryError(f"dataset {subject} is provided by {resource.provider_name!r}, not {provider!r}")
            return resource.provider_name
        name = _text(
            provider, "the providing department (provider) of a catalog entry", 200, required=True, multiline=False
        )
        access.require_known_department(change.session, name, self._active())
        return name

    def submit(
        self,
        kind: str,
        *,
        by: Actor,
        subject: str,
        subject_kind: str = "dataset",
        provider: str | None = None,
        detail: str = "",
        variant: str = "",
        requester: str | None = None,
        requester_role: str | None = None,
    ) -> RequestRecord:
        """Receive a request: its rule and due date are fixed now, on the working-day calendar.

        The host administrator submits for a named ``requester`` of ``requester_role`` (a letter or a
        phone call logged by the clerk); a person over the API submits in their own name and role."""
        role = by.role
        if by.is_host:
            role = requester_role or "host"
            if role not in (*SUBMITTERS, "host"):
                raise RegistryError(f"the requester's role is one of {', '.join(SUBMITTERS)}")
        else:
            require_role(by, *SUBMITTERS)
            if requester and requester != by.name:
                raise PermissionDeniedError("a person submits in their own name")
        name = _text(requester or by.name, "requester", NAME_CHARS, required=True, multiline=False)
        rule = rule_for(self.config.request_profile, kind, variant)
        access.require_kind(role, kind)
        subject = _text(subject, "subject", 200, required=True, multiline=False)
        detail = _text(detail, "detail", DETAIL_CHARS, required=False)
        calendar = self.calendar()  # a broken override file refuses the request: no deadline is guessed
        now = self.config.now()
        due = calendar.due(china_date(now), rule.working_days)
        with self.recorder.change(by) as change:
            provider_name = self._subject(change, subject_kind, subject, provider)
            self._require_room(change.session, name)
            row = RequestRow(
                kind=kind,
                variant=rule.variant,
                profile=self.config.request_profile,
                requester=name,
                requester_role=role,
                provider=provider_name,
                subject_kind=subject_kind,
                subject=subject,
                detail=detail,
                legal_basis=rule.basis,
                working_days=rule.working_days,
                state="submitted",
                received_at=now,
                received_on=due.received,
                due_on=due.due,
                due_at=due.due_at,
                provisional=due.provisional,
                provisional_reason=due.provisional_reason,
            )
            change.session.add(row)
            change.session.flush()
            self._step(change, row, "submitted", None, "submitted", detail, extra={"due": due.due.isoformat()})
            return self._record(row, calendar, now)

    @staticmethod
    def _require_room(session: Session, requester: str) -> None:
        held = session.scalar(
            select(func.count()).where(RequestRow.requester == requester, RequestRow.state.in_(OPEN_STATES))
        )
        if (held or 0) >= MAX_OPEN_PER_REQUESTER:
            raise RegistryError(
                f"{requester!r} has {held} open requests (at most {MAX_OPEN_PER_REQUESTER}): wait for answers first"
            )

    def _open_row(self, change: Change, request_id: int) -> RequestRow:
        row = change.session.get(RequestRow, request_id)
        if row is None:
            raise NotFoundError(f"no request {request_id}")
        if row.state not in OPEN_STATES:
            raise RegistryError(f"request {request_id} is already {row.state}")
        return row

    def review(self, request_id: int, *, by: Actor, note: str = "") -> RequestRecord:
        """The provider takes the request into review (受理); the clock keeps running."""
        note = _text(note, "note", REASON_CHARS, required=False)
        with self.recorder.change(by) as change:
            row = self._open_row(change, request_id)
            self._require_provider(change.session, by, row, "reviewing a request")
            if row.state != "submitted":
                raise RegistryError(f"request {request_id} is already in review")
            row.state = "in_review"
            self._step(change, row, "in_review", "submitted", "in_review", note)
            calendar, problem = self.readable_calendar()
            return self._record(row, calendar, self.config.now(), problem=problem)

    def decide(
        self, request_id: int, outcome: str, *, by: Actor, reason: str = "", leads_to: str | None = None
    ) -> RequestRecord:
        """Grant, refuse (reasons required) or answer an open request, as its kind allows."""
        if outcome not in ("granted", "refused", "answered"):
            raise RegistryError("the outcome is granted, refused or answered")
        if outcome == "refused":
            reason = _text(reason, "a refusal's reasons (应说明具体原因)", REASON_CHARS, required=True)
        elif outcome == "answered":
            reason = _text(reason, "the answer (the result reported back)", REASON_CHARS, required=True)
        else:
            reason = _text(reason, "reason", REASON_CHARS, required=False) or "同意 · granted"
        calendar, problem = self._reading_calendar()
        now = self.config.now()
        with self.recorder.change(by) as change:
            row = self._open_row(change, request_id)
            self._require_provider(change.session, by, row, "deciding a request")
            if outcome not in OUTCOMES[row.kind]:
                allowed = " or ".join(OUTCOMES[row.kind])
                raise RegistryError(f"a {row.kind} request ends {allowed}, not {outcome}")
            link = access.leads_to(change.session, row, outcome, leads_to, china_date(now))
            late = self._late(change, row, calendar, now, problem)
            before, row.state = row.state, outcome
            row.decided_by, row.decided_at, row.decision_reason, row.leads_to = by.name, now, reason, link
            self._step(change, row, outcome, before, outcome, reason, extra={"leads_to": link, "late": late})
            return self._record(row, calendar, now, problem=problem)

    def _late(
        self, change: Change, row: RequestRow, calendar: WorkCalendar, now: datetime, problem: str | None
    ) -> bool:
        """Whether closing ``row`` now is late; if so, its overdue finding is raised in the same change (once)."""
        late = now > row.due_at
        if late and not (row.provisional and problem is not None):
            self.raise_overdue(change, row, calendar, now)
        return late

    def withdraw(self, request_id: int, *, by: Actor, reason: str = "") -> RequestRecord:
        """The requester withdraws an open request (the host administrator may, for them)."""
        reason = _text(reason, "reason", REASON_CHARS, required=False)
        calendar, problem = self._reading_calendar()
        now = self.config.now()
        with self.recorder.change(by) as change:
            row = self._open_row(change, request_id)
            if not by.is_host and by.name != row.requester:
                raise PermissionDeniedError(f"only its requester {row.requester!r} withdraws request {request_id}")
            self._late(change, row, calendar, now, problem)
            before, row.state = row.state, "withdrawn"
            row.decided_by, row.decided_at, row.decision_reason = by.name, now, reason or None
            self._step(change, row, "withdrawn", before, "withdrawn", reason)
            return self._record(row, calendar, now, problem=problem)

    # --- reading -----------------------------------------------------------------------------------

    def _visible(self, session: Session, viewer: Actor, row: RequestRow) -> bool:
        if viewer.is_host or viewer.role in ("agency", "regulator"):
            return True
        return row.requester == viewer.name or self._answers(session, viewer, row)

    def get(self, request_id: int, *, viewer: Actor) -> RequestRecord:
        """One request with its history; a request the viewer may not see is "not found"."""
        calendar, problem = self._reading_calendar()
        with self.recorder.read() as session:
            row = session.get(RequestRow, request_id)
            if row is None or not self._visible(session, viewer, row):
                raise NotFoundError(f"no request {request_id}")
            events = session.scalars(
                select(RequestEventRow).where(RequestEventRow.request_id == row.id).order_by(RequestEventRow.id)
            )
            return self._record(row, calendar, self.config.now(), [_event(e) for e in events], problem)

    def _mine(self, session: Session, viewer: Actor) -> Any:
        """What a custodian or a requester sees: its own, and those it answers (per request, as :meth:`_answers`)."""
        if viewer.role != "custodian" or viewer.name not in self._active():
            return RequestRow.requester == viewer.name
        datasets = custodian_datasets(session, None, viewer, self.custodians)
        departments = access.organisation_departments(session, self._active().get(viewer.name))
        return or_(
            RequestRow.requester == viewer.name,
            and_(RequestRow.subject_kind == "dataset", RequestRow.subject.in_(datasets)),
            and_(RequestRow.subject_kind == "catalog_entry", RequestRow.provider.in_(sorted(departments))),
        )

    def list(
        self,
        *,
        viewer: Actor,
        state: str | None = None,
        kind: str | None = None,
        provider: str | None = None,
        overdue: bool = False,
        due_soon: bool = False,
        open_only: bool = False,
    ) -> builtins.list[RequestRecord]:
        """The viewer's requests, soonest due first (a custodian: its department's queue)."""
        if kind is not None and kind not in KINDS:
            raise RegistryError(f"unknown request kind {kind!r}: one of {', '.join(KINDS)}")
        calendar, problem = self._reading_calendar()
        now = self.config.now()
        with self.recorder.read() as session:
            query = select(RequestRow).order_by(RequestRow.due_at, RequestRow.id)
            if state:
                query = query.where(RequestRow.state == state)
            if kind:
                query = query.where(RequestRow.kind == kind)
            if provider:
                query = query.where(RequestRow.provider == provider)
            if open_only or overdue or due_soon:
                query = query.where(RequestRow.state.in_(OPEN_STATES))
            if not (viewer.is_host or viewer.role in ("agency", "regulator")):
                query = query.where(self._mine(session, viewer))
            rows = list(session.scalars(query))
        records = [self._record(r, calendar, now, problem=problem) for r in rows]
        if overdue or due_soon:  # either, or both: what needs acting on first
            records = [r for r in records if (overdue and r.overdue) or (due_soon and r.due_soon)]
        return records


__all__ = [
    "DUE_SOON_WORKING_DAYS",
    "MAX_OPEN_PER_REQUESTER",
    "SUBJECT_KINDS",
    "SUBMITTERS",
    "RequestRecord",
    "Requests",
]
