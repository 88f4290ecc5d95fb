"""The operator's console pages (issue 9): its licences, budgets, jobs with verdicts and redacted logs,
release requests and products.

Every read and every action goes through the same calls the HTTP API makes for an operator
(``app/api/jobs.py``, ``app/api/releases.py``, ``app/api/products.py``) with the
logged-in operator as viewer, and every job passes through the same
:meth:`sandbox.queue.JobView.for_operator` as over the API, so a page shows exactly what the operator
may read there: its own jobs only (another operator's job is "not found", its existence not revealed),
judged content only — a blocked job's findings but not its outputs, log or exit code; otherwise
outputs by name, size and hash (never where they lie in the home) and the export guard's redacted log
excerpt, never the raw logs (原始数据不出域, 数据可用不可见; 双鸭山 第三十五条). A verdict ``pass`` is
shown, counted and charted for finished (``done``) jobs only (issue 15). Refusals of the platform's
rules come back to the page as the flash message, with the platform's own reason.

Here: the overview, the jobs list and the products. The job form is ``operator_jobform_pages``, one job
and its actions ``operator_job_pages``, the catalog ``operator_catalog_pages`` (issue 18).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.background import BackgroundTask

from app.console import charts
from app.console.context import Console
from app.console.downloads import attributed_file
from app.console.operator_jobform_pages import form_context
from core import Actor, NotFoundError, RegistryError
from operators import Role
from sandbox import JobView, shown_verdict

#: The chart's series, in stacking order: the guard's verdicts, jobs not (yet) judged, refusals.
SERIES = ("pass", "review", "block", "none", "refused")
CHART_DAYS = 30
JOB_LIMIT = 5000


def outcome(job: Any) -> str:
    """The series a job counts in: refused at submission, the guard's verdict, or none yet.

    ``pass`` counts for ``done`` jobs only (:func:`sandbox.queue.shown_verdict`): a failed job that
    passed nothing must not swell the chart's green.
    """
    if job.state == "refused":
        return "refused"
    verdict = shown_verdict(job.state, job.verdict)
    return verdict if verdict in ("pass", "review", "block") else "none"


def jobs_chart(jobs: list[Any], *, days: int = CHART_DAYS) -> Any:
    """Jobs per day by outcome over the span of the operator's jobs (at most the last ``days`` days)."""
    if not jobs:
        return None
    dates = [j.created_at.date() for j in jobs]
    last = max(dates)
    first = max(min(dates), last - timedelta(days=days - 1))
    span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    index: dict[date, int] = {d: i for i, d in enumerate(span)}
    series = {name: [0] * len(span) for name in SERIES}
    for job, day in zip(jobs, dates, strict=True):
        if day in index:
            series[outcome(job)][index[day]] += 1
    labels = [d.strftime("%m-%d") for d in span]
    return charts.stacked_bars("每日作业与判定 Jobs per day by verdict", labels, series)


def _not_found(console: Console, request: Request, session: Any, message: str) -> HTMLResponse:
    return console.render(request, session, "console/error.html", status_code=404, message=message)


def _my_jobs(console: Console, actor: Actor) -> list[JobView]:
    """The operator's own jobs, each as :meth:`JobView.for_operator` shows it."""
    return [view.for_operator() for view in console.instance.jobs.queue.list(viewer=actor, limit=JOB_LIMIT)]


def _jobs_page(console: Console, request: Request, session: Any) -> HTMLResponse:
    """The operator's jobs, newest first; the page refreshes itself while one is queued or running."""
    jobs = _my_jobs(console, session.actor)
    return console.render(
        request,
        session,
        "console/operator/jobs.html",
        jobs=jobs,
        outcome=outcome,
        live=any(j.state in ("queued", "running") for j in jobs),
        cost=None,
        error="",
        **form_context(console, session),
    )


def register(router: APIRouter, console: Console) -> None:
    """The operator's pages on the console router, in the order they match."""
    _overview(router, console)
    _jobs(router, console)
    _products(router, console)


