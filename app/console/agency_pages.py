"""The agency's console pages (issue 9): licences and budgets, findings, objections; the release review is
``app.console.review_pages`` (issue 18).

The agency (授权运营实施机构) reviews every product before release (双鸭山市公共数据管理暂行办法
第五十二条): a reviewer must see what would leave — the outputs themselves, the export guard's
findings, the operator's justifications and the lineage — before voting. Every read and every action
goes through the same package calls the HTTP API makes for an agency principal (app/api/releases.py,
app/api/jobs.py, app/api/licences.py, app/api/products.py), so the console shows and
allows exactly what the API does. Refusals of the packages (a second vote, a reviewer from the requesting
organisation, a resolved finding…) come back as the page's flash message, never as a 500.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console import people_pages, review_pages, standing_pages
from app.console.charts import meter
from app.console.context import Console, PathId
from app.console.session import Session
from core import Actor, RegistryError
from operators import Role
from registry import ObjectionOutcome

#: Outputs larger than this are listed by name, size and hash only: a preview is for reading, not export.
PREVIEW_MAX_BYTES = 2 * 1024 * 1024
PREVIEW_ROWS = 20
PREVIEW_JSON_CHARS = 6000
OUTCOMES = [
    (ObjectionOutcome.RESTORE.value, "恢复 restore"),
    (ObjectionOutcome.CORRECT.value, "依法处理后恢复 restore after correction"),
    (ObjectionOutcome.WITHDRAW.value, "撤回 withdraw"),
]


def preview(
    path: Path, name: str, expected_sha256: str, opener: Callable[[Path], bytes] = Path.read_bytes
) -> dict[str, Any] | None:
    """The first rows of a small CSV, JSON or Parquet output, for the reviewer's eyes only.

    Read only when the file's content still has the hash the release recorded: the reviewer must see
    exactly what would be released, never a file changed since. ``None`` when there is nothing to
    show (other types, too large, gone after the licence's copies were destroyed). ``opener`` gives
    the plaintext (``registry.AtRest.read``: outputs are sealed at rest, issue 22); it is decrypted in
    memory only.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".json", ".parquet") or not path.is_file():
        return None
    if path.stat().st_size > PREVIEW_MAX_BYTES:
        return {"note": "文件较大,不预览 · too large to preview"}
    try:
        data = opener(path)
    except (RegistryError, OSError) as exc:  # altered, or its key destroyed with the licence
        return {"note": f"无法打开 · cannot be opened: {exc}"}
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        return {"note": "文件与申请记录的哈希不符 · the file no longer matches the recorded SHA-256"}
    try:
        if suffix == ".csv":
            text = data.decode("utf-8-sig", errors="replace")
            rows = list(csv.reader(io.StringIO(text)))
            header, body = (rows[0], rows[1:]) if rows else ([], [])
            return {"columns": header, "rows": body[:PREVIEW_ROWS], "total_rows": len(body)}
        if suffix == ".json":
            shown = json.dumps(json.loads(data.decode("utf-8")), ensure_ascii=False, indent=2)
            cut = len(shown) > PREVIEW_JSON_CHARS
            return {"json": shown[:PREVIEW_JSON_CHARS] + ("\n…" if cut else "")}
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data))
        head = table.slice(0, PREVIEW_ROWS).to_pylist()
        return {
            "columns": table.column_names,
            "rows": [[row.get(c) for c in table.column_names] for row in head],
            "total_rows": table.num_rows,
        }
    except Exception as exc:  # a preview must never take the review page down
        return {"note": f"无法预览 · cannot preview: {type(exc).__name__}"}


def _number(value: Any) -> float | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _agency(console: Console, request: Request) -> tuple[Session, Actor]:
    """The logged-in agency principal; anyone else is refused by the session check."""
    session = console.session(request, Role.AGENCY)
    return session, session.actor


