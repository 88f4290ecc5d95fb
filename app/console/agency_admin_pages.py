"""The agency administrator's console pages (issue 18): operators, licences and their lifecycle, budgets,
findings linked to their jobs, objections; people and standing are registered from here too.

The agency (授权运营实施机构) registers operating companies (双鸭山 第四十八条), grants licences that go
through 公示 before they take effect (第四十八条), suspends and restores access (第三十一条) and resolves the
findings of usage monitoring. Every form calls the same package function the HTTP API calls for an agency
principal (app/api/licences.py: ``registry.licences.add_operator/suspend_operator/restore_operator/grant/
transition``, ``registry.budgets.raise_budget``, ``registry.monitoring.resolve_finding``,
``registry.objections.resolve``), so the console allows exactly what the API does and every change is
ledgered there. A refusal of the registry comes back as the page's flash message, never a 500; a form that
cannot be read (a date that is no date, an unknown state) is refused before the registry is asked.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console import people_pages, standing_pages
from app.console.charts import meter
from app.console.context import Console, PathId, decimal
from app.console.session import Session
from core import Actor, RegistryError
from operators import Role
from registry import FeeClass, LicenceMode, LicenceState, ObjectionOutcome

OUTCOMES = [
    (ObjectionOutcome.RESTORE.value, "恢复 restore"),
    (ObjectionOutcome.CORRECT.value, "依法处理后恢复 restore after correction"),
    (ObjectionOutcome.WITHDRAW.value, "撤回 withdraw"),
]
#: The steps the agency may take from each state (registry.licence_lifecycle.TRANSITIONS decides; these are
#: only the buttons shown, the registry refuses any the rules forbid at the moment).
NEXT_STEPS: dict[str, list[str]] = {
    LicenceState.DRAFT.value: [LicenceState.PUBLICITY.value, LicenceState.ACTIVE.value, LicenceState.REVOKED.value],
    LicenceState.PUBLICITY.value: [LicenceState.ACTIVE.value, LicenceState.REVOKED.value],
    LicenceState.ACTIVE.value: [LicenceState.SUSPENDED.value, LicenceState.REVOKED.value, LicenceState.EXPIRED.value],
    LicenceState.SUSPENDED.value: [LicenceState.ACTIVE.value, LicenceState.REVOKED.value, LicenceState.EXPIRED.value],
}
STEP_LABELS = {
    LicenceState.PUBLICITY.value: "开始公示 start 公示",
    LicenceState.ACTIVE.value: "生效 activate",
    LicenceState.SUSPENDED.value: "暂停 suspend",
    LicenceState.REVOKED.value: "撤销 revoke",
    LicenceState.EXPIRED.value: "到期 expire",
}
LICENCES = "/agency/licences"
OPERATORS = "/agency/operators"
FINDINGS = "/agency/findings"
_NAMES = re.compile(r"[,，;；\s]+")
_JOB_IN_TEXT = re.compile(r"\bjob[:#\s]*(\d{1,12})\b")


def _number(value: Any) -> float | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _agency(console: Console, request: Request) -> tuple[Session, Actor]:
    """The logged-in agency principal; anyone else is refused by the session check."""
    session = console.session(request, Role.AGENCY)
    return session, session.actor


def register(router: APIRouter, console: Console) -> None:
    """The administrator's pages on the console router."""
    _operators(router, console)
    _licences(router, console)
    _grant(router, console)
    _licence_steps(router, console)
    _findings(router, console)
    _objections(router, console)
    people_pages.register(router, console)  # principals and keys (issue 17), an operator's first login
    standing_pages.register(router, console)  # identity checks, terms and training (issue 22)


