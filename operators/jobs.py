"""Job submission: the licence scope first, then the operator's quotas, then the queue.

Rules:

* The registry's scope check runs before anything is queued (双鸭山 第三十一条, 黑龙江 第二十七条:
  超范围 / 超目的调用 are refused at once and recorded as violations — the registry records those
  itself). The refused job is kept as a ``refused`` row with the reason, so ``keyong job show``
  explains it, and ``job.refused`` goes to the ledger.
* Per-operator quotas (jobs running or queued, jobs and CPU seconds per rolling 24 hours) keep one
  operator from exhausting the shared workers; a quota refusal is not a violation.
* The code and the spec are stored with the job; their SHA-256 go to the ledger (the code never
  does: it may embed anything the operator typed).
* ``dp-query`` and ``dp-train`` need the privacy-budget accounting of issue 8; until then they are
  refused with that reason rather than run without the platform charging ε.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from registry import Actor, Registry, RegistryError, ScopeRefusedError
from registry.changes import Change, actor_of
from sandbox.queue import JobQueue, JobView

KINDS = ("sql", "python")
LATER_KINDS = {"dp-query": "issue 8 (diffprivlib queries)", "dp-train": "issue 8 (opacus DP-SGD training)"}
MAX_CODE_BYTES = 1_000_000
QUOTA_WINDOW = timedelta(hours=24)


class JobRefusedError(RegistryError):
    """A submission was refused; ``job`` is the id of the ``refused`` row kept to explain it (if any)."""

    def __init__(self, refusal: str, reason: str, job: int | None = None) -> None:
        super().__init__(reason if job is None else f"job {job} refused: {reason}")
        self.refusal = refusal
        self.reason = reason
        self.job = job


@dataclass(frozen=True, slots=True)
class Quotas:
    """Per-operator limits; the instance settings give the values (defaults here for library use)."""

    concurrent: int = 4  # jobs queued or running at once
    per_day: int = 200  # jobs admitted per rolling 24 hours
    cpu_seconds_per_day: float = 3600.0  # CPU seconds of jobs ended in the rolling 24 hours


def sha256_hex(data: str | bytes) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def spec_of(operator: str, kind: str, datasets: list[str], scenario: str, code_sha256: str) -> dict[str, Any]:
    """The job's declaration, the thing a ``spec_sha256`` proves; versions are added once granted."""
    return {
        "operator": operator,
        "kind": kind,
        "datasets": sorted(datasets),
        "scenario": scenario,
        "code_sha256": code_sha256,
    }


