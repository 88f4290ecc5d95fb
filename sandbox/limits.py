"""Resource limits of a sandboxed job: the ``Limits`` a caller grants, and the kernel mechanisms that hold them.

Why two mechanisms: rlimits are always available but per process (64 processes × RLIMIT_AS would
be 64 × the memory cap) and RLIMIT_NPROC counts every process of the real uid host-wide, so jobs
running at once as uid 65534 share it. A cgroup per job bounds the *sum* over the job's processes
(memory including its tmpfs ``/tmp``; process count) and is used wherever the machine lets us
create one. This machine offers cgroup v1 controllers (v2 is mounted without a memory
controller), so v1 ``memory`` and ``pids`` hierarchies are detected and used; when neither is
writable the rlimits alone hold (a job exhausts nothing but its own limits — issue 6).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

GIB = 1 << 30
MIB = 1 << 20

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Limits:
    """What one job may use. Defaults fit a 2-core, 24 GiB machine running two workers."""

    memory_bytes: int = 2 * GIB
    cpu_seconds: int = 60
    wall_seconds: float = 120.0
    processes: int = 64
    open_files: int = 256
    output_bytes: int = 200 * MIB
    output_files: int = 1000
    tmp_bytes: int = 256 * MIB
    log_bytes: int = 1 * MIB  # stdout and stderr each; the rest is counted and dropped

    def __post_init__(self) -> None:
        for name in ("memory_bytes", "cpu_seconds", "processes", "open_files", "output_bytes", "output_files"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive")
        if self.wall_seconds <= 0 or self.tmp_bytes <= 0 or self.log_bytes <= 0:
            raise ValueError("Limits.wall_seconds, tmp_bytes and log_bytes must be positive")


def _counted(directory: Path | None, name: str, key: str) -> bool:
    """Whether the cgroup file ``name`` (lines of "key count") counts ``key`` above zero."""
    if directory is None:
        return False
    with contextlib.suppress(OSError, ValueError):
        for line in (directory / name).read_text().splitlines():
            found, _, value = line.partition(" ")
            if found == key and int(value) > 0:
                return True
    return False


def human_bytes(n: int) -> str:
    """'2.0 GiB', '200 MiB': the form a reason shows an operator."""
    if n >= GIB:
        return f"{n / GIB:.1f} GiB"
    if n >= MIB:
        return f"{n / MIB:.0f} MiB"
    return f"{n} bytes"


def _own_cgroup_dir(controller: str) -> Path | None:
    """Where this process sits in the v1 hierarchy of ``controller``, if mounted and writable."""
    mount = CGROUP_ROOT / controller
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            here = mount / path.lstrip("/")
            if (here / "cgroup.procs").exists() and os.access(here, os.W_OK):
                return here
    return None


@dataclass
class JobCgroups:
    """The per-job v1 cgroups (memory, pids, cpuacct) that could be created; empty when none could."""

    memory: Path | None = None
    pids: Path | None = None
    cpuacct: Path | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def procs_files(self) -> list[str]:
        """``cgroup.procs`` files the child writes its pid to before exec'ing bwrap."""
        return [str(d / "cgroup.procs") for d in (self.memory, self.pids, self.cpuacct) if d is not None]

    def describe(self) -> str:
        named = (("memory", self.memory), ("pids", self.pids), ("cpuacct", self.cpuacct))
        held = [name for name, d in named if d is not None]
        return "cgroup v1 " + "+".join(held) if held else "no writable cgroup (rlimits only)"

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed a process of the job at the cgroup's limit."""
        # (memory.failcnt is not used: it also counts page-cache reclaim, which is harmless.)
        return _counted(self.memory, "memory.oom_control", "oom_kill")

    def cpu_seconds(self) -> float | None:
        """CPU time of every process the job ran. bwrap's pid 1 reports its child's end through an
        eventfd instead of being waited for, so ``wait4`` on bwrap does not see the job's usage."""
        if self.cpuacct is None:
            return None
        with contextlib.suppress(OSError, ValueError):
            return int((self.cpuacct / "cpuacct.usage").read_text()) / 1e9
        return None

    def peak_memory_bytes(self) -> int | None:
        """Peak memory charged to the job (its processes, its tmpfs /tmp, page cache of what it read)."""
        if self.memory is None:
            return None
        with contextlib.suppress(OSError, ValueError):
            return int((self.memory / "memory.max_usage_in_bytes").read_text())
        return None

    def pids_exhausted(self) -> bool:
        """Whether a fork was refused because the job reached its process limit."""
        return _counted(self.pids, "pids.events", "max")

    def kill_all(self) -> None:
        """SIGKILL whatever is still in the job's cgroups (belt and braces after the pid namespace)."""
        for directory in (self.pids, self.memory):
            if directory is None:
                continue
            with contextlib.suppress(OSError, ValueError):
                for pid in (directory / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(pid), 9)

    def remove(self) -> None:
        """Delete the cgroups; the kernel refuses while a process remains, so retry briefly."""
        for directory in (self.memory, self.pids, self.cpuacct):
            if directory is None:
                continue
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    self.kill_all()
                    time.sleep(0.01)


def create_job_cgroups(limits: Limits, *, extra_processes: int = 2) -> JobCgroups:
    """Make per-job memory and pids cgroups under this process's own, with the limits written.

    ``extra_processes``: bwrap's own two processes (outer monitor, inner pid 1) count too.
    Memory covers the processes plus the tmpfs ``/tmp`` (tmpfs pages are charged to the cgroup).
    """
    found = JobCgroups()
    name = f"keyong-job-{uuid.uuid4().hex[:12]}"
    memory_parent = _own_cgroup_dir("memory")
    if memory_parent is not None:
        directory = memory_parent / name
        try:
            directory.mkdir()
            cap = str(limits.memory_bytes + limits.tmp_bytes)
            (directory / "memory.limit_in_bytes").write_text(cap)
            with contextlib.suppress(OSError):  # only where swap accounting is on
                (directory / "memory.memsw.limit_in_bytes").write_text(cap)
            found.memory = directory
        except OSError as exc:
            found.problems.append(f"memory cgroup: {exc}")
            with contextlib.suppress(OSError):
                directory.rmdir()
    pids_parent = _own_cgroup_dir("pids")
    if pids_parent is not None:
        directory = pids_parent / name
        try:
            directory.mkdir()
            (directory / "pids.max").write_text(str(limits.processes + extra_processes))
            found.pids = directory
        except OSError as exc:
            found.problems.append(f"pids cgroup: {exc}")
            with contextlib.suppress(OSError):
                directory.rmdir()
    cpuacct_parent = _own_cgroup_dir("cpuacct")
    if cpuacct_parent is not None:
        directory = cpuacct_parent / name
        try:
            directory.mkdir()
            found.cpuacct = directory
        except OSError as exc:
            found.problems.append(f"cpuacct cgroup: {exc}")
    return found
