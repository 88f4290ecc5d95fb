"""The durable job queue: rows of ``jobs`` claimed by workers, every state change ledgered.

Why these rules:

* **Never two workers on one job.** On PostgreSQL a claim is ``SELECT … FOR UPDATE SKIP LOCKED
  LIMIT 1`` and the row is marked ``running`` in the same transaction, so workers on many machines
  skip each other's rows instead of waiting on them (DESIGN.md, Scale-out). On SQLite the claim runs
  in the ledger's ``BEGIN IMMEDIATE`` write transaction (one writer at a time) and the update is
  conditional (``WHERE id = … AND state = 'queued'``, checked by its row count).
* **Never lost.** A worker proves it is alive by heartbeats; :meth:`JobQueue.reap` returns a running
  job whose heartbeat is older than ``stale_after`` to the queue while attempts remain, and fails it
  with reason ``worker lost`` otherwise.
* **Fenced.** Heartbeats and the end of a job are accepted only from the worker holding the current
  attempt, so a worker that was given up on cannot overwrite what its successor records.
* **Every change in the ledger** (双鸭山 第二十条: usage logs kept ≥ 3 years) in the same transaction as
  the change, with ids, hashes and reasons — never the code nor any data.
* **Bounded ledger payloads** (issue 15, "Never wedge"). The ledger refuses a payload over 64 KiB,
  and a job decides how many outputs it writes and how long their names are, so a payload that
  copied the manifest could make the end of a job unrecordable and leave it ``running``. The row
  keeps the full record (manifest, findings, reason) for the 3 years 第二十条 asks; the ledger holds
  counts and the SHA-256 of the canonical JSON of each (:func:`canonical_sha256`), so anyone can
  recompute the hashes from the row and prove it was not rewritten. Every other text or list an
  operator controls (reasons, scenarios, dataset lists) is cut to a fixed length the same way.
* **One operator view** (:meth:`JobView.for_operator`): the API and the console show an operator only
  judged content (原始数据不出域, 数据可用不可见; 双鸭山 第三十五条).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import Actor, Change, NotFoundError, Recorder, RegistryError, require_role, utcnow
from ledger import EntryError, canonical_json
from registry.models import LicenceRow, OperatorRow
from registry.vocabulary import LicenceState, Qualification
from sandbox.guard.findings import operator_findings
from sandbox.models import JobRow, JobState

#: The actor of acts the platform takes by itself: claims, heartbeats, ends, reaping.
SYSTEM_ROLE = "system"
REAPER = Actor("keyong:reaper", SYSTEM_ROLE)
WORKER_LOST = "worker lost"

#: A free text an operator can make long (reasons, refusals that echo its input) is cut to this many
#: characters in a ledger payload; the row keeps it whole.
MAX_LEDGER_TEXT = 1000
#: A scenario as the ledger keeps it (the column holds 200; a refused submission may declare more).
MAX_LEDGER_SCENARIO = 256
#: A JSON value an operator shapes (a refused job's dataset list, resources) is ledgered as is up to
#: this many bytes of canonical JSON, and as its digest beyond.
MAX_LEDGER_JSON = 4096
#: A finished job's findings are counted per rule; at most this many rules are named, the most
#: frequent first, each name cut to MAX_RULE_CHARS (rule names are short fixed identifiers).
MAX_RULE_COUNTS = 64
MAX_RULE_CHARS = 64
#: What an operator reads as the reason of a blocked job: the findings say why, nothing else does.
BLOCKED_REASON = "blocked by the export guard; see the findings"
#: The keys of one output in the ledgered manifest and in every remote view: never its path.
MANIFEST_KEYS = ("name", "bytes", "sha256")

_EXIT_STATUS = re.compile(r"exit (status|code) -?\d+")
_LENIENT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_sha256(value: Any) -> str:
    """SHA-256 (hex) of ``value``'s canonical JSON: the ledger's own (``ledger.canonical_json``).

    Sorted keys, ``separators=(",", ":")``, ``ensure_ascii=False``, UTF-8 — what a regulator writes
    in a few lines of any language to check a ledgered digest against the row it stands for. A value
    canonical JSON refuses (a NaN) is hashed as Python's ``json`` writes it instead of failing the
    record: ending a job must never raise over its content (issue 15, "Never wedge").
    """
    try:
        data = canonical_json(value)
    except EntryError:
        data = _LENIENT_JSON.encode(value).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def bounded_text(text: str | None, limit: int = MAX_LEDGER_TEXT) -> str | None:
    """``text`` for a ledger payload: whole up to ``limit`` characters, else cut with a marker.

    The marker names how much was cut and the SHA-256 of the whole UTF-8 text, which the row keeps
    (第二十条), so the ledger still proves what the row says.
    """
    if text is None or len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"{text[:limit]}… [{len(text) - limit} more characters; sha256 {digest}]"


def bounded_json(value: Any, limit: int = MAX_LEDGER_JSON) -> Any:
    """``value`` for a ledger payload when its canonical JSON fits ``limit`` bytes, else its digest.

    The digest is ``{"sha256", "bytes"}`` of the canonical JSON (:func:`canonical_sha256`), so a
    regulator recomputes it from the row.
    """
    try:
        size = len(canonical_json(value))
    except EntryError:
        size = limit + 1
    if size <= limit:
        return value
    return {"sha256": canonical_sha256(value), "bytes": len(_LENIENT_JSON.encode(value).encode("utf-8"))}


def _fit_scenario(scenario: str) -> str:
    """A declared scenario as the row's column holds it (``VARCHAR(200)``; PostgreSQL refuses more).

    A queued job's scenario is one its licence grants, so it fits; a refused submission may declare
    any text, and refusing to record the refusal would lose it. Beyond the column the row keeps the
    start and the SHA-256 of the whole (:func:`bounded_text`).
    """
    width = JobRow.__table__.c.scenario.type.length or 200
    if len(scenario) <= width:
        return scenario
    cut = bounded_text(scenario, max(0, width - 110)) or ""
    return cut[:width]


def manifest_of(outputs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The outputs manifest as it is hashed and shown remotely: name, size and hash, never the path."""
    return [{key: o[key] for key in MANIFEST_KEYS if key in o} for o in outputs]


