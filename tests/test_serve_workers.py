"""``keyong serve`` runs the workers (issue 17): a job submitted through the API is judged with no
other command; ``--workers 0`` runs none; a killed worker is restarted; stopping the server stops its
workers. ``/healthz`` and every console page tell whether any worker is live, by heartbeats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app import Instance, Settings, create_app
from sandbox import LIVE_WITHIN, WorkerRoster
from tests.conftest import require_sandbox
from tests.job_worker_proc import SCENARIO, licensed
from tests.test_serve import free_port
from tests.totp_support import wall_code_for

OPERATOR = "demo-operator"
SQL = "SELECT 区县, count(*) AS n FROM traffic GROUP BY 区县"


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    fields = fh.read().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if fields[1] == str(pid) and fields[0] != "Z":
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait(predicate: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Served:
    def __init__(self, process: subprocess.Popen[bytes], base: str, tokens: dict[str, str]) -> None:
        self.process, self.base, self.tokens = process, base, tokens

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.base}/healthz", timeout=5).json())

    def headers(self, role: str) -> dict[str, str]:
        answer = httpx.post(
            f"{self.base}/auth/token",
            json={"api_key": self.tokens[role], "totp": wall_code_for(self.tokens[role])},
            timeout=10,
        )
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _serve(tmp_path: Path, workers: int) -> Iterator[Served]:
    home = tmp_path / "home"
    instance, result = Instance.init(Settings(home=home, database_url=None))
    try:
        licensed(instance.registry, home, operator=OPERATOR)
    finally:
        instance.close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KEYONG_DATABASE_URL"}
    command = [sys.executable, "-m", "app.cli", "--home", str(home), "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers), "--poll", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    served = Served(process, f"http://127.0.0.1:{port}", result.tokens)
    try:

        def up() -> bool:
            assert process.poll() is None, "the server exited"
            try:
                return httpx.get(f"{served.base}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait(up, 30, "the server")
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


@pytest.fixture
def with_one_worker(tmp_path: Path) -> Iterator[Served]:
    require_sandbox()
    yield from _serve(tmp_path, 1)


@pytest.fixture
def api_only(tmp_path: Path) -> Iterator[Served]:
    yield from _serve(tmp_path, 0)


def test_a_job_submitted_to_serve_is_judged_without_any_other_command(with_one_worker: Served) -> None:
    served = with_one_worker
    health = _wait(lambda: (h := served.health())["workers"]["live"] == 1 and h, 30, "a live worker")
    assert health["status"] == "ok" and "warning" not in health
    assert health["workers"]["live_within_seconds"] == LIVE_WITHIN.total_seconds()
    headers = served.headers("operator")
    body = {"datasets": ["traffic"], "kind": "sql", "code": SQL, "scenario": SCENARIO}
    made = httpx.post(f"{served.base}/jobs", json=body, headers=headers, timeout=10)
    assert made.status_code == 201, made.text
    job = made.json()["job"]

    def judged() -> dict[str, Any] | None:
        shown = httpx.get(f"{served.base}/jobs/{job}", headers=headers, timeout=10).json()
        return shown if shown["state"] in ("done", "failed") else None

    shown = _wait(judged, 90, "the job's verdict")
    assert shown["state"] == "done" and shown["verdict"] in ("pass", "review"), shown
    assert [o["name"] for o in shown["outputs"]]

    # A crashed worker is restarted by the supervisor; stopping the server stops its workers.
    (worker,) = _wait(lambda: _children(served.process.pid), 10, "the worker process")
    os.kill(worker, signal.SIGKILL)
    restarted = _wait(lambda: _children(served.process.pid) - {worker}, 30, "a restarted worker")
    _wait(lambda: served.health()["workers"]["live"] >= 1, 30, "the restarted worker's heartbeat")
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=60) == 0
    assert not any(_alive(pid) for pid in restarted)


def test_serve_json_prints_one_document_while_its_workers_run(tmp_path: Path) -> None:
    require_sandbox()
    home = tmp_path / "home"
    Instance.init(Settings(home=home, database_url=None))[0].close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KEYONG_DATABASE_URL"}
    command = [sys.executable, "-m", "app.cli", "serve", "--home", str(home), "--port", str(port), "--json"]
    process = subprocess.Popen([*command, "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:

        def live() -> int:
            try:
                return int(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()["workers"]["live"])
            except httpx.TransportError:
                return 0

        _wait(lambda: live() == 2, 60, "two live workers")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    document = json.loads(out.decode())  # exactly one JSON document: the workers write to stderr
    assert document["workers"] == 2 and document["url"] == f"http://127.0.0.1:{port}"
    assert b"ran 0 job(s)" in err and b"Traceback" not in err


def test_workers_0_is_an_api_only_node_that_warns(api_only: Served) -> None:
    served = api_only
    time.sleep(1.0)
    assert _children(served.process.pid) == set()
    health = served.health()
    assert health["status"] == "ok" and health["workers"]["live"] == 0
    assert "no live worker" in health["warning"]
    page = httpx.get(f"{served.base}/console/login", timeout=5)
    assert page.status_code == 200 and 'id="no-live-worker"' in page.text
    served.process.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop, no traceback
    assert served.process.wait(timeout=30) == 0


# --- the roster, /healthz and the console banner, in-process over both databases -----------------


def test_healthz_counts_only_fresh_heartbeats(instance: Instance) -> None:
    http = TestClient(create_app(instance=instance))
    none = http.get("/healthz").json()
    assert none["workers"]["live"] == 0 and none["warning"].startswith("no live worker")
    roster = instance.roster
    roster.beat("w-fresh")
    stale = WorkerRoster(instance.engine, clock=lambda: datetime.now(UTC) - LIVE_WITHIN - timedelta(seconds=5))
    stale.beat("w-stale")
    one = http.get("/healthz")
    assert one.status_code == 200 and one.json()["workers"]["live"] == 1 and "warning" not in one.json()
    assert "w-fresh" not in one.text and str(os.getpid()) not in one.text  # only a count, unauthenticated
    assert [w.id for w in roster.live()] == ["w-fresh"]
    roster.stopped("w-fresh")
    assert http.get("/healthz").json()["workers"]["live"] == 0
    roster.beat("w-fresh")  # a worker that beats again after a stop is live again
    assert roster.live_count() == 1


def test_every_console_page_warns_while_no_worker_is_live(instance: Instance) -> None:
    http = TestClient(create_app(instance=instance))
    assert 'id="no-live-worker"' in http.get("/console/login").text
    instance.roster.beat("w1")
    assert 'id="no-live-worker"' not in http.get("/console/login").text


def test_a_worker_loop_keeps_its_presence_and_stops_cleanly(instance: Instance) -> None:
    import threading

    from tests.job_worker_proc import fast_runner

    worker = instance.worker(runner=fast_runner, worker_id="loop-1")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"poll": 0.05})
    thread.start()
    try:
        _wait(lambda: [w.id for w in instance.roster.live()] == ["loop-1"], 10, "the presence heartbeat")
    finally:
        stop.set()
        thread.join(20)
    assert not thread.is_alive() and instance.roster.live_count() == 0


def test_a_worker_without_a_sandbox_is_never_live(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import sandbox.worker as worker_module
    from sandbox import SandboxUnavailable

    def broken() -> Any:
        raise SandboxUnavailable("no bubblewrap here")

    monkeypatch.setattr(worker_module, "sandboxed_runner", broken)
    worker = instance.worker(worker_id="no-sandbox")
    with pytest.raises(SandboxUnavailable):
        worker.run_forever(threading.Event(), poll=0.05)
    with instance.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM workers").scalar_one() == 0


def test_workers_do_not_outlive_a_killed_server(tmp_path: Path) -> None:
    """kill -9 of the server: the kernel signals its workers (PR_SET_PDEATHSIG), none is left behind."""
    require_sandbox()
    home = tmp_path / "home"
    Instance.init(Settings(home=home, database_url=None))[0].close()
    env = {k: v for k, v in os.environ.items() if k != "KEYONG_DATABASE_URL"}
    command = [sys.executable, "-m", "app.cli", "serve", "--home", str(home), "--port", str(free_port())]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        (worker,) = _wait(lambda: _children(process.pid), 30, "the default single worker")
        instance = Instance.open(Settings(home=home, database_url=None))
        try:
            _wait(lambda: instance.roster.live_count() == 1, 30, "its heartbeat")
        finally:
            instance.close()
    finally:
        process.kill()
        process.wait(timeout=10)
    _wait(lambda: not _alive(worker), 30, "the orphaned worker to stop")
