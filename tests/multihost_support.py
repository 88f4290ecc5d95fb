"""Several machines on one: the machinery of the multi-host rehearsal (tests/test_multihost.py, bench/storage.py).

Why separate processes with separate homes: the issue's promise is that a worker on another host needs
only ``KEYONG_DATABASE_URL``, ``KEYONG_STORAGE_URL``, its own (worker-role) bucket credentials and the data
master key. Threads in one process would share the server's home, keys and open handles and prove
nothing; here every process gets an environment holding exactly what its host would hold.

    python -m tests.multihost_support setup HOME RESIDENTS

initialises the server's instance (database and storage from the environment), ingests and
desensitizes the demo's residents and social-insurance tables, registers and onboards the demo
principals, grants the demo licence (with its custodian's agreement) and prints one JSON document:
the demo principals' API keys and TOTP secrets, and the licence id. It runs as the server host does
(vault key, ingest credentials).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

from app.keys import DATA_MASTER_KEY, PEPPER, SECRETS_DIR
from tests.s3_support import REGION, ROLES_BUCKET, ROLES_PREFIX, S3Server
from tests.totp_support import wall_code

PG_ADMIN_URL = os.environ.get("KEYONG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STORAGE_URL = f"s3://{ROLES_BUCKET}/{ROLES_PREFIX}"
#: Settings every process of the rehearsal shares: one reviewer decides a release (the demo's second
#: reviewer would need its own enrolment), and the operator may keep the whole batch in the queue.
SHARED_SETTINGS = {"KEYONG_RELEASE_REVIEWERS": "1", "KEYONG_JOB_CONCURRENT_LIMIT": "100"}
PRODUCT_DATASET = "residents"  # its custodian delegated egress to the agency (app.demo.scenario.DELEGATED)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


@contextmanager
def dedicated_database() -> Iterator[str]:
    """A fresh PostgreSQL database (plain URL, no search_path options) the processes share; dropped after."""
    name = f"keyong_mh_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def base_env() -> dict[str, str]:
    """This process's environment without any Keyong or AWS setting (each host gets only its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("KEYONG_", "AWS_"))}


