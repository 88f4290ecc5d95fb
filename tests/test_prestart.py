"""Pre-started sandboxes (issue 21, ``sandbox.prestart``): no data before "go", separate PID namespaces,
no host path in the mount table, a dead launcher replaced with the job run fresh, limits counted from "go".

The escape suite (``tests/sandbox_escape``) runs every attack through both paths; these tests cover
what only a sandbox started ahead of demand could get wrong.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sandbox import pool as pools
from sandbox import prestart
from sandbox.kinds import run_job
from sandbox.limits import MIB, Limits
from sandbox.pool import SandboxPool
from sandbox.prestart import PRELOADS, WarmSandbox, run_prestarted, warm_argv
from sandbox.runner import sandbox_python
from tests.conftest import require_sandbox
from tests.sandbox_escape import STACK, processes_with

LIMITS = Limits(
    memory_bytes=1024 * MIB,
    cpu_seconds=10,
    wall_seconds=30,
    processes=32,
    open_files=128,
    output_bytes=16 * MIB,
    output_files=100,
    tmp_bytes=32 * MIB,
)

# Runs in the launcher before its job, as the preload does: what the sandbox could see while it waited.
SNAPSHOT = """
import json, os
seen = {name: sorted(os.listdir(name)) for name in ("/data", "/job", "/out")}
seen["mountinfo"] = open("/proc/self/mountinfo").read()
seen["uid"] = os.getuid()
with open("/tmp/before-go.json", "w") as handle:
    json.dump(seen, handle)
