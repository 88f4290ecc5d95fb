"""FastAPI application factory: wires the packages' routers over one opened instance."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

import operators
from app.instance import Instance
from app.settings import Settings

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


def create_app(settings: Settings | None = None, *, instance: Instance | None = None) -> FastAPI:
    """The API over ``instance`` (or the home named by ``settings``), docs at ``/docs``."""
    inst = instance or Instance.open(settings or Settings())
    app = FastAPI(title="Keyong", version=_version(), description=DESCRIPTION)
    app.state.instance = inst

    @app.get("/healthz", tags=["meta"])
    def healthz() -> JSONResponse:
        """Liveness and database reachability, for load balancers; no authentication."""
        try:
            with inst.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "database": inst.engine.dialect.name, "instance": inst.instance_id})

    app.include_router(operators.build_router(inst.identity))
    return app
