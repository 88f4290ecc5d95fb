"""Which running jobs and open release requests read a dataset: what keeps it from being purged (SATRE 3.1.09);
which licence copies queued or running jobs name: what keeps a superseded one (red team 23, F8).

The registry's retention asks this through ``registry.JobsUsing`` and ``registry.ReleasesUsing``; the jobs
and releases tables are the sandbox's, so the answer is given here and composed in by ``app.instance``.

A release request still open (submitted or under review) is judged over the job's outputs *and* its lineage:
the reviewers, the custodians signing off and the differencing rule read the versions the job read, and a
product registered after its source was purged would name data that no longer exists (双鸭山 第四十一条: a
product carries its data source). So a purge waits until the request is decided or withdrawn.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from sandbox.models import JobRow, JobState
from sandbox.release_models import ReleaseRow, ReleaseState

__all__ = ["jobs_using", "licence_copies_in_use", "releases_using"]


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


def licence_copies_in_use(engine: Engine) -> set[int]:
    """The licence copies (ids) that queued or running jobs were admitted with: a superseded one is kept
    until none names it (``registry.linkage_holds``, red team 23 F8)."""
    live = (JobState.QUEUED.value, JobState.RUNNING.value)
    found: set[int] = set()
    with Session(engine) as session:
        for (datasets,) in session.execute(select(JobRow.datasets).where(JobRow.state.in_(live))):
            for spec in (datasets or {}).values():
                copy = spec.get("licence_copy") if isinstance(spec, dict) else None
                if isinstance(copy, int) and not isinstance(copy, bool):
                    found.add(copy)
    return found


def releases_using(engine: Engine, dataset: str) -> list[tuple[int, int | None]]:
    """``(release id, version)`` of every open release request whose job read ``dataset`` (version None when
    the job did not record it: then every version is held)."""
    open_states = [state.value for state in ReleaseState if state.open]
    found: list[tuple[int, int | None]] = []
    query = (
        select(ReleaseRow.id, JobRow.datasets)
        .join(JobRow, JobRow.id == ReleaseRow.job_id)
        .where(ReleaseRow.state.in_(open_states))
        .order_by(ReleaseRow.id)
    )
    with Session(engine) as session:
        for release_id, datasets in session.execute(query):
            spec = (datasets or {}).get(dataset)
            if spec is None:
                continue
            version = spec.get("version") if isinstance(spec, dict) else None
            known = isinstance(version, int) and not isinstance(version, bool)
            found.append((int(release_id), version if known else None))
    return found
