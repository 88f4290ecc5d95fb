"""The agency's release review (issues 9 and 18): the queue, one release as a reviewer must see it, the
sealed vote, the review thread and the queue's assignments.

The agency (授权运营实施机构) reviews every product before release (双鸭山市公共数据管理暂行办法
第五十二条). A reviewer sees what would leave in full before voting (Airlock, SACRO-Viewer): every table
paged and sortable, images inline, JSON and text whole, each table's SDC summary (``app.console.release_files``),
the job's code, the licence's scenarios and the operator's stated purpose. No vote is preselected: each
file's decision is chosen, or the vote is refused. A return comes with a comment (``sandbox.release_comments``).
Every read and action is the package call the HTTP API makes (``app/api/releases.py``), so the console
allows exactly what the API does; refusals come back as the page's flash message, never a 500.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from app.console.context import Console, PathId, decimal
from app.console.release_files import IMAGE_CSP, IMAGES, MAX_PER_PAGE, Shown, shown, stored_plaintext
from app.console.session import Session
from core import Actor, RegistryError
from operators import Role
from sandbox import Decision, ReleaseState

PENDING = (ReleaseState.SUBMITTED.value, ReleaseState.UNDER_REVIEW.value)
#: The choices of a file's decision; none is preselected (issue 18: no default vote).
DECISIONS = [
    (Decision.APPROVE.value, "批准 approve"),
    (Decision.CHANGES_REQUESTED.value, "需修改 changes requested"),
    (Decision.REJECT.value, "驳回 reject"),
]


def age(since: datetime, now: datetime) -> str:
    """How long a release has waited, as a reviewer reads it: "3 天 2 小时", "5 小时 10 分钟", "4 分钟"."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} 天 {hours} 小时"
    if hours:
        return f"{hours} 小时 {minutes} 分钟"
    return f"{minutes} 分钟"


def split_note(view: Any) -> str:
    """What a round whose required reviewers disagree needs, without unsealing the votes (issue 7)."""
    if view.state not in PENDING or view.votes_cast < view.required_reviews or view.votes_needed == 0:
        return ""
    return (
        f"评审意见不一致（{view.votes_cast} 票未形成一致决定，各票在本轮决定前保密）："
        f"需第 {view.votes_cast + 1} 位审核员投票，或由运营机构撤回后重新申请。"
        " · The reviewers disagree: a further reviewer must vote "
        "(a strict majority then decides), or the operator withdraws and requests again."
    )


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


def output_bytes(
    console: Console, view: Any, actor: Actor, only: str | None = None
) -> dict[str, tuple[bytes | None, str]]:
    """Each output's plaintext (checked against the SHA-256 the round recorded), or why it is not shown;
    ``only`` that one output (an image served alone decrypts nothing else)."""
    instance = console.instance
    try:
        job = instance.jobs.show(view.job, viewer=actor)
    except RegistryError:
        return {str(o["name"]): (None, "作业不可读 · the job cannot be read") for o in view.outputs}
    on_disk = {str(o.get("name")): o.get("path") for o in job.outputs}
    found: dict[str, tuple[bytes | None, str]] = {}
    for output in view.outputs:
        if only is not None and str(output["name"]) != only:
            continue
        name, relative = str(output["name"]), on_disk.get(str(output["name"]))
        if not relative:
            found[name] = (None, "作业已无此输出 · the job no longer lists this output")
            continue
        found[name] = stored_plaintext(instance.registry.at_rest, str(relative), str(output["sha256"]))
    return found


def register(router: APIRouter, console: Console) -> None:
    """The review pages on the console router, in the order they match."""
    _queue(router, console)
    _release(router, console)
    _files(router, console)
    _votes(router, console)
    _thread(router, console)


