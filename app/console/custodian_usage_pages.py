"""The custodian's usage records and objections (issue 18).

Usage: what was done with each dataset the custodian provided — per licence, the scenarios used, jobs
admitted, products released and whether the copy was destroyed, then every record — read through
``registry.usage``, the store behind ``GET /usage/{dataset}`` (黑龙江 第二十八条: usage is recorded and
kept for the providing department and regulators; another custodian's dataset is refused there, and here).

Objections (异议, 双鸭山 第四十条): anyone with an account files one against a product, a catalog entry or a
licence, as ``POST /objections``; the custodian that provided a catalog entry answers objections against it
(withdraw, restore, restore after correction, with a reason the objector reads), as
``POST /objections/{id}/resolution``. Objections against products and licences are the agency's to answer:
the page lists them without a form, and a forged post is refused by the registry and shown as the flash.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.context import Console, PathId
from core import NotFoundError, PermissionDeniedError, RegistryError
from operators import Role
from registry import ObjectionOutcome

TARGET_KINDS = ("product", "resource", "licence")
OUTCOMES = tuple(o.value for o in ObjectionOutcome)


def register(router: APIRouter, console: Console) -> None:
    """Usage records of the custodian's own datasets, then objections (filed and answered)."""
    _usage(router, console)
    _objections(router, console)


def _usage(router: APIRouter, console: Console) -> None:
    registry = console.instance.registry

    @router.get("/custodian/usage", response_class=HTMLResponse)
    def usage_overview(request: Request) -> HTMLResponse:
        """Each dataset this custodian provided, with how much it was used."""
        session = console.session(request, Role.CUSTODIAN)
        rows = []
        for entry in registry.catalog.list():
            if entry.created_by != session.principal.name:
                continue
            summary = registry.usage.summary(entry.name, viewer=session.actor)
            licences = summary.get("licences") or []
            rows.append(
                {
                    "name": entry.name,
                    "title": entry.title,
                    "records": summary.get("records", 0),
                    "licences": len([lic for lic in licences if lic.get("licence_id") is not None]),
                    "jobs": sum(len(lic.get("jobs_admitted") or []) for lic in licences),
                    "products": sum(len(lic.get("products_released") or []) for lic in licences),
                }
            )
        return console.render(request, session, "console/custodian/usage_index.html", rows=rows)

    @router.get("/custodian/datasets/{name}/usage", response_class=HTMLResponse)
    def dataset_usage(request: Request, name: str) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        try:
            entry = registry.catalog.get(name)
            summary = registry.usage.summary(name, viewer=session.actor)
            records = registry.usage.for_dataset(name, viewer=session.actor)
        except NotFoundError:
            return console.render(
                request, session, "console/error.html", status_code=404, message=f"没有数据集 {name} · no dataset"
            )
        except PermissionDeniedError as exc:
            return console.render(request, session, "console/error.html", status_code=403, message=str(exc))
        return console.render(
            request,
            session,
            "console/custodian/usage.html",
            entry=entry,
            summary=summary,
            licences=summary.get("licences") or [],
            records=list(reversed(records)),
        )


def _objections(router: APIRouter, console: Console) -> None:
    registry = console.instance.registry

    @router.get("/custodian/objections", response_class=HTMLResponse)
    def objections(request: Request) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        mine = {e.name for e in registry.catalog.list() if e.created_by == session.principal.name}
        listed = registry.objections.list(viewer=session.actor)
        return console.render(
            request,
            session,
            "console/custodian/objections.html",
            objections=sorted(listed, key=lambda o: (o.state != "open", -o.id)),
            answerable={o.id for o in listed if o.state == "open" and o.target_kind == "resource" and o.target in mine},
            target_kinds=TARGET_KINDS,
            outcomes=OUTCOMES,
            datasets=sorted(mine),
        )

    @router.post("/custodian/objections", response_model=None)
    async def file_objection(request: Request) -> Response:
        """File an objection (第四十条); against a product its delivery stops at once."""
        session = console.session(request, Role.CUSTODIAN)
        posted = await console.form(request, session)
        kind = str(posted.get("target_kind", ""))
        if kind not in TARGET_KINDS:
            return _bad(request, session, f"异议对象类型无效 · unknown target kind {kind[:20]!r}")
        target = str(posted.get("target", "")).strip()
        try:
            filed = registry.objections.file(kind, target, str(posted.get("reason", "")), by=session.actor)
        except RegistryError as exc:
            return console.flash(session, "/custodian/objections", "objection_not_filed", reason=exc)
        return console.flash(session, "/custodian/objections", "objection_filed", objection=str(filed.id))

    @router.post("/custodian/objections/{objection_id}/resolution", response_model=None)
    async def resolve_objection(request: Request, objection_id: PathId) -> Response:
        """Answer an objection against an entry this custodian provided (the registry checks who may)."""
        session = console.session(request, Role.CUSTODIAN)
        posted = await console.form(request, session)
        outcome = str(posted.get("outcome", ""))
        if outcome not in OUTCOMES:
            return _bad(request, session, f"处理结果无效 · unknown outcome {outcome[:30]!r}")
        try:
            registry.objections.resolve(objection_id, outcome, str(posted.get("reason", "")), by=session.actor)
        except RegistryError as exc:
            return console.flash(session, "/custodian/objections", "objection_refused", reason=exc)
        return console.flash(session, "/custodian/objections", "objection_resolved", objection=str(objection_id))

    def _bad(request: Request, session: Any, message: str) -> HTMLResponse:
        return console.render(request, session, "console/error.html", status_code=422, message=message)
