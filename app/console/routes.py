"""The console's router: login, logout, the role's home, error pages, and each role's pages.

Every state-changing console request passes the Origin check of ``app.console.security`` (a router
dependency, so a page added later cannot forget it), and every console response carries its security
headers (:class:`~app.console.security.SecurityHeaders`, installed by :func:`install_console_handlers`).

Each role's pages live in their own module (``operator_pages``, ``agency_pages``,
``regulator_pages``, ``custodian_pages``) with a ``register(router, console)`` function; what they
share (the templates, the session checks, :meth:`Console.render`) is in ``app.console.context``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.security import mark
from app.console import (
    agency_admin_pages,
    agency_pages,
    custodian_access_pages,
    custodian_catalog_pages,
    custodian_ingest_pages,
    custodian_pages,
    custodian_profile_pages,
    custodian_release_pages,
    custodian_usage_pages,
    glossary_page,
    operator_catalog_pages,
    operator_job_pages,
    operator_jobform_pages,
    operator_pages,
    regulator_pages,
    release_thread_pages,
    request_pages,
    security_pages,
)
from app.console.context import NAV, ROLE_LABELS, STATIC, TEMPLATES, Console, add_globals
from app.console.flash import LOGIN_REASONS
from app.console.next_page import login_url, safe_next
from app.console.qr import qr_svg
from app.console.security import SecurityHeaders, check_origin
from app.console.session import (
    COOKIE,
    PATH,
    Forbidden,
    LoginRequired,
    RenewedSessionCookie,
    Session,
    Sessions,
    clear_session_cookie,
    set_session_cookie,
)
from operators import AuthenticationError, IdentityError
from registry import SecurityEventKind

if TYPE_CHECKING:
    from app.instance import Instance


#: The page modules, each with ``register(router, console)``.
PAGES = (
    operator_pages,
    operator_jobform_pages,  # /operator/jobs/new before /operator/jobs/{job_id}
    operator_job_pages,
    operator_catalog_pages,
    agency_pages,
    agency_admin_pages,
    regulator_pages,
    custodian_pages,
    custodian_release_pages,
    custodian_access_pages,
    custodian_ingest_pages,
    custodian_profile_pages,
    custodian_catalog_pages,
    custodian_usage_pages,
    request_pages,
    security_pages,
    glossary_page,  # issue 18 — everywhere18
    release_thread_pages,  # issue 18 — review18: the operator's release thread
)


def build_console(instance: Instance, *, secure_cookies: bool = False) -> APIRouter:
    """The ``/console`` router over an opened instance."""
    console = Console(instance, secure_cookies=secure_cookies)

    def same_origin(request: Request) -> None:
        check_origin(request, console.origins)

    router = APIRouter(prefix=PATH, include_in_schema=False, dependencies=[Depends(same_origin)])

    _login_routes(router, console)

    @router.get("", response_class=HTMLResponse)
    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        session = console.session(request)
        return RedirectResponse(PATH + NAV[session.role][0][0], status_code=303)

    for module in PAGES:
        register: Callable[[APIRouter, Console], None] = module.register
        register(router, console)
    return router


def _login_routes(router: APIRouter, console: Console) -> None:
    """Login (with the return to the page asked for), enrolment of the second factor, logout."""

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, reason: str = "", next: str = "") -> HTMLResponse:
        """The login form; ``next``: the console page to return to afterwards, kept only when it is one
        (``app.console.next_page.safe_next``), so the form can never send anyone elsewhere."""
        return console.render(
            request, None, "console/login.html", reason=LOGIN_REASONS.get(reason, ""), next=safe_next(next) or ""
        )

    @router.post("/login")
    async def login(request: Request) -> Response:
        """An API key and its principal's current code open a session; a valid key whose principal has no
        confirmed second factor gets the enrolment page instead (SATRE 3.2.04), never a session."""
        form = await console.read_form(request)
        api_key, code = str(form.get("api_key", "")).strip(), str(form.get("totp", "")).strip()
        back = safe_next(str(form.get("next", ""))) or ""
        identity = console.instance.identity
        try:
            if identity.totp_state(api_key) != "confirmed":
                enrolment = identity.enrol_totp(api_key)  # a new secret each time until one is confirmed
                return console.render(
                    request, None, "console/enrol.html", principal=enrolment.principal,
                    secret=enrolment.secret, uri=enrolment.uri, qr=qr_svg(enrolment.uri), reason="", next=back,
                )  # fmt: skip
            return _session_for(request, api_key, code, confirming=False, back=back)
        except AuthenticationError as exc:
            return _failed(request, api_key, exc, back)

    @router.post("/login/enrol")
    async def confirm_enrolment(request: Request) -> Response:
        """The first code of the factor just enrolled: confirms it and opens the session (ledgered together)."""
        form = await console.read_form(request)
        api_key, code = str(form.get("api_key", "")).strip(), str(form.get("totp", "")).strip()
        back = safe_next(str(form.get("next", ""))) or ""
        try:
            return _session_for(request, api_key, code, confirming=True, back=back)
        except AuthenticationError as exc:
            return _failed(request, api_key, exc, back)
        except IdentityError as exc:  # already confirmed (a second tab): log in with a code instead
            return console.render(request, None, "console/login.html", status_code=409, reason=str(exc))

    def _session_for(request: Request, api_key: str, code: str, *, confirming: bool, back: str = "") -> Response:
        """The session's cookie and a redirect to the page the person came for (``back``, already checked
        by ``safe_next``), else the role's home; a page of another role then answers 403 as it would."""
        token, lifetime = console.sessions.login(api_key, code, confirming=confirming)
        response = RedirectResponse(back or PATH, status_code=303)
        set_session_cookie(response, token, lifetime, secure=console.secure_for(request))
        return response

    def _failed(request: Request, api_key: str, exc: AuthenticationError, back: str = "") -> Response:
        """A failed login is a security event (SATRE 2.5.03), never with the key or the code."""
        mark(request, SecurityEventKind.LOGIN_FAILED, console.instance.identity.claimed_name(api_key), str(exc))
        return console.render(
            request, None, "console/login.html", status_code=401, reason=f"登录失败 · login failed: {exc}", next=back
        )

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        console.sessions.logout(request)  # the cookie's JWT is revoked: a copy of it no longer works
        response = RedirectResponse(PATH + "/login", status_code=303)
        clear_session_cookie(response, secure=console.secure_for(request))
        return response


