"""Resource attacks: a job exhausts nothing but its own limits (issue 6), and ends with the limit named.

Limits here are small so each attack ends in seconds; sandbox/limits.py says which kernel
mechanism holds each (rlimits, per-job cgroups, the parent's wall-time and output watchdog).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.limits import MIB
from tests.sandbox_escape import SMALL, attack, processes_with, sandbox_required

pytestmark = pytest.mark.attack
__all__ = ["sandbox_required"]


def _host_still_forks() -> None:
    assert subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, timeout=30).stdout == b"1\n"


def _tree_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*"))


def test_fork_bomb_hits_the_process_limit(tmp_path: Path) -> None:
    limits = dataclasses.replace(SMALL, processes=16, wall_seconds=8)
    result, _ = attack(
        """
        import os, time
        children = 0
        failures = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and failures < 50:
            try:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                children += 1
            except OSError:
                failures += 1
        print("children", children)
        raise SystemExit(3)
        """,
        tmp_path / "out",
        limits=limits,
    )
    assert result.status == "failed"
    assert result.reason is not None and "process limit (16) reached" in result.reason
    children = int(result.stdout.split()[1])
    assert 0 < children <= 16
    _host_still_forks()


def test_memory_past_the_cap_fails_with_memory_reason(tmp_path: Path) -> None:
    limits = dataclasses.replace(SMALL, memory_bytes=256 * MIB)
    result, _ = attack(
        """
        blocks = []
        for _ in range(64):
            blocks.append(bytearray(16 * 1024 * 1024))  # touched: zero-filled pages
        print("ALLOCATED", sum(map(len, blocks)))
        """,
        tmp_path / "out",
        limits=limits,
    )
    assert "ALLOCATED" not in result.stdout
    assert result.status in ("failed", "killed")
    assert result.reason is not None and result.reason.startswith("memory limit (256 MiB) exceeded")


def test_cpu_spin_is_killed_at_the_cpu_limit(tmp_path: Path) -> None:
    limits = dataclasses.replace(SMALL, cpu_seconds=1, wall_seconds=15)
    result, _ = attack("while True:\n    pass\n", tmp_path / "out", limits=limits)
    assert result.status == "killed"
    assert result.reason == "CPU time limit 1 s exceeded"
    assert 0.9 <= result.cpu_seconds < 5
    assert result.wall_seconds < 10


def test_sleeping_past_the_wall_limit_is_killed(tmp_path: Path) -> None:
    limits = dataclasses.replace(SMALL, wall_seconds=1)
    result, _ = attack("import time\ntime.sleep(60)\n", tmp_path / "out", limits=limits)
    assert result.status == "killed"
    assert result.reason == "wall time limit 1 s exceeded"
    assert result.wall_seconds < 10  # bounded by the limit plus teardown, not by the job's 60 s


def test_disk_fill_across_files_is_stopped_at_the_output_cap(tmp_path: Path) -> None:
    free_before = shutil.disk_usage(tmp_path).free
    limits = dataclasses.replace(SMALL, output_bytes=8 * MIB, output_files=10_000)
    result, _ = attack(
        """
        import os
        block = os.urandom(1024 * 1024)
        n = 0
        while True:  # many files, each under the per-file limit
            with open(f"/out/part-{n:05d}.bin", "wb") as handle:
                handle.write(block)
            n += 1
        """,
        tmp_path / "out",
        limits=limits,
    )
    assert result.status == "killed"
    assert result.reason == "output limit (8 MiB) exceeded"
    assert result.outputs == []
    assert result.removed and all(entry["why"] == result.reason for entry in result.removed)
    assert _tree_bytes(tmp_path / "out") == 0  # what it wrote is gone from the host
    assert shutil.disk_usage(tmp_path).free > free_before - 64 * MIB


def test_one_huge_file_is_stopped_by_the_file_size_limit(tmp_path: Path) -> None:
    limits = dataclasses.replace(SMALL, output_bytes=4 * MIB)
    result, _ = attack(
        """
        with open("/out/big.bin", "wb") as handle:
            while True:
                handle.write(b"x" * (1 << 20))
                handle.flush()
        """,
        tmp_path / "out",
        limits=limits,
    )
    assert result.status == "failed"  # Python ignores SIGXFSZ: the write fails with EFBIG
    assert result.reason == "output limit exceeded (a file larger than 4 MiB)"
    assert _tree_bytes(tmp_path / "out") <= 4 * MIB


def test_too_many_output_files_are_stopped(tmp_path: Path) -> None:
    limits = dataclasses.replace(SMALL, output_files=50)
    result, _ = attack(
        """
        import time
        for n in range(100_000):
            open(f"/out/f{n}", "w").close()
            if n % 100 == 0:
                time.sleep(0.01)
        """,
        tmp_path / "out",
        limits=limits,
    )
    assert result.status == "killed"
    assert result.reason == "output file count limit (50) exceeded"
    assert list((tmp_path / "out").iterdir()) == []


def test_tmp_is_a_small_tmpfs(tmp_path: Path) -> None:
    limits = dataclasses.replace(SMALL, tmp_bytes=8 * MIB)
    result, _ = attack(
        """
        import errno
        try:
            with open("/tmp/fill", "wb") as handle:
                for _ in range(64):
                    handle.write(b"x" * (1 << 20))
                    handle.flush()
            print("FILLED")
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        """,
        tmp_path / "out",
        limits=limits,
    )
    assert result.status == "ok", result.stderr
    assert result.stdout.strip() == "ENOSPC"


def test_background_process_does_not_outlive_the_job(tmp_path: Path) -> None:
    result, marker = attack(
        """
        import os, subprocess, sys, time
        # A daemon: new session, double fork, carrying the marker so the host can look for it.
        subprocess.Popen([sys.executable, "-I", "-c", "import time; time.sleep(120)", sys.argv[1]],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-I", "-c", "import time; time.sleep(120)", sys.argv[1]])
            os._exit(0)
        time.sleep(0.3)
        print("left behind")
        """,
        tmp_path / "out",
    )
    assert result.status == "ok", result.stderr
    assert result.stdout.strip() == "left behind"
    assert result.wall_seconds < 10  # the job ended when its main process did
    assert processes_with(marker) == []  # (also checked by attack()) none of its processes survives


def test_memory_summed_over_processes_is_capped_by_the_cgroup(tmp_path: Path) -> None:
    """RLIMIT_AS is per process; the job's memory cgroup caps the sum (where the machine offers one).

    Each child's address space (its parent's, which in a pre-started sandbox holds numpy, pandas and
    pyarrow already — about 350 MB — plus its own 400 MiB) stays under RLIMIT_AS; three together exceed
    the cgroup's cap (1 GiB + the 32 MiB /tmp)."""
    limits = dataclasses.replace(SMALL, memory_bytes=1024 * MIB, tmp_bytes=32 * MIB, wall_seconds=15)
    result, _ = attack(
        """
        import os, time
        pids = []
        for _ in range(3):  # each child stays under RLIMIT_AS; together they exceed the cgroup
            pid = os.fork()
            if pid == 0:
                block = bytearray(400 * 1024 * 1024)
                time.sleep(2)
                os._exit(0)
            pids.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
        print(codes)
        raise SystemExit(1 if any(codes) else 0)
        """,
        tmp_path / "out",
        limits=limits,
    )
    from sandbox.limits import create_job_cgroups

    probe = create_job_cgroups(limits)
    has_memory_cgroup = probe.memory is not None
    probe.remove()
    if not has_memory_cgroup:
        pytest.skip("no writable memory cgroup here: per-process RLIMIT_AS is the only memory limit")
    assert result.status == "failed"
    assert "-9" in result.stdout  # the OOM killer took a child
    assert result.reason is not None and result.reason.startswith("memory limit (1.0 GiB) exceeded")
