"""The operator's side of a release review (issue 18): its own release with the reviewers' comments, the
per-file decisions once a round is decided, a reply form and the resubmission of a returned release.

Why: a returned release (需修改) is corrected by the operator, rerun and resubmitted as a new round
(双鸭山市公共数据管理暂行办法 第五十二条: nothing is released before the review decides); the operator must
read what to change where the reviewers wrote it and may answer (Airlock's request thread). Sealed votes
stay sealed (issue 7): the operator sees the votes of decided rounds only, as ``GET /releases/{id}`` gives
them. Every read and action is the package call the HTTP API makes (``app/api/releases.py``:
``GET/POST /releases/{id}/comments``, ``POST /releases/{id}/resubmit``); refusals come back as the page's
flash message, never a 500; another operator's release is refused as if it did not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.context import Console, PathId, decimal
from app.console.session import Session
from core import Actor, RegistryError
from operators import Role

#: Jobs an operator may resubmit with: done, judged and releasable (the sandbox checks again).
RESUBMITTABLE = ("pass", "review")


def _operator(console: Console, request: Request) -> tuple[Session, Actor]:
    session = console.session(request, Role.OPERATOR)
    return session, session.actor


def register(router: APIRouter, console: Console) -> None:
    """The operator's release page, its reply form and its resubmission."""
    instance = console.instance

    @router.get("/operator/releases/{release_id}", response_class=HTMLResponse)
    def release(request: Request, release_id: PathId) -> Response:
        session, actor = _operator(console, request)
        try:
            view = instance.releases.get(release_id, viewer=actor)
            comments = instance.releases.comments.list(release_id, viewer=actor)
        except RegistryError as exc:
            return console.flash(session, "/operator", "release_unavailable", release=release_id, reason=exc)
        jobs = [
            j
            for j in instance.jobs.list(viewer=actor)
            if j.state == "done" and j.verdict in RESUBMITTABLE and j.licence_id == view.licence_id
        ]
        decided = [
            v for v in view.votes if not (view.state in ("submitted", "under_review") and v["round"] == view.round)
        ]
        rounds = sorted({int(v["round"]) for v in decided}, reverse=True)
        return console.render(
            request,
            session,
            "console/operator/release.html",
            release=view,
            comments=comments,
            decided_votes=decided,
            # Per file, the latest decided round's decision of each reviewer (what to change, and where).
            file_decisions={
                str(o["name"]): [
                    (v["reviewer"], v["files"].get(str(o["name"])))
                    for v in decided
                    if rounds and v["round"] == rounds[0]
                ]
                for o in view.outputs
            },
            last_round=rounds[0] if rounds else None,
            jobs=jobs,
        )

    @router.post("/operator/releases/{release_id}/comments")
    async def reply(request: Request, release_id: PathId) -> Response:
        session, actor = _operator(console, request)
        form = await console.form(request, session)
        path = f"/operator/releases/{release_id}"
        try:
            instance.releases.comments.post(
                release_id, str(form.get("body", "")), by=actor, file=str(form.get("file", "")) or None
            )
        except RegistryError as exc:
            return console.flash(session, _back(console, release_id, actor), "comment_refused", reason=exc)
        return console.flash(session, path, "comment_posted")

    @router.post("/operator/releases/{release_id}/resubmit")
    async def resubmit(request: Request, release_id: PathId) -> Response:
        session, actor = _operator(console, request)
        form = await console.form(request, session)
        job = decimal(form.get("job"), low=1)  # ASCII digits within a row id: else no job (red team 18)
        if job is None:
            return console.flash(session, _back(console, release_id, actor), "resubmit_refused", reason="choose a job")
        justifications = {
            str(key)[len("justify_") :]: str(value).strip()
            for key, value in form.multi_items()
            if str(key).startswith("justify_") and str(value).strip()
        }
        try:
            view = instance.releases.resubmit(release_id, job_id=job, by=actor, justifications=justifications)
        except RegistryError as exc:
            return console.flash(session, _back(console, release_id, actor), "resubmit_refused", reason=exc)
        return console.flash(session, f"/operator/releases/{release_id}", "release_resubmitted", round=view.round)


def _back(console: Console, release_id: int, actor: Actor) -> str:
    """The release page when the operator may read it, else its overview (never a hint of another's release)."""
    try:
        console.instance.releases.get(release_id, viewer=actor)
    except RegistryError:
        return "/operator"
    return f"/operator/releases/{release_id}"
