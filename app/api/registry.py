"""The registry's HTTP routes, role-checked by the ``require`` dependency factory the app injects.

``require(*roles)`` returns a FastAPI dependency that yields the acting principal (anything with
``name`` and ``role``); injecting it keeps ``registry`` free of ``operators`` (DESIGN.md's
dependency direction).
"""

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from app.api import catalog, consent, copies, egress, ingest, licences, products
from core import NotFoundError, PermissionDeniedError, RegistryError, UsageError, duplicate_key
from registry import Registry


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    router = APIRouter()
    # consent before licences: /licences/awaiting-agreement must match before /licences/{licence_id}
    for module in (catalog, consent, copies, egress, ingest, licences, products):
        router.include_router(module.build_router(registry, require))
    return router


def install_error_handlers(app: FastAPI) -> None:
    """Refusals become 403/404/409 (422 for a usage error) with the registry's own message, never a 500."""

    async def refused(_: Request, exc: Exception) -> JSONResponse:
        code = 404 if isinstance(exc, NotFoundError) else 403 if isinstance(exc, PermissionDeniedError) else 409
        if isinstance(exc, UsageError):
            code = 422
        return JSONResponse({"detail": str(exc)}, status_code=code)

    app.add_exception_handler(RegistryError, refused)
    app.add_exception_handler(IntegrityError, duplicate)


async def duplicate(_: Request, exc: Exception) -> JSONResponse:
    """409 for a name taken between a route's own "does it exist?" check and its insert: two requests creating
    the same dataset, operator or principal at once on PostgreSQL, the losers were 500s (red team 21c F9); their
    transactions rolled back. What is a taken key is ``core.duplicate_key``'s rule (the CLI's too). Any other
    integrity failure is a fault of the server: still a 500, logged."""
    if duplicate_key(exc) is not None:  # the key's values are not echoed (a hash may be one)
        return JSONResponse(
            {"detail": "it already exists: a concurrent request created the same thing first; reload and check"},
            status_code=409,
        )
    logging.getLogger("keyong").error("integrity failure", exc_info=exc)
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
