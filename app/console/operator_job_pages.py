"""One job of the operator (issues 9 and 18): its state, verdict, findings, redacted log, outputs, its own
code, and what may be done with it — clone, withdraw, request release, mitigate.

Every read goes through the same calls as ``GET /jobs/{id}`` (:meth:`sandbox.queue.JobView.for_operator`:
its own jobs only, another operator's job is "not found"; judged content only, 原始数据不出域, 数据可用不可见;
双鸭山 第三十五条), and every action through the same call as the API: withdrawing is ``POST /jobs/{id}/cancel``
(:meth:`operators.Jobs.cancel`, ledgered), a release is ``POST /releases``. A verdict is shown for a finished
(``done``) job only: a failed, refused or cancelled job shows none at all (issue 18), not even a stored
``review`` — nothing it made is judged as a whole run. Outputs are listed by name, size and hash after the
guard's ``pass`` or ``review``; a passed job's outputs may be viewed and downloaded (the same call as
``GET /jobs/{id}/outputs/{name}``, :mod:`operators.job_outputs`, every read ledgered), a reviewed one's leave
only as a product approved by the release review, and the page says so. While the job is queued or running
the page refreshes itself.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.api.jobs import output_media_type
from app.console.context import Console, PathId
from core import NotFoundError, RegistryError
from operators import Role
from registry import FeeClass
from sandbox import DP_KINDS, manifest_of

#: Seconds between refreshes of a page showing a queued or running job.
REFRESH_SECONDS = 3
#: What the output view shows at most: rows of a CSV, characters of other text.
PREVIEW_ROWS = 200
PREVIEW_CHARS = 20_000


def shows_verdict(view: Any) -> bool:
    """Whether a job's verdict is shown at all: only a finished (``done``) job has one (issue 18)."""
    return view.state == "done" and view.verdict in ("pass", "review", "block")


def _not_found(console: Console, request: Request, session: Any, job_id: int) -> HTMLResponse:
    message = f"没有作业 {job_id} · no job {job_id}"
    return console.render(request, session, "console/error.html", status_code=404, message=message)


def register(router: APIRouter, console: Console) -> None:
    """The job page and its actions on the console router."""
    _job(router, console)
    _outputs(router, console)
    _withdraw(router, console)
    _release(router, console)


def _preview(name: str, data: bytes) -> dict[str, Any]:
    """What the view page shows of an output: a CSV's first rows as a table, other text as text, else nothing."""
    lowered = name.lower()
    if not lowered.endswith((".csv", ".json", ".txt")):
        return {"kind": "binary"}
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return {"kind": "binary"}
    if lowered.endswith(".csv"):
        rows = list(csv.reader(io.StringIO(text)))
        header = rows[0] if rows else []
        return {"kind": "table", "header": header, "rows": rows[1 : PREVIEW_ROWS + 1], "total": max(len(rows) - 1, 0)}
    return {"kind": "text", "text": text[:PREVIEW_CHARS], "cut": len(text) > PREVIEW_CHARS}


def _outputs(router: APIRouter, console: Console) -> None:
    """One output of one's own passed job, viewed or downloaded; each read ledgered, as over
    ``GET /jobs/{id}/outputs/{name}``."""
    instance = console.instance

    @router.get("/operator/jobs/{job_id}/outputs/{name}", response_model=None)
    def download(request: Request, job_id: PathId, name: str) -> Response:
        session = console.session(request, Role.OPERATOR)
        try:
            read = instance.jobs.output(job_id, name, by=session.actor)
        except RegistryError as exc:
            return console.flash(session, f"/operator/jobs/{job_id}", "output_refused", reason=exc)
        disposition = f"attachment; filename*=UTF-8''{quote(read.name)}"
        media = output_media_type(read.name)
        return Response(read.data, media_type=media, headers={"Content-Disposition": disposition})

    @router.get("/operator/jobs/{job_id}/outputs/{name}/view", response_model=None)
    def view(request: Request, job_id: PathId, name: str) -> Response:
        session = console.session(request, Role.OPERATOR)
        try:
            read = instance.jobs.output(job_id, name, by=session.actor)
        except RegistryError as exc:
            return console.flash(session, f"/operator/jobs/{job_id}", "output_refused", reason=exc)
        preview = _preview(name, read.data)
        page = "console/operator/output.html"
        return console.render(request, session, page, job_id=job_id, output=read, preview=preview)


