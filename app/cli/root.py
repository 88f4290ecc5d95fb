"""The ``keyong`` command line: the host administrator's tool (DESIGN.md, Command-line contract).

Every command takes ``--home`` and ``--json``. With ``--json`` stdout carries exactly one JSON
document and nothing else; messages and progress go to stderr. Exit codes: 0 ok, 1 refused or
failed (with the reason on stderr), 2 usage error.
"""

from typing import Annotated

import typer
from rich.console import Console

from app.cli import consent as _consent  # noqa: F401  (registers the custodian's say on licences)
from app.cli import egress as _egress  # noqa: F401  (registers its commands on dataset and release)
from app.cli.backup import backup_cli
from app.cli.budget import budget_cli
from app.cli.conventions import HomeOption, JsonOption, Output, refusing, set_root_home, settings_for
from app.cli.dataset import dataset_cli
from app.cli.db import db_cli
from app.cli.desensitize import desensitize
from app.cli.incident import freeze, incident_cli, security_cli, unfreeze
from app.cli.ingest import ingest
from app.cli.job import job_cli
from app.cli.job import worker as worker_command
from app.cli.keys import keys_cli
from app.cli.ledger import ledger_cli
from app.cli.licence import finding_cli, licence_cli, operator_cli
from app.cli.people import people_cli
from app.cli.policy import policy_cli
from app.cli.principal import key_cli, principal_cli
from app.cli.product import objection_cli, product_cli, usage_cli
from app.cli.quota import quota_cli  # also registers `usage report` on usage_cli
from app.cli.release import release_cli
from app.cli.reports import render_demo, render_kept, tokens_table
from app.cli.request import calendar_cli, request_cli
from app.cli.retention import purge, retention_cli
from app.cli.serve import serve
from app.cli.storage import storage_cli

cli = typer.Typer(
    name="keyong",
    help="Keyong (可用): an authorized-operations sandbox for public data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@cli.callback()
def root(ctx: typer.Context, home: HomeOption = None) -> None:
    """Keyong (可用): an authorized-operations sandbox for public data."""
    set_root_home(home)
    ctx.call_on_close(lambda: set_root_home(None))  # a --home before the command holds for this run only


@cli.command()
@refusing
def init(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Create an embedded instance: home, secrets, database, one demo principal per role."""
    from app.instance import Instance

    out = Output(json_out)
    instance, result = Instance.init(settings_for(home))
    instance.close()

    def render(console: Console) -> None:
        console.print(f"Created Keyong instance at [bold]{result.home}[/] (database {result.database})")
        console.print(tokens_table(result.tokens, result.totp))

    out.result(result.as_json(), render)


@cli.command()
@refusing
def demo(
    home: HomeOption = None,
    json_out: JsonOption = False,
    residents: Annotated[int, typer.Option(min=100, max=5_000_000, help="Residents to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data; same seed, same data.")] = 20261123,
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete this home's earlier demo and start over (a demo home only).")
    ] = False,
) -> None:
    """The main job: the whole flow of DESIGN.md on generated data, from ingest to a regulator's proof.

    It runs on a fresh home; rerun on a home whose demo finished, it changes nothing (``--reset`` starts over)."""
    from app.demo import KeptDemo, run_demo

    out = Output(json_out)
    report = run_demo(settings_for(home), residents=residents, seed=seed, console=out.stderr, reset=reset)
    if isinstance(report, KeptDemo):
        kept = report
        if json_out:
            out.note(
                f"The demo already ran in {kept.home} (finished {kept.record.get('finished')}); nothing was changed."
            )
        out.result(kept.as_json(), lambda console: render_kept(console, kept))
        return
    out.result(report.as_json(), lambda console: render_demo(console, report, seed))


cli.add_typer(ledger_cli, name="ledger")
dataset_cli.command("ingest")(ingest)
dataset_cli.command("desensitize")(desensitize)
dataset_cli.command("purge")(refusing(purge))
cli.add_typer(dataset_cli, name="dataset")
cli.add_typer(principal_cli, name="principal")
cli.add_typer(key_cli, name="key")
cli.add_typer(people_cli, name="people")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(retention_cli, name="retention")
cli.add_typer(operator_cli, name="operator")
cli.add_typer(licence_cli, name="licence")
cli.add_typer(finding_cli, name="finding")
cli.add_typer(product_cli, name="product")
cli.add_typer(objection_cli, name="objection")
cli.add_typer(usage_cli, name="usage")
cli.add_typer(job_cli, name="job")
cli.add_typer(release_cli, name="release")
cli.add_typer(budget_cli, name="budget")
cli.add_typer(quota_cli, name="quota")
cli.add_typer(backup_cli, name="backup")
cli.add_typer(db_cli, name="db")
cli.add_typer(keys_cli, name="keys")
cli.command("worker")(worker_command)
cli.command("serve")(serve)
cli.command("freeze")(freeze)
cli.command("unfreeze")(unfreeze)
cli.add_typer(incident_cli, name="incident")
cli.add_typer(security_cli, name="security")
cli.add_typer(policy_cli, name="policy")
cli.add_typer(request_cli, name="request")
cli.add_typer(calendar_cli, name="calendar")
cli.add_typer(storage_cli, name="storage")


def main() -> None:
    cli()
