"""The ``throughput`` part of ``bench/latency.py`` (issue 21): small jobs a minute with two real workers.

Why it is measured this way: the issue's target (≥ 600 small jobs a minute with two workers on this
machine) is about everything on a job's path, each job still sandboxed, judged and ledgered, so the
figure comes from the real thing end to end:

* a home made by ``keyong demo --residents 2000`` **of the code measured** (each code's own schema),
  copied afresh for every round, so every round starts from the same state;
* two ``keyong worker`` processes of that code (real processes, the real bubblewrap sandbox), started
  first and left idle until both said they poll;
* then ``--jobs`` small jobs submitted at once by one process of that code (``Jobs.submit``, what
  ``keyong job submit`` and the API call): trivial ``python`` jobs (``print(1)``) and small ``sql``
  aggregates over the demo operator's ``residents`` copy, alternating (``--mix both``), or one kind only;
* jobs a minute = jobs / (last ``finished_at`` − first ``created_at``) in the jobs table: submission,
  queueing, wake-up, claim, staging, sandbox, judgement, sealing and the ledgered end all included.
  ``drain_jobs_per_min``: the jobs that ended after the last submission, over the time from it to the
  last end (the workers' own rate once nothing competes with them; ``drained_jobs`` says how many).

CPU seconds (the workers and everything they ran, from ``RUSAGE_CHILDREN``, less their start-up; the
submitter's apart) are printed beside wall seconds: the machine is shared, and CPU per job is less
disturbed by other load. The start-up is read from ``/proc`` over each worker's whole process tree once
it polls *and* its tree's CPU has settled: a worker with pre-started sandboxes (``sandbox.pool``) says it
polls while its sandboxes still import their kinds' libraries (~1.7 s of CPU per worker, seen here), a
one-off of its start that the first reading charged to the round's jobs (~0.03 s a job at 120 jobs and
two workers), so that code looked dearer per job than code without a pool. The baseline (the code before issue 21's
throughput work, checked out by ``latency.checkout``) runs in the same run, round by round in turn with
the current code.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

TARGET_JOBS_PER_MIN = 600.0
OPERATOR = "demo-operator"
DATASET = "residents"
SCENARIO = "人口结构分析"
PYTHON_JOB = "print(1)\n"
SQL_JOB = "SELECT 性别, count(*) AS n FROM residents GROUP BY 性别"

#: Run in a child with the measured code on PYTHONPATH (never this tree's: benchinfo would put it first).
SUBMIT = """
import json, sys, time
from pathlib import Path
from app import Instance, Settings
home, count, operator, dataset, scenario, python_job, sql_job, mix = sys.argv[1:9]
instance = Instance.open(Settings().with_home(Path(home)))
ids = []
try:
    for n in range(int(count)):
        sql = mix == "sql" or (mix == "both" and n % 2 == 1)
        kind, code = ("sql", sql_job) if sql else ("python", python_job)
        ids.append(instance.jobs.submit(operator, [dataset], kind, code, scenario))
finally:
    instance.close()
print(json.dumps({"ids": ids, "done_at": time.time()}))
"""


def quota_env(jobs: int) -> dict[str, str]:
    """The bench queues all its jobs at once, round after round: the operator's quotas would refuse most."""
    return {
        "KEYONG_JOB_CONCURRENT_LIMIT": str(jobs + 10),
        "KEYONG_JOB_DAILY_LIMIT": str(100 * jobs + 100),
        "KEYONG_JOB_CPU_SECONDS_DAILY": str(1e9),
    }


