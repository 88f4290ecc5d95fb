"""The API's edge (issue 17): what no route should have to check, refused before any route runs.

* Any request body over :data:`app.api.limits.MAX_JSON_BYTES` (declared or received), whatever its
  Content-Type, is 413: FastAPI reads a route's whole body into memory before validating it, so a
  ``text/plain`` body of any size to ``/auth/token`` (no authentication) used to be buffered whole.
  Only the raw-file upload (:data:`STREAMED`), which streams and bounds its own body, is let through.
* More than one ``Content-Type`` header is 400: this guard and FastAPI would read different ones
  (a JSON first header and a ``text/plain`` second one slipped a NUL past the checks below).
* A JSON body holding ``NaN``/``Infinity`` (not JSON at all, RFC 8259 §6, though Python's parser takes
  them), a lone surrogate (not Unicode: it cannot be stored or even encoded as UTF-8), a NUL
  (PostgreSQL text cannot hold it) or nesting deeper than :data:`app.api.limits.MAX_JSON_DEPTH` is 422.
* A path or query string holding control characters, or a query that is not UTF-8, is 422.
* Validation errors never echo what cannot be serialised: FastAPI's own handler echoes the input,
  so a body holding NaN or a lone surrogate made its 422 a 500.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.api.limits import MAX_JSON_BYTES, MAX_JSON_DEPTH

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_URL_CONTROLS = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_ECHO_CHARS = 200
#: Routes that stream and bound their own body (``app.api.ingest``: up to the upload bound, sealed as it
#: arrives; the console's upload form reads through the same code); every other request body is capped here.
#: The console's form was missing (red team 21c F8): any file over the JSON cap got this guard's JSON 413.
STREAMED = re.compile(r"^(?:/datasets/[^/]+/ingest|/console/custodian/upload)$")


class EdgeRefusedError(Exception):
    """A request refused at the edge: its status and the validation-style error it is answered with."""

    def __init__(self, status: int, kind: str, where: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"detail": [{"type": kind, "loc": [where], "msg": message}]}


def _not_a_number(constant: str) -> float:
    raise EdgeRefusedError(422, "json_not_finite", "body", f"{constant} is not JSON: numbers must be finite")


def _is_json(content_type: str) -> bool:
    """As FastAPI decides to parse a body as JSON: no content type, or ``application/json`` / ``+json``."""
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def check_json_text(value: Any) -> None:
    """Refuse (:class:`EdgeRefusedError`) what the parsed body holds that no route can store or answer with."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise EdgeRefusedError(
                    422, "string_unicode", "body", "strings must be valid Unicode without NUL (no lone surrogates)"
                )
        elif isinstance(item, dict):
            stack.extend((key, depth + 1) for key in item)
            stack.extend((entry, depth + 1) for entry in item.values())
        elif isinstance(item, list):
            stack.extend((entry, depth + 1) for entry in item)


def check_json_body(body: bytes) -> None:
    """Parse ``body`` as the route will; refuse what is not finite, not Unicode or too deep. A body that is
    not JSON at all passes, for FastAPI to answer with its own 422."""
    try:
        parsed = json.loads(body, parse_constant=_not_a_number)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        return
    check_json_text(parsed)


def check_url(scope: Scope) -> None:
    """Refuse a path or query with control characters, or a query that is not UTF-8."""
    if _URL_CONTROLS.search(scope.get("path", "")):
        raise EdgeRefusedError(422, "url_characters", "path", "the path holds control characters")
    query: bytes = scope.get("query_string", b"")
    try:
        decoded = unquote_to_bytes(query.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise EdgeRefusedError(422, "url_characters", "query", "the query string is not UTF-8") from None
    if _URL_CONTROLS.search(decoded):
        raise EdgeRefusedError(422, "url_characters", "query", "the query string holds control characters")


def _too_deep() -> EdgeRefusedError:
    return EdgeRefusedError(422, "json_too_deep", "body", f"the body nests deeper than {MAX_JSON_DEPTH} levels")


def _too_large() -> EdgeRefusedError:
    return EdgeRefusedError(
        413,
        "body_too_large",
        "body",
        f"a request body is at most {MAX_JSON_BYTES:,} bytes (raw files: the ingest route)",
    )


class EdgeGuard:
    """ASGI middleware applying the checks above to every HTTP request (every route, ``/auth/token`` too)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_url(scope)
            raw_headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]
            if sum(1 for name, _ in raw_headers if name == "content-type") > 1:
                raise EdgeRefusedError(400, "content_type", "header", "send one Content-Type header")
            headers = dict(raw_headers)
            streamed = STREAMED.match(scope.get("path", "")) and scope.get("method") == "POST"
            if streamed and headers.get("content-type", "").lower().startswith("multipart/form-data"):
                await self.app(scope, receive, send)
                return
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
                raise _too_large()
            body = await _read_body(receive)
            if body and _is_json(headers.get("content-type", "")):
                check_json_body(body)
        except EdgeRefusedError as refused:
            await JSONResponse(refused.body, status_code=refused.status)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise EdgeRefusedError(400, "disconnected", "body", "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def safe(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON can always carry it: finite numbers, valid Unicode, short texts, bounded depth."""
    if isinstance(value, str):
        text = value if len(value) <= _ECHO_CHARS else value[:_ECHO_CHARS] + "…"
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    if value is None or isinstance(value, bool | int):
        return value if not isinstance(value, int) or abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= 4:
        return "…"
    if isinstance(value, dict):
        return {str(safe(k, depth + 1)): safe(v, depth + 1) for k, v in list(value.items())[:20]}
    if isinstance(value, list | tuple):
        return [safe(v, depth + 1) for v in list(value)[:20]]
    return safe(str(value), depth)


async def validation_failed(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, minus anything that could not be serialised: inputs are echoed only as safe text."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {key: safe(error[key]) for key in ("type", "loc", "msg", "input", "ctx") if key in error} for error in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def install_edge(app: FastAPI) -> None:
    """Guard every request at the edge, and answer validation errors without echoing the unserialisable."""
    app.add_middleware(EdgeGuard)
    app.add_exception_handler(RequestValidationError, validation_failed)


__all__ = ["EdgeGuard", "EdgeRefusedError", "check_json_body", "check_url", "install_edge", "safe", "validation_failed"]
