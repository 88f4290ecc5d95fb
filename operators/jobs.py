"""Job submission: the person's standing first, then the licence scope, then the operator's quotas, then the queue.

Rules:

* The person who submits must stand (issue 22; SATRE 3.2.02, 1.5.02, 1.6.04): an identity check recorded, the
  current terms of use accepted, a training not expired (``registry.people``). Otherwise the job is refused with
  the reason, kept as a ``refused`` row (``standing:identity_check|terms|training``) and recorded as a security
  event; it is not a violation (nobody did a deliberate act).
* The registry's scope check runs before anything is queued (双鸭山 第三十一条, 黑龙江 第二十七条:
  超范围 / 超目的调用 are refused at once and recorded as violations — the registry records those
  itself, and warns before the last one allowed). The refused job is kept as a ``refused`` row with
  the reason, so ``keyong job show`` explains it, and ``job.refused`` goes to the ledger.
* Violations are for deliberate acts: a job kind, dataset or scenario the platform does not know is a
  usage error with a suggestion (:class:`JobUsageError`, 422 over HTTP), never a violation; an
  unknown dataset or scenario is still kept as a ``refused`` row (``usage:unknown_…``).
* Quotas (jobs running or queued, jobs and CPU seconds per rolling 24 hours) keep one operator from
  exhausting the shared workers: the operator's (allocated by the agency, else the instance default),
  then its licence's where the agency allocated one (``operators.quotas``, SATRE 2.3.03); a quota
  refusal names the quota, the use and the limit, and is not a violation.
* The code and the spec are stored with the job; their SHA-256 go to the ledger (the code never
  does: it may embed anything the operator typed).
* ``dp-query`` and ``dp-train`` (issue 8) take a JSON spec over exactly one dataset. The platform
  resolves it against the catalog's public facts (``dp.plans``: bounds, domains, the person
  key; nothing from the data), stores the resolved plan as the job's code, and charges the spec's
  (ε, δ) to the licence's budget in the transaction that queues the job — before any worker can
  claim it (``registry.budgets``). A spec the catalog cannot answer, or one the remaining budget
  cannot pay for, is refused with the reason kept on a ``refused`` row. A DP job runs at most once:
  a retry would draw fresh noise over the same data without paying for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import text

from core import Actor, Change, RegistryError, UsageError, actor_of, invisible_character, require_role
from dp import (
    Cost,
    DatasetFacts,
    DpSpecError,
    cost_of,
    cost_of_plan,
    facts_from_catalog,
    parse_spec,
    plan,
)
from operators.job_outputs import JobOutput, read_output
from operators.quotas import QuotaBook
from registry import (
    BudgetExhaustedError,
    Quotas,
    Registry,
    ScopeGrant,
    ScopeRefusedError,
    SecurityEventKind,
    UnknownNameError,
    did_you_mean,
    person_standing,
    require_not_frozen,
    suggest,
)
from sandbox import DP_KINDS, KINDS, MAX_PURPOSE, MAX_TITLE, JobDraft, JobKind, JobQueue, JobView

logger = logging.getLogger("keyong.jobs")

MAX_CODE_BYTES = 1_000_000


class JobRefusedError(RegistryError):
    """A submission was refused; ``job`` is the id of the ``refused`` row kept to explain it (if any)."""

    def __init__(self, refusal: str, reason: str, job: int | None = None) -> None:
        super().__init__(reason if job is None else f"job {job} refused: {reason}")
        self.refusal = refusal
        self.reason = reason
        self.job = job


class JobUsageError(JobRefusedError, UsageError):
    """A submission named a dataset or scenario the platform does not know: refused, kept, never a violation."""

    def __init__(self, refusal: str, reason: str, job: int | None = None, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(refusal, reason, job)
        self.suggestions = suggestions


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


def _declared(operator: str, datasets: Iterable[str], kind: str, code: str, scenario: str) -> JobDraft:
    """The job as its operator declared it, before any licence is consulted; bad input is a ``RegistryError``.

    Not yet admitted: no licence, no dataset versions or paths. A refusal keeps this as the job's row.
    """
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
    return JobDraft(
        operator=operator,
        licence_id=None,
        kind=kind,
        datasets={name: {"version": None, "path": None} for name in names},
        scenario=scenario,
        code=code,
        code_sha256=code_sha256,
        spec_sha256=canonical_sha256(spec_of(operator, kind, names, scenario, code_sha256)),
    )


def _stated(title: str, purpose: str) -> tuple[str, str]:
    """The job's title (one line) and purpose (用途) as kept, or a ``UsageError`` saying what is wrong.

    Why a purpose at all: 双鸭山 第三十五条 licenses data for a declared use; the operator's own words for
    this job's use are what a reviewer weighs against the licence's scenario (issue 18).
    """
    title, purpose = (title or "").strip(), (purpose or "").strip()
    if len(title) > MAX_TITLE:
        raise UsageError(f"the job's title exceeds {MAX_TITLE} characters")
    if invisible_character(title) is not None:
        raise UsageError("the job's title is one line of visible characters")
    if len(purpose) > MAX_PURPOSE:
        raise UsageError(f"the job's purpose exceeds {MAX_PURPOSE} characters")
    if invisible_character(purpose, multiline=True) is not None:
        raise UsageError("the job's purpose holds an invisible character")
    return title, purpose


class Jobs:
    """Submission, and the views over the queue an operator or the host uses."""

    def __init__(self, registry: Registry, queue: JobQueue, quotas: Quotas | None = None) -> None:
        self.registry = registry
        self.queue = queue
        self.quotas = quotas or Quotas()  # the instance default; the agency may allocate others
        self.book = QuotaBook(registry, queue, self.quotas)

    def submit(
        self,
        operator: str,
        datasets: Iterable[str],
        kind: str,
        code: str,
        scenario: str,
        *,
        by: Actor | Any = None,
        title: str = "",
        purpose: str = "",
    ) -> int:
        """Queue a job of ``operator``, or raise :class:`JobRefusedError` (or ``RegistryError`` for bad input).

        ``by`` defaults to the operator itself (the CLI's ``--operator`` names who acts). ``title`` and
        ``purpose`` (用途, issue 18) are the operator's own words, kept with the job and ledgered with it.
        """
        actor = actor_of(by) if by is not None else Actor(operator, "operator")
        with self.registry.recorder.read() as session:  # an incident's freeze refuses intake before any check
            require_not_frozen(session, "job submission")
        # What was declared: a refusal keeps this as the job's row.
        stated_title, stated_purpose = _stated(title, purpose)
        draft = replace(_declared(operator, datasets, kind, code, scenario), title=stated_title, purpose=stated_purpose)
        names, kind, scenario = list(draft.datasets), draft.kind, draft.scenario

        def refuse(refusal: str, reason: str, licence_id: int | None = None) -> JobRefusedError:
            # ``draft`` as it stands when refused: after DP planning it holds the plan, as the queued job would.
            return self._refused(actor, replace(draft, licence_id=licence_id), refusal, reason)

        _require_known_kind(kind)
        self._require_standing(actor, draft)
        dp = kind in DP_KINDS
        if dp:
            if len(names) != 1:
                raise refuse("dp-spec", f"a {kind} job runs over exactly one dataset (--dataset), not {len(names)}")
            try:
                spec = parse_spec(kind, code)
            except DpSpecError as exc:
                raise refuse("dp-spec", str(exc)) from None

        # 1. The licence: refusals are violations the registry commits and ledgers itself.
        grant = self._scope(actor, draft)
        queued = replace(
            draft,
            licence_id=grant.licence_id,
            # The licence's copy (issue 23): its path, and its id so the guard probes its per-licence pseudonyms.
            # A dataset granted jointly adds its link group and person key: the guard joins the group's copies.
            datasets={d.name: d.job_spec() for d in grant.datasets},
        )

        cost: Cost | None = None
        if dp:
            # The platform's plan replaces the operator's spec as what runs; its hash is what the ledger proves.
            try:
                resolved = plan(kind, spec, self.facts(names[0], grant.datasets[0].version))
            except DpSpecError as exc:
                raise refuse("dp-spec", str(exc), grant.licence_id) from None
            cost = cost_of(spec)
            code = json.dumps(resolved, ensure_ascii=False, sort_keys=True, indent=1)
            code_sha256 = sha256_hex(code)
            spec_sha256 = canonical_sha256(spec_of(operator, kind, names, scenario, code_sha256))
            # A refusal from here on (budget, quota) keeps the plan, as the queued job would.
            draft = replace(draft, code=code, code_sha256=code_sha256, spec_sha256=spec_sha256)
            queued = replace(queued, code=code, code_sha256=code_sha256, spec_sha256=spec_sha256)

        def charge(change: Change, job: int) -> None:
            if cost is not None:
                self.registry.budgets.charge(
                    change, grant.licence_id, names[0], epsilon=cost.epsilon, delta=cost.delta, subject=f"job:{job}"
                )

        # 2. Quotas, 3. the budget and 4. the queue, in one transaction, so two submissions cannot both
        # take the last slot or the last of a budget.
        try:
            job, exceeded = self._enqueue(actor, queued, max_attempts=1 if dp else 2, then=charge)
        except BudgetExhaustedError as exc:
            raise refuse("budget", exc.reason, grant.licence_id) from None
        if job is None:
            raise refuse("quota", exceeded or "quota exceeded", grant.licence_id)
        return job

    def _require_standing(self, actor: Actor, draft: JobDraft) -> None:
        """The person who submits must stand: identity checked, current terms accepted, training not expired
        (SATRE 3.2.02, 1.5.02, 1.6.04; :mod:`registry.people`). The host acting for an operator (``--operator``)
        submits for the operator's login, the principal of its name. A refusal is kept as a ``refused`` row
        and is a security event, not a violation: nobody did a deliberate act."""
        person = actor.name if actor.role == "operator" else draft.operator
        with self.registry.recorder.read() as session:
            standing = person_standing(session, person, self.registry.config.now().date())
        if not standing.ok:
            refusal = f"standing:{standing.refusal}"
            refused = self._refused(actor, draft, refusal, f"{person!r} may not submit jobs: {standing.reason}")
            self._security_event(actor, refusal, SecurityEventKind.STANDING_REFUSED)
            raise refused

    def _scope(self, actor: Actor, draft: JobDraft) -> ScopeGrant:
        """The registry's scope check of the declared job; a refusal keeps the draft as a ``refused`` row.

        A name the platform does not know is a usage error (:class:`JobUsageError`), never a violation.
        """
        try:
            return self.registry.licences.check_scope(
                draft.operator, list(draft.datasets), draft.scenario, subject=f"job-spec:{draft.spec_sha256}", by=actor
            )
        except UnknownNameError as exc:  # a typo: kept as a refused row, never a violation
            with self.registry.recorder.change(actor) as change:
                kept = self.queue.record_refused(change, draft, refusal=f"usage:{exc.kind}", reason=exc.reason)
            raise JobUsageError(f"usage:{exc.kind}", exc.reason, kept, exc.suggestions) from None
        except ScopeRefusedError as exc:
            refused = self._refused(actor, draft, f"scope:{exc.kind}", exc.reason)
            self._security_event(actor, f"scope:{exc.kind}")
            raise refused from None

    def _security_event(
        self, actor: Actor, detail: str, kind: SecurityEventKind = SecurityEventKind.SCOPE_REFUSED
    ) -> None:
        """A scope or standing refusal is also a security event (SATRE 2.5.03), whichever way the job came in."""
        try:
            self.registry.security.record(
                kind,
                source=None,
                principal=actor.name,
                route="job submission",
                detail=detail,
            )
        except Exception:  # the refusal stands and is ledgered; only its security-event count is lost
            logger.exception("could not record a job refusal as a security event")

    def _refused(self, actor: Actor, draft: JobDraft, refusal: str, reason: str) -> JobRefusedError:
        """Keep the refused submission as a ``refused`` row (ledgered as ``job.refused``) and say why."""
        with self.registry.recorder.change(actor) as change:
            job = self.queue.record_refused(change, draft, refusal=refusal, reason=reason)
        return JobRefusedError(refusal, reason, job)

    def _enqueue(
        self, actor: Actor, draft: JobDraft, *, max_attempts: int, then: Callable[[Change, int], None] | None = None
    ) -> tuple[int | None, str | None]:
        """``(job, None)`` once queued (and ``then`` run in the same transaction), or ``(None, why)`` over quota."""
        with self.registry.recorder.change(actor) as change:
            self._serialize(change, draft.operator)
            exceeded = self.book.exceeded(change, draft.operator, draft.licence_id)
            if exceeded is not None:
                return None, exceeded
            job = self.queue.enqueue(change, draft, max_attempts=max_attempts)
            if then is not None:
                then(change, job)
            return job, None

    def mitigate(
        self, job_id: int, *, suppress: bool = False, round_base: int | None = None, by: Actor | Any = None
    ) -> int:
        """Queue a ``mitigation`` job over ``job_id``'s outputs (issue 7: apply ACRO's mitigations, re-check).

        Only the job's own operator (or the host) may; the job must have ended ``done`` with a verdict.
        The licence is checked again (a mitigation is a new job under it) and quotas apply.
        """
        from sandbox import Mitigation

        actor = actor_of(by) if by is not None else Actor.host()
        with self.registry.recorder.read() as session:  # as submit: the freeze refuses before the licence check
            require_not_frozen(session, "job intake (a mitigation)")  # ledgers an admission otherwise
        source = self.queue.get(job_id, viewer=actor)
        if actor.role == "operator" and not actor.is_host and source.operator != actor.name:
            raise RegistryError(f"job {job_id} is not yours")
        if source.state != "done" or source.verdict is None or not source.outputs:
            raise RegistryError(f"job {job_id} has no judged outputs to mitigate (state {source.state})")
        if source.kind in DP_KINDS:
            raise RegistryError("DP answers are protected by their noise; they are not suppressed or rounded")
        try:
            mitigation = Mitigation(source_job=job_id, suppress=suppress, round_base=round_base)
        except ValueError as exc:
            raise RegistryError(str(exc)) from None
        code = mitigation.as_code()
        code_sha256 = sha256_hex(code)
        names = sorted(source.datasets)
        spec_sha256 = canonical_sha256(
            spec_of(source.operator, JobKind.MITIGATION.value, names, source.scenario, code_sha256)
        )
        with self.registry.recorder.read() as session:  # a mitigation is a new job: its person must stand too
            standing = person_standing(
                session, actor.name if actor.role == "operator" else source.operator, self.registry.config.now().date()
            )
        if not standing.ok:
            raise JobRefusedError(f"standing:{standing.refusal}", standing.reason)
        try:
            grant = self.registry.licences.check_scope(
                source.operator, names, source.scenario, subject=f"job-spec:{spec_sha256}", by=actor
            )
        except ScopeRefusedError as exc:
            raise JobRefusedError(f"scope:{exc.kind}", exc.reason) from None
        job, exceeded = self._enqueue(
            actor,
            JobDraft(
                operator=source.operator,
                licence_id=grant.licence_id,
                kind=JobKind.MITIGATION.value,
                datasets=source.datasets,  # the source's versions: the guard probes the same fingerprints
                scenario=source.scenario,
                code=code,
                code_sha256=code_sha256,
                spec_sha256=spec_sha256,
            ),
            max_attempts=1,
        )
        if job is None:
            raise JobRefusedError("quota", exceeded or "quota exceeded")
        return job

    def facts(self, dataset: str, version: int | None) -> DatasetFacts:
        """The catalog's public facts about ``dataset``'s granted desensitized version (for DP plans)."""
        view = self.registry.catalog.get(dataset)
        chosen = next((v for v in view.versions if v.version == version), None)
        if chosen is None:
            chosen = next((v for v in reversed(view.versions) if v.kind == "desensitized"), None)
        if chosen is None:
            raise DpSpecError(f"dataset {dataset!r} has no desensitized version")
        return facts_from_catalog(
            dataset,
            chosen.version,
            chosen.rows,
            [str(c.get("name")) for c in chosen.columns],
            [i.model_dump() for i in view.items],
        )

    def cost(
        self, kind: str | None, text: str, *, operator: str | None = None, dataset: str | None = None
    ) -> dict[str, Any]:
        """What a DP spec would cost, before it runs (``keyong job cost FILE``); nothing is charged.

        With ``operator`` and ``dataset``: the remaining budget and whether the request fits; for a
        dp-train spec also the noise multiplier, sample rate and steps the platform would use.
        """
        from dp import kind_of_spec

        try:
            kind = kind or kind_of_spec(text)
            spec = parse_spec(kind, text)
            cost = cost_of(spec)
            resolved = plan(kind, spec, self.facts(dataset, None)) if dataset else None
        except DpSpecError as exc:
            raise RegistryError(str(exc)) from None
        out: dict[str, Any] = {"kind": kind, "epsilon": cost.epsilon, "delta": cost.delta}
        if dataset and resolved is not None:
            out["dataset"] = dataset
            if kind == JobKind.DP_TRAIN:
                out.update({k: resolved[k] for k in ("noise_multiplier", "sample_rate", "steps", "accountant")})
            if operator:
                budgets = [
                    b
                    for b in self.registry.budgets.show(operator, viewer=Actor.host())
                    if b.dataset == dataset and b.licence_state == "active"
                ]
                if budgets:
                    best = max(budgets, key=lambda b: b.epsilon_remaining)
                    out["licence"] = best.licence
                    out["epsilon_remaining"] = best.epsilon_remaining
                    out["delta_remaining"] = best.delta_remaining
                    out["fits"] = (
                        cost.epsilon <= best.epsilon_remaining + 1e-9 and cost.delta <= best.delta_remaining + 1e-15
                    )
                else:
                    out["fits"] = False
        return out

    @staticmethod
    def _serialize(change: Change, operator: str) -> None:
        """Submissions of one operator one at a time (SQLite's BEGIN IMMEDIATE already is)."""
        session = change.session
        if session.get_bind().dialect.name == "postgresql":
            key = zlib.crc32(f"keyong-jobs:{operator}".encode()) & 0x7FFFFFFF
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    # --- views --------------------------------------------------------------------------------

    def show(self, job_id: int, *, viewer: Actor | None = None) -> JobView:
        return self.queue.get(job_id, viewer=viewer)

    def output(self, job_id: int, name: str, *, by: Actor) -> JobOutput:
        """One output of one's own job the export guard passed, the read ledgered (``operators.job_outputs``)."""
        return read_output(self.registry, self.queue, job_id, name, by=by)

    def cancel(self, job_id: int, *, by: Actor) -> JobView:
        """Cancel; a DP job cancelled before any worker claimed it never read data: its charge comes back.

        The cancellation and the refund are one transaction: a crash between them cannot keep a charge
        for a job that never ran, nor refund one that still may (issue 17).
        """

        require_role(by, "operator", "agency")
        code = self.queue.code(job_id, viewer=by)  # immutable: read before the cancelling transaction

        def refund(change: Change, view: JobView) -> None:
            if view.kind in DP_KINDS and view.state == "cancelled" and view.attempts == 0 and view.licence_id:
                cost = cost_of_plan(json.loads(code))
                self.registry.budgets.refund(
                    change,
                    view.licence_id,
                    next(iter(view.datasets)),
                    epsilon=cost.epsilon,
                    delta=cost.delta,
                    subject=f"job:{job_id}",
                    why="cancelled while queued; it never ran",
                )

        return self.queue.cancel(job_id, by=by, then=refund)

    def list(
        self, *, viewer: Actor | None = None, operator: str | None = None, state: str | None = None
    ) -> list[JobView]:
        return self.queue.list(viewer=viewer, operator=operator, state=state)


def _require_known_kind(kind: str) -> None:
    """An unknown kind is the caller's typo (a usage error, nothing recorded), not a refusal of the licence."""
    if kind not in KINDS:
        hint = did_you_mean(suggest(kind, KINDS)) or f": use one of {', '.join(KINDS)}"
        raise UsageError(f"unknown job kind {kind!r}{hint}")


__all__ = ["KINDS", "JobRefusedError", "JobUsageError", "Jobs", "Quotas", "canonical_sha256", "sha256_hex", "spec_of"]
