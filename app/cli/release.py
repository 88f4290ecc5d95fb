"""``keyong release …`` (DESIGN.md, Command-line contract): requests, sealed reviews, delivery.

The local CLI is the host administrator's tool acting for the role a command implies: ``request``,
``resubmit`` and ``withdraw`` act with the operator's own key when one is given, else as the host for
the job's operator (the ledger names the host as actor, the operator as subject).
``approve``/``reject``/``return`` are a reviewer's own vote: they need that reviewer's own
credential (``--key-file`` or ``$KEYONG_API_KEY``, checked as the API checks it) and the ledger
records its principal. The host never casts a review vote, nor one in a reviewer's name
(independent review, issue 7; no impersonation, issue 22, SATRE 3.1.06 / 3.2.01).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from app.cli.credentials import KeyFileOption, TotpOption, operator_actor, own_actor
from core import Actor

release_cli = typer.Typer(help="Release requests and their review (发布前合规审查).", no_args_is_help=True)

ReviewerOption = Annotated[
    str | None,
    typer.Option(
        "--reviewer",
        help="Optional: your own name, checked against --key-file's principal (a vote for another is refused).",
        show_default=False,
    ),
]
#: How a reviewer votes when the host administrator tried to vote for them.
HOW_TO_VOTE = (
    "Vote with your own API key (--key-file FILE or $KEYONG_API_KEY) and its second factor's code "
    "(--totp CODE or $KEYONG_TOTP), in the web console "
    "signed in as yourself, or over the API (POST /releases/{id}/votes with your own token)."
)
FileOption = Annotated[
    list[str] | None, typer.Option("--file", help="Only these outputs (repeatable; default: all of the job's).")
]
JustifyOption = Annotated[
    Path | None,
    typer.Option(
        "--justify",
        exists=True,
        dir_okay=False,
        help='JSON object {"<finding index>": "justification"} for soft findings.',
    ),
]


def _justifications(out: Output, path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        out.fail(f"{path} is not UTF-8 JSON: {exc}")
    if not isinstance(loaded, dict):
        out.fail(f'{path} must hold a JSON object {{"<finding index>": "justification"}}')
    return {str(k): str(v) for k, v in loaded.items()}


def render_release(item: dict[str, Any]) -> Any:
    def render(console: Console) -> None:
        console.print(
            f"Release [bold]{item['release']}[/] of job {item['job']} as product {item['product']!r} "
            f"({item['operator']}, {item['fee_class']}): {item['state']}, round {item['round']}"
        )
        console.print(
            f"  guard {item['verdict']}; votes cast {item['votes_cast']}, still needed {item['votes_needed']}"
        )
        for index, finding in enumerate(item["findings"]):
            why = item["justifications"].get(str(index), "")
            console.print(f"  finding {index}: {finding.get('severity')} {finding.get('rule')} {finding.get('file')}")
            if why:
                console.print(f"    justification: {why}")
        for output in item["outputs"]:
            console.print(f"  output {output['name']} {output['bytes']} bytes sha256 {output['sha256']}")
        for vote in item["votes"]:
            console.print(f"  round {vote['round']}: {vote['decision']} by {vote['reviewer']} {vote['reason']}")
        if item.get("signoff_required"):
            pending = ", ".join(item.get("signoffs_pending") or []) or "none"
            console.print(f"  custodian sign-off needed for {', '.join(item['signoff_required'])}; pending: {pending}")
        for signed in item.get("signoffs") or []:
            console.print(
                f"  round {signed['round']}: {signed['dataset']} {signed['decision']} by {signed['custodian']} "
                f"{signed['reason']}"
            )
        if item.get("reason"):
            console.print(f"  reason: {item['reason']}")

    return render


@release_cli.command("request")
@refusing
def release_request(
    job: Annotated[int, typer.Argument(metavar="JOB", help="A done job whose guard verdict is pass or review.")],
    product: Annotated[str, typer.Option("--product", help="The product's name.")],
    fee_class: Annotated[str | None, typer.Option("--fee-class", help="公益 or 经营性; the licence's.")] = None,
    justify: JustifyOption = None,
    files: FileOption = None,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Ask the agency to release a job's outputs as a named product (for the job's own operator)."""
    out = Output(json_out)
    justifications = _justifications(out, justify)
    with open_instance(home) as instance:
        item = instance.releases.request(
            job,
            product=product,
            by=operator_actor(instance, key_file, None, totp),  # with a key, the job must be its own
            fee_class=fee_class,
            justifications=justifications,
            files=files,
        ).as_json()
    out.result(item, render_release(item))


