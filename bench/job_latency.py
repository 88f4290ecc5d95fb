"""Submit-to-verdict latency of small jobs (issue 21 "Job latency"), with sandboxes pre-started or not.

Run: ``.venv/bin/python bench/latency.py job_latency [--jobs 9] [--think 2.0] [--kind sql --kind dp-query]``
(or this file directly). One JSON object per measurement:

* ``sandbox_imports``: per kind, a bare sandbox (``python -c pass``) and the kind's imports inside a
  fresh sandbox (the launcher's preload, :data:`sandbox.prestart.PRELOADS`), wall and CPU seconds:
  what pre-starting takes off a job's path.
* ``job_latency``: per kind and mode (``prestart`` on, ``fresh`` the baseline, in the same run, jobs of
  the two modes alternating so a busy machine weighs on both alike), median and p95 of submit → verdict
  over ``--jobs`` jobs, beside the target (sql ≤ 0.5 s, dp-query ≤ 1.0 s), and the median of each phase:
  ``submit`` (scope, DP plan and budget, enqueue), ``claim``, ``stage`` (copies checked and decrypted),
  ``sandbox`` (the runner: start or take, the job, teardown), ``job`` (the run's own wall time, from
  launch when fresh, from "go" when pre-started), ``judge`` (export guard), ``finish`` (outputs sealed,
  verdict and ledger committed); ``cpu_s``: the job's CPU (its cgroup, from "go") and the worker's own.

How: ``keyong demo`` makes a home (its operator, licence, desensitized copies); the jobs are the demo's
SQL aggregate and its dp-query (ε 0.02 each, charged to the demo licence's budget) submitted in this
process and run by the same worker loop ``keyong worker`` runs (``Worker.run_once``, right after the
submission, so no poll interval is counted — polling is issue 21's throughput part). ``--think``
seconds pass between jobs, as between an analyst's questions; the pool refills in that time.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchinfo import ROOT, emit, machine

TARGETS_S = {"sql": 0.5, "dp-query": 1.0}
PHASES = ("submit", "claim", "stage", "sandbox", "judge", "finish")


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_home(scratch: Path) -> Path:
    """A home made by ``keyong demo`` (~25 s): its operator, licence and copies serve the measured jobs."""
    home = scratch / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYONG_")}
    env["PYTHONPATH"] = ROOT
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--home", str(home), "--json"],
        cwd=scratch,
        env=env,
        capture_output=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"keyong demo failed: {done.stderr.decode()[-800:]}")
    return home


def jobs_of_the_demo() -> dict[str, tuple[list[str], str, str]]:
    """kind -> (datasets, code, scenario): the demo's SQL aggregate and its dp-query at ε 0.02."""
    from app.demo.scenario import DEMO_DP_QUERY, DEMO_SCENARIOS, DEMO_SQL

    query = {**json.loads(DEMO_DP_QUERY), "epsilon": 0.02}
    return {
        "sql": (["residents"], DEMO_SQL, DEMO_SCENARIOS[0]),
        "dp-query": (["social_insurance"], json.dumps(query, ensure_ascii=False), DEMO_SCENARIOS[1]),
    }


class Timed:
    """Wraps a worker's steps to time each phase of the job running now."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - began

        return timed


@contextmanager
def instrumented_worker(home: Path) -> Iterator[tuple[Any, Any, Timed]]:
    """The instance, a worker over it with its phases timed, and the timer."""
    from app import Instance, Settings
    from sandbox.guard import warm
    from sandbox.kinds import run_job
    from sandbox.runner import check_sandbox

    check_sandbox()
    warm(quiet=True)  # as run_forever does before its first job
    instance = Instance.open(Settings(home=home), upgrade=False)
    try:
        worker = instance.worker(worker_id="bench-latency")
        timer = Timed()
        worker.queue.claim = timer.wrap("claim", worker.queue.claim)  # type: ignore[method-assign]
        worker.queue.finish = timer.wrap("finish", worker.queue.finish)  # type: ignore[method-assign]
        worker.copies.open = timer.wrap("stage", worker.copies.open)  # type: ignore[method-assign]
        worker._judge = timer.wrap("judge", worker._judge)  # type: ignore[method-assign]
        worker._runner = timer.wrap("sandbox", run_job)
        yield instance, worker, timer
    finally:
        instance.close()


def one_job(instance: Any, worker: Any, timer: Timed, kind: str, job: tuple[list[str], str, str]) -> dict[str, Any]:
    """Submit one job, run it with the worker loop's ``run_once``; its timings."""
    datasets, code, scenario = job
    timer.phases = {}
    cpu_before = _cpu()
    began = time.perf_counter()
    job_id = instance.jobs.submit("demo-operator", datasets, kind, code, scenario)
    timer.phases["submit"] = time.perf_counter() - began
    view = worker.run_once()
    total = time.perf_counter() - began
    if view is None or view.id != job_id:
        raise RuntimeError(f"job {job_id} was not the one run ({view})")
    if view.state != "done":
        raise RuntimeError(f"job {job_id} ended {view.state}: {view.reason}")
    resources = view.resources or {}
    return {
        "total": total,
        "verdict": view.verdict,
        "phases": dict(timer.phases),
        "job": float(resources.get("wall", 0.0)),
        "job_cpu": float(resources.get("cpu", 0.0)),
        "worker_cpu": _cpu() - cpu_before,
    }


