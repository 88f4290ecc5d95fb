"""Job queue and workers, the isolated runner, job kinds, the export guard and the release
workflow (DESIGN.md). Built by issues 6 and 7.

The runner (``sandbox.runner``) executes untrusted code under bubblewrap: fresh namespaces, only the
interpreter and the granted desensitized copies mounted read-only, no network but loopback, uid
65534 with no capabilities, a seccomp filter, rlimits and cgroup limits. ``sandbox.kinds`` names
the job kinds (:class:`JobKind`, the one definition) and turns a job into a run. The worker
(``sandbox.worker``) asks the registry through :class:`RegistryPort`. Keyong never runs a job
unsandboxed: ``SandboxUnavailable``.

The face loads on first use (``core.LazyFace``): the job views, states and the ORM-free reads of the
``jobs`` table (``keyong job show``, ``keyong job list``) come alone; any other name loads the whole
face as an import did before, so the job and release tables register together and no read path
imports the runner, bubblewrap's machinery, DuckDB or pandas (issue 21).
"""

from typing import TYPE_CHECKING, Any

from core import LazyFace

if TYPE_CHECKING:
    from sandbox.copy_cache import CopyStager, CopyUnreadableError
    from sandbox.guard import GuardConfig
    from sandbox.holds import jobs_using, licence_copies_in_use, releases_using
    from sandbox.job_reads import read_job, read_jobs
    from sandbox.job_states import JobState
    from sandbox.job_usage import job_counts
    from sandbox.job_views import JobDraft, JobView, shown_verdict
    from sandbox.kinds import DP_KINDS, KINDS, JobKind, run_job
    from sandbox.ledger_payloads import manifest_of
    from sandbox.limits import Limits
    from sandbox.mitigation import Mitigation
    from sandbox.models import MAX_PURPOSE, MAX_TITLE
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
    from sandbox.queue import JobQueue
    from sandbox.release import Releases
    from sandbox.release_models import Decision, ReleaseState, SignOff
    from sandbox.roster import LIVE_WITHIN, LiveWorker, WorkerRoster
    from sandbox.runner import RunResult, SandboxUnavailable, check_sandbox, run
    from sandbox.sdc import TOP_NAMES, TOTAL_NAMES, check_table, count_columns
    from sandbox.stored_keys import SandboxKeys
    from sandbox.worker import Worker, sandbox_unavailable_error

__all__ = [
    "ASK_REGISTRY",
    "DP_KINDS",
    "KINDS",
    "LIVE_WITHIN",
    "MAX_PURPOSE",
    "MAX_TITLE",
    "TOP_NAMES",
    "TOTAL_NAMES",
    "Ask",
    "Blocked",
    "CopyStager",
    "CopyUnreadableError",
    "Decision",
    "Fingerprints",
    "GuardConfig",
    "JobDraft",
    "JobKind",
    "JobQueue",
    "JobState",
    "JobView",
    "Limits",
    "LiveWorker",
    "Mitigation",
    "RegistryHooks",
    "RegistryPort",
    "ReleaseState",
    "Released",
    "Releases",
    "RunResult",
    "RunResultLike",
    "Runner",
    "SandboxKeys",
    "SandboxUnavailable",
    "SignOff",
    "Workdir",
    "Worker",
    "WorkerRoster",
    "check_sandbox",
    "check_table",
    "count_columns",
    "job_counts",
    "jobs_using",
    "licence_copies_in_use",
    "manifest_of",
    "read_job",
    "read_jobs",
    "releases_using",
    "run",
    "run_job",
    "sandbox_unavailable_error",
    "shown_verdict",
]

#: Each module of this face -> the names it gives.
_NAMES: dict[str, str] = {
    "sandbox.copy_cache": "CopyStager CopyUnreadableError",
    "sandbox.guard": "GuardConfig",
    "sandbox.holds": "jobs_using licence_copies_in_use releases_using",
    "sandbox.job_states": "JobState",
    "sandbox.job_usage": "job_counts",
    "sandbox.job_views": "JobDraft JobView shown_verdict",
    "sandbox.job_reads": "read_job read_jobs",
    "sandbox.kinds": "DP_KINDS KINDS JobKind run_job",
    "sandbox.ledger_payloads": "manifest_of",
    "sandbox.limits": "Limits",
    "sandbox.mitigation": "Mitigation",
    "sandbox.models": "MAX_PURPOSE MAX_TITLE",
    "sandbox.ports": (
        "ASK_REGISTRY Ask Blocked Fingerprints RegistryHooks RegistryPort Released Runner RunResultLike Workdir"
    ),
    "sandbox.queue": "JobQueue",
    "sandbox.release": "Releases",
    "sandbox.release_models": "Decision ReleaseState SignOff",
    "sandbox.roster": "LIVE_WITHIN LiveWorker WorkerRoster",
    "sandbox.runner": "RunResult SandboxUnavailable check_sandbox run",
    "sandbox.sdc": "TOP_NAMES TOTAL_NAMES check_table count_columns",
    "sandbox.stored_keys": "SandboxKeys",
    "sandbox.worker": "Worker sandbox_unavailable_error",
}

_FACE = LazyFace("sandbox", _NAMES, alone=("sandbox.job_states", "sandbox.job_views", "sandbox.job_reads"))


def __getattr__(name: str) -> Any:
    return _FACE.load(name)
