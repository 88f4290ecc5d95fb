"""The custodian edits a dataset's 资源目录 fields in the browser (issue 18).

The form posts to :meth:`registry.Catalog.update`, the call behind ``PATCH /datasets/{name}`` and
``keyong dataset update``, with only the fields that changed and the custodian's reason. Its approval
flow is the API's: a more restrictive 共享类型 or 开放类型 becomes a request the agency decides (黑龙江
第二十一条, 第三十三条), shown on the page as waiting; anything else applies at once and is ledgered
(``catalog.updated``). The entry itself is published by the ingest (双鸭山 第十二条), so "publishing" here
is completing and correcting what the public register shows of it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.api.limits import visible_text
from app.console.context import Console
from app.console.session import Session
from core import NotFoundError, RegistryError
from operators import Role
from registry import CATALOG_FIELDS, OpeningType, OperationStatus, RequestView, ResourceView, SharingType

#: Free-text fields of the form (attribute -> longest value the catalog keeps).
TEXT_FIELDS: dict[str, int] = {
    "title": 200,
    "summary": 4000,
    "industry": 64,
    "coverage_time": 64,
    "coverage_region": 128,
    "update_frequency": 32,
    "sharing_conditions": 4000,
    "sharing_method": 64,
    "sharing_legal_basis": 4000,
    "opening_conditions": 4000,
    "opening_legal_basis": 4000,
}
LONG_FIELDS = frozenset({"summary", "sharing_conditions", "sharing_legal_basis", "opening_conditions",
                         "opening_legal_basis"})  # fmt: skip
CHOICES: dict[str, tuple[str, ...]] = {
    "sharing_type": tuple(t.value for t in SharingType),
    "opening_type": tuple(t.value for t in OpeningType),
    "operation_status": tuple(s.value for s in OperationStatus),
}


class BadCatalogFormError(Exception):
    """A value no select offers, or text the catalog cannot keep (a forged or stale form): 422."""


def _current(entry: ResourceView, attr: str) -> Any:
    value = getattr(entry, attr)
    return value.value if hasattr(value, "value") else value


def catalog_changes(entry: ResourceView, posted: Any) -> dict[str, Any]:
    """The fields the form changed (English keys, as ``PATCH /datasets/{name}`` takes them)."""
    changes: dict[str, Any] = {}
    for attr, longest in TEXT_FIELDS.items():
        if attr not in posted:
            continue
        value = str(posted.get(attr, "")).strip()
        if len(value) > longest:
            raise BadCatalogFormError(f"{CATALOG_FIELDS[attr]} 超过 {longest} 字 · {attr} exceeds {longest} characters")
        try:
            visible_text(value)
        except ValueError as exc:
            raise BadCatalogFormError(f"{CATALOG_FIELDS[attr]} · {attr} {exc}") from None
        if value != (_current(entry, attr) or ""):
            changes[attr] = value
    for attr, allowed in CHOICES.items():
        if attr not in posted:
            continue
        value = str(posted.get(attr, ""))
        if value not in allowed:
            raise BadCatalogFormError(f"{CATALOG_FIELDS[attr]} 无此选项 · {attr}: {value[:40]!r} is not offered")
        if value != _current(entry, attr):
            changes[attr] = value
    if "open_to_public_shown" in posted:
        opened = posted.get("open_to_public") == "1"
        if opened != entry.open_to_public:
            changes["open_to_public"] = opened
    if "operation_scenarios" in posted:
        scenarios = [s.strip() for s in str(posted.get("operation_scenarios", "")).splitlines() if s.strip()]
        if any(len(s) > 200 for s in scenarios) or len(scenarios) > 64:
            raise BadCatalogFormError("应用场景过长或过多 · at most 64 scenarios of 200 characters each")
        if scenarios != list(entry.operation_scenarios or []):
            changes["operation_scenarios"] = scenarios
    return changes


def register(router: APIRouter, console: Console) -> None:
    catalog = console.instance.registry.catalog

    def entry_or_404(request: Request, session: Session, name: str) -> ResourceView | HTMLResponse:
        try:
            return catalog.get(name)
        except NotFoundError:
            return console.render(
                request, session, "console/error.html", status_code=404, message=f"没有数据集 {name} · no dataset"
            )

    @router.get("/custodian/datasets/{name}/catalog", response_class=HTMLResponse)
    def catalog_form(request: Request, name: str) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        entry = entry_or_404(request, session, name)
        if isinstance(entry, HTMLResponse):
            return entry
        pending = [r for r in catalog.requests("pending") if r.dataset == name]
        return console.render(
            request,
            session,
            "console/custodian/catalog_edit.html",
            entry=entry,
            text_fields=[
                (attr, CATALOG_FIELDS[attr], _current(entry, attr) or "", attr in LONG_FIELDS, longest)
                for attr, longest in TEXT_FIELDS.items()
            ],
            choices=[(attr, CATALOG_FIELDS[attr], options, _current(entry, attr)) for attr, options in CHOICES.items()],
            pending=pending,
        )

    @router.post("/custodian/datasets/{name}/catalog", response_model=None)
    async def save_catalog(request: Request, name: str) -> Response:
        """Apply the changed fields, or file them for the agency when they restrict sharing or opening."""
        session = console.session(request, Role.CUSTODIAN)
        posted = await console.form(request, session)
        entry = entry_or_404(request, session, name)
        if isinstance(entry, HTMLResponse):
            return entry
        target = f"/custodian/datasets/{name}/catalog"
        try:
            changes = catalog_changes(entry, posted)
        except BadCatalogFormError as exc:
            return console.render(request, session, "console/error.html", status_code=422, message=str(exc))
        if not changes:
            return console.flash(session, target, "catalog_unchanged")
        try:
            result = catalog.update(name, changes, by=session.actor, reason=str(posted.get("reason", "")))
        except RegistryError as exc:
            return console.flash(session, target, "catalog_refused", reason=exc)
        fields = "、".join(CATALOG_FIELDS.get(k, k) for k in sorted(changes))
        if isinstance(result, RequestView):
            return console.flash(session, target, "catalog_change_requested", request=str(result.id), fields=fields)
        return console.flash(session, target, "catalog_saved", fields=fields)

    @router.post("/custodian/datasets/{name}/revocation", response_model=None)
    async def request_revocation(request: Request, name: str) -> Response:
        """Ask the agency to revoke the entry, as ``POST /datasets/{name}/revocation`` (黑龙江 第十六条: an entry
        in use is served six more months)."""
        session = console.session(request, Role.CUSTODIAN)
        posted = await console.form(request, session)
        target = f"/custodian/datasets/{name}/catalog"
        try:
            filed = catalog.request_revocation(name, by=session.actor, reason=str(posted.get("reason", "")))
        except NotFoundError:
            return console.render(
                request, session, "console/error.html", status_code=404, message=f"没有数据集 {name} · no dataset"
            )
        except RegistryError as exc:
            return console.flash(session, target, "catalog_refused", reason=exc)
        return console.flash(session, target, "revocation_requested", request=str(filed.id))
