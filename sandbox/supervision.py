"""Supervising one sandboxed process: its limits, its pipes, its wall clock and output caps, and the
one reason an operator reads when it ends (``sandbox.runner``).

Why a watchdog besides the kernel's limits: rlimits and cgroups bound CPU, memory, processes and
each file's size, but not wall time nor the sum of what a job writes into ``/out``; the loop here
polls both and kills the sandbox's pid 1 (and with it its whole pid namespace) when one is exceeded.

Why an explicit stop signal (:data:`STOP`): the worker kills a run that was cancelled or is no longer
its own (``sandbox.heartbeat``). Which process is "the run" cannot be told from ``/proc`` once sandboxes
are started ahead of demand (:mod:`sandbox.prestart`): a warm sandbox's bwrap predates its job, and the
pool's other sandboxes are children of the worker too (FINDINGS21b F1). So the watcher hands the job's
thread a stop event; the watchdog supervising *that* run polls it and kills exactly that run, fresh or
warm, and never another sandbox. Idle pre-started sandboxes are registered (:func:`mark_idle`) so the
watcher's ``/proc`` backstop spares them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import resource
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sandbox.limits import JobCgroups, Limits, human_bytes
from sandbox.sweep import empty_out, sweep_out

_POLL_SECONDS = 0.02

#: The stop signal of the job whose run this thread supervises: set by ``sandbox.heartbeat.watch`` in the
#: job's thread, read by :func:`supervise` when no ``stop`` is passed. Once set, the run is killed.
STOP: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("keyong_stop", default=None)
#: Why the watchdog killed a run whose stop signal was set (the worker records its own reason over it).
STOPPED_REASON = "killed by the worker: the job was cancelled or is no longer this worker's"

_idle: set[int] = set()
_idle_lock = threading.Lock()


def mark_idle(pid: int) -> None:
    """Register a pre-started sandbox's bwrap, waiting for a job: no job's stop may kill it."""
    with _idle_lock:
        _idle.add(pid)


def mark_busy(pid: int) -> None:
    """The pre-started sandbox ``pid`` was taken by a job (or discarded): its job's stop signal kills it."""
    with _idle_lock:
        _idle.discard(pid)


def idle_pids() -> set[int]:
    """The bwrap pids of pre-started sandboxes still waiting for a job (spared by a job's kill)."""
    with _idle_lock:
        return set(_idle)


# What a job's stderr shows when an allocation was refused under RLIMIT_AS.
_MEMORY_ERRORS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "Out of Memory", "OutOfMemory")
_FILE_SIZE_ERRORS = ("[Errno 27]", "File too large")
_PROCESS_ERRORS = ("BlockingIOError: [Errno 11]", "can't start new thread", "Resource temporarily unavailable")


@dataclass
class RunResult:
    """What happened to one sandboxed job. ``reason`` is what an operator reads on a failure."""

    status: Literal["ok", "failed", "killed"]
    exit_code: int | None
    reason: str | None
    wall_seconds: float
    cpu_seconds: float
    max_rss_bytes: int
    stdout: str
    stderr: str
    out_dir: Path
    outputs: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, str]] = field(default_factory=list)
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (for the queue's row and the ledger payload)."""
        record = asdict(self)
        record["out_dir"] = str(self.out_dir)
        return record


def count_own_processes() -> int:
    uid = os.getuid()
    count = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat().st_uid == uid:
                        count += 1
    return count


def preexec(
    limits: Limits, cgroup_procs: list[str], nproc: int, *, cpu_seconds: int | None = None
) -> Callable[[], None]:
    """Runs in the forked child before exec'ing bwrap: join the job's cgroups, set the rlimits.

    RLIMIT_CPU's soft limit sends SIGXCPU, the hard one a second later SIGKILL. RLIMIT_FSIZE caps
    each file (the watchdog caps their sum). No core dumps: they would land outside /out.
    ``cpu_seconds`` replaces ``limits.cpu_seconds`` for a pre-started launcher (:mod:`sandbox.prestart`),
    whose imports come before its job: it lowers the limit to its use so far plus the job's own on "go".
    """
    cpu = limits.cpu_seconds if cpu_seconds is None else cpu_seconds

    def prepare() -> None:
        pid = str(os.getpid())
        for procs in cgroup_procs:
            with open(procs, "w") as handle:
                handle.write(pid)
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return prepare


class _CappedReader(threading.Thread):
    """Drains a pipe, keeping the first ``cap`` bytes: a chatty job never grows our memory."""

    def __init__(self, stream: Any, cap: int) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.cap = cap
        self.kept = bytearray()
        self.total = 0

    def run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self.stream.read1(65536):
                self.total += len(chunk)
                room = self.cap - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]

    def text(self) -> tuple[str, bool]:
        truncated = self.total > len(self.kept)
        body = bytes(self.kept).decode("utf-8", errors="replace")
        if truncated:
            body += f"\n[… truncated: {self.total - len(self.kept)} more bytes]"
        return body, truncated


