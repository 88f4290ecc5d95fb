"""The custodian's say on access in the console (issue 22; SATRE 1.5.04): the licences awaiting its
agreement (agree or refuse each of its datasets, with a reason), and per dataset of its organisation the
standing access delegation to the agency and its withdrawal.

Every act goes through the same package calls the API makes for a custodian (``app/api/consent.py``),
with the logged-in custodian as the actor; the packages' refusals (another organisation's dataset, a
licence already active, a frozen platform, a missing reason) come back as the page's flash message.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.context import Console, PathId
from core import RegistryError
from operators import Role

DECISIONS = [("agree", "同意 agree"), ("refuse", "拒绝 refuse")]
PAGE = "/custodian/licences"


def register(router: APIRouter, console: Console) -> None:
    """The custodian's licence-agreement page and its forms on the console router."""
    registry = console.instance.registry

    @router.get(PAGE, response_class=HTMLResponse)
    def awaiting(request: Request) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        mine = registry.access.datasets_of(session.actor)
        return console.render(
            request,
            session,
            "console/custodian/licences.html",
            awaiting=registry.licence_consent.awaiting(by=session.actor),
            mine=mine,
            access=[registry.access.get(name) for name in mine],
            decisions=DECISIONS,
        )

    @router.post(PAGE + "/{licence_id}/consent", response_model=None)
    async def decide(request: Request, licence_id: PathId) -> Response:
        session = console.session(request, Role.CUSTODIAN)
        form = await console.form(request, session)
        dataset = str(form.get("dataset", "")).strip()
        try:
            registry.licence_consent.decide(
                licence_id,
                dataset,
                str(form.get("decision", "")).strip(),
                by=session.actor,
                reason=str(form.get("reason", "")),
            )
        except RegistryError as exc:
            return console.flash(session, PAGE, "access_refused", reason=exc)
        return console.flash(session, PAGE, "access_decided", licence=licence_id, dataset=dataset)

    @router.post(PAGE + "/access/{name}/delegation", response_model=None)
    async def delegate(request: Request, name: str) -> Response:
        session = console.session(request, Role.CUSTODIAN)
        form = await console.form(request, session)
        try:
            registry.access.delegate(name, by=session.actor, reason=str(form.get("reason", "")))
        except RegistryError as exc:
            return console.flash(session, PAGE, "access_refused", reason=exc)
        return console.flash(session, PAGE, "access_delegated", dataset=name)

    @router.post(PAGE + "/access/{name}/withdraw", response_model=None)
    async def withdraw(request: Request, name: str) -> Response:
        session = console.session(request, Role.CUSTODIAN)
        form = await console.form(request, session)
        try:
            registry.access.withdraw(name, by=session.actor, reason=str(form.get("reason", "")))
        except RegistryError as exc:
            return console.flash(session, PAGE, "access_refused", reason=exc)
        return console.flash(session, PAGE, "access_withdrawn", dataset=name)
