"""FastAPI application factory: wires the packages' routers over one opened instance."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy import text

from app.api import identity as identity_api
from app.api import incidents as incidents_api
from app.api import jobs as jobs_api
from app.api import ledger as ledger_api
from app.api import people as people_api
from app.api import public as public_api
from app.api import quotas as quotas_api
from app.api import registry as registry_api
from app.api import releases as releases_api
from app.api import requests as requests_api
from app.api import retention as retention_api
from app.api import security as security_api
from app.api.edge import install_edge
from app.api.schemas import HealthDownOut, HealthOut, add_examples
from app.api.unavailable import install_unavailable_handler
from app.instance import Instance
from app.ledger_publish import PublicationLoop
from app.settings import Settings
from app.transport import StrictTransportSecurity
from operators import Role
from sandbox import LIVE_WITHIN

logger = logging.getLogger("keyong")

DESCRIPTION = """
Keyong (可用) is an authorized-operations sandbox for public data (公共数据授权运营):
licensed operators run analysis jobs over desensitized copies; raw data never leaves
(原始数据不出域, 数据可用不可见). Authenticate with `POST /auth/token` and an API key, then send
`Authorization: Bearer <token>`.
"""


def _version() -> str:
    try:
        return version("keyong")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0+unknown"


CHECKPOINT_POLL_SECONDS = 5.0
NO_LIVE_WORKER = (
    "no live worker: submitted jobs stay queued until a worker runs (keyong serve --workers N, or keyong worker)"
)


async def _checkpoint_loop(inst: Instance) -> None:
    """Sign a checkpoint once appended entries are older than the configured age (issue 3: at
    least every 60 s when anything was appended), even when nothing else is appended after them."""
    publication = PublicationLoop(inst)  # the signer publishes what it signs to the storage (issue 19)
    while True:
        await asyncio.sleep(CHECKPOINT_POLL_SECONDS)
        try:
            await asyncio.to_thread(inst.ledger.checkpoint_if_due)
        except Exception:  # a failed attempt is retried next round; never kill the server
            logger.exception("periodic ledger checkpoint failed")
        try:
            await asyncio.to_thread(publication.tick)
        except Exception:  # e.g. the storage is down, or a published object was altered: loud, retried
            logger.exception("publishing the ledger to the storage failed")


REQUEST_SWEEP_SECONDS = 300.0


async def _overdue_loop(inst: Instance) -> None:
    """Every few minutes, raise the monitoring finding of each request newly past its due day (issue 24;
    once per request: ``registry.requests.Requests.sweep_overdue``)."""
    while True:
        await asyncio.sleep(REQUEST_SWEEP_SECONDS)
        try:
            await asyncio.to_thread(inst.registry.requests.sweep_overdue)
        except Exception:  # retried next round; never kill the server
            logger.exception("sweep of overdue requests failed")


def _roles_of(dependant: Any) -> set[str]:
    """The roles admitted by the role guards among ``dependant``'s dependencies (at any depth)."""
    found: set[str] = set(getattr(dependant.call, "roles", ()) or ())
    for sub in dependant.dependencies:
        found |= _roles_of(sub)
    return found


def document_roles(routes: Any) -> None:
    """Every operation says who may call it, in its description and as ``x-roles`` (issue 17).

    ``routes`` is an application's or a router's route list; included routers are walked too.
    """
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers whole
        if included is not None:
            document_roles(included.routes)
            continue
        if not isinstance(route, APIRoute) or not route.include_in_schema or "x-roles" in (route.openapi_extra or {}):
            continue
        roles = sorted(_roles_of(route.dependant))
        allowed = ", ".join(roles) if roles else "anyone (no authentication)"
        route.description = f"{route.description.strip()}\n\n**Roles allowed:** {allowed}.".strip()
        route.openapi_extra = {**(route.openapi_extra or {}), "x-roles": roles}