"""


@pytest.fixture(autouse=True)
def sandbox_required() -> None:
    require_sandbox()


def _py(code: str, *args: str) -> list[str]:
    return [sandbox_python(), "-I", "-B", "-c", textwrap.dedent(code), *args]


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "home-SECRETHOME" / "copies" / "residents" / "v3" / "residents.parquet"
    copy.parent.mkdir(parents=True)
    pd.DataFrame({"区县": ["南山", "福田", "南山"]}).to_parquet(copy)
    return copy


def test_a_warm_sandbox_sees_no_data_before_go_and_no_host_path(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    warm = WarmSandbox("python", STACK + SNAPSHOT, LIMITS)
    try:
        assert warm.wait_ready(120)
        staging = warm.box.staging
        assert sorted(os.listdir(staging / "data")) == [] and sorted(os.listdir(staging / "job")) == []
        result = warm.go(
            _py("import json, os; print(open('/tmp/before-go.json').read()); print(json.dumps(os.listdir('/data')))"),
            data={"residents": copy},
            out_dir=tmp_path / "out",
            files={"note.txt": b"x"},
        )
    finally:
        warm.discard()
    assert result.status == "ok", result.stderr
    before_line, after_line = result.stdout.strip().splitlines()
    before = json.loads(before_line)
    assert before["/data"] == [] and before["/job"] == [] and before["/out"] == []  # nothing granted while waiting
    assert before["uid"] == 65534
    assert json.loads(after_line) == ["residents.parquet"]  # staged once the job was claimed
    mountinfo = before["mountinfo"]
    for secret in ("SECRETHOME", str(copy), str(copy.parent), str(tmp_path / "out")):
        assert secret not in mountinfo
    roots = {fields[4]: fields[3] for fields in (line.split(" ") for line in mountinfo.splitlines())}
    for target in ("/data", "/out", "/etc", "/job"):
        assert roots[target] == f"{staging}/{target.strip('/')}"  # the run's neutral staging directory
    assert not staging.exists()  # discarded with its links once the job ended


def test_a_job_cannot_see_or_signal_another_warm_sandbox(tmp_path: Path) -> None:
    marker = f"keyong-other-{uuid.uuid4().hex}"
    other = WarmSandbox("python", STACK + f"# {marker}\n", LIMITS)
    try:
        assert other.wait_ready(120)
        assert processes_with(marker)  # the host sees the other launcher
        result = run_prestarted(
            _py(
                """
                import json, os, signal, sys
                mine = {int(tid) for tid in os.listdir("/proc/self/task")}  # its own threads (libraries' pools)
                seen, refused = {}, 0
                for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
                    try:
                        seen[pid] = open(f"/proc/{pid}/cmdline", "rb").read().decode("utf-8", "replace")
                    except OSError:
                        seen[pid] = "?"
                for pid in range(1, 4096):  # every pid another sandbox could have in a shared namespace
                    if pid not in mine:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            refused += 1
                print(json.dumps({"pids": sorted(seen), "other": any(sys.argv[1] in c for c in seen.values())}))
                """,
                marker,
            ),
            data={},
            out_dir=tmp_path / "out",
            limits=LIMITS,
        )
        assert result.status == "ok", (result.reason, result.stdout, result.stderr)
        seen = json.loads(result.stdout)
        assert seen["other"] is False
        assert len(seen["pids"]) <= 2  # bwrap's pid 1 and the job itself: its own PID namespace
        assert other.alive()  # the other sandbox survived every kill
        second = other.go(_py("print('still here')"), data={}, out_dir=tmp_path / "out2", files={})
        assert second.status == "ok" and second.stdout.strip() == "still here"
    finally:
        other.discard()
    assert processes_with(marker) == []


def test_a_killed_launcher_is_replaced_and_the_job_runs_fresh(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    marker = f"keyong-victim-{uuid.uuid4().hex}"
    pool = SandboxPool(LIMITS, ["python"], preloads={"python": STACK + f"# {marker}\n"}).start()
    try:
        assert pool.wait_warm("python", 120)
        launchers = [pid for pid in processes_with(marker) if b"-c" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert launchers
        for pid in launchers:
            os.kill(pid, signal.SIGKILL)  # the launcher dies while it waits (out of memory, an operator's kill)
        script = "import pandas as pd\nprint(len(pd.read_parquet('/data/residents.parquet')))\n"
        result = run_job(
            "python", script, datasets={"residents": copy}, out_dir=tmp_path / "out", limits=LIMITS, pool=pool
        )
        assert result.status == "ok", result.stderr
        assert result.stdout.strip() == "3"
        assert pool.stats["fresh"] == 1 and pool.stats["warm"] == 0 and pool.stats["gone"] >= 1
        assert pool.wait_warm("python", 120)  # replaced
        assert pool.stats["launched"] >= 2
        again = run_job(
            "python", script, datasets={"residents": copy}, out_dir=tmp_path / "out2", limits=LIMITS, pool=pool
        )
        assert again.status == "ok" and again.stdout.strip() == "3"
        assert pool.stats["warm"] == 1
    finally:
        pool.close()
    assert processes_with(marker) == []


def test_the_wall_clock_counts_from_go(tmp_path: Path) -> None:
    limits = dataclasses.replace(LIMITS, wall_seconds=2)
    result = run_prestarted(
        _py("import time; time.sleep(0.5); print('done')"),
        data={},
        out_dir=tmp_path / "out",
        limits=limits,
        before_go=3,  # longer than the wall limit: the wait before "go" is not the job's
    )
    assert result.status == "ok", (result.reason, result.stderr)
    assert result.stdout.strip() == "done"
    assert result.wall_seconds < 2
    late = run_prestarted(_py("import time; time.sleep(60)"), data={}, out_dir=tmp_path / "o2", limits=limits)
    assert late.status == "killed" and late.reason == "wall time limit 2 s exceeded"


SPIN = "import time\nstart = time.process_time()\nwhile time.process_time() - start < {seconds}:\n    pass\n"


def test_the_cpu_limit_counts_from_go(tmp_path: Path) -> None:
    limits = dataclasses.replace(LIMITS, cpu_seconds=2, wall_seconds=60)
    preload = SPIN.format(seconds=2.5)  # imports that cost more CPU than the job's whole limit
    within = run_prestarted(
        _py(SPIN.format(seconds=1)), data={}, out_dir=tmp_path / "out", limits=limits, preload=preload
    )
    assert within.status == "ok", (within.reason, within.stderr)
    assert 0.9 <= within.cpu_seconds < 2  # the job's own CPU time, not the preload's
    spinning = run_prestarted(
        _py("while True:\n    pass\n"), data={}, out_dir=tmp_path / "o2", limits=limits, preload=preload
    )
    assert spinning.status == "killed" and spinning.reason == "CPU time limit 2 s exceeded"
    # Its limit (rounded up to the next second), counted from "go": not what was left of it after the preload.
    # (The cgroup's CPU clock, which the result reports, runs a little behind RLIMIT_CPU's on a busy machine.)
    assert 1.0 <= spinning.cpu_seconds < 4.5


def test_the_job_runs_as_the_interpreter_would_run_it(tmp_path: Path) -> None:
    """sys.argv, __main__, stdin at /dev/null, exit codes and tracebacks without the launcher's frames."""
    script = textwrap.dedent(
        """
        import sys
        print(sys.argv, __name__, __file__, repr(sys.stdin.read()), sys.modules["__main__"].__file__)
        def fails():
            raise KeyError("boom")
        if sys.argv[1] == "raise":
            fails()
        sys.exit(int(sys.argv[1]))
        """
    ).encode()
    outcomes = {}
    for arg in ("0", "3", "raise"):
        outcomes[arg] = run_prestarted(
            [sandbox_python(), "-I", "-B", "/job/s.py", arg],
            data={},
            out_dir=tmp_path / f"out-{arg}",
            limits=LIMITS,
            files={"s.py": script},
        )
    assert outcomes["0"].status == "ok"
    assert outcomes["0"].stdout.strip() == "['/job/s.py', '0'] __main__ /job/s.py '' /job/s.py"
    assert outcomes["3"].status == "failed" and outcomes["3"].exit_code == 3
    raised = outcomes["raise"]
    assert raised.exit_code == 1
    assert raised.stderr.splitlines() == [
        "Traceback (most recent call last):",
        '  File "/job/s.py", line 7, in <module>',
        "    fails()",
        '  File "/job/s.py", line 5, in fails',
        '    raise KeyError("boom")',
        "KeyError: 'boom'",
    ]


