"""Adversarial jobs against the isolated runner (issue 6 "Must show"): each attack runs as a real job.

Every test asserts three things: the attack was contained, the job ended with a clear status and
reason, and the host is unaffected (no process of the job survives, host files unchanged).
"""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest

from sandbox.limits import MIB, Limits
from sandbox.runner import RunResult, run, sandbox_python
from tests.conftest import require_sandbox

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


def attack(
    script: str,
    out_dir: Path,
    *,
    limits: Limits = SMALL,
    data: Mapping[str, Path] | None = None,
) -> tuple[RunResult, str]:
    """Run ``script`` as /job/script.py with a unique marker as argv[1]; check nothing of it survives."""
    marker = f"keyong-attack-{uuid.uuid4().hex}"
    result = run(
        [sandbox_python(), "-I", "-B", "/job/script.py", marker],
        data=data or {},
        out_dir=out_dir,
        limits=limits,
        files={"script.py": textwrap.dedent(script).encode("utf-8")},
    )
    assert processes_with(marker) == [], "a process of the job outlived it"
    return result, marker
