"""The durable queue on SQLite and PostgreSQL: a job is claimed by one worker only, a dead worker's
job is requeued and then failed (never lost), ends are fenced to the current attempt, cancellation,
and every state change in the ledger (双鸭山 第二十条)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from app import Instance
from operators.jobs import Jobs, Quotas
from registry import Actor, PermissionDeniedError, Registry
from sandbox.models import JobState
from sandbox.queue import WORKER_LOST, Claimed, JobError, JobQueue
from tests.conftest import FakeClock
from tests.job_worker_proc import OPERATOR, SCENARIO, licensed
from tests.test_registry_licences import LedgerWatch, make_registry

STALE = timedelta(seconds=30)


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    reg = make_registry(instance, clock)
    licensed(reg, instance.home)
    return reg


@pytest.fixture
def jobs(registry: Registry, clock: FakeClock) -> Jobs:
    return Jobs(registry, JobQueue(registry.recorder, clock=clock), Quotas(concurrent=1000, per_day=1000))


def submit(jobs: Jobs, n: int = 1) -> list[int]:
    return [jobs.submit(OPERATOR, ["traffic"], "python", f"print({i})", SCENARIO) for i in range(n)]


def test_claims_take_the_oldest_job_and_mark_it_running(jobs: Jobs, clock: FakeClock, instance: Instance) -> None:
    first, second = submit(jobs, 2)
    watch = LedgerWatch(instance)
    claimed = jobs.queue.claim("w1")
    assert claimed is not None and claimed.job.id == first and claimed.code == "print(0)"
    view = jobs.show(first)
    assert (view.state, view.worker, view.attempts) == ("running", "w1", 1)
    assert view.claimed_at == view.heartbeat_at == view.started_at == clock.now
    entries = watch.since(full=True)
    assert [(e.action, e.subject, e.actor) for e in entries] == [("job.started", f"job:{first}", "keyong:worker:w1")]
    assert entries[0].payload["code_sha256"] == view.code_sha256 and entries[0].payload["attempt"] == 1
    second_claim = jobs.queue.claim("w2")
    assert second_claim is not None and second_claim.job.id == second
    assert jobs.queue.claim("w3") is None


def test_concurrent_claims_never_give_one_job_to_two_workers(jobs: Jobs) -> None:
    ids = submit(jobs, 24)
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def claim_all(worker: str) -> None:
        mine: list[int] = []
        try:
            while (claimed := jobs.queue.claim(worker)) is not None:
                mine.append(claimed.job.id)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        got[worker] = mine

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    claimed = [job for mine in got.values() for job in mine]
    assert sorted(claimed) == ids  # each exactly once
    assert {v.state for v in jobs.list()} == {"running"}
    assert all(v.attempts == 1 for v in jobs.list())


def test_finish_records_the_end_and_ledgers_it(jobs: Jobs, clock: FakeClock, instance: Instance) -> None:
    (job,) = submit(jobs)
    claimed = jobs.queue.claim("w1")
    assert claimed is not None
    clock.advance(seconds=3)
    watch = LedgerWatch(instance)
    outputs = [{"name": "a.csv", "bytes": 3, "sha256": "ab" * 32, "path": "work/x/a.csv"}]
    view = jobs.queue.finish(
        job, "w1", 1, state="done", exit_code=0, resources={"wall": 3.0, "cpu": 1.0, "max_rss": 10}, outputs=outputs
    )
    assert view is not None and view.state == "done" and view.finished_at == clock.now and view.verdict is None
    assert view.as_json()["outputs"] == outputs and view.as_json()["findings"] == []
    entries = watch.since(full=True)
    assert [e.action for e in entries] == ["job.finished"]
    assert entries[0].payload["outputs"] == [{"name": "a.csv", "bytes": 3, "sha256": "ab" * 32}]
    assert entries[0].payload["resources"] == {"wall": 3.0, "cpu": 1.0, "max_rss": 10}
    with pytest.raises(JobError, match="done, failed or cancelled"):
        jobs.queue.finish(job, "w1", 1, state="queued")
    assert jobs.queue.finish(job, "w1", 1, state="failed") is None  # already ended: not the worker's any more


def test_the_reaper_requeues_a_lost_job_then_fails_it(jobs: Jobs, clock: FakeClock, instance: Instance) -> None:
    (job,) = submit(jobs)
    first = jobs.queue.claim("w1")
    assert first is not None
    clock.advance(seconds=20)
    assert jobs.queue.heartbeat(job, "w1", 1).owned
    clock.advance(seconds=20)
    assert jobs.queue.reap(STALE) == []  # the heartbeat 20 s ago keeps it alive
    clock.advance(seconds=11)
    watch = LedgerWatch(instance)
    (requeued,) = jobs.queue.reap(STALE)
    assert (requeued.id, requeued.state, requeued.worker, requeued.attempts) == (job, "queued", None, 1)
    entries = watch.since(full=True)
    assert [(e.action, e.payload["reason"], e.payload["worker"]) for e in entries] == [
        ("job.requeued", WORKER_LOST, "w1")
    ]

    second = jobs.queue.claim("w2")
    assert second is not None and second.attempt == 2
    # The lost worker is fenced out: its heartbeat and end no longer count.
    assert not jobs.queue.heartbeat(job, "w1", 1).owned
    assert jobs.queue.finish(job, "w1", 1, state="done") is None
    assert jobs.show(job).state == "running" and jobs.show(job).worker == "w2"

    clock.advance(seconds=31)
    (failed,) = jobs.queue.reap(STALE)
    assert (failed.state, failed.reason, failed.attempts) == ("failed", WORKER_LOST, 2)
    assert [(a, s) for a, s in watch.since()] == [("job.started", f"job:{job}"), ("job.failed", f"job:{job}")]
    assert jobs.queue.claim("w3") is None  # failed stays failed: never lost, never run a third time


def test_cancel_a_queued_job_at_once_and_a_running_one_through_its_worker(jobs: Jobs, instance: Instance) -> None:
    queued, running = submit(jobs, 2)
    operator = Actor(OPERATOR, "operator")
    watch = LedgerWatch(instance)
    view = jobs.cancel(queued, by=operator)
    assert view.state == "cancelled" and view.finished_at is not None
    assert jobs.queue.claim("w1") is not None  # takes `running`, not the cancelled one
    view = jobs.cancel(running, by=operator)
    assert view.state == "running" and view.cancel_requested
    assert jobs.cancel(running, by=operator).cancel_requested  # asking twice is harmless, ledgered once
    beat = jobs.queue.heartbeat(running, "w1", 1)
    assert beat.owned and beat.cancel_requested
    ended = jobs.queue.finish(running, "w1", 1, state=JobState.CANCELLED, reason="killed on request")
    assert ended is not None and ended.state == "cancelled"
    assert watch.since() == [
        ("job.cancelled", f"job:{queued}"),
        ("job.started", f"job:{running}"),
        ("job.cancel_requested", f"job:{running}"),
        ("job.cancelled", f"job:{running}"),
    ]
    with pytest.raises(JobError, match="already ended"):
        jobs.cancel(queued, by=operator)
    with pytest.raises(PermissionDeniedError):
        jobs.cancel(running, by=Actor("demo-regulator", "regulator"))


def test_a_cancelled_job_whose_worker_died_is_cancelled_not_retried(jobs: Jobs, clock: FakeClock) -> None:
    (job,) = submit(jobs)
    assert jobs.queue.claim("w1") is not None
    jobs.cancel(job, by=Actor.host())
    clock.advance(minutes=5)
    (reaped,) = jobs.queue.reap(STALE)
    assert reaped.state == "cancelled" and WORKER_LOST in (reaped.reason or "")


def test_release_gives_a_job_back_without_counting_the_attempt(jobs: Jobs, instance: Instance) -> None:
    (job,) = submit(jobs)
    claimed = jobs.queue.claim("w1")
    assert isinstance(claimed, Claimed)
    watch = LedgerWatch(instance)
    assert jobs.queue.release(job, "w1", 1, reason="sandbox unavailable: bwrap missing")
    view = jobs.show(job)
    assert (view.state, view.attempts, view.worker) == ("queued", 0, None)
    assert watch.since() == [("job.requeued", f"job:{job}")]
    assert not jobs.queue.release(job, "w1", 1, reason="again")


def test_list_filters_by_state_and_operator(jobs: Jobs) -> None:
    first, second = submit(jobs, 2)
    jobs.queue.claim("w1")
    assert [v.id for v in jobs.queue.list(state="running")] == [first]
    assert [v.id for v in jobs.queue.list(state="queued")] == [second]
    assert [v.id for v in jobs.queue.list(operator=OPERATOR)] == [second, first]
    assert jobs.queue.list(operator="nobody") == []
    with pytest.raises(ValueError):
        jobs.queue.list(state="sleeping")


def test_a_job_whose_licence_lapsed_after_admission_is_failed_not_run(
    jobs: Jobs, registry: Registry, instance: Instance
) -> None:
    """双鸭山 第三十一条: suspension closes access at once, also for jobs admitted before it."""
    first, second = submit(jobs, 2)
    registry.licences.suspend_operator(OPERATOR, by=Actor("demo-agency", "agency"), reason="安全检查未通过")
    watch = LedgerWatch(instance)
    assert jobs.queue.claim("w1") is None
    for job in (first, second):
        view = jobs.show(job)
        assert view.state == "failed" and "suspended" in (view.reason or "")
    assert watch.since() == [("job.failed", f"job:{first}"), ("job.failed", f"job:{second}")]

    registry.licences.restore_operator(OPERATOR, by=Actor("demo-agency", "agency"), reason="整改完成")
    (third,) = submit(jobs)
    licence = jobs.show(third).licence_id or 0
    registry.licences.transition(licence, "revoked", by=Actor("demo-agency", "agency"), reason="严重违约")
    assert jobs.queue.claim("w1") is None
    assert "revoked" in (jobs.show(third).reason or "")
