"""Shared set-up of the job tests, and a worker process for the multi-process ones.

    python -m tests.job_worker_proc HOME DATABASE_URL WORKER_ID RUNNER MARKERS [--forever] [--stale S]

runs a worker over the instance at HOME with RUNNER ``fast`` (:func:`fast_runner`, a test-only
stand-in that runs nothing but leaves a start and an end marker per run under MARKERS) or ``sandbox``
(the real bubblewrap runner). Without ``--forever`` it runs until the queue is empty, then prints
``ran N`` and exits; with it, it runs until killed.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from app import Instance, Settings
from core import Actor
from registry import Registry
from registry.egress import EgressDelegationRow
from registry.models import LicenceCopyRow, ResourceRow, VersionRow
from tests.consent_support import consent_to_access
from tests.people_support import stand
from tests.test_registry_licences import add_dataset, uscc

AGENCY = Actor("demo-agency", "agency")
OPERATOR = "acme-ops"
SCENARIO = "交通出行"
MARKERS_ENV = "KEYONG_TEST_JOB_MARKERS"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (a copy in clear: its plaintext digest, as a desensitization records it)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_copy(registry: Registry, name: str, copy: Path, *, version: int = 1) -> None:
    """Record ``copy``'s real plaintext digest on ``name``'s version (and the licence copies sharing it as
    their base) after a test rewrote the copy: every worker refuses a copy whose digest differs from the
    row's (issue 19), as it would a swapped object."""
    digest = file_sha256(copy)
    with registry.recorder.change(Actor.host()) as change:
        row = change.session.execute(
            select(VersionRow).join(ResourceRow).where(ResourceRow.name == name, VersionRow.version == version)
        ).scalar_one()
        row.content_sha256 = digest
        for shared in change.session.scalars(select(LicenceCopyRow).where(LicenceCopyRow.path == row.path)):
            shared.content_sha256 = digest


def delegated(registry: Registry, name: str) -> int:
    """A standing delegation of ``name``'s egress sign-off to the agency, as its custodian would record it
    (``registry.egress``, SATRE 3.1.06): releases of these test datasets need the reviewers only. Written
    directly, like :func:`add_dataset`'s entry (whose publisher is no principal), and ledgered."""
    with registry.recorder.change(Actor("demo-custodian", "custodian")) as change:
        resource_id = change.session.query(ResourceRow.id).filter(ResourceRow.name == name).scalar()
        row = EgressDelegationRow(
            resource_id=resource_id,
            org="双鸭山市交通运输局",
            reason="测试：委托实施机构审核",
            granted_by="demo-custodian",
        )
        change.session.add(row)
        change.session.flush()
        change.log("dataset.egress_delegated", f"dataset:{name}", {"dataset": name, "delegation": row.id})
        return row.id


def licensed(
    registry: Registry,
    home: Path,
    *,
    operator: str = OPERATOR,
    datasets: tuple[str, ...] = ("traffic",),
    delegate: bool = True,
) -> int:
    """Datasets with real (tiny) desensitized Parquet copies, an operator, an active licence; its id.

    With ``delegate`` (the default), each dataset's custodian has delegated its egress sign-off to the
    agency (:func:`delegated`), so the release tests exercise the reviewers; without it, every release
    of these datasets also waits for a custodian's sign-off.
    """
    for name in datasets:
        copy = home / "datasets" / name / "v1.parquet"
        copy.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"trips": list(range(10)), "区县": ["尖山区", "岭东区"] * 5}), copy)
        add_dataset(registry, name, industry="交通出行", content_sha256=file_sha256(copy))
        if delegate:
            delegated(registry, name)
    registry.licences.add_operator(operator, uscc(1 + len(operator)), by=AGENCY)
    stand(registry, operator)  # its login stands: identity checked, terms accepted, trained (issue 22)
    consent_to_access(registry, *datasets)  # each dataset's custodian agreed to access (SATRE 1.5.04)
    view = registry.licences.grant(
        operator,
        datasets=list(datasets),
        scenarios=[SCENARIO],
        valid_until=registry.config.now().date() + timedelta(days=365),
        publicity_days=0,
        by=AGENCY,
        reason="授权运营协议 2026-01",
    )
    return view.id


