"""Where a worker's time goes per small job (issue 21): one in-process worker, each stage timed.

Why: ``bench/latency.py --part throughput`` says how many jobs a minute two workers finish; this says
which stage of a job's path outside the sandbox costs what, so the next cut is chosen by measurement.
A home made by ``keyong demo --residents 2000`` (this code), ``--jobs`` small jobs queued (trivial
``python`` and small ``sql`` aggregates over ``residents``, alternating), then one ``Worker`` with the
real sandboxed runner runs them all (``run_pending``). Each stage is wrapped with ``perf_counter`` (wall)
and ``thread_time`` (CPU of the worker's own thread; the sandbox's CPU is its child's):

``claim`` (a claim in a transaction of its own: the first; later ones ride in the previous job's ``finish``,
counted there under that job's kind), ``stage`` (copies staged, checked, decrypted), ``run`` (the
sandbox: warm21's part), ``prints`` (the guard's fingerprint sets), ``judge`` (the export guard proper),
``seal`` (outputs sealed at rest), ``finish`` (the ledgered end transaction); ``total`` is ``run_once``.

Run: ``.venv/bin/python bench/worker_stages.py [--jobs 200]``; one JSON object per kind and stage.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchinfo import ROOT, emit, machine
from latency_throughput import DATASET, OPERATOR, PYTHON_JOB, SCENARIO, SQL_JOB, quota_env

Timings = dict[str, dict[str, list[tuple[float, float]]]]


class Stages:
    """Per job kind and stage: (wall, cpu) seconds of each call."""

    def __init__(self) -> None:
        self.kind = "?"
        self.times: Timings = defaultdict(lambda: defaultdict(list))
        self._lock = threading.Lock()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.times[self.kind][name].append((time.perf_counter() - wall, time.thread_time() - cpu))

        return timed


def _setup(home: Path, jobs: int) -> None:
    env = {**os.environ, **quota_env(jobs)}
    command = [sys.executable, "-m", "app.cli", "demo", "--home", str(home), "--residents", "2000", "--json"]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=900)


def measure(home: Path, jobs: int) -> Timings:
    from app import Instance, Settings
    from sandbox import worker as worker_module
    from sandbox.guard import warm

    instance = Instance.open(Settings().with_home(home))
    stages = Stages()
    try:
        for n in range(jobs):
            kind, code = ("python", PYTHON_JOB) if n % 2 == 0 else ("sql", SQL_JOB)
            instance.jobs.submit(OPERATOR, [DATASET], kind, code, SCENARIO)
        worker = instance.worker()
        runner = worker.runner
        worker._runner = stages.wrap("run", runner)
        queue = worker.queue
        queue.claim = stages.wrap("claim", queue.claim)
        run = worker._run

        def running(claimed: Any, runner: Any) -> Any:  # a job claimed alone or with the previous one's end
            stages.kind = claimed.job.kind
            return run(claimed, runner)

        worker._run = running
        queue.finish = stages.wrap("finish", queue.finish)
        worker.copies.open = stages.wrap("stage", worker.copies.open)
        worker._judge = stages.wrap("judge+prints", worker._judge)
        for name, stage in (("guard_prints", "prints"), ("seal_attempt", "seal")):  # as sandbox.worker calls them
            setattr(worker_module, name, stages.wrap(stage, getattr(worker_module, name)))
        worker.run_once = stages.wrap("total", worker.run_once)
        warm(quiet=True)
        worker.run_pending()
    finally:
        instance.close()
    return stages.times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="small jobs queued, python and sql alternating")
    args = parser.parse_args(argv)
    host = machine(commit=subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
                   .stdout.strip())  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="keyong-stages-") as scratch:
        home = Path(scratch) / "home"
        _setup(home, args.jobs)
        os.environ.update(quota_env(args.jobs))
        times = measure(home, args.jobs)
    for kind, stages in sorted(times.items()):
        if kind == "?":
            continue
        for stage, samples in stages.items():
            walls = [w for w, _ in samples]
            cpus = [c for _, c in samples]
            if stage == "judge+prints":
                continue
            emit({"bench": "worker_stage", "kind": kind, "stage": stage, "calls": len(samples),
                  "wall_median_ms": round(1000 * statistics.median(walls), 2),
                  "cpu_median_ms": round(1000 * statistics.median(cpus), 2),
                  "wall_total_s": round(sum(walls), 2), "load_average": [round(x, 2) for x in os.getloadavg()],
                  "machine": host})  # fmt: skip
        both = stages.get("judge+prints", [])
        prints = stages.get("prints", [])
        if both and len(both) == len(prints):
            judge = [(a - p, b - q) for (a, b), (p, q) in zip(both, prints, strict=True)]
            emit({"bench": "worker_stage", "kind": kind, "stage": "judge", "calls": len(judge),
                  "wall_median_ms": round(1000 * statistics.median(w for w, _ in judge), 2),
                  "cpu_median_ms": round(1000 * statistics.median(c for _, c in judge), 2),
                  "machine": host})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
