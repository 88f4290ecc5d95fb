"""Console sessions: the API's JWT in a cookie, a CSRF token bound to it, and role checks.

Why a cookie and not ``Authorization``: a browser navigating server-rendered pages cannot attach a
bearer header. The cookie is HttpOnly (page scripts cannot read the token), SameSite=Strict (other
sites' pages cannot make the browser send it), Secure when configured or served over https, scoped to
``/console`` and lives as long as the JWT (15 minutes by default); every request re-verifies the JWT
and the principal (a suspended principal is out at once, as over the API). State-changing forms also
carry a CSRF token: an HMAC of the JWT under the instance's JWT key, so it cannot be guessed without
the session and dies with it; every state-changing request must also come from the console's own
origin (``app.console.security``).

A session renews while it is used (issue 18): a request made in the second half of the token's life gets a
fresh token in a new cookie (``IdentityService.renew_token``, ledgered), so a person working does not meet the
login form every 15 minutes, while an idle one is still out when the token expires. Renewal stops at
:data:`MAX_SESSION` after the login (an absolute maximum: a stolen cookie cannot be kept alive for ever) and
whenever the token is no longer accepted (revoked key, suspension, logout). Logging out revokes the whole
chain of renewed tokens (their shared session id), not only the last one.

Logging out ends the session on the server, not only in the browser: the JWT's id is recorded as
revoked (``IdentityService.revoke_token``), so a copied cookie stops working at once, as does every
session of a key that is revoked or rotated.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.security import mark, note_principal
from app.console.flash import SIG
from core import Actor, actor_of
from ledger import gave_up_waiting
from operators import AuthenticationError, IdentityService, Principal, RecoveryHoldError, Role
from registry import SecurityEventKind

COOKIE = "keyong_console"
PATH = "/console"
#: A console session renews while in use, but never beyond this long after its login (issue 18).
MAX_SESSION = timedelta(hours=8)
#: Where a renewed token waits for :class:`RenewedSessionCookie` to set it on the response.
_RENEWED = "keyong_console_renewed"


class LoginRequired(Exception):  # noqa: N818 - a control-flow signal, turned into a redirect
    """No valid session: the page redirects to the login form with ``reason``, an id of
    ``app.console.flash.LOGIN_REASONS`` (never free text in the URL)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(Exception):  # noqa: N818 - rendered as a 403 page
    """The principal's role may not open this page or do this action."""

    status_code = 403


class UnreadableForm(Forbidden):
    """A posted form holding what the console cannot store (a NUL, a lone surrogate): a 400 page."""

    status_code = 400


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    token: str
    csrf: str
    #: The CSRF token of the request's own cookie when this request renewed the session: the form that
    #: was posted carries it, while the page rendered now (and the next form) carries :attr:`csrf`.
    previous_csrf: str = ""

    @property
    def role(self) -> str:
        return self.principal.role.value

    @property
    def actor(self) -> Actor:
        """Who the registry and the ledger record as doing what this session does."""
        return actor_of(self.principal)


