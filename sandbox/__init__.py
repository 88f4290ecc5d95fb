"""Job queue and workers, the isolated runner, job kinds, the export guard and the release
workflow (DESIGN.md). Built by issues 6 and 7.

The runner (``sandbox.runner``) executes untrusted code under bubblewrap: fresh namespaces, only the
interpreter and the granted desensitized copies mounted read-only, no network but loopback, uid
65534 with no capabilities, a seccomp filter, rlimits and cgroup limits. ``sandbox.kinds`` names
the job kinds (:class:`JobKind`, the one definition) and turns a job into a run. The worker
(``sandbox.worker``) asks the registry through :class:`RegistryPort`. Keyong never runs a job
unsandboxed: ``SandboxUnavailable``.
"""

from sandbox.kinds import DP_KINDS, KINDS, JobKind, run_job
from sandbox.limits import Limits
from sandbox.ports import (
    ASK_REGISTRY,
    Ask,
    Blocked,
    Fingerprints,
    RegistryHooks,
    RegistryPort,
    Released,
    Runner,
    RunResultLike,
    Workdir,
)
from sandbox.runner import RunResult, SandboxUnavailable, check_sandbox, run
from sandbox.worker import Worker

__all__ = [
    "ASK_REGISTRY",
    "DP_KINDS",
    "KINDS",
    "Ask",
    "Blocked",
    "Fingerprints",
    "JobKind",
    "Limits",
    "RegistryHooks",
    "RegistryPort",
    "Released",
    "RunResult",
    "RunResultLike",
    "Runner",
    "SandboxUnavailable",
    "Workdir",
    "Worker",
    "check_sandbox",
    "run",
    "run_job",
]
