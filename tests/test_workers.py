"""Workers: run claimed jobs, keep outputs out of reach, honour cancellation, never run a job without
the sandbox; several worker processes drain one queue running each job exactly once, and a worker
killed mid-job leaves its job to be retried or failed, never lost and never run twice at once
(issue 6, Must show)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app import Instance, Settings
from app.cli import cli
from core import Actor
from operators.jobs import Jobs, Quotas
from registry import is_sealed
from sandbox.queue import WORKER_LOST, JobQueue
from tests.conftest import require_sandbox
from tests.job_worker_proc import OPERATOR, SCENARIO, code_key, fast_runner, licensed, runs_by_code

ROOT = Path(__file__).resolve().parent.parent
AGENCY = Actor("demo-agency", "agency")


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    instance = initialised[0]
    licensed(instance.registry, instance.home)
    return instance


def _submit(instance: Instance, code: str, kind: str = "python") -> int:
    return instance.jobs.submit(OPERATOR, ["traffic"], kind, code, SCENARIO)


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


# --- in-process ---------------------------------------------------------------------------------


def test_a_worker_runs_a_job_and_keeps_its_outputs_under_the_licence_workdir(instance: Instance, markers: Path) -> None:
    job = _submit(instance, "print('hello')")
    worker = instance.worker(runner=fast_runner, worker_id="w1")
    (view,) = worker.run_pending()
    assert view.id == job and view.state == "done" and view.exit_code == 0
    # The export guard judged it: a free-text document always goes to review (sdc.free_text), and the test's
    # hand-made copy has no fingerprints to probe (guard.no_fingerprints), which is never a pass.
    assert view.verdict == "review"
    assert {f["rule"] for f in view.findings} == {"sdc.free_text", "guard.no_fingerprints"}
    assert view.resources == {"wall": 0.01, "cpu": 1.5, "max_rss": 1024}
    (output,) = view.outputs
    assert output["name"] == "result.txt"
    path = instance.home / output["path"]
    plain = instance.registry.at_rest.read(path)  # sealed under the licence's key once judged (issue 22)
    assert is_sealed(path) and plain.startswith(b"python:print('hello')") and output["bytes"] == len(plain)
    # Under the licence's work directory (destroyed with the licence, 双鸭山 第六十二条), outside the copies.
    workdir = instance.registry.licences.workdir(OPERATOR, view.licence_id or 0)
    assert path.is_relative_to(workdir) and not path.is_relative_to(instance.home / "datasets")
    attempt = path.parent.parent
    assert attempt == workdir / "jobs" / str(job) / "1"
    assert instance.registry.at_rest.read(attempt / "stdout.txt") == b"hello\n"
    assert json.loads(instance.registry.at_rest.read(attempt / "run.json"))["status"] == "ok"
    assert oct(attempt.stat().st_mode & 0o777) == "0o700"
    assert [k for k in runs_by_code(markers)] == [code_key("print('hello')")]
    assert worker.run_once() is None


def test_ending_the_licence_destroys_its_jobs_outputs(instance: Instance, markers: Path) -> None:
    """双鸭山 第六十二条: outputs live in the licence's work directory, so its destruction takes them too."""
    _submit(instance, "print('hello')")
    (view,) = instance.worker(runner=fast_runner, worker_id="w1").run_pending()
    output = instance.home / view.outputs[0]["path"]
    assert output.is_file()
    instance.registry.licences.transition(view.licence_id or 0, "revoked", by=AGENCY, reason="严重违约")
    assert not output.exists()
    (destroyed,) = instance.ledger.entries(action="licence.destroyed")
    assert destroyed.payload["files"] == 4  # result.txt, stdout.txt, stderr.txt, run.json


def test_a_failing_run_and_a_missing_copy_fail_the_job_with_a_reason(instance: Instance, markers: Path) -> None:
    failing = _submit(instance, "fail please")
    worker = instance.worker(runner=fast_runner, worker_id="w1")
    (view,) = worker.run_pending()
    assert (view.id, view.state, view.exit_code, view.reason) == (failing, "failed", 3, "exit status 3")
    missing = _submit(instance, "print(2)")
    (instance.home / "datasets" / "traffic" / "v1.parquet").unlink()
    (view,) = worker.run_pending()
    assert view.id == missing and view.state == "failed" and "copy missing for traffic" in (view.reason or "")


def test_cancelling_a_running_job_kills_its_run(instance: Instance, markers: Path) -> None:
    job = _submit(instance, "sleep 60")
    worker = instance.worker(runner=fast_runner, worker_id="w1", heartbeat_seconds=0.1)
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(worker.run_once()))
    thread.start()
    _wait_for(lambda: any(markers.glob("*.start")))
    instance.jobs.cancel(job, by=Actor(OPERATOR, "operator"))
    thread.join(20)
    assert not thread.is_alive(), "the cancelled run was not killed"
    (view,) = done
    assert view.state == "cancelled" and "killed" in (view.reason or "")


