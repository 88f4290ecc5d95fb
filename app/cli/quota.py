"""``keyong quota show|set`` (SATRE 2.3.01, 2.3.03) and ``keyong usage report`` (SATRE 2.2.13).

``quota show`` is the host's (or an agency person's) view of an operator's quotas, use and remainder,
the same document an operator reads of its own at ``GET /quotas``. ``quota set`` is the agency's
allocation: cast only with an agency person's own key and second factor (``--key-file``/``--totp``),
never by the host in the agency's name (SATRE 3.1.06), so the ledger's ``quota.allocated`` names the
person who decided. ``usage report`` is read-only, counts only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from app.cli.credentials import KeyFileOption, TotpOption, own_actor
from app.cli.product import usage_cli
from core import Actor

quota_cli = typer.Typer(help="Compute quotas per operator and licence (the agency allocates).", no_args_is_help=True)

HOW_TO_ALLOCATE = (
    "Allocate with an agency person's own API key (--key-file FILE or $KEYONG_API_KEY) and its second "
    "factor's code (--totp CODE or $KEYONG_TOTP), or over the API (PUT /quotas/{operator}) with your own token."
)
#: The usage report's window when ``--since`` is not given.
DEFAULT_WINDOW = timedelta(days=30)


def _quota_table(title: str, lines: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("quota", "limit", "used", "remaining", "source", "counts"):
        table.add_column(column)
    for line in lines:
        table.add_row(
            line["quota"],
            f"{line['limit']:g}",
            f"{line['used']:g}",
            f"{line['remaining']:g}",
            line["source"],
            line["means"],
        )
    return table


def render_overview(data: dict[str, Any]) -> Any:
    def render(console: Console) -> None:
        console.print(_quota_table(f"Quotas of {data['operator']} (rolling {data['window_hours']} h)", data["quotas"]))
        if data["allocation"]:
            a = data["allocation"]
            console.print(f"  allocated by {a['allocated_by']} at {a['allocated_at']}: {a['reason']}")
        for licence in data["licences"]:
            console.print(_quota_table(f"Licence {licence['licence']} ({licence['state']})", licence["quotas"]))
        for b in data["budgets"]:
            console.print(
                f"  licence {b['licence']} {b['dataset']}: ε {b['epsilon_remaining']:g} of {b['epsilon_budget']:g} left"
            )

    return render


@quota_cli.command("show")
@refusing
def quota_show(
    operator: Annotated[str, typer.Argument(help="The operator.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """An operator's quotas: limit, use in the rolling 24 hours and what remains; per licence where allocated."""
    with open_instance(home, sweep=False) as instance:
        data = instance.jobs.book.overview(operator, viewer=Actor.host())
    Output(json_out).result(data, render_overview(data))


@quota_cli.command("set")
@refusing
def quota_set(
    operator: Annotated[str, typer.Argument(help="The operator.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (goes to the ledger).")],
    licence: Annotated[int | None, typer.Option("--licence", help="Only this licence of the operator.")] = None,
    concurrent: Annotated[int | None, typer.Option("--concurrent", help="Jobs queued or running at once.")] = None,
    per_day: Annotated[int | None, typer.Option("--per-day", help="Jobs admitted per rolling 24 hours.")] = None,
    cpu_seconds: Annotated[
        float | None, typer.Option("--cpu-seconds", help="CPU seconds of jobs ended per rolling 24 hours.")
    ] = None,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Allocate an operator's quotas (or a licence's, never above its operator's), as an agency person."""
    with open_instance(home) as instance:
        by = own_actor(instance, key_file, "agency", claimed=None, how=HOW_TO_ALLOCATE, totp=totp)
        item = instance.jobs.book.allocate(
            operator,
            by=by,
            reason=reason,
            licence=licence,
            concurrent=concurrent,
            per_day=per_day,
            cpu_seconds_per_day=cpu_seconds,
        ).as_json()
    whose = operator if licence is None else f"licence {licence} of {operator}"
    Output(json_out).result(
        item,
        lambda c: c.print(
            f"Quotas of {whose}: {item['concurrent']} at once, {item['per_day']} jobs and "
            f"{item['cpu_seconds_per_day']:g} CPU seconds per 24 hours"
        ),
    )


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """``--since``: a date or an ISO time (UTC unless it says otherwise), ``all``, or 30 days by default."""
    if value is None:
        return now - DEFAULT_WINDOW
    if value.strip().lower() == "all":
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give YYYY-MM-DD, an ISO time, or 'all'") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@usage_cli.command("report")
@refusing
def usage_report_command(
    since: Annotated[
        str | None, typer.Option("--since", help="Window start: YYYY-MM-DD or ISO time, or 'all'; default 30 days.")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """The instance-wide usage report: principals, organisations, licences, datasets, bytes stored, jobs, CPU."""
    from operators import usage_report

    with open_instance(home, sweep=False) as instance:
        start = parse_since(since, instance.registry.config.now())
        data = usage_report(instance.registry, instance.home, since=start, viewer=Actor.host())

    def render(console: Console) -> None:
        window = data["window"]
        console.print(f"Usage from {window['since'] or 'the start'} to {window['until']}")
        table = Table(title="Counts", title_justify="left")
        table.add_column("what")
        table.add_column("value", overflow="fold")
        for key, value in data.items():
            if key not in ("window", "stored"):
                table.add_row(key, str(value))
        console.print(table)
        stored = Table(title="Stored under the home", title_justify="left")
        for column in ("kind", "files", "bytes"):
            stored.add_column(column)
        for kind, v in data["stored"].items():
            stored.add_row(kind, str(v["files"]), f"{v['bytes']:,}")
        console.print(stored)

    Output(json_out).result(data, render)