def manifest_digest(outputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the ledger holds of a job's outputs, whatever their number and names (issue 15).

    ``count``, total ``bytes`` and the ``sha256`` of the canonical JSON of :func:`manifest_of` the
    outputs in their recorded order; the row's ``outputs`` keep the manifest itself.
    """
    total = 0
    for o in outputs:
        try:
            total += int(o.get("bytes") or 0)
        except (TypeError, ValueError):
            continue
    return {"count": len(outputs), "bytes": total, "sha256": canonical_sha256(manifest_of(outputs))}


def _top_counts(values: Iterable[Any], *, cap: int, chars: int) -> tuple[dict[str, int], int]:
    """Counts per value, the most frequent ``cap`` of them (names cut to ``chars``), and how many were left out."""
    counts: Counter[str] = Counter(str(v)[:chars] for v in values)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked[:cap]), max(0, len(ranked) - cap)


def findings_digest(findings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the ledger holds of the export guard's findings: counts per rule and severity, and a hash.

    ``sha256`` is over the canonical JSON of the findings exactly as the row keeps them, so the
    verdict's grounds stay provable (第二十条) without the ledger growing with the job's output.
    ``rules_omitted`` says how many distinct rules beyond :data:`MAX_RULE_COUNTS` were not named.
    """
    rules, omitted = _top_counts((f.get("rule") for f in findings), cap=MAX_RULE_COUNTS, chars=MAX_RULE_CHARS)
    severities, _ = _top_counts((f.get("severity") for f in findings), cap=8, chars=16)
    digest: dict[str, Any] = {
        "count": len(findings),
        "rules": rules,
        "severities": severities,
        "sha256": canonical_sha256([dict(f) for f in findings]),
    }
    if omitted:
        digest["rules_omitted"] = omitted
    return digest


def shown_verdict(state: str, verdict: str | None) -> str | None:
    """The verdict every view shows: ``pass`` only on a ``done`` job (issue 15, principle 5).

    ``pass`` means the platform accounted for every output of a finished run; a job that failed,
    was cancelled or never ran has no such claim, so a stored ``pass`` there reads as no verdict
    (in views, counts and charts alike). ``review`` and ``block`` stay: a rule fired.
    """
    if verdict == "pass" and state != JobState.DONE.value:
        return None
    return verdict


def worker_actor(worker: str) -> Actor:
    return Actor(f"keyong:worker:{worker}", SYSTEM_ROLE)


class JobError(RegistryError):
    """A job operation was refused (unknown job, wrong state); the message says why."""


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
            **stamp,
        }


