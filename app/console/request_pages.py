"""Requests with statutory deadlines in the console (issue 24): a custodian's queue, overdue for overseers.

A custodian (数据提供部门) sees its department's open requests ordered by due time — overdue first, then
due soon — each with the forms its kind allows: take into review (受理), grant (saying what it leads to),
refuse (the specific reasons are required: 应说明具体原因), answer (the result reported back). The agency
and the regulator see the overdue and due-soon requests across departments, with each department's
counts: where the clocks ran out. Every act goes through the same package calls the API makes
(``app/api/requests.py``) with the logged-in person as the actor; a refusal comes back as the flash.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.context import Console, PathId
from core import RegistryError
from operators import Role
from registry import REQUEST_OUTCOMES

QUEUE = "/custodian/requests"
#: The custodian's acts, by the path segment of their form: (registry outcome or "review", label).
ACTS = {
    "review": ("review", "受理 Take into review"),
    "grant": ("granted", "同意 Grant"),
    "refuse": ("refused", "拒绝 Refuse"),
    "answer": ("answered", "答复 Answer"),
}
RECENT = 30


MINE = "/operator/requests"
#: What an operator applies for (the rest are departments' and the agency's requests).
OPERATOR_KINDS = [
    ("data_application", "有条件共享数据使用申请 Data use application"),
    ("open_data_application", "有条件开放数据申请 Open-data application"),
    ("data_demand", "数据需求 Data demand (not yet in the catalog)"),
    ("correction", "校核申请 Correction request"),
]
ROLES = (Role.OPERATOR, Role.CUSTODIAN, Role.AGENCY, Role.REGULATOR)


def register(router: APIRouter, console: Console) -> None:
    """The custodian's queue and its forms; the overseers' overdue pages; an operator's own requests; one
    request with its history for whoever may see it."""
    _queue(router, console)
    _overseers(router, console)
    _operator(router, console)
    _detail(router, console)


def _queue(router: APIRouter, console: Console) -> None:
    requests = console.instance.registry.requests

    @router.get(QUEUE, response_class=HTMLResponse)
    def queue(request: Request) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        open_items = [r.as_json() for r in requests.list(viewer=session.actor, open_only=True)]
        closed = [
            r.as_json() for r in requests.list(viewer=session.actor) if r.row.state not in ("submitted", "in_review")
        ]
        closed.sort(key=lambda r: r["decided_at"] or "", reverse=True)
        with requests.recorder.read() as db:
            departments = sorted(requests.departments(db, session.actor))
        return console.render(
            request,
            session,
            "console/custodian/requests.html",
            items=open_items,
            closed=closed[:RECENT],
            departments=departments,
            calendar_problem=requests.readable_calendar()[1],
            outcomes=REQUEST_OUTCOMES,
            acts=ACTS,
        )

    @router.post(QUEUE + "/{request_id}/{act}", response_model=None)
    async def act(request: Request, request_id: PathId, act: str) -> Response:
        session = console.session(request, Role.CUSTODIAN)
        form = await console.form(request, session)
        reason = str(form.get("reason", ""))
        try:
            if act not in ACTS:
                raise RegistryError(f"no such act {act!r}: review, grant, refuse or answer")
            if act == "review":
                done = requests.review(request_id, by=session.actor, note=reason)
            else:
                leads_to = str(form.get("leads_to", "")).strip() or None
                done = requests.decide(request_id, ACTS[act][0], by=session.actor, reason=reason, leads_to=leads_to)
        except RegistryError as exc:
            return console.flash(session, QUEUE, "request_refused", reason=exc)
        return console.flash(session, QUEUE, "request_done", request=request_id, state=done.row.state)


def _overseers(router: APIRouter, console: Console) -> None:
    requests = console.instance.registry.requests

    def page(request: Request, role: Role) -> HTMLResponse:
        session = console.session(request, role)
        items = [r.as_json() for r in requests.list(viewer=session.actor, open_only=True)]
        overdue = [r for r in items if r["overdue"]]
        soon = [r for r in items if r["due_soon"]]
        open_by = Counter(r["provider"] for r in items)
        overdue_by = Counter(r["provider"] for r in overdue)
        departments: list[dict[str, Any]] = [
            {"provider": p, "open": open_by[p], "overdue": overdue_by[p]}
            for p in sorted(open_by, key=lambda p: (-overdue_by[p], p))
        ]
        return console.render(
            request,
            session,
            "console/requests_overdue.html",
            overdue=overdue,
            soon=soon,
            departments=departments,
            calendar_problem=requests.readable_calendar()[1],
            role=role.value,
        )

    @router.get("/regulator/requests", response_class=HTMLResponse)
    def regulator(request: Request) -> HTMLResponse:
        return page(request, Role.REGULATOR)

    @router.get("/agency/requests", response_class=HTMLResponse)
    def agency(request: Request) -> HTMLResponse:
        return page(request, Role.AGENCY)


def _operator(router: APIRouter, console: Console) -> None:
    registry = console.instance.registry

    @router.get(MINE, response_class=HTMLResponse)
    def mine(request: Request) -> HTMLResponse:
        session = console.session(request, Role.OPERATOR)
        return console.render(
            request,
            session,
            "console/operator/requests.html",
            items=[r.as_json() for r in registry.requests.list(viewer=session.actor)],
            datasets=sorted(entry.name for entry in registry.catalog.list()),
            kinds=OPERATOR_KINDS,
            calendar_problem=registry.requests.readable_calendar()[1],
        )

    @router.post(MINE, response_model=None)
    async def submit(request: Request) -> Response:
        session = console.session(request, Role.OPERATOR)
        form = await console.form(request, session)
        catalog_entry = str(form.get("subject_kind", "dataset")) == "catalog_entry"
        try:
            made = registry.requests.submit(
                str(form.get("kind", "")),
                by=session.actor,
                subject=str(form.get("subject", "")),
                subject_kind="catalog_entry" if catalog_entry else "dataset",
                provider=str(form.get("provider", "")).strip() or None,
                detail=str(form.get("detail", "")),
            )
        except RegistryError as exc:
            return console.flash(session, MINE, "request_refused", reason=exc)
        return console.flash(session, MINE, "request_submitted", request=made.row.id, due=made.row.due_on.isoformat())


def _detail(router: APIRouter, console: Console) -> None:
    requests = console.instance.registry.requests

    @router.get("/requests/{request_id}", response_class=HTMLResponse)
    def detail(request: Request, request_id: PathId) -> Response:
        session = console.session(request, *ROLES)
        try:
            item = requests.get(request_id, viewer=session.actor).as_json()
        except RegistryError as exc:
            return console.render(request, session, "console/error.html", status_code=404, message=str(exc))
        return console.render(
            request, session, "console/request.html", r=item, calendar_problem=item.get("calendar_problem")
        )
