"""People's standing in the console (issue 22): the agency records it, the regulator reads it.

SATRE 3.2.02, 1.5.02, 1.6.04. The agency records identity checks, trainings and signed terms acceptances,
publishes the terms of use, and sees what expires within 30 days; the regulator reads the same page and
changes nothing.

Every form is ``operators.People``'s own call with the agency principal as the actor, so the console allows exactly
what ``POST /people/{name}/…`` and ``POST /terms`` allow (nobody certifies themselves); a refusal, a bad date among
them, comes back as the page's flash message. No identity number is asked for here: the evidence is named by where
it is filed.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.context import Console
from app.console.session import Session
from core import RegistryError
from operators import Role
from registry import EXPIRING_DAYS, EvidenceKind

PAGE = "/agency/standing"
READ_ONLY = "/regulator/standing"


def _page(console: Console, request: Request, session: Session, *, writable: bool) -> HTMLResponse:
    people = console.instance.people
    return console.render(
        request,
        session,
        "console/standing.html",
        people=people.standings(viewer=session.principal),
        expiring=people.expiring(EXPIRING_DAYS, viewer=session.principal),
        terms=people.terms(with_text=False),
        evidence_kinds=[k.value for k in EvidenceKind],
        horizon=EXPIRING_DAYS,
        writable=writable,
        today=date.today().isoformat(),
    )


def _day(form: Any, field: str) -> date | None:
    value = str(form.get(field, "")).strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RegistryError(f"{field.replace('_', ' ')} {value[:40]!r} is not a date YYYY-MM-DD") from None


def register(router: APIRouter, console: Console) -> None:
    """The standing pages and the agency's forms, on the console router."""
    people = console.instance.people

    def agency(request: Request) -> Session:
        return console.session(request, Role.AGENCY)

    @router.get(PAGE, response_class=HTMLResponse)
    def standing(request: Request) -> HTMLResponse:
        return _page(console, request, agency(request), writable=True)

    @router.get(READ_ONLY, response_class=HTMLResponse)
    def standing_read(request: Request) -> HTMLResponse:
        return _page(console, request, console.session(request, Role.REGULATOR), writable=False)

    @router.post(PAGE + "/terms")
    async def publish(request: Request) -> Response:
        session = agency(request)
        form = await console.form(request, session)
        version = str(form.get("version", "")).strip()
        try:
            people.publish_terms(
                version, title=str(form.get("title", "")), text=str(form.get("text", "")), by=session.principal
            )
        except RegistryError as exc:
            return console.flash(session, PAGE, "standing_not_recorded", reason=str(exc))
        return console.flash(session, PAGE, "terms_published", version=version)

    @router.post(PAGE + "/{name}/{what}")
    async def record(request: Request, name: str, what: str) -> Response:
        session = agency(request)
        form = await console.form(request, session)
        by = session.principal
        try:
            if what == "identity-check":
                people.record_identity_check(
                    name, evidence_kind=str(form.get("evidence_kind", "")), evidence_ref=str(form.get("ref", "")),
                    checked_on=_day(form, "checked_on"), expires_on=_day(form, "expires_on"), by=by,
                )  # fmt: skip
            elif what == "training":
                completed, expires = _day(form, "completed_on"), _day(form, "expires_on")
                if completed is None or expires is None:
                    raise RegistryError("a training needs the day it was completed and the day it expires")
                people.record_training(
                    name, course=str(form.get("course", "")), completed_on=completed, expires_on=expires, by=by
                )
            elif what == "terms":
                people.accept_terms(name, version=str(form.get("version", "")).strip(), by=by)
            else:
                return console.flash(session, PAGE, "unknown_action")
        except RegistryError as exc:
            return console.flash(session, PAGE, "standing_not_recorded", reason=str(exc))
        return console.flash(session, PAGE, "standing_recorded", what=what.replace("-", " "), name=name)


__all__ = ["PAGE", "READ_ONLY", "register"]
