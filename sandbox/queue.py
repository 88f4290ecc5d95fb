"""The durable job queue: rows of ``jobs`` claimed by workers, every state change ledgered.

Why these rules:

* **Never two workers on one job.** On PostgreSQL a claim is ``SELECT … FOR UPDATE SKIP LOCKED
  LIMIT 1`` and the row is marked ``running`` in the same transaction, so workers on many machines
  skip each other's rows instead of waiting on them (DESIGN.md, Scale-out). On SQLite the claim runs
  in the ledger's ``BEGIN IMMEDIATE`` write transaction (one writer at a time) and the update is
  conditional (``WHERE id = … AND state = 'queued'``, checked by its row count).
* **Never lost.** A worker proves it is alive by heartbeats; :meth:`JobQueue.reap` returns a running
  job whose heartbeat is older than ``stale_after`` to the queue while attempts remain, and fails it
  with reason ``worker lost`` otherwise.
* **Fenced.** Heartbeats and the end of a job are accepted only from the worker holding the current
  attempt, so a worker that was given up on cannot overwrite what its successor records.
* **Every change in the ledger** (双鸭山 第二十条: usage logs kept ≥ 3 years) in the same transaction as
  the change, with ids, hashes and reasons — never the code nor any data.
* **Bounded ledger payloads** (issue 15, "Never wedge"): counts and digests of what the row keeps
  whole, never a copy of what a job controls (:mod:`sandbox.ledger_payloads` owns the rule).
* **One operator view** (:meth:`JobView.for_operator`): judged content only (原始数据不出域; 第三十五条).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import Actor, Change, NotFoundError, Recorder, RegistryError, require_role, utcnow
from registry import frozen_state, require_not_frozen, suspended_operators
from sandbox.job_claims import claim_in, claim_within
from sandbox.job_usage import job_usage
from sandbox.job_views import BLOCKED_REASON, Beat, Claimed, JobDraft, JobView, Usage, hold_of, job_view, shown_verdict
from sandbox.ledger_payloads import (
    MAX_LEDGER_SCENARIO,
    MAX_LEDGER_TEXT,
    bounded_json,
    bounded_text,
    canonical_sha256,
    findings_digest,
    fit_scenario,
    manifest_digest,
    manifest_of,
)
from sandbox.models import JobRow, JobState
from sandbox.wakeup import announce

#: The actor of acts the platform takes by itself: claims, heartbeats, ends, reaping.
SYSTEM_ROLE = "system"
REAPER = Actor("keyong:reaper", SYSTEM_ROLE)
WORKER_LOST = "worker lost"


def worker_actor(worker: str) -> Actor:
    return Actor(f"keyong:worker:{worker}", SYSTEM_ROLE)


def _stated(draft: JobDraft) -> dict[str, str | None]:
    """The title and purpose (用途) the operator gave, for the ledger (issue 18), bounded like every text a
    job's submitter controls; absent when none was given, so older entries read the same."""
    stated = {"title": draft.title, "purpose": draft.purpose}
    return {key: bounded_text(value) for key, value in stated.items() if value}


class JobError(RegistryError):
    """A job operation was refused (unknown job, wrong state); the message says why."""