def out_usage(out_dir: Path, stop_after: int) -> tuple[int, int]:
    """Bytes (the larger of apparent size and allocated blocks) and entries under ``out_dir``."""
    total = 0
    entries = 0
    pending = [str(out_dir)]
    while pending:
        with contextlib.suppress(OSError), os.scandir(pending.pop()) as listing:
            for entry in listing:
                entries += 1
                if entries > stop_after:
                    return total, entries
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(info.st_mode):
                        pending.append(entry.path)
                    else:
                        total += max(info.st_size, info.st_blocks * 512)
    return total, entries


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def diagnose(
    *,
    exit_code: int | None,
    killed_for: str | None,
    cpu_seconds: float,
    stderr: str,
    limits: Limits,
    cgroups: JobCgroups,
) -> tuple[Literal["ok", "failed", "killed"], str | None]:
    """Status and the one reason an operator reads, with the limit named in it."""
    notes: list[str] = []
    process_limit = cgroups.pids_exhausted() or any(marker in stderr for marker in _PROCESS_ERRORS)
    if process_limit:
        notes.append(f"process limit ({limits.processes}) reached")
    memory = cgroups.oom_killed() or any(marker in stderr for marker in _MEMORY_ERRORS)
    memory_reason = f"memory limit ({human_bytes(limits.memory_bytes)}) exceeded"
    if memory:
        notes.insert(0, memory_reason)

    def with_notes(reason: str) -> str:
        extra = [note for note in notes if note != reason]
        return "; ".join([reason, *extra])

    if killed_for is not None:
        return "killed", with_notes(killed_for)
    if exit_code == 0:
        return "ok", None
    signalled = exit_code is not None and exit_code > 128 and exit_code - 128 < 65
    signum = exit_code - 128 if signalled and exit_code is not None else None
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and cpu_seconds >= limits.cpu_seconds - 0.5):
        return "killed", with_notes(f"CPU time limit {limits.cpu_seconds} s exceeded")
    if memory:
        return ("killed" if signalled else "failed"), with_notes(memory_reason)
    if signum == signal.SIGXFSZ or any(marker in stderr for marker in _FILE_SIZE_ERRORS):
        # Python ignores SIGXFSZ, so there the write fails with EFBIG instead of the signal killing it.
        return ("killed" if signalled else "failed"), with_notes(
            f"output limit exceeded (a file larger than {human_bytes(limits.output_bytes)})"
        )
    if process_limit:
        return ("killed" if signalled else "failed"), with_notes(f"process limit ({limits.processes}) reached")
    if signum is not None:
        return "killed", with_notes(f"killed by {_signal_name(signum)}")
    return "failed", with_notes(f"exit status {exit_code}")


class _Followed:
    """The threads that follow a started sandbox: its capped stdout and stderr, bwrap's status
    lines (``status``) and its end (``waited``, then ``done``)."""

    def __init__(self, process: subprocess.Popen[bytes], status_read: int, fds: list[int], limits: Limits) -> None:
        self.stdout = _CappedReader(process.stdout, limits.log_bytes)
        self.stderr = _CappedReader(process.stderr, limits.log_bytes)
        self.status: dict[str, Any] = {}
        self.waited: dict[str, Any] = {}
        self.done = threading.Event()
        self._process, self._status_read, self._fds = process, status_read, fds
        self.threads = [
            self.stdout,
            self.stderr,
            threading.Thread(target=self._read_status, daemon=True),
            threading.Thread(target=self._wait),
        ]
        for thread in self.threads:
            thread.start()

    def _read_status(self) -> None:
        with os.fdopen(self._status_read, "rb") as stream:
            self._fds.remove(self._status_read)
            for line in stream:
                with contextlib.suppress(ValueError):
                    self.status.update(json.loads(line))

    def _wait(self) -> None:
        _, wait_status, usage = os.wait4(self._process.pid, 0)
        self.waited["status"], self.waited["usage"] = wait_status, usage
        self._process.returncode = os.waitstatus_to_exitcode(wait_status)
        self.done.set()


