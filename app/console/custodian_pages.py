"""The custodian's console pages (issue 9): the catalog, classification levels and desensitization reports.

The custodian reads the catalog as ``GET /datasets`` gives it to a platform role (``app/api/catalog.py``):
the 资源目录 fields (双鸭山 第十二条), the grading of the resource and of each column (第十一条), versions and the
desensitization report of the newest desensitized copy (with issue 16's re-identification risk before and
after, utility, each column's representation and near-unique decision; ``app.copy_facts``), each version's
retention and what is due for deletion (SATRE 3.1.09; ``registry.retention``). Its actions here are setting
a retention period and declaring a column's public bounds or category domain, which DP jobs take instead
of reading them off the data (bounds read off the data would leak it); the catalog's refusals (a domain
over a personal column, bounds out of order) come back as the flash message.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.context import Console, decimal
from app.copy_facts import NOT_MEASURED, number_text, report_sections, share_text, step_label
from core import NotFoundError, RegistryError
from operators import Role
from registry import CATALOG_FIELDS

#: What the risk and utility templates format figures with (issue 16; ``app.copy_facts``).
MEASURE_HELPERS: dict[str, Any] = {"not_measured": NOT_MEASURED, "num": number_text, "pct": share_text}
LEVEL_LABELS = {"L1": "L1 公开", "L2": "L2 一般", "L3": "L3 敏感", "L4": "L4 高度敏感"}
#: Badge colour classes reused from the console's stylesheet: the higher the level, the warmer.
LEVEL_BADGES = {"L1": "pass", "L2": "ok", "L3": "review", "L4": "block"}


def _number(text: str) -> float | int:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def parse_bounds(text: str) -> list[float | int] | None:
    """``"lo, hi"`` (comma, space or ``–`` separated) to two numbers; blank is none."""
    cleaned = text.replace("，", ",").replace("–", ",").replace("~", ",").strip()
    if not cleaned:
        return None
    parts = [p for p in cleaned.replace(",", " ").split() if p]
    try:
        return [_number(p) for p in parts]
    except ValueError:
        raise RegistryError(f"边界须为两个数 · bounds must be two numbers lo, hi, not {text!r}") from None


def parse_domain(text: str) -> list[Any] | None:
    """One value per line or comma; all-integer lists stay numbers, anything else stays text."""
    values = [v.strip() for chunk in text.replace("，", ",").splitlines() for v in chunk.split(",") if v.strip()]
    if not values:
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        return values


def _qi_label(qi: Any) -> str:
    if isinstance(qi, dict):
        rung = qi.get("generalization")
        return f"{qi.get('column')} ({rung})" if rung else str(qi.get("column"))
    return str(qi)


def report_view(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The desensitization report, shaped for reading: per-column actions, k-anonymity, counts."""
    if not report:
        return None
    k = dict(report.get("k_anonymity") or {})
    measures = report_sections(report)
    return {
        "policy": dict(report.get("policy") or {}),
        "columns": [dict(c) for c in report.get("columns") or []],
        "k": k,
        # Each quasi-identifier as the column and the rung it stopped on (the report holds its whole ladder).
        "quasi_identifiers": [_qi_label(q) for q in k.get("quasi_identifiers") or []],
        "steps": [step_label(s) for s in k.get("steps") or []],
        "l_diversity": dict(k.get("l_diversity") or {}),
        "rows_in": report.get("rows_in"),
        "rows_out": report.get("rows_out"),
        "rows_suppressed": report.get("rows_suppressed"),
        "seconds": dict(report.get("seconds") or {}),
        "rows_per_second": report.get("rows_per_second"),
        "fingerprint_counts": dict(report.get("fingerprint_counts") or {}),
        "free_text": report.get("free_text") or report.get("text"),
        # issue 16: risk before/after, utility, per-column representation and near-unique decisions
        "measures": measures,
        "shaped": {c["name"]: c for c in measures["columns"]},
        "raw": json.dumps(report, ensure_ascii=False, indent=1, sort_keys=True, default=str),
    }


def parse_days(text: str) -> int | None:
    """A retention period typed in the form: whole days, or blank to clear it."""
    text = text.strip()
    if not text:
        return None
    days = decimal(text, high=999_999)  # ASCII digits only: '²'.isdigit() but int('²') fails (red team 18, F4)
    if days is None:
        raise RegistryError(f"retention must be a whole number of days, not {text[:20]!r}")
    return days


def register(router: APIRouter, console: Console) -> None:
    catalog = console.instance.registry.catalog
    retention = console.instance.registry.retention

    @router.get("/custodian", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        return console.render(
            request,
            session,
            "console/custodian/index.html",
            entries=catalog.list(),
            due=retention.schedule(due_only=True),
            level_labels=LEVEL_LABELS,
            level_badges=LEVEL_BADGES,
        )

    @router.get("/custodian/datasets/{name}", response_class=HTMLResponse)
    def dataset(request: Request, name: str) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        try:
            view = catalog.get(name)
        except NotFoundError:
            return console.render(
                request, session, "console/error.html", status_code=404, message=f"没有数据集 {name} · no dataset"
            )
        desensitized = next((v for v in reversed(view.versions) if v.kind == "desensitized"), None)
        fields = [(key, attr, getattr(view, attr)) for attr, key in CATALOG_FIELDS.items()]
        return console.render(
            request,
            session,
            "console/custodian/dataset.html",
            entry=view,
            fields=fields,
            desensitized=desensitized,
            report=report_view(desensitized.report if desensitized else None),
            egress=console.instance.registry.egress.get(name),
            may_delegate=console.instance.registry.egress.may_act(name, session.actor),
            schedule=retention.schedule(dataset=name),
            retention_default=retention.default_days,
            level_labels=LEVEL_LABELS,
            level_badges=LEVEL_BADGES,
            **MEASURE_HELPERS,
        )

    @router.post("/custodian/datasets/{name}/bounds", response_model=None)
    async def set_bounds(request: Request, name: str) -> Response:
        """Declare (or, both blank, clear) one column's public bounds and domain."""
        session = console.session(request, Role.CUSTODIAN)
        posted = await console.form(request, session)
        column = str(posted.get("column", "")).strip()
        target = f"/custodian/datasets/{name}"
        try:
            bounds = parse_bounds(str(posted.get("bounds", "")))
            domain = parse_domain(str(posted.get("domain", "")))
            catalog.set_public_bounds(name, column, bounds=bounds, domain=domain, by=session.actor)
        except RegistryError as exc:
            return console.flash(session, target, "bounds_refused", reason=exc)
        what = []
        if bounds is not None:
            what.append(f"边界 bounds [{bounds[0]}, {bounds[1]}]")
        if domain is not None:
            what.append(f"取值域 domain ({len(domain)})")
        if what:
            return console.flash(session, target, "bounds_declared", column=column, what="；".join(what))
        return console.flash(session, target, "bounds_cleared", column=column)

    @router.post("/custodian/datasets/{name}/retention", response_model=None)
    async def set_retention(request: Request, name: str) -> Response:
        """Set (or, blank, clear) how long each version of the dataset is kept (SATRE 3.1.09)."""
        session = console.session(request, Role.CUSTODIAN)
        posted = await console.form(request, session)
        target = f"/custodian/datasets/{name}"
        try:
            days = parse_days(str(posted.get("days", "")))
            retention.set_retention(name, days, by=session.actor)
        except RegistryError as exc:
            return console.flash(session, target, "retention_refused", reason=exc)
        return console.flash(session, target, "retention_set", days=str(days) if days else "—")
