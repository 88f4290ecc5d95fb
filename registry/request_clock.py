"""The clock of received requests: overdue findings, recounting provisional due dates, a broken calendar (issue 24).

Why: a due date is fixed on its request when the request is received, so lateness never depends on the
override file being readable *now* — a broken ``HOME/calendar.json`` refuses new requests (no deadline is
guessed), but overdue requests stay visible and their findings are raised, counted on the package's
calendar, and the broken file is itself a finding (``calendar_override_unreadable``) for the host to fix.
A *provisional* due date (a year neither the package nor the override knew, Monday to Friday counted) is
recounted — ledgered as ``request.recounted`` with the old and the new due date — as soon as the
calendar is readable: before any list, page, decision or sweep, so no overdue finding is ever raised on
a provisional date that a notice now moves. A late decision or withdrawal raises the overdue finding in
the same change when no sweep saw it first: lateness is never lost between sweeps.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from core import Actor, Change, Recorder, text_sha256
from registry.calendar import CalendarError, WorkCalendar, china_date
from registry.config import RegistryConfig
from registry.models import FindingRow
from registry.monitoring import MONITOR, Monitoring
from registry.request_models import OPEN_STATES, RequestEventRow, RequestRow
from registry.vocabulary import FindingKind


class RequestClock:
    """Overdue and recount steps shared by :class:`registry.requests.Requests`."""

    recorder: Recorder
    config: RegistryConfig
    monitoring: Monitoring

    def calendar(self) -> WorkCalendar:
        """The working-day calendar with this home's override notices (re-read each time: a fixed notice counts)."""
        return WorkCalendar.for_home(self.config.home)

    def readable_calendar(self) -> tuple[WorkCalendar, str | None]:
        """The home's calendar, or the package's with why the override file could not be read."""
        try:
            return self.calendar(), None
        except CalendarError as exc:
            return WorkCalendar(), str(exc)

    def _step(
        self,
        change: Change,
        row: RequestRow,
        action: str,
        before: str | None,
        after: str,
        reason: str,
        *,
        actor: Actor | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        who = actor or change.actor
        change.session.add(
            RequestEventRow(
                request_id=row.id,
                at=self.config.now(),
                actor=who.name,
                role=who.role,
                action=action,
                from_state=before,
                to_state=after,
                reason=reason,
            )
        )
        payload: dict[str, Any] = {
            "kind": row.kind,
            "provider": row.provider,
            "from": before,
            "to": after,
            "basis": row.legal_basis,
            "reason_sha256": text_sha256(reason),
            **(extra or {}),
        }
        change.log(f"request.{action}", f"request:{row.id}", payload, actor=who)

    # --- recounting provisional due dates ------------------------------------------------------------

    def recount(self) -> builtins.list[int]:
        """Recount the open requests whose due date is provisional, if the calendar is readable; return those moved."""
        calendar, problem = self.readable_calendar()
        if problem is not None:
            return []
        with self.recorder.read() as session:
            rows = list(
                session.execute(
                    select(RequestRow.id, RequestRow.received_on, RequestRow.working_days).where(
                        RequestRow.provisional.is_(True), RequestRow.state.in_(OPEN_STATES)
                    )
                )
            )
        moved = []
        for request_id, received_on, working_days in rows:
            due = calendar.due(received_on, working_days)
            if self._recount_one(request_id, due.due, due.due_at, due.provisional, due.provisional_reason):
                moved.append(request_id)
        return moved

    def _recount_one(self, request_id: int, due_on: Any, due_at: datetime, provisional: bool, why: str | None) -> bool:
        with self.recorder.change(MONITOR) as change:
            row = change.session.get(RequestRow, request_id, populate_existing=True, with_for_update=True)
            if row is None or not row.provisional or row.state not in OPEN_STATES:
                return False
            if (row.due_on, row.provisional, row.provisional_reason) == (due_on, provisional, why):
                return False
            old = row.due_on
            row.due_on, row.due_at, row.provisional, row.provisional_reason = due_on, due_at, provisional, why
            reason = f"due {old.isoformat()} recounted to {due_on.isoformat()}" + (
                " (still provisional)" if provisional else " (the calendar now knows the year)"
            )
            self._step(
                change,
                row,
                "recounted",
                row.state,
                row.state,
                reason,
                actor=MONITOR,
                extra={"old_due": old.isoformat(), "due": due_on.isoformat(), "provisional": provisional},
            )
            return True

    # --- overdue -------------------------------------------------------------------------------------

    def sweep_overdue(self) -> builtins.list[int]:
        """Raise one finding per open request past its due day (never twice); return the requests it raised for.

        Provisional due dates are recounted first; while the override file is unreadable they are left
        alone (they may move), the others are raised on their stored due dates, and the broken file is a
        finding of its own."""
        calendar, problem = self.readable_calendar()
        if problem is not None:
            self._report_calendar(problem)
        else:
            self.recount()
        now = self.config.now()
        with self.recorder.read() as session:
            query = select(RequestRow.id).where(
                RequestRow.state.in_(OPEN_STATES),
                RequestRow.due_at < now,
                RequestRow.overdue_finding_id.is_(None),
            )
            if problem is not None:
                query = query.where(RequestRow.provisional.is_(False))
            ids = list(session.scalars(query))
        raised = []
        for request_id in ids:
            with self.recorder.change(MONITOR) as change:
                row = change.session.get(RequestRow, request_id)
                if row is not None and row.state in OPEN_STATES and self.raise_overdue(change, row, calendar, now):
                    raised.append(request_id)
        return raised

    def raise_overdue(self, change: Change, row: RequestRow, calendar: WorkCalendar, now: datetime) -> bool:
        """Raise the overdue finding of ``row`` in ``change`` unless one was raised (claimed first: a concurrent
        sweep's or decision's UPDATE matches no row and raises nothing)."""
        claimed = change.session.execute(
            update(RequestRow)
            .where(RequestRow.id == row.id, RequestRow.overdue_finding_id.is_(None))
            .where(RequestRow.state.in_(OPEN_STATES))
            .values(overdue_finding_id=0)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return False
        late_days = calendar.working_days_between(row.due_on, china_date(now))
        detail = (
            f"request {row.id} ({row.kind}, {row.legal_basis}, {row.working_days} working days) to {row.provider} "
            f"from {row.requester} on {row.subject_kind} {row.subject}: due {row.due_on.isoformat()}, still "
            f"{row.state} ({late_days} working day(s) late)"
        )
        finding = self.monitoring.raise_finding(change, FindingKind.REQUEST_OVERDUE, detail, actor=MONITOR)
        row.overdue_finding_id = finding.id
        self._step(change, row, "overdue", row.state, row.state, detail, actor=MONITOR, extra={"finding": finding.id})
        return True

    def _report_calendar(self, problem: str) -> None:
        """One open finding per distinct problem with the override file."""
        kind = str(FindingKind.CALENDAR_UNREADABLE)
        detail = f"{problem}: new requests are refused and provisional due dates wait until it is fixed"[:2000]
        with self.recorder.change(MONITOR) as change:
            known = change.session.scalar(
                select(FindingRow.id).where(
                    FindingRow.kind == kind, FindingRow.state == "open", FindingRow.detail == detail
                )
            )
            if known is None:
                self.monitoring.raise_finding(change, FindingKind.CALENDAR_UNREADABLE, detail, actor=MONITOR)


__all__ = ["RequestClock"]