class Sessions:
    def __init__(self, identity: IdentityService, csrf_key: bytes, *, max_age: timedelta = MAX_SESSION) -> None:
        self.identity = identity
        self._csrf_key = csrf_key
        self.max_age = max_age

    def csrf_for(self, token: str) -> str:
        """Bound to the session's JWT itself (unique per login, carrying its jti), so the request's one
        verification of the token (in :meth:`current`) serves the CSRF check too."""
        return hmac.new(self._csrf_key, f"console-csrf:{token}".encode(), hashlib.sha256).hexdigest()

    def login(self, api_key: str, totp: str | None, *, confirming: bool = False) -> tuple[str, int]:
        """The JWT for an API key and its principal's current TOTP code, and its lifetime in seconds (raises
        ``AuthenticationError``); ``confirming``: the code confirms the factor just enrolled."""
        issued = self.identity.exchange(api_key, totp, confirming=confirming)
        lifetime = int((issued.claims.expires_at - issued.claims.issued_at).total_seconds())
        return issued.token, max(1, lifetime)

    def logout(self, request: Request) -> bool:
        """End the request's session on the server (its JWT revoked); ``False`` if there was none live."""
        token = request.cookies.get(COOKIE)
        return bool(token) and self.identity.revoke_token(str(token))

    def current(self, request: Request) -> Session:
        token = request.cookies.get(COOKIE)
        if not token:
            raise LoginRequired("login_required")
        try:
            principal = self.identity.authenticate_token(token)
            csrf = self.csrf_for(token)
        except RecoveryHoldError as exc:  # a person held until a second agency person confirms (SATRE 3.2.01)
            mark(request, SecurityEventKind.FORBIDDEN, self.identity.claimed_name(str(token)), str(exc))
            raise Forbidden(f"账号待第二人确认 · {exc}") from None
        except AuthenticationError as exc:  # expired, revoked, suspended: the login form says which
            mark(request, SecurityEventKind.TOKEN_REJECTED, self.identity.claimed_name(str(token)), str(exc))
            raise LoginRequired("session_ended") from None
        except Exception as exc:  # a malformed cookie is an ended session, never a 500
            if gave_up_waiting(exc):  # a bounded wait behind a lock (red team 23b F3): the page says busy
                raise
            mark(request, SecurityEventKind.TOKEN_REJECTED, None, "malformed session cookie")
            raise LoginRequired("session_ended") from None
        note_principal(request, principal.name)
        renewed = self._renew(request, str(token))
        if renewed is None:
            return Session(principal, token, csrf)
        return Session(principal, renewed, self.csrf_for(renewed), previous_csrf=csrf)

    def _renew(self, request: Request, token: str) -> str | None:
        """A fresh token when ``token`` is past half its life and its session below :attr:`max_age`, handed
        to :class:`RenewedSessionCookie` (through the request's state) to set on the response."""
        if SIG in request.query_params:  # a message signed for this very token: renewing would hide it
            return None  # (``app.console.flash``); the next request renews
        claims = self.identity.tokens.verify(token)  # verified a moment ago by authenticate_token
        lifetime = claims.expires_at - claims.issued_at
        if claims.expires_at - datetime.now(UTC) > lifetime / 2:
            return None
        try:
            issued = self.identity.renew_token(token, max_age=self.max_age)
        except AuthenticationError:  # revoked between the two checks: ended, as above
            raise LoginRequired("session_ended") from None
        if issued is None:  # the absolute maximum reached: the token runs out, then the login form
            return None
        max_age = max(1, int((issued.claims.expires_at - datetime.now(UTC)).total_seconds()))
        request.state.__setattr__(_RENEWED, (issued.token, max_age))
        return issued.token

    def require(self, request: Request, *roles: Role) -> Session:
        session = self.current(request)
        if roles and session.principal.role not in roles:
            raise Forbidden(
                f"角色 {session.role} 不能访问此页 · role {session.role!r} may not open this page "
                f"(allowed: {', '.join(r.value for r in roles)})"
            )
        return session

    def check_csrf(self, session: Session, form: Any) -> None:
        given = str(form.get("csrf", "")) if form is not None else ""
        fresh = hmac.compare_digest(given, session.csrf)
        previous = bool(session.previous_csrf) and hmac.compare_digest(given, session.previous_csrf)
        if not (fresh or previous):
            raise Forbidden("表单已过期或来源不明 · the form's CSRF token is missing or stale; reload the page")


def set_session_cookie(response: Response, token: str, max_age: int, *, secure: bool) -> None:
    response.set_cookie(COOKIE, token, max_age=max_age, path=PATH, httponly=True, samesite="strict", secure=secure)


def clear_session_cookie(response: Response, *, secure: bool = False) -> None:
    """Expire the cookie with the same attributes it was set with (a browser matches on them)."""
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict", secure=secure)


class RenewedSessionCookie:
    """ASGI middleware: sets the cookie of a session renewed during the request (:meth:`Sessions.current`).

    Plain ASGI, so file downloads stream through untouched; a response that sets the session cookie itself
    (login, logout, the login redirect clearing it) keeps its own.
    """

    def __init__(self, app: ASGIApp, *, secure: bool = False) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PATH):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_cookie(message: Message) -> None:
            renewed = state.get(_RENEWED)
            if message["type"] == "http.response.start" and renewed is not None:
                headers = MutableHeaders(scope=message)
                if not any(v.startswith(COOKIE + "=") for v in headers.getlist("set-cookie")):
                    probe = Response()
                    secure = self.secure or scope.get("scheme") == "https"
                    set_session_cookie(probe, renewed[0], renewed[1], secure=secure)
                    headers.append("set-cookie", probe.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, send_with_cookie)


__all__ = [
    "COOKIE",
    "MAX_SESSION",
    "PATH",
    "Forbidden",
    "LoginRequired",
    "RenewedSessionCookie",
    "Session",
    "Sessions",
    "UnreadableForm",
    "clear_session_cookie",
    "set_session_cookie",
]
