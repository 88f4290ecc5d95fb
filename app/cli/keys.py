"""``keyong keys rotate``: rotate the instance's own keys (SATRE 2.4.05; ``app.rotation``).

Not ``keyong key …``, which issues, rotates and revokes people's API keys.
"""

from typing import Annotated

import typer
from rich.console import Console

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing

keys_cli = typer.Typer(
    help="The instance's own keys: rotate the JWT key and the ledger's signing key.", no_args_is_help=True
)


@keys_cli.command()
@refusing
def rotate(
    jwt: Annotated[
        bool, typer.Option("--jwt", help="A new JWT signing key; tokens of the old one live out their TTL.")
    ] = False,
    ledger: Annotated[
        bool,
        typer.Option(
            "--ledger", help="A new ledger signing key; old checkpoints stay verifiable by the old public key."
        ),
    ] = False,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Rotate the JWT secret and/or the ledger's Ed25519 key; each rotation is ledgered (ids and public keys only)."""
    if not (jwt or ledger):
        raise typer.BadParameter("name a key to rotate: --jwt, --ledger, or both")
    from app.rotation import rotate_jwt, rotate_ledger

    out = Output(json_out)
    rotated = []
    with open_instance(home) as instance:
        if jwt:
            rotated.append(rotate_jwt(instance))
        if ledger:
            rotated.append(rotate_ledger(instance))

    def render(console: Console) -> None:
        for item in rotated:
            if item["key"] == "jwt":
                console.print(
                    f"JWT key {item['previous_kid']} retired; {item['kid']} signs new tokens. "
                    f"Tokens of the old key are accepted until {item['grace_until']}."
                )
            else:
                console.print(
                    f"ledger key {item['previous_key_id']} retired at entry {item['rotation_seq']}; "
                    f"{item['key_id']} signs from now on. Give regulators the new public key: {item['public_key']}"
                )

    out.result({"rotated": rotated}, render)


__all__ = ["keys_cli"]
