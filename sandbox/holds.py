"""Which queued or running jobs read a dataset: what keeps its data from being purged (SATRE 3.1.09).

The registry's retention asks this through ``registry.JobsUsing``; the jobs table is the sandbox's,
so the answer is given here and composed in by ``app.instance``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from sandbox.models import JobRow, JobState

__all__ = ["jobs_using"]


def jobs_using(engine: Engine, dataset: str) -> list[tuple[int, int | None]]:
    """``(job id, version)`` of every queued or running job over ``dataset`` (version None when unknown)."""
    live = (JobState.QUEUED.value, JobState.RUNNING.value)
    found: list[tuple[int, int | None]] = []
    with Session(engine) as session:
        for job_id, datasets in session.execute(select(JobRow.id, JobRow.datasets).where(JobRow.state.in_(live))):
            spec = (datasets or {}).get(dataset)
            if spec is None:
                continue
            version = spec.get("version") if isinstance(spec, dict) else None
            found.append((int(job_id), version if isinstance(version, int) and not isinstance(version, bool) else None))
    return found
