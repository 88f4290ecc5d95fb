"""The operator's job form (issue 18): a template per kind, only licensed datasets and the licence's
scenarios, a title and a purpose (用途), and clone-and-resubmit of one's own job.

The form offers what the operator's live licences grant (a select of their scenarios, not free text), and
choosing a kind fills a documented template written with the chosen dataset's real column names
(``app.console.job_templates``; the dp-query spec is documented on the page). The server still decides
everything: a submission is the same call as ``POST /jobs`` (:meth:`operators.Jobs.submit`), so a forged
kind, dataset or scenario is refused with the platform's reason (and ledgered, 双鸭山 第三十一条: use outside
the licence is a violation), exactly as over the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.context import Console, QueryId
from app.console.job_templates import DP_QUERY_FIELDS, DP_TRAIN_FIELDS, columns_of, spec_from_plan, template
from app.console.operator_catalog_pages import granted
from app.copy_facts import newest_copy_facts
from core import Actor, NotFoundError, RegistryError
from operators import Role
from sandbox import DP_KINDS, KINDS, MAX_PURPOSE, MAX_TITLE

#: The code a form accepts (the API's ``Code`` limit is the same order; the domain checks bytes again).
MAX_FORM_CODE = 256 * 1024


def _templates(console: Console, datasets: list[str]) -> dict[str, dict[str, str]]:
    """Per kind, per granted dataset: its template (for the page's script; the server fills one too)."""
    shown: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
    for name in datasets:
        try:
            view = console.instance.registry.catalog.get(name)
        except NotFoundError:
            continue
        columns = columns_of(view, newest_copy_facts(view.versions))
        for kind in KINDS:
            shown[kind][name] = template(kind, name, columns)
    return shown


def form_context(console: Console, session: Any, form: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the job form needs: the granted datasets and scenarios, the templates, the fields' values
    (``form``, or the sql template of the first granted dataset)."""
    licensed = granted(console, session.actor)
    datasets = sorted(licensed)
    scenarios = sorted({s for names in licensed.values() for s in names})
    templates = _templates(console, datasets)
    if form is None:
        first = datasets[:1]
        code = templates["sql"].get(first[0], "") if first else ""
        form = {"kind": "sql", "datasets": first, "scenario": scenarios[0] if scenarios else "", "code": code}
    form.setdefault("title", "")
    form.setdefault("purpose", "")
    return {
        "kinds": KINDS,
        "datasets": datasets,
        "scenarios": scenarios,
        "templates": templates,
        "dp_query_fields": DP_QUERY_FIELDS,
        "dp_train_fields": DP_TRAIN_FIELDS,
        "max_title": MAX_TITLE,
        "max_purpose": MAX_PURPOSE,
        "form": form,
    }


def form_page(
    console: Console,
    request: Request,
    session: Any,
    *,
    form: dict[str, Any] | None = None,
    cost: Any = None,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """The job form page, filled with ``form``; a refusal to price or submit shows as ``error``."""
    context = form_context(console, session, form)
    return console.render(
        request,
        session,
        "console/operator/job_new.html",
        status_code=status_code,
        cost=cost,
        error=error,
        **context,
    )


def clone_of(console: Console, job_id: int, actor: Actor) -> dict[str, Any]:
    """The form filled from one's own job ``job_id`` (kind, datasets, scenario, code, title, purpose); a
    ``NotFoundError`` for a job that is not the actor's (its existence is not revealed)."""
    view = console.instance.jobs.show(job_id, viewer=actor)
    if view.operator != actor.name:  # the queue already hides it; never rely on one check alone
        raise NotFoundError(f"no job {job_id}")
    code = console.instance.jobs.queue.code(job_id, viewer=actor)
    return {
        "kind": view.kind if view.kind in KINDS else "sql",
        "datasets": sorted(view.datasets),
        "scenario": view.scenario,
        "code": spec_from_plan(view.kind, code),
        "title": f"{view.title or f'作业 {job_id}'}（副本 copy）"[:MAX_TITLE],
        "purpose": view.purpose,
        "clone": job_id,
    }


def posted_job(posted: Any) -> dict[str, Any]:
    """The submission's fields as the form posted them."""
    return {
        "kind": str(posted.get("kind", "")).strip(),
        "datasets": [str(d) for d in posted.getlist("datasets") if str(d).strip()],
        "scenario": str(posted.get("scenario", "")).strip(),
        "code": str(posted.get("code", "")),
        "title": str(posted.get("title", "")),
        "purpose": str(posted.get("purpose", "")),
    }


def register(router: APIRouter, console: Console) -> None:
    """``/operator/jobs/new`` and the submission (``POST /operator/jobs``), before the job pages' routes."""
    instance = console.instance

    @router.get("/operator/jobs/new", response_class=HTMLResponse)
    def new(request: Request, kind: str = "", dataset: str = "", clone: QueryId = None) -> HTMLResponse:
        """The form: blank, with a kind and dataset chosen (a template), or a clone of one's own job."""
        session = console.session(request, Role.OPERATOR)
        if clone is not None:
            try:
                return form_page(console, request, session, form=clone_of(console, clone, session.actor))
            except NotFoundError:
                message = f"没有作业 {clone} · no job {clone}"
                return console.render(request, session, "console/error.html", status_code=404, message=message)
        licensed = granted(console, session.actor)
        if not kind and not dataset:
            return form_page(console, request, session)
        if kind not in KINDS or dataset not in licensed:
            error = "只能选择已授权的数据集和已有的作业类型 · choose a granted dataset and a known kind"
            return form_page(console, request, session, error=error, status_code=400)
        code = _templates(console, [dataset])[kind].get(dataset, "")
        form = {"kind": kind, "datasets": [dataset], "scenario": (licensed[dataset] or [""])[0], "code": code}
        return form_page(console, request, session, form=form)

    @router.post("/operator/jobs", response_model=None)
    async def submit(request: Request) -> Response:
        """Submit (or, with ``action=cost``, price a DP spec first): the same call as ``POST /jobs``."""
        session = console.session(request, Role.OPERATOR)
        posted = await console.form(request, session)
        actor = session.actor
        values = posted_job(posted)
        if posted.get("action") == "cost":
            if values["kind"] not in DP_KINDS:
                error = "只有 DP 作业有预算花费 · only DP jobs have a cost"
                return form_page(console, request, session, form=values, error=error)
            try:
                cost = instance.jobs.cost(
                    values["kind"],
                    values["code"],
                    operator=actor.name,
                    dataset=values["datasets"][0] if values["datasets"] else None,
                )
            except RegistryError as exc:
                return form_page(console, request, session, form=values, error=f"预算估算失败 · cost refused: {exc}")
            return form_page(console, request, session, form=values, cost=cost)
        if len(values["code"]) > MAX_FORM_CODE:
            return form_page(console, request, session, form=values, error="代码过长 · the code exceeds 256 KiB")
        try:
            job = instance.jobs.submit(
                actor.name,
                values["datasets"],
                values["kind"],
                values["code"],
                values["scenario"],
                by=actor,
                title=values["title"],
                purpose=values["purpose"],
            )
        except RegistryError as exc:  # JobRefusedError included: the refused row is recorded by the platform
            return console.flash(session, "/operator/jobs", "job_refused", reason=exc)
        return console.flash(session, f"/operator/jobs/{job}", "job_queued", job=job)
