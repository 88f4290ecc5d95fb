"""Sandboxes started ahead of demand (issue 21 "Job latency"): the same isolation, the imports paid early.

Why: a dp-query spent 1.7–2.6 s from submission to verdict, of which the DP mechanisms took 0.04–0.15 s;
the rest was starting the sandbox and importing diffprivlib's scipy/scikit-learn stack (a small SQL
job: ~0.45 s of its ~0.75 s in the sandbox is importing DuckDB and pyarrow). A :class:`WarmSandbox` is
started before any job is claimed, with its job kind's libraries already imported, and waits; a
claimed job is staged into it and runs at once.

What does not change (``sandbox.runner``'s docstring, 原始数据不出域 / 数据可用不可见,
shuangyashan-2026-public-data.txt 第三十五条): a warm sandbox is a :class:`sandbox.runner.Sandbox`, built
from the very same :func:`sandbox.mounts.bwrap_args` list (namespaces, no network, read-only mounts,
seccomp filter, uid 65534 via setpriv, rlimits, per-job cgroups) as a fresh one; its staging directory
``keyong-run-*`` is bound as ``/etc``, ``/job``, ``/data`` and ``/out`` from the start, empty. It holds
**no data** until a worker has claimed a job and its licence scope and grants were checked (at claim
and submission, as for a fresh run): only then are the granted copies hard-linked into the bound
``data`` directory and the job's files into ``job``, and the launcher is told to go. One sandbox runs
exactly one job and is discarded (never reused, never two jobs in one sandbox, separate PID
namespaces). The wall-clock watchdog, the output caps and the CPU limit count from "go": the launcher
starts with RLIMIT_CPU raised by :data:`PRELOAD_CPU_SECONDS` and lowers it to its use so far plus the
job's own limit before the job runs; the cgroup's CPU time at "go" is subtracted from the job's. That
lowered limit still includes the imports for a process the job forks (RLIMIT_CPU is per process and a
child starts at zero), so the watchdog also holds the job's processes together to the job's limit, counted
in the sandbox's cpuacct cgroup from "go" (FINDINGS21b F2). Without that cgroup a sandbox is not pre-started
(fail closed: the job runs fresh, where RLIMIT_CPU alone holds its own meaning).

The launcher (:data:`LAUNCHER`, run as ``python -I -B -c``): runs the kind's preload with stdout and
stderr set aside (what libraries print on import is not the job's output), writes :data:`READY` on
stdout, blocks reading one line from stdin (the pipe), lowers its CPU limit, points stdin at
``/dev/null``, writes :data:`GO_ACK` and runs the job's script (``runpy``) or ``-c`` code as
``__main__`` in the same process, with the job's ``sys.argv``. At the job's end the launcher does what
the interpreter's exit does for it (other threads joined, atexit handlers, every open file flushed)
and leaves with ``os._exit``, skipping the teardown of the preloaded libraries (measured: ~1 s of a
dp-query's wall time was interpreter shutdown with scipy and scikit-learn loaded). The host reads the
acknowledgement before supervising: a launcher that died before it (killed, out of memory) ran nothing
of the job, which then runs in a fresh sandbox instead (:class:`LauncherGone`).

Accepted residual (FINDINGS21b F4): a warm job can tell how long its sandbox waited — its process's
start time (``/proc/self/stat``, also pid 1's) against ``/proc/uptime`` or ``CLOCK_BOOTTIME``. Since the
pool refills when a job takes its sandbox, that age dates the previous job's start on this worker, and in
a busy queue roughly its length. Hiding it needs a time namespace whose boottime offset is set at "go";
its offsets can be written only before any process enters it (so before the launcher starts, when "go"
is unknown), bwrap does not create one, and the job cannot (no capabilities; the seccomp filter denies
CLONE_NEWTIME). Forking the job at "go" would leave the launcher's and pid 1's start times readable and
add a process a fresh job does not have. Refilling after a random delay would only blur the date by that
delay while making more jobs run fresh. So it is documented, not fixed: it tells the job when *a* job of
this worker started, never whose, what or over which data, and far less than the host-wide
``/proc/loadavg`` and ``/proc/stat`` that no sandbox here hides. A deployment that must not leak even this
sets ``KEYONG_SANDBOX_PRESTART=0``.

Only job argv of the form ``[sandbox_python(), "-I", "-B", SCRIPT | -c CODE, ...]`` (what
``sandbox.kinds`` runs) and limits equal to the pool's take the warm path; everything else runs fresh.
Pre-starting is on by default where the sandbox works; ``KEYONG_SANDBOX_PRESTART=0`` switches it off.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from sandbox.limits import Limits
from sandbox.mounts import deliver, prepare_out_dir, stage_data, stage_job_files
from sandbox.runner import RunResult, Sandbox, check_sandbox, sandbox_python
from sandbox.supervision import mark_busy, mark_idle

ENVIRONMENT = "KEYONG_SANDBOX_PRESTART"
READY = b"\x00keyong-ready\n"
GO_ACK = b"\x00keyong-go\n"
#: CPU seconds a launcher may spend on its imports before its job; its RLIMIT_CPU is the job's limit plus this
#: until "go", when it lowers the limit to what it used plus the job's limit.
PRELOAD_CPU_SECONDS = 60
#: How long a claimed job waits for a warm sandbox still importing (it started earlier than a fresh one would).
READY_WAIT_SECONDS = 30.0
#: How long the host waits for a launcher to acknowledge "go" before running the job fresh.
ACK_SECONDS = 10.0

#: Per job kind, what its launcher imports ahead of demand (the libraries that kind's program or a typical
#: script loads first). Platform code, never an operator's. Kinds not named here always start fresh.
PRELOADS: dict[str, str] = {
    "sql": "import duckdb\nimport pyarrow.csv\nimport pyarrow.parquet\n",
    # The interpreter alone: a python job may import nothing heavy, and a preload it does not use would cost
    # every such job (a throughput of small jobs) the ~0.45 s of CPU numpy, pandas and pyarrow take.
    "python": "",
    "dp-query": "import numpy\nimport pandas\nimport pyarrow.parquet\nimport diffprivlib.mechanisms\n",
    "dp-train": "import numpy\nimport pandas\nimport pyarrow.parquet\nimport torch\nimport opacus\n",
}

LAUNCHER = r"""
import json, math, os, resource, runpy, sys, types