def canonical_sha256(value: Any) -> str:
    return sha256_hex(json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")))


class Jobs:
    """Submission, and the views over the queue an operator or the host uses."""

    def __init__(self, registry: Registry, queue: JobQueue, quotas: Quotas | None = None) -> None:
        self.registry = registry
        self.queue = queue
        self.quotas = quotas or Quotas()

    def submit(
        self,
        operator: str,
        datasets: Iterable[str],
        kind: str,
        code: str,
        scenario: str,
        *,
        by: Actor | Any = None,
    ) -> int:
        """Queue a job of ``operator``, or raise :class:`JobRefusedError` (or ``RegistryError`` for bad input).

        ``by`` defaults to the operator itself (the CLI's ``--operator`` names who acts).
        """
        actor = actor_of(by) if by is not None else Actor(operator, "operator")
        names = sorted({name.strip() for name in datasets if name and name.strip()})
        kind = kind.strip()
        scenario = scenario.strip()
        if not names:
            raise RegistryError("a job must name the datasets it uses")
        if not scenario:
            raise RegistryError("a job must declare its application scenario (应用场景)")
        if not code.strip():
            raise RegistryError("the job's code is empty")
        if len(code.encode("utf-8")) > MAX_CODE_BYTES:
            raise RegistryError(f"the job's code exceeds {MAX_CODE_BYTES:,} bytes")
        code_sha256 = sha256_hex(code)
        spec = spec_of(operator, kind, names, scenario, code_sha256)
        spec_sha256 = canonical_sha256(spec)
        declared = {name: {"version": None, "path": None} for name in names}

        def refuse(refusal: str, reason: str, licence_id: int | None = None) -> JobRefusedError:
            with self.registry.recorder.change(actor) as change:
                job = self.queue.record_refused(
                    change,
                    operator=operator,
                    licence_id=licence_id,
                    kind=kind,
                    datasets=declared,
                    scenario=scenario,
                    code=code,
                    code_sha256=code_sha256,
                    spec_sha256=spec_sha256,
                    refusal=refusal,
                    reason=reason,
                )
            return JobRefusedError(refusal, reason, job)

        if kind in LATER_KINDS:
            raise refuse(
                "kind",
                f"{kind} jobs need the platform's privacy-budget accounting, which comes with {LATER_KINDS[kind]}; "
                f"submit {' or '.join(KINDS)} for now",
            )
        if kind not in KINDS:
            raise RegistryError(f"unknown job kind {kind!r}: use one of {', '.join(KINDS)}")

        # 1. The licence: refusals are violations the registry commits and ledgers itself.
        try:
            grant = self.registry.licences.check_scope(
                operator, names, scenario, subject=f"job-spec:{spec_sha256}", by=actor
            )
        except ScopeRefusedError as exc:
            raise refuse(f"scope:{exc.kind}", exc.reason) from None
        granted = {d.name: {"version": d.version, "path": d.path} for d in grant.datasets}

        # 2. Quotas and 3. the queue, in one transaction, so two submissions cannot both take the last slot.
        with self.registry.recorder.change(actor) as change:
            self._serialize(change, operator)
            exceeded = self._quota_exceeded(change, operator)
            if exceeded is None:
                return self.queue.enqueue(
                    change,
                    operator=operator,
                    licence_id=grant.licence_id,
                    kind=kind,
                    datasets=granted,
                    scenario=scenario,
                    code=code,
                    code_sha256=code_sha256,
                    spec_sha256=spec_sha256,
                )
        raise refuse("quota", exceeded, grant.licence_id)

    @staticmethod
    def _serialize(change: Change, operator: str) -> None:
        """Submissions of one operator one at a time (SQLite's BEGIN IMMEDIATE already is)."""
        session = change.session
        if session.get_bind().dialect.name == "postgresql":
            key = zlib.crc32(f"keyong-jobs:{operator}".encode()) & 0x7FFFFFFF
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def _quota_exceeded(self, change: Change, operator: str) -> str | None:
        now: datetime = self.queue.clock()
        usage = self.queue.usage(change.session, operator, now - QUOTA_WINDOW)
        q = self.quotas
        if usage.active >= q.concurrent:
            return (
                f"quota: operator {operator!r} already has {usage.active} jobs queued or running "
                f"(limit {q.concurrent}); wait for one to end"
            )
        if usage.submitted >= q.per_day:
            return (
                f"quota: operator {operator!r} submitted {usage.submitted} jobs in the last 24 hours "
                f"(limit {q.per_day})"
            )
        if usage.cpu_seconds >= q.cpu_seconds_per_day:
            return (
                f"quota: operator {operator!r} used {usage.cpu_seconds:.0f} CPU seconds in the last 24 hours "
                f"(limit {q.cpu_seconds_per_day:.0f})"
            )
        return None

    # --- views --------------------------------------------------------------------------------

    def show(self, job_id: int, *, viewer: Actor | None = None) -> JobView:
        return self.queue.get(job_id, viewer=viewer)

    def cancel(self, job_id: int, *, by: Actor) -> JobView:
        return self.queue.cancel(job_id, by=by)

    def list(
        self, *, viewer: Actor | None = None, operator: str | None = None, state: str | None = None
    ) -> list[JobView]:
        return self.queue.list(viewer=viewer, operator=operator, state=state)


__all__ = ["KINDS", "LATER_KINDS", "JobRefusedError", "Jobs", "Quotas", "canonical_sha256", "sha256_hex", "spec_of"]
