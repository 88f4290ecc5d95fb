"""A worker's pool of pre-started sandboxes (issue 21): ``run_forever`` runs claimed jobs in warm sandboxes,
with the same verdict and the same output bytes as a fresh sandbox gives, and none when switched off."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app import Instance
from sandbox.prestart import ENVIRONMENT
from tests.conftest import require_sandbox
from tests.job_worker_proc import OPERATOR, SCENARIO, licensed

SQL = "SELECT 区县, sum(trips) AS trips FROM traffic GROUP BY 区县 ORDER BY 区县"
PYTHON = (
    "import pandas as pd\n"
    "df = pd.read_parquet('/data/traffic.parquet')\n"
    "df.groupby('区县')['trips'].sum().to_csv('/out/by_district.csv')\n"
    "print('rows', len(df))\n"
)


@pytest.fixture
def licensed_instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    require_sandbox()
    instance = initialised[0]
    licensed(instance.registry, instance.home)
    return instance


def _outputs(view: Any) -> dict[str, str]:
    return {o["name"]: o["sha256"] for o in view.outputs}


def _run_forever_until_done(
    instance: Instance, submit: Callable[[], list[int]], *, warm: tuple[str, ...] = ()
) -> tuple[dict[int, Any], dict[str, int] | None]:
    """Run a worker loop in a thread; once its pool has ``warm`` kinds ready, ``submit`` jobs and wait until
    they have ended. Their views and the pool's counters."""
    worker = instance.worker(worker_id=f"warm-{time.monotonic_ns()}")
    stop = threading.Event()
    stats: dict[str, dict[str, int] | None] = {"pool": None}
    thread = threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"poll": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 240
        while warm and getattr(worker, "pool", None) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        for kind in warm:
            assert worker.pool.wait_warm(kind, 120), kind
        jobs = submit()
        while time.monotonic() < deadline:
            views = {job: instance.jobs.queue.get(job) for job in jobs}
            if getattr(worker, "pool", None) is not None:
                stats["pool"] = dict(worker.pool.stats)
            if all(view.state in ("done", "failed") for view in views.values()):
                return views, stats["pool"]
            time.sleep(0.05)
        raise AssertionError("the worker did not finish the jobs")
    finally:
        stop.set()
        thread.join(60)
        assert getattr(worker, "pool", None) is None or worker.pool.closed.wait(60)  # closed with the loop


def test_run_forever_runs_jobs_in_prestarted_sandboxes_with_the_fresh_result(
    licensed_instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = licensed_instance
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    fresh_jobs = [instance.jobs.submit(OPERATOR, ["traffic"], kind, code, SCENARIO) for kind, code in
                  (("sql", SQL), ("python", PYTHON))]  # fmt: skip
    fresh = {view.id: view for view in instance.worker(worker_id="fresh").run_pending()}  # no pool: fresh
    warm_jobs: list[int] = []

    def submit() -> list[int]:
        warm_jobs.extend(instance.jobs.submit(OPERATOR, ["traffic"], kind, code, SCENARIO) for kind, code in
                         (("sql", SQL), ("python", PYTHON)))  # fmt: skip
        return warm_jobs

    views, stats = _run_forever_until_done(instance, submit, warm=("sql", "python"))
    assert stats is not None and stats["warm"] == 2 and stats["fresh"] == 0, stats
    for fresh_job, warm_job in zip(fresh_jobs, warm_jobs, strict=True):
        before, after = fresh[fresh_job], views[warm_job]
        assert after.state == before.state == "done", (after.reason, before.reason)
        assert after.verdict == before.verdict
        assert [f["rule"] for f in after.findings] == [f["rule"] for f in before.findings]
        assert _outputs(after) == _outputs(before)  # the same bytes
        assert after.resources is not None and after.resources["wall"] > 0


def test_run_forever_starts_no_pool_when_prestart_is_off(
    licensed_instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = licensed_instance
    monkeypatch.setenv(ENVIRONMENT, "0")
    job = instance.jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    views, stats = _run_forever_until_done(instance, lambda: [job])
    assert stats is None
    assert views[job].state == "done", views[job].reason


def test_an_injected_runner_gets_no_pool(licensed_instance: Instance, tmp_path: Path) -> None:
    """Tests and other runners keep their own: the pool serves the sandbox's own run_job only."""
    seen: list[dict[str, Any]] = []

    def runner(kind: str, code: str, **options: Any) -> Any:
        seen.append(options)
        raise RuntimeError("stop here")

    worker = licensed_instance.worker(runner=runner, worker_id="injected")
    licensed_instance.jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"poll": 0.05})
    thread.start()
    deadline = time.monotonic() + 60
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(60)
    assert seen and "pool" not in seen[0]
