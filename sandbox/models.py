"""The ``jobs`` table: one row per submitted job, which is also the durable queue.

Why the queue is a table and not a broker: workers on any number of machines claim jobs from the
database they already share (DESIGN.md, Scale-out), so a job is never lost between a broker and
the metadata, and its whole history — queued, claimed, heartbeats, end — lives in one row whose
every state change is ledgered.

The row shares the registry's ``Base`` (and so its MetaData), so Alembic compares it with the
migrations like every other table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, utcnow
from sandbox.job_states import JobState

#: The longest job title and stated purpose (characters) an operator may give (issue 18).
MAX_TITLE = 200
MAX_PURPOSE = 2000


class JobRow(Base):
    """A job of an operator over granted desensitized copies (双鸭山 第三十五条: 原始数据不出域).

    ``datasets`` maps each granted dataset's name to ``{"version", "path"}``, the path being the
    desensitized copy relative to the instance home as the scope check granted it. ``outputs`` lists
    ``{"name", "bytes", "sha256", "path"}`` with paths relative to the home; they stay out of the
    operator's reach until the export guard (issue 7) has given a ``verdict``.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        # The claim query: the oldest queued job first.
        Index("ix_jobs_state_created_at", "state", "created_at"),
        # Quotas and `keyong job list --operator`: an operator's recent jobs.
        Index("ix_jobs_operator_created_at", "operator", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    operator: Mapped[str] = mapped_column(String(128))
    licence_id: Mapped[int | None] = mapped_column(ForeignKey("licences.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    datasets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scenario: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(Text)
    code_sha256: Mapped[str] = mapped_column(String(64))
    spec_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED.value)
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=2)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    resources: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    outputs: Mapped[list[Any]] = mapped_column(default=list)
    #: The export guard's findings (``sandbox.guard.Finding.as_json``); never the offending values.
    findings: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))
    #: stdout/stderr as the operator may read them: redacted and truncated by the guard.
    log_excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The operator's own title and stated purpose (用途) of the job (issue 18): what a reviewer reads beside
    #: the licence's scenario; free text the operator chose, never data. Null for jobs from before.
    title: Mapped[str | None] = mapped_column(String(MAX_TITLE), nullable=True)
    purpose: Mapped[str | None] = mapped_column(Text, nullable=True)


__all__ = ["MAX_PURPOSE", "MAX_TITLE", "JobRow", "JobState"]
