"""``keyong freeze|unfreeze``, ``keyong incident …`` and ``keyong security …`` (issue 22; SATRE 2.5.03, 2.6.04).

The local CLI is the host administrator's tool: it freezes and unfreezes the platform (stopping job
intake and starts, egress and delivery at once; 双鸭山 第六十一条), records and closes incidents, and
lists security events and alerts. Each change is ledgered with the host operator as its actor.
Acknowledging an alert is the regulator's own act, through its authenticated session (API or
console), never the host's.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from core import Actor, RegistryError

incident_cli = typer.Typer(help="The incident register (SATRE 2.6.04).", no_args_is_help=True)
security_cli = typer.Typer(help="Security events and alerts (SATRE 2.5.03).", no_args_is_help=True)

ReasonOption = Annotated[str, typer.Option("--reason", help="Why (goes to the ledger).")]


def _freeze_line(console: Console, state: dict[str, object]) -> None:
    if state["frozen"]:
        console.print(f"The platform is [bold red]frozen[/] since {state['since']}: {state['reason']}")
    else:
        console.print(
            f"The platform is [bold green]not frozen[/] (unfrozen by {state['changed_by']}: {state['reason']})"
        )


@refusing
def freeze(reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Incident: stop job intake, job starts, egress (releases) and product delivery at once."""
    with open_instance(home) as instance:
        state = instance.registry.freeze.freeze(reason=reason, by=Actor.host()).as_json()
    Output(json_out).result(state, lambda console: _freeze_line(console, state))


@refusing
def unfreeze(reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Restore what the freeze stopped; queued jobs start again."""
    with open_instance(home) as instance:
        state = instance.registry.freeze.unfreeze(reason=reason, by=Actor.host()).as_json()
    Output(json_out).result(state, lambda console: _freeze_line(console, state))


def _ledger_entries(text: str) -> list[int]:
    tokens = text.replace(",", " ").split()
    if any(not (t.isascii() and t.isdigit() and len(t) <= 19) for t in tokens):
        raise RegistryError(f"--ledger takes ledger sequence numbers separated by commas, not {text!r}")
    return [int(t) for t in tokens]


@incident_cli.command("record")
@refusing
def incident_record(
    title: Annotated[str, typer.Option("--title", help="What happened, in one line.")],
    severity: Annotated[str, typer.Option("--severity", help="low | medium | high | critical")],
    description: Annotated[str, typer.Option("--description", help="Details (kept in the register).")] = "",
    ledger: Annotated[str, typer.Option("--ledger", help="Ledger entries it concerns: SEQ,SEQ,…")] = "",
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record an incident, linked to the ledger entries it concerns."""
    with open_instance(home) as instance:
        item = instance.registry.incidents.record(
            title=title, severity=severity, description=description, ledger_entries=_ledger_entries(ledger),
            by=Actor.host(),
        )  # fmt: skip
    Output(json_out).result(item, lambda c: c.print(f"Incident {item['id']} recorded ({item['severity']})"))


@incident_cli.command("close")
@refusing
def incident_close(
    incident: Annotated[int, typer.Argument(help="The incident's id.", min=1)],
    note: Annotated[str, typer.Option("--note", help="How it was resolved.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Close an open incident with a note."""
    with open_instance(home) as instance:
        item = instance.registry.incidents.close(incident, note=note, by=Actor.host())
    Output(json_out).result(item, lambda c: c.print(f"Incident {incident} closed"))


@incident_cli.command("show")
@refusing
def incident_show(
    incident: Annotated[int, typer.Argument(help="The incident's id.", min=1)],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """One incident with its links and closure."""
    with open_instance(home, sweep=False) as instance:
        item = instance.registry.incidents.get(incident, viewer=Actor.host())
    Output(json_out).result(item, lambda c: c.print_json(data=item))


@incident_cli.command("list")
@refusing
def incident_list(
    state: Annotated[str | None, typer.Option("--state", help="open | closed")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """The incident register, newest first."""
    with open_instance(home, sweep=False) as instance:
        items = instance.registry.incidents.list(viewer=Actor.host(), state=state)

    def render(console: Console) -> None:
        table = Table(title="Incidents")
        for column in ("id", "severity", "state", "title", "ledger", "recorded"):
            table.add_column(column)
        for i in items:
            table.add_row(
                str(i["id"]), str(i["severity"]), str(i["state"]), str(i["title"]),
                ",".join(map(str, i["ledger_entries"])), f"{i['recorded_by']} {i['recorded_at']}",
            )  # fmt: skip
        console.print(table)

    Output(json_out).result({"incidents": items}, render)


@security_cli.command("events")
@refusing
def security_events(
    kind: Annotated[str | None, typer.Option("--kind", help="login_failed | token_rejected | forbidden | …")] = None,
    principal: Annotated[str | None, typer.Option("--principal", help="The principal or claimed name.")] = None,
    source: Annotated[str | None, typer.Option("--source", help="The client address.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 200,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Security events, one row per kind, source, principal and window, newest first."""
    try:
        with open_instance(home) as instance:
            items = instance.registry.security.events(
                viewer=Actor.host(), kind=kind, principal=principal, source=source, limit=limit
            )
    except ValueError as exc:  # an unknown --kind
        raise RegistryError(f"{exc}") from None

    def render(console: Console) -> None:
        table = Table(title="Security events")
        for column in ("id", "kind", "principal", "source", "route", "count", "last", "acknowledged"):
            table.add_column(column)
        for e in items:
            table.add_row(
                str(e["id"]), str(e["kind"]), str(e["principal"]), str(e["source"]), str(e["route"]),
                str(e["count"]), str(e["last_at"]), str(e["acknowledged_by"] or ""),
            )  # fmt: skip
        console.print(table)

    Output(json_out).result({"events": items}, render)


@security_cli.command("alerts")
@refusing
def security_alerts(
    state: Annotated[str | None, typer.Option("--state", help="open | acknowledged")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Alerts raised by the thresholds, newest first."""
    with open_instance(home) as instance:
        items = instance.registry.security.alerts(viewer=Actor.host(), state=state)

    def render(console: Console) -> None:
        table = Table(title="Security alerts")
        for column in ("id", "rule", "key", "count", "state", "raised"):
            table.add_column(column)
        for a in items:
            table.add_row(
                str(a["id"]), str(a["rule"]), f"{a['key_kind']}: {a['key']}", str(a["count"]), str(a["state"]),
                str(a["raised_at"]),
            )  # fmt: skip
        console.print(table)

    Output(json_out).result({"alerts": items}, render)
