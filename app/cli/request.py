"""``keyong request …`` and ``keyong calendar …``: requests with statutory deadlines (issue 24).

``calendar due DATE --working-days N`` is a check anyone can run: China's working days (official holidays
and make-up days from ``chinesecalendar``, the home's ``calendar.json`` notices when there is a home),
counted from the day after receipt; ``{"received", "working_days", "due"}`` plus ``provisional`` (and why)
for a year no source knows. ``calendar rules`` lists the instance profile's time limits and their articles.

``request …`` is the host administrator's tool (DESIGN.md: the local CLI acts for the role a command
implies): it records a request received for a named requester (``--requester``, ``--requester-role``) and
the providing department's steps; the ledger records the host as the actor. ``request list --overdue``
first raises the monitoring finding of each newly overdue request (once per request).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing, settings_for
from core import Actor
from registry import SUBJECT_KINDS

request_cli = typer.Typer(
    help="Data applications, demands, corrections, open-data applications and catalog updates, due on the "
    "working-day calendar.",
    no_args_is_help=True,
)
calendar_cli = typer.Typer(help="China's working days: the due date of a statutory time limit.", no_args_is_help=True)

IdArgument = Annotated[int, typer.Argument(metavar="ID", help="Request number.")]


def _table(items: list[dict[str, Any]], title: str) -> Any:
    def render(console: Console) -> None:
        table = Table(title=title)
        for column in ("id", "kind", "provider", "subject", "requester", "state", "due", "basis", "flags"):
            table.add_column(column, overflow="fold")
        for r in items:
            flags = [f for f in ("overdue", "due_soon", "late", "provisional") if r[f]]
            table.add_row(
                str(r["id"]),
                r["kind"],
                r["provider"],
                r["subject"],
                r["requester"],
                r["state"],
                r["due"],
                r["legal_basis"],
                " ".join(flags),
            )
        console.print(table)

    return render


def _show(item: dict[str, Any]) -> Any:
    def render(console: Console) -> None:
        _table([item], f"Request {item['id']}")(console)
        if item.get("provisional_reason"):
            console.print(f"provisional: {item['provisional_reason']}")
        if item.get("reason"):
            console.print(f"reason: {item['reason']}")
        if item.get("leads_to"):
            console.print(f"leads to: {item['leads_to']}")
        for step in item.get("history", []):
            console.print(f"{step['at']}  {step['actor']} ({step['role']}): {step['action']}  {step['reason']}")

    return render


@request_cli.command("submit")
@refusing
def request_submit(
    kind: Annotated[str, typer.Argument(metavar="KIND", help="data_application | data_demand | correction | …")],
    subject: Annotated[str, typer.Option("--subject", help="The dataset (catalog name) or catalog entry concerned.")],
    requester: Annotated[str, typer.Option("--requester", help="Who asks (a principal, a department, a person).")],
    requester_role: Annotated[
        str, typer.Option("--requester-role", help="operator | custodian | agency: the requester's role.")
    ] = "operator",
    subject_kind: Annotated[
        str, typer.Option("--subject-kind", help=f"{' | '.join(SUBJECT_KINDS)} (data not yet in the catalog).")
    ] = "dataset",
    provider: Annotated[
        str | None, typer.Option("--provider", help="The providing department (default: the dataset's 提供方).")
    ] = None,
    detail: Annotated[str, typer.Option("--detail", help="What is asked, in the requester's words.")] = "",
    variant: Annotated[str, typer.Option("--variant", help="A rule's variant (calendar rules lists them).")] = "",
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record a request received now: its rule, legal basis and due date are fixed on receipt."""
    with open_instance(home) as instance:
        item = instance.registry.requests.submit(
            kind,
            by=Actor.host(),
            subject=subject,
            subject_kind=subject_kind,
            provider=provider,
            detail=detail,
            variant=variant,
            requester=requester,
            requester_role=requester_role,
        ).as_json()
    Output(json_out).result(item, _show(item))


