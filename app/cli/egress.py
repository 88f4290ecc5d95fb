"""``keyong dataset egress|delegate|withdraw-delegation`` and ``keyong release sign-off|refuse|awaiting``:
the custodian's say on egress (issue 22, SATRE 3.1.06 and 1.5.04).

A delegation, its withdrawal, a sign-off and a refusal are the custodian's own acts: they need that
custodian's own credential (``--key-file`` or ``$KEYONG_API_KEY``, checked as the API checks it), and
the ledger names its principal. The host administrator never signs off, nor delegates, in a
custodian's name (``app/cli/credentials.py``); it may read everything.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from app.cli.credentials import KeyFileOption, TotpOption, own_actor, read_credential
from app.cli.dataset import dataset_cli
from app.cli.release import release_cli, render_release
from core import Actor

#: How a custodian acts when the host administrator tried to act for it.
HOW_TO_ACT = (
    "Act with your own API key and second factor as the dataset's custodian (--key-file FILE or $KEYONG_API_KEY, "
    "with --totp CODE or $KEYONG_TOTP), in the web "
    "console signed in as yourself, or over the API with your own token."
)
DatasetArg = Annotated[str, typer.Argument(metavar="NAME", help="The dataset (catalog entry name).")]


AccessOption = Annotated[
    bool,
    typer.Option(
        "--access",
        help="The say on access (agreement to licences over the dataset, SATRE 1.5.04) instead of on egress.",
    ),
]
_MODES = {
    "delegated": "delegated to the agency",
    "signoff": "custodian sign-off required",
    "agreement": "custodian agrees to each licence",
}


def _say(instance: Any, access: bool) -> Any:
    """Which say a delegation command acts on: egress (release sign-off, default) or access (licences)."""
    return instance.registry.access if access else instance.registry.egress


def _render_egress(item: dict[str, Any]) -> Any:
    def render(console: Console) -> None:
        mode = _MODES.get(item["mode"], item["mode"])
        console.print(f"Dataset [bold]{item['dataset']}[/] ({' / '.join(item['organisation'])}): {mode}")
        live = item.get("delegation")
        if live:
            until = live["expires_at"] or "until withdrawn"
            console.print(
                f"  delegation {live['id']} by {live['granted_by']} ({live['org']}), {until}: {live['reason']}"
            )
        for old in item["history"]:
            if not old["live"]:
                ended = f"withdrawn by {old['withdrawn_by']}" if old["withdrawn_at"] else "expired"
                console.print(f"  delegation {old['id']} by {old['granted_by']}: {ended}")

    return render


@dataset_cli.command("egress")
@refusing
def egress_show(name: DatasetArg, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Whether releases of a dataset need its custodian's sign-off or are delegated to the agency."""
    with open_instance(home, sweep=False) as instance:
        item = instance.registry.egress.get(name).as_json()
    Output(json_out).result(item, _render_egress(item))


@dataset_cli.command("access")
@refusing
def access_show(name: DatasetArg, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Whether licences over a dataset need its custodian's agreement each, or are delegated to the agency."""
    with open_instance(home, sweep=False) as instance:
        item = instance.registry.access.get(name).as_json()
    Output(json_out).result(item, _render_egress(item))


@dataset_cli.command("delegate")
@refusing
def egress_delegate(
    name: DatasetArg,
    reason: Annotated[str, typer.Option("--reason", help="Why the agency may decide alone; recorded.")],
    expires: Annotated[
        datetime | None, typer.Option("--expires", formats=["%Y-%m-%d"], help="Last day it holds (UTC).")
    ] = None,
    access: AccessOption = False,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Delegate a dataset's release sign-off (or with --access, its agreement to licences) to the agency."""
    with open_instance(home) as instance:
        by = own_actor(instance, key_file, "custodian", claimed=None, how=HOW_TO_ACT, totp=totp)
        until = expires.date() if expires else None
        item = _say(instance, access).delegate(name, by=by, reason=reason, expires=until).as_json()
    Output(json_out).result(item, _render_egress(item))


@dataset_cli.command("withdraw-delegation")
@refusing
def egress_withdraw(
    name: DatasetArg,
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded.")],
    access: AccessOption = False,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Withdraw the delegation: new release requests (with --access: licences) need you again (own key)."""
    with open_instance(home) as instance:
        by = own_actor(instance, key_file, "custodian", claimed=None, how=HOW_TO_ACT, totp=totp)
        item = _say(instance, access).withdraw(name, by=by, reason=reason).as_json()
    Output(json_out).result(item, _render_egress(item))


def _sign(
    release: int,
    decision: str,
    datasets: list[str] | None,
    reason: str,
    key_file: Path | None,
    totp: str | None,
    home: Path | None,
    json_out: bool,
) -> None:
    with open_instance(home) as instance:
        by = own_actor(instance, key_file, "custodian", claimed=None, how=HOW_TO_ACT, totp=totp)
        item = instance.releases.sign_off(release, decision, by=by, datasets=datasets, reason=reason).as_json()
    Output(json_out).result(item, render_release(item))


DatasetOption = Annotated[
    list[str] | None,
    typer.Option("--dataset", help="Only this dataset (repeatable; default: every pending one of yours)."),
]


@release_cli.command("sign-off")
@refusing
def release_sign_off(
    release: Annotated[int, typer.Argument(metavar="ID")],
    dataset: DatasetOption = None,
    reason: Annotated[str, typer.Option("--reason")] = "",
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Your own sign-off, as a custodian of the release's data (registered once the reviewers approved too)."""
    _sign(release, "approve", dataset, reason, key_file, totp, home, json_out)


@release_cli.command("refuse")
@refusing
def release_refuse(
    release: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why; the operator and the agency read it.")],
    dataset: DatasetOption = None,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Your own refusal, as a custodian of the release's data: the release is rejected."""
    _sign(release, "refuse", dataset, reason, key_file, totp, home, json_out)


@release_cli.command("awaiting")
@refusing
def release_awaiting(
    key_file: KeyFileOption = None, totp: TotpOption = None, home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """Releases awaiting a custodian's sign-off: yours with your key, else (the host) every one."""
    with open_instance(home, sweep=False) as instance:
        given = read_credential(key_file) is not None
        viewer = (
            own_actor(instance, key_file, "custodian", claimed=None, how=HOW_TO_ACT, totp=totp)
            if given
            else Actor.host()
        )
        items = [v.as_json() for v in instance.releases.awaiting_signoff(viewer=viewer)]

    def render(console: Console) -> None:
        table = Table(title="Releases awaiting custodian sign-off")
        for column in ("release", "operator", "product", "state", "pending", "votes"):
            table.add_column(column)
        for r in items:
            table.add_row(
                str(r["release"]),
                r["operator"],
                r["product"],
                r["state"],
                ", ".join(r["signoffs_pending"]),
                f"{r['votes_cast']}/{r['required_reviews']}",
            )
        console.print(table)

    Output(json_out).result({"releases": items}, render)
