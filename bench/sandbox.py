"""Sandbox start-up cost: the same job bare and through the isolated runner (issue 6's target).

Why: every operator job pays the sandbox's start-up; issue 6 sets the target at ≤ 50 ms per job
over a bare ``python -c pass`` on this machine (container-based research environments take about
a second). Prints one JSON object per line, each with the machine it ran on:

* ``trivial``: median and p95 wall seconds of ``python -I -c pass`` run bare (subprocess) and
  through :func:`sandbox.runner.run` (bwrap, seccomp, cgroups, rlimits, /out sweep — everything a
  real job gets), and the overhead of the medians in milliseconds against the 50 ms target;
* ``pandas_import``: the same for ``python -I -c "import pandas"``.

* ``workers``: jobs per minute through the whole path — ``keyong job submit`` rows in the queue,
  ``--workers`` (default 2) ``keyong worker --once`` processes claiming them from the database,
  each job a sandboxed ``python`` job over a desensitized copy — on an instance made by
  ``keyong demo``, over the demo operator's own licence (``residents``).

Run: ``.venv/bin/python bench/sandbox.py [--runs 30]`` (about a minute with the defaults).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from benchinfo import emit, machine

from app import Instance, Settings
from sandbox.runner import check_sandbox, run, sandbox_python

TARGET_OVERHEAD_MS = 50.0


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _bare(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sandbox_python(), "-I", "-c", code], check=True, capture_output=True)
    return time.perf_counter() - started


def _sandboxed(code: str, scratch: Path, n: int) -> float:
    started = time.perf_counter()
    result = run([sandbox_python(), "-I", "-c", code], data={}, out_dir=scratch / f"out-{n}")
    elapsed = time.perf_counter() - started
    if result.status != "ok":
        raise RuntimeError(f"sandboxed job failed: {result.reason}: {result.stderr[-300:]}")
    return elapsed


def measure(name: str, code: str, runs: int, scratch: Path) -> dict[str, object]:
    bare: list[float] = []
    boxed: list[float] = []
    for n in range(runs):  # interleaved, so a busy moment of the machine hits both alike
        bare.append(_bare(code))
        boxed.append(_sandboxed(code, scratch, n))
    overhead_ms = (statistics.median(boxed) - statistics.median(bare)) * 1000
    return {
        "benchmark": name,
        "code": code,
        "runs": runs,
        "bare_median_s": round(statistics.median(bare), 4),
        "bare_p95_s": round(_p95(bare), 4),
        "sandbox_median_s": round(statistics.median(boxed), 4),
        "sandbox_p95_s": round(_p95(boxed), 4),
        "overhead_median_ms": round(overhead_ms, 1),
        "target_overhead_ms": TARGET_OVERHEAD_MS,
        "meets_target": overhead_ms <= TARGET_OVERHEAD_MS,
    }


def workers(jobs: int, processes: int, scratch: Path) -> dict[str, object]:
    """Jobs per minute: ``processes`` worker processes draining ``jobs`` queued sandboxed python jobs."""
    import os
    import sys

    home = scratch / "home"
    keyong = str(Path(sys.executable).with_name("keyong"))
    os.environ["KEYONG_JOB_CONCURRENT_LIMIT"] = str(jobs + 1)  # the bench queues them all at once
    subprocess.run([keyong, "demo", "--home", str(home), "--residents", "2000", "--json"], check=True,
                   capture_output=True)  # fmt: skip
    instance = Instance.open(Settings().with_home(home))
    try:
        # The demo's own licence (residents, 人口结构分析): granting a new licence now goes through its
        # publicity period (公示), which a bench cannot wait out.
        operator, scenario = "demo-operator", "人口结构分析"
        code = "import pandas as pd\nprint(len(pd.read_parquet('/data/residents.parquet')))\n"
        for _ in range(jobs):
            instance.jobs.submit(operator, ["residents"], "python", code, scenario)
    finally:
        instance.close()
    env = {**os.environ, "KEYONG_HOME": str(home)}
    started = time.perf_counter()
    running = [
        subprocess.Popen(
            [keyong, "worker", "--once", "--home", str(home), "--json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    for process in running:
        process.wait()
    seconds = time.perf_counter() - started
    instance = Instance.open(Settings().with_home(home))
    try:
        states: dict[str, int] = {}
        for view in instance.jobs.queue.list(limit=jobs + 10):
            states[view.state] = states.get(view.state, 0) + 1
    finally:
        instance.close()
    return {
        "bench": "workers", "workers": processes, "jobs": jobs, "seconds": round(seconds, 2),
        "jobs_per_minute": round(jobs / seconds * 60, 1), "states": states, "database": "sqlite",
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each job, bare and sandboxed")
    parser.add_argument("--jobs", type=int, default=60, help="queued jobs for the workers measurement")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the workers measurement")
    args = parser.parse_args(argv)
    description = check_sandbox()
    host = machine(bubblewrap=description.split(" at ")[0], pandas=version("pandas"))
    scratch = Path(tempfile.mkdtemp(prefix="keyong-bench-sandbox-"))
    try:
        _sandboxed("pass", scratch, -1)  # warm the page cache and the self-test
        for name, code in (("trivial", "pass"), ("pandas_import", "import pandas")):
            emit({**measure(name, code, args.runs, scratch), "sandbox": description, "machine": host})
        emit({**workers(args.jobs, args.workers, scratch), "machine": host})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