@request_cli.command("show")
@refusing
def request_show(request_id: IdArgument, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """One request with its clock and its history, step by step with reasons."""
    with open_instance(home, sweep=False) as instance:
        item = instance.registry.requests.get(request_id, viewer=Actor.host()).as_json()
    Output(json_out).result(item, _show(item))


@request_cli.command("list")
@refusing
def request_list(
    provider: Annotated[str | None, typer.Option("--provider", help="One department's queue.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="submitted | in_review | granted | …")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Open requests past their due day (raises their findings).")
    ] = False,
    due_soon: Annotated[bool, typer.Option("--due-soon", help="Open requests due today or next working day.")] = False,
    open_only: Annotated[bool, typer.Option("--open", help="Only open requests (submitted, in review).")] = False,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Requests, soonest due first; with --overdue, each newly overdue one raises its monitoring finding."""
    with open_instance(home, sweep=False) as instance:
        requests = instance.registry.requests
        raised = requests.sweep_overdue() if overdue else []
        items = [
            r.as_json()
            for r in requests.list(
                viewer=Actor.host(),
                provider=provider,
                state=state,
                kind=kind,
                overdue=overdue,
                due_soon=due_soon,
                open_only=open_only,
            )
        ]
    out = Output(json_out)
    if raised and not json_out:
        out.note(f"findings raised for overdue request(s) {', '.join(str(i) for i in raised)}")
    out.result({"requests": items, "findings_raised_for": raised}, _table(items, "Requests"))


@request_cli.command("review")
@refusing
def request_review(
    request_id: IdArgument,
    note: Annotated[str, typer.Option("--note", help="A note for the history.")] = "",
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """The providing department takes the request into review (受理)."""
    with open_instance(home) as instance:
        item = instance.registry.requests.review(request_id, by=Actor.host(), note=note).as_json()
    Output(json_out).result(item, _show(item))


def _decide(request_id: int, outcome: str, reason: str, leads_to: str | None, home: Any, json_out: bool) -> None:
    with open_instance(home) as instance:
        item = instance.registry.requests.decide(
            request_id, outcome, by=Actor.host(), reason=reason, leads_to=leads_to
        ).as_json()
    Output(json_out).result(item, _show(item))


@request_cli.command("grant")
@refusing
def request_grant(
    request_id: IdArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    leads_to: Annotated[
        str | None, typer.Option("--leads-to", help="licence:ID or sharing:DESCRIPTION: what the grant gives.")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Grant an application or accept a demand."""
    _decide(request_id, "granted", reason, leads_to, home, json_out)


@request_cli.command("refuse")
@refusing
def request_refuse(
    request_id: IdArgument,
    reason: Annotated[str, typer.Option("--reason", help="The specific reasons (应说明具体原因); required.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Refuse a request, stating its specific reasons (a refusal without reasons is refused)."""
    _decide(request_id, "refused", reason, None, home, json_out)


@request_cli.command("answer")
@refusing
def request_answer(
    request_id: IdArgument,
    reason: Annotated[str, typer.Option("--reason", help="The result reported back (校核处理结果); required.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Answer a correction or a catalog update: the result reported back."""
    _decide(request_id, "answered", reason, None, home, json_out)


@request_cli.command("withdraw")
@refusing
def request_withdraw(
    request_id: IdArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Withdraw an open request for its requester."""
    with open_instance(home) as instance:
        item = instance.registry.requests.withdraw(request_id, by=Actor.host(), reason=reason).as_json()
    Output(json_out).result(item, _show(item))


@calendar_cli.command("due")
@refusing
def calendar_due(
    received: Annotated[str, typer.Argument(metavar="DATE", help="YYYY-MM-DD (China), or an ISO time with zone.")],
    working_days: Annotated[int, typer.Option("--working-days", help="The time limit in working days.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """The due date of N working days counted from the day after DATE (China's calendar)."""
    from registry import WorkCalendar, parse_received

    day = parse_received(received)
    calendar_home: Path | None = settings_for(home).home
    due = WorkCalendar.for_home(calendar_home if calendar_home and calendar_home.is_dir() else None).due(
        day, working_days
    )
    data = due.as_json()

    def render(console: Console) -> None:
        console.print(f"received {data['received']}, {working_days} working day(s): due {data['due']}")
        if due.provisional:
            console.print(f"provisional: {due.provisional_reason}")

    Output(json_out).result(data, render)


@calendar_cli.command("rules")
@refusing
def calendar_rules(
    profile: Annotated[
        str | None, typer.Option("--profile", help="heilongjiang | shuangyashan | jiyuan (default: the instance's).")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """The time limits of a profile's rule set, each with its article."""
    from registry import rules_of

    chosen = profile or settings_for(home).request_profile
    items = [r.as_json() for r in rules_of(chosen)]

    def render(console: Console) -> None:
        table = Table(title=f"Time limits: {chosen}")
        for column in ("kind", "variant", "working days", "basis"):
            table.add_column(column, overflow="fold")
        for r in items:
            table.add_row(r["kind"], r["variant"], str(r["working_days"]), r["basis"])
        console.print(table)

    Output(json_out).result({"profile": chosen, "rules": items}, render)


__all__ = ["calendar_cli", "request_cli"]
