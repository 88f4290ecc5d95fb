"""``keyong people …``: identity checks, terms of use and training per person (issue 22; SATRE 3.2.02, 1.5.02, 1.6.04).

The local CLI is the host administrator: it records for anyone (``operators.people`` says who else may). A person
without an identity check, the current terms accepted or a valid training submits no job, and an operator whose
people do not stand gets no active licence. No identity number is taken on the command line (it would stay in the
shell's history): the evidence is named by where it is filed; the API takes a number and keeps only its keyed digest.
"""

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from registry import EXPIRING_DAYS, EvidenceKind

people_cli = typer.Typer(
    help="People's identity checks, terms of use and training (checked before licences and jobs).",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(help="The principal's name (`keyong principal list`).")]


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


def _render_standing(console: Console, item: dict[str, Any]) -> None:
    mark = "[green]stands[/]" if item["ok"] else "[red]does not stand[/]"
    console.print(f"[bold]{escape(item['person'])}[/] ({item.get('role', '')}, {item.get('org') or '-'}): {mark}")
    for refusal in item["refusals"]:
        console.print(f"  - {escape(refusal['reason'])}")
    check, training = item["identity_check"], item["training"]
    if check:
        console.print(f"  identity: {check['evidence_kind']} checked {check['on']} by {escape(check['checked_by'])}")
    if item["terms"]:
        console.print(f"  terms: accepted {item['terms']['terms_version']} on {item['terms']['on']}")
    if training:
        console.print(f"  training: {escape(training['course'])}, {training['on']} until {training['expires_on']}")


def _record(json_out: bool, view: dict[str, Any], what: str) -> None:
    Output(json_out).result(view, lambda c: c.print(f"{what} recorded for [bold]{escape(view['person'])}[/]"))


@people_cli.command("identity-check")
@refusing
def identity_check(
    name: NameArgument,
    evidence: Annotated[EvidenceKind, typer.Option("--evidence", help="What the checker saw.")],
    ref: Annotated[str, typer.Option("--ref", help="Where the evidence is filed (never the ID number).")],
    checked_on: Annotated[str | None, typer.Option("--checked-on", help="YYYY-MM-DD (default: today).")] = None,
    checked_by: Annotated[str | None, typer.Option("--checked-by", help="Who checked (default: you).")] = None,
    expires_on: Annotated[str | None, typer.Option("--expires-on", help="YYYY-MM-DD, if it lapses.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record that a person's identity was checked (SATRE 3.2.02)."""
    with open_instance(home) as instance:
        view = instance.people.record_identity_check(
            name, evidence_kind=evidence, evidence_ref=ref, checked_on=_day(checked_on), checked_by=checked_by,
            expires_on=_day(expires_on),
        )  # fmt: skip
    _record(json_out, view, "Identity check")


@people_cli.command("training")
@refusing
def training(
    name: NameArgument,
    course: Annotated[str, typer.Option("--course", help="The course completed.")],
    completed_on: Annotated[str, typer.Option("--completed-on", help="YYYY-MM-DD.")],
    expires_on: Annotated[str, typer.Option("--expires-on", help="YYYY-MM-DD: when it must be repeated.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record a completed training and its expiry (SATRE 1.6.04)."""
    done, until = _day(completed_on), _day(expires_on)
    assert done is not None and until is not None
    with open_instance(home) as instance:
        view = instance.people.record_training(name, course=course, completed_on=done, expires_on=until)
    _record(json_out, view, "Training")


@people_cli.command("accept-terms")
@refusing
def accept_terms(
    name: NameArgument,
    version: Annotated[str, typer.Option("--version", help="The current terms' version (`keyong people terms`).")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record a person's acceptance of the current terms of use from their signed copy (SATRE 1.5.02)."""
    with open_instance(home) as instance:
        view = instance.people.accept_terms(name, version=version)
    _record(json_out, view, "Terms acceptance")


@people_cli.command("publish-terms")
@refusing
def publish_terms(
    version: Annotated[str, typer.Argument(help="A new version label, e.g. 2026-12.")],
    title: Annotated[str, typer.Option("--title", help="The terms' title.")],
    file: Annotated[Path, typer.Option("--file", exists=True, dir_okay=False, help="The terms' text (UTF-8).")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Publish a new version of the terms of use: from now on only its acceptance counts."""
    out = Output(json_out)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        out.fail(f"{file} is not UTF-8 text")
    with open_instance(home) as instance:
        view = instance.people.publish_terms(version, title=title, text=text)
    out.result(view, lambda c: c.print(f"Terms of use {escape(version)} published; earlier acceptances lapse"))


@people_cli.command("terms")
@refusing
def terms(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """The terms of use in force."""
    with open_instance(home, sweep=False) as instance:
        view = instance.people.terms()
    out = Output(json_out)
    if view is None:
        out.fail("no terms of use are published yet (`keyong people publish-terms`)")
    out.result(view, lambda c: c.print(f"[bold]{escape(view['title'])}[/] ({view['version']})\n{escape(view['text'])}"))


@people_cli.command("show")
@refusing
def show(name: NameArgument, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """A person's standing today and every record about them."""
    with open_instance(home, sweep=False) as instance:
        item = instance.people.standing(name)
    Output(json_out).result(item, lambda c: _render_standing(c, item))


@people_cli.command("list")
@refusing
def list_people(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Every principal's standing today."""
    with open_instance(home, sweep=False) as instance:
        items = instance.people.standings()

    def render(console: Console) -> None:
        table = Table(title="People's standing")
        for column in ("name", "role", "organisation", "stands", "why not"):
            table.add_column(column, overflow="fold")
        for item in items:
            why = "; ".join(r["reason"] for r in item["refusals"])
            table.add_row(item["person"], item["role"], item["org"] or "", "yes" if item["ok"] else "no", why)
        console.print(table)

    Output(json_out).result({"people": items}, render)


@people_cli.command("expiring")
@refusing
def expiring(
    within_days: Annotated[int, typer.Option("--within-days", min=0, max=366, help="The horizon.")] = EXPIRING_DAYS,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Identity checks and trainings in force that expire within the horizon: remind the people concerned."""
    with open_instance(home, sweep=False) as instance:
        items = instance.people.expiring(within_days)

    def render(console: Console) -> None:
        table = Table(title=f"Expiring within {within_days} days")
        for column in ("person", "kind", "what", "expires on", "days left"):
            table.add_column(column, overflow="fold")
        for item in items:
            what = item.get("course") or item.get("evidence_kind") or ""
            table.add_row(item["person"], item["kind"], what, item["expires_on"], str(item["days_left"]))
        console.print(table)

    Output(json_out).result({"within_days": within_days, "expiring": items}, render)
