"""Red team 21b: pre-started ("warm") sandboxes of issue 21 (sandbox/prestart.py, sandbox/pool.py), attacked
from their source and docstrings, without reading the builders' tests.

The promise (``sandbox.prestart``'s docstring): a warm sandbox is exactly as isolated as a fresh one, runs
exactly one job and is discarded, holds no data before its job is claimed, and its limits count from "go";
a launcher that dies, hangs or says something unexpected fails closed (the job runs fresh, or not at all,
never unsandboxed and never judged on forged data). A test marked ``xfail(strict=True)`` is a break
(FINDINGS21b.md: severity, reproduction, fix); the others are defences that held and now guard them.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.attack, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _sandbox() -> None:
    from tests.conftest import require_sandbox

    require_sandbox()


def _limits(**kw: Any) -> Any:
    from sandbox.limits import Limits

    return Limits(**{"wall_seconds": 30.0, "cpu_seconds": 20, **kw})


def _argv(code: str) -> list[str]:
    from sandbox.runner import sandbox_python

    return [sandbox_python(), "-I", "-B", "-c", code]


@pytest.fixture
def pool() -> Iterator[Any]:
    """A pool keeping one ``python`` sandbox warm, ready before the test starts."""
    from sandbox.pool import SandboxPool

    started = SandboxPool(_limits(), kinds=("python",)).start()
    try:
        assert started.wait_warm("python", 90), "no warm python sandbox became ready"
        yield started
    finally:
        started.close()


def _warm(preload: str = "", **limits: Any) -> Any:
    from sandbox.prestart import READY_WAIT_SECONDS, WarmSandbox

    warm = WarmSandbox("probe", preload, _limits(**limits))
    return warm, READY_WAIT_SECONDS


# --- the control pipe and what the job inherits -------------------------------------------------------------

_VIEW = r"""
import json, os
fds = {}
for fd in sorted(os.listdir("/proc/self/fd"), key=int):
    try:
        fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass  # the listing's own descriptor, closed by now
kinds = {fd: ("pipe" if t.startswith("pipe:") else t) for fd, t in fds.items()}
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
mounts = [line.split()[3:5] for line in open("/proc/self/mountinfo")]
wanted = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
status = [line for line in open("/proc/self/status").read().splitlines() if line.split(":")[0] in wanted]
leaks = []
for path in ("/proc/1/environ", "/proc/1/fd", "/proc/1/root/", "/proc/1/cwd/"):
    try:
        leaks.append([path, os.listdir(path) if path.endswith(("fd", "/")) else open(path, "rb").read().decode()])
    except OSError:
        pass
print(json.dumps({"fds": kinds, "pids": pids, "mounts": mounts, "env": dict(os.environ), "status": status,
                  "leaks": leaks, "data": os.listdir("/data"), "job": os.listdir("/job"), "tmp": os.listdir("/tmp"),
                  "shm": os.listdir("/dev/shm"), "out": os.listdir("/out")}))
"""


def test_warm_job_inherits_exactly_what_a_fresh_one_does(tmp_path: Path) -> None:
    """Inherited descriptors (no control pipe: stdin is /dev/null), the PID namespace's processes, the mounts
    (no host data path; the same binds), the environment and the empty /data, /job, /tmp, /dev/shm and /out."""
    from sandbox.prestart import run_prestarted
    from sandbox.runner import run

    warm = run_prestarted(_argv(_VIEW), data={}, out_dir=tmp_path / "warm", limits=_limits())
    fresh = run(_argv(_VIEW), data={}, out_dir=tmp_path / "fresh", limits=_limits())
    assert warm.status == fresh.status == "ok", (warm.stderr, fresh.stderr)
    seen_warm, seen_fresh = json.loads(warm.stdout), json.loads(fresh.stdout)
    assert seen_warm["fds"] == {"0": "/dev/null", "1": "pipe", "2": "pipe"}
    assert seen_warm["pids"] == [1, 2]
    assert seen_warm["leaks"] == [], "bwrap's pid 1 (root) is readable: its environment, fds or root"

    def neutral(mounts: list[list[str]]) -> list[list[str]]:  # the staging directory's random name differs
        return [[root.split("/keyong-run-")[0] + ("/keyong-run-X" if "/keyong-run-" in root else ""), at]
                for root, at in mounts]  # fmt: skip

    assert "Seccomp:\t2" in seen_warm["status"] and "NoNewPrivs:\t1" in seen_warm["status"]
    assert "CapEff:\t0000000000000000" in seen_warm["status"]
    for key in ("fds", "pids", "env", "status", "leaks", "data", "job", "tmp", "shm", "out"):
        assert seen_warm[key] == seen_fresh[key], key
    assert neutral(seen_warm["mounts"]) == neutral(seen_fresh["mounts"])


_FORGE = r"""
import os, sys
os.write(1, b"\x00keyong-go\n\x00keyong-ready\n")
sys.stdout.write(str(__import__("json").dumps({"exit-code": 0, "child-pid": 1})) + "\n")
try:
    os.write(0, b'{"argv": ["-c", "print(1)"], "cpu_seconds": 9999}\n')
    print("STDIN-WRITABLE")