def _vote(
    release: int,
    decision: str,
    reviewer: str | None,
    key_file: Path | None,
    reason: str,
    home: Path | None,
    json_out: bool,
    totp: str | None = None,
) -> None:
    """Cast the vote as the credential's own agency principal; ``--reviewer`` alone names nobody who voted."""
    with open_instance(home) as instance:
        by = own_actor(instance, key_file, "agency", claimed=reviewer, how=HOW_TO_VOTE, totp=totp)
        # A return comes with a comment the operator reads (issue 18): the reason is posted as the comment.
        comment = reason if decision == "changes_requested" else ""
        item = instance.releases.vote(release, decision, by=by, reason=reason, comment=comment).as_json()
    Output(json_out).result(item, render_release(item))


@release_cli.command("approve")
@refusing
def release_approve(
    release: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    reviewer: ReviewerOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Your own approval, with your own key; decided once the configured number of independent reviewers voted."""
    _vote(release, "approve", reviewer, key_file, reason, home, json_out, totp)


@release_cli.command("reject")
@refusing
def release_reject(
    release: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why; the operator reads it.")],
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    reviewer: ReviewerOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Your own rejection, with your own key."""
    _vote(release, "reject", reviewer, key_file, reason, home, json_out, totp)


@release_cli.command("return")
@refusing
def release_return(
    release: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="The changes the operator should make.")],
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    reviewer: ReviewerOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Your own vote for changes, with your own key (the operator reruns and resubmits)."""
    _vote(release, "changes_requested", reviewer, key_file, reason, home, json_out, totp)


@release_cli.command("resubmit")
@refusing
def release_resubmit(
    release: Annotated[int, typer.Argument(metavar="ID")],
    job: Annotated[int, typer.Option("--job", help="The rerun job.")],
    justify: JustifyOption = None,
    files: FileOption = None,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Send a returned release back to review with a rerun job's outputs."""
    out = Output(json_out)
    justifications = _justifications(out, justify)
    with open_instance(home) as instance:
        by = operator_actor(instance, key_file, None, totp)
        item = instance.releases.resubmit(
            release, job_id=job, by=by, justifications=justifications, files=files
        ).as_json()
    out.result(item, render_release(item))


@release_cli.command("withdraw")
@refusing
def release_withdraw(
    release: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Withdraw a release not yet decided (for its operator)."""
    with open_instance(home) as instance:
        by = operator_actor(instance, key_file, None, totp)
        item = instance.releases.withdraw(release, by=by, reason=reason).as_json()
    Output(json_out).result(item, render_release(item))


@release_cli.command("show")
@refusing
def release_show(
    release: Annotated[int, typer.Argument(metavar="ID")], home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """A release with its outputs, findings and justifications; votes only once the round is decided."""
    with open_instance(home, sweep=False) as instance:
        item = instance.releases.get(release, viewer=Actor.host()).as_json()
    Output(json_out).result(item, render_release(item))


@release_cli.command("list")
@refusing
def release_list(
    state: Annotated[str | None, typer.Option("--state", help="Only releases in this state.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Release requests, oldest first."""
    with open_instance(home, sweep=False) as instance:
        items = [v.as_json() for v in instance.releases.list(viewer=Actor.host(), state=state)]

    def render(console: Console) -> None:
        table = Table(title="Releases")
        for column in ("release", "job", "operator", "product", "state", "round", "verdict", "votes"):
            table.add_column(column)
        for r in items:
            table.add_row(
                str(r["release"]),
                str(r["job"]),
                r["operator"],
                r["product"],
                r["state"],
                str(r["round"]),
                r["verdict"],
                f"{r['votes_cast']}/{r['required_reviews']}",
            )
        console.print(table)

    Output(json_out).result({"releases": items}, render)