def supervise(
    process: subprocess.Popen[bytes],
    status_read: int,
    fds: list[int],
    *,
    started: float,
    job_out: Path,
    limits: Limits,
    cgroups: JobCgroups,
    cpu_baseline: float = 0.0,
    stop: threading.Event | None = None,
) -> RunResult:
    """Wait for the job while enforcing wall time and the output caps on ``job_out`` (the staged
    ``/out``); then sweep it. The result's ``out_dir`` is ``job_out`` until the caller delivers.

    ``started``: when the job began (``perf_counter``), the wall clock's origin; ``cpu_baseline``: the
    CPU seconds its cgroup had used by then (a pre-started sandbox's imports), not the job's; ``stop``
    (default: this thread's :data:`STOP`): once set, the run is killed (cancelled, or no longer ours)."""
    stop = stop if stop is not None else STOP.get()
    followed = _Followed(process, status_read, fds, limits)
    stdout, stderr, status, waited, done = (
        followed.stdout,
        followed.stderr,
        followed.status,
        followed.waited,
        followed.done,
    )
    killed_for = _watchdog(
        process,
        status,
        done,
        started=started,
        job_out=job_out,
        limits=limits,
        cgroups=cgroups,
        cpu_baseline=cpu_baseline,
        stop=stop,
    )
    done.wait()
    wall = time.perf_counter() - started
    for thread in followed.threads:
        thread.join(timeout=5)

    usage = waited["usage"]
    exit_code = _exit_code(waited["status"], status)
    cgroup_cpu = cgroups.cpu_seconds()
    cpu = max(0.0, cgroup_cpu - cpu_baseline) if cgroup_cpu is not None else usage.ru_utime + usage.ru_stime
    peak = cgroups.peak_memory_bytes()
    max_rss = peak if peak is not None else usage.ru_maxrss * 1024
    out_text, out_cut = stdout.text()
    err_text, err_cut = stderr.text()
    verdict, reason = diagnose(
        exit_code=exit_code, killed_for=killed_for, cpu_seconds=cpu, stderr=err_text, limits=limits, cgroups=cgroups
    )
    if killed_for is not None and killed_for.startswith("output"):
        outputs: list[dict[str, Any]] = []
        removed = empty_out(job_out, killed_for)
    else:
        outputs, removed = sweep_out(job_out)
    return RunResult(
        status=verdict,
        exit_code=exit_code,
        reason=reason,
        wall_seconds=wall,
        cpu_seconds=cpu,
        max_rss_bytes=max_rss,
        stdout=out_text,
        stderr=err_text,
        out_dir=job_out,
        outputs=outputs,
        removed=removed,
        stdout_truncated=out_cut,
        stderr_truncated=err_cut,
    )


def _watchdog(
    process: subprocess.Popen[bytes],
    status: dict[str, Any],
    done: threading.Event,
    *,
    started: float,
    job_out: Path,
    limits: Limits,
    cgroups: JobCgroups,
    cpu_baseline: float = 0.0,
    stop: threading.Event | None = None,
) -> str | None:
    """Poll until the job ends; kill it when ``stop`` is set, at the wall-time or CPU-time limit or when
    ``/out`` outgrows its caps. Why it was killed (the reason an operator reads), or None when it ended by
    itself."""
    deadline = started + limits.wall_seconds
    while True:
        killed_for: str | None = None
        if done.is_set():
            return None
        if stop is not None and stop.is_set():  # before waiting: a stopped job runs not one poll longer
            killed_for = STOPPED_REASON
        elif done.wait(_POLL_SECONDS):
            return None
        elif time.perf_counter() >= deadline:
            killed_for = f"wall time limit {limits.wall_seconds:g} s exceeded"
        elif _cpu_exceeded(cgroups, cpu_baseline, limits):
            killed_for = f"CPU time limit {limits.cpu_seconds} s exceeded"
        else:
            used, entries = out_usage(job_out, limits.output_files)
            if used > limits.output_bytes:
                killed_for = f"output limit ({human_bytes(limits.output_bytes)}) exceeded"
            elif entries > limits.output_files:
                killed_for = f"output file count limit ({limits.output_files}) exceeded"
        if killed_for is not None:
            kill_run(process, status.get("child-pid"), done, cgroups)
            return killed_for


def _cpu_exceeded(cgroups: JobCgroups, cpu_baseline: float, limits: Limits) -> bool:
    """Whether the job's processes together used more CPU than its limit since it began.

    Why besides RLIMIT_CPU: that limit is per process and a child starts at zero under its parent's
    limit, so a job's 64 processes could each use the whole limit; and a pre-started launcher's limit
    includes its imports, which a child it forks would get on top of the job's (FINDINGS21b F2). The
    job's cgroup counts every process of the run, from ``cpu_baseline`` (its CPU at "go")."""
    used = cgroups.cpu_seconds()
    return used is not None and used - cpu_baseline > limits.cpu_seconds


def _exit_code(wait_status: int, status: dict[str, Any]) -> int:
    """The job's exit code: bwrap's report of its child when it made one, else bwrap's own (128+signal)."""
    exit_code = os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else 128 + os.WTERMSIG(wait_status)
    if isinstance(status.get("exit-code"), int):
        exit_code = status["exit-code"]
    return exit_code


def kill_run(process: subprocess.Popen[bytes], child_pid: Any, done: threading.Event, cgroups: JobCgroups) -> None:
    """SIGKILL the sandbox's pid 1 (the kernel then kills every process of its pid namespace) and bwrap.

    The inner pid cannot be reused while the outer bwrap has not reaped it, and the outer cannot be
    reaped before ``done`` is set, so the pids signalled here are still the job's.
    """
    if done.is_set():
        return
    if isinstance(child_pid, int) and child_pid > 1:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child_pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    cgroups.kill_all()


__all__ = [
    "STOP",
    "STOPPED_REASON",
    "RunResult",
    "count_own_processes",
    "diagnose",
    "idle_pids",
    "kill_run",
    "mark_busy",
    "mark_idle",
    "preexec",
    "supervise",
]