def test_no_sandbox_no_claim_and_a_run_refused_by_the_sandbox_goes_back(
    instance: Instance, markers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox import runner

    job = _submit(instance, "print(1)")
    monkeypatch.setattr(runner, "bwrap_path", lambda: None)
    with pytest.raises(runner.SandboxUnavailable):
        instance.worker(worker_id="w1").run_once()
    assert instance.jobs.show(job).state == "queued" and instance.jobs.show(job).attempts == 0

    def refusing(*_: Any, **__: Any) -> Any:
        raise runner.SandboxUnavailable("bubblewrap vanished")

    with pytest.raises(runner.SandboxUnavailable):
        instance.worker(runner=refusing, worker_id="w2").run_once()
    view = instance.jobs.show(job)
    assert (view.state, view.attempts, view.worker) == ("queued", 0, None)
    requeued = instance.ledger.entries(action="job.requeued")
    assert requeued[-1].payload["reason"] == "sandbox unavailable: bubblewrap vanished"


def test_job_cli_submit_run_show_cancel_list(instance: Instance, markers: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(instance.home), "--json"]
    script = tmp_path / "job.sql"
    script.write_text("SELECT count(*) AS n FROM traffic", encoding="utf-8")
    args = ["--operator", OPERATOR, "--dataset", "traffic", "--kind", "sql", "--file", str(script)]
    env = {"KEYONG_DATABASE_URL": instance.settings.database_url or ""}
    submitted = runner.invoke(cli, ["job", "submit", *args, "--scenario", SCENARIO, *home], env=env)
    assert submitted.exit_code == 0, submitted.output
    job = json.loads(submitted.stdout)
    assert job == {"job": job["job"], "state": "queued"}
    refused = runner.invoke(cli, ["job", "submit", *args, "--scenario", "金融风控", *home], env=env)
    assert refused.exit_code == 1 and "金融风控" in refused.stderr and refused.stdout == ""
    shown = json.loads(runner.invoke(cli, ["job", "show", str(job["job"]), *home], env=env).stdout)
    assert {"job", "state", "verdict", "findings", "outputs", "reason", "resources"} <= set(shown)
    assert (shown["state"], shown["verdict"], shown["findings"], shown["outputs"]) == ("queued", None, [], [])
    listed = json.loads(runner.invoke(cli, ["job", "list", *home], env=env).stdout)
    assert [(j["job"], j["state"]) for j in listed["jobs"]] == [(job["job"] + 1, "refused"), (job["job"], "queued")]
    cancelled = json.loads(runner.invoke(cli, ["job", "cancel", str(job["job"]), *home], env=env).stdout)
    assert cancelled["state"] == "cancelled"
    again = runner.invoke(cli, ["job", "cancel", str(job["job"]), *home], env=env)
    assert again.exit_code == 1 and "already ended" in again.stderr
    missing = runner.invoke(cli, ["job", "show", "9999", *home], env=env)
    assert missing.exit_code == 1 and "no job 9999" in missing.stderr
    if importlib.util.find_spec("sandbox.kinds") is not None:  # the real sandbox: nothing queued, nothing run
        for command in (["job", "run-pending"], ["worker", "--once"]):
            ran = runner.invoke(cli, [*command, *home], env=env)
            assert ran.exit_code == 0, ran.stderr
            assert json.loads(ran.stdout)["ran"] in ([], 0)


def test_the_real_sandbox_runs_sql_and_python_jobs(instance: Instance) -> None:
    require_sandbox()
    sql = _submit(instance, "SELECT 区县, sum(trips) AS trips FROM traffic GROUP BY 区县 ORDER BY 区县", "sql")
    python = _submit(
        instance,
        "import pandas as pd\n"
        "df = pd.read_parquet('/data/traffic.parquet')\n"
        "df.groupby('区县')['trips'].sum().to_csv('/out/by_district.csv')\n"
        "print('rows', len(df))\n",
    )
    views = {v.id: v for v in instance.worker(worker_id="real").run_pending()}
    assert set(views) == {sql, python}
    assert views[sql].state == "done", views[sql].reason
    assert {o["name"] for o in views[sql].outputs} >= {"result.parquet", "result.csv"}
    assert views[python].state == "done", views[python].reason
    (output,) = views[python].outputs
    assert output["name"] == "by_district.csv"
    opened = instance.registry.at_rest.read
    assert opened(instance.home / output["path"]).decode().splitlines()[1:] == ["尖山区,20", "岭东区,25"]
    attempt = (instance.home / output["path"]).parent.parent
    assert opened(attempt / "stdout.txt").decode().strip() == "rows 10"
    assert views[python].resources is not None and views[python].resources["wall"] > 0


# --- several processes over PostgreSQL ------------------------------------------------------------


@pytest.fixture
def pg_instance(tmp_path: Path, pg_url: str) -> Iterator[Instance]:
    instance, _ = Instance.init(Settings(home=tmp_path / "home", database_url=pg_url))
    try:
        licensed(instance.registry, instance.home)
        yield instance
    finally:
        instance.close()


def _spawn(instance: Instance, worker_id: str, runner: str, markers: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.job_worker_proc",
            str(instance.home),
            instance.settings.database_url or "",
            worker_id,
            runner,
            str(markers),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _jobs(instance: Instance) -> Jobs:
    return Jobs(instance.registry, JobQueue(instance.registry.recorder), Quotas(concurrent=10_000, per_day=10_000))


@pytest.mark.slow
def test_three_worker_processes_drain_300_jobs_each_run_exactly_once(pg_instance: Instance, markers: Path) -> None:
    jobs = _jobs(pg_instance)
    codes = {jobs.submit(OPERATOR, ["traffic"], "python", f"print({i})", SCENARIO): f"print({i})" for i in range(300)}
    workers = [_spawn(pg_instance, f"w{i}", "fast", markers) for i in range(3)]
    ran: dict[str, int] = {}
    for i, process in enumerate(workers):
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        ran[f"w{i}"] = int(out.split()[-1])
    assert sum(ran.values()) == 300
    assert all(n > 0 for n in ran.values()), ran  # the queue was shared, not drained by one
    views = jobs.queue.list(limit=1000)
    assert len(views) == 300 and {v.state for v in views} == {"done"} and {v.attempts for v in views} == {1}
    # Exactly once, seen by the runs themselves ...
    runs = runs_by_code(markers)
    assert sorted(runs) == sorted(code_key(code) for code in codes.values())
    assert all(len(r) == 1 and r[0][1] is not None for r in runs.values())
    # ... and by the ledger.
    for action in ("job.started", "job.finished"):
        subjects = [e.subject for e in pg_instance.ledger.entries(action=action, limit=1000)]
        assert sorted(subjects) == sorted(f"job:{job}" for job in codes)
    by_worker = {v.worker for v in views}
    assert by_worker == {"w0", "w1", "w2"}
    assert pg_instance.ledger.verify().ok


@pytest.mark.slow
def test_a_worker_killed_mid_job_leaves_it_retried_then_failed_never_doubled(
    pg_instance: Instance, markers: Path
) -> None:
    jobs = _jobs(pg_instance)
    victim_job = jobs.submit(OPERATOR, ["traffic"], "python", "sleep 300", SCENARIO)
    queue = jobs.queue
    stale = timedelta(seconds=4)
    key = code_key("sleep 300")

    for attempt in (1, 2):
        process = _spawn(pg_instance, f"victim{attempt}", "fast", markers, "--forever", "--heartbeat", "0.2")
        _wait_for(lambda n=attempt: len(runs_by_code(markers).get(key, [])) == n, timeout=60)
        assert queue.get(victim_job).state == "running" and queue.get(victim_job).attempts == attempt
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        # Its run died with it (bwrap's --die-with-parent; here PR_SET_PDEATHSIG): nothing is left running.
        _wait_for(lambda: not _sleepers("300"), timeout=10)
        assert queue.reap(stale) == []  # not stale yet: the reaper waits for the heartbeat to age
        time.sleep(stale.total_seconds() + 0.5)
        (reaped,) = queue.reap(stale)
        if attempt == 1:
            assert (reaped.state, reaped.attempts) == ("queued", 1)
        else:
            assert (reaped.state, reaped.reason, reaped.attempts) == ("failed", WORKER_LOST, 2)

    runs = runs_by_code(markers)[key]
    assert len(runs) == 2 and all(end is None for _, end in runs)  # two attempts, both killed, one after the other
    actions = [e.action for e in pg_instance.ledger.entries(subject=f"job:{victim_job}")]
    assert actions == ["job.queued", "job.started", "job.requeued", "job.started", "job.failed"]
    # A later job still runs normally.
    after = jobs.submit(OPERATOR, ["traffic"], "python", "print('after')", SCENARIO)
    process = _spawn(pg_instance, "survivor", "fast", markers)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert queue.get(after).state == "done" and queue.get(victim_job).state == "failed"


def _sleepers(seconds: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"sleep", seconds.encode()]:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_two_worker_processes_run_real_sandboxed_jobs(pg_instance: Instance, markers: Path) -> None:
    require_sandbox()
    jobs = _jobs(pg_instance)
    ids = [
        jobs.submit(
            OPERATOR,
            ["traffic"],
            "python",
            f"import pandas as pd\npd.read_parquet('/data/traffic.parquet').head({i + 1}).to_csv('/out/head.csv')\n",
            SCENARIO,
        )
        for i in range(4)
    ]
    workers = [_spawn(pg_instance, f"real{i}", "sandbox", markers) for i in range(2)]
    for process in workers:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    for i, job in enumerate(ids):
        view = jobs.queue.get(job)
        assert view.state == "done" and view.attempts == 1, view.reason
        (output,) = view.outputs
        assert len(pg_instance.registry.at_rest.read(pg_instance.home / output["path"]).decode().splitlines()) == i + 2
    started = [e.subject for e in pg_instance.ledger.entries(action="job.started")]
    assert sorted(started) == sorted(f"job:{job}" for job in ids)