@dataclass(frozen=True)
class Tree:
    """One version of Keyong: its tree (on PYTHONPATH) and the demo home its own code made."""

    label: str
    tree: Path
    template: Path

    def env(self, jobs: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYONG_")}
        return {**env, "PYTHONPATH": str(self.tree), **quota_env(jobs)}

    def keyong(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "app.cli", *args]


def make_template(code: Tree, residents: int = 2000) -> None:
    """``keyong demo`` of this code into its template home (once per run)."""
    done = subprocess.run(
        code.keyong("demo", "--home", str(code.template), "--residents", str(residents), "--json"),
        env=code.env(0), capture_output=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"keyong demo of {code.label} failed: {done.stderr.decode()[-2000:]}")


def _start_workers(code: Tree, home: Path, count: int, poll: float, jobs: int) -> list[subprocess.Popen[bytes]]:
    """``count`` ``keyong worker`` processes, returned once each has said it polls (its loop started)."""
    workers = []
    for n in range(count):
        log = open(home.parent / f"worker-{n}.log", "wb")  # noqa: SIM115  (closed with the process)
        argv = code.keyong("worker", "--home", str(home), "--poll", f"{poll:g}")
        workers.append(subprocess.Popen(argv, env=code.env(jobs), stdout=log, stderr=log))
    deadline = time.monotonic() + 300
    while not all(b"polling every" in (home.parent / f"worker-{n}.log").read_bytes() for n in range(count)):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            _stop(workers)
            tail = (home.parent / "worker-0.log").read_bytes()[-2000:].decode(errors="replace")
            raise RuntimeError(f"the workers of {code.label} did not start: {tail}")
        time.sleep(0.05)
    return workers


def _stop(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(120)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _ended(database: Path, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    marks = ",".join("?" * len(ids))
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        query = f"SELECT id, kind, state, verdict, created_at, started_at, finished_at FROM jobs WHERE id IN ({marks})"
        return [row for row in connection.execute(query, list(ids)) if row[6] is not None]


def _tree_cpu(pid: int) -> float:
    """CPU seconds a running process and all its descendants used so far: each one's own (utime + stime)
    and that of the children it already waited for (cutime + cstime), from ``/proc/PID/stat``."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    children: dict[int, list[int]] = {}
    for child, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(child)
    total, todo = 0, [pid]
    while todo:
        fields = stats.get(current := todo.pop())
        if fields is not None:
            total += sum(int(f) for f in fields[11:15])
            todo += children.get(current, [])
    return total / os.sysconf("SC_CLK_TCK")


def _settled_cpu(pids: Sequence[int], quiet: float = 0.05, timeout: float = 120.0) -> float:
    """The workers' trees' CPU once it stops rising (less than ``quiet`` s over a second): their start-up."""
    deadline = time.monotonic() + timeout
    last = sum(_tree_cpu(pid) for pid in pids)
    while True:
        time.sleep(1.0)
        now = sum(_tree_cpu(pid) for pid in pids)
        if now - last < quiet or time.monotonic() > deadline:
            return now
        last = now


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def one_round(code: Tree, scratch: Path, jobs: int, workers: int, poll: float, mix: str = "both") -> dict[str, Any]:
    """Fresh home, ``workers`` idle workers, ``jobs`` submitted at once; the figures of that round."""
    place = scratch / f"{code.label}-{time.monotonic_ns()}"
    place.mkdir()
    home = place / "home"
    shutil.copytree(code.template, home, symlinks=True)
    running = _start_workers(code, home, workers, poll, jobs)
    started_cpu = _settled_cpu([w.pid for w in running])  # imports, self-test, warm-up, pools: not per job
    cpu_started = _cpu()
    try:
        submit_cpu = _cpu()
        submitted = subprocess.run(
            [sys.executable, "-c", SUBMIT, str(home), str(jobs), OPERATOR, DATASET, SCENARIO, PYTHON_JOB, SQL_JOB, mix],
            env=code.env(jobs), capture_output=True, timeout=900, check=False,
        )  # fmt: skip
        submit_cpu = _cpu() - submit_cpu
        if submitted.returncode != 0:
            raise RuntimeError(f"submission to {code.label} failed: {submitted.stderr.decode()[-2000:]}")
        answer = json.loads(submitted.stdout.decode().strip().splitlines()[-1])
        ids = [int(i) for i in answer["ids"]]
        deadline = time.monotonic() + max(600.0, 2.0 * jobs)
        while len(rows := _ended(home / "keyong.db", ids)) < len(ids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{code.label}: only {len(rows)} of {len(ids)} jobs ended in time")
            time.sleep(0.1)
    finally:
        _stop(running)
    worker_cpu = _cpu() - cpu_started - submit_cpu - started_cpu
    figures = _figures(rows, float(answer["done_at"]))
    shutil.rmtree(place, ignore_errors=True)
    return {**figures, "worker_cpu_s_per_job": round(worker_cpu / len(ids), 4),
            "submit_cpu_s_per_job": round(submit_cpu / len(ids), 4),
            "start_cpu_s": round(started_cpu, 2)}  # fmt: skip


def _time(value: str) -> float:
    return float(datetime.fromisoformat(value).timestamp())  # naive UTC, as the rows keep it: differences only


def _figures(rows: Sequence[tuple[Any, ...]], submitted_at: float) -> dict[str, Any]:
    created = [_time(r[4]) for r in rows]
    finished = [_time(r[6]) for r in rows]
    span = max(finished) - min(created)
    latency = sorted(f - c for f, c in zip(finished, created, strict=True))
    # The rows' clock is naive UTC; time.time() is an epoch: the last submission relative to the first row.
    last_created = max(created)
    drain = max(finished) - last_created
    drained = sum(f > last_created for f in finished)  # the jobs that ended after the last submission
    states: dict[str, int] = {}
    verdicts: dict[str, int] = {}
    for row in rows:
        states[f"{row[1]}:{row[2]}"] = states.get(f"{row[1]}:{row[2]}", 0) + 1
        verdicts[str(row[3])] = verdicts.get(str(row[3]), 0) + 1
    del submitted_at  # the submitter's own clock is not comparable with the rows' naive UTC
    return {
        "jobs": len(rows),
        "span_s": round(span, 2),
        "jobs_per_min": round(60.0 * len(rows) / span, 1),
        "submit_span_s": round(last_created - min(created), 2),
        "drain_jobs_per_min": round(60.0 * drained / drain, 1) if drain > 0 and drained > 1 else None,
        "drained_jobs": drained,
        "latency_median_s": round(statistics.median(latency), 3),
        "states": dict(sorted(states.items())),
        "verdicts": dict(sorted(verdicts.items())),
    }


def throughput(
    codes: Sequence[Tree], scratch: Path, *, jobs: int, workers: int, rounds: int, poll: float, mix: str = "both"
) -> Iterator[dict[str, Any]]:
    """Per round, each code in turn (the first is the one measured, the rest its baselines); then a summary."""
    for code in codes:
        make_template(code)
    results: dict[str, list[dict[str, Any]]] = {code.label: [] for code in codes}
    for n in range(rounds):
        for code in codes:
            figures = one_round(code, scratch, jobs, workers, poll, mix)
            results[code.label].append(figures)
            yield {"bench": "throughput_round", "code": code.label, "round": n, "workers": workers, "poll_s": poll,
                   **figures, "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    first, *rest = codes
    record: dict[str, Any] = {
        "bench": "throughput", "workers": workers, "jobs": jobs, "rounds": rounds, "poll_s": poll, "mix": mix,
        "kinds": {"python": PYTHON_JOB.strip(), "sql": SQL_JOB}, "target_jobs_per_min": TARGET_JOBS_PER_MIN,
        **_summary(results[first.label]),
    }  # fmt: skip
    record["meets_target"] = record["jobs_per_min_median"] >= TARGET_JOBS_PER_MIN
    for code in rest:
        record[code.label] = _summary(results[code.label])
    yield record


def _summary(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str) -> float:
        return round(float(statistics.median(r[key] for r in rounds if r[key] is not None)), 4)

    return {
        "jobs_per_min_median": median("jobs_per_min"),
        "jobs_per_min_all": [r["jobs_per_min"] for r in rounds],
        "drain_jobs_per_min_median": median("drain_jobs_per_min"),
        "latency_median_s": median("latency_median_s"),
        "worker_cpu_s_per_job_median": median("worker_cpu_s_per_job"),
        "submit_cpu_s_per_job_median": median("submit_cpu_s_per_job"),
        "states": rounds[-1]["states"],
        "verdicts": rounds[-1]["verdicts"],
    }
