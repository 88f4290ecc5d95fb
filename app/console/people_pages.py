"""The agency's people page (issue 17): principals and their keys, added, issued, rotated, revoked.

Registered by ``app.console.agency_pages``. Every action is the identity service's own call with the
agency principal as the actor, so the console allows exactly what ``POST /principals`` and
``/keys/{id}/…`` allow: operators, custodians and the agency's own keys (``operators.identity``:
a reviewer never mints a reviewer, 双鸭山 第五十二条). A new secret is shown once, in the answer to
the form that made it (never in a URL, never stored, ``Cache-Control: no-store``); refusals come back
as the page's flash message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.context import Console
from app.console.session import Session
from operators import AGENCY_MANAGES, IdentityError, IdentityService, NewApiKey, Principal, Role

PAGE = "/agency/people"


def _page(console: Console, request: Request, session: Session, secret: NewApiKey | None = None) -> HTMLResponse:
    people = console.instance.identity.list_principals()
    for person in people:
        person["manageable"] = person["role"] in AGENCY_MANAGES or person["name"] == session.principal.name
    named = {str(person["name"]) for person in people}
    without_login = [o.name for o in console.instance.registry.licences.list_operators() if o.name not in named]
    response = console.render(
        request,
        session,
        "console/agency/people.html",
        people=people,
        roles=sorted(r.value for r in AGENCY_MANAGES),
        secret=secret,
        without_login=without_login,
        own_key=secret is not None and secret.principal.name == session.principal.name,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def register(router: APIRouter, console: Console) -> None:
    """The people page and its forms, on the console router."""
    identity = console.instance.identity

    def agency(request: Request) -> Session:
        return console.session(request, Role.AGENCY)

    @router.get(PAGE, response_class=HTMLResponse)
    def people(request: Request) -> HTMLResponse:
        return _page(console, request, agency(request))

    @router.post(PAGE)
    async def add(request: Request) -> Response:
        session = agency(request)
        form = await console.form(request, session)
        name, role = str(form.get("name", "")).strip(), str(form.get("role", "")).strip()
        try:
            new = identity.create_principal(name, role, org=str(form.get("org", "")), by=session.principal)
        except IdentityError as exc:
            return console.flash(session, PAGE, "person_not_added", reason=str(exc))
        return _page(console, request, session, new)

    @router.post(PAGE + "/first-login")
    async def first_login(request: Request) -> Response:
        """A registered operator's first login (``POST /operators/{name}/login``, ``operator add --login``).

        The key is shown once in this answer's page (no-store), never in a flash message or a URL."""
        session = agency(request)
        form = await console.form(request, session)
        operator = str(form.get("operator", "")).strip()
        try:
            new = identity.create_principal(operator, Role.OPERATOR, org=operator, by=session.principal)
        except IdentityError as exc:
            return console.flash(session, PAGE, "login_not_created", reason=str(exc))
        return _page(console, request, session, new)

    @router.post(PAGE + "/{name}/keys")
    async def issue(request: Request, name: str) -> Response:
        session = agency(request)
        await console.form(request, session)
        try:
            new = identity.issue_api_key(name, by=session.principal)
        except IdentityError as exc:
            return console.flash(session, PAGE, "key_not_issued", reason=str(exc))
        return _page(console, request, session, new)

    @router.post("/agency/keys/{key_id}/rotate")
    async def rotate(request: Request, key_id: str) -> Response:
        session = agency(request)
        await console.form(request, session)
        try:
            new = identity.rotate_api_key(key_id, by=session.principal)
        except IdentityError as exc:
            return console.flash(session, PAGE, "key_not_rotated", reason=str(exc))
        return _page(console, request, session, new)

    @router.post("/agency/keys/{key_id}/revoke")
    async def revoke(request: Request, key_id: str) -> Response:
        session = agency(request)
        await console.form(request, session)
        try:
            revoked: dict[str, Any] = identity.revoke_api_key(key_id, by=session.principal)
        except IdentityError as exc:
            return console.flash(session, PAGE, "key_not_revoked", reason=str(exc))
        return console.flash(session, PAGE, "key_revoked", key=key_id, principal=revoked["principal"])

    @router.post(PAGE + "/{name}/{act}")
    async def standing(request: Request, name: str, act: str) -> Response:
        session = agency(request)
        form = await console.form(request, session)
        if act not in _ACTS:
            return console.flash(session, PAGE, "unknown_action")
        try:
            reason = str(form.get("reason", "")).strip()
            if not reason:
                raise IdentityError("give a reason: it is recorded in the ledger")
            _ACTS[act](identity, name, session.principal, reason[:2000])
        except IdentityError as exc:
            return console.flash(session, PAGE, "person_not_changed", reason=str(exc))
        return console.flash(session, PAGE, _DONE[act], name=name)


#: What the agency does to a person with a reason: suspend, restore, reset a lost second factor (the person
#: enrols again at the next login), and the message each flashes.
_ACTS: dict[str, Callable[[IdentityService, str, Principal, str], None]] = {
    "suspend": lambda identity, name, by, reason: identity.set_active(name, False, by=by, reason=reason),
    "restore": lambda identity, name, by, reason: identity.set_active(name, True, by=by, reason=reason),
    "totp-reset": lambda identity, name, by, reason: identity.reset_totp(name, by=by, reason=reason),
    # the second person of a recovery (SATRE 3.2.01): this agency session's own act, never the recoverer's
    "confirm-recovery": lambda identity, name, by, reason: _confirm(identity, name, by, reason),
}
_DONE = {
    "suspend": "person_suspended",
    "restore": "person_restored",
    "totp-reset": "person_totp_reset",
    "confirm-recovery": "person_recovery_confirmed",
}


def _confirm(identity: IdentityService, name: str, by: Principal, reason: str) -> None:
    identity.confirm_recovery(name, by=by, reason=reason)
