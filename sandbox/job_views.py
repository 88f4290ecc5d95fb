"""Jobs as their readers see them, and the small records the queue hands to workers and quotas.

**One operator view** (:meth:`JobView.for_operator`): the API and the console show an operator only
judged content (原始数据不出域, 数据可用不可见; 双鸭山 第三十五条).

Nothing here imports the ORM at module level: ``keyong job show`` builds these views from rows read
without it (``sandbox.job_reads``, issue 21), and :func:`job_view` takes any object with a job row's
attributes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandbox.guard.findings import operator_findings
from sandbox.job_states import JobState

if TYPE_CHECKING:
    from sandbox.models import JobRow

#: What an operator reads as the reason of a blocked job: the findings say why, nothing else does.
BLOCKED_REASON = "blocked by the export guard; see the findings"

#: What an operator reads of a job held because its access is closed (双鸭山 第三十一条: 中断调用服务).
HELD_REASON = (
    "held: the operator's access is suspended (双鸭山 第三十一条); the job's outputs and log are "
    "delivered once the agency restores it"
)

#: What an operator reads of a job while the platform is frozen (an incident, 双鸭山 第六十一条): a job that
#: was running finishes and is judged, but what it made does not leave until the platform is unfrozen.
FROZEN_REASON = (
    "held: the platform is frozen (an incident, 双鸭山 第六十一条); the job's outputs and log are "
    "delivered once it is unfrozen"
)


def hold_of(operator: str, suspended: Collection[str], frozen: bool) -> str:
    """Why nothing a job of ``operator`` made reaches it now ('' when it may): the platform is frozen, or
    the operator is suspended. A freeze stops egress, and a job's outputs and log excerpt are a way out
    as a release is (the red team, issue 22: a job finishing during a freeze showed them)."""
    if frozen:
        return FROZEN_REASON
    return HELD_REASON if operator in suspended else ""


_EXIT_STATUS = re.compile(r"exit (status|code) -?\d+")


def shown_verdict(state: str, verdict: str | None) -> str | None:
    """The verdict every view shows: ``pass`` only on a ``done`` job (issue 15, principle 5).

    ``pass`` means the platform accounted for every output of a finished run; a job that failed,
    was cancelled or never ran has no such claim, so a stored ``pass`` there reads as no verdict
    (in views, counts and charts alike). ``review`` and ``block`` stay: a rule fired.
    """
    if verdict == "pass" and state != JobState.DONE.value:
        return None
    return verdict


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as the host administrator sees it (the code itself is fetched separately).

    The agency and regulators read this full view too; an operator reads :meth:`for_operator`.
    """

    id: int
    operator: str
    licence_id: int | None
    kind: str
    datasets: dict[str, Any]
    scenario: str
    code_sha256: str
    spec_sha256: str
    state: str
    verdict: str | None
    attempts: int
    max_attempts: int
    worker: str | None
    claimed_at: datetime | None
    heartbeat_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    reason: str | None
    resources: dict[str, Any] | None
    outputs: list[dict[str, Any]]
    created_at: datetime
    cancel_requested: bool
    findings: list[dict[str, Any]] = field(default_factory=list)
    log_excerpt: str | None = None
    #: Why nothing it made is delivered now ('' when it is): its operator is suspended (the queue holds it
    #: if queued) or the platform is frozen (:func:`hold_of`).
    held: str = ""
    #: The operator's title and stated purpose (用途), '' when none was given (issue 18).
    title: str = ""
    purpose: str = ""

    def for_operator(self) -> JobView:
        """The job as its operator may see it: judged content only (issue 15, principle 5).

        原始数据不出域, 数据可用不可见 (双鸭山 第三十五条): what reaches an operator is what the export
        guard judged, nothing more. This is the one owner of that rule: the HTTP API
        (``operators.jobs_api.remote_view``) and the console both call it.

        * ``block``: no log, no output names, sizes or hashes, no exit code, no resources, and a
          generic reason. A blocked job's names, sizes and log are themselves channels out (names
          built from keys, a DuckDB error echoing cells), and its resources and exit code a covert
          one. The findings stay: they name rules and places, never the offending values.
        * otherwise, outputs only once the guard has judged them (a verdict), by name, size and hash,
          never their path; the log only as the guard stored it (it decides whether an excerpt may
          exist at all).
        * findings with the rule's fixed text, once per rule and output (``sandbox.guard.operator_findings``):
          a job chooses the counts and positions a finding's detail would state.
        * a failed job shows no exit code (the state says it failed) nor the exit status the run's
          reason quotes: an exit status is 8 bits the operator chooses.
        * dataset grants by version only, never where the copy lies.
        * ``held`` (its operator is suspended now, 双鸭山 第三十一条: 中断调用服务): a queued job waits, a
          running one may finish (the guard judges it and the agency sees everything), but no output
          name, size, hash or log reaches the operator until the agency restores it; the reason says so.
          The verdict and the rules' fixed findings stay: they hold no data.

        The agency, regulators and the host administrator keep the full view.
        """
        datasets = {
            name: {"version": spec.get("version")} if isinstance(spec, Mapping) else {}
            for name, spec in self.datasets.items()
        }
        shown = replace(self, findings=operator_findings(self.findings))
        if self.verdict == "block":
            return replace(
                shown,
                datasets=datasets,
                outputs=[],
                log_excerpt=None,
                exit_code=None,
                reason=BLOCKED_REASON,
                resources=None,
            )
        if self.held and self.state in (JobState.QUEUED.value, JobState.RUNNING.value, JobState.DONE.value):
            return replace(shown, datasets=datasets, outputs=[], log_excerpt=None, reason=self.held)
        from sandbox.ledger_payloads import manifest_of  # the ORM's column widths: not on a host's read path

        outputs = manifest_of(self.outputs) if self.verdict is not None else []
        if self.state == JobState.FAILED.value:
            reason = _EXIT_STATUS.sub("a non-zero exit status", self.reason) if self.reason else self.reason
            return replace(shown, datasets=datasets, outputs=outputs, exit_code=None, reason=reason)
        return replace(shown, datasets=datasets, outputs=outputs)

    def as_json(self) -> dict[str, Any]:
        """The ``keyong job show`` document (DESIGN.md); ``log`` is the guard's redacted excerpt."""
        stamp = {
            key: (value.isoformat() if value is not None else None)
            for key, value in (
                ("created_at", self.created_at),
                ("claimed_at", self.claimed_at),
                ("heartbeat_at", self.heartbeat_at),
                ("started_at", self.started_at),
                ("finished_at", self.finished_at),
            )
        }
        return {
            "job": self.id,
            "state": self.state,
            "verdict": self.verdict,
            "findings": [dict(f) for f in self.findings],
            "log": self.log_excerpt,
            "outputs": [dict(o) for o in self.outputs],
            "reason": self.reason,
            "resources": self.resources,
            "exit_code": self.exit_code,
            "operator": self.operator,
            "licence": self.licence_id,
            "kind": self.kind,
            "datasets": self.datasets,
            "scenario": self.scenario,
            "code_sha256": self.code_sha256,
            "spec_sha256": self.spec_sha256,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "worker": self.worker,
            "cancel_requested": self.cancel_requested,
            "title": self.title,
            "purpose": self.purpose,
            **stamp,
        }


