"""``keyong licence agree|refuse-access|consent|awaiting-agreement``: the custodian's say on access (SATRE 1.5.04).

A licence becomes active only when each dataset's custodian agreed to it or delegated that agreement to the
agency (``keyong dataset delegate NAME --access``; ``registry.access_consent``). Agreeing and refusing are
the custodian's own acts: its own key (``--key-file`` or ``$KEYONG_API_KEY``) and second factor
(``--totp``); the host administrator never agrees in a custodian's name. Anyone at the host may read.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from app.cli.credentials import KeyFileOption, TotpOption, own_actor
from app.cli.egress import HOW_TO_ACT
from app.cli.licence import licence_cli
from core import Actor

DatasetOption = Annotated[str, typer.Option("--dataset", help="The dataset of the licence you decide on.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why; recorded (the agency reads it).")]


def render_consent(item: dict[str, Any]) -> Any:
    def render(console: Console) -> None:
        done = "complete: the agency may activate it" if item["complete"] else "incomplete: it cannot become active"
        console.print(f"Licence [bold]{item['licence']}[/] ({item['state']}): custodians' agreement {done}")
        for name, status in item["datasets"].items():
            by = f" by {status['by']}: {status['reason']}" if "by" in status else ""
            delegation = f" (delegation {status['delegation']})" if "delegation" in status else ""
            console.print(f"  {name}: {status['status']}{by}{delegation}")

    return render


def _decide(
    licence_id: int, dataset: str, decision: str, reason: str, key_file: Any, totp: Any, home: Any, json_out: bool
) -> None:
    with open_instance(home) as instance:
        by = own_actor(instance, key_file, "custodian", claimed=None, how=HOW_TO_ACT, totp=totp)
        item = instance.registry.licence_consent.decide(licence_id, dataset, decision, by=by, reason=reason).as_json()
    Output(json_out).result(item, render_consent(item))


@licence_cli.command("agree")
@refusing
def licence_agree(
    licence_id: Annotated[int, typer.Argument(metavar="ID")],
    dataset: DatasetOption,
    reason: ReasonOption = "同意 · agreed",
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Agree, as the dataset's custodian (own key), that licence ID may reach it once active."""
    _decide(licence_id, dataset, "agree", reason, key_file, totp, home, json_out)


@licence_cli.command("refuse-access")
@refusing
def licence_refuse_access(
    licence_id: Annotated[int, typer.Argument(metavar="ID")],
    dataset: DatasetOption,
    reason: ReasonOption,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Refuse, as the dataset's custodian (own key): licence ID never becomes active."""
    _decide(licence_id, dataset, "refuse", reason, key_file, totp, home, json_out)


@licence_cli.command("consent")
@refusing
def licence_consent(
    licence_id: Annotated[int, typer.Argument(metavar="ID")], home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """Per dataset of licence ID: agreed, refused, delegated to the agency, or awaiting its custodian."""
    with open_instance(home) as instance:
        item = instance.registry.licence_consent.get(licence_id, viewer=Actor.host()).as_json()
    Output(json_out).result(item, render_consent(item))


@licence_cli.command("awaiting-agreement")
@refusing
def licence_awaiting(
    key_file: KeyFileOption = None, totp: TotpOption = None, home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """Licences awaiting your agreement, as a custodian (own key)."""
    with open_instance(home, sweep=False) as instance:
        by = own_actor(instance, key_file, "custodian", claimed=None, how=HOW_TO_ACT, totp=totp)
        items = [v.as_json() for v in instance.registry.licence_consent.awaiting(by=by)]

    def render(console: Console) -> None:
        for item in items:
            render_consent(item)(console)
        if not items:
            console.print("No licence awaits your agreement.")

    Output(json_out).result({"licences": items}, render)