def _operators(router: APIRouter, console: Console) -> None:
    """Operating companies: registered, suspended and restored (第四十八条, 第三十一条)."""
    licences = console.instance.registry.licences

    @router.get(OPERATORS, response_class=HTMLResponse)
    def operators(request: Request) -> HTMLResponse:
        session, actor = _agency(console, request)
        views = licences.list_operators(viewer=actor)
        counts: dict[str, dict[str, int]] = {}
        for licence in licences.list(viewer=actor):
            per = counts.setdefault(licence.operator, {})
            per[licence.state] = per.get(licence.state, 0) + 1
        named = {str(p["name"]) for p in console.instance.identity.list_principals()}
        return console.render(
            request, session, "console/agency/operators.html", operators=views, counts=counts, with_login=named
        )

    @router.post(OPERATORS)
    async def add(request: Request) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        name, uscc = str(form.get("name", "")).strip(), str(form.get("uscc", "")).strip()
        if not name or not uscc:
            return console.flash(session, OPERATORS, "operator_incomplete")
        try:
            licences.add_operator(name, uscc, by=actor)
        except RegistryError as exc:
            return console.flash(session, OPERATORS, "operator_refused", reason=exc)
        return console.flash(session, OPERATORS, "operator_added", operator=name)

    @router.post(OPERATORS + "/{name}/{act}")
    async def standing(request: Request, name: str, act: str) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        reason = str(form.get("reason", "")).strip()
        if act not in ("suspend", "restore"):
            return console.flash(session, OPERATORS, "unknown_action")
        try:
            if act == "suspend":
                licences.suspend_operator(name, by=actor, reason=reason)
            else:
                licences.restore_operator(name, by=actor, reason=reason)
        except RegistryError as exc:
            return console.flash(session, OPERATORS, "operator_refused", reason=exc)
        done = "operator_suspended" if act == "suspend" else "operator_restored"
        return console.flash(session, OPERATORS, done, operator=name)


def _licences(router: APIRouter, console: Console) -> None:
    """Licences with their ε meters and the grant form; one licence with its events; raising a budget."""
    instance = console.instance

    @router.get(LICENCES, response_class=HTMLResponse)
    def licences(request: Request) -> HTMLResponse:
        session, actor = _agency(console, request)
        views = instance.registry.licences.list(viewer=actor)
        budgets, meters = _budgets(console, actor, sorted({v.operator for v in views}))
        return console.render(
            request, session, "console/agency/licences.html", licences=views, budgets=budgets, meters=meters,
            operators=[o for o in instance.registry.licences.list_operators(viewer=actor)],
            datasets=[r.name for r in instance.registry.catalog.list()], modes=[m.value for m in LicenceMode],
            fee_classes=[f.value for f in FeeClass], next_steps=NEXT_STEPS, step_labels=STEP_LABELS,
            default_until=date(date.today().year + 1, 12, 31).isoformat(),
            publicity_days=instance.registry.config.publicity_days,
        )  # fmt: skip

    @router.get(LICENCES + "/{licence_id}", response_class=HTMLResponse)
    def licence(request: Request, licence_id: PathId) -> Response:
        session, actor = _agency(console, request)
        try:
            view = instance.registry.licences.get(licence_id, viewer=actor)
        except RegistryError as exc:
            return console.flash(session, LICENCES, "licence_refused", reason=exc)
        budgets, meters = _budgets(console, actor, [view.operator])
        findings = [f for f in instance.registry.monitoring.list_findings(viewer=actor) if f.licence_id == view.id]
        return console.render(
            request, session, "console/agency/licence.html", licence=view, budgets=budgets.get(view.id, []),
            meters=meters, next_steps=NEXT_STEPS.get(view.state, []), step_labels=STEP_LABELS, findings=findings,
        )  # fmt: skip

    @router.post("/agency/budgets/raise")
    async def raise_budget(request: Request) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        licence = _number(form.get("licence", ""))
        epsilon = _number(form.get("epsilon", ""))
        dataset = str(form.get("dataset", "")).strip()
        if licence is None or epsilon is None or not dataset or not licence.is_integer():
            return console.flash(session, LICENCES, "budget_incomplete")
        try:
            view = instance.registry.budgets.raise_budget(
                int(licence), dataset, epsilon=epsilon, reason=str(form.get("reason", "")), by=actor
            )
        except (RegistryError, OverflowError) as exc:
            return console.flash(session, LICENCES, "budget_refused", reason=exc)
        return console.flash(
            session, LICENCES, "budget_raised", licence=view.licence, dataset=view.dataset,
            epsilon=f"{view.epsilon_budget:g}",
        )  # fmt: skip


def _budgets(console: Console, actor: Actor, operators: list[str]) -> tuple[dict[int, list[Any]], dict[Any, Any]]:
    """The ε budgets of these operators' licences, by licence, and a meter for each (licence, dataset)."""
    budgets: dict[int, list[Any]] = {}
    for operator in operators:
        try:
            for budget in console.instance.registry.budgets.show(operator, viewer=actor):
                budgets.setdefault(budget.licence, []).append(budget)
        except RegistryError:
            continue
    meters = {
        (b.licence, b.dataset): meter(f"{b.dataset} ε", round(b.epsilon_spent, 4), b.epsilon_budget)
        for rows in budgets.values()
        for b in rows
    }
    return budgets, meters


