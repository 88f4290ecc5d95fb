"""Which runner a worker runs jobs with, and what it is called: the sandbox's, checked, or none.

Why apart from :mod:`sandbox.worker`: that module holds the worker's loop and a job's path through it;
choosing the runner is a start-up concern (the sandbox's self-test starts bubblewrap once, and a worker
without a sandbox claims nothing). :mod:`sandbox.worker` re-exports these names.
"""

from __future__ import annotations

import os
import socket
import uuid

from sandbox.ports import Runner


def sandbox_unavailable_error() -> type[Exception] | None:
    """``sandbox.runner.SandboxUnavailable``, or ``None`` while the runner module is not installed."""
    try:
        from sandbox.runner import SandboxUnavailable
    except ImportError:
        return None
    return SandboxUnavailable


def sandboxed_runner() -> Runner:
    """The real runner, after the sandbox's self-test; raises ``SandboxUnavailable`` (or ImportError) if it fails."""
    from sandbox.kinds import run_job
    from sandbox.runner import check_sandbox

    check_sandbox()
    return run_job


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


__all__ = ["default_worker_id", "sandbox_unavailable_error", "sandboxed_runner"]
