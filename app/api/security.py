"""Security events over HTTP (SATRE 2.5.03): what every refused request leaves behind, and the routes
the regulator reviews them with.

:class:`SecurityWatch` sees the status of every response (API and console alike). A route or
dependency that knows more names the event with :func:`mark` (the kind, the principal or the name a
credential claimed, why); any other 401 or 403 is recorded all the same, as a rejected token or a
refusal, with the authenticated principal when there was one (:func:`note_principal`). So a refusal
added later cannot go unrecorded: what nobody marked is still counted. The rule of what is kept, how
it is bounded and when it alerts is ``registry.SecurityEvents``'; recording runs in a worker thread
after the response, and a failure to record is logged, never turned into the request's answer.
"""

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from app.api.limits import Id, Name
from core import actor_of
from registry import SecurityEventKind, SecurityEvents

logger = logging.getLogger("keyong.security")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_EVENT = "keyong_security_event"
_PRINCIPAL = "keyong_principal"


def mark(request: Request, kind: SecurityEventKind, principal: str | None, detail: str = "") -> None:
    """Name the security event this request is (recorded by :class:`SecurityWatch` after the response)."""
    setattr(request.state, _EVENT, (kind, principal, detail))


def note_principal(request: Request, name: str) -> None:
    """Who the request authenticated as, so a later refusal is recorded against them."""
    setattr(request.state, _PRINCIPAL, name)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return f"{scope.get('method', '')} {template or scope.get('path', '')}"


def event_of(scope: Scope, status: int) -> tuple[SecurityEventKind, str | None, str] | None:
    """The event a finished request is, if any: what a route marked, else any 401 or 403."""
    state = scope.get("state") or {}
    marked = state.get(_EVENT)
    if marked is not None:
        kind, principal, detail = marked
        return kind, principal or state.get(_PRINCIPAL), detail
    if status == 401:
        return SecurityEventKind.TOKEN_REJECTED, state.get(_PRINCIPAL), "401"
    if status == 403:
        return SecurityEventKind.FORBIDDEN, state.get(_PRINCIPAL), "403"
    return None


class SecurityWatch:
    """ASGI middleware: after each HTTP response, record the security event it was (if any)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], security: SecurityEvents) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        status = 0

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            event = event_of(scope, status)
            if event is not None:
                client = scope.get("client")
                source = str(client[0]) if client else None
                await anyio.to_thread.run_sync(self._record, event, source, _route(scope))

    def _record(self, event: tuple[SecurityEventKind, str | None, str], source: str | None, route: str) -> None:
        kind, principal, detail = event
        try:
            self.security.record(kind, source=source, principal=principal, route=route, detail=detail)
        except Exception:  # the refusal stands; its record failing must not become the answer
            logger.exception("could not record a security event (%s from %s on %s)", kind, source, route)


class Acknowledgement(BaseModel):
    note: str = Field(min_length=1, max_length=2000, description="What was found and done; kept with the ack.")


def build_router(security: SecurityEvents, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Events and alerts: read by the agency and the regulator, acknowledged by the regulator."""
    router = APIRouter(tags=["security"])
    readers = require("agency", "regulator")
    regulator = require("regulator")

    @router.get("/security/events")
    def events(
        viewer: Annotated[Any, Depends(readers)],
        kind: Annotated[SecurityEventKind | None, Query()] = None,
        who: Annotated[Name | None, Query(alias="principal", description="the principal (or claimed name)")] = None,
        source: Annotated[Name | None, Query(description="the client address")] = None,
        acknowledged: Annotated[bool | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """Security events (failed logins, rejected tokens, refusals), aggregated per window, newest first."""
        return security.events(
            viewer=actor_of(viewer), kind=kind, principal=who, source=source, acknowledged=acknowledged, limit=limit
        )

    @router.get("/security/alerts")
    def alerts(
        principal: Annotated[Any, Depends(readers)],
        state: Annotated[Literal["open", "acknowledged"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """Alerts raised by the thresholds, newest first."""
        return security.alerts(viewer=actor_of(principal), state=state, limit=limit)

    @router.post("/security/alerts/{alert_id}/acknowledge")
    def acknowledge_alert(
        alert_id: Id, body: Acknowledgement, principal: Annotated[Any, Depends(regulator)]
    ) -> dict[str, Any]:
        """The regulator has reviewed an alert (ledgered with its actor and the note's hash)."""
        return security.acknowledge_alert(alert_id, note=body.note, by=actor_of(principal))

    @router.post("/security/events/{event_id}/acknowledge")
    def acknowledge_event(
        event_id: Id, body: Acknowledgement, principal: Annotated[Any, Depends(regulator)]
    ) -> dict[str, Any]:
        """The regulator has reviewed an event row (ledgered with its actor and the note's hash)."""
        return security.acknowledge_event(event_id, note=body.note, by=actor_of(principal))

    return router


__all__ = ["SecurityWatch", "build_router", "event_of", "mark", "note_principal"]
