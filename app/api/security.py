"""Security events over HTTP (SATRE 2.5.03): what every refused request leaves behind, and the routes
the regulator reviews them with.

:class:`SecurityWatch` sees the status of every response (API and console alike). A route or
dependency that knows more names the event with :func:`mark` (the kind, the principal or the name a
credential claimed, why); any other 401 or 403 is recorded all the same, as a rejected token or a
refusal, with the authenticated principal when there was one (:func:`note_principal`). So a refusal
added later cannot go unrecorded: what nobody marked is still counted. The rule of what is kept, how
it is bounded and when it alerts is ``registry.SecurityEvents``'; the middleware only counts into a
:class:`SecurityBuffer`, written in batches off the request path, and a failure to write is logged,
never turned into a request's answer.
"""

import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from app.api.limits import Id, Name
from app.api.schemas import SecurityAlertOut, SecurityEventOut
from core import actor_of
from registry import SecurityEvent, SecurityEventKind, SecurityEvents

logger = logging.getLogger("keyong.security")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Seconds between the first pending event and its write; readers flush at once.
FLUSH_SECONDS = 0.5
#: Distinct (kind, source, principal, route, detail) counters held between writes.
MAX_PENDING = 1000
#: Counters written per transaction (each holds the embedded database's write lock a fraction of a second).
FLUSH_BATCH = 50
OVERFLOW = "*"
_EVENT = "keyong_security_event"
_PRINCIPAL = "keyong_principal"
#: The request :class:`SecurityWatch` is watching, for refusals answered without a 401 or 403.
_WATCHED: ContextVar[Scope | None] = ContextVar("keyong_security_watched", default=None)


def mark(request: Request, kind: SecurityEventKind, principal: str | None, detail: str = "") -> None:
    """Name the security event this request is (recorded by :class:`SecurityWatch` after the response)."""
    setattr(request.state, _EVENT, (kind, principal, detail))


def mark_refused(principal: str | None, detail: str) -> None:
    """The request being answered is an authorization refusal, though not a 403: the console answers one
    with a flash redirect (a regulator pressing "unfreeze"), where the API's 403 is recorded as
    ``forbidden``; recorded the same (a route's own :func:`mark` stands). Outside a request: nothing."""
    scope = _WATCHED.get()
    if scope is not None:
        scope.setdefault("state", {}).setdefault(_EVENT, (SecurityEventKind.FORBIDDEN, principal, detail))


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


class SecurityBuffer:
    """Events of this process not yet written, counted per (kind, source, principal, route, detail).

    A refused request only adds one to a counter here, so a flood costs the server nothing but that;
    a timer writes what was counted once :data:`FLUSH_SECONDS` after the first pending event, as one
    transaction (``SecurityEvents.record_many``), and whoever reads the events (the routes below, the
    console's page) flushes first, so a reader never misses what was refused before it asked. Pending
    keys are bounded (:data:`MAX_PENDING`): past that, a flood of invented names and addresses folds
    into one ``*`` counter per kind. What was counted in the last moment before a crash is lost.
    """

    def __init__(self, security: SecurityEvents) -> None:
        self.security = security
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._pending: dict[tuple[SecurityEventKind, str, str, str, str], int] = {}
        self._timer: threading.Timer | None = None

    def add(self, kind: SecurityEventKind, source: str | None, principal: str | None, route: str, detail: str) -> None:
        key = (kind, source or "", principal or "", route[:200], detail[:200])
        with self._lock:
            if key not in self._pending and len(self._pending) >= MAX_PENDING:
                key = (kind, OVERFLOW, OVERFLOW, "", "")
            self._pending[key] = self._pending.get(key, 0) + 1
            if self._timer is None:
                self._timer = threading.Timer(FLUSH_SECONDS, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Write every pending count now (one transaction); a failure is logged and the counts kept.

        Flushes are serialized: a reader's flush waits for the timer's flush that took the pending
        counts a moment before and is still writing them, so the reader never reads the table before
        they are in it (a CI run once saw one refusal of three).
        """
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not pending:
            return
        events = [
            SecurityEvent(kind, source or None, principal or None, route, detail, count)
            for (kind, source, principal, route, detail), count in pending.items()
        ]
        keys = list(pending)
        for start in range(0, len(events), FLUSH_BATCH):  # short transactions: other writers are not held up
            try:
                self.security.record_many(events[start : start + FLUSH_BATCH])
            except Exception:  # the refusals stand; their records wait for the next flush
                logger.exception("could not record %d security events; kept for the next flush", len(events) - start)
                with self._lock:
                    for key in keys[start:]:
                        self._pending[key] = self._pending.get(key, 0) + pending[key]
                return


class SecurityWatch:
    """ASGI middleware: after each HTTP response, count the security event it was (if any)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], buffer: SecurityBuffer) -> None:
        self.app = app
        self.buffer = buffer

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

        watched = _WATCHED.set(scope)
        try:
            await self.app(scope, receive, watching)
        finally:
            _WATCHED.reset(watched)
            event = event_of(scope, status)
            if event is not None:
                client = scope.get("client")
                kind, principal, detail = event
                self.buffer.add(kind, str(client[0]) if client else None, principal, _route(scope), detail)


class Acknowledgement(BaseModel):
    note: str = Field(min_length=1, max_length=2000, description="What was found and done; kept with the ack.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "密钥已轮换 key rotated, operator notified"}]})


def build_router(buffer: SecurityBuffer, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Events and alerts: read by the agency and the regulator, acknowledged by the regulator."""
    security = buffer.security
    router = APIRouter(tags=["security"])
    readers = require("agency", "regulator")
    regulator = require("regulator")

    @router.get("/security/events", response_model=list[SecurityEventOut])
    def events(
        viewer: Annotated[Any, Depends(readers)],
        kind: Annotated[SecurityEventKind | None, Query()] = None,
        who: Annotated[Name | None, Query(alias="principal", description="the principal (or claimed name)")] = None,
        source: Annotated[Name | None, Query(description="the client address")] = None,
        acknowledged: Annotated[bool | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """Security events (failed logins, rejected tokens, refusals), aggregated per window, newest first."""
        buffer.flush()
        return security.events(
            viewer=actor_of(viewer), kind=kind, principal=who, source=source, acknowledged=acknowledged, limit=limit
        )

    @router.get("/security/alerts", response_model=list[SecurityAlertOut])
    def alerts(
        principal: Annotated[Any, Depends(readers)],
        state: Annotated[Literal["open", "acknowledged"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """Alerts raised by the thresholds, newest first."""
        buffer.flush()
        return security.alerts(viewer=actor_of(principal), state=state, limit=limit)

    @router.post("/security/alerts/{alert_id}/acknowledge", response_model=SecurityAlertOut)
    def acknowledge_alert(
        alert_id: Id, body: Acknowledgement, principal: Annotated[Any, Depends(regulator)]
    ) -> dict[str, Any]:
        """The regulator has reviewed an alert (ledgered with its actor and the note's hash)."""
        return security.acknowledge_alert(alert_id, note=body.note, by=actor_of(principal))

    @router.post("/security/events/{event_id}/acknowledge", response_model=SecurityEventOut)
    def acknowledge_event(
        event_id: Id, body: Acknowledgement, principal: Annotated[Any, Depends(regulator)]
    ) -> dict[str, Any]:
        """The regulator has reviewed an event row (ledgered with its actor and the note's hash)."""
        return security.acknowledge_event(event_id, note=body.note, by=actor_of(principal))

    return router


__all__ = ["SecurityBuffer", "SecurityWatch", "build_router", "event_of", "mark", "mark_refused", "note_principal"]
