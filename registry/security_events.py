"""Security events and alerts (SATRE 2.5.03): the one owner of what is recorded, how it is bounded,
when it raises an alert, and how the regulator acknowledges it.

黑龙江省政务数据管理暂行办法 第三十八条 asks for 用户权限、访问控制和日志管理: failed logins, refused tokens
and refused authorizations are recorded with their time, kind, principal (or the name a credential
claimed), source address and route — never the key, token or password itself (the caller passes
none, and nothing here accepts one). Why it is built this way:

* **A flood cannot fill the database.** Events are counted into one row per (kind, source, principal,
  window of :attr:`SecurityPolicy.window_seconds`). Once a source has
  :attr:`SecurityPolicy.max_rows_per_source` rows in a window, its further principals fold into one
  ``*`` row; once the window holds :attr:`SecurityPolicy.max_rows_per_window` rows, everything folds
  into one ``*``/``*`` row per kind. A window therefore holds at most ``max_rows_per_window`` plus one
  row per kind, however many requests arrive or whatever names they claim. Folded events escape the
  per-principal thresholds, so a fold raises an alert of its own (:data:`FOLD_RULE`).
* **Not ledgered one by one** (a flood would fill the ledger instead). What is ledgered is what a
  person decides on: an alert raised (at most one open per rule and key; at most
  :attr:`SecurityPolicy.max_alerts_per_window` a window, then one ``alert_flood`` alert) and every
  acknowledgement with its actor (双鸭山 第二十条). Ledger payloads carry the hash of an alert's key, not
  the key: a claimed name is an attacker's text.
* **Thresholds** (:data:`DEFAULT_RULES`): N events of some kinds for one principal or from one source
  within M minutes raise an alert. Counting is over whole window rows whose latest event lies within
  the M minutes (so it may count a little more than M minutes back, never less). An open alert counts
  every further event; once acknowledged, the events it counted that are still in view are
  subtracted, so the next alert for the same rule and key needs N new ones.
* **Reviewed by the regulator** (监管部门): it lists, filters and acknowledges events and alerts with a
  note.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import Actor, Recorder, RegistryError, require_role, text_sha256
from registry.config import RegistryConfig
from registry.security_models import SecurityAlertRow, SecurityEventRow, still_open

__all__ = [
    "DEFAULT_RULES",
    "REVIEW_ROLES",
    "AlertRule",
    "SecurityEvent",
    "SecurityEventKind",
    "SecurityEvents",
    "SecurityPolicy",
]

#: Who reads security events and alerts; only the regulator acknowledges them.
REVIEW_ROLES = ("agency", "regulator")
ACK_ROLES = ("regulator",)
SECURITY_ACTOR = Actor("keyong:security", "system")
OVERFLOW = "*"
NOBODY = "-"
MAX_NOTE_CHARS = 2000


class SecurityEventKind(StrEnum):
    LOGIN_FAILED = "login_failed"  # an API key refused at POST /auth/token or the console's login
    TOKEN_REJECTED = "token_rejected"  # a missing, malformed, forged, expired or revoked JWT or session
    FORBIDDEN = "forbidden"  # an authenticated principal refused an operation (403)
    SCOPE_REFUSED = "scope_refused"  # a job refused outside its licence's scope (双鸭山 第三十一条)
    STANDING_REFUSED = "standing_refused"  # a job of a person without identity check, terms or training (issue 22)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """``threshold`` events of ``kinds`` for one ``by`` (principal or source) within ``minutes`` raise an alert."""

    name: str
    kinds: tuple[SecurityEventKind, ...]
    by: str  # "principal" | "source"
    threshold: int
    minutes: int


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """``count`` events of one kind from one source for one principal (what a caller passes; no secret)."""

    kind: SecurityEventKind | str
    source: str | None
    principal: str | None
    route: str | None
    detail: str = ""
    count: int = 1


#: Raised once a window already raised ``max_alerts_per_window`` alerts: the alerts themselves are a flood.
FLOOD_RULE = AlertRule("alert_flood", (), "platform", 1, 5)
#: Raised when events are folded into ``*`` (a source's share of the window, or the window, is full): the
#: per-principal thresholds no longer see them, so the fold itself alerts, keyed by the source (``*`` for a
#: full window). Without it twenty forged names from one address silenced every later refusal there.
FOLD_RULE = AlertRule("events_folded", (), "source", 1, 5)

DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("failed_logins_principal", (SecurityEventKind.LOGIN_FAILED,), "principal", 5, 15),
    AlertRule("failed_logins_source", (SecurityEventKind.LOGIN_FAILED,), "source", 20, 15),
    AlertRule("rejected_tokens_source", (SecurityEventKind.TOKEN_REJECTED,), "source", 30, 15),
    AlertRule(
        "refusals_principal",
        (SecurityEventKind.FORBIDDEN, SecurityEventKind.SCOPE_REFUSED, SecurityEventKind.STANDING_REFUSED),
        "principal",
        10,
        15,
    ),
)


@dataclass(frozen=True)
class SecurityPolicy:
    """How events are bounded and when they alert (instance settings may replace the defaults)."""

    window_seconds: int = 300
    max_rows_per_window: int = 200
    max_rows_per_source: int = 20
    max_alerts_per_window: int = 20
    rules: tuple[AlertRule, ...] = field(default=DEFAULT_RULES)

    def __post_init__(self) -> None:
        for name in ("window_seconds", "max_rows_per_window", "max_rows_per_source", "max_alerts_per_window"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"security policy {name} must be at least 1")


def _clip(value: str | None, limit: int, default: str) -> str:
    """A printable, bounded rendering of a name, address or route a request supplied."""
    text = "".join(ch if ch.isprintable() else "?" for ch in (value or "").strip())
    return text[:limit] if text else default


def _window(now: datetime, seconds: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def event_json(row: SecurityEventRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "source": row.source,
        "principal": row.principal,
        "route": row.route,
        "detail": row.detail,
        "count": row.count,
        "window_start": row.window_start.isoformat(),
        "first_at": row.first_at.isoformat(),
        "last_at": row.last_at.isoformat(),
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at": row.acknowledged_at.isoformat() if row.acknowledged_at else None,
        "note": row.note,
    }


def alert_json(row: SecurityAlertRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "rule": row.rule,
        "key_kind": row.key_kind,
        "key": row.key,
        "count": row.count,
        "threshold": row.threshold,
        "window_minutes": row.window_minutes,
        "state": row.state,
        "raised_at": row.raised_at.isoformat(),
        "last_at": row.last_at.isoformat(),
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at": row.acknowledged_at.isoformat() if row.acknowledged_at else None,
        "note": row.note,
    }


def _note(note: str) -> str:
    text = (note or "").strip()
    if not text:
        raise RegistryError("give a note: what was found and done (it is kept with the acknowledgement)")
    if len(text) > MAX_NOTE_CHARS:
        raise RegistryError(f"a note is at most {MAX_NOTE_CHARS} characters")
    return text


class SecurityEvents:
    """Record, list and acknowledge security events and alerts over one instance's database."""

    def __init__(self, recorder: Recorder, config: RegistryConfig, policy: SecurityPolicy | None = None) -> None:
        self.recorder = recorder
        self.config = config
        self.policy = policy or SecurityPolicy()

    # --- recording --------------------------------------------------------------------------------

    def record(
        self,
        kind: SecurityEventKind | str,
        *,
        source: str | None,
        principal: str | None,
        route: str | None,
        detail: str = "",
        count: int = 1,
    ) -> None:
        """Count ``count`` events into their window's row, and raise any alert the count now crosses."""
        self.record_many([SecurityEvent(SecurityEventKind(kind), source, principal, route, detail, count)])

    def record_many(self, events: Sequence[SecurityEvent]) -> None:
        """Count a batch of events (as a server aggregates them between flushes) in one transaction.

        Two recorders racing to create the same row: the loser's insert fails on the row's unique key
        and it counts into the winner's row instead.
        """
        cleaned = [
            SecurityEvent(
                SecurityEventKind(e.kind),
                _clip(e.source, 64, "unknown"),
                _clip(e.principal, 128, NOBODY),
                _clip(e.route, 200, ""),
                _clip(e.detail, 200, ""),
                max(1, int(e.count)),
            )
            for e in events
        ]
        if not cleaned:
            return
        for attempt in range(2):
            try:
                with self.recorder.change(SECURITY_ACTOR) as change:
                    for e in cleaned:  # counted then checked one by one, so an alert counts each event once
                        folded = self._count(change.session, e)
                        self._alerts(change, e)
                        if folded is not None:  # what no threshold can attribute any more is alarming itself
                            self._raise(change, FOLD_RULE, folded, e.count, e.count)
                return
            except IntegrityError:
                if attempt:
                    raise

    def _count(self, session: Session, event: SecurityEvent) -> str | None:
        """Count ``event`` into its row; the key it was folded under (its source, or ``*``), if it was."""
        kind, source, principal, route, detail = (
            SecurityEventKind(event.kind),
            str(event.source),
            str(event.principal),
            str(event.route),
            event.detail,
        )
        now = self.config.now()
        window = _window(now, self.policy.window_seconds)
        row = self._bucket(session, kind, source, principal, window)
        folded: str | None = None
        if row is None:
            in_window = (
                select(func.count()).select_from(SecurityEventRow).where(SecurityEventRow.window_start == window)
            )
            if (session.scalar(in_window) or 0) >= self.policy.max_rows_per_window:
                source, principal, folded = OVERFLOW, OVERFLOW, OVERFLOW
            elif (
                session.scalar(in_window.where(SecurityEventRow.source == source)) or 0
            ) >= self.policy.max_rows_per_source:
                principal, folded = OVERFLOW, source
            row = self._bucket(session, kind, source, principal, window)
        if row is None:
            session.add(
                SecurityEventRow(
                    kind=kind.value,
                    source=source,
                    principal=principal,
                    route=route,
                    detail=detail,
                    window_start=window,
                    first_at=now,
                    last_at=now,
                    count=event.count,
                    note="",
                )
            )
            session.flush()
            return folded
        # One UPDATE adding one: concurrent recorders (PostgreSQL's READ COMMITTED) never lose a count.
        values: dict[str, Any] = {"count": SecurityEventRow.count + event.count, "last_at": now}
        if route:
            values["route"] = route
        if detail:
            values["detail"] = detail
        session.execute(
            update(SecurityEventRow).where(SecurityEventRow.id == row.id).values(**values),
            execution_options={"synchronize_session": False},
        )
        session.expire(row)
        return folded

    @staticmethod
    def _bucket(
        session: Session, kind: SecurityEventKind, source: str, principal: str, window: datetime
    ) -> SecurityEventRow | None:
        return session.scalar(
            select(SecurityEventRow).where(
                SecurityEventRow.kind == kind.value,
                SecurityEventRow.source == source,
                SecurityEventRow.principal == principal,
                SecurityEventRow.window_start == window,
            )
        )

    def _alerts(self, change: Any, event: SecurityEvent) -> None:
        """Raise (or update) the alert of every rule this event's count now reaches."""
        kind, source, principal = SecurityEventKind(event.kind), str(event.source), str(event.principal)
        session: Session = change.session
        now = self.config.now()
        for rule in self.policy.rules:
            if kind not in rule.kinds:
                continue
            key = principal if rule.by == "principal" else source
            if key in (OVERFLOW, NOBODY):
                continue
            column = SecurityEventRow.principal if rule.by == "principal" else SecurityEventRow.source
            since = now - timedelta(minutes=rule.minutes)
            total = select(func.coalesce(func.sum(SecurityEventRow.count), 0)).where(
                SecurityEventRow.kind.in_([k.value for k in rule.kinds]), column == key
            )
            counted = int(session.scalar(total.where(SecurityEventRow.last_at > since)) or 0)
            acked = session.scalar(
                select(SecurityAlertRow)
                .where(SecurityAlertRow.rule == rule.name, SecurityAlertRow.key == key)
                .where(SecurityAlertRow.acknowledged_at > since)
                .order_by(SecurityAlertRow.acknowledged_at.desc())
                .limit(1)
            )
            if acked is not None:
                # What the regulator acknowledged is not counted again: its events still in view are
                # subtracted (rows it counted that have since aged out of the M minutes are not).
                window_then = acked.last_at - timedelta(minutes=rule.minutes)
                aged = total.where(SecurityEventRow.last_at <= since, SecurityEventRow.last_at > window_then)
                counted -= max(0, acked.count - int(session.scalar(aged) or 0))
            if counted >= rule.threshold:
                self._raise(change, rule, key, counted, event.count)

    def _raise(self, change: Any, rule: AlertRule, key: str, count: int, new: int) -> None:
        session: Session = change.session
        now = self.config.now()
        open_alert = session.scalar(
            select(SecurityAlertRow).where(
                SecurityAlertRow.rule == rule.name, SecurityAlertRow.key == key, SecurityAlertRow.state == "open"
            )
        )
        if open_alert is not None:  # one open alert per rule and key: it counts on, nothing is ledgered again
            session.execute(
                update(SecurityAlertRow)
                .where(SecurityAlertRow.id == open_alert.id)
                .values(count=SecurityAlertRow.count + new, last_at=now),
                execution_options={"synchronize_session": False},
            )
            session.expire(open_alert)
            return
        window = _window(now, self.policy.window_seconds)
        raised = select(func.count()).select_from(SecurityAlertRow).where(SecurityAlertRow.raised_at >= window)
        if rule.name != FLOOD_RULE.name and (session.scalar(raised) or 0) >= self.policy.max_alerts_per_window:
            self._raise(change, FLOOD_RULE, OVERFLOW, 1, 1)
            return
        row = SecurityAlertRow(
            rule=rule.name,
            key_kind=rule.by,
            key=key,
            count=count,
            threshold=rule.threshold if rule.name != FLOOD_RULE.name else self.policy.max_alerts_per_window,
            window_minutes=rule.minutes,
            state="open",
            raised_at=now,
            last_at=now,
            note="",
        )
        session.add(row)
        session.flush()
        change.log(
            "security.alert_raised",
            f"security-alert:{row.id}",
            {
                "rule": rule.name,
                "key_kind": rule.by,
                "key_sha256": text_sha256(key),
                "count": count,
                "threshold": row.threshold,
            },
        )

    # --- review -----------------------------------------------------------------------------------

    def events(
        self,
        *,
        viewer: Actor,
        kind: str | None = None,
        principal: str | None = None,
        source: str | None = None,
        acknowledged: bool | None = None,
        limit: int = 200,
    ) -> builtins.list[dict[str, Any]]:
        """Event rows, newest first, filtered (the agency and the regulator)."""
        require_role(viewer, *REVIEW_ROLES)
        query = select(SecurityEventRow).order_by(SecurityEventRow.last_at.desc(), SecurityEventRow.id.desc())
        if kind:
            query = query.where(SecurityEventRow.kind == SecurityEventKind(kind).value)
        if principal:
            query = query.where(SecurityEventRow.principal == principal)
        if source:
            query = query.where(SecurityEventRow.source == source)
        if acknowledged is not None:
            column = SecurityEventRow.acknowledged_at
            query = query.where(column.is_not(None) if acknowledged else column.is_(None))
        with self.recorder.read() as session:
            return [event_json(r) for r in session.scalars(query.limit(max(1, min(limit, 1000))))]

    def alerts(self, *, viewer: Actor, state: str | None = None, limit: int = 200) -> builtins.list[dict[str, Any]]:
        """Alerts, newest first; ``state`` open or acknowledged."""
        require_role(viewer, *REVIEW_ROLES)
        query = select(SecurityAlertRow).order_by(SecurityAlertRow.raised_at.desc(), SecurityAlertRow.id.desc())
        if state:
            if state not in ("open", "acknowledged"):
                raise RegistryError(f"unknown alert state {state!r}: open or acknowledged")
            query = query.where(SecurityAlertRow.state == state)
        with self.recorder.read() as session:
            return [alert_json(r) for r in session.scalars(query.limit(max(1, min(limit, 1000))))]

    def acknowledge_alert(self, alert_id: int, *, note: str, by: Actor) -> dict[str, Any]:
        """The regulator has reviewed an alert: closed with its note, ledgered."""
        require_role(by, *ACK_ROLES)
        note = _note(note)
        with self.recorder.change(by) as change:
            row = still_open(
                change.session,
                SecurityAlertRow,
                alert_id,
                label="security alert",
                is_open=lambda r: r.state == "open",
                closer="acknowledged",
            )
            row.state = "acknowledged"
            row.acknowledged_by = by.name
            row.acknowledged_at = self.config.now()
            row.note = note
            change.log(
                "security.alert_acknowledged",
                f"security-alert:{row.id}",
                {"rule": row.rule, "count": row.count, "note_sha256": text_sha256(note)},
            )
            change.session.flush()
            return alert_json(row)

    def acknowledge_event(self, event_id: int, *, note: str, by: Actor) -> dict[str, Any]:
        """The regulator has reviewed an event row: marked with its note, ledgered."""
        require_role(by, *ACK_ROLES)
        note = _note(note)
        with self.recorder.change(by) as change:
            row = still_open(
                change.session,
                SecurityEventRow,
                event_id,
                label="security event",
                is_open=lambda r: r.acknowledged_at is None,
                closer="acknowledged",
            )
            row.acknowledged_by = by.name
            row.acknowledged_at = self.config.now()
            row.note = note
            change.log(
                "security.event_acknowledged",
                f"security-event:{row.id}",
                {"kind": row.kind, "count": row.count, "note_sha256": text_sha256(note)},
            )
            change.session.flush()
            return event_json(row)
