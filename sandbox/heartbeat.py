"""A job's run, watched: heartbeats while it runs, and the run killed when the job is no longer ours.

Why (``sandbox.worker``): while a job runs the worker heartbeats every few seconds; a heartbeat that
finds the job no longer its own (reaped) or cancelled kills the run. A worker that cannot heartbeat
for half of ``stale_after`` kills its run itself before the reaper may hand the job to another
worker, so one job never runs twice at once.

How the run is killed: the job's thread gets its own stop event (:data:`sandbox.supervision.STOP`);
the watchdog supervising that run, fresh or pre-started, kills exactly that sandbox once it is set.
Which children of this process are the run's cannot be read from ``/proc``: a pre-started sandbox
predates its job, and the pool refills while a job runs (FINDINGS21b F1). Killing the children started
since the job began remains as a backstop for runners that start other processes; it spares the pool's
idle sandboxes (:func:`sandbox.supervision.idle_pids`). "Since the job began" is read from the children's
start times (``/proc/PID/stat`` field 22, clock ticks since boot) when a kill is due, not from a scan of
``/proc`` before every job (issue 21: that scan cost ~8 ms of a worker's CPU per job on a host with a
hundred processes); a child started in the job's first tick is counted as the job's, and the only other
children a worker has, its idle pre-started sandboxes, are spared whatever their age.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sandbox.queue import Beat
from sandbox.supervision import STOP, idle_pids

log = logging.getLogger("keyong.worker")

#: Why the worker killed a run: cancelled on request, or the job is no longer this worker's.
Stopped = Literal["cancelled", "lost"]


@dataclass
class Watched:
    """How a watched run ended: its result, or the exception it raised, and why it was killed (if it was)."""

    result: Any = None
    error: BaseException | None = None
    stopped: Stopped | None = None


def boot_ticks() -> int:
    """Now, in the clock ticks since boot that ``/proc/PID/stat`` counts a process's start time in."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def child_pids(since: int | None = None) -> set[int]:
    """Direct children of this process (Linux ``/proc``): the runs a worker may have to kill; with ``since``
    (:func:`boot_ticks`), only those started in that tick or later."""
    me = os.getpid()
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 19 and fields[1] == str(me) and (since is None or int(fields[19]) >= since):
            found.add(int(entry.name))
    return found


def kill(pids: set[int]) -> None:
    """SIGKILL each pid; a run started in its own session loses its whole process group."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:  # a run started in its own session: take its whole group
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)


def watch(
    target: Callable[[], Any],
    heartbeat: Callable[[], Beat],
    *,
    every: float,
    patience: float,
    job: int,
) -> Watched:
    """Run ``target`` in a thread, calling ``heartbeat`` every ``every`` seconds until it returns.

    A beat that says the job is no longer owned or was cancelled kills the run; so does failing to
    beat for more than ``patience`` seconds (the database is away: the job may be reaped meanwhile).
    """
    watched = Watched()
    stop = threading.Event()

    def run() -> None:
        STOP.set(stop)  # this thread's context only: the sandbox supervised here is this job's
        try:
            watched.result = target()
        except BaseException as exc:  # reported by the caller, in the worker's thread
            watched.error = exc

    since = boot_ticks()
    thread = threading.Thread(target=run, name=f"job-{job}", daemon=True)
    thread.start()
    last_beat = time.monotonic()
    while thread.is_alive():
        thread.join(every)
        if not thread.is_alive():
            break
        try:
            beat = heartbeat()
            last_beat = time.monotonic()
        except Exception as exc:  # the database is away: keep running while the job is surely ours
            log.warning("job %s: heartbeat failed: %s", job, exc)
            if time.monotonic() - last_beat > patience and watched.stopped is None:
                watched.stopped = "lost"
                _stop_run(stop, since)
            continue
        if watched.stopped is None and (not beat.owned or beat.cancel_requested):
            watched.stopped = "cancelled" if beat.owned else "lost"
            _stop_run(stop, since)
    return watched


def _stop_run(stop: threading.Event, since: int) -> None:
    """Kill the job's run: its own watchdog kills its sandbox; other processes the runner started since
    the job began die too, but never a pre-started sandbox still waiting for another job."""
    stop.set()
    kill(child_pids(since) - idle_pids())


__all__ = ["Stopped", "Watched", "boot_ticks", "child_pids", "kill", "watch"]
