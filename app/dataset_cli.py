"""``keyong dataset …``: ingest, show and classify catalog entries (DESIGN.md, Command-line contract)."""

import typer

dataset_cli = typer.Typer(help="Data resources: ingest, catalog, classification, versions.", no_args_is_help=True)
