"""Issue 21, throughput: an idle worker is woken by a submission (NOTIFY on PostgreSQL, a short
``data_version`` poll on SQLite) and by nothing that leaves it nothing to claim; a worker keeps the
guard's fingerprint sets between jobs only while the database records the same files, and a kept set
cannot be altered. Every check stays as it was: each job is still claimed by one worker, judged and
ledgered (双鸭山 第二十条: usage logs; 第三十五条: nothing leaves unjudged). SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from app import Instance
from core import Actor, RegistryError
from operators.jobs import JobRefusedError, Jobs
from registry import Registry
from samples import synthetic
from sandbox.ports import RegistryHooks
from sandbox.print_cache import PrintCache, base_identity, licence_identity
from sandbox.wakeup import Degrading, PostgresWakeup, Sleep, SqliteWakeup, Wakeup, wakeup_for
from tests.conftest import FakeClock
from tests.job_worker_proc import MARKERS_ENV, OPERATOR, SCENARIO, fast_runner
from tests.test_registry_copies import CUSTODIAN, PROVIDER, PROVIDER_CODE

#: Long enough that a wait ending on its timeout, not on a wake-up, is told apart by its answer (False).
LONG = 60.0


@pytest.fixture
def wake(instance: Instance) -> Iterator[Wakeup]:
    waiting = wakeup_for(instance.engine)
    yield waiting
    waiting.close()


class Waiter:
    """``wake.wait`` in a thread (as the worker's loop waits); its answer once it returned."""

    def __init__(self, wake: Wakeup, timeout: float = LONG) -> None:
        self.stop = threading.Event()
        self.answer: list[bool] = []
        self.thread = threading.Thread(target=lambda: self.answer.append(wake.wait(timeout, self.stop)), daemon=True)
        self.thread.start()

    def result(self) -> bool | None:
        self.thread.join(LONG + 30)
        return self.answer[0] if self.answer else None


def submit(jobs: Jobs, code: str = "print(1)") -> int:
    return jobs.submit(OPERATOR, ["traffic"], "python", code, SCENARIO)


def test_each_database_gets_its_own_wakeup_and_an_unknown_one_sleeps(instance: Instance, wake: Wakeup) -> None:
    expected = SqliteWakeup if instance.engine.dialect.name == "sqlite" else PostgresWakeup
    assert isinstance(wake, Degrading) and isinstance(wake.inner, expected)
    stop = threading.Event()
    stop.set()
    assert Sleep().wait(LONG, stop) is False  # a set stop ends any wait at once, woken by nothing


def test_a_failing_wakeup_turns_into_polling_and_never_stops_the_worker(instance: Instance) -> None:
    """The listening connection dropped, or the database is away: the worker logs it and polls."""

    class Broken:
        closed = False

        def before_claim(self) -> None:
            raise OSError("connection lost")

        def wait(self, timeout: float, stop: threading.Event) -> bool:
            raise OSError("connection lost")

        def close(self) -> None:
            Broken.closed = True

    wake = Degrading(Broken())
    wake.before_claim()
    assert isinstance(wake.inner, Sleep) and Broken.closed
    wake = Degrading(Broken())
    stop = threading.Event()
    stop.set()
    assert wake.wait(LONG, stop) is False and isinstance(wake.inner, Sleep)


def test_a_submission_wakes_an_idle_worker(jobs: Jobs, wake: Wakeup) -> None:
    wake.before_claim()  # the queue is empty: the claim that follows finds nothing
    assert jobs.queue.claim("w1") is None
    waiter = Waiter(wake)
    job = submit(jobs)
    assert waiter.result() is True  # woken, not timed out
    claimed = jobs.queue.claim("w1")
    assert claimed is not None and claimed.job.id == job


def test_a_refused_submission_and_the_other_workers_commits_wake_nobody(
    jobs: Jobs, wake: Wakeup, registry: Registry
) -> None:
    """Only a job that may be claimed wakes a worker: a refusal is a row too (and ledgered), a running
    job's heartbeat and end are commits, yet none of them leaves anything to claim."""
    running = submit(jobs)
    claimed = jobs.queue.claim("w2")
    assert claimed is not None and claimed.job.id == running
    wake.before_claim()
    assert jobs.queue.claim("w1") is None
    waiter = Waiter(wake, timeout=1.0)
    with pytest.raises(JobRefusedError):
        jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", "no such scenario")
    jobs.queue.heartbeat(running, "w2", claimed.attempt)
    jobs.queue.finish(running, "w2", claimed.attempt, state="done", verdict="review")
    assert waiter.result() is False  # it waited its whole (short) timeout
    waiter = Waiter(wake)
    submit(jobs)
    assert waiter.result() is True


def test_queued_jobs_a_worker_may_not_take_do_not_wake_it_again_and_again(
    jobs: Jobs, wake: Wakeup, registry: Registry
) -> None:
    """An operator's jobs held while it is suspended (双鸭山 第三十一条) stay queued: a worker that found
    nothing to claim is not woken by them (no busy loop of claims), but a requeued or a new job wakes it."""
    submit(jobs)
    registry.licences.suspend_operator(OPERATOR, reason="测试：暂停", by=Actor("demo-agency", "agency"))
    wake.before_claim()
    assert jobs.queue.claim("w1") is None  # held
    waiter = Waiter(wake, timeout=1.0)
    jobs.queue.reap(timedelta(seconds=30))  # a write transaction, nothing to requeue
    assert waiter.result() is False


def test_a_requeued_job_wakes_an_idle_worker(jobs: Jobs, wake: Wakeup, clock: FakeClock) -> None:
    job = submit(jobs)
    assert jobs.queue.claim("w-lost") is not None
    wake.before_claim()
    assert jobs.queue.claim("w1") is None
    waiter = Waiter(wake)
    clock.advance(seconds=120)
    assert [v.id for v in jobs.queue.reap(timedelta(seconds=30))] == [job]
    assert waiter.result() is True


def test_a_stop_ends_the_wait(wake: Wakeup) -> None:
    wake.before_claim()
    waiter = Waiter(wake)
    waiter.stop.set()
    assert waiter.result() is False


def test_two_woken_workers_still_claim_each_job_once(
    instance: Instance, jobs: Jobs, registry: Registry, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers looping with wake-ups (``run_forever``) over jobs submitted while they idle: every
    job runs once, is judged (a verdict on its row) and ledgered (started and finished once each)."""
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(MARKERS_ENV, str(markers))
    stop = threading.Event()
    workers = [instance.worker(runner=fast_runner, worker_id=f"w{n}", fingerprints=None) for n in range(2)]
    ran: list[int] = []

    def loop(worker: Any) -> None:
        ran.append(worker.run_forever(stop, poll=LONG))

    threads = [threading.Thread(target=loop, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        ids = [submit(jobs, f"print({n})") for n in range(12)]
        deadline = threading.Event()
        for _ in range(600):
            if all(jobs.show(i).state == "done" for i in ids):
                break
            deadline.wait(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(LONG + 30)
    views = [jobs.show(i) for i in ids]
    assert [v.state for v in views] == ["done"] * 12
    assert all(v.verdict is not None and v.attempts == 1 for v in views)
    assert sum(ran) == 12
    with instance.engine.connect() as connection:
        actions = connection.execute(
            text("SELECT action, subject FROM ledger_entries WHERE action IN ('job.started', 'job.finished')")
        ).all()
    for job in ids:
        assert sorted(a for a, s in actions if s == f"job:{job}") == ["job.finished", "job.started"]


# --- the fingerprint sets a worker keeps --------------------------------------------------------------


def test_the_cache_keeps_a_set_only_under_an_identity_read_before_and_after_its_load() -> None:
    cache = PrintCache(size=2)
    identity: list[Any] = [("base", "a", "p", (("f", "1"),))]
    loads: list[int] = []

    def load() -> Any:
        loads.append(1)
        return {"n": len(loads)}

    first = cache.get(lambda: identity[0], load)
    assert cache.get(lambda: identity[0], load) is first and len(loads) == 1
    identity[0] = ("base", "a", "p", (("f", "2"),))  # the row records other bytes: loaded afresh
    assert cache.get(lambda: identity[0], load) is not first and len(loads) == 2
    assert cache.get(lambda: None, load) == {"n": 3}  # no recorded identity: never kept
    assert cache.get(lambda: None, load) == {"n": 4}
    flips = iter([("x",), ("y",), ("y",), ("y",)])  # the record changed during the load: not kept
    cache.get(lambda: next(flips), load)
    assert cache.get(lambda: next(flips), load) == {"n": 6}
    for key in [("k", 0), ("k", 1), ("k", 2)]:  # bounded, least recently used out
        cache.get(lambda key=key: key, load)  # type: ignore[misc]
    assert len(cache._sets) == 2

    class Big:
        def __init__(self) -> None:
            self.arrays = {"rows": np.zeros(16, dtype=np.uint64)}  # 128 bytes

    small = PrintCache(max_bytes=200)
    small.get(lambda: ("big", 1), Big)
    small.get(lambda: ("big", 2), Big)  # two would exceed the bound: the older goes
    assert list(small._sets) == [("big", 2)]
    tiny = PrintCache(max_bytes=100)
    tiny.get(lambda: ("big", 1), Big)  # larger than the bound alone: used, never kept
    assert not tiny._sets


def _raw_residents() -> pd.DataFrame:
    return synthetic.generate_all(300, seed=21)["residents"]


def test_a_worker_reuses_fingerprints_only_while_the_row_records_the_same_files(
    instance: Instance, tmp_path: Any
) -> None:
    registry = instance.registry
    path = tmp_path / "residents.csv"
    synthetic.write_csv(_raw_residents(), path)
    registry.ingestor.ingest(path, name="residents", provider=PROVIDER, provider_code=PROVIDER_CODE, by=CUSTODIAN)
    version = registry.copies.make("residents", by=CUSTODIAN).version
    hooks = RegistryHooks(registry)
    first = hooks.fingerprints("residents", version)
    assert first is not None and hooks.fingerprints("residents", version) is first
    assert (hooks.prints.hits, hooks.prints.misses) == (1, 1)
    assert all(not array.flags.writeable for array in first.arrays.values())  # no judgement can alter it
    with pytest.raises(ValueError):
        next(iter(first.arrays.values()))[:1] = np.uint64(0)
    identity = base_identity(instance.engine, "residents", version)
    assert identity is not None and identity[:2] == ("base", ("residents", version))
    assert licence_identity(instance.engine, 10_000) is None
    # The row now records other bytes for a file of the set: the kept set is not used, the set is read
    # again and checked against the record, and refused (fail closed), never served from memory.
    with instance.engine.begin() as connection:
        report = connection.execute(
            text("SELECT v.id, v.report FROM dataset_versions v WHERE v.version = :v AND v.kind = 'desensitized'"),
            {"v": version},
        ).one()
        changed = _json(report[1])
        name = sorted(changed["fingerprint_files"])[0]
        changed["fingerprint_files"][name] = "0" * 64
        connection.execute(
            text("UPDATE dataset_versions SET report = :r WHERE id = :id"),
            {"r": _dumps(changed, connection.dialect.name), "id": report[0]},
        )
    with pytest.raises(RegistryError):
        hooks.fingerprints("residents", version)


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def _dumps(value: Any, dialect: str) -> Any:
    import json

    return json.dumps(value, ensure_ascii=False)