except OSError:
    print("stdin closed to the job")
sys.exit(3)
"""


def test_protocol_bytes_a_job_prints_are_its_output_not_messages(tmp_path: Path) -> None:
    """READY / GO_ACK / a bwrap status line printed by the job are only its stdout; its exit status stands;
    it cannot write an order into the launcher's stdin."""
    from sandbox.prestart import run_prestarted

    result = run_prestarted(_argv(_FORGE), data={}, out_dir=tmp_path / "out", limits=_limits())
    assert result.status == "failed" and result.exit_code == 3
    assert result.stdout.startswith("\x00keyong-go\n\x00keyong-ready\n")
    assert "STDIN-WRITABLE" not in result.stdout and "stdin closed to the job" in result.stdout


# --- one job per sandbox, no data before go ----------------------------------------------------------------


def test_a_warm_sandbox_runs_one_job_and_is_gone(tmp_path: Path) -> None:
    from sandbox.prestart import LauncherGone

    warm, wait = _warm()
    try:
        assert warm.wait_ready(wait)
        staging = warm.box.staging
        assert list((staging / "data").iterdir()) == [] and list((staging / "job").iterdir()) == []
        first = warm.go(_argv("print('one')"), data={}, out_dir=tmp_path / "a", files={})
        assert first.status == "ok" and first.stdout.strip() == "one"
        assert not staging.exists() and warm.box.process is not None and warm.box.process.poll() is not None
        with pytest.raises(LauncherGone):
            warm.go(_argv("print('two')"), data={}, out_dir=tmp_path / "b", files={})
        assert not (tmp_path / "b").exists() or list((tmp_path / "b").iterdir()) == []
    finally:
        warm.discard()


_POISON = r"""
import builtins, json, os, sys
json.loads = lambda *a, **k: {"argv": ["-c", "print('hijacked')"], "cpu_seconds": 100000}
builtins.print = lambda *a, **k: os.write(1, b"hijacked\n")
open("/tmp/left-by-first", "w").write("x")
sys.modules["runpy"] = None
print("first")
"""

_CHECK = r"""
import json, os, runpy
print(json.loads.__module__, [name for name in os.listdir("/tmp") if name.startswith("left-by")], "second")
"""


def test_a_job_cannot_poison_the_next_job_of_the_pool(tmp_path: Path, pool: Any) -> None:
    """Monkeypatching the launcher's modules, leaving files in /tmp: the next job starts in another sandbox."""
    from sandbox.kinds import run_job

    first = run_job("python", _POISON, datasets={}, out_dir=tmp_path / "1", limits=pool.limits, pool=pool)
    assert first.status == "ok" and pool.stats["warm"] == 1, (first.stderr, pool.stats)
    assert pool.wait_warm("python", 90)
    second = run_job("python", _CHECK, datasets={}, out_dir=tmp_path / "2", limits=pool.limits, pool=pool)
    assert second.status == "ok" and pool.stats["warm"] == 2, (second.stderr, pool.stats)
    # Only the first job's own leftovers are looked for: /tmp may also hold the mount point of the software
    # install when the venv lives under /tmp (a CI checkout in /tmp/ci shows "ci" there in every sandbox).
    assert second.stdout.strip() == "json [] second"


