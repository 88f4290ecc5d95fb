"""The states of a job, apart from its table: readers that never touch the ORM name them too (issue 21).

``keyong job show`` reads one row without SQLAlchemy's ORM (``sandbox.job_reads``), and the views it builds
(``sandbox.job_views``) compare states; importing ``sandbox.models`` for that would load the ORM and the
core ``Base`` (a fifth of a second), so the enum lives here and ``sandbox.models`` re-exports it.
"""

from __future__ import annotations

from sandbox.state_names import NamedState

__all__ = ["JobState"]


class JobState(NamedState):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)