READY = b"\x00keyong-ready\n"
GO_ACK = b"\x00keyong-go\n"


def preload(source):
    saved = (os.dup(1), os.dup(2))
    scratch = os.open("/tmp/.keyong-preload", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(scratch, 1)
    os.dup2(scratch, 2)
    failed = None
    try:
        exec(compile(source, "<preload>", "exec"), {"__name__": "__keyong_preload__"})
    except BaseException as exc:
        failed = exc
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    for fd in (*saved, scratch):
        os.close(fd)
    os.unlink("/tmp/.keyong-preload")
    if failed is not None:
        import traceback
        traceback.print_exception(failed)
        sys.stderr.flush()
        os._exit(70)


def run(argv):
    if argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        exec(compile(argv[1], "<string>", "exec"), main.__dict__)
    else:
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name="__main__")


def launch():
    preload(sys.argv[1])
    os.write(1, READY)
    line = sys.stdin.buffer.readline(1 << 20)
    if not line.endswith(b"\n"):
        os._exit(0)  # closed without a job: discarded
    order = json.loads(line)
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(used.ru_utime + used.ru_stime) + int(order["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.write(1, GO_ACK)
    code = 0
    try:
        run(order["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException as exc:  # as the interpreter reports it, without the launcher's frames
        tb = exc.__traceback__
        while tb is not None and (tb.tb_frame.f_code in OWN or tb.tb_frame.f_globals.get("__name__") == "runpy"):
            tb = tb.tb_next
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        code = 1
    finish(code)


def finish(code):
    # What the interpreter's exit does for a job, without tearing the preloaded libraries down (about 1 s
    # with scipy and scikit-learn loaded): wait for the job's other threads, run its atexit handlers,
    # flush every file still open, then leave.
    import _io, atexit, gc, threading, warnings
    try:
        threading._shutdown()
    except Exception:
        pass
    atexit._run_exitfuncs()
    # Flushed while alive: collecting first could close a BufferedWriter before the TextIOWrapper over it
    # (a reference cycle's finalizers run in no set order) and lose what the wrapper still held.
    # type(obj), not isinstance: isinstance reads obj.__class__, which some library objects answer with a
    # warning (torch.distributed.reduce_op); nothing the scan touches may print into the job's log.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            if issubclass(type(obj), _io._IOBase):  # every file object, without io.IOBase's slower ABC check
                try:
                    if not obj.closed:
                        obj.flush()
                except Exception:
                    pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code & 0xFF)


OWN = (launch.__code__, run.__code__, finish.__code__)
launch()
"""


class LauncherGone(Exception):  # noqa: N818 - says what happened, like SandboxUnavailable
    """The pre-started launcher was gone before its job began: nothing of the job ran; run it fresh."""


def prestart_enabled() -> bool:
    """``KEYONG_SANDBOX_PRESTART`` (default on): ``0``, ``false``, ``no`` or ``off`` switch pre-starting off."""
    return os.environ.get(ENVIRONMENT, "1").strip().lower() not in ("0", "false", "no", "off")


def warm_argv(argv_inside: list[str]) -> list[str] | None:
    """The job's own argv (script or ``-c`` code, then its arguments) when a launcher can run it, else None.

    A launcher is ``sandbox_python() -I -B``; a job asking for another interpreter or other flags runs fresh."""
    head, rest = argv_inside[:3], argv_inside[3:]
    if head != [sandbox_python(), "-I", "-B"] or not rest or not all(isinstance(a, str) for a in rest):
        return None
    if rest[0] == "-c":
        return rest if len(rest) >= 2 else None
    return rest if not rest[0].startswith("-") else None


def _read_exact(fd: int, size: int, timeout: float | None) -> bytes:
    """Up to ``size`` bytes from ``fd``, fewer on end of file or when ``timeout`` passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    data = b""
    while len(data) < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
        try:
            chunk = os.read(fd, size - len(data))
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


class WarmSandbox:
    """One pre-started sandbox: its launcher importing ``preload``, then waiting for exactly one job."""

    def __init__(self, kind: str, preload: str, limits: Limits) -> None:
        self.kind = kind
        self.limits = limits
        self.box = Sandbox(limits)
        if self.box.cgroups.cpuacct is None:  # fail closed: see the module docstring (FINDINGS21b F2)
            self.box.close()
            raise LauncherGone("no per-job cpuacct cgroup here: a pre-started job's CPU cannot be counted from go")
        self.ready = threading.Event()
        self.gone = threading.Event()
        self.taken = False
        try:
            self.box.start(
                [sandbox_python(), "-I", "-B", "-c", LAUNCHER, preload],
                stdin=subprocess.PIPE,
                cpu_seconds=limits.cpu_seconds + PRELOAD_CPU_SECONDS,
            )
        except BaseException:
            self.box.close()
            raise
        assert self.box.process is not None
        mark_idle(self.box.process.pid)  # no job's stop kills it while it waits (sandbox.supervision.STOP)
        self.born = time.monotonic()
        self._waiter = threading.Thread(target=self._await_ready, name=f"keyong-warm-{kind}", daemon=True)
        self._waiter.start()

    def _await_ready(self) -> None:
        process = self.box.process
        assert process is not None and process.stdout is not None
        if _read_exact(process.stdout.fileno(), len(READY), None) == READY:
            self.ready.set()
        else:
            self.gone.set()

    def alive(self) -> bool:
        """Started, not gone, not taken, and its bwrap still running."""
        process = self.box.process
        return not self.gone.is_set() and not self.taken and process is not None and process.poll() is None

    def wait_ready(self, timeout: float) -> bool:
        """Whether the launcher finished its imports (within ``timeout``) and still waits for a job."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if not self.alive() or time.monotonic() >= deadline:
                return False
        return self.alive()

    def go(
        self,
        argv_inside: list[str],
        *,
        data: Mapping[str, Path],
        out_dir: Path,
        files: Mapping[str, bytes],
        stop: threading.Event | None = None,
    ) -> RunResult:
        """Stage the claimed job into this sandbox and run it; the sandbox is discarded afterwards.
        ``stop`` (default: the thread's :data:`sandbox.supervision.STOP`): once set, this run is killed.

        Raises :class:`LauncherGone` when the launcher was gone before the job began (nothing of it ran),
        ValueError for an argv a launcher cannot run or a bad name (nothing ran either)."""
        try:
            job_argv = warm_argv(argv_inside)
            if job_argv is None:
                raise ValueError(f"a pre-started sandbox runs `{sandbox_python()} -I -B SCRIPT|-c CODE ...` only")
            if self.taken or not self.ready.is_set() or not self.alive():
                raise LauncherGone(f"the pre-started {self.kind} sandbox is not waiting for a job")
            self.taken = True
            self._busy()
            out_dir = Path(out_dir).absolute()
            prepare_out_dir(out_dir)
            stage_job_files(self.box.staging, files)  # the grants were checked at claim: only now any data
            stage_data(self.box.staging, data)
            return self._run(job_argv, out_dir, stop)
        finally:
            self.discard()

    def _busy(self) -> None:
        """Taken or discarded: no longer spared by a job's kill (``sandbox.heartbeat``'s backstop)."""
        if self.box.process is not None:
            mark_busy(self.box.process.pid)

    def _run(self, job_argv: list[str], out_dir: Path, stop: threading.Event | None) -> RunResult:
        process = self.box.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        order = json.dumps({"argv": job_argv, "cpu_seconds": self.limits.cpu_seconds}).encode() + b"\n"
        cpu_before = self.box.cgroups.cpu_seconds() or 0.0
        started = time.perf_counter()
        try:
            process.stdin.write(order)
            process.stdin.close()
        except OSError as exc:
            raise LauncherGone(f"the pre-started {self.kind} sandbox's launcher is gone ({exc})") from exc
        if _read_exact(process.stdout.fileno(), len(GO_ACK), ACK_SECONDS) != GO_ACK:
            raise LauncherGone(f"the pre-started {self.kind} sandbox's launcher did not take its job")
        result = self.box.supervise(started=started, cpu_baseline=cpu_before, stop=stop)
        deliver(self.box.job_out, out_dir)  # before discard() removes the staging directory
        result.out_dir = out_dir
        return result

    def discard(self) -> None:
        """Kill the sandbox (if still running), wait for its reader, remove its staging directory."""
        self.taken = True
        self._busy()
        process = self.box.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, 9)
        self.box.cgroups.kill_all()
        self._waiter.join(timeout=10)
        self.box.close()


def run_prestarted(
    argv_inside: list[str],
    *,
    data: Mapping[str, Path],
    out_dir: Path,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    files: Mapping[str, bytes] | None = None,
    preload: str = PRELOADS["python"],
    before_go: float = 0.0,
) -> RunResult:
    """Run one job in a sandbox pre-started for it with ``preload``, with no fresh fallback (LauncherGone
    propagates): what the escape suite and benchmarks use to prove and measure the warm path itself.
    ``before_go``: seconds the ready sandbox waits before its job is staged (limits count from "go")."""
    check_sandbox()
    warm = WarmSandbox("probe", preload, limits)
    try:
        if not warm.wait_ready(READY_WAIT_SECONDS + PRELOAD_CPU_SECONDS):
            raise LauncherGone(f"the pre-started sandbox never became ready: {stderr_tail(warm)}")
        if before_go > 0:
            time.sleep(before_go)
        return warm.go(argv_inside, data=data, out_dir=out_dir, files=files or {})
    finally:
        warm.discard()


def stderr_tail(warm: WarmSandbox) -> str:
    """What a launcher that died before its job said on stderr (its preload's traceback), for the log."""
    process = warm.box.process
    if process is None or process.stderr is None or process.poll() is None:
        return "(still running)"
    return _read_exact(process.stderr.fileno(), 4000, 1.0).decode("utf-8", "replace").strip()[-2000:]


__all__ = [
    "ENVIRONMENT",
    "LAUNCHER",
    "PRELOADS",
    "LauncherGone",
    "WarmSandbox",
    "prestart_enabled",
    "run_prestarted",
    "stderr_tail",
    "warm_argv",
]