class JobQueue:
    """The queue over the ``jobs`` table; every method is one ledgered transaction (or joins the caller's)."""

    def __init__(self, recorder: Recorder, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.recorder = recorder
        self.clock = clock

    # --- submission (inside the caller's change) ----------------------------------------------

    def enqueue(self, change: Change, draft: JobDraft, *, max_attempts: int = 2) -> int:
        """Add a queued job in ``change`` (the submitter's transaction) and ledger ``job.queued``."""
        if max_attempts < 1:
            raise JobError("max_attempts must be at least 1")
        require_not_frozen(change.session, "job intake")  # every way into the queue (submission, mitigation)
        row = self._insert(change, draft)
        row.state = JobState.QUEUED.value
        row.max_attempts = max_attempts
        change.session.flush()
        announce(change.session)  # idle workers wake when this commits (sandbox.wakeup)
        change.log(
            "job.queued",
            f"job:{row.id}",
            {
                "operator": draft.operator,
                "licence": draft.licence_id,
                "kind": draft.kind,
                "datasets": bounded_json({name: spec.get("version") for name, spec in draft.datasets.items()}),
                "scenario": bounded_text(draft.scenario, MAX_LEDGER_SCENARIO),
                "code_sha256": draft.code_sha256,
                "spec_sha256": draft.spec_sha256,
                **_stated(draft),
            },
        )
        return row.id

    def record_refused(self, change: Change, draft: JobDraft, *, refusal: str, reason: str) -> int:
        """Keep a refused job as a row in state ``refused``, so ``keyong job show`` explains the refusal.

        What a refusal echoes is the operator's own input (dataset names, a scenario, a reason quoting
        them), unchecked by any licence: the ledger gets it bounded, the row keeps it whole.
        """
        row = self._insert(change, draft)
        row.state = JobState.REFUSED.value
        row.reason = reason
        row.finished_at = self.clock()
        change.session.flush()
        change.log(
            "job.refused",
            f"job:{row.id}",
            {
                "operator": draft.operator,
                "kind": draft.kind,
                "refusal": bounded_text(refusal, MAX_LEDGER_SCENARIO),
                "reason": bounded_text(reason),
                "datasets": bounded_json(sorted(draft.datasets)),
                "scenario": bounded_text(draft.scenario, MAX_LEDGER_SCENARIO),
                "code_sha256": draft.code_sha256,
                "spec_sha256": draft.spec_sha256,
                **_stated(draft),
            },
        )
        return row.id

    def _insert(self, change: Change, draft: JobDraft) -> JobRow:
        row = JobRow(
            operator=draft.operator,
            licence_id=draft.licence_id,
            kind=draft.kind,
            datasets={name: dict(spec) for name, spec in draft.datasets.items()},
            scenario=fit_scenario(draft.scenario),
            code=draft.code,
            code_sha256=draft.code_sha256,
            spec_sha256=draft.spec_sha256,
            attempts=0,
            cancel_requested=False,
            outputs=[],
            created_at=self.clock(),
            title=draft.title or None,
            purpose=draft.purpose or None,
        )
        change.session.add(row)
        return row

    def usage(self, session: Session, operator: str, since: datetime, licence_id: int | None = None) -> Usage:
        """What ``operator`` (or its jobs under ``licence_id``) uses now and since ``since``."""
        return job_usage(session, operator, since, licence_id)

    # --- workers ------------------------------------------------------------------------------

    def claim(self, worker: str) -> Claimed | None:
        """Take the oldest queued job for ``worker`` and mark it running, or ``None`` when none is queued.

        A queued job whose licence lapsed since admission is failed, and the next one taken. A suspended
        operator's queued jobs are held (双鸭山 第三十一条: 中断调用服务), run once it is restored, a DP job
        keeping the budget it was charged; only a suspension between this look and its check fails the
        job. While the platform is frozen (an incident, :func:`registry.frozen_state`) nothing is claimed.
        The rule is :func:`sandbox.job_claims.claim_in`'s; this is its own transaction.
        """
        with self.recorder.change(worker_actor(worker)) as change:
            return claim_in(change, worker, self.clock)

    def claim_within(self, change: Change, worker: str) -> Claimed | None:
        """The same claim inside ``change``, the transaction that records the end of ``worker``'s previous
        job (``finish(..., then=...)``): one commit for both. A failing claim is undone alone (a savepoint)
        and the end commits as it would have without it (:func:`sandbox.job_claims.claim_within`)."""
        return claim_within(change, worker, self.clock)

    def heartbeat(self, job_id: int, worker: str, attempt: int) -> Beat:
        """Prove ``worker`` still runs ``job_id``; the answer says whether it still may and should.

        Heartbeats are not ledgered: they carry no decision, and one every few seconds per job would
        drown the ledger; the start and the end of every attempt are.
        """
        with self.recorder.change(worker_actor(worker)) as change:
            session = change.session
            result = session.execute(
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.worker == worker,
                    JobRow.attempts == attempt,
                    JobRow.state == JobState.RUNNING.value,
                )
                .values(heartbeat_at=self.clock()),
                execution_options={"synchronize_session": False},
            )
            owned = result.rowcount == 1  # type: ignore[attr-defined]
            cancel = bool(session.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id)))
        return Beat(owned=owned, cancel_requested=cancel)

    def release(self, job_id: int, worker: str, attempt: int, *, reason: str) -> bool:
        """Give a claimed job back untouched (the sandbox turned out unavailable): the attempt is not counted."""
        with self.recorder.change(worker_actor(worker)) as change:
            row = self._owned(change.session, job_id, worker, attempt)
            if row is None:
                return False
            row.state = JobState.QUEUED.value
            row.worker = None
            row.attempts = max(0, row.attempts - 1)
            row.claimed_at = row.heartbeat_at = row.started_at = None
            change.log(
                "job.requeued",
                f"job:{job_id}",
                {"worker": worker, "attempt": attempt, "reason": bounded_text(reason)},
            )
            announce(change.session)
            return True

    def finish(
        self,
        job_id: int,
        worker: str,
        attempt: int,
        *,
        state: JobState | str,
        exit_code: int | None = None,
        reason: str | None = None,
        resources: Mapping[str, Any] | None = None,
        outputs: Sequence[Mapping[str, Any]] = (),
        verdict: str | None = None,
        findings: Sequence[Mapping[str, Any]] = (),
        log_excerpt: str | None = None,
        then: Callable[[Change, JobView], None] = lambda *_: None,
    ) -> JobView | None:
        """Record the end of ``worker``'s attempt; ``None`` when the job is no longer its own (reaped).
        ``then`` runs in the same transaction (the usage-monitoring record of a blocked export).

        ``verdict`` and ``findings`` are the export guard's. The row keeps everything (manifest,
        findings, reason: 第二十条, logs kept ≥ 3 years); the ledger entry holds the verdict, the
        outputs' :func:`manifest_digest`, the findings' :func:`findings_digest` and the reason cut to
        :data:`MAX_LEDGER_TEXT`, so its size does not depend on what the job produced and the end of
        a job is always recordable (issue 15, "Never wedge").
        """
        final = JobState(state)
        if final not in (JobState.DONE, JobState.FAILED, JobState.CANCELLED):
            raise JobError(f"a run ends done, failed or cancelled, not {final}")
        with self.recorder.change(worker_actor(worker)) as change:
            row = self._owned(change.session, job_id, worker, attempt)
            if row is None:
                return None
            row.state = final.value
            row.exit_code = exit_code
            row.reason = reason
            row.resources = dict(resources) if resources is not None else None
            row.outputs = [dict(o) for o in outputs]
            row.verdict = verdict
            row.findings = [dict(f) for f in findings]
            row.log_excerpt = log_excerpt
            row.finished_at = self.clock()
            action = {JobState.DONE: "job.finished", JobState.FAILED: "job.failed"}.get(final, "job.cancelled")
            change.log(
                action,
                f"job:{job_id}",
                {
                    "worker": worker,
                    "attempt": attempt,
                    "state": final.value,
                    "exit_code": exit_code,
                    "reason": bounded_text(reason),
                    "resources": bounded_json(row.resources),
                    "outputs": manifest_digest(row.outputs),
                    "verdict": bounded_text(verdict, 16),
                    "findings": findings_digest(row.findings),
                },
            )
            if final is JobState.DONE and row.operator in suspended_operators(change.session):  # 第三十一条
                change.log("job.held", f"job:{job_id}", {"reason": "operator suspended while the job ran"})
            change.session.flush()
            view = job_view(row)
            then(change, view)
            return view

    @staticmethod
    def _owned(session: Session, job_id: int, worker: str, attempt: int) -> JobRow | None:
        query = select(JobRow).where(
            JobRow.id == job_id,
            JobRow.worker == worker,
            JobRow.attempts == attempt,
            JobRow.state == JobState.RUNNING.value,
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        return session.scalar(query)

    def reap(self, stale_after: timedelta) -> builtins.list[JobView]:
        """Requeue (attempts left) or fail (``worker lost``) every running job with a stale heartbeat."""
        cutoff = self.clock() - stale_after
        with self.recorder.change(REAPER) as change:
            session = change.session
            query = (
                select(JobRow)
                .where(JobRow.state == JobState.RUNNING.value, JobRow.heartbeat_at < cutoff)
                .order_by(JobRow.id)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            reaped: builtins.list[JobView] = []
            for row in session.scalars(query).all():
                beat = row.heartbeat_at.isoformat() if row.heartbeat_at is not None else None  # never None here
                lost = {"worker": row.worker, "attempt": row.attempts, "heartbeat_at": beat}
                if row.cancel_requested:
                    row.state = JobState.CANCELLED.value
                    row.reason = f"cancelled; {WORKER_LOST}"
                    row.finished_at = self.clock()
                    change.log("job.cancelled", f"job:{row.id}", {**lost, "reason": row.reason})
                elif row.attempts < row.max_attempts:
                    row.state = JobState.QUEUED.value
                    row.worker = None
                    row.claimed_at = row.heartbeat_at = row.started_at = None
                    change.log("job.requeued", f"job:{row.id}", {**lost, "reason": WORKER_LOST})
                    announce(change.session)
                else:
                    row.state = JobState.FAILED.value
                    row.reason = WORKER_LOST
                    row.finished_at = self.clock()
                    change.log("job.failed", f"job:{row.id}", {**lost, "reason": WORKER_LOST})
                reaped.append(job_view(row))
            session.flush()
            return reaped

    # --- operators and the host ---------------------------------------------------------------

    def cancel(self, job_id: int, *, by: Actor, then: Callable[[Change, JobView], None] = lambda *_: None) -> JobView:
        """Cancel a queued job at once; ask the worker of a running one to kill it.

        The operator may cancel its own jobs, the agency (and the host administrator) any job; a
        regulator changes nothing (DESIGN.md, Roles). ``then`` runs in the same transaction (issue 17).
        """
        require_role(by, "operator", "agency")
        with self.recorder.change(by) as change:
            row = self._visible(change.session, job_id, by, lock=True)
            state = JobState(row.state)
            if state.ended:
                raise JobError(f"job {job_id} has already ended ({state}); nothing to cancel")
            if state is JobState.QUEUED:
                row.state = JobState.CANCELLED.value
                row.reason = f"cancelled by {by.name}"
                row.finished_at = self.clock()
                row.cancel_requested = True
                change.log("job.cancelled", f"job:{job_id}", {"from": state.value})
            elif not row.cancel_requested:
                row.cancel_requested = True
                change.log("job.cancel_requested", f"job:{job_id}", {"worker": row.worker, "attempt": row.attempts})
            change.session.flush()
            view = job_view(row)
            then(change, view)
            return view

    def get(self, job_id: int, *, viewer: Actor | None = None) -> JobView:
        with self.recorder.read() as session:
            row = self._visible(session, job_id, viewer or Actor.host())
            return job_view(row, held=hold_of(row.operator, suspended_operators(session), frozen_state(session).frozen))

    def code(self, job_id: int, *, viewer: Actor | None = None) -> str:
        with self.recorder.read() as session:
            return self._visible(session, job_id, viewer or Actor.host()).code

    def list(
        self,
        *,
        viewer: Actor | None = None,
        operator: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> builtins.list[JobView]:
        """Newest first; an operator sees its own jobs only (DESIGN.md, Roles)."""
        who = viewer or Actor.host()
        query = select(JobRow).order_by(JobRow.id.desc()).limit(max(1, min(limit, 10_000)))
        if who.role == "operator":
            if operator not in (None, who.name):
                raise NotFoundError(f"no operator named {operator!r} is visible to you")
            operator = who.name
        else:
            require_role(who, "agency", "regulator", SYSTEM_ROLE)
        if operator:
            query = query.where(JobRow.operator == operator)
        if state:
            query = query.where(JobRow.state == JobState.named(state).value)
        with self.recorder.read() as session:
            held, frozen = set(suspended_operators(session)), frozen_state(session).frozen  # 第三十一条, 第六十一条
            return [job_view(row, held=hold_of(row.operator, held, frozen)) for row in session.scalars(query).all()]

    @staticmethod
    def _visible(session: Session, job_id: int, viewer: Actor, *, lock: bool = False) -> JobRow:
        query = select(JobRow).where(JobRow.id == job_id)
        if lock and session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        row = session.scalar(query)
        # An operator never learns that another operator's job exists.
        if row is None or (viewer.role == "operator" and row.operator != viewer.name):
            raise NotFoundError(f"no job {job_id}")
        if viewer.role not in ("operator", "agency", "regulator", SYSTEM_ROLE) and not viewer.is_host:
            raise NotFoundError(f"no job {job_id}")
        return row


__all__ = [
    "BLOCKED_REASON",
    "MAX_LEDGER_TEXT",
    "REAPER",
    "WORKER_LOST",
    "Beat",
    "Claimed",
    "JobDraft",
    "JobError",
    "JobQueue",
    "JobView",
    "Usage",
    "bounded_json",
    "bounded_text",
    "canonical_sha256",
    "findings_digest",
    "manifest_digest",
    "manifest_of",
    "shown_verdict",
    "worker_actor",
]
