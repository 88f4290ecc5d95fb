"""A job's run, watched: heartbeats while it runs, and the run killed when the job is no longer ours.

Why (``sandbox.worker``): while a job runs the worker heartbeats every few seconds; a heartbeat that
finds the job no longer its own (reaped) or cancelled kills the run. A worker that cannot heartbeat
for half of ``stale_after`` kills its run itself before the reaper may hand the job to another
worker, so one job never runs twice at once.

How the run is killed: the job's thread gets its own stop event (:data:`sandbox.supervision.STOP`);
the watchdog supervising that run, fresh or pre-started, kills exactly that sandbox once it is set.
Which children of this process are the run's cannot be read from ``/proc``: a pre-started sandbox
predates its job, and the pool refills while a job runs (FINDINGS21b F1). The ``/proc`` diff (children
started since the job began) remains as a backstop for runners that start other processes; it spares
the pool's idle sandboxes (:func:`sandbox.supervision.idle_pids`).
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


def child_pids() -> set[int]:
    """Direct children of this process (Linux ``/proc``): the runs a worker may have to kill."""
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
        if len(fields) > 1 and fields[1] == str(me):
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

    before = child_pids()
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
                _stop_run(stop, before)
            continue
        if watched.stopped is None and (not beat.owned or beat.cancel_requested):
            watched.stopped = "cancelled" if beat.owned else "lost"
            _stop_run(stop, before)
    return watched


def _stop_run(stop: threading.Event, before: set[int]) -> None:
    """Kill the job's run: its own watchdog kills its sandbox; other processes the runner started since
    the job began die too, but never a pre-started sandbox still waiting for another job."""
    stop.set()
    kill(child_pids() - before - idle_pids())


__all__ = ["Stopped", "Watched", "child_pids", "kill", "watch"]