def _queue(router: APIRouter, console: Console) -> None:
    """Pending releases with their age and assignment, and which still need my vote."""
    instance = console.instance

    @router.get("/agency", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        session, actor = _agency(console, request)
        releases = instance.releases.list(viewer=actor)
        pending = [r for r in releases if r.state in PENDING]
        decided = [r for r in releases if r.state not in PENDING][-20:][::-1]
        voted = {r.id for r in pending if any(v["reviewer"] == actor.name and v["round"] == r.round for v in r.votes)}
        needs_me = {r.id for r in pending if r.id not in voted and r.votes_needed > 0 and r.operator != actor.name}
        now = instance.registry.config.now()
        return console.render(
            request,
            session,
            "console/agency/index.html",
            pending=pending,
            decided=decided,
            voted=voted,
            needs_me=needs_me,
            ages={r.id: age(r.created_at, now) for r in pending},
            assigned=instance.releases.comments.assignments(viewer=actor),
            splits={r.id for r in pending if split_note(r)},
        )

    @router.post("/agency/releases/{release_id}/assign")
    async def assign(request: Request, release_id: PathId) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        take = str(form.get("take", "1")) != "0"
        try:
            instance.releases.comments.assign(release_id, by=actor, take=take)
        except RegistryError as exc:
            return console.flash(session, "/agency", "assign_refused", reason=exc)
        done = "release_assigned" if take else "release_unassigned"
        return console.flash(session, "/agency", done, release=release_id)


def _release(router: APIRouter, console: Console) -> None:
    """One release in full, as a reviewer must see it before voting."""
    instance = console.instance

    @router.get("/agency/releases/{release_id}", response_class=HTMLResponse)
    def release(
        request: Request,
        release_id: PathId,
        t: Annotated[int, Query(ge=0, le=10_000)] = 0,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        per: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
        sort: Annotated[int | None, Query(ge=0, le=10_000)] = None,
        desc: Annotated[int, Query(ge=0, le=1)] = 0,
    ) -> Response:
        session, actor = _agency(console, request)
        try:
            view = instance.releases.get(release_id, viewer=actor)
        except RegistryError as exc:
            return console.flash(session, "/agency", "release_unavailable", release=release_id, reason=exc)
        job = licence = None
        code = ""
        try:
            job = instance.jobs.show(view.job, viewer=actor)
            code = instance.jobs.queue.code(view.job, viewer=actor)
        except RegistryError:
            pass
        try:
            licence = instance.registry.licences.get(view.licence_id, viewer=actor)
        except RegistryError:
            licence = None
        contents = output_bytes(console, view, actor)
        asked = {"page": page, "per": per, "sort": sort, "desc": desc}
        outputs: list[Shown] = [
            shown(i, str(o["name"]), *contents[str(o["name"])], view=asked if i == t else {"per": per})
            for i, o in enumerate(view.outputs)
        ]
        open_round = view.state in PENDING
        mine = next((v for v in view.votes if v["reviewer"] == actor.name and v["round"] == view.round), None)
        # Once the reviewers decided, an open release only awaits its custodians (SATRE 3.1.06): no more votes.
        may_vote = open_round and mine is None and actor.name != view.operator and view.votes_needed > 0
        comments = instance.releases.comments.list(release_id, viewer=actor)
        return console.render(
            request,
            session,
            "console/agency/release.html",
            release=view,
            job=job,
            code=code,
            purpose=_stated(job),
            licence=licence,
            datasets=[
                {"name": name, "version": (granted or {}).get("version") if isinstance(granted, dict) else None}
                for name, granted in ((job.datasets if job else {}) or {}).items()
            ],
            outputs=outputs,
            comments=comments,
            file_comments={o.name: [c for c in comments if c.file == o.name] for o in outputs},
            open_round=open_round,
            mine=mine,
            may_vote=may_vote,
            split=split_note(view),
            assigned=instance.releases.comments.assignments(viewer=actor).get(view.id),
            decided_votes=[v for v in view.votes if not (open_round and v["round"] == view.round)],
            decisions=DECISIONS,
        )


def _stated(job: Any) -> dict[str, str]:
    """The operator's stated title and purpose of the job, where jobs carry them (issue 18, operator18 adds
    them): read with a fallback, so this page works before and after that change."""
    if job is None:
        return {}
    return {k: str(getattr(job, k)) for k in ("title", "purpose") if getattr(job, k, None)}


def _files(router: APIRouter, console: Console) -> None:
    """An image output, for an <img> on the review page only."""

    @router.get("/agency/releases/{release_id}/files/{index}")
    def image(request: Request, release_id: PathId, index: Annotated[int, PathParam(ge=0, le=10_000)]) -> Response:
        _, actor = _agency(console, request)
        try:
            view = console.instance.releases.get(release_id, viewer=actor)
        except RegistryError:
            raise HTTPException(404, "no such release") from None
        if not 0 <= index < len(view.outputs):
            raise HTTPException(404, "no such output")
        name = str(view.outputs[index]["name"])
        media = IMAGES.get(PurePosixPath(name).suffix.lower())
        if media is None:
            raise HTTPException(404, "not an image output: it is shown on the page")
        data, note = output_bytes(console, view, actor, only=name)[name]
        if data is None:
            raise HTTPException(409, note)
        return Response(
            data,
            media_type=media,
            headers={
                # An SVG could hold script: served with no right to run anything, never sniffed, never cached.
                "Content-Security-Policy": IMAGE_CSP,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
                "Content-Disposition": "inline",
            },
        )


def _votes(router: APIRouter, console: Console) -> None:
    """A reviewer's sealed vote (双鸭山 第五十二条: independent review before release)."""
    instance = console.instance

    @router.post("/agency/releases/{release_id}/vote")
    async def vote(request: Request, release_id: PathId) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        path = f"/agency/releases/{release_id}"
        files = {
            str(key)[len("file:") :]: str(value)
            for key, value in form.multi_items()
            if str(key).startswith("file:") and str(value)
        }
        # What the page showed (red team 18, F5): the vote counts only for that round and those files.
        shown_sha256 = {
            str(key)[len("sha256:") :]: str(value)
            for key, value in form.multi_items()
            if str(key).startswith("sha256:")
        }
        round_shown = decimal(form.get("round"), low=1)
        try:
            view = instance.releases.get(release_id, viewer=actor)
        except RegistryError as exc:
            return console.flash(session, "/agency", "vote_refused", reason=exc)
        if round_shown is None or not shown_sha256 or view.round != round_shown:
            return console.flash(session, path, "vote_stale")
        # No default vote (issue 18): every file's decision is chosen, or nothing is recorded.
        missing = [str(o["name"]) for o in view.outputs if str(o["name"]) not in files]
        if missing:
            return console.flash(session, path, "vote_incomplete", files=", ".join(missing))
        try:
            view = instance.releases.vote(
                release_id,
                Decision.APPROVE,  # every file below carries its own decision; the vote is the worst of them
                by=actor,
                reason=str(form.get("reason", "")),
                files=files,
                comment=str(form.get("comment", "")),
                round_shown=round_shown,
                files_sha256=shown_sha256,
            )
        except RegistryError as exc:
            back = path if _exists(console, release_id, actor) else "/agency"
            return console.flash(session, back, "vote_refused", reason=exc)
        if view.state in PENDING:
            return console.flash(session, path, "vote_recorded_sealed", needed=view.votes_needed)
        return console.flash(session, path, "vote_recorded_decided", state=view.state)


def _thread(router: APIRouter, console: Console) -> None:
    """A reviewer's comment on one file or on the whole release."""
    instance = console.instance

    @router.post("/agency/releases/{release_id}/comments")
    async def comment(request: Request, release_id: PathId) -> Response:
        session, actor = _agency(console, request)
        form = await console.form(request, session)
        path = f"/agency/releases/{release_id}"
        try:
            instance.releases.comments.post(
                release_id, str(form.get("body", "")), by=actor, file=str(form.get("file", "")) or None
            )
        except RegistryError as exc:
            back = path if _exists(console, release_id, actor) else "/agency"
            return console.flash(session, back, "comment_refused", reason=exc)
        return console.flash(session, path, "comment_posted")
