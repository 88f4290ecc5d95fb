"""The custodian's say on egress in the console (issue 22; SATRE 3.1.06, 1.5.04): the releases awaiting
its sign-off, each shown with the same outputs, previews, findings, justifications and lineage the
agency's reviewers see (``console/release_body.html``), its sign-off or refusal, and on a dataset's page
the standing delegation to the agency and its withdrawal.

Every act goes through the same package calls the API makes for a custodian (``app/api/releases.py``,
``app/api/egress.py``), with the logged-in custodian as the actor: the console never signs off for
anyone else, and the packages' refusals (another organisation's dataset, a frozen platform, a refusal
without a reason) come back as the page's flash message.

The previews and the lineage are read as the host would read them (the release's outputs under the
home, the job's datasets, scenario and code hash), but only after the custodian's own session could
read the release: a custodian reads every release (``sandbox.release_views.READ_ALL``), never a job.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.console.agency_pages import preview
from app.console.context import Console, PathId
from core import Actor, RegistryError
from operators import Role

SIGN_OFFS = [("approve", "同意签核 sign off"), ("refuse", "拒绝 refuse")]
OPEN = ("submitted", "under_review")


def _previews(console: Console, release_id: int) -> dict[str, Any]:
    """Previews of the release's own outputs (paths are the host's: read them here, never shown)."""
    host_view = console.instance.releases.get(release_id, viewer=Actor.host())
    previews: dict[str, Any] = {}
    for output in host_view.outputs:
        if output.get("path"):
            at_rest = console.instance.registry.at_rest  # the storage's object (issue 19), never home / path
            shown = preview(at_rest, str(output["path"]), str(output["name"]), str(output["sha256"]))
            if shown is not None:
                previews[str(output["name"])] = shown
    return previews


def register(router: APIRouter, console: Console) -> None:
    """The custodian's release and delegation pages on the console router."""
    instance = console.instance

    @router.get("/custodian/releases", response_class=HTMLResponse)
    def awaiting(request: Request) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        mine = set(instance.registry.egress.datasets_of(session.actor))
        pending = instance.releases.awaiting_signoff(viewer=session.actor)
        involved = [
            r
            for r in instance.releases.list(viewer=session.actor)
            if r.state not in OPEN and mine & {*r.signoff_required, *r.delegated}
        ][-20:][::-1]
        return console.render(
            request, session, "console/custodian/releases.html", pending=pending, involved=involved, mine=sorted(mine)
        )

    @router.get("/custodian/releases/{release_id}", response_class=HTMLResponse)
    def release(request: Request, release_id: PathId) -> Response:
        session = console.session(request, Role.CUSTODIAN)
        try:
            view = instance.releases.get(release_id, viewer=session.actor)
        except RegistryError as exc:
            return console.flash(session, "/custodian/releases", "release_unavailable", release=release_id, reason=exc)
        job = instance.jobs.show(view.job, viewer=Actor.host())
        datasets = [
            {"name": name, "version": (granted or {}).get("version") if isinstance(granted, dict) else None}
            for name, granted in (job.datasets or {}).items()
        ]
        mine = set(instance.registry.egress.datasets_of(session.actor))
        return console.render(
            request,
            session,
            "console/custodian/release.html",
            release=view,
            job=job,
            licence=None,
            datasets=datasets,
            previews=_previews(console, release_id),
            may_sign=sorted(mine & set(view.signoffs_pending)),
            sign_offs=SIGN_OFFS,
        )

    @router.post("/custodian/releases/{release_id}/signoff", response_model=None)
    async def sign_off(request: Request, release_id: PathId) -> Response:
        session = console.session(request, Role.CUSTODIAN)
        form = await console.form(request, session)
        path = f"/custodian/releases/{release_id}"
        decision = str(form.get("decision", "")).strip()
        datasets = [str(v) for k, v in form.multi_items() if k == "dataset" and str(v)] or None
        try:
            view = instance.releases.sign_off(
                release_id, decision, by=session.actor, datasets=datasets, reason=str(form.get("reason", ""))
            )
        except RegistryError as exc:
            return console.flash(session, path, "signoff_refused", reason=exc)
        return console.flash(session, path, "signoff_recorded", state=view.state)

    _delegation(router, console)


def _delegation(router: APIRouter, console: Console) -> None:
    """A dataset's standing delegation to the agency, and its withdrawal (its custodians only)."""
    instance = console.instance

    @router.post("/custodian/datasets/{name}/delegation", response_model=None)
    async def delegate(request: Request, name: str) -> Response:
        session = console.session(request, Role.CUSTODIAN)
        form = await console.form(request, session)
        target = f"/custodian/datasets/{name}"
        try:
            expires = _day(str(form.get("expires", "")).strip())
            instance.registry.egress.delegate(
                name, by=session.actor, reason=str(form.get("reason", "")), expires=expires
            )
        except (RegistryError, ValueError) as exc:
            return console.flash(session, target, "delegation_refused", reason=exc)
        return console.flash(session, target, "delegation_recorded", dataset=name)

    @router.post("/custodian/datasets/{name}/delegation/withdraw", response_model=None)
    async def withdraw(request: Request, name: str) -> Response:
        session = console.session(request, Role.CUSTODIAN)
        form = await console.form(request, session)
        target = f"/custodian/datasets/{name}"
        try:
            instance.registry.egress.withdraw(name, by=session.actor, reason=str(form.get("reason", "")))
        except RegistryError as exc:
            return console.flash(session, target, "delegation_refused", reason=exc)
        return console.flash(session, target, "delegation_withdrawn", dataset=name)


def _day(text: str) -> Any:
    """A ``YYYY-MM-DD`` expiry, or None when blank; anything else is refused with the form's message."""
    from datetime import date

    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"到期日须为 YYYY-MM-DD · expiry must be YYYY-MM-DD, not {text!r}") from None
