"""``keyong operator …`` and ``keyong licence …`` (DESIGN.md, Command-line contract)."""

import typer

operator_cli = typer.Typer(help="Operating companies (运营机构).", no_args_is_help=True)
licence_cli = typer.Typer(
    help="Licences (授权运营): grant, publicity, activate, suspend, revoke.", no_args_is_help=True
)
