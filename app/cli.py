"""The ``keyong`` command line: the host administrator's tool (DESIGN.md, Command-line contract).

Every command takes ``--home`` and ``--json``. With ``--json`` stdout carries exactly one JSON
document and nothing else; messages and progress go to stderr. Exit codes: 0 ok, 1 refused or
failed (with the reason on stderr), 2 usage error.
"""

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.budget_cli import budget_cli
from app.cli_support import HomeOption, JsonOption, Output, refusing, settings_for
from app.dataset_cli import dataset_cli
from app.desensitize_cli import desensitize
from app.ingest_cli import ingest
from app.instance import Instance
from app.job_cli import job_cli
from app.job_cli import worker as worker_command
from app.ledger_cli import ledger_cli
from app.licence_cli import finding_cli, licence_cli, operator_cli
from app.product_cli import objection_cli, product_cli, usage_cli
from app.release_cli import release_cli

cli = typer.Typer(
    name="keyong",
    help="Keyong (可用): an authorized-operations sandbox for public data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _tokens_table(tokens: dict[str, str]) -> Table:
    table = Table(title="API keys of the demo principals (shown once; exchange at POST /auth/token)")
    table.add_column("role")
    table.add_column("API key", overflow="fold")
    for role, key in tokens.items():
        table.add_row(role, key)
    return table


@cli.command()
@refusing
def init(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Create an embedded instance: home, secrets, database, one demo principal per role."""
    out = Output(json_out)
    instance, result = Instance.init(settings_for(home))
    instance.close()

    def render(console: Console) -> None:
        console.print(f"Created Keyong instance at [bold]{result.home}[/] (database {result.database})")
        console.print(_tokens_table(result.tokens))

    out.result(result.as_json(), render)


@cli.command()
@refusing
def demo(
    home: HomeOption = None,
    json_out: JsonOption = False,
    residents: Annotated[int, typer.Option(min=100, max=5_000_000, help="Residents to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data; same seed, same data.")] = 20261123,
) -> None:
    """The main job: the whole flow of DESIGN.md on generated data (so far: init and data)."""
    from app.demo import run_demo

    out = Output(json_out)
    report = run_demo(settings_for(home), residents=residents, seed=seed, console=out.stderr)

    def render(console: Console) -> None:
        if report.tokens:
            console.print(f"Initialised a new instance at [bold]{report.home}[/]")
            console.print(_tokens_table(report.tokens))
        table = Table(title=f"Synthetic public data (seed {seed}) in {report.data_dir}")
        for column in ("file", "rows", "columns", "encoding", "bytes"):
            table.add_column(column, justify="left" if column in ("file", "encoding") else "right", no_wrap=True)
        for t in report.tables:
            table.add_row(t.path.name, f"{t.rows:,}", str(len(t.columns)), t.encoding, f"{t.bytes:,}")
        console.print(table)
        if report.ingested:
            catalog = Table(title="Ingested into the registry (raw copies encrypted in the vault)")
            for column in ("dataset", "version", "rows", "level", "encoding", "personal columns"):
                catalog.add_column(column)
            for item in report.ingested:
                personal = item["personal_columns"]
                catalog.add_row(
                    str(item["dataset"]),
                    str(item["version"]),
                    f"{item['rows']:,}",
                    str(item["level"]),
                    str(item["encoding"]),
                    ", ".join(personal) if isinstance(personal, list) else "",
                )
            console.print(catalog)
        if report.desensitized:
            copies = Table(title="Desensitized copies (what a sandbox mounts); raw stays in the vault")
            for column in ("dataset", "version", "rows", "k", "suppressed", "actions"):
                copies.add_column(column)
            for item in report.desensitized:
                actions = item["actions"] if isinstance(item["actions"], dict) else {}
                changed = ", ".join(f"{col}: {action}" for col, action in actions.items() if action != "keep")
                copies.add_row(
                    str(item["dataset"]),
                    str(item["version"]),
                    f"{item['rows']:,}",
                    str(item["k_anonymity"]),
                    str(item["suppressed_rows"]),
                    changed,
                )
            console.print(copies)
        if report.operator:
            console.print(f"Operator registered: [bold]{report.operator}[/]")
        if report.licence:
            scenarios = report.licence.get("scenarios")
            console.print(
                f"Licence {report.licence.get('id')} ({report.licence.get('state')}): "
                f"{', '.join(report.licence.get('datasets') or [])} for {', '.join(scenarios or [])}"
            )
        if report.jobs:
            jobs = Table(title="Jobs of the demo operator (run in the sandbox over the desensitized copies)")
            for column in ("job", "kind", "datasets", "state", "verdict", "outputs / reason"):
                jobs.add_column(column)
            for job in report.jobs:
                detail = ", ".join(job.get("outputs") or []) or str(job.get("reason") or "")
                jobs.add_row(
                    str(job["job"]), str(job["kind"]), ", ".join(job["datasets"]), str(job["state"]),
                    str(job["verdict"]), detail,
                )  # fmt: skip
            console.print(jobs)
        state = "[green]verified[/]" if report.ledger.get("ok") else "[bold red]FAILED verification[/]"
        console.print(f"Ledger: {report.ledger.get('entries')} entries, {state}, head {report.ledger.get('head')}")
        console.print(f"Done in {report.seconds:.1f} s. Next: [bold]keyong serve[/] and open /docs.")

    out.result(report.as_json(), render)


@cli.command()
@refusing
def serve(
    home: HomeOption = None,
    json_out: JsonOption = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the API (OpenAPI at /docs) with uvicorn."""
    import uvicorn

    from app.api import create_app

    out = Output(json_out)
    settings = settings_for(home)
    app = create_app(settings)
    if json_out:
        out.result(
            {"home": str(settings.home), "url": f"http://{host}:{port}", "docs": f"http://{host}:{port}/docs"}, print
        )
    else:
        out.note(f"Keyong at http://{host}:{port} (docs: /docs, home {settings.home})")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=not json_out)


cli.add_typer(ledger_cli, name="ledger")
dataset_cli.command("ingest")(ingest)
dataset_cli.command("desensitize")(desensitize)
cli.add_typer(dataset_cli, name="dataset")
cli.add_typer(operator_cli, name="operator")
cli.add_typer(licence_cli, name="licence")
cli.add_typer(finding_cli, name="finding")
cli.add_typer(product_cli, name="product")
cli.add_typer(objection_cli, name="objection")
cli.add_typer(usage_cli, name="usage")
cli.add_typer(job_cli, name="job")
cli.add_typer(release_cli, name="release")
cli.add_typer(budget_cli, name="budget")
cli.command("worker")(worker_command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
