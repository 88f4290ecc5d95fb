"""``keyong retention …`` and ``keyong dataset purge``: retention per dataset version and the recorded
deletion path (SATRE 3.1.09, 2.2.06; ``registry.retention``). The host acts for the custodian; the
ledger records the host as the actor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from core import Actor

if TYPE_CHECKING:
    from registry import PurgeResult

retention_cli = typer.Typer(help="Retention per dataset version: set it, see what is due, sweep.", no_args_is_help=True)


def render_purge(console: Console, result: PurgeResult) -> None:
    versions = ", ".join(str(v) for v in result.versions)
    console.print(
        f"dataset {result.dataset}: deleted version(s) {versions} ({len(result.files)} file(s))", markup=False
    )
    for name in result.products:
        console.print(f"  product {name} deleted with it", markup=False)


def purge(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why: recorded with every deletion.")],
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="One version (and those derived from it); default all.")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Delete a dataset's data (raw, copies, fingerprints, products derived only from it), recorded in the ledger.

    Refused, naming them, while a live licence serves the version or a job reads it; the catalog keeps
    the version's metadata, marked deleted."""
    with open_instance(home) as instance:
        result = instance.registry.retention.purge(name, version=version, reason=reason, by=Actor.host())
    Output(json_out).result(result.as_json(), lambda console: render_purge(console, result))


@retention_cli.command("set")
@refusing
def set_retention(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    days: Annotated[int | None, typer.Option("--days", min=1, max=36_500, help="Days each version is kept.")] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the dataset's own period (the default applies).")
    ] = False,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Set how long each version of a dataset is kept after it was made (the custodian's decision)."""
    if (days is None) == (not clear):
        raise typer.BadParameter("give --days N or --clear")
    with open_instance(home) as instance:
        data = instance.registry.retention.set_retention(name, days, by=Actor.host())
    Output(json_out).result(
        data, lambda console: console.print(f"{name}: retention {data['retention_days'] or 'default'}", markup=False)
    )


@retention_cli.command("due")
@refusing
def due(
    every: Annotated[
        bool, typer.Option("--all", help="Every live version with its expiry, not only the due ones.")
    ] = False,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only this dataset.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """The versions whose retention ended (or whose catalog entry's revocation is final), and what holds them."""
    with open_instance(home, sweep=False) as instance:
        rows = instance.registry.retention.schedule(due_only=not every, dataset=dataset)
    data = {"versions": [row.as_json() for row in rows]}

    def render(console: Console) -> None:
        table = Table("dataset", "version", "kind", "expires", "due", "held by")
        for row in rows:
            expires = row.expires_at.date().isoformat() if row.expires_at else "-"
            table.add_row(row.dataset, str(row.version), row.kind, expires, row.why or "no", "; ".join(row.blocked))
        console.print(table)

    Output(json_out).result(data, render)


@retention_cli.command("sweep")
@refusing
def sweep(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Purge every due version nothing holds (recorded like ``dataset purge``); list the held ones."""
    with open_instance(home) as instance:
        data = instance.registry.retention.sweep(by=Actor.host())

    def render(console: Console) -> None:
        for item in data["purged"]:
            console.print(f"purged {item['dataset']} version(s) {item['versions']}: {item['reason']}", markup=False)
        for item in data["held"]:
            console.print(f"held {item['dataset']} v{item['version']}: {'; '.join(item['blocked'])}", markup=False)
        if not data["purged"] and not data["held"]:
            console.print("nothing is due")

    Output(json_out).result(data, render)


__all__ = ["purge", "retention_cli"]