def test_data_is_staged_only_at_go_and_only_into_its_own_sandbox(tmp_path: Path) -> None:
    """Two warm sandboxes: the one that runs a job sees its dataset; the other stays empty until discarded."""
    dataset = tmp_path / "copy.parquet"
    dataset.write_bytes(b"PAR1 granted copy")
    one, wait = _warm()
    two, _ = _warm()
    try:
        assert one.wait_ready(wait) and two.wait_ready(wait)
        code = "import os; print(sorted(os.listdir('/data')), open('/data/people.parquet','rb').read())"
        result = one.go(_argv(code), data={"people": dataset}, out_dir=tmp_path / "out", files={})
        assert result.status == "ok", result.stderr
        assert result.stdout.strip() == "['people.parquet'] b'PAR1 granted copy'"
        assert list((two.box.staging / "data").iterdir()) == []
        probe = two.go(_argv("import os; print(os.listdir('/data'))"), data={}, out_dir=tmp_path / "o2", files={})
        assert probe.stdout.strip() == "[]"
    finally:
        one.discard()
        two.discard()


# --- limits from go -------------------------------------------------------------------------------------------


def test_wall_clock_counts_from_go_and_still_kills(tmp_path: Path) -> None:
    from sandbox.prestart import run_prestarted

    fine = run_prestarted(
        _argv("import time; time.sleep(1)"), data={}, out_dir=tmp_path / "a", limits=_limits(wall_seconds=3),
        before_go=3.5,
    )  # fmt: skip
    assert fine.status == "ok", fine.reason
    late = run_prestarted(_argv("import time; time.sleep(30)"), data={}, out_dir=tmp_path / "b",
                          limits=_limits(wall_seconds=2))  # fmt: skip
    assert late.status == "killed" and "wall time" in (late.reason or "")


def test_cpu_limit_holds_for_the_launcher_and_cannot_be_raised(tmp_path: Path) -> None:
    from sandbox.prestart import run_prestarted

    code = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_CPU)\n"
        "print(soft, hard, flush=True)\n"
        "try:\n"
        "    resource.setrlimit(resource.RLIMIT_CPU, (hard + 100, hard + 100))\n"
        "    print('RAISED', flush=True)\n"
        "except (ValueError, OSError):\n"
        "    print('refused', flush=True)\n"
        "while True:\n"
        "    pass\n"
    )
    result = run_prestarted(_argv(code), data={}, out_dir=tmp_path / "out", limits=_limits(cpu_seconds=2))
    soft, hard, verdict = result.stdout.split()
    assert verdict == "refused" and int(soft) <= 3 and int(hard) <= 4
    assert result.status == "killed" and "CPU time limit" in (result.reason or ""), result.reason


_CHILD_CPU = r"""
import os, time
pid = os.fork()
if pid == 0:
    start = time.process_time()
    while True:
        with open("/out/child.txt", "w") as f:
            f.write(str(time.process_time() - start))
        end = time.process_time() + 0.1
        while time.process_time() < end:
            pass
os.waitpid(pid, 0)
"""

_BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 4: pass\n"


def test_a_forked_child_gets_the_jobs_cpu_limit_not_the_preloads_too(tmp_path: Path) -> None:
    """The launcher lowers RLIMIT_CPU to (its preload CPU + the job's limit); a child of the job inherits that
    limit but starts at zero, so it may use the preload's CPU on top of the job's limit. A fresh job's child
    stops at the job's limit (2 s here)."""
    from sandbox.prestart import run_prestarted

    result = run_prestarted(
        _argv(_CHILD_CPU), data={}, out_dir=tmp_path / "out", limits=_limits(cpu_seconds=2), preload=_BURN
    )
    used = float((tmp_path / "out" / "child.txt").read_text())
    assert used < 3.2, f"the job's child used {used:.1f} CPU s under a 2 s limit ({result.reason})"


def test_a_forked_child_of_a_fresh_job_stops_at_the_limit(tmp_path: Path) -> None:
    """The baseline of the test above: the fresh path holds it."""
    from sandbox.runner import run

    run(_argv(_CHILD_CPU), data={}, out_dir=tmp_path / "out", limits=_limits(cpu_seconds=2))
    assert float((tmp_path / "out" / "child.txt").read_text()) < 3.2


