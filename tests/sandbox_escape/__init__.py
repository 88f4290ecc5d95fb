"""Adversarial jobs against the isolated runner (issue 6 "Must show"): each attack runs as a real job.

Every test asserts three things: the attack was contained, the job ended with a clear status and
reason, and the host is unaffected (no process of the job survives, host files unchanged).

Every test runs twice (issue 21, ``conftest.py``): in a sandbox started for the job (``fresh``) and in
one started ahead of demand with its kind's libraries imported (``prestarted``, :mod:`sandbox.prestart`),
with no fallback — a pre-started sandbox that fails to take its job fails the test. Attacks go through
:func:`sandbox_run` / :func:`job_run`, which take the path the test is parametrized with.
"""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest

from sandbox.kinds import run_job
from sandbox.limits import MIB, Limits
from sandbox.pool import SandboxPool
from sandbox.prestart import run_prestarted
from sandbox.runner import RunResult, run, sandbox_python
from tests.conftest import require_sandbox

#: The two ways a job's sandbox is started; every escape test runs once per way.
PATHS = ("fresh", "prestarted")
#: What a pre-started sandbox here has imported before its job: a typical analysis stack (threads, memory maps,
#: open files of numpy, pandas and pyarrow), so the attacks run in a process like a warm sql or dp-query one.
STACK = "import numpy\nimport pandas\nimport pyarrow.parquet\n"
_current = {"path": "fresh"}

# Small limits keep every attack fast; the defaults are for real jobs.
SMALL = Limits(
    memory_bytes=1024 * MIB,
    cpu_seconds=10,
    wall_seconds=20,
    processes=32,
    open_files=128,
    output_bytes=16 * MIB,
    output_files=100,
    tmp_bytes=32 * MIB,
)


@pytest.fixture(autouse=True)
def sandbox_required() -> None:
    """These tests prove the sandbox; where it cannot run at all they say so instead."""
    require_sandbox()


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line carries ``marker`` (each attack job passes a fresh one)."""
    needle = marker.encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                if needle in handle.read():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def use_path(path: str) -> None:
    """Which way the next jobs' sandboxes start (the parametrized fixture of ``conftest.py`` sets it)."""
    if path not in PATHS:
        raise ValueError(path)
    _current["path"] = path


def current_path() -> str:
    return _current["path"]


def sandbox_run(
    argv: list[str],
    *,
    data: Mapping[str, Path],
    out_dir: Path,
    limits: Limits = SMALL,
    files: Mapping[str, bytes] | None = None,
    marker: str = "",
) -> RunResult:
    """``sandbox.runner.run``, or the same job in a sandbox pre-started with :data:`STACK` imported (and
    ``marker`` in the launcher's command line so :func:`processes_with` finds the launcher too)."""
    if current_path() == "fresh":
        return run(argv, data=data, out_dir=out_dir, limits=limits, files=files)
    preload = STACK + (f"# {marker}\n" if marker else "")
    return run_prestarted(argv, data=data, out_dir=out_dir, limits=limits, files=files, preload=preload)


def job_run(kind: str, code: str, *, datasets: Mapping[str, Path], out_dir: Path, limits: Limits = SMALL) -> RunResult:
    """``sandbox.kinds.run_job``, or the same job through a worker's pool of pre-started sandboxes
    (checked to have taken the pre-started path, not the fresh fallback)."""
    if current_path() == "fresh":
        return run_job(kind, code, datasets=datasets, out_dir=out_dir, limits=limits)
    pool = SandboxPool(limits, [kind], preloads={kind: STACK}).start()
    try:
        assert pool.wait_warm(kind, 120), pool.stats
        result = run_job(kind, code, datasets=datasets, out_dir=out_dir, limits=limits, pool=pool)
        assert pool.stats["warm"] == 1 and pool.stats["fresh"] == 0, pool.stats
        return result
    finally:
        pool.close()


def attack(
    script: str,
    out_dir: Path,
    *,
    limits: Limits = SMALL,
    data: Mapping[str, Path] | None = None,
) -> tuple[RunResult, str]:
    """Run ``script`` as /job/script.py with a unique marker as argv[1]; check nothing of it survives."""
    marker = f"keyong-attack-{uuid.uuid4().hex}"
    result = sandbox_run(
        [sandbox_python(), "-I", "-B", "/job/script.py", marker],
        data=data or {},
        out_dir=out_dir,
        limits=limits,
        files={"script.py": textwrap.dedent(script).encode("utf-8")},
        marker=marker,
    )
    assert processes_with(marker) == [], "a process of the job outlived it"
    return result, marker