def _names(value: Any) -> list[str]:
    return [n for n in _NAMES.split(str(value or "")) if n]


def grant_terms(form: Any) -> dict[str, Any]:
    """The grant form read into ``registry.licences.grant``'s keyword arguments (as ``GrantIn`` reads JSON).

    Raises ``ValueError`` with what is wrong, before the registry is asked: an unreadable date or number is
    the form's fault, not a refusal of the rules.
    """

    def day(field: str, required: bool) -> date | None:
        text = str(form.get(field, "")).strip()
        if not text:
            if required:
                raise ValueError(f"{field.replace('_', ' ')} is required (YYYY-MM-DD)")
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{field.replace('_', ' ')} {text[:40]!r} is not a date YYYY-MM-DD") from None

    def whole(field: str) -> int | None:
        text = str(form.get(field, "")).strip()
        if not text:
            return None
        number = decimal(text, high=999_999_999)  # ASCII digits only (red team 18)
        if number is None:
            raise ValueError(f"{field.replace('_', ' ')} {text[:40]!r} is not a whole number ≥ 0")
        return number

    epsilon = _number(form.get("epsilon", "3") or "3")
    if epsilon is None or epsilon <= 0:
        raise ValueError("ε must be a number above 0")
    mode = str(form.get("mode", LicenceMode.SCENARIO.value))
    fee = str(form.get("fee_class", FeeClass.PUBLIC_WELFARE.value))
    if mode not in {m.value for m in LicenceMode} or fee not in {f.value for f in FeeClass}:
        raise ValueError("unknown mode or fee class")
    scenarios = _names(form.get("scenarios", ""))
    if not scenarios:
        raise ValueError("name at least one application scenario (应用场景)")
    datasets = [str(v) for v in form.getlist("datasets") if str(v).strip()]
    joint = [group for group in (_names(line) for line in str(form.get("joint", "")).splitlines()) if group]
    return {
        "datasets": datasets,
        "mode": mode,
        "domains": _names(form.get("domains", "")),
        "scenarios": scenarios,
        "valid_from": day("valid_from", False),
        "valid_until": day("valid_until", True),
        "epsilon": epsilon,
        "fee_class": fee,
        "price_cents": whole("price_cents"),
        "publicity_days": whole("publicity_days"),
        "joint": joint,
    }


def _grant(router: APIRouter, console: Console) -> None:
    """Granting a licence (``POST /licences``): a draft, then 公示 (第四十八条), or left a draft on request."""
    licences = console.instance.registry.licences

    @router.post(LICENCES)
    async def grant(request: Request) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        operator = str(form.get("operator", "")).strip()
        try:
            terms = grant_terms(form)
        except ValueError as exc:
            return console.flash(session, LICENCES, "licence_form_invalid", reason=str(exc))
        try:
            view = licences.grant(
                operator, **terms, by=actor, reason=str(form.get("reason", "")), draft=form.get("draft") == "1"
            )
        except RegistryError as exc:
            return console.flash(session, LICENCES, "licence_refused", reason=exc)
        return console.flash(session, f"{LICENCES}/{view.id}", "licence_granted", licence=view.id, state=view.state)


def _licence_steps(router: APIRouter, console: Console) -> None:
    """One step of a licence's lifecycle (``POST /licences/{id}/transition``), always with a reason."""
    licences = console.instance.registry.licences

    @router.post(LICENCES + "/{licence_id}/transition")
    async def transition(request: Request, licence_id: PathId) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        target = str(form.get("to_state", ""))
        back = f"{LICENCES}/{licence_id}"
        if target not in {s.value for s in LicenceState}:
            return console.flash(session, LICENCES, "unknown_action")
        try:
            view = licences.transition(licence_id, target, by=actor, reason=str(form.get("reason", "")))
        except RegistryError as exc:
            try:
                licences.get(licence_id, viewer=actor)
            except RegistryError:
                back = LICENCES
            return console.flash(session, back, "licence_refused", reason=exc)
        return console.flash(session, back, "licence_moved", licence=view.id, state=view.state)


