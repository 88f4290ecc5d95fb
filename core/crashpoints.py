"""Named crash points: where a test may have the process ``kill -9`` itself between two steps (issue 17).

Why: a multi-step write (files, rows, ledger entries) is only crash-safe if each gap between its
steps has been crossed by a real ``SIGKILL`` and the next start found the home whole. A test sets
:data:`ENVIRONMENT` in a child process's environment to one point's name; when the child reaches
that point it sends itself ``SIGKILL`` (no ``finally``, no ``atexit``, as an OOM kill or a power cut).

The hook is inert unless that variable is set in the process's own environment, which only whoever
starts the process controls: no request, setting file or database value can reach it (``Settings``
reads ``KEYONG_*`` variables, but this one is no field of it and is read nowhere else).
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENVIRONMENT", "crash_point"]

ENVIRONMENT = "KEYONG_TEST_CRASH_AT"


def crash_point(*names: str) -> None:
    """``SIGKILL`` this process if a test asked for a crash at one of ``names``; otherwise nothing."""
    wanted = os.environ.get(ENVIRONMENT)
    if wanted and wanted in names:
        os.kill(os.getpid(), signal.SIGKILL)