def job_view(row: JobRow, *, held: str = "") -> JobView:
    """The view of ``row``; ``held``: why nothing it made is delivered now (the queue knows, the row does not)."""
    return JobView(
        id=row.id,
        operator=row.operator,
        licence_id=row.licence_id,
        kind=row.kind,
        datasets=dict(row.datasets or {}),
        scenario=row.scenario,
        code_sha256=row.code_sha256,
        spec_sha256=row.spec_sha256,
        state=row.state,
        verdict=shown_verdict(row.state, row.verdict),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        worker=row.worker,
        claimed_at=row.claimed_at,
        heartbeat_at=row.heartbeat_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        exit_code=row.exit_code,
        reason=row.reason,
        resources=dict(row.resources) if row.resources is not None else None,
        outputs=[dict(o) for o in (row.outputs or [])],
        created_at=row.created_at,
        cancel_requested=row.cancel_requested,
        findings=[dict(f) for f in (row.findings or [])],
        log_excerpt=row.log_excerpt,
        held=held,
        title=row.title or "",
        purpose=row.purpose or "",
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a worker needs to run a claimed job: its view, its code and the attempt it holds."""

    job: JobView
    code: str

    @property
    def attempt(self) -> int:
        return self.job.attempts


@dataclass(frozen=True, slots=True)
class Beat:
    """A heartbeat's answer: is the job still this worker's, and has a cancel been asked for."""

    owned: bool
    cancel_requested: bool


@dataclass(frozen=True, slots=True)
class Usage:
    """An operator's consumption, for the quotas of ``operators.jobs``."""

    active: int  # queued or running
    submitted: int  # admitted (not refused) since the window start
    cpu_seconds: float  # CPU of jobs ended since the window start


@dataclass(frozen=True, slots=True)
class JobDraft:
    """A job as submitted, before the queue gives it an id: queued or kept as refused alike."""

    operator: str
    licence_id: int | None
    kind: str
    datasets: Mapping[str, Mapping[str, Any]]  # name -> {"version", "path"} (declared or granted)
    scenario: str
    code: str
    code_sha256: str
    spec_sha256: str
    #: The operator's title and stated purpose (issue 18); not part of the spec hash (they change no result).
    title: str = ""
    purpose: str = ""


__all__ = ["BLOCKED_REASON", "Beat", "Claimed", "JobDraft", "JobView", "Usage", "job_view", "shown_verdict"]