@dataclass
class FakeResult:
    """Shaped as ``sandbox.runner.RunResult``."""

    status: str = "ok"
    exit_code: int | None = 0
    reason: str | None = None
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    max_rss_bytes: int = 0
    stdout: str = ""
    stderr: str = ""
    out_dir: Path = Path()
    outputs: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)


def _die_with(parent: int) -> Any:
    """A preexec_fn: die with ``parent`` (PR_SET_PDEATHSIG, as bwrap does), also when the parent died
    between fork and prctl — then the signal never comes, so the child checks and exits itself."""

    def arm() -> None:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return arm


def fast_runner(kind: str, code: str, *, datasets: Mapping[str, Path], out_dir: Path, limits: Any = None) -> FakeResult:
    """Runs nothing; leaves ``<code sha>.<run id>.start`` / ``.end`` markers and one output file.

    A code of ``sleep N`` sleeps in a child process that dies with its parent (like bwrap's
    ``--die-with-parent``), so a killed worker takes its run with it and the test can kill a run.
    """
    markers = Path(os.environ[MARKERS_ENV])
    run = f"{hashlib.sha256(code.encode()).hexdigest()[:16]}.{os.getpid()}-{uuid.uuid4().hex[:8]}"
    (markers / f"{run}.start").write_text(f"{time.time()!r}\n", encoding="utf-8")
    status, reason, exit_code = "ok", None, 0
    if code.startswith("sleep "):
        child = subprocess.Popen(["sleep", code.split()[1]], preexec_fn=_die_with(os.getpid()))
        exit_code = child.wait()
        if exit_code != 0:
            status, reason = "killed", f"killed by signal {-exit_code}"
    elif code.startswith("fail"):
        status, reason, exit_code = "failed", "exit status 3", 3
    out_dir.mkdir(parents=True, exist_ok=True)
    body = f"{kind}:{code}:{sorted(datasets)}\n".encode()
    (out_dir / "result.txt").write_bytes(body)
    (markers / f"{run}.end").write_text(f"{time.time()!r}\n", encoding="utf-8")
    return FakeResult(
        status=status,
        exit_code=exit_code,
        reason=reason,
        wall_seconds=0.01,
        cpu_seconds=1.5,
        max_rss_bytes=1024,
        stdout="hello\n",
        out_dir=out_dir,
        outputs=[{"name": "result.txt", "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}],
    )


def runs_by_code(markers: Path) -> dict[str, list[tuple[float, float | None]]]:
    """``code sha prefix -> [(start, end or None)]`` from the markers the fast runner left."""
    found: dict[str, list[tuple[float, float | None]]] = {}
    for start in sorted(markers.glob("*.start")):
        code, _run, _ = start.name.split(".")
        end = start.with_suffix(".end")
        ended = float(end.read_text()) if end.exists() else None
        found.setdefault(code, []).append((float(start.read_text()), ended))
    return found


def code_key(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home")
    parser.add_argument("database_url")
    parser.add_argument("worker_id")
    parser.add_argument("runner", choices=["fast", "sandbox"])
    parser.add_argument("markers")
    parser.add_argument("--forever", action="store_true")
    parser.add_argument("--stale", type=float, default=60.0)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    args = parser.parse_args()
    os.environ[MARKERS_ENV] = args.markers
    instance = Instance.open(Settings(home=Path(args.home), database_url=args.database_url or None), upgrade=False)
    worker = instance.worker(
        runner=fast_runner if args.runner == "fast" else None,
        worker_id=args.worker_id,
        heartbeat_seconds=args.heartbeat,
        stale_after=timedelta(seconds=args.stale),
    )
    if args.forever:
        worker.run_forever(threading.Event(), poll=0.2)
    ran = worker.run_pending()
    print(f"ran {len(ran)}", flush=True)
    instance.close()


if __name__ == "__main__":
    main()