def register(router: APIRouter, console: Console) -> None:
    """The agency's pages on the console router, in the order they match."""
    review_pages.register(router, console)  # the release review, its thread and queue (issue 18)
    _licences(router, console)
    _findings(router, console)
    _objections(router, console)
    people_pages.register(router, console)  # principals and keys (issue 17)
    standing_pages.register(router, console)  # identity checks, terms and training (issue 22)


def _licences(router: APIRouter, console: Console) -> None:
    """Licences with their ε meters, and raising a budget."""
    instance = console.instance

    @router.get("/agency/licences", response_class=HTMLResponse)
    def licences(request: Request) -> HTMLResponse:
        session, actor = _agency(console, request)
        views = instance.registry.licences.list(viewer=actor)
        budgets: dict[int, list[Any]] = {}
        for operator in sorted({v.operator for v in views}):
            try:
                for budget in instance.registry.budgets.show(operator, viewer=actor):
                    budgets.setdefault(budget.licence, []).append(budget)
            except RegistryError:
                continue
        meters = {
            (b.licence, b.dataset): meter(f"{b.dataset} ε", round(b.epsilon_spent, 4), b.epsilon_budget)
            for rows in budgets.values()
            for b in rows
        }
        return console.render(
            request, session, "console/agency/licences.html", licences=views, budgets=budgets, meters=meters
        )

    @router.post("/agency/budgets/raise")
    async def raise_budget(request: Request) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        licence = _number(form.get("licence", ""))
        epsilon = _number(form.get("epsilon", ""))
        dataset = str(form.get("dataset", "")).strip()
        if licence is None or epsilon is None or not dataset:
            return console.flash(session, "/agency/licences", "budget_incomplete")
        try:
            view = instance.registry.budgets.raise_budget(
                int(licence), dataset, epsilon=epsilon, reason=str(form.get("reason", "")), by=actor
            )
        except RegistryError as exc:
            return console.flash(session, "/agency/licences", "budget_refused", reason=exc)
        return console.flash(
            session,
            "/agency/licences",
            "budget_raised",
            licence=view.licence,
            dataset=view.dataset,
            epsilon=f"{view.epsilon_budget:g}",
        )


def _findings(router: APIRouter, console: Console) -> None:
    """Usage-monitoring findings and their resolution."""
    instance = console.instance

    @router.get("/agency/findings", response_class=HTMLResponse)
    def findings(request: Request, state: str = "") -> HTMLResponse:
        session, actor = _agency(console, request)
        state = state if state in ("open", "resolved") else ""
        views = instance.registry.monitoring.list_findings(viewer=actor, state=state or None)
        return console.render(request, session, "console/agency/findings.html", findings=views[::-1], state=state)

    @router.post("/agency/findings/{finding_id}/resolve")
    async def resolve_finding(request: Request, finding_id: PathId) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        try:
            instance.registry.monitoring.resolve_finding(
                finding_id, by=actor, resolution=str(form.get("resolution", ""))
            )
        except RegistryError as exc:
            return console.flash(session, "/agency/findings", "finding_refused", reason=exc)
        return console.flash(session, "/agency/findings", "finding_resolved", finding=finding_id)


def _objections(router: APIRouter, console: Console) -> None:
    """Objections (第四十条) and their resolution."""
    instance = console.instance

    @router.get("/agency/objections", response_class=HTMLResponse)
    def objections(request: Request) -> HTMLResponse:
        session, actor = _agency(console, request)
        views = instance.registry.objections.list(viewer=actor)
        return console.render(
            request, session, "console/agency/objections.html", objections=views[::-1], outcomes=OUTCOMES
        )

    @router.post("/agency/objections/{objection_id}/resolve")
    async def resolve_objection(request: Request, objection_id: PathId) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        try:
            instance.registry.objections.resolve(
                objection_id, str(form.get("outcome", "")), str(form.get("reason", "")), by=actor
            )
        except RegistryError as exc:
            return console.flash(session, "/agency/objections", "objection_refused", reason=exc)
        return console.flash(session, "/agency/objections", "objection_resolved", objection=objection_id)
