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


def register(router: APIRouter, console: Console) -> None:
    """The custodian's queue and its forms; the overseers' overdue pages."""
    _queue(router, console)
    _overseers(router, console)


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
            role=role.value,
        )

    @router.get("/regulator/requests", response_class=HTMLResponse)
    def regulator(request: Request) -> HTMLResponse:
        return page(request, Role.REGULATOR)

    @router.get("/agency/requests", response_class=HTMLResponse)
    def agency(request: Request) -> HTMLResponse:
        return page(request, Role.AGENCY)