_LATE = r"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        fd = os.open("/out/early.txt", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"judged")
        time.sleep(2)
        os.write(fd, b" then changed after judging")
        open("/out/late.txt", "w").write("written after the launcher left")
        os._exit(0)
    os._exit(0)
time.sleep(0.5)
"""


def test_children_do_not_outlive_the_launcher(tmp_path: Path) -> None:
    """A daemonized grandchild may not write into the delivered outputs after the sweep."""
    from sandbox.prestart import run_prestarted

    result = run_prestarted(_argv(_LATE), data={}, out_dir=tmp_path / "out", limits=_limits())
    assert result.status == "ok", result.stderr
    time.sleep(3)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["early.txt"]
    assert (tmp_path / "out" / "early.txt").read_bytes() == b"judged"


# --- fallbacks: dead, hanging, garbage --------------------------------------------------------------------------


def test_launcher_killed_before_go_runs_nothing_and_the_pool_falls_back(tmp_path: Path, pool: Any) -> None:
    from sandbox.kinds import run_job

    (warm,) = pool._warm["python"]
    os.killpg(warm.box.process.pid, signal.SIGKILL)
    warm.box.process.wait()
    result = run_job("python", "print('ran')", datasets={}, out_dir=tmp_path / "o", limits=pool.limits, pool=pool)
    assert result.status == "ok" and result.stdout.strip() == "ran"
    # ran once: fresh, or in a replacement the pool started after seeing the launcher dead
    assert pool.stats["warm"] + pool.stats["fresh"] == 1 and pool.stats["gone"] >= 1, pool.stats


def test_launcher_that_never_acknowledges_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A launcher that reads no order (its stdin swapped for a pipe nobody writes): LauncherGone, the job's
    code never ran, nothing delivered."""
    from sandbox import prestart

    monkeypatch.setattr(prestart, "ACK_SECONDS", 1.0)
    preload = "import io, os, sys\nr, w = os.pipe()\nsys.stdin = io.TextIOWrapper(io.FileIO(r, 'r'))\nsys._keep = w\n"
    warm, wait = _warm(preload)
    try:
        assert warm.wait_ready(wait)
        with pytest.raises(prestart.LauncherGone):
            warm.go(_argv("open('/out/ran', 'w')"), data={}, out_dir=tmp_path / "out", files={})
        assert list((tmp_path / "out").iterdir()) == []
    finally:
        warm.discard()


def test_garbage_before_ready_is_not_taken_for_ready() -> None:
    """A preload that writes into the launcher's real stdout (the saved descriptor) ahead of READY."""
    preload = (
        "import os\nfor fd in range(3, 20):\n"
        "    try: os.write(fd, b'garbage-garbage-garbage')\n"
        "    except OSError: pass\n"
    )
    warm, _ = _warm(preload)
    try:
        assert not warm.wait_ready(15)
        assert warm.gone.is_set()
    finally:
        warm.discard()


def test_launcher_dying_after_go_is_judged_killed_not_rerun(tmp_path: Path, pool: Any) -> None:
    from sandbox.kinds import run_job

    code = "import os, signal\nopen('/out/partial.txt', 'w').write('x')\nos.kill(os.getpid(), signal.SIGKILL)\n"
    result = run_job("python", code, datasets={}, out_dir=tmp_path / "o", limits=pool.limits, pool=pool)
    assert result.status == "killed" and "SIGKILL" in (result.reason or "")
    assert pool.stats["warm"] == 1 and pool.stats["fresh"] == 0, pool.stats


def test_an_order_too_long_for_the_launcher_runs_fresh_once(tmp_path: Path, pool: Any) -> None:
    """An argv of more than the launcher's 1 MiB line: the launcher leaves without running; the host's write
    breaks; the job runs in a fresh sandbox, once."""
    from sandbox.runner import sandbox_python

    code = "open('/out/runs', 'a').write('x')\n#" + "p" * (1 << 20)
    argv = [sandbox_python(), "-I", "-B", "/job/script.py", code]
    script = b"open('/out/runs', 'a').write('x')\n"
    result = pool.run("python", argv, data={}, out_dir=tmp_path / "o", limits=pool.limits, files={"script.py": script})
    assert result is None and pool.stats["gone"] >= 1 and pool.stats["fresh"] == 1, pool.stats
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


# --- the worker's watch: cancel and lost ownership must kill the run -------------------------------------------

