"""Taking the oldest job a worker may run, inside a transaction that is already open.

Why its own module: a claim is one rule (what a worker may take, and what it records when it takes it)
with two callers. :meth:`sandbox.queue.JobQueue.claim` opens a transaction for it; a busy worker instead
claims its next job in the very transaction that records the end of the previous one
(:func:`claim_within`, issue 21 throughput: one write transaction, one ``BEGIN IMMEDIATE`` and one commit
fewer per job). The rule is the same either way:

* the oldest ``queued`` job, a suspended operator's held (双鸭山 第三十一条: 中断调用服务), nothing while the
  platform is frozen (:func:`registry.frozen_state`);
* ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, a conditional update checked by its row count on
  SQLite (one writer at a time);
* a job whose licence lapsed since admission is failed with the reason, ledgered, and the next one taken;
* ``job.started`` ledgered with the attempt in the same transaction as the claim (双鸭山 第二十条).

Crash-safety of the combined transaction: it commits the end of one job and the start of the next
together or not at all. Killed before the commit, the previous job is still ``running`` (the reaper
requeues it) and the next still ``queued``; killed after it, the next job is ``running`` with a fresh
heartbeat that nobody renews, and the reaper requeues (or fails) it like any job whose worker died.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import Change
from registry import Usability, frozen_state, licence_standing, suspended_operators
from sandbox.job_views import Claimed, job_view
from sandbox.ledger_payloads import bounded_text
from sandbox.models import JobRow, JobState

log = logging.getLogger("keyong.worker")

__all__ = ["claim_in", "claim_within", "lapsed"]


def claim_in(change: Change, worker: str, clock: Callable[[], datetime]) -> Claimed | None:
    """Take the oldest queued job ``worker`` may run in ``change`` and mark it running; None when none is.

    Raises what the database raises; the caller's transaction then rolls back whole."""
    session = change.session
    if frozen_state(session, lock=True).frozen:  # a freeze committing meanwhile waits for this claim
        return None
    held = suspended_operators(session)
    postgres = session.get_bind().dialect.name == "postgresql"
    while True:
        query = select(JobRow.id).where(JobRow.state == JobState.QUEUED.value).order_by(JobRow.created_at, JobRow.id)
        if held:
            query = query.where(JobRow.operator.not_in(held))
        if postgres:
            query = query.with_for_update(skip_locked=True)
        job_id = session.scalar(query.limit(1))
        if job_id is None:
            return None
        now = clock()
        # Conditional on the state: on SQLite this is the single-writer check, on PostgreSQL a
        # second guard behind the row lock.
        result = session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state == JobState.QUEUED.value)
            .values(
                state=JobState.RUNNING.value,
                worker=worker,
                attempts=JobRow.attempts + 1,
                claimed_at=now,
                heartbeat_at=now,
                started_at=now,
            ),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.get(JobRow, job_id, populate_existing=True)
        assert row is not None
        why = lapsed(session, row, now)
        if why is not None:
            row.state = JobState.FAILED.value
            row.reason = why
            row.finished_at = now
            change.log(
                "job.failed", f"job:{row.id}", {"worker": worker, "attempt": row.attempts, "reason": bounded_text(why)}
            )
            session.flush()
            continue
        change.log(
            "job.started",
            f"job:{row.id}",
            {"worker": worker, "attempt": row.attempts, "code_sha256": row.code_sha256, "spec_sha256": row.spec_sha256},
        )
        return Claimed(job_view(row), row.code)


def claim_within(change: Change, worker: str, clock: Callable[[], datetime]) -> Claimed | None:
    """:func:`claim_in` inside a savepoint of another change (the end of the worker's previous job).

    Why a savepoint: what the enclosing change records must never depend on the claim that rides along.
    If the claim fails, its statements and its ledger records are undone, the enclosing change goes on
    and commits as it would have alone, and the worker claims in a transaction of its own next time."""
    mark = len(change.records)
    try:
        with change.session.begin_nested():
            return claim_in(change, worker, clock)
    except Exception:
        del change.records[mark:]
        log.exception("worker %s: the next claim failed inside the previous job's end; it claims on its own", worker)
        return None


def lapsed(session: Session, row: JobRow, now: datetime) -> str | None:
    """Why the licence no longer admits this job, or ``None`` while it still does.

    The registry owns the rule (:func:`registry.licence_standing`); this phrases it for the job.
    """
    licence = licence_standing(session, row.licence_id, now.date())
    if licence is None:
        return "the job has no licence"
    if licence.usability == Usability.NOT_ACTIVE:
        return f"licence {licence.id} is {licence.state} since the job was admitted; it may not run"
    if licence.usability == Usability.NOT_YET_VALID:
        return f"licence {licence.id} is valid from {licence.valid_from}; the job may not run"
    if licence.usability == Usability.LAPSED:
        return f"licence {licence.id} ended on {licence.valid_until}; the job may not run"
    if licence.usability == Usability.OPERATOR_SUSPENDED:
        return f"operator {row.operator!r} was suspended since the job was admitted (双鸭山 第三十一条)"
    return None
