"""The ``keyong`` command line: the host administrator's tool (DESIGN.md, Command-line contract).

Every command takes ``--home`` and ``--json``. With ``--json`` stdout carries exactly one JSON
document and nothing else; messages and progress go to stderr. Exit codes: 0 ok, 1 refused or
failed (with the reason on stderr), 2 usage error.
"""

from typing import Annotated

import typer
from rich.console import Console

from app.cli.conventions import HomeOption, JsonOption, Output, refusing, set_root_home, settings_for
from app.cli.lazy import LazyGroup, command, group
from app.cli.reports import render_demo, render_kept, tokens_table


def _dataset_commands(dataset_cli: typer.Typer) -> None:
    """The root adds ingest, desensitize and purge to ``dataset`` (their modules are the commands' own)."""
    if any(info.name == "ingest" for info in dataset_cli.registered_commands):
        return
    from app.cli.desensitize import desensitize
    from app.cli.ingest import ingest
    from app.cli.retention import purge

    dataset_cli.command("ingest")(ingest)
    dataset_cli.command("desensitize")(desensitize)
    dataset_cli.command("purge")(refusing(purge))


#: Every name of the root beside ``init`` and ``demo``, in the order ``keyong --help`` lists them, with the
#: module that defines it: imported and built only when the command runs or its help is shown (issue 21).
ENTRIES = (
    command(
        "worker",
        "app.cli.job",
        "worker",
        help="Claim and run queued jobs in the sandbox until stopped (SIGTERM or Ctrl-C finish the current job first).",
    ),
    command(
        "serve",
        "app.cli.serve",
        "serve",
        help="Serve the API (OpenAPI at /docs) and the web console (/console) with uvicorn, and run the workers.",
    ),
    command(
        "freeze",
        "app.cli.incident",
        "freeze",
        help="Incident: stop job intake, job starts, egress (releases) and product delivery at once.",
    ),
    command(
        "unfreeze", "app.cli.incident", "unfreeze", help="Restore what the freeze stopped; queued jobs start again."
    ),
    group("ledger", "app.cli.ledger", "ledger_cli", help="The hash-chained ledger: verify, prove, export, show."),
    group(
        "dataset",
        "app.cli.dataset",
        "dataset_cli",
        also=("app.cli.egress",),
        then=_dataset_commands,
        help="Data resources: ingest, catalog, classification, versions.",
    ),
    group(
        "principal",
        "app.cli.principal",
        "principal_cli",
        help="People and systems who act on the platform, one role each.",
    ),
    group("key", "app.cli.principal", "key_cli", help="API keys: issue, rotate, revoke (a secret is printed once)."),
    group(
        "people",
        "app.cli.people",
        "people_cli",
        help="People's identity checks, terms of use and training (checked before licences and jobs).",
    ),
    group(
        "keys",
        "app.cli.keys",
        "keys_cli",
        help="The instance's own keys: rotate the JWT, ledger and vault keys; seal an older home; shred a dataset.",
    ),
    group(
        "retention",
        "app.cli.retention",
        "retention_cli",
        help="Retention per dataset version: set it, see what is due, sweep.",
    ),
    group("operator", "app.cli.licence", "operator_cli", help="Operating companies (运营机构)."),
    group(
        "licence",
        "app.cli.licence",
        "licence_cli",
        also=("app.cli.consent",),
        help="Licences (授权运营): grant, publicity, activate, suspend, revoke.",
    ),  # the custodian's say
    group(
        "finding",
        "app.cli.licence",
        "finding_cli",
        help="Usage-monitoring findings (双鸭山 第三十一条) for the agency.",
    ),
    group("product", "app.cli.product", "product_cli", help="Released data products (数据产品和服务)."),
    group(
        "objection",
        "app.cli.product",
        "objection_cli",
        help="Objections (异议) against products, catalog entries and licences.",
    ),
    group(
        "usage",
        "app.cli.product",
        "usage_cli",
        also=("app.cli.quota",),
        help="Usage records (使用记录) of licensed datasets.",
    ),  # quota adds `usage report`
    group("job", "app.cli.job", "job_cli", help="Jobs of operators: submit, run, show, cancel."),
    group(
        "release",
        "app.cli.release",
        "release_cli",
        also=("app.cli.egress",),
        help="Release requests and their review (发布前合规审查).",
    ),
    group("budget", "app.cli.budget", "budget_cli", help="Privacy budgets (ε, δ) per licence and dataset."),
    group(
        "quota", "app.cli.quota", "quota_cli", help="Compute quotas per operator and licence (the agency allocates)."
    ),
    group("backup", "app.cli.backup", "backup_cli", help="Back up a home into one archive; restore it as a new home."),
    group("db", "app.cli.db", "db_cli", help="The home's database schema: status and explicit upgrade."),
    group("incident", "app.cli.incident", "incident_cli", help="The incident register (SATRE 2.6.04)."),
    group("security", "app.cli.incident", "security_cli", help="Security events and alerts (SATRE 2.5.03)."),
    group(
        "policy",
        "app.cli.policy",
        "policy_cli",
        help="Desensitization policies: proposed, then approved by another agency person (SATRE 1.2.01).",
    ),
    group(
        "request",
        "app.cli.request",
        "request_cli",
        help="Data applications, demands, corrections, open-data applications and catalog updates, "
        "due on the working-day calendar.",
    ),
    group(
        "calendar",
        "app.cli.request",
        "calendar_cli",
        help="China's working days: the due date of a statutory time limit.",
    ),
    group(
        "storage",
        "app.cli.storage",
        "storage_cli",
        help="Object storage: role policies, a reachability check, the sweeper.",
    ),
)


class KeyongGroup(LazyGroup):
    entries = ENTRIES


cli = typer.Typer(
    name="keyong",
    help="Keyong (可用): an authorized-operations sandbox for public data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=KeyongGroup,
)
KeyongGroup.source = cli  # the built groups take the root's settings, as add_typer gave them


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


def main() -> None:
    cli()