_SLOW = "import time\ntime.sleep(4)\nopen('/out/finished.txt', 'w').write('ran to the end')\n"


def _watched(pool: Any, out: Path, heartbeat: Any) -> Any:
    from sandbox.heartbeat import watch
    from sandbox.kinds import run_job

    return watch(
        lambda: run_job("python", _SLOW, datasets={}, out_dir=out, limits=pool.limits, pool=pool),
        heartbeat, every=0.3, patience=0.5, job=1,
    )  # fmt: skip


def test_cancel_kills_a_job_running_in_a_warm_sandbox(tmp_path: Path, pool: Any) -> None:
    """A cancel seen by the heartbeat kills the run (sandbox.heartbeat); the worker then records
    "cancelled on request; the run was killed". A warm sandbox was started before the job, so it is not
    among the children watch() kills: the job runs to its end and leaves its outputs."""
    from sandbox.job_views import Beat

    watched = _watched(pool, tmp_path / "out", lambda: Beat(owned=True, cancel_requested=True))
    assert watched.stopped == "cancelled" and pool.stats["warm"] == 1, pool.stats
    assert watched.result.status == "killed", (watched.result.status, watched.result.outputs)
    assert not (tmp_path / "out" / "finished.txt").exists()


def test_lost_heartbeat_kills_a_job_running_in_a_warm_sandbox(tmp_path: Path, pool: Any) -> None:
    """A worker that cannot heartbeat for ``patience`` kills its run before the reaper hands the job to
    another worker (so one job never runs twice at once)."""

    def away() -> Any:
        raise ConnectionError("database away")

    watched = _watched(pool, tmp_path / "out", away)
    assert watched.stopped == "lost" and pool.stats["warm"] == 1, pool.stats
    assert watched.result.status == "killed", (watched.result.status, watched.result.outputs)
    assert not (tmp_path / "out" / "finished.txt").exists()


def test_cancel_does_not_spare_a_fresh_run(tmp_path: Path) -> None:
    """The baseline of the two tests above: without a pool the cancel kills the run."""
    from sandbox.heartbeat import watch
    from sandbox.job_views import Beat
    from sandbox.kinds import run_job

    watched = watch(
        lambda: run_job("python", _SLOW, datasets={}, out_dir=tmp_path / "out", limits=_limits()),
        lambda: Beat(owned=True, cancel_requested=True), every=0.3, patience=0.5, job=1,
    )  # fmt: skip
    assert watched.stopped == "cancelled" and watched.result.status == "killed"


# --- what the launcher adds to the job's logs -------------------------------------------------------------------


def test_the_launcher_adds_nothing_to_a_dp_train_jobs_stderr(tmp_path: Path) -> None:
    """What libraries print on import is set aside (not the job's output); what the launcher's own exit
    path makes them print must not reach the judged log either."""
    from sandbox.prestart import PRELOADS, run_prestarted

    result = run_prestarted(
        _argv("print('quiet job')"), data={}, out_dir=tmp_path / "out", limits=_limits(), preload=PRELOADS["dp-train"]
    )
    assert result.status == "ok" and result.stdout.strip() == "quiet job"
    assert result.stderr == "", result.stderr


def test_no_thread_is_left_watching_a_discarded_sandbox() -> None:
    warm, wait = _warm()
    assert warm.wait_ready(wait)
    warm.discard()
    assert not warm._waiter.is_alive() and not warm.box.staging.exists()
    assert not any(t is warm._waiter for t in threading.enumerate())


# --- which jobs take the warm path ----------------------------------------------------------------------------


def test_a_job_with_other_limits_never_runs_in_the_pools_sandbox(tmp_path: Path, pool: Any) -> None:
    """Smaller limits (or larger) than the pool's: the pool's sandbox (cgroups and rlimits set at its start)
    would hold the job to the wrong limits; the job must run fresh."""
    from sandbox.kinds import job_command

    for limits in (_limits(cpu_seconds=1), _limits(memory_bytes=4 << 30), _limits(wall_seconds=5)):
        argv, files = job_command("python", "print(1)", limits)
        assert pool.run("python", argv, data={}, out_dir=tmp_path / "o", limits=limits, files=files) is None
    assert pool.stats["warm"] == 0


