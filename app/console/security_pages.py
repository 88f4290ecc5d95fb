"""Security operations in the console (issue 22): security events and alerts, the freeze, incidents.

* ``/console/<role>/security`` (SATRE 2.5.03): the agency and the regulator read the security events
  (failed logins, rejected tokens and sessions, refusals) and the alerts their thresholds raised,
  filtered by kind, principal, source or state; the regulator acknowledges them with a note.
* ``/console/<role>/incidents`` (SATRE 2.6.04; 双鸭山 第六十一条 应急处置): whether the platform is frozen, the
  buttons that freeze it (agency, regulator) and unfreeze it (agency), and the incident register
  (record, close with a note).

Every action is the registry's own call with the session's principal as the actor, so the console
allows exactly what the HTTP API allows; refusals come back as the page's flash message.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.context import Console, PathId
from core import RegistryError
from operators import Role
from registry import FREEZE_ROLES, SEVERITIES, UNFREEZE_ROLES, SecurityEventKind

#: Each role's own copy of the pages (``/console/<role>/…``): the session check is the path's role.
SECURITY = "/{role}/security"
INCIDENTS = "/{role}/incidents"
READERS = (Role.AGENCY, Role.REGULATOR)


def register(router: APIRouter, console: Console) -> None:
    """The security and incident pages and their forms, on the console router, for each reading role."""
    for role in READERS:
        _security(router, console, role)
        _incidents(router, console, role)


def _ledger_entries(text: str) -> list[int]:
    """Ledger sequence numbers typed as ``12, 15 40``; anything else is refused with the reason."""
    tokens = text.replace(",", " ").split()
    bad = [t for t in tokens if not (t.isascii() and t.isdigit() and len(t) <= 19)]
    if bad:
        raise RegistryError(f"ledger entries are sequence numbers separated by commas or spaces, not {bad[0][:40]!r}")
    return [int(t) for t in tokens]


def _security(router: APIRouter, console: Console, role: Role) -> None:
    security = console.instance.registry.security
    here = SECURITY.format(role=role.value)

    @router.get(here, response_class=HTMLResponse)
    def page(request: Request, kind: str = "", principal: str = "", source: str = "", state: str = "") -> HTMLResponse:
        session = console.session(request, role)
        buffer = getattr(request.app.state, "security_buffer", None)
        if buffer is not None:
            buffer.flush()  # the refusals counted but not yet written are shown too
        kind = kind if kind in set(SecurityEventKind) else ""
        state = state if state in ("open", "acknowledged") else ""
        events = security.events(
            viewer=session.actor,
            kind=kind or None,
            principal=principal.strip()[:128] or None,
            source=source.strip()[:64] or None,
            acknowledged=None if not state else state == "acknowledged",
        )
        alerts = security.alerts(viewer=session.actor, state=state or None)
        return console.render(
            request,
            session,
            "console/security.html",
            events=events,
            alerts=alerts,
            kinds=[k.value for k in SecurityEventKind],
            filters={"kind": kind, "principal": principal, "source": source, "state": state},
            may_ack=session.role == Role.REGULATOR.value,
            here=here,
        )

    if role != Role.REGULATOR:
        return  # only the regulator acknowledges (SATRE 2.5.03: the supervisor reviews)

    @router.post(here + "/{what}/{item_id}/acknowledge")
    async def acknowledge(request: Request, what: str, item_id: PathId) -> Response:
        session = console.session(request, role)
        form = await console.form(request, session)
        note = str(form.get("note", ""))
        try:
            if what == "alerts":
                security.acknowledge_alert(item_id, note=note, by=session.actor)
            elif what == "events":
                security.acknowledge_event(item_id, note=note, by=session.actor)
            else:
                return console.flash(session, here, "unknown_action")
        except RegistryError as exc:
            return console.flash(session, here, "ack_refused", reason=exc)
        return console.flash(session, here, "acknowledged", what=what[:-1], item=item_id)


def _incidents(router: APIRouter, console: Console, role: Role) -> None:
    registry = console.instance.registry
    here = INCIDENTS.format(role=role.value)

    @router.get(here, response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        session = console.session(request, role)
        return console.render(
            request,
            session,
            "console/incidents.html",
            freeze=registry.freeze.state(),
            incidents=registry.incidents.list(viewer=session.actor),
            severities=SEVERITIES,
            may_freeze=session.role in FREEZE_ROLES,
            may_unfreeze=session.role in UNFREEZE_ROLES,
            here=here,
        )

    @router.post(here + "/{act}")
    async def freeze(request: Request, act: str) -> Response:
        session = console.session(request, role)
        form = await console.form(request, session)
        reason = str(form.get("reason", ""))
        try:
            if act == "freeze":
                registry.freeze.freeze(reason=reason, by=session.actor)
            elif act == "unfreeze":
                registry.freeze.unfreeze(reason=reason, by=session.actor)
            elif act == "record":
                entries = _ledger_entries(str(form.get("ledger_entries", "")))
                created = registry.incidents.record(
                    title=str(form.get("title", "")),
                    severity=str(form.get("severity", "")),
                    description=str(form.get("description", "")),
                    ledger_entries=entries,
                    by=session.actor,
                )
                return console.flash(session, here, "incident_recorded", incident=created["id"])
            else:
                return console.flash(session, here, "unknown_action")
        except RegistryError as exc:
            return console.flash(session, here, "incident_refused", reason=exc)
        return console.flash(session, here, "platform_frozen" if act == "freeze" else "platform_unfrozen")

    @router.post(here + "/{incident_id}/close")
    async def close(request: Request, incident_id: PathId) -> Response:
        session = console.session(request, role)
        form = await console.form(request, session)
        try:
            registry.incidents.close(incident_id, note=str(form.get("note", "")), by=session.actor)
        except RegistryError as exc:
            return console.flash(session, here, "incident_refused", reason=exc)
        return console.flash(session, here, "incident_closed", incident=incident_id)