def finish_openapi(app: FastAPI) -> None:
    """What FastAPI's generated schema cannot say by itself (issue 17).

    The documented 422 says what a 422 holds: FastAPI's list of validation errors, or the text of a usage
    error (an unknown name, an organisation that does not fit: ``{"detail": "… did you mean …?"}``); and
    response documents whose models live in the domain get their examples (``app.api.schemas.examples``)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            error = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
            if error is not None:
                listed = error["properties"]["detail"]
                error["properties"]["detail"] = {
                    "anyOf": [{k: v for k, v in listed.items() if k != "title"}, {"type": "string"}],
                    "title": "Detail",
                    "description": "Validation errors, or why the request was refused (a usage error).",
                }
            add_examples(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_healthz(app: FastAPI, inst: Instance) -> None:
    """``/healthz``: liveness, database reachability, live workers and a freeze, without authentication."""

    @app.get(
        "/healthz",
        tags=["meta"],
        response_model=HealthOut,
        responses={503: {"model": HealthDownOut, "description": "The database is unreachable."}},
    )
    def healthz() -> JSONResponse:
        """Liveness and database reachability, for load balancers; no authentication.

        ``workers.live`` counts the workers that beat within ``workers.live_within_seconds`` (issue 17);
        with none, ``warning`` says so while the API itself still answers 200. Only the count is shown
        here: hosts and pids are not for unauthenticated callers. ``frozen`` (with its ``since``) appears
        while an incident's freeze stops intake, egress and delivery."""
        try:
            with inst.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            live = inst.roster.live_count()
            frozen = inst.registry.freeze.state()
        except Exception as exc:
            return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
        body: dict[str, object] = {
            "status": "ok",
            "database": inst.engine.dialect.name,
            "instance": inst.instance_id,
            "workers": {"live": live, "live_within_seconds": int(LIVE_WITHIN.total_seconds())},
        }
        if live == 0:
            body["warning"] = NO_LIVE_WORKER
        if frozen.frozen:  # an incident (SATRE 2.6.04): whether and since when, not why (no authentication here)
            body["frozen"] = {"since": frozen.since.isoformat() if frozen.since else None}
        return JSONResponse(body)


def create_app(settings: Settings | None = None, *, instance: Instance | None = None) -> FastAPI:
    """The API over ``instance`` (or the home named by ``settings``), docs at ``/docs``."""
    inst = instance or Instance.open(settings or Settings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_checkpoint_loop(inst)), asyncio.create_task(_overdue_loop(inst))]
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.security_buffer.flush)  # what was refused last is written too
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # Swagger UI and ReDoc are served from the installed fastapi-offline package, never a CDN: an
    # intranet without internet access still gets working /docs and /redoc (issue 17).
    app = FastAPIOffline(
        title="Keyong",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.instance = inst

    _install_healthz(app, inst)

    require = identity_api.role_guard(inst.identity)
    app.include_router(identity_api.build_router(inst.identity))
    wait_ms = inst.settings.ledger_verify_lock_timeout_ms
    app.include_router(ledger_api.build_router(inst.ledger, require(Role.REGULATOR), verify_lock_timeout_ms=wait_ms))
    app.include_router(registry_api.build_router(inst.registry, require))
    app.include_router(jobs_api.build_router(inst.jobs, require))
    app.include_router(people_api.build_router(inst.people, require))
    app.include_router(quotas_api.build_router(inst, require))
    app.include_router(releases_api.build_router(inst.releases, require))
    security_buffer = security_api.SecurityBuffer(inst.registry.security)
    app.state.security_buffer = security_buffer
    app.include_router(security_api.build_router(security_buffer, require))
    app.include_router(incidents_api.build_router(inst.registry, require))
    app.include_router(retention_api.build_router(inst.registry, require))
    app.include_router(requests_api.build_router(inst.registry, require))
    # The public register (SATRE 1.7.02*): read-only, no authentication; the page is mounted with the console.
    app.include_router(public_api.build_router(inst.registry, inst.ledger, _version()))
    registry_api.install_error_handlers(app)
    incidents_api.install_freeze_handler(app)
    install_unavailable_handler(app, inst.engine.url.render_as_string(hide_password=False))
    install_edge(app)
    # Every refused login, token and authorization is a security event (SATRE 2.5.03), console included.
    app.add_middleware(security_api.SecurityWatch, buffer=security_buffer)
    document_roles(app.routes)
    finish_openapi(app)
    # The web console (issue 9): server-rendered pages over the same packages, for browsers.
    from fastapi.staticfiles import StaticFiles

    from app.console import STATIC, build_console, install_console_handlers

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    settings = inst.settings
    secure_cookies = settings.console_secure_cookies or settings.transport_secure
    app.include_router(build_console(inst, secure_cookies=secure_cookies))
    from app.console.public_page import build_public_page

    app.include_router(build_public_page(inst.registry, inst.ledger, _version()))
    install_console_handlers(app, inst)
    if settings.transport_secure:  # served over TLS only: browsers must never fall back to http (SATRE 2.8.01)
        app.add_middleware(StrictTransportSecurity, max_age=settings.hsts_max_age_seconds)
    return app