def test_what_the_preload_prints_is_not_the_jobs_output(tmp_path: Path) -> None:
    preload = "import sys\nprint('import noise')\nprint('warning noise', file=sys.stderr)\n"
    result = run_prestarted(_py("print('job')"), data={}, out_dir=tmp_path / "out", limits=LIMITS, preload=preload)
    assert result.status == "ok" and result.stdout == "job\n" and result.stderr == ""


def test_a_preload_that_fails_leaves_the_job_to_a_fresh_sandbox(tmp_path: Path) -> None:
    pool = SandboxPool(LIMITS, ["python"], preloads={"python": "raise ImportError('no such library')\n"}).start()
    try:
        result = run_job("python", "print('fresh')", datasets={}, out_dir=tmp_path / "out", limits=LIMITS, pool=pool)
        assert result.status == "ok" and result.stdout.strip() == "fresh"
        assert pool.stats["warm"] == 0 and pool.stats["fresh"] == 1
    finally:
        pool.close()


def test_only_the_launchers_own_command_and_the_pools_limits_take_the_warm_path() -> None:
    python = sandbox_python()
    assert warm_argv([python, "-I", "-B", "/job/script.py", "x"]) == ["/job/script.py", "x"]
    assert warm_argv([python, "-I", "-B", "-c", "pass"]) == ["-c", "pass"]
    assert warm_argv([python, "-I", "-S", "-c", "pass"]) is None  # another flag: another interpreter state
    assert warm_argv(["/bin/sh", "-I", "-B", "x"]) is None
    assert warm_argv([python, "-I", "-B", "-m", "x"]) is None
    assert warm_argv([python, "-I", "-B"]) is None
    pool = SandboxPool(LIMITS, [])  # not started: nothing warm
    assert pool.take("python", dataclasses.replace(LIMITS, cpu_seconds=11)) is None
    assert pool.take("mitigation", LIMITS) is None


@pytest.mark.parametrize(("value", "on"), [("", True), ("1", True), ("0", False), ("off", False), ("false", False)])
def test_prestart_can_be_switched_off(monkeypatch: pytest.MonkeyPatch, value: str, on: bool) -> None:
    if value:
        monkeypatch.setenv(prestart.ENVIRONMENT, value)
    else:
        monkeypatch.delenv(prestart.ENVIRONMENT, raising=False)
    assert prestart.prestart_enabled() is on
    pool = pools.start_pool(LIMITS, kinds=[])
    try:
        assert (pool is not None) is on
    finally:
        if pool is not None:
            pool.close()


def test_the_job_ends_as_the_interpreter_would_end_it(tmp_path: Path) -> None:
    """The launcher skips tearing the preloaded libraries down, not what the job's exit does: its threads
    finish, its atexit handlers run, files it left open are flushed, ``sys.exit("...")`` says why."""
    script = textwrap.dedent(
        """
        import atexit, sys, threading, time
        handle = open("/out/unclosed.txt", "w")  # never closed: flushed at exit
        handle.write("kept " * 1000)
        atexit.register(lambda: open("/out/atexit.txt", "w").write("ran"))
        def late():
            time.sleep(0.3)
            open("/out/thread.txt", "w").write("joined")
        threading.Thread(target=late).start()
        sys.exit(sys.argv[1])
        """
    ).encode()
    for preload in (PRELOADS["dp-query"], ""):
        out = tmp_path / f"out-{len(preload)}"
        result = run_prestarted(
            [sandbox_python(), "-I", "-B", "/job/s.py", "bye"],
            data={},
            out_dir=out,
            limits=LIMITS,
            files={"s.py": script},
            preload=preload,
        )
        assert result.status == "failed" and result.exit_code == 1 and result.stderr == "bye\n"
        assert (out / "unclosed.txt").read_text() == "kept " * 1000
        assert (out / "atexit.txt").read_text() == "ran"
        assert (out / "thread.txt").read_text() == "joined"


# --- a stopped job (cancelled, or no longer the worker's) loses its own sandbox and no other (FINDINGS21b F1) ---

SLOW = "import time\ntime.sleep(20)\nopen('/out/finished.txt', 'w').write('ran to the end')\n"


