"""Tables of security operations: security events and their alerts, the platform freeze, incidents.

Security events (SATRE 2.5.03; 黑龙江 第三十八条: 用户权限、访问控制和日志管理) are aggregated rows, one per
(kind, source, principal, window), so a flood of refused requests raises a counter instead of adding
rows; they are not ledgered one by one (a flood would fill the ledger), but every alert they raise and
every acknowledgement is. The freeze is one row (``id = 1``) changed in place, its history in the
ledger. Incidents (SATRE 2.6.04; 双鸭山 第六十一条: 应急处置) are a register of their own, linked to
ledger entries by sequence number.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import Base, NotFoundError, RegistryError, utcnow

__all__ = ["FreezeRow", "IncidentRow", "SecurityAlertRow", "SecurityEventRow", "still_open"]

RowT = TypeVar("RowT", bound=Base)


def still_open(
    session: Session, row_type: type[RowT], ident: int, *, label: str, is_open: Callable[[RowT], bool], closer: str
) -> RowT:
    """The row, locked, if it may still be closed: each review (an acknowledgement, a closing) happens once.

    Why one owner: alerts, events and incidents are each closed once, by one named person, and a second
    close must say who closed first instead of overwriting that person's note.
    """
    row = session.get(row_type, ident, with_for_update=True)
    if row is None:
        raise NotFoundError(f"no {label} {ident}")
    if not is_open(row):
        raise RegistryError(f"{label} {ident} was already {closer} by {getattr(row, closer + '_by')}")
    return row


class SecurityEventRow(Base):
    """Refused authentications and authorizations of one kind, from one source, for one principal, in one window.

    ``principal`` is the authenticated name, or the name a credential claimed (the owner of a presented
    key id, a token's unverified ``sub``), ``-`` when nothing was claimed and ``*`` for an overflow row
    that stands for every principal once a source or window reached its row cap. Never a key, token or
    password.
    """

    __tablename__ = "security_events"
    __table_args__ = (
        UniqueConstraint("kind", "source", "principal", "window_start", name="uq_security_events_bucket"),
        Index("ix_security_events_window_start", "window_start"),
        Index("ix_security_events_last_at", "last_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))  # the client address as the server saw it
    principal: Mapped[str] = mapped_column(String(128))
    route: Mapped[str] = mapped_column(String(200))  # the route template of the latest one (``/jobs/{job_id}``)
    detail: Mapped[str] = mapped_column(String(200), default="")  # why, in the platform's words
    window_start: Mapped[datetime] = mapped_column()
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)
    acknowledged_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class SecurityAlertRow(Base):
    """A threshold crossed (e.g. failed logins of one principal within minutes), open until acknowledged."""

    __tablename__ = "security_alerts"
    __table_args__ = (Index("ix_security_alerts_rule_key", "rule", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    key_kind: Mapped[str] = mapped_column(String(16))  # principal | source | platform
    key: Mapped[str] = mapped_column(String(128))
    count: Mapped[int] = mapped_column(Integer)  # events counted when it was raised, updated while open
    threshold: Mapped[int] = mapped_column(Integer)
    window_minutes: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | acknowledged
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class FreezeRow(Base):
    """Whether the platform is frozen now (one row, ``id = 1``); each change is ledgered with its reason."""

    __tablename__ = "platform_freeze"

    id: Mapped[int] = mapped_column(primary_key=True)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    since: Mapped[datetime | None] = mapped_column(nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_by: Mapped[str] = mapped_column(String(160), default="")
    changed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class IncidentRow(Base):
    """One security incident: what happened, how grave, the ledger entries it concerns, and its closure."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    ledger_entries: Mapped[list[Any]] = mapped_column(default=list)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    recorded_by: Mapped[str] = mapped_column(String(160))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    close_note: Mapped[str] = mapped_column(Text, default="")