def _summary(kind: str, mode: str, runs: list[dict[str, Any]], stats: dict[str, int] | None) -> dict[str, Any]:
    totals = [run["total"] for run in runs]
    record: dict[str, Any] = {
        "bench": "job_latency",
        "kind": kind,
        "mode": mode,
        "jobs": len(runs),
        "median_s": round(statistics.median(totals), 3),
        "p95_s": round(_p95(totals), 3),
        "target_s": TARGETS_S.get(kind),
        "phases_median_s": {
            name: round(statistics.median(run["phases"].get(name, 0.0) for run in runs), 3) for name in PHASES
        },
        "job_wall_median_s": round(statistics.median(run["job"] for run in runs), 3),
        "cpu_median_s": {
            "job": round(statistics.median(run["job_cpu"] for run in runs), 3),
            "worker": round(statistics.median(run["worker_cpu"] for run in runs), 3),
        },
        "verdicts": sorted({str(run["verdict"]) for run in runs}),
    }
    if record["target_s"] is not None:
        record["meets_target"] = record["median_s"] <= record["target_s"]
    if stats is not None:
        record["pool"] = stats
    return record


def job_latency(home: Path, kinds: Sequence[str], jobs: int, think: float) -> Iterator[dict[str, Any]]:
    """Per kind, ``jobs`` jobs with the pool and ``jobs`` without, alternating; one record per kind and mode."""
    from sandbox.kinds import run_job
    from sandbox.pool import SandboxPool
    from sandbox.runner import Limits

    demo = jobs_of_the_demo()
    with instrumented_worker(home) as (instance, worker, timer):
        pool = SandboxPool(worker.limits or Limits(), kinds).start()
        try:
            for kind in kinds:
                for wanted in kinds:
                    pool.wait_warm(wanted, 120)
                runs: dict[str, list[dict[str, Any]]] = {"prestart": [], "fresh": []}
                before = dict(pool.stats)
                for index in range(jobs + 1):  # the first of each mode warms caches and is not counted
                    for mode in ("fresh", "prestart"):
                        runner = functools.partial(run_job, pool=pool) if mode == "prestart" else run_job
                        worker._runner = timer.wrap("sandbox", runner)  # as Worker.run_forever's, or fresh
                        if mode == "prestart":
                            pool.wait_warm(kind, think + 30)  # an analyst's next question comes after the refill
                        measured = one_job(instance, worker, timer, kind, demo[kind])
                        if index > 0:
                            runs[mode].append(measured)
                        time.sleep(think)
                delta = {key: pool.stats[key] - before.get(key, 0) for key in pool.stats}
                yield _summary(kind, "prestart", runs["prestart"], delta)
                yield _summary(kind, "fresh", runs["fresh"], None)
        finally:
            pool.close()


def sandbox_imports(kinds: Sequence[str], runs: int = 3) -> Iterator[dict[str, Any]]:
    """A bare sandbox and each kind's imports in a fresh one: what a pre-started sandbox has done already."""
    from sandbox.prestart import PRELOADS
    from sandbox.runner import run, sandbox_python

    timing = "import time\n_t = time.perf_counter()\n{preload}print(round(time.perf_counter() - _t, 4))\n"
    cases = {"bare": "pass\n", **{kind: PRELOADS[kind] for kind in kinds}}
    for name, preload in cases.items():
        walls, inside, cpus = [], [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="keyong-bench-") as scratch:
                began = time.perf_counter()
                code = timing.format(preload=preload) if name != "bare" else "pass"
                result = run([sandbox_python(), "-I", "-B", "-c", code], data={}, out_dir=Path(scratch) / "out")
                walls.append(time.perf_counter() - began)
                cpus.append(result.cpu_seconds)
                if name != "bare":
                    inside.append(float(result.stdout.strip()))
        record: dict[str, Any] = {
            "bench": "sandbox_imports",
            "case": name,
            "runs": runs,
            "wall_median_s": round(statistics.median(walls), 3),
            "cpu_median_s": round(statistics.median(cpus), 3),
        }
        if inside:
            record["imports_median_s"] = round(statistics.median(inside), 3)
        yield record


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Submit-to-verdict latency with and without pre-started sandboxes.")
    parser.add_argument("--jobs", type=int, default=9, help="Jobs per kind and mode (after one warm-up each).")
    parser.add_argument("--think", type=float, default=2.0, help="Seconds between jobs (an analyst's next question).")
    parser.add_argument("--kind", action="append", choices=sorted(TARGETS_S), help="Kinds to measure (default: both).")
    parser.add_argument("--home", type=Path, help="An existing home made by `keyong demo` (default: a new one).")
    args = parser.parse_args(argv)
    kinds = args.kind or ["sql", "dp-query"]
    from importlib.metadata import version

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    info = machine(duckdb=version("duckdb"), diffprivlib=version("diffprivlib"), commit=commit)
    for record in sandbox_imports(kinds):
        emit({**record, "load_average": [round(x, 2) for x in os.getloadavg()], "machine": info})
    with tempfile.TemporaryDirectory(prefix="keyong-job-latency-") as scratch:
        home = args.home or make_home(Path(scratch))
        for record in job_latency(home, kinds, args.jobs, args.think):
            emit({**record, "load_average": [round(x, 2) for x in os.getloadavg()], "machine": info})


if __name__ == "__main__":
    main()
