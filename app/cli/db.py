"""``keyong db status`` / ``keyong db upgrade``: where a home's schema stands, and moving it forward (SATRE 2.2.03).

Opening a home migrates its schema forward, so any command upgrades; ``db upgrade`` is the explicit step of
the documented upgrade (``docs/deployment.md``: freeze, backup, install, **migrate**, verify, unfreeze) and
says what it applied. ``db status`` reads without changing anything, so it is safe on a home that a newer
Keyong made: it reports ``known: false`` where every other command refuses to open it.
"""

from __future__ import annotations

import typer
from rich.console import Console

from app.cli.conventions import HomeOption, JsonOption, Output, refusing, settings_for

db_cli = typer.Typer(help="The home's database schema: status and explicit upgrade.", no_args_is_help=True)


@db_cli.command()
@refusing
def status(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Current revision, this code's head and the pending migrations; changes nothing."""
    from app.instance import inspect_schema

    out = Output(json_out)
    settings = settings_for(home)
    database, state = inspect_schema(settings)
    data = {"home": str(settings.home), "database": database, **state.as_json()}

    def render(console: Console) -> None:
        console.print(f"database {database}: revision {state.current or '(empty)'}, head {state.head}", markup=False)
        if not state.known:
            console.print("this revision is unknown to this Keyong: a newer version made it; it will not be opened")
        elif state.pending:
            console.print(f"pending: {', '.join(state.pending)} (keyong db upgrade)", markup=False)
        else:
            console.print("up to date")

    out.result(data, render)


@db_cli.command()
@refusing
def upgrade(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Migrate the schema to this code's head (ledgered as ``schema.migrated`` when anything was applied)."""
    from app.instance import Instance, inspect_schema

    out = Output(json_out)
    settings = settings_for(home)
    _, before = inspect_schema(settings)
    instance = Instance.open(settings)  # refuses a newer schema; migrates and ledgers otherwise
    instance.close()
    data = {
        "home": str(settings.home),
        "from": before.current,
        "to": before.head,
        "applied": list(before.pending),
    }

    def render(console: Console) -> None:
        if before.pending:
            console.print(f"migrated {before.current} -> {before.head}: {', '.join(before.pending)}", markup=False)
        else:
            console.print(f"already at {before.head}; nothing to do", markup=False)

    out.result(data, render)
