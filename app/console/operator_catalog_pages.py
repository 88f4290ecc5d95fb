"""The operator's catalog page (issue 16): per dataset, what copy a licence would serve it.

"Operators should know what they will get": per column the action and how a generalized column is held
(numeric midpoint and width, top and bottom coding, dates to a year or month), the copy's
re-identification risk after desensitization (k, l, prosecutor highest and average, the level's
threshold and whether it is met) and the utility summary (median and largest relative error of the
standard workload). These are the same public facts ``GET /datasets`` gives an operator
(``copy_facts``; :func:`app.copy_facts.public_facts`) — never a raw value, a raw aggregate, a storage
path or the custodian's full report (原始数据不出域, 数据可用不可见; 双鸭山 第三十五条).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.console.context import Console
from app.copy_facts import NOT_MEASURED, newest_copy_facts, number_text, share_text
from operators import Role


def register(router: APIRouter, console: Console) -> None:
    """``/operator/catalog`` on the console router."""
    instance = console.instance

    @router.get("/operator/catalog", response_class=HTMLResponse)
    def catalog(request: Request) -> HTMLResponse:
        session = console.session(request, Role.OPERATOR)
        licences = instance.registry.licences.list(viewer=session.actor)
        licensed = {d.name for lic in licences if lic.state == "active" for d in lic.datasets}
        entries = [
            {"entry": view, "facts": newest_copy_facts(view.versions), "licensed": view.name in licensed}
            for view in instance.registry.catalog.list()
        ]
        return console.render(
            request,
            session,
            "console/operator/catalog.html",
            entries=entries,
            not_measured=NOT_MEASURED,
            num=number_text,
            pct=share_text,
        )
