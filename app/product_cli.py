"""``keyong product …``, ``keyong objection …`` and ``keyong usage …`` (DESIGN.md, Command-line contract)."""

import typer

product_cli = typer.Typer(help="Released data products (数据产品和服务).", no_args_is_help=True)
objection_cli = typer.Typer(
    help="Objections (异议) against products, catalog entries and licences.", no_args_is_help=True
)
usage_cli = typer.Typer(help="Usage records (使用记录) of licensed datasets.", no_args_is_help=True)
