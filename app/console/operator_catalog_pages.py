"""The operator's catalog pages (issues 16 and 18): what copy a licence serves, and each granted dataset's
columns with a synthetic sample and a job template per kind.

"Operators should know what they will get" (issue 16): per column the action and how a generalized column is
held, the copy's re-identification risk after desensitization and the utility summary. These are the same
public facts ``GET /datasets`` gives an operator (``copy_facts``; :func:`app.copy_facts.public_facts`) — never a
raw value, a raw aggregate, a storage path or the custodian's full report (原始数据不出域, 数据可用不可见;
双鸭山 第三十五条). The list leads with the datasets of the operator's live (active) licences; the rest of the
catalog stays listed, as over the API, so an operator can see what it could ask for.

A granted dataset's page (issue 18) shows its columns (the copy's type, level, public bounds and domain) and a
synthetic sample drawn from those public facts only (``app.console.job_templates``), and links to the job form
with that dataset chosen. Another dataset's page is "not found": the rule is the licence, as submission's is.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.console.context import Console
from app.console.job_templates import SAMPLE_ROWS, columns_of, synthetic_sample
from app.copy_facts import NOT_MEASURED, newest_copy_facts, number_text, share_text
from core import Actor, NotFoundError
from operators import Role
from sandbox import KINDS


def granted(console: Console, actor: Actor) -> dict[str, list[str]]:
    """The datasets of ``actor``'s live (active) licences, each with its licences' scenarios."""
    shown: dict[str, list[str]] = {}
    for lic in console.instance.registry.licences.list(viewer=actor):
        if lic.state != "active":
            continue
        for dataset in lic.datasets:
            shown.setdefault(dataset.name, [])
            shown[dataset.name] = sorted(set(shown[dataset.name]) | set(lic.scenarios))
    return shown


def register(router: APIRouter, console: Console) -> None:
    """``/operator/catalog`` and ``/operator/catalog/{name}`` on the console router."""
    instance = console.instance

    @router.get("/operator/catalog", response_class=HTMLResponse)
    def catalog(request: Request) -> HTMLResponse:
        session = console.session(request, Role.OPERATOR)
        licensed = granted(console, session.actor)
        views = sorted(instance.registry.catalog.list(), key=lambda view: (view.name not in licensed, view.name))
        entries = [
            {"entry": view, "facts": newest_copy_facts(view.versions), "licensed": view.name in licensed}
            for view in views
        ]
        return console.render(
            request,
            session,
            "console/operator/catalog.html",
            entries=entries,
            granted_count=sum(1 for item in entries if item["licensed"]),
            not_measured=NOT_MEASURED,
            num=number_text,
            pct=share_text,
        )

    @router.get("/operator/catalog/{name}", response_class=HTMLResponse)
    def dataset(request: Request, name: str) -> HTMLResponse:
        session = console.session(request, Role.OPERATOR)
        licensed = granted(console, session.actor)
        missing = f"没有授权给您的数据集 {name[:64]} · no dataset {name[:64]!r} is granted to you"
        if name not in licensed:
            return console.render(request, session, "console/error.html", status_code=404, message=missing)
        try:
            view = instance.registry.catalog.get(name)
        except NotFoundError:
            return console.render(request, session, "console/error.html", status_code=404, message=missing)
        facts: dict[str, Any] | None = newest_copy_facts(view.versions)
        columns = columns_of(view, facts)
        return console.render(
            request,
            session,
            "console/operator/dataset.html",
            entry=view,
            facts=facts,
            columns=columns,
            sample=synthetic_sample(view.name, columns),
            sample_rows=SAMPLE_ROWS,
            scenarios=licensed[name],
            kinds=KINDS,
        )