def _job(router: APIRouter, console: Console) -> None:
    """One job as :meth:`JobView.for_operator` shows it, with its code and what may be done with it."""
    instance = console.instance

    @router.get("/operator/jobs/{job_id}", response_class=HTMLResponse)
    def job(request: Request, job_id: PathId) -> HTMLResponse:
        session = console.session(request, Role.OPERATOR)
        actor = session.actor
        try:
            view = instance.jobs.show(job_id, viewer=actor)
            code = instance.jobs.queue.code(job_id, viewer=actor)  # its own code (the plan, for a DP job)
        except NotFoundError:
            return _not_found(console, request, session, job_id)
        if view.operator != actor.name:  # the queue already hides them; never rely on one check alone
            return _not_found(console, request, session, job_id)
        view = view.for_operator()  # judged content only, as over the API
        licence = None
        if view.licence_id is not None:
            try:
                licence = instance.registry.licences.get(view.licence_id, viewer=actor)
            except RegistryError:
                licence = None
        releases = [r for r in instance.releases.list(viewer=actor) if r.job == job_id]
        judged = shows_verdict(view)
        releasable = judged and view.verdict in ("pass", "review") and bool(view.outputs)
        mitigable = judged and view.verdict == "review" and bool(view.outputs)
        live = view.state in ("queued", "running")
        return console.render(
            request,
            session,
            "console/operator/job.html",
            job=view,
            code=code,
            judged=judged,
            live=live,
            refresh=REFRESH_SECONDS,
            withdrawable=live and not view.cancel_requested,
            outputs=manifest_of(view.outputs) if judged else [],
            readable=judged and view.verdict == "pass" and not view.held,
            datasets=sorted(view.datasets),
            releases=releases,
            releasable=releasable,
            mitigable=mitigable and view.kind not in DP_KINDS,
            fee_classes=[f.value for f in FeeClass],
            licence_fee=licence.fee_class if licence else None,
        )


def _withdraw(router: APIRouter, console: Console) -> None:
    """Withdraw one's own queued or running job: the same call as ``POST /jobs/{id}/cancel``."""
    instance = console.instance

    @router.post("/operator/jobs/{job_id}/cancel", response_model=None)
    async def withdraw(request: Request, job_id: PathId) -> Response:
        """A queued job is cancelled at once (a DP job's charge comes back); a running one is stopped by its
        worker. Ledgered by the queue (``job.cancelled`` / ``job.cancel_requested``)."""
        session = console.session(request, Role.OPERATOR)
        await console.form(request, session)
        try:
            view = instance.jobs.cancel(job_id, by=session.actor)
        except RegistryError as exc:
            return console.flash(session, f"/operator/jobs/{job_id}", "job_not_withdrawn", reason=exc)
        msg = "job_withdrawn" if view.state == "cancelled" else "job_withdraw_requested"
        return console.flash(session, f"/operator/jobs/{job_id}", msg, job=job_id)


def _release(router: APIRouter, console: Console) -> None:
    """Release requests and mitigation of one's own job."""
    instance = console.instance

    @router.post("/operator/jobs/{job_id}/release", response_model=None)
    async def request_release(request: Request, job_id: PathId) -> Response:
        """Ask for the job's outputs to be released as a named product (``POST /releases``)."""
        session = console.session(request, Role.OPERATOR)
        posted = await console.form(request, session)
        actor = session.actor
        justifications = {
            key.removeprefix("justify_"): str(value).strip()
            for key, value in posted.multi_items()
            if key.startswith("justify_") and str(value).strip()
        }
        files = [str(f) for f in posted.getlist("files")] or None
        fee_class = str(posted.get("fee_class", "")).strip() or None
        try:
            view = instance.releases.request(
                job_id,
                product=str(posted.get("product", "")),
                by=actor,
                fee_class=fee_class,
                justifications=justifications,
                files=files,
            )
        except RegistryError as exc:
            return console.flash(session, f"/operator/jobs/{job_id}", "release_refused", reason=exc)
        return console.flash(
            session, f"/operator/jobs/{job_id}", "release_requested", release=view.id, state=view.state
        )

    @router.post("/operator/jobs/{job_id}/mitigate", response_model=None)
    async def mitigate(request: Request, job_id: PathId) -> Response:
        """Queue a suppressed and/or rounded copy of a job's tables; the guard judges it anew."""
        session = console.session(request, Role.OPERATOR)
        posted = await console.form(request, session)
        actor = session.actor
        raw_base = str(posted.get("round_base", "")).strip()
        try:
            round_base = int(raw_base) if raw_base else None
        except ValueError:
            return console.flash(session, f"/operator/jobs/{job_id}", "round_base_not_integer", value=raw_base)
        if round_base is not None and not 2 <= round_base <= 1000:
            return console.flash(session, f"/operator/jobs/{job_id}", "round_base_out_of_range")
        try:
            new = instance.jobs.mitigate(
                job_id, suppress=posted.get("suppress") == "on", round_base=round_base, by=actor
            )
        except RegistryError as exc:
            return console.flash(session, f"/operator/jobs/{job_id}", "mitigation_refused", reason=exc)
        return console.flash(session, "/operator/jobs", "mitigation_queued", job=new)
