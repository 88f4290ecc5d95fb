"""What jobs consume: an operator's (or one licence's) use for the quotas, and instance-wide counts for
the usage report (issue 22, SATRE 2.3.03, 2.2.13). Counts only: no code, data or person beyond the
operator's name; read in the caller's session, so a submission's quota check sees its own transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.job_views import Usage
from sandbox.models import JobRow, JobState
from sandbox.release_models import ReleaseRow

ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)


def _cpu(resources: list[Any]) -> float:
    # JSON extraction differs between the databases; a day's ended jobs are few, so sum them here.
    return sum(float((r or {}).get("cpu") or 0.0) for r in resources)


def job_usage(session: Session, operator: str, since: datetime, licence_id: int | None = None) -> Usage:
    """What ``operator`` (or only its jobs under ``licence_id``) uses now and has used since ``since``."""
    mine = [JobRow.operator == operator]
    if licence_id is not None:
        mine.append(JobRow.licence_id == licence_id)
    active = session.scalar(select(func.count()).select_from(JobRow).where(*mine, JobRow.state.in_(ACTIVE)))
    submitted = session.scalar(
        select(func.count())
        .select_from(JobRow)
        .where(*mine, JobRow.created_at >= since, JobRow.state != JobState.REFUSED.value)
    )
    resources = session.scalars(
        select(JobRow.resources).where(*mine, JobRow.finished_at >= since, JobRow.resources.is_not(None))
    ).all()
    return Usage(active=int(active or 0), submitted=int(submitted or 0), cpu_seconds=_cpu(list(resources)))


def job_counts(session: Session, since: datetime | None) -> dict[str, Any]:
    """Jobs created since ``since`` (all when ``None``) by state, jobs queued or running now, and the CPU
    seconds of jobs that ended since ``since``; releases requested since ``since`` by state."""
    window = [JobRow.created_at >= since] if since is not None else []
    by_state = session.execute(select(JobRow.state, func.count()).where(*window).group_by(JobRow.state)).all()
    ended = [JobRow.finished_at >= since] if since is not None else [JobRow.finished_at.is_not(None)]
    resources = session.scalars(select(JobRow.resources).where(*ended, JobRow.resources.is_not(None))).all()
    active = session.scalar(select(func.count()).select_from(JobRow).where(JobRow.state.in_(ACTIVE)))
    release_window = [ReleaseRow.created_at >= since] if since is not None else []
    releases = session.execute(
        select(ReleaseRow.state, func.count()).where(*release_window).group_by(ReleaseRow.state)
    ).all()
    return {
        "jobs_by_state": {str(state): int(n) for state, n in sorted(by_state)},
        "jobs_active_now": int(active or 0),
        "cpu_seconds": round(_cpu(list(resources)), 3),
        "releases_by_state": {str(state): int(n) for state, n in sorted(releases)},
    }


__all__ = ["job_counts", "job_usage"]
