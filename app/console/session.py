"""Console sessions: the API's JWT in a cookie, a CSRF token bound to it, and role checks.

Why a cookie and not ``Authorization``: a browser navigating server-rendered pages cannot attach a
bearer header. The cookie is HttpOnly (page scripts cannot read the token), SameSite=Strict (other
sites' pages cannot make the browser send it), Secure when configured or served over https, scoped to
``/console`` and lives as long as the JWT (15 minutes by default); every request re-verifies the JWT
and the principal (a suspended principal is out at once, as over the API). State-changing forms also
carry a CSRF token: an HMAC of the JWT under the instance's JWT key, so it cannot be guessed without
the session and dies with it; every state-changing request must also come from the console's own
origin (``app.console.security``).

Logging out ends the session on the server, not only in the browser: the JWT's id is recorded as
revoked (``IdentityService.revoke_token``), so a copied cookie stops working at once, as does every
session of a key that is revoked or rotated.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse

from app.api.security import mark, note_principal
from core import Actor, actor_of
from operators import AuthenticationError, IdentityService, Principal, RecoveryHoldError, Role
from registry import SecurityEventKind

COOKIE = "keyong_console"
PATH = "/console"


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

    @property
    def role(self) -> str:
        return self.principal.role.value

    @property
    def actor(self) -> Actor:
        """Who the registry and the ledger record as doing what this session does."""
        return actor_of(self.principal)


class Sessions:
    def __init__(self, identity: IdentityService, csrf_key: bytes) -> None:
        self.identity = identity
        self._csrf_key = csrf_key

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
        except Exception:  # a malformed cookie is an ended session, never a 500
            mark(request, SecurityEventKind.TOKEN_REJECTED, None, "malformed session cookie")
            raise LoginRequired("session_ended") from None
        note_principal(request, principal.name)
        return Session(principal, token, csrf)

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
        if not hmac.compare_digest(given, session.csrf):
            raise Forbidden("表单已过期或来源不明 · the form's CSRF token is missing or stale; reload the page")


def set_session_cookie(response: RedirectResponse, token: str, max_age: int, *, secure: bool) -> None:
    response.set_cookie(COOKIE, token, max_age=max_age, path=PATH, httponly=True, samesite="strict", secure=secure)


def clear_session_cookie(response: RedirectResponse, *, secure: bool = False) -> None:
    """Expire the cookie with the same attributes it was set with (a browser matches on them)."""
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict", secure=secure)


__all__ = [
    "COOKIE",
    "PATH",
    "Forbidden",
    "LoginRequired",
    "Session",
    "Sessions",
    "UnreadableForm",
    "clear_session_cookie",
    "set_session_cookie",
]
