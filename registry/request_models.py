"""Tables of requests with statutory deadlines (issue 24): the request, and its history step by step.

The history table is the clerk's view of a work order (who did what, when, and why, in words); the
ledger holds the same steps with a digest of each reason (``reason_sha256``), so a regulator can check
that the history shown was not rewritten.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, utcnow

#: States a request is still open in: its clock runs.
OPEN_STATES = ("submitted", "in_review")
#: States it ends in.
FINAL_STATES = ("granted", "refused", "answered", "withdrawn")


class RequestRow(Base):
    """A data application, data demand, correction, open-data application or catalog update obligation."""

    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_provider_state", "provider", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str] = mapped_column(String(32), default="")
    profile: Mapped[str] = mapped_column(String(32))  # the instance profile whose rule set the clock
    requester: Mapped[str] = mapped_column(String(160))
    requester_role: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(200))  # the department (数据提供部门) that must act
    subject_kind: Mapped[str] = mapped_column(String(16))  # dataset | catalog_entry
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(String(200))  # regulation and article of the time limit
    working_days: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="submitted")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_on: Mapped[date] = mapped_column(Date)  # China's date of receipt
    due_on: Mapped[date] = mapped_column(Date)  # the last working day of the time limit
    due_at: Mapped[datetime] = mapped_column(index=True)  # the end of that day in China (UTC)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    provisional_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    leads_to: Mapped[str | None] = mapped_column(String(200), nullable=True)  # licence:ID or sharing:TEXT
    overdue_finding_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RequestEventRow(Base):
    """One step of a request: submitted, in review, granted, refused, answered, withdrawn, overdue."""

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(160))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")


__all__ = ["FINAL_STATES", "OPEN_STATES", "RequestEventRow", "RequestRow"]
