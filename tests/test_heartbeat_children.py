"""The watch's backstop kills the children a run started since the job began, read from their start times
(issue 21: no scan of ``/proc`` before every job): an older child of the worker is never taken for the run's."""

from __future__ import annotations

import os
import subprocess
import time

from sandbox.heartbeat import boot_ticks, child_pids


def test_children_since_a_tick_are_those_started_in_it_or_later() -> None:
    older = subprocess.Popen(["sleep", "60"])
    try:
        time.sleep(3 / os.sysconf("SC_CLK_TCK"))  # the job begins a few clock ticks after the older child
        since = boot_ticks()
        younger = subprocess.Popen(["sleep", "60"])
        try:
            assert {older.pid, younger.pid} <= child_pids()
            found = child_pids(since)
            assert younger.pid in found and older.pid not in found
        finally:
            younger.kill()
            younger.wait()
    finally:
        older.kill()
        older.wait()
