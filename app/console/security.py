"""The console's browser-facing defences (issue 17): the Origin check and the security headers.

- **Origin check.** Every state-changing console request (login and logout included, which carry no
  CSRF token because there is no session yet, or none worth keeping) must come from a page of this
  server: its ``Origin`` header — or, when a browser sent none, the origin of its ``Referer`` — must
  be the server's own origin (the scheme and ``Host`` the request was addressed to) or one listed in
  ``console_origins`` (behind a proxy that rewrites the host). A request with neither header is
  refused too: every browser sends one on a form POST, so only a non-browser client, which has the
  API for that, goes without. This stops login CSRF (logging a victim in as the attacker) and forced
  logout, and is a second lock behind the CSRF tokens of the other forms.
- **Headers.** Every console page and static asset carries a Content-Security-Policy with no inline
  script or style at all (the templates use ``/static`` files only), ``frame-ancestors 'none'`` and
  ``X-Frame-Options: DENY`` against clickjacking, ``nosniff``, ``Referrer-Policy: same-origin`` (ids
  in console URLs never leave for another site), and console pages ``Cache-Control: no-store`` so a
  shared browser's cache or back button never shows a logged-out role's pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.console.session import PATH, Forbidden

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
STATIC_PATH = "/static"
PUBLIC_PATH = "/public"  # app.console.public_page
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


class CrossSiteRequest(Forbidden):
    """A state-changing console request that did not come from a page of this server."""


def origin_of(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an http(s) URL or origin, default ports filled in; None otherwise."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def trusted_origins(configured: Iterable[str]) -> frozenset[Origin]:
    """The configured extra origins, parsed (a malformed one is a configuration error at start)."""
    parsed = set()
    for value in configured:
        origin = origin_of(value)
        if origin is None:
            raise ValueError(f"console_origins: {value!r} is not an http(s) origin such as https://data.example.gov")
        parsed.add(origin)
    return frozenset(parsed)


def check_origin(request: Request, extra: frozenset[Origin] = frozenset()) -> None:
    """Refuse (403) a state-changing request whose Origin, or failing that Referer, is not this server."""
    if request.method in SAFE_METHODS:
        return
    own = origin_of(str(request.url))
    claimed = request.headers.get("origin")
    if claimed is None:
        referer = request.headers.get("referer")
        if referer is None:
            raise CrossSiteRequest(
                "请求没有来源 · the request carries neither an Origin nor a Referer header; "
                "submit the form from the console's own page"
            )
        claimed = referer
    origin = origin_of(claimed)  # "null" (a sandboxed or privacy-stripped origin) parses to None
    if origin is None or (origin != own and origin not in extra):
        raise CrossSiteRequest(
            f"跨站请求被拒绝 · cross-site request refused: it came from {claimed[:200]!r}, "
            "not from this console; open the console directly and submit the form again"
        )


#: What every other response carries (the API's JSON, ``/docs``, ``/redoc``, ``/healthz``, 404s): no framing
#: (``/docs`` is a page that acts with the token pasted into it), no sniffing, no referrer, no caching.
#: Not the console's strict CSP: the offline Swagger UI and ReDoc pages run inline scripts.
API_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _covered(path: str) -> tuple[bool, bool]:
    """(carries the console's security headers, is a console page that must not be cached)."""
    page = path == PATH or path.startswith(PATH + "/") or path == PUBLIC_PATH  # the public register's page too
    asset = path == STATIC_PATH or path.startswith(STATIC_PATH + "/")
    return page or asset, page


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` to console pages and static assets, and ``no-store`` to pages;
    every other response gets :data:`API_HEADERS` and, unless it chose its own, ``no-store`` (issue 17).

    Plain ASGI (not ``BaseHTTPMiddleware``) so file downloads stream through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        covered, page = _covered(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                own_policy = headers.get("content-security-policy")
                for name, value in (HEADERS if covered else API_HEADERS).items():
                    headers[name] = value
                if own_policy:  # a response's stricter policy (an SVG output, issue 18) adds to ours: both apply
                    headers.append("Content-Security-Policy", own_policy)
                if page:
                    headers["Cache-Control"] = "no-store"
                    headers["Pragma"] = "no-cache"
                elif not covered and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = [
    "API_HEADERS",
    "CSP",
    "HEADERS",
    "CrossSiteRequest",
    "SecurityHeaders",
    "check_origin",
    "origin_of",
    "trusted_origins",
]