def test_argv_a_launcher_cannot_reproduce_runs_fresh() -> None:
    from sandbox.prestart import warm_argv
    from sandbox.runner import sandbox_python

    python = sandbox_python()
    for argv in (
        [python, "-I", "-B", "-m", "http.server"],
        [python, "-B", "/job/script.py"],
        [python, "-I", "-B", "-X", "importtime", "/job/script.py"],
        ["/bin/sh", "-I", "-B", "/job/script.py"],
        [python, "-I", "-B", "-c"],
        [python, "-I", "-B"],
    ):
        assert warm_argv(argv) is None, argv


def test_sql_lockdown_holds_in_a_warm_sql_sandbox(tmp_path: Path) -> None:
    """DuckDB imported ahead of the job must not weaken the SQL runner's lock-down (external access off)."""
    from sandbox.kinds import run_job
    from sandbox.pool import SandboxPool

    sql = SandboxPool(_limits(), kinds=("sql",)).start()
    try:
        assert sql.wait_warm("sql", 90)
        query = "SELECT * FROM read_csv('/etc/passwd')"
        result = run_job("sql", query, datasets={}, out_dir=tmp_path / "o", limits=sql.limits, pool=sql)
        assert sql.stats["warm"] == 1, sql.stats
        assert result.status == "failed" and result.outputs == [], (result.stdout, result.stderr)
        assert "nobody" not in result.stdout + result.stderr
        assert "disabled by configuration" in result.stderr, result.stderr
    finally:
        sql.close()


# --- what a job learns about the pool ---------------------------------------------------------------------------

_AGE = r"""
import os
hz = os.sysconf("SC_CLK_TCK")
up = float(open("/proc/uptime").read().split()[0])
started = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]) / hz
print(round(up - started, 2))
"""


@pytest.mark.xfail(
    strict=True,
    reason="F4, accepted residual (sandbox/prestart.py's docstring): /proc/self/stat's start time tells a warm job "
    "how long its sandbox waited; no time namespace can be set at go",
)
def test_a_job_cannot_tell_how_long_its_sandbox_waited(tmp_path: Path) -> None:
    """The pool refills when a job takes its sandbox: the next job's sandbox start time is the previous job's
    start, and its own "go" follows the previous job's end; a fresh job's process is as old as the job."""
    from sandbox.prestart import run_prestarted

    result = run_prestarted(_argv(_AGE), data={}, out_dir=tmp_path / "out", limits=_limits(), before_go=3)
    assert result.status == "ok", result.stderr
    assert float(result.stdout) < 1.5, f"the job sees its process started {result.stdout.strip()} s before it"


def test_worker_cancel_of_a_warm_run_records_the_truth(instance: Any) -> None:
    """End to end: ``keyong worker``'s loop (pool on), an operator cancels its running job. The job's row must
    not say "the run was killed" while its run went on to leave ``finished.txt`` among the recorded outputs."""
    from core import Actor
    from tests.job_worker_proc import OPERATOR, SCENARIO, licensed

    licensed(instance.registry, instance.home)
    worker = instance.worker(heartbeat_seconds=0.3)
    stop = threading.Event()
    loop = threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"poll": 0.2}, daemon=True)
    loop.start()
    try:
        deadline = time.monotonic() + 120
        # Submitted once the pool's python sandbox is ready: the job runs warm, not fresh (the pool starts with
        # the loop; a job claimed before its maintenance thread launched anything would run fresh).
        while getattr(worker, "pool", None) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.pool is not None and worker.pool.wait_warm("python", 120)
        job_id = instance.jobs.submit(OPERATOR, ["traffic"], "python", _SLOW, SCENARIO)
        while instance.jobs.show(job_id).state != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # inside its sandbox by now (the pool's python sandbox, or a fresh one)
        instance.jobs.cancel(job_id, by=Actor(OPERATOR, "operator"))
        while instance.jobs.show(job_id).state == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        loop.join(60)
    row = instance.jobs.queue.get(job_id)
    assert worker.pool is not None and worker.pool.stats["warm"] == 1, worker.pool and worker.pool.stats
    assert row.state == "cancelled" and "killed" in (row.reason or "")
    assert "finished.txt" not in [o["name"] for o in row.outputs], "killed, says the row; ran to its end, say outputs"
