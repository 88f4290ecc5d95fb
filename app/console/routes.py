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
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.api.security import mark
from app.console import (
    agency_pages,
    custodian_access_pages,
    custodian_catalog_pages,
    custodian_ingest_pages,
    custodian_pages,
    custodian_profile_pages,
    custodian_release_pages,
    custodian_usage_pages,
    operator_catalog_pages,
    operator_pages,
    regulator_pages,
    request_pages,
    security_pages,
)
from app.console.context import NAV, STATIC, TEMPLATES, Console, add_globals
from app.console.flash import LOGIN_REASONS
from app.console.qr import qr_svg
from app.console.security import SecurityHeaders, check_origin
from app.console.session import (
    PATH,
    Forbidden,
    LoginRequired,
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
    operator_catalog_pages,
    agency_pages,
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
)


def build_console(instance: Instance, *, secure_cookies: bool = False) -> APIRouter:
    """The ``/console`` router over an opened instance."""
    console = Console(instance, secure_cookies=secure_cookies)

    def same_origin(request: Request) -> None:
        check_origin(request, console.origins)

    router = APIRouter(prefix=PATH, include_in_schema=False, dependencies=[Depends(same_origin)])

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, reason: str = "") -> HTMLResponse:
        return console.render(request, None, "console/login.html", reason=LOGIN_REASONS.get(reason, ""))

    @router.post("/login")
    async def login(request: Request) -> Response:
        """An API key and its principal's current code open a session; a valid key whose principal has no
        confirmed second factor gets the enrolment page instead (SATRE 3.2.04), never a session."""
        form = await console.read_form(request)
        api_key, code = str(form.get("api_key", "")).strip(), str(form.get("totp", "")).strip()
        identity = console.instance.identity
        try:
            if identity.totp_state(api_key) != "confirmed":
                enrolment = identity.enrol_totp(api_key)  # a new secret each time until one is confirmed
                return console.render(
                    request, None, "console/enrol.html", principal=enrolment.principal,
                    secret=enrolment.secret, uri=enrolment.uri, qr=qr_svg(enrolment.uri), reason="",
                )  # fmt: skip
            return _session_for(request, api_key, code, confirming=False)
        except AuthenticationError as exc:
            return _failed(request, api_key, exc)

    @router.post("/login/enrol")
    async def confirm_enrolment(request: Request) -> Response:
        """The first code of the factor just enrolled: confirms it and opens the session (ledgered together)."""
        form = await console.read_form(request)
        api_key, code = str(form.get("api_key", "")).strip(), str(form.get("totp", "")).strip()
        try:
            return _session_for(request, api_key, code, confirming=True)
        except AuthenticationError as exc:
            return _failed(request, api_key, exc)
        except IdentityError as exc:  # already confirmed (a second tab): log in with a code instead
            return console.render(request, None, "console/login.html", status_code=409, reason=str(exc))

    def _session_for(request: Request, api_key: str, code: str, *, confirming: bool) -> Response:
        token, lifetime = console.sessions.login(api_key, code, confirming=confirming)
        response = RedirectResponse(PATH, status_code=303)
        set_session_cookie(response, token, lifetime, secure=console.secure_for(request))
        return response

    def _failed(request: Request, api_key: str, exc: AuthenticationError) -> Response:
        """A failed login is a security event (SATRE 2.5.03), never with the key or the code."""
        mark(request, SecurityEventKind.LOGIN_FAILED, console.instance.identity.claimed_name(api_key), str(exc))
        return console.render(
            request, None, "console/login.html", status_code=401, reason=f"登录失败 · login failed: {exc}"
        )

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        console.sessions.logout(request)  # the cookie's JWT is revoked: a copy of it no longer works
        response = RedirectResponse(PATH + "/login", status_code=303)
        clear_session_cookie(response, secure=console.secure_for(request))
        return response

    @router.get("", response_class=HTMLResponse)
    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        session = console.session(request)
        return RedirectResponse(PATH + NAV[session.role][0][0], status_code=303)

    for module in PAGES:
        register: Callable[[APIRouter, Console], None] = module.register
        register(router, console)
    return router


def install_console_handlers(app: FastAPI, instance: Any) -> None:
    """Login redirects and 403 pages for console routes (API routes keep their JSON errors), and the
    security headers on every console page and static asset."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    app.add_middleware(SecurityHeaders)
    add_globals(templates, instance)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        response = RedirectResponse(f"{PATH}/login?reason={quote(exc.reason)}", status_code=303)
        clear_session_cookie(response, secure=request.url.scheme == "https")
        return response

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return templates.TemplateResponse(
            request,
            "console/error.html",
            {"session": None, "nav": [], "role_label": "", "base": PATH, "message": str(exc)},
            status_code=exc.status_code,
        )


__all__ = ["STATIC", "build_console", "install_console_handlers"]
