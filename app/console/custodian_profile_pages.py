"""The custodian reviews the profile, corrects types and levels, desensitizes, and reads the report (issue 18).

* The profile page shows each column as the profiler read it (type, level, confidence) beside the grading
  in force, with selects to correct the PII type and level and a box for sensitive personal information.
  Its form calls :meth:`registry.Catalog.classify` — the call behind ``PUT /datasets/{name}/classification``
  and ``keyong dataset classify`` — with only the columns that changed; the catalog refuses a grading that
  contradicts itself (sensitive PI is L4, PI at least L3; 双鸭山 第十一条 分类分级) and ledgers the rest.
* Desensitization runs :meth:`registry.Copies.make`, the call behind ``POST /datasets/{name}/desensitize``
  and ``keyong dataset desensitize``, with the same options (the column whose l-diversity is reported, a
  column ruled no quasi-identifier with its reason). It runs while the request waits (a thread); a
  demo-sized table takes seconds.
* The report page reads the newest desensitized version's report as tables: k, l, re-identification risk
  before and after (GB/T 37964-2019), suppressed rows, each quasi-identifier with its basis and ladder,
  each column's action, and the utility measures (issue 11/16) — never a raw dump.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from app.console.context import Console
from app.console.custodian_pages import LEVEL_BADGES, LEVEL_LABELS, MEASURE_HELPERS, report_view
from app.console.session import Session
from core import NotFoundError, RegistryError
from desensitize import PII_TYPE_NAMES
from operators import Role
from registry import Level, ResourceView

LEVELS = tuple(level.value for level in Level)
#: The resource level follows its most sensitive column unless the custodian picks one.
FOLLOW = "follow"


class BadFormError(Exception):
    """A posted value no select offers (a forged or stale form): a 422 page, nothing changed."""


def _max_level(levels: list[str]) -> str:
    return max(levels, key=LEVELS.index) if levels else Level.L1.value


def column_changes(entry: ResourceView, posted: Any) -> tuple[str, dict[str, dict[str, Any]]]:
    """The resource level and the columns whose type, level or sensitivity the form changed.

    Fields are keyed by the column's position (``level-3``), so a column name never becomes a form key;
    any value outside the selects is :class:`BadFormError`.
    """
    changed: dict[str, dict[str, Any]] = {}
    final_levels: list[str] = []
    for index, item in enumerate(entry.items):
        level = str(posted.get(f"level-{index}", item.level.value))
        pii = str(posted.get(f"type-{index}", item.pii_type or ""))
        sensitive = posted.get(f"sensitive-{index}") == "1"
        if level not in LEVELS:
            raise BadFormError(f"数据项 {item.name} 的分级无效 · column {item.name!r}: unknown level {level[:20]!r}")
        if pii and pii not in PII_TYPE_NAMES:
            raise BadFormError(f"数据项 {item.name} 的类型无效 · column {item.name!r}: unknown PII type {pii[:40]!r}")
        final_levels.append(level)
        if (level, pii or None, sensitive) != (item.level.value, item.pii_type, item.sensitive_personal_info):
            changed[item.name] = {"分级": level, "PII类型": pii or None, "敏感个人信息": sensitive}
    resource = str(posted.get("resource_level", FOLLOW))
    if resource == FOLLOW:
        resource = _max_level(final_levels)
    elif resource not in LEVELS:
        raise BadFormError(f"数据集分级无效 · unknown resource level {resource[:20]!r}")
    return resource, changed


def desensitize_options(entry: ResourceView, posted: Any) -> dict[str, Any]:
    """The options of ``POST /datasets/{name}/desensitize`` from the form; a column not in the table is BadFormError."""
    names = {item.name for item in entry.items}
    sensitive = str(posted.get("sensitive", "")).strip() or None
    if sensitive is not None and sensitive not in names:
        raise BadFormError(f"没有数据项 {sensitive[:40]} · no column {sensitive[:40]!r}")
    not_quasi = str(posted.get("not_quasi", "")).strip()
    reason = str(posted.get("not_quasi_reason", "")).strip()
    rulings: dict[str, str] | None = None
    if not_quasi:
        if not_quasi not in names:
            raise BadFormError(f"没有数据项 {not_quasi[:40]} · no column {not_quasi[:40]!r}")
        rulings = {not_quasi: reason}  # a blank reason is the copy's own refusal (it is required and ledgered)
    return {"sensitive_column": sensitive, "not_quasi": rulings}


def profile_reasons(report: dict[str, Any] | None) -> dict[str, list[str]]:
    """Why the profiler read each column as it did (the raw version's report keeps them), by column."""
    found: dict[str, list[str]] = {}
    for column in (report or {}).get("profile") or []:
        if isinstance(column, dict) and column.get("name") is not None:
            found[str(column["name"])] = [str(r) for r in column.get("reasons") or []]
    return found


def qi_rows(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each quasi-identifier: its column, type, why it is one, the rung reached and the whole ladder."""
    k = dict((report or {}).get("k_anonymity") or {})
    rows: list[dict[str, Any]] = []
    for qi in k.get("quasi_identifiers") or []:
        if not isinstance(qi, dict):
            rows.append({"column": str(qi), "type": "", "basis": "", "generalization": "", "ladder": [], "level": None})
            continue
        ladder = [str(rung) for rung in qi.get("ladder") or []]
        rows.append(
            {
                "column": qi.get("column"),
                "type": qi.get("type") or "",
                "basis": qi.get("basis") or "",
                "generalization": qi.get("generalization") or "",
                "level": qi.get("level"),
                "ladder": ladder,
            }
        )
    return rows


def _entry_or_404(console: Console, request: Request, session: Session, name: str) -> ResourceView | HTMLResponse:
    try:
        return console.instance.registry.catalog.get(name)
    except NotFoundError:
        return console.render(
            request, session, "console/error.html", status_code=404, message=f"没有数据集 {name} · no dataset"
        )


def _bad_form(console: Console, request: Request, session: Session, exc: BadFormError) -> HTMLResponse:
    return console.render(request, session, "console/error.html", status_code=422, message=str(exc))


def register(router: APIRouter, console: Console) -> None:
    """The profile and its corrections, then the desensitization run and its report."""
    _profile(router, console)
    _desensitize(router, console)


def _profile(router: APIRouter, console: Console) -> None:
    registry = console.instance.registry
    catalog = registry.catalog

    def entry_or_404(request: Request, session: Session, name: str) -> ResourceView | HTMLResponse:
        return _entry_or_404(console, request, session, name)

    def bad_form(request: Request, session: Session, exc: BadFormError) -> HTMLResponse:
        return _bad_form(console, request, session, exc)

    @router.get("/custodian/datasets/{name}/profile", response_class=HTMLResponse)
    def profile(request: Request, name: str) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        entry = entry_or_404(request, session, name)
        if isinstance(entry, HTMLResponse):
            return entry
        raw = next((v for v in reversed(entry.versions) if v.kind == "raw"), None)
        return console.render(
            request,
            session,
            "console/custodian/profile.html",
            entry=entry,
            raw=raw,
            source=dict((raw.report or {}).get("source") or {}) if raw else {},
            reasons=profile_reasons(raw.report if raw else None),
            levels=LEVELS,
            pii_types=PII_TYPE_NAMES,
            level_labels=LEVEL_LABELS,
            level_badges=LEVEL_BADGES,
            has_copy=any(v.kind == "desensitized" for v in entry.versions),
        )

    @router.post("/custodian/datasets/{name}/classification", response_model=None)
    async def classify(request: Request, name: str) -> Response:
        """Correct the profiler: only changed columns are sent, as ``PUT .../classification`` takes them."""
        session = console.session(request, Role.CUSTODIAN)
        posted = await console.form(request, session)
        entry = entry_or_404(request, session, name)
        if isinstance(entry, HTMLResponse):
            return entry
        target = f"/custodian/datasets/{name}/profile"
        try:
            level, changed = column_changes(entry, posted)
        except BadFormError as exc:
            return bad_form(request, session, exc)
        try:
            reason = str(posted.get("reason", ""))  # required to regrade a recognised identifier (red team 18)
            catalog.classify(name, level=level, columns=changed, by=session.actor, reason=reason)
        except RegistryError as exc:
            return console.flash(session, target, "classification_refused", reason=exc)
        return console.flash(session, target, "classification_saved", level=level, columns="、".join(changed) or "—")


def _desensitize(router: APIRouter, console: Console) -> None:
    registry = console.instance.registry

    def entry_or_404(request: Request, session: Session, name: str) -> ResourceView | HTMLResponse:
        return _entry_or_404(console, request, session, name)

    def bad_form(request: Request, session: Session, exc: BadFormError) -> HTMLResponse:
        return _bad_form(console, request, session, exc)

    @router.post("/custodian/datasets/{name}/desensitize", response_model=None)
    async def desensitize(request: Request, name: str) -> Response:
        """Make the desensitized copy of the newest raw version, then show its report."""
        session = console.session(request, Role.CUSTODIAN)
        posted = await console.form(request, session)
        entry = entry_or_404(request, session, name)
        if isinstance(entry, HTMLResponse):
            return entry
        try:
            options = desensitize_options(entry, posted)
        except BadFormError as exc:
            return bad_form(request, session, exc)
        try:
            result = await run_in_threadpool(lambda: registry.copies.make(name, by=session.actor, **options))
        except RegistryError as exc:
            return console.flash(session, f"/custodian/datasets/{name}/profile", "desensitize_refused", reason=exc)
        return console.flash(session, f"/custodian/datasets/{name}/report", "desensitized", version=str(result.version))

    @router.get("/custodian/datasets/{name}/report", response_class=HTMLResponse)
    def report(request: Request, name: str) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        entry = entry_or_404(request, session, name)
        if isinstance(entry, HTMLResponse):
            return entry
        desensitized = next((v for v in reversed(entry.versions) if v.kind == "desensitized"), None)
        raw_report = dict(desensitized.report or {}) if desensitized else None
        return console.render(
            request,
            session,
            "console/custodian/report.html",
            entry=entry,
            desensitized=desensitized,
            report=report_view(raw_report),
            qis=qi_rows(raw_report),
            rulings=[r for r in (raw_report or {}).get("quasi_identifier_rulings") or [] if isinstance(r, dict)],
            level_labels=LEVEL_LABELS,
            level_badges=LEVEL_BADGES,
            **MEASURE_HELPERS,
        )