def _overview(router: APIRouter, console: Console) -> None:
    """The operator's overview: licences, ε meters, the jobs chart, products and pending releases."""
    instance = console.instance

    @router.get("/operator", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        session = console.session(request, Role.OPERATOR)
        actor = session.actor
        licences = instance.registry.licences.list(viewer=actor)
        try:
            budgets = instance.registry.budgets.show(actor.name, viewer=actor)
        except NotFoundError:  # a principal the registry does not know as an operator (yet) holds no budgets
            budgets = []
        try:  # its compute quotas, use and remainder before it submits (SATRE 2.3.01)
            quotas = instance.jobs.book.overview(actor.name, viewer=actor)
        except NotFoundError:
            quotas = None
        jobs = _my_jobs(console, actor)
        gauges = [
            (b, charts.meter(f"授权 {b.licence} · {b.dataset} · ε", b.epsilon_spent, b.epsilon_budget)) for b in budgets
        ]
        counts = Counter(outcome(j) for j in jobs)
        products = instance.registry.products.list(viewer=actor)
        releases = instance.releases.list(viewer=actor)
        return console.render(
            request,
            session,
            "console/operator/index.html",
            licences=licences,
            quotas=quotas,
            gauges=gauges,
            chart=jobs_chart(jobs),
            counts={name: counts.get(name, 0) for name in SERIES},
            total=len(jobs),
            products=len(products),
            pending=sum(1 for r in releases if r.state in ("submitted", "under_review", "returned")),
            standing=instance.people.standing(actor.name, viewer=actor),  # may this person submit (issue 22)
        )


def _jobs(router: APIRouter, console: Console) -> None:
    """The jobs list (the form is ``operator_jobform_pages``; one job is ``operator_job_pages``)."""

    @router.get("/operator/jobs", response_class=HTMLResponse)
    def jobs(request: Request) -> HTMLResponse:
        session = console.session(request, Role.OPERATOR)
        return _jobs_page(console, request, session)


def _products(router: APIRouter, console: Console) -> None:
    """One's own products and the stamped delivery of their artifacts."""
    instance = console.instance

    @router.get("/operator/products", response_class=HTMLResponse)
    def products(request: Request) -> HTMLResponse:
        session = console.session(request, Role.OPERATOR)
        actor = session.actor
        mine = instance.registry.products.list(viewer=actor)
        shown = [
            {
                "product": p,
                "artifacts": [{k: a.get(k) for k in ("name", "bytes", "sha256")} for a in p.artifacts],
            }
            for p in mine
        ]
        return console.render(
            request,
            session,
            "console/operator/products.html",
            products=shown,
            releases=instance.releases.list(viewer=actor),
        )

    @router.get("/operator/products/{name}/artifacts/{file}", response_model=None)
    def download(request: Request, name: str, file: str) -> Response:
        """One artifact of one's own available product, stamped with its attribution (双鸭山 第四十一条).

        The same owner-only delivery as ``GET /products/{name}/artifacts/{file}``: a product suspended by
        an objection (第四十条) is refused with the reason, and every delivery is ledgered.
        """
        session = console.session(request, Role.OPERATOR)
        actor = session.actor
        workdir = tempfile.TemporaryDirectory(prefix="keyong-console-fetch-")
        try:
            # The one core checks the name before it ledgers anything (red team 18, F6).
            delivered = instance.releases.fetch(name, Path(workdir.name), by=actor, only=file)
        except RegistryError as exc:  # no such product of the caller's, no such artifact, suspended, frozen…
            workdir.cleanup()
            return console.flash(session, "/operator/products", "not_delivered", reason=exc)
        match = next((f for f in delivered["files"] if f["name"] == file), None)
        if match is None:
            workdir.cleanup()
            return console.flash(session, "/operator/products", "no_such_artifact", product=name, file=file)
        return attributed_file(delivered, match, BackgroundTask(workdir.cleanup))  # 数据来源, 获取日期 (issue 18)
