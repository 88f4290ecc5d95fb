"""``/console/glossary``: the console's words in one page (issue 18), for every role.

Why a page: a reviewer who meets "需人工审核 review" or a regulator reading "授予授权 licence.granted" in the
ledger can look up every term and code the console shows, in the same words the pages use, because the
page is drawn from the same tables (:data:`app.console.glossary.TERMS`, :data:`~app.console.glossary.LABELS`,
:data:`~app.console.glossary.ACTIONS`) the ``label`` filter reads.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.console.context import Console
from app.console.glossary import ACTIONS, LABELS, TERMS


def register(router: APIRouter, console: Console) -> None:
    @router.get("/glossary", response_class=HTMLResponse)
    def glossary(request: Request) -> HTMLResponse:
        """Any logged-in role: the terms, the state and kind codes, and the ledger actions."""
        session = console.session(request)
        terms = [(chinese, english.replace("_", " ")) for english, chinese in TERMS.items()]
        codes = sorted((code, chinese) for code, chinese in LABELS.items() if code not in ACTIONS)
        return console.render(
            request, session, "console/glossary.html", terms=terms, codes=codes, actions=sorted(ACTIONS.items())
        )


__all__ = ["register"]