def test_a_stop_kills_only_its_own_jobs_warm_sandbox(tmp_path: Path) -> None:
    """Two jobs run at once in two warm sandboxes of one pool; the stop of one kills that one only."""
    import threading

    from sandbox.supervision import STOPPED_REASON

    pool = SandboxPool(LIMITS, ["python"], per_kind=2).start()
    try:
        waited = threading.Event()
        for _ in range(1200):  # both ready (wait_warm answers for one)
            if sum(warm.ready.is_set() for warm in pool._warm.get("python", [])) == 2:
                break
            waited.wait(0.1)
        stops = [threading.Event(), threading.Event()]
        results: list[Any] = [None, None]

        def job(i: int, code: str) -> None:
            results[i] = run_job(
                "python", code, datasets={}, out_dir=tmp_path / f"out{i}", limits=LIMITS, pool=pool, stop=stops[i]
            )

        threads = [
            threading.Thread(target=job, args=(0, SLOW)),
            threading.Thread(target=job, args=(1, "import time\ntime.sleep(2)\nprint('spared')\n")),
        ]
        for thread in threads:
            thread.start()
            waited.wait(0.5)  # one take at a time: a take holds every ready sandbox of its kind while it chooses
        waited.wait(0.5)  # both are inside their sandboxes by now
        stops[0].set()
        for thread in threads:
            thread.join(60)
        stopped, spared = results
        assert pool.stats["warm"] == 2, pool.stats
        assert stopped.status == "killed" and stopped.reason == STOPPED_REASON
        assert not (tmp_path / "out0" / "finished.txt").exists()
        assert spared.status == "ok" and spared.stdout.strip() == "spared"
    finally:
        pool.close()


def test_a_cancel_seen_by_the_watch_spares_the_pools_waiting_sandboxes(tmp_path: Path) -> None:
    """The watch's kill reaches the job's warm run through its stop signal; the sandbox the pool refilled
    while the job ran (a child of this process, younger than the job) is not killed as if it were the job's."""
    from sandbox.heartbeat import watch
    from sandbox.job_views import Beat

    pool = SandboxPool(LIMITS, ["python"]).start()
    try:
        assert pool.wait_warm("python", 120)
        beats = iter([Beat(owned=True, cancel_requested=False)] * 8)

        def beat() -> Beat:  # the cancel arrives once the refill is ready (the job sleeps 20 s meanwhile)
            return next(beats) if not pool.wait_warm("python", 0) else Beat(owned=True, cancel_requested=True)

        watched = watch(
            lambda: run_job("python", SLOW, datasets={}, out_dir=tmp_path / "out", limits=LIMITS, pool=pool),
            beat,
            every=0.5,
            patience=30,
            job=1,
        )
        assert watched.stopped == "cancelled" and watched.result.status == "killed", watched.result
        assert not (tmp_path / "out" / "finished.txt").exists()
        assert pool.stats["gone"] == 0 and pool.wait_warm("python", 0), pool.stats  # the refill was spared
    finally:
        pool.close()


def test_a_stop_set_kills_a_fresh_run_too(tmp_path: Path) -> None:
    """The same mechanism for a fresh sandbox (no pool): the run is killed with the stop's reason."""
    import threading

    from sandbox.supervision import STOPPED_REASON

    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    result = run_job("python", SLOW, datasets={}, out_dir=tmp_path / "out", limits=LIMITS, stop=stop)
    assert result.status == "killed" and result.reason == STOPPED_REASON
    assert not (tmp_path / "out" / "finished.txt").exists()


# Two processes, each under the limit (1.5 s of 2 s) and together over it.
TWO_SPINNERS = """
import os, time
pid = os.fork()
start = time.process_time()
while time.process_time() - start < 1.5:
    pass
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(2)
open("/out/finished.txt", "w").write("ran to the end")
"""


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "fresh"])
def test_the_cpu_limit_holds_over_all_of_a_jobs_processes(tmp_path: Path, warm: bool) -> None:
    """The job's processes together, counted in its cgroup from "go" (FINDINGS21b F2): RLIMIT_CPU holds each
    process alone, and a warm launcher's includes its imports."""
    limits = dataclasses.replace(LIMITS, cpu_seconds=2, wall_seconds=60)
    argv = _py(TWO_SPINNERS)
    out = tmp_path / "out"
    if warm:
        result = run_prestarted(argv, data={}, out_dir=out, limits=limits, preload=SPIN.format(seconds=2.5))
    else:
        from sandbox.runner import run

        result = run(argv, data={}, out_dir=out, limits=limits)
    assert result.status == "killed" and result.reason == "CPU time limit 2 s exceeded", (result.reason, result.stderr)
    assert not (out / "finished.txt").exists()