def install_console_handlers(app: FastAPI, instance: Any) -> None:
    """Login redirects and 403 pages for console routes (API routes keep their JSON errors), and the
    security headers on every console page and static asset."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    app.add_middleware(RenewedSessionCookie, secure=_secure_cookies(instance))
    app.add_middleware(SecurityHeaders)
    add_globals(templates, instance)
    sessions = Sessions(instance.identity, instance.keys.jwt_key)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        """To the login form, which brings the person back to this page afterwards (a GET only: a form
        posted with an ended session cannot be replayed, its page can)."""
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = login_url(exc.reason, back if request.method == "GET" else "")
        response = RedirectResponse(target, status_code=303)
        clear_session_cookie(response, secure=request.url.scheme == "https")
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _not_found(request: Request, exc: StarletteHTTPException) -> Response:
        """An unknown console page is an HTML page with the role's navigation (issue 18); everything else,
        the API's unknown paths included, keeps the JSON error."""
        path = request.url.path
        if exc.status_code != 404 or not (path == PATH or path.startswith(PATH + "/")):
            return await http_exception_handler(request, exc)
        session = _quiet_session(sessions, request)
        return templates.TemplateResponse(
            request,
            "console/not_found.html",
            {"session": session, "nav": NAV.get(session.role, []) if session else [],
             "role_label": ROLE_LABELS.get(session.role, "") if session else "", "base": PATH,
             "home": PATH + NAV[session.role][0][0] if session else PATH + "/login"},
            status_code=404,
        )  # fmt: skip

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return templates.TemplateResponse(
            request,
            "console/error.html",
            {"session": None, "nav": [], "role_label": "", "base": PATH, "message": str(exc)},
            status_code=exc.status_code,
        )


def _secure_cookies(instance: Any) -> bool:
    """Whether the session cookie is always Secure (as ``app.api.factory`` builds the console)."""
    settings = getattr(instance, "settings", None)
    return bool(getattr(settings, "console_secure_cookies", False) or getattr(settings, "transport_secure", False))


def _quiet_session(sessions: Sessions, request: Request) -> Session | None:
    """The request's session if it has a valid one, else ``None``: a 404 page never sends anyone to log in."""
    if not request.cookies.get(COOKIE):
        return None
    try:
        return sessions.current(request)
    except (LoginRequired, Forbidden):
        return None


__all__ = ["STATIC", "build_console", "install_console_handlers"]
