"""``keyong keys rotate --vault`` / ``keys encrypt-home`` / ``keys list`` (issue 22; SATRE 2.8.01, 3.1.09).

The host administrator's tools for the keys of files at rest; the logic is in :mod:`app.key_rotation`
and :mod:`registry.datakeys`. Nothing here prints key material: ids, scopes and dates only.
"""

from typing import Annotated

import typer
from rich.console import Console

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from app.key_rotation import encrypt_home, rotate_vault_master
from core import Actor
from registry import dataset_scope

keys_cli = typer.Typer(
    help="Keys of files at rest: rotate the vault's master key, seal an older home.", no_args_is_help=True
)


@keys_cli.command()
@refusing
def rotate(
    vault: Annotated[bool, typer.Option("--vault", help="Rotate the master key that wraps the data keys.")] = False,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Re-wrap every data key under a new master key and destroy the old one (no file is re-encrypted); ledgered."""
    if not vault:
        raise typer.BadParameter("say which key to rotate: --vault", param_hint="--vault")
    out = Output(json_out)
    with open_instance(home) as instance:
        summary = rotate_vault_master(instance, by=Actor.host())

    def render(console: Console) -> None:
        console.print(
            f"vault master rotated: {summary['old_master_id']} -> {summary['new_master_id']}, "
            f"{summary['rewrapped']} data key(s) re-wrapped; the old master is destroyed. "
            "Restart `keyong serve` and workers so they load the new master."
        )

    out.result(summary, render)


@keys_cli.command("encrypt-home")
@refusing
def encrypt_home_command(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Seal the copies, fingerprints, job files and products an earlier Keyong wrote in clear; ledgered."""
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
    with open_instance(home) as instance:
        keys = instance.registry.data_keys.list()

    def render(console: Console) -> None:
        for key in keys:
            state = (
                f"destroyed {key.destroyed_at:%Y-%m-%d %H:%M} ({key.destroyed_reason})" if key.destroyed_at else "live"
            )
            console.print(f"{key.id}  {key.scope:<28} master {key.master_id}  {state}", markup=False)

    out.result({"keys": [key.as_json() for key in keys]}, render)