def finding_jobs(finding: Any, violations: list[Any], refused: dict[tuple[str, str], int] | None = None) -> list[int]:
    """The jobs a finding is about.

    The violation recorded with it names its subject (``registry.monitoring.record_violation`` raises the
    finding in the same change, with the same operator, licence and detail, moments later): ``job:N``, or
    ``job-spec:SHA`` for a submission refused before it was queued, kept as a ``refused`` job row with that
    spec hash (``refused``: (operator, spec hash) → job id). A finding's detail may name its latest job.
    """
    jobs: list[int] = []
    for v in violations:
        same = (v.operator, v.licence_id, v.detail) == (finding.operator, finding.licence_id, finding.detail)
        lag = (finding.raised_at - v.at).total_seconds()
        kind, _, ref = str(v.subject).partition(":")
        if not same or not 0 <= lag <= 60:
            continue
        if kind == "job" and ref.isascii() and ref.isdigit() and len(ref) <= 12:
            jobs.append(int(ref))
        elif kind == "job-spec" and (v.operator, ref) in (refused or {}):
            jobs.append((refused or {})[(v.operator, ref)])
    jobs.extend(int(n) for n in _JOB_IN_TEXT.findall(str(finding.detail)))
    return sorted({j for j in jobs if j > 0})


def _findings(router: APIRouter, console: Console) -> None:
    """Usage-monitoring findings, each linked to its jobs, licence and operator, and their resolution."""
    instance = console.instance

    @router.get(FINDINGS, response_class=HTMLResponse)
    def findings(request: Request, state: str = "") -> HTMLResponse:
        session, actor = _agency(console, request)
        state = state if state in ("open", "resolved") else ""
        views = instance.registry.monitoring.list_findings(viewer=actor, state=state or None)
        violations = instance.registry.monitoring.list_violations(viewer=actor)
        refused: dict[tuple[str, str], int] = {}
        if any(str(v.subject).startswith("job-spec:") for v in violations):
            for kept in instance.jobs.list(viewer=actor, state="refused")[::-1]:  # oldest first: newest wins
                refused[(kept.operator, kept.spec_sha256)] = kept.id
        jobs = {f.id: finding_jobs(f, violations, refused) for f in views}
        return console.render(
            request, session, "console/agency/findings.html", findings=views[::-1], state=state, jobs=jobs
        )

    @router.post(FINDINGS + "/{finding_id}/resolve")
    async def resolve_finding(request: Request, finding_id: PathId) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        try:
            instance.registry.monitoring.resolve_finding(
                finding_id, by=actor, resolution=str(form.get("resolution", ""))
            )
        except RegistryError as exc:
            return console.flash(session, FINDINGS, "finding_refused", reason=exc)
        return console.flash(session, FINDINGS, "finding_resolved", finding=finding_id)

    @router.get("/agency/jobs/{job_id}", response_class=HTMLResponse)
    def job(request: Request, job_id: PathId) -> Response:
        """A job as the agency reads it (as ``GET /jobs/{id}``), with its releases: where a finding leads."""
        session, actor = _agency(console, request)
        try:
            view = instance.jobs.show(job_id, viewer=actor)
        except RegistryError as exc:
            return console.flash(session, FINDINGS, "job_unavailable", job=job_id, reason=exc)
        releases = [r for r in instance.releases.list(viewer=actor) if r.job == job_id]
        subjects = {f"job:{job_id}", f"job-spec:{view.spec_sha256}"}
        violations = [
            v
            for v in instance.registry.monitoring.list_violations(viewer=actor, operator=view.operator)
            if v.subject in subjects
        ]
        return console.render(
            request, session, "console/agency/job.html", job=view, releases=releases, violations=violations
        )


def _objections(router: APIRouter, console: Console) -> None:
    """Objections (第四十条) and their resolution."""
    instance = console.instance

    @router.get("/agency/objections", response_class=HTMLResponse)
    def objections(request: Request) -> HTMLResponse:
        session, actor = _agency(console, request)
        views = instance.registry.objections.list(viewer=actor)
        return console.render(
            request, session, "console/agency/objections.html", objections=views[::-1], outcomes=OUTCOMES
        )

    @router.post("/agency/objections/{objection_id}/resolve")
    async def resolve_objection(request: Request, objection_id: PathId) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        try:
            instance.registry.objections.resolve(
                objection_id, str(form.get("outcome", "")), str(form.get("reason", "")), by=actor
            )
        except RegistryError as exc:
            return console.flash(session, "/agency/objections", "objection_refused", reason=exc)
        return console.flash(session, "/agency/objections", "objection_resolved", objection=objection_id)
