"""A busy worker claims its next job in the transaction that records the end of the previous one (issue 21
throughput): the same claim rule (oldest eligible job; held operators skipped; a frozen platform starts
nothing; a lapsed licence fails the job, 双鸭山 第三十一条), both ledgered in that one transaction
(第二十条), on SQLite and PostgreSQL. A claim that fails is undone alone and the end stands; an end that
rolls back takes the claim with it; a worker that stops gives back what it claimed and did not run; a
worker killed after the combined commit loses nothing (the reaper requeues the claimed job)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app import Instance
from core import Actor, Change
from operators.jobs import Jobs, Quotas
from registry import Registry
from sandbox import job_claims
from sandbox.queue import Claimed, JobQueue, JobView
from tests.conftest import FakeClock
from tests.job_worker_proc import OPERATOR, SCENARIO, fast_runner, licensed
from tests.test_registry_licences import LedgerWatch, make_registry

AGENCY = Actor("demo-agency", "agency")


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    reg = make_registry(instance, clock)
    licensed(reg, instance.home)
    return reg


@pytest.fixture
def jobs(registry: Registry, clock: FakeClock) -> Jobs:
    return Jobs(registry, JobQueue(registry.recorder, clock=clock), Quotas(concurrent=1000, per_day=1000))


def submit(jobs: Jobs, n: int) -> list[int]:
    return [jobs.submit(OPERATOR, ["traffic"], "python", f"print({i})", SCENARIO) for i in range(n)]


def finish_and_claim(queue: JobQueue, job: int, worker: str = "w1", attempt: int = 1) -> tuple[Any, Claimed | None]:
    got: list[Claimed | None] = []
    view = queue.finish(job, worker, attempt, state="done", verdict="pass",
                        then=lambda change, _: got.append(queue.claim_within(change, worker)))  # fmt: skip
    return view, (got[0] if got else None)


def test_the_next_job_is_claimed_and_ledgered_with_the_previous_end(jobs: Jobs, instance: Instance) -> None:
    first, second, third = submit(jobs, 3)
    assert jobs.queue.claim("w1") is not None
    watch = LedgerWatch(instance)
    view, claimed = finish_and_claim(jobs.queue, first)
    assert view is not None and view.state == "done"
    assert claimed is not None and claimed.job.id == second and claimed.code == "print(1)" and claimed.attempt == 1
    assert (jobs.show(second).state, jobs.show(second).worker, jobs.show(third).state) == ("running", "w1", "queued")
    entries = watch.since(full=True)
    assert [(e.action, e.subject) for e in entries] == [
        ("job.finished", f"job:{first}"),
        ("job.started", f"job:{second}"),
    ]
    assert entries[1].actor == "keyong:worker:w1" and entries[1].payload["attempt"] == 1
    assert instance.ledger.verify().ok


def test_the_claim_with_an_end_skips_held_jobs_and_starts_nothing_while_frozen(
    jobs: Jobs, registry: Registry, instance: Instance
) -> None:
    first, second, third = submit(jobs, 3)
    assert jobs.queue.claim("w1") is not None
    registry.licences.suspend_operator(OPERATOR, by=AGENCY, reason="安全检查未通过")
    watch = LedgerWatch(instance)
    view, claimed = finish_and_claim(jobs.queue, first)
    assert view is not None and claimed is None  # held: 双鸭山 第三十一条
    assert [a for a, _ in watch.since()] == ["job.finished", "job.held"]
    assert [jobs.show(j).state for j in (second, third)] == ["queued", "queued"]

    registry.licences.restore_operator(OPERATOR, by=AGENCY, reason="整改完成")
    claimed = jobs.queue.claim("w1")
    assert claimed is not None and claimed.job.id == second
    registry.freeze.freeze(reason="演练 drill", by=AGENCY)
    watch.mark()
    view, claimed = finish_and_claim(jobs.queue, second)
    assert view is not None and claimed is None
    assert watch.since() == [("job.finished", f"job:{second}")]
    assert jobs.show(third).state == "queued"


def test_a_job_whose_licence_lapsed_is_failed_by_the_claim_with_an_end(
    jobs: Jobs, registry: Registry, instance: Instance
) -> None:
    first, second = submit(jobs, 2)
    assert jobs.queue.claim("w1") is not None
    registry.licences.transition(jobs.show(second).licence_id or 0, "revoked", by=AGENCY, reason="严重违约")
    watch = LedgerWatch(instance)
    view, claimed = finish_and_claim(jobs.queue, first)
    assert view is not None and claimed is None
    assert watch.since() == [("job.finished", f"job:{first}"), ("job.failed", f"job:{second}")]
    assert "revoked" in (jobs.show(second).reason or "")


def test_a_failing_claim_is_undone_alone_and_the_end_commits(
    jobs: Jobs, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = submit(jobs, 2)
    assert jobs.queue.claim("w1") is not None

    def broken(*_: Any) -> None:
        raise RuntimeError("the licence could not be read")

    monkeypatch.setattr(job_claims, "lapsed", broken)  # after the row was marked running and its attempt counted
    watch = LedgerWatch(instance)
    view, claimed = finish_and_claim(jobs.queue, first)
    assert view is not None and claimed is None
    assert watch.since() == [("job.finished", f"job:{first}")]
    done, left = jobs.show(first), jobs.show(second)
    assert (done.state, done.verdict) == ("done", "pass")
    assert (left.state, left.attempts, left.worker) == ("queued", 0, None)
    assert instance.ledger.verify().ok


def test_an_end_that_rolls_back_takes_its_claim_with_it(jobs: Jobs, instance: Instance) -> None:
    first, second = submit(jobs, 2)
    assert jobs.queue.claim("w1") is not None
    watch = LedgerWatch(instance)

    def claim_then_fail(change: Change, _: JobView) -> None:
        assert jobs.queue.claim_within(change, "w1") is not None
        raise RuntimeError("the end could not be recorded")

    with pytest.raises(RuntimeError):
        jobs.queue.finish(first, "w1", 1, state="done", then=claim_then_fail)
    assert watch.since() == []
    assert (jobs.show(first).state, jobs.show(second).state, jobs.show(second).attempts) == ("running", "queued", 0)


# --- the worker loops ------------------------------------------------------------------------------------


def counting_claims(worker: Any) -> list[str]:
    """The claims the worker made in a transaction of their own."""
    calls: list[str] = []
    claim = worker.queue.claim

    def counted(worker_id: str) -> Any:
        calls.append(worker_id)
        return claim(worker_id)

    worker.queue.claim = counted
    return calls


def test_run_pending_claims_each_next_job_with_the_previous_end(instance: Instance, markers: Path) -> None:
    licensed(instance.registry, instance.home)
    ids = [instance.jobs.submit(OPERATOR, ["traffic"], "python", f"print({i})", SCENARIO) for i in range(3)]
    worker = instance.worker(runner=fast_runner, worker_id="w1")
    own_claims = counting_claims(worker)
    done = worker.run_pending()
    assert [v.id for v in done] == ids and all(v.state == "done" and v.attempts == 1 for v in done)
    assert own_claims == ["w1", "w1"]  # the first and the last look (an empty queue); the rest came with an end
    assert len(list(markers.glob("*.start"))) == 3  # one run each, nothing twice
    assert instance.ledger.verify().ok


def test_a_limited_run_claims_no_job_beyond_its_limit(instance: Instance, markers: Path) -> None:
    licensed(instance.registry, instance.home)
    first, second = (instance.jobs.submit(OPERATOR, ["traffic"], "python", f"print({i})", SCENARIO) for i in range(2))
    worker = instance.worker(runner=fast_runner, worker_id="w1")
    (done,) = worker.run_pending(limit=1)
    assert done.id == first
    left = instance.jobs.show(second)
    assert (left.state, left.attempts) == ("queued", 0)
    assert [e.subject for e in instance.ledger.entries(action="job.started")] == [f"job:{first}"]


def test_a_stopping_worker_gives_back_the_job_it_claimed_with_an_end(instance: Instance, markers: Path) -> None:
    licensed(instance.registry, instance.home)
    first, second = (instance.jobs.submit(OPERATOR, ["traffic"], "python", f"print({i})", SCENARIO) for i in range(2))
    worker = instance.worker(runner=fast_runner, worker_id="w1")
    stop = threading.Event()
    claim_within = worker.queue.claim_within

    def claimed_then_stopped(change: Change, worker_id: str) -> Any:
        got = claim_within(change, worker_id)
        stop.set()  # SIGTERM arrives after the next job was claimed with the end, before it runs
        return got

    worker.queue.claim_within = claimed_then_stopped
    assert worker.run_forever(stop, poll=0.1, wake=False) == 1
    ended, given_back = instance.jobs.show(first), instance.jobs.show(second)
    assert ended.state == "done"
    assert (given_back.state, given_back.attempts, given_back.worker) == ("queued", 0, None)
    actions = [
        (e.action, e.subject) for e in instance.ledger.entries(after=0, limit=10_000) if e.subject == f"job:{second}"
    ]
    assert actions == [
        ("job.queued", f"job:{second}"),
        ("job.started", f"job:{second}"),
        ("job.requeued", f"job:{second}"),
    ]
    assert len(list(markers.glob("*.start"))) == 1


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-commit:job.finished", "job.recorded"])
def test_a_worker_killed_around_the_combined_commit_loses_no_job(
    initialised: tuple[Instance, dict[str, str]], markers: Path, point: str
) -> None:
    """Killed just before the commit that ends one job and claims the next, nothing of it happened: the
    first job is still running (reaped, rerun) and the second queued. Killed just after it, the first job
    is done and the second is running for a dead worker: the reaper requeues it and it runs once more."""
    from tests.test_crash_safety import kill_at, reopen

    instance, _ = initialised
    home = instance.home
    licensed(instance.registry, home)
    first, second = (instance.jobs.submit(OPERATOR, ["traffic"], "python", f"print({i})", SCENARIO) for i in range(2))
    instance.close()

    kill_at(home, point, "work")

    reopened = reopen(home)
    try:
        was_first, was_second = reopened.jobs.show(first), reopened.jobs.show(second)
        if point == "job.recorded":
            assert (was_first.state, was_second.state, was_second.worker) == ("done", "running", "doomed")
        else:
            assert (was_first.state, was_second.state, was_second.attempts) == ("running", "queued", 0)
        worker = reopened.worker(runner=fast_runner, worker_id="survivor", stale_after=timedelta(seconds=0.5))
        time.sleep(0.6)  # the dead worker's heartbeat goes stale
        worker.run_pending()
        assert [reopened.jobs.show(j).state for j in (first, second)] == ["done", "done"]
        assert reopened.jobs.show(second).attempts == (2 if point == "job.recorded" else 1)
        requeued = {e.subject for e in reopened.ledger.entries(action="job.requeued")}
        assert requeued == {f"job:{second}" if point == "job.recorded" else f"job:{first}"}
        assert reopened.ledger.verify().ok
    finally:
        reopened.close()
