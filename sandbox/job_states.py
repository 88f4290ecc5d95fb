"""The states of a job, apart from its table: readers that never touch the ORM name them too (issue 21).

``keyong job show`` reads one row without SQLAlchemy's ORM (``sandbox.job_reads``), and the views it builds
(``sandbox.job_views``) compare states; importing ``sandbox.models`` for that would load the ORM and the
core ``Base`` (a fifth of a second), so the enum lives here and ``sandbox.models`` re-exports it.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["JobState"]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"

    @classmethod
    def named(cls, text: str) -> JobState:
        """The state called ``text``; an unknown name is a usage error naming the states (red team 21c F4:
        ``keyong job list --state x`` was a ValueError traceback), not a crash."""
        try:
            return cls(text)
        except ValueError:
            from core.errors import UsageError  # only on the error path: readers start fast (issue 21)

            raise UsageError(f"unknown job state {text[:40]!r}: one of {', '.join(s.value for s in cls)}") from None

    @property
    def ended(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)