def role_env(s3: S3Server, role: str, database_url: str, *, storage_url: str = STORAGE_URL) -> dict[str, str]:
    """What a host of ``role`` holds: the database URL, the bucket URL and that role's credentials."""
    creds = s3.roles[role]
    env = base_env()
    env.update(SHARED_SETTINGS)
    env.update(
        {
            "KEYONG_DATABASE_URL": database_url,
            "KEYONG_STORAGE_URL": storage_url,
            "KEYONG_STORAGE_ENDPOINT_URL": s3.endpoint,
            "KEYONG_STORAGE_REGION": REGION,
            "KEYONG_STORAGE_ACCESS_KEY_ID": creds.key_id,
            "KEYONG_STORAGE_SECRET_ACCESS_KEY": creds.secret,
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
    )
    return env


def local_env(database_url: str) -> dict[str, str]:
    """The same hosts with artifacts in each home (``KEYONG_STORAGE_URL`` unset): the bench's baseline."""
    env = base_env()
    env.update(SHARED_SETTINGS)
    env.update({"KEYONG_DATABASE_URL": database_url, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    return env


def worker_home(server_home: Path, home: Path) -> Path:
    """A worker host's own directory: the data master key and the pepper (0600), nothing else."""
    (home / SECRETS_DIR).mkdir(parents=True, mode=0o700)
    for name in (DATA_MASTER_KEY, PEPPER):
        shutil.copyfile(server_home / SECRETS_DIR / name, home / SECRETS_DIR / name)
        os.chmod(home / SECRETS_DIR / name, 0o600)
    return home


def keyong(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def stop(process: subprocess.Popen[bytes], *, kill: bool = False, timeout: float = 30) -> None:
    """Stop ``process`` (and its process group: bwrap children) if it still runs; SIGKILL when it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Cluster:
    """The rehearsal's processes: one server, its workers; the demo principals' keys and TOTP secrets."""

    root: Path
    database_url: str
    server_env: dict[str, str]
    worker_env: dict[str, str]
    #: The running server's own environment: the signer's credentials (the one role that writes ``ledger/``;
    #: red team 19, B3), while the set-up runs with ``server_env`` (ingest: the vault). None: ``server_env``.
    signer_env: dict[str, str] | None = None
    base: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    totp: dict[str, str] = field(default_factory=dict)
    licence: int = 0
    server: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: Today's single machine (the bench's baseline): workers on the server's own home, no bucket.
    shared_home: bool = False
    _bearer: dict[str, tuple[float, dict[str, str]]] = field(default_factory=dict)

    @property
    def server_home(self) -> Path:
        return self.root / "server-home"

    def setup(self, residents: int) -> dict[str, Any]:
        command = [sys.executable, "-m", "tests.multihost_support", "setup", str(self.server_home), str(residents)]
        done = subprocess.run(command, env=self.server_env, capture_output=True, timeout=900, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
        result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
        self.tokens, self.totp, self.licence = result["tokens"], result["totp"], result["licence"]
        return result

    def start_server(self) -> None:
        port = free_port()
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 - the process writes it until stopped
        command = keyong("--home", str(self.server_home), "serve", "--port", str(port), "--workers", "0")
        self.server = subprocess.Popen(
            command,
            env=self.signer_env or self.server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert self.server is not None and self.server.poll() is None, "the server exited: " + self.log("server")
            try:
                return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 60, "the server")

    def start_worker(self, name: str, *, poll: float = 0.3) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the process writes it until stopped
        if self.shared_home:
            command = keyong("--home", str(self.server_home), "worker", "--poll", str(poll))
            env = self.worker_env
        else:
            home = self.root / f"{name}-home"
            if not home.exists():
                worker_home(self.server_home, home)
            env = dict(self.worker_env, KEYONG_WORKER_CACHE=str(home / "cache"))
            command = keyong("--home", str(home), "worker", "--remote", "--poll", str(poll))
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers[name] = process
        return process

    def wait_workers(self, count: int, timeout: float = 120) -> None:
        """Until ``count`` workers heartbeat (``/healthz``): each has passed the sandbox's self-test."""

        def live() -> bool:
            return int(httpx.get(f"{self.base}/healthz", timeout=5).json()["workers"]["live"]) >= count

        wait_for(live, timeout, f"{count} live workers")

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""

    def stop_all(self) -> None:
        for process in self.workers.values():
            stop(process)
        if self.server is not None:
            stop(self.server)

    def headers(self, role: str) -> dict[str, str]:
        """A bearer token of the demo principal of ``role`` (kept ten minutes: one TOTP step per login)."""
        kept = self._bearer.get(role)
        if kept is not None and time.monotonic() - kept[0] < 600:
            return kept[1]
        body = {"api_key": self.tokens[role], "totp": wall_code(self.totp[role])}
        answer = httpx.post(f"{self.base}/auth/token", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        self._bearer[role] = (time.monotonic(), headers)
        return headers

    def submit(self, datasets: list[str], kind: str, code: str, scenario: str) -> int:
        body = {"datasets": datasets, "kind": kind, "code": code, "scenario": scenario}
        made = httpx.post(f"{self.base}/jobs", json=body, headers=self.headers("operator"), timeout=30)
        assert made.status_code == 201, made.text
        return int(made.json()["job"])

    def job(self, job: int) -> dict[str, Any]:
        shown = httpx.get(f"{self.base}/jobs/{job}", headers=self.headers("operator"), timeout=30)
        assert shown.status_code == 200, shown.text
        return dict(shown.json())

    def judged(self, jobs: list[int], timeout: float) -> dict[int, dict[str, Any]]:
        """Each job once it is done or failed (waits until all are)."""
        seen: dict[int, dict[str, Any]] = {}

        def all_judged() -> bool:
            for job in jobs:
                if job not in seen:
                    view = self.job(job)
                    if view["state"] in ("done", "failed", "cancelled"):
                        seen[job] = view
            return len(seen) == len(jobs)

        wait_for(all_judged, timeout, f"verdicts of {len(jobs)} jobs", every=0.5)
        return seen


def job_programs(count: int) -> list[tuple[list[str], str, str, str]]:
    """``count`` small jobs, alternating SQL on residents and Python on social insurance, all distinct."""
    from app.demo.scenario import DEMO_SCENARIOS

    programs = []
    for n in range(count):
        if n % 2 == 0:
            code = f"SELECT 性别, count(*) AS 人数 FROM residents GROUP BY 性别 HAVING count(*) >= {10 + n}"
            programs.append((["residents"], "sql", code, DEMO_SCENARIOS[0]))
        else:
            code = (
                "import pandas as pd\n"
                'df = pd.read_parquet("/data/social_insurance.parquet")\n'
                'table = df.groupby("参保状态").size().rename("人数").reset_index()\n'
                f"table = table[table['人数'] >= {10 + n}]\n"
                'table.to_csv("/out/by_status.csv", index=False)\n'
            )
            programs.append((["social_insurance"], "python", code, DEMO_SCENARIOS[1]))
    return programs


def _setup(home: Path, residents: int) -> dict[str, Any]:
    """The server host's part: init, ingest + desensitize, onboard, licence (see the module docstring)."""
    from rich.console import Console
    from rich.progress import Progress

    from app.demo.report import DemoReport, DemoTable
    from app.demo.scenario import ENCODINGS
    from app.demo.steps import _egress, _licence, _register
    from app.instance import DEMO_PRINCIPALS, Instance
    from app.settings import Settings
    from core import Actor
    from operators import Role
    from samples import generate_all, write_csv

    instance, init = Instance.init(Settings(home=home))
    try:
        data_dir = home / "incoming"
        data_dir.mkdir()
        report = DemoReport(home=home, data_dir=data_dir, tokens=init.tokens, totp=init.totp)
        for name, frame in generate_all(residents, seed=19).items():
            if name in ("residents", "social_insurance"):
                path = data_dir / f"{name}.csv"
                encoding = ENCODINGS.get(name, "utf-8")
                write_csv(frame, path, encoding=encoding)
                report.tables.append(DemoTable(name, len(frame), list(map(str, frame.columns)), path, encoding, 0))
        with Progress(console=Console(file=open(os.devnull, "w"))) as progress:
            _register(instance, report, progress)
        custodian = Actor(DEMO_PRINCIPALS[Role.CUSTODIAN], Role.CUSTODIAN.value)
        _egress(instance, report, custodian)
        agency = Actor(DEMO_PRINCIPALS[Role.AGENCY], Role.AGENCY.value)
        licence, _consent = _licence(instance, DEMO_PRINCIPALS[Role.OPERATOR], agency)
        return {"tokens": init.tokens, "totp": init.totp, "licence": licence.id, "state": licence.state}
    finally:
        instance.close()


def main() -> None:
    if sys.argv[1:2] == ["setup"]:
        print(json.dumps(_setup(Path(sys.argv[2]), int(sys.argv[3]))), flush=True)
        return
    raise SystemExit(f"usage: {__doc__}")


if __name__ == "__main__":
    main()
