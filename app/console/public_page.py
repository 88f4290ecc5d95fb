"""``/public``: the public register as a page, without authentication (SATRE 1.7.02*).

The same document as ``GET /api/public`` (``app.api.public.register_document``), rendered in Chinese with
English in the console's offline style sheet (no CDN, no script). Jinja2 autoescapes every value, so a
catalog summary holding markup is shown, never run. The page carries the console's strict security headers
(``app.console.security``: it is listed among the console's paths) and is not cached.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.api.public import no_query, register_document
from app.console.context import TEMPLATES
from app.console.glossary import beijing, chinese, label
from ledger import Ledger
from registry import Registry

PUBLIC_PATH = "/public"


def build_public_page(registry: Registry, ledger: Ledger, version: str) -> APIRouter:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters.update(dt=beijing, label=label, zh=chinese)  # the console's glossary (issue 18)
    router = APIRouter(include_in_schema=False, dependencies=[Depends(no_query)])

    @router.get(PUBLIC_PATH, response_class=HTMLResponse)
    def public_page(request: Request) -> HTMLResponse:
        register = register_document(registry, ledger, version)
        return templates.TemplateResponse(request, "public.html", {"register": register})

    return router


__all__ = ["PUBLIC_PATH", "build_public_page"]