def _view(row: JobRow) -> JobView:
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


class JobQueue:
    """The queue over the ``jobs`` table; every method is one ledgered transaction (or joins the caller's)."""

    def __init__(self, recorder: Recorder, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.recorder = recorder
        self.clock = clock

    # --- submission (inside the caller's change) ----------------------------------------------

    def enqueue(self, change: Change, draft: JobDraft, *, max_attempts: int = 2) -> int:
        """Add a queued job in ``change`` (the submitter's transaction) and ledger ``job.queued``."""
        if max_attempts < 1:
            raise JobError("max_attempts must be at least 1")
        row = self._insert(change, draft)
        row.state = JobState.QUEUED.value
        row.max_attempts = max_attempts
        change.session.flush()
        change.log(
            "job.queued",
            f"job:{row.id}",
            {
                "operator": draft.operator,
                "licence": draft.licence_id,
                "kind": draft.kind,
                "datasets": bounded_json({name: spec.get("version") for name, spec in draft.datasets.items()}),
                "scenario": bounded_text(draft.scenario, MAX_LEDGER_SCENARIO),
                "code_sha256": draft.code_sha256,
                "spec_sha256": draft.spec_sha256,
            },
        )
        return row.id

    def record_refused(self, change: Change, draft: JobDraft, *, refusal: str, reason: str) -> int:
        """Keep a refused job as a row in state ``refused``, so ``keyong job show`` explains the refusal.

        What a refusal echoes is the operator's own input (dataset names, a scenario, a reason quoting
        them), unchecked by any licence: the ledger gets it bounded, the row keeps it whole.
        """
        row = self._insert(change, draft)
        row.state = JobState.REFUSED.value
        row.reason = reason
        row.finished_at = self.clock()
        change.session.flush()
        change.log(
            "job.refused",
            f"job:{row.id}",
            {
                "operator": draft.operator,
                "kind": draft.kind,
                "refusal": bounded_text(refusal, MAX_LEDGER_SCENARIO),
                "reason": bounded_text(reason),
                "datasets": bounded_json(sorted(draft.datasets)),
                "scenario": bounded_text(draft.scenario, MAX_LEDGER_SCENARIO),
                "code_sha256": draft.code_sha256,
                "spec_sha256": draft.spec_sha256,
            },
        )
        return row.id

    def _insert(self, change: Change, draft: JobDraft) -> JobRow:
        row = JobRow(
            operator=draft.operator,
            licence_id=draft.licence_id,
            kind=draft.kind,
            datasets={name: dict(spec) for name, spec in draft.datasets.items()},
            scenario=_fit_scenario(draft.scenario),
            code=draft.code,
            code_sha256=draft.code_sha256,
            spec_sha256=draft.spec_sha256,
            attempts=0,
            cancel_requested=False,
            outputs=[],
            created_at=self.clock(),
        )
        change.session.add(row)
        return row

    def usage(self, session: Session, operator: str, since: datetime) -> Usage:
        """What ``operator`` uses now and has used since ``since`` (read in the submitter's transaction)."""
        active = session.scalar(
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.operator == operator, JobRow.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
        )
        submitted = session.scalar(
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.operator == operator, JobRow.created_at >= since, JobRow.state != JobState.REFUSED.value)
        )
        # JSON extraction differs between the databases; a day's ended jobs are few, so sum them here.
        resources = session.scalars(
            select(JobRow.resources).where(
                JobRow.operator == operator, JobRow.finished_at >= since, JobRow.resources.is_not(None)
            )
        ).all()
        cpu = sum(float((r or {}).get("cpu") or 0.0) for r in resources)
        return Usage(active=int(active or 0), submitted=int(submitted or 0), cpu_seconds=cpu)

    # --- workers ------------------------------------------------------------------------------

    def claim(self, worker: str) -> Claimed | None:
        """Take the oldest queued job for ``worker`` and mark it running, or ``None`` when none is queued.

        A queued job whose licence is no longer active, or whose operator was suspended, since it
        was admitted is failed here instead of run (双鸭山 第三十一条: access closes at once), and
        the next one is taken.
        """
        actor = worker_actor(worker)
        with self.recorder.change(actor) as change:
            session = change.session
            while True:
                query = (
                    select(JobRow.id)
                    .where(JobRow.state == JobState.QUEUED.value)
                    .order_by(JobRow.created_at, JobRow.id)
                    .limit(1)
                )
                if session.get_bind().dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                job_id = session.scalar(query)
                if job_id is None:
                    return None
                now = self.clock()
                # Conditional on the state: on SQLite this is the single-writer check, on PostgreSQL a
                # second guard behind the row lock.
                result = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.state == JobState.QUEUED.value)
                    .values(
                        state=JobState.RUNNING.value,
                        worker=worker,
                        attempts=JobRow.attempts + 1,
                        claimed_at=now,
                        heartbeat_at=now,
                        started_at=now,
                    ),
                    execution_options={"synchronize_session": False},
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    return None
                row = session.get(JobRow, job_id, populate_existing=True)
                assert row is not None
                lapsed = self._lapsed(session, row)
                if lapsed is not None:
                    row.state = JobState.FAILED.value
                    row.reason = lapsed
                    row.finished_at = now
                    change.log(
                        "job.failed",
                        f"job:{row.id}",
                        {"worker": worker, "attempt": row.attempts, "reason": bounded_text(lapsed)},
                    )
                    session.flush()
                    continue
                change.log(
                    "job.started",
                    f"job:{row.id}",
                    {
                        "worker": worker,
                        "attempt": row.attempts,
                        "code_sha256": row.code_sha256,
                        "spec_sha256": row.spec_sha256,
                    },
                )
                return Claimed(_view(row), row.code)

    def _lapsed(self, session: Session, row: JobRow) -> str | None:
        """Why the licence no longer admits this job, or ``None`` while it still does."""
        licence = session.get(LicenceRow, row.licence_id) if row.licence_id is not None else None
        if licence is None:
            return "the job has no licence"
        if licence.state != LicenceState.ACTIVE.value:
            return f"licence {licence.id} is {licence.state} since the job was admitted; it may not run"
        if licence.valid_until < self.clock().date():
            return f"licence {licence.id} ended on {licence.valid_until}; the job may not run"
        operator = session.get(OperatorRow, licence.operator_id)
        if operator is None or operator.qualification != Qualification.QUALIFIED.value:
            return f"operator {row.operator!r} was suspended since the job was admitted (双鸭山 第三十一条)"
        return None

    def heartbeat(self, job_id: int, worker: str, attempt: int) -> Beat:
        """Prove ``worker`` still runs ``job_id``; the answer says whether it still may and should.

        Heartbeats are not ledgered: they carry no decision, and one every few seconds per job would
        drown the ledger; the start and the end of every attempt are.
        """
        with self.recorder.change(worker_actor(worker)) as change:
            session = change.session
            result = session.execute(
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.worker == worker,
                    JobRow.attempts == attempt,
                    JobRow.state == JobState.RUNNING.value,
                )
                .values(heartbeat_at=self.clock()),
                execution_options={"synchronize_session": False},
            )
            owned = result.rowcount == 1  # type: ignore[attr-defined]
            cancel = bool(session.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id)))
        return Beat(owned=owned, cancel_requested=cancel)

    def release(self, job_id: int, worker: str, attempt: int, *, reason: str) -> bool:
        """Give a claimed job back untouched (the sandbox turned out unavailable): the attempt is not counted."""
        with self.recorder.change(worker_actor(worker)) as change:
            row = self._owned(change.session, job_id, worker, attempt)
            if row is None:
                return False
            row.state = JobState.QUEUED.value
            row.worker = None
            row.attempts = max(0, row.attempts - 1)
            row.claimed_at = row.heartbeat_at = row.started_at = None
            change.log(
                "job.requeued",
                f"job:{job_id}",
                {"worker": worker, "attempt": attempt, "reason": bounded_text(reason)},
            )
            return True

    def finish(
        self,
        job_id: int,
        worker: str,
        attempt: int,
        *,
        state: JobState | str,
        exit_code: int | None = None,
        reason: str | None = None,
        resources: Mapping[str, Any] | None = None,
        outputs: Sequence[Mapping[str, Any]] = (),
        verdict: str | None = None,
        findings: Sequence[Mapping[str, Any]] = (),
        log_excerpt: str | None = None,
    ) -> JobView | None:
        """Record the end of ``worker``'s attempt; ``None`` when the job is no longer its own (reaped).

        ``verdict`` and ``findings`` are the export guard's. The row keeps everything (manifest,
        findings, reason: 第二十条, logs kept ≥ 3 years); the ledger entry holds the verdict, the
        outputs' :func:`manifest_digest`, the findings' :func:`findings_digest` and the reason cut to
        :data:`MAX_LEDGER_TEXT`, so its size does not depend on what the job produced and the end of
        a job is always recordable (issue 15, "Never wedge").
        """
        final = JobState(state)
        if final not in (JobState.DONE, JobState.FAILED, JobState.CANCELLED):
            raise JobError(f"a run ends done, failed or cancelled, not {final}")
        with self.recorder.change(worker_actor(worker)) as change:
            row = self._owned(change.session, job_id, worker, attempt)
            if row is None:
                return None
            row.state = final.value
            row.exit_code = exit_code
            row.reason = reason
            row.resources = dict(resources) if resources is not None else None
            row.outputs = [dict(o) for o in outputs]
            row.verdict = verdict
            row.findings = [dict(f) for f in findings]
            row.log_excerpt = log_excerpt
            row.finished_at = self.clock()
            action = {JobState.DONE: "job.finished", JobState.FAILED: "job.failed"}.get(final, "job.cancelled")
            change.log(
                action,
                f"job:{job_id}",
                {
                    "worker": worker,
                    "attempt": attempt,
                    "state": final.value,
                    "exit_code": exit_code,
                    "reason": bounded_text(reason),
                    "resources": bounded_json(row.resources),
                    "outputs": manifest_digest(row.outputs),
                    "verdict": bounded_text(verdict, 16),
                    "findings": findings_digest(row.findings),
                },
            )
            change.session.flush()
            return _view(row)

    @staticmethod
    def _owned(session: Session, job_id: int, worker: str, attempt: int) -> JobRow | None:
        query = select(JobRow).where(
            JobRow.id == job_id,
            JobRow.worker == worker,
            JobRow.attempts == attempt,
            JobRow.state == JobState.RUNNING.value,
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        return session.scalar(query)

    def reap(self, stale_after: timedelta) -> builtins.list[JobView]:
        """Requeue (attempts left) or fail (``worker lost``) every running job with a stale heartbeat."""
        cutoff = self.clock() - stale_after
        with self.recorder.change(REAPER) as change:
            session = change.session
            query = (
                select(JobRow)
                .where(JobRow.state == JobState.RUNNING.value, JobRow.heartbeat_at < cutoff)
                .order_by(JobRow.id)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            reaped: builtins.list[JobView] = []
            for row in session.scalars(query).all():
                lost = {"worker": row.worker, "attempt": row.attempts, "heartbeat_at": row.heartbeat_at.isoformat()}
                if row.cancel_requested:
                    row.state = JobState.CANCELLED.value
                    row.reason = f"cancelled; {WORKER_LOST}"
                    row.finished_at = self.clock()
                    change.log("job.cancelled", f"job:{row.id}", {**lost, "reason": row.reason})
                elif row.attempts < row.max_attempts:
                    row.state = JobState.QUEUED.value
                    row.worker = None
                    row.claimed_at = row.heartbeat_at = row.started_at = None
                    change.log("job.requeued", f"job:{row.id}", {**lost, "reason": WORKER_LOST})
                else:
                    row.state = JobState.FAILED.value
                    row.reason = WORKER_LOST
                    row.finished_at = self.clock()
                    change.log("job.failed", f"job:{row.id}", {**lost, "reason": WORKER_LOST})
                reaped.append(_view(row))
            session.flush()
            return reaped

    # --- operators and the host ---------------------------------------------------------------

    def cancel(self, job_id: int, *, by: Actor) -> JobView:
        """Cancel a queued job at once; ask the worker of a running one to kill it.

        The operator may cancel its own jobs, the agency (and the host administrator) any job; a
        regulator changes nothing (DESIGN.md, Roles).
        """
        require_role(by, "operator", "agency")
        with self.recorder.change(by) as change:
            row = self._visible(change.session, job_id, by, lock=True)
            state = JobState(row.state)
            if state.ended:
                raise JobError(f"job {job_id} has already ended ({state}); nothing to cancel")
            if state is JobState.QUEUED:
                row.state = JobState.CANCELLED.value
                row.reason = f"cancelled by {by.name}"
                row.finished_at = self.clock()
                row.cancel_requested = True
                change.log("job.cancelled", f"job:{job_id}", {"from": state.value})
            elif not row.cancel_requested:
                row.cancel_requested = True
                change.log("job.cancel_requested", f"job:{job_id}", {"worker": row.worker, "attempt": row.attempts})
            change.session.flush()
            return _view(row)

    def get(self, job_id: int, *, viewer: Actor | None = None) -> JobView:
        with self.recorder.read() as session:
            return _view(self._visible(session, job_id, viewer or Actor.host()))

    def code(self, job_id: int, *, viewer: Actor | None = None) -> str:
        with self.recorder.read() as session:
            return self._visible(session, job_id, viewer or Actor.host()).code

    def list(
        self,
        *,
        viewer: Actor | None = None,
        operator: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> builtins.list[JobView]:
        """Newest first; an operator sees its own jobs only (DESIGN.md, Roles)."""
        who = viewer or Actor.host()
        query = select(JobRow).order_by(JobRow.id.desc()).limit(max(1, min(limit, 10_000)))
        if who.role == "operator":
            if operator not in (None, who.name):
                raise NotFoundError(f"no operator named {operator!r} is visible to you")
            operator = who.name
        else:
            require_role(who, "agency", "regulator", SYSTEM_ROLE)
        if operator:
            query = query.where(JobRow.operator == operator)
        if state:
            query = query.where(JobRow.state == JobState(state).value)
        with self.recorder.read() as session:
            return [_view(row) for row in session.scalars(query).all()]

    @staticmethod
    def _visible(session: Session, job_id: int, viewer: Actor, *, lock: bool = False) -> JobRow:
        query = select(JobRow).where(JobRow.id == job_id)
        if lock and session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        row = session.scalar(query)
        # An operator never learns that another operator's job exists.
        if row is None or (viewer.role == "operator" and row.operator != viewer.name):
            raise NotFoundError(f"no job {job_id}")
        if viewer.role not in ("operator", "agency", "regulator", SYSTEM_ROLE) and not viewer.is_host:
            raise NotFoundError(f"no job {job_id}")
        return row


__all__ = [
    "BLOCKED_REASON",
    "MAX_LEDGER_TEXT",
    "REAPER",
    "WORKER_LOST",
    "Beat",
    "Claimed",
    "JobDraft",
    "JobError",
    "JobQueue",
    "JobView",
    "Usage",
    "bounded_json",
    "bounded_text",
    "canonical_sha256",
    "findings_digest",
    "manifest_digest",
    "manifest_of",
    "shown_verdict",
    "worker_actor",
]
