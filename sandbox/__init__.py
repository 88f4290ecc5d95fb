"""Job queue and workers, the isolated runner, job kinds, the export guard and the release
workflow (DESIGN.md). Built by issues 6 and 7.

The runner (``sandbox.runner``) executes untrusted code under bubblewrap: fresh namespaces, only the
interpreter and the granted desensitized copies mounted read-only, no network but loopback, uid
65534 with no capabilities, a seccomp filter, rlimits and cgroup limits. ``sandbox.kinds`` turns a
``sql`` or ``python`` job into a run. Keyong never runs a job unsandboxed: ``SandboxUnavailable``.
"""

from sandbox.kinds import KINDS, run_job
from sandbox.limits import Limits
from sandbox.runner import RunResult, SandboxUnavailable, check_sandbox, run

__all__ = ["KINDS", "Limits", "RunResult", "SandboxUnavailable", "check_sandbox", "run", "run_job"]
