"""``keyong keys …``: the instance's own keys (issue 22; SATRE 2.4.05, 2.8.01, 3.1.09).

``keys rotate`` rotates the JWT secret, the ledger's signing key and the vault's master key
(``app.rotation``, ``app.key_rotation``); ``keys encrypt-home`` seals files an older Keyong wrote in clear;
``keys destroy`` shreds a dataset's data key; ``keys list`` shows the data keys (ids, scopes, dates; never key
material). Not ``keyong key …``, which issues, rotates and revokes people's API keys.
"""

from typing import Annotated

import typer
from rich.console import Console

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from core import Actor

keys_cli = typer.Typer(
    help="The instance's own keys: rotate the JWT, ledger and vault keys; seal an older home; shred a dataset.",
    no_args_is_help=True,
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
    vault: Annotated[bool, typer.Option("--vault", help="Rotate the master key that wraps the data keys.")] = False,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Rotate the JWT secret, the ledger's Ed25519 key and/or the vault's master key; each rotation is
    ledgered (ids and public keys only). A vault rotation re-wraps the data keys (no file is re-encrypted)."""
    if not (jwt or ledger or vault):
        raise typer.BadParameter("name a key to rotate: --jwt, --ledger, --vault", param_hint="--jwt/--ledger/--vault")
    from app.key_rotation import rotate_vault_master
    from app.rotation import rotate_jwt, rotate_ledger

    out = Output(json_out)
    rotated: list[dict[str, object]] = []
    with open_instance(home) as instance:
        if jwt:
            rotated.append(rotate_jwt(instance))
        if ledger:
            rotated.append(rotate_ledger(instance))
        if vault:
            rotated.append({"key": "vault", **rotate_vault_master(instance, by=Actor.host())})

    def render(console: Console) -> None:
        for item in rotated:
            if item["key"] == "jwt":
                console.print(
                    f"JWT key {item['previous_kid']} retired; {item['kid']} signs new tokens. "
                    f"Tokens of the old key are accepted until {item['grace_until']}."
                )
            elif item["key"] == "vault":
                console.print(
                    f"vault master rotated: {item['old_master_id']} -> {item['new_master_id']}, "
                    f"{item['rewrapped']} data key(s) re-wrapped; the old master is destroyed. "
                    "Restart `keyong serve` and workers so they load the new master."
                )
            else:
                console.print(
                    f"ledger key {item['previous_key_id']} retired at entry {item['rotation_seq']}; "
                    f"{item['key_id']} signs from now on. Give regulators the new public key: {item['public_key']}"
                )

    out.result({"rotated": rotated}, render)


@keys_cli.command("encrypt-home")
@refusing
def encrypt_home_command(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Seal the copies, fingerprints, job files and products an earlier Keyong wrote in clear; ledgered."""
    from app.key_rotation import encrypt_home

    out = Output(json_out)
    with open_instance(home) as instance:
        result = encrypt_home(instance, by=Actor.host())

    def render(console: Console) -> None:
        shown = ", ".join(f"{count} {kind}" for kind, count in result.as_json().items())
        console.print(f"sealed files in clear: {shown}")

    out.result(result.as_json(), render)


@keys_cli.command("destroy")
@refusing
def destroy(
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset whose copies and fingerprints to shred.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the ledger).")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Destroy a dataset's data key: its copies and fingerprints become unreadable (crypto-shredding); ledgered.

    The dataset deletion step for copies and fingerprints (SATRE 3.1.09): irreversible, and jobs over
    the dataset fail with the reason until a new copy is made under a new key.
    """
    if not reason.strip():
        raise typer.BadParameter("a reason is required", param_hint="--reason")
    from registry import dataset_scope

    out = Output(json_out)
    with open_instance(home) as instance:
        instance.registry.catalog.get(dataset)  # an unknown dataset is refused with its name
        destroyed = instance.registry.data_keys.destroy(
            dataset_scope(dataset),
            reason=reason.strip(),
            covers="desensitized copies and fingerprints",
            by=Actor.host(),
        )
    if not destroyed:
        out.fail(f"dataset {dataset!r} has no live data key: nothing was destroyed")

    def render(console: Console) -> None:
        console.print(f"destroyed data key {', '.join(destroyed)} of dataset {dataset}: its copies are unreadable")

    out.result({"dataset": dataset, "destroyed": destroyed}, render)


@keys_cli.command("list")
@refusing
def list_keys(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """The data keys: id, scope, master id, created, destroyed (never key material)."""
    out = Output(json_out)
    with open_instance(home, sweep=False) as instance:
        keys = instance.registry.data_keys.list()

    def render(console: Console) -> None:
        for key in keys:
            state = (
                f"destroyed {key.destroyed_at:%Y-%m-%d %H:%M} ({key.destroyed_reason})" if key.destroyed_at else "live"
            )
            console.print(f"{key.id}  {key.scope:<28} master {key.master_id}  {state}", markup=False)

    out.result({"keys": [key.as_json() for key in keys]}, render)


__all__ = ["keys_cli"]
