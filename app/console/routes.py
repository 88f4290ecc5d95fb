"""The console's router: login, logout, the role's home, error pages, and each role's pages.

Each role's pages live in their own module (``operator_pages``, ``agency_pages``,
``regulator_pages``, ``custodian_pages``) with a ``register(router, console)`` function; this module
holds what they share: the templates, the session checks, and :meth:`Console.render`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.console.session import (
    PATH,
    Forbidden,
    LoginRequired,
    Session,
    Sessions,
    clear_session_cookie,
    set_session_cookie,
)
from operators import AuthenticationError, Role

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"

#: The role's home page and its navigation: (path under /console, label).
NAV: dict[str, list[tuple[str, str]]] = {
    "operator": [
        ("/operator", "概览 Overview"),
        ("/operator/jobs", "作业 Jobs"),
        ("/operator/products", "产品 Products"),
    ],
    "agency": [
        ("/agency", "待审 Releases"),
        ("/agency/licences", "授权 Licences"),
        ("/agency/findings", "监测 Findings"),
        ("/agency/objections", "异议 Objections"),
    ],
    "regulator": [("/regulator", "账本 Ledger"), ("/regulator/usage", "使用记录 Usage")],
    "custodian": [("/custodian", "目录 Catalog")],
}
ROLE_LABELS = {"operator": "运营机构 Operator", "agency": "实施机构 Agency", "regulator": "监管部门 Regulator",
               "custodian": "数据主管部门 Custodian"}  # fmt: skip


def _datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and "T" in value:
        return value.replace("T", " ")[:19]
    return "" if value is None else str(value)


class Console:
    """What every page module uses: the instance, the templates, sessions and rendering."""

    def __init__(self, instance: Any, *, secure_cookies: bool = False) -> None:
        self.instance = instance
        self.sessions = Sessions(instance.identity, instance.keys.jwt_key)
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        self.templates.env.filters["dt"] = _datetime
        self.secure_cookies = secure_cookies

    def session(self, request: Request, *roles: Role) -> Session:
        return self.sessions.require(request, *roles)

    def render(
        self, request: Request, session: Session | None, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "session": session,
                "nav": NAV.get(session.role, []) if session else [],
                "role_label": ROLE_LABELS.get(session.role, "") if session else "",
                "base": PATH,
                **context,
            },
            status_code=status_code,
        )

    async def form(self, request: Request, session: Session) -> Any:
        """The posted form, after its CSRF token was checked."""
        form = await request.form()
        self.sessions.check_csrf(session, form)
        return form

    @staticmethod
    def redirect(path: str, message: str | None = None) -> RedirectResponse:
        from urllib.parse import quote

        target = PATH + path + (f"?msg={quote(message)}" if message else "")
        return RedirectResponse(target, status_code=303)


def build_console(instance: Any, *, secure_cookies: bool = False) -> APIRouter:
    """The ``/console`` router over an opened instance."""
    from app.console import agency_pages, custodian_pages, operator_pages, regulator_pages

    console = Console(instance, secure_cookies=secure_cookies)
    router = APIRouter(prefix=PATH, include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, reason: str = "") -> HTMLResponse:
        return console.render(request, None, "console/login.html", reason=reason)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        api_key = str(form.get("api_key", "")).strip()
        try:
            token, lifetime = console.sessions.login(api_key)
        except AuthenticationError as exc:
            return console.render(
                request, None, "console/login.html", status_code=401, reason=f"登录失败 · login failed: {exc}"
            )
        response = RedirectResponse(PATH, status_code=303)
        set_session_cookie(response, token, lifetime, secure=console.secure_cookies)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse(PATH + "/login", status_code=303)
        clear_session_cookie(response)
        return response

    @router.get("", response_class=HTMLResponse)
    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        session = console.session(request)
        return RedirectResponse(PATH + NAV[session.role][0][0], status_code=303)

    for module in (operator_pages, agency_pages, regulator_pages, custodian_pages):
        register: Callable[[APIRouter, Console], None] = module.register
        register(router, console)
    return router


def install_console_handlers(app: Any, instance: Any) -> None:
    """Login redirects and 403 pages for console routes (API routes keep their JSON errors)."""
    templates = Jinja2Templates(directory=str(TEMPLATES))

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        response = RedirectResponse(f"{PATH}/login?reason={quote(exc.reason)}", status_code=303)
        clear_session_cookie(response)
        return response

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return templates.TemplateResponse(
            request,
            "console/error.html",
            {"session": None, "nav": [], "role_label": "", "base": PATH, "message": str(exc)},
            status_code=403,
        )


__all__ = ["NAV", "STATIC", "TEMPLATES", "Console", "build_console", "install_console_handlers"]
