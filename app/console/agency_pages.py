"""The agency's console pages (issue 9): release review (licences, budgets, findings, objections, people and
standing moved to ``app.console.agency_admin_pages``, issue 18).

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.context import Console, PathId
from app.console.session import Session
from core import Actor, RegistryError
from operators import Role
from sandbox import Decision, ReleaseState

#: Outputs larger than this are listed by name, size and hash only: a preview is for reading, not export.
PREVIEW_MAX_BYTES = 2 * 1024 * 1024
PREVIEW_ROWS = 20
PREVIEW_JSON_CHARS = 6000
PENDING = (ReleaseState.SUBMITTED.value, ReleaseState.UNDER_REVIEW.value)
DECISIONS = [
    (Decision.APPROVE.value, "批准 approve"),
    (Decision.CHANGES_REQUESTED.value, "需修改 changes requested"),
    (Decision.REJECT.value, "驳回 reject"),
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


def _agency(console: Console, request: Request) -> tuple[Session, Actor]:
    """The logged-in agency principal; anyone else is refused by the session check."""
    session = console.session(request, Role.AGENCY)
    return session, session.actor


def _exists(console: Console, release_id: int, actor: Actor) -> bool:
    try:
        console.instance.releases.get(release_id, viewer=actor)
    except RegistryError:
        return False
    return True


def register(router: APIRouter, console: Console) -> None:
    """The agency's pages on the console router, in the order they match."""
    _releases(router, console)
    _votes(router, console)
    # licences, operators, budgets, findings, objections, people and standing: app.console.agency_admin_pages


def _releases(router: APIRouter, console: Console) -> None:
    """Pending and decided releases, and one release as a reviewer must see it before voting."""
    instance = console.instance

    @router.get("/agency", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        session, actor = _agency(console, request)
        releases = instance.releases.list(viewer=actor)
        pending = [r for r in releases if r.state in PENDING]
        decided = [r for r in releases if r.state not in PENDING][-20:][::-1]
        voted = {r.id for r in pending if any(v["reviewer"] == actor.name and v["round"] == r.round for v in r.votes)}
        return console.render(
            request, session, "console/agency/index.html", pending=pending, decided=decided, voted=voted
        )

    @router.get("/agency/releases/{release_id}", response_class=HTMLResponse)
    def release(request: Request, release_id: PathId) -> Response:
        session, actor = _agency(console, request)
        try:
            view = instance.releases.get(release_id, viewer=actor)
        except RegistryError as exc:
            return console.flash(session, "/agency", "release_unavailable", release=release_id, reason=exc)
        job = licence = None
        previews: dict[str, Any] = {}
        try:
            job = instance.jobs.show(view.job, viewer=actor)
        except RegistryError:
            job = None
        if job is not None:
            on_disk = {str(o.get("name")): o.get("path") for o in job.outputs}
            for output in view.outputs:
                relative = on_disk.get(str(output["name"]))
                if relative:
                    shown = preview(instance.home / str(relative), str(output["name"]), str(output["sha256"]),
                                    instance.registry.at_rest.read)  # fmt: skip
                    if shown is not None:
                        previews[str(output["name"])] = shown
        try:
            licence = instance.registry.licences.get(view.licence_id, viewer=actor)
        except RegistryError:
            licence = None
        open_round = view.state in PENDING
        mine = next((v for v in view.votes if v["reviewer"] == actor.name and v["round"] == view.round), None)
        # Once the reviewers decided, an open release only awaits its custodians (SATRE 3.1.06): no more votes.
        may_vote = open_round and mine is None and actor.name != view.operator and view.votes_needed > 0
        lineage_datasets = [
            {"name": name, "version": (granted or {}).get("version") if isinstance(granted, dict) else None}
            for name, granted in ((job.datasets if job else {}) or {}).items()
        ]
        return console.render(
            request,
            session,
            "console/agency/release.html",
            release=view,
            job=job,
            licence=licence,
            datasets=lineage_datasets,
            previews=previews,
            open_round=open_round,
            mine=mine,
            may_vote=may_vote,
            decided_votes=[v for v in view.votes if not (open_round and v["round"] == view.round)],
            decisions=DECISIONS,
        )


def _votes(router: APIRouter, console: Console) -> None:
    """A reviewer's sealed vote (双鸭山 第五十二条: independent review before release)."""
    instance = console.instance

    @router.post("/agency/releases/{release_id}/vote")
    async def vote(request: Request, release_id: PathId) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        path = f"/agency/releases/{release_id}"
        decision = str(form.get("decision", "")).strip()
        reason = str(form.get("reason", ""))
        files = {
            str(key)[len("file:") :]: str(value)
            for key, value in form.multi_items()
            if str(key).startswith("file:") and str(value)
        }
        try:
            view = instance.releases.vote(release_id, decision, by=actor, reason=reason, files=files)
        except RegistryError as exc:
            back = path if _exists(console, release_id, actor) else "/agency"
            return console.flash(session, back, "vote_refused", reason=exc)
        if view.state in PENDING:
            return console.flash(session, path, "vote_recorded_sealed", needed=view.votes_needed)
        return console.flash(session, path, "vote_recorded_decided", state=view.state)
