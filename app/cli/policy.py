"""``keyong policy propose|approve|refuse|list|show``: desensitization policies changed by four eyes (SATRE 1.2.01).

A policy other than the shipped one (``--policy FILE`` or ``HOME/policies/LEVEL.json``) makes copies only
once its digest is approved for its level (``registry.policy_approvals``). Proposing is a custodian's or an
agency person's own act; approving or refusing an agency person's, never the proposer's. Each needs the
person's own key (``--key-file`` or ``$KEYONG_API_KEY``) and second factor (``--totp``): the host
administrator is no person and does neither. Anyone at the host may read the proposals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from app.cli.credentials import KeyFileOption, TotpOption, own_actor

policy_cli = typer.Typer(
    help="Desensitization policies: proposed, then approved by another agency person (SATRE 1.2.01).",
    no_args_is_help=True,
)
HOW_TO_ACT = (
    "Act with your own API key and second factor (--key-file FILE or $KEYONG_API_KEY, with --totp CODE), or over "
    "the API with your own token: a custodian or agency person proposes, another agency person decides."
)
ReasonOption = Annotated[str, typer.Option("--reason", help="Why; recorded.")]


def _render(items: list[dict[str, Any]]) -> Any:
    def render(console: Console) -> None:
        table = Table(title="Desensitization policy proposals")
        for column in ("id", "level", "sha256", "state", "proposed by", "decided by", "reason"):
            table.add_column(column, overflow="fold")
        for p in items:
            table.add_row(
                str(p["id"]), p["level"], p["sha256"], p["state"], p["proposed_by"], p["decided_by"] or "", p["reason"]
            )
        console.print(table)

    return render


@policy_cli.command("propose")
@refusing
def policy_propose(
    level: Annotated[str, typer.Argument(metavar="LEVEL", help="L1..L4: the level the policy governs.")],
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The policy file (JSON or YAML).")],
    reason: ReasonOption,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Propose a policy for LEVEL (a custodian or agency person, own key); another agency person approves it."""
    from registry import read_policy_file

    with open_instance(home) as instance:
        policy = read_policy_file(level, file)
        by = own_actor(instance, key_file, ("custodian", "agency"), claimed=None, how=HOW_TO_ACT, totp=totp)
        item = instance.registry.policies.propose(level, policy, by=by, reason=reason).as_json()
    Output(json_out).result(item, _render([item]))


def _decide(proposal: int, approve: bool, reason: str, key_file: Any, totp: Any, home: Any, json_out: bool) -> None:
    with open_instance(home) as instance:
        by = own_actor(instance, key_file, "agency", claimed=None, how=HOW_TO_ACT, totp=totp)
        item = instance.registry.policies.decide(proposal, approve, by=by, reason=reason).as_json()
    Output(json_out).result(item, _render([item]))


@policy_cli.command("approve")
@refusing
def policy_approve(
    proposal: Annotated[int, typer.Argument(metavar="ID")],
    reason: ReasonOption = "审核通过 · approved",
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Approve proposal ID (an agency person other than its proposer, own key): copies may use it then."""
    _decide(proposal, True, reason, key_file, totp, home, json_out)


@policy_cli.command("refuse")
@refusing
def policy_refuse(
    proposal: Annotated[int, typer.Argument(metavar="ID")],
    reason: ReasonOption,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Refuse proposal ID (an agency person other than its proposer, own key)."""
    _decide(proposal, False, reason, key_file, totp, home, json_out)


@policy_cli.command("list")
@refusing
def policy_list(
    level: Annotated[str | None, typer.Option("--level", help="Only this level's.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="proposed | approved | refused.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Every policy proposal, oldest first, with its digest and state."""
    with open_instance(home, sweep=False) as instance:
        items = [p.as_json() for p in instance.registry.policies.list(level=level, state=state)]
    Output(json_out).result({"policies": items}, _render(items))


@policy_cli.command("show")
@refusing
def policy_show(
    proposal: Annotated[int, typer.Argument(metavar="ID")], home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """One proposal with the full policy text it proposes."""
    with open_instance(home, sweep=False) as instance:
        item = instance.registry.policies.get(proposal).as_json()

    def render(console: Console) -> None:
        _render([item])(console)
        console.print_json(data=item["policy"])

    Output(json_out).result(item, render)
