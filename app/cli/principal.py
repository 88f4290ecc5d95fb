"""``keyong principal …`` and ``keyong key …``: people, their roles and their API keys (issue 17).

The local CLI is the host administrator: it may create a principal of any role (a further agency
reviewer, a regulator) and manage any key; over the API and the console the agency manages only
operators, custodians and its own keys (``operators.identity``). A key's secret is printed once, on
stdout, and never stored in clear (only its SHA-256 digest is kept; 黑龙江省政务数据管理暂行办法
第三十八条). Every act is ledgered. Revoking or rotating a key ends the JWTs exchanged for it at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from app.cli.credentials import KeyFileOption, TotpOption, own_actor
from operators import IdentityError, Role

if TYPE_CHECKING:
    from operators import IdentityService, NewApiKey

principal_cli = typer.Typer(help="People and systems who act on the platform, one role each.", no_args_is_help=True)
key_cli = typer.Typer(help="API keys: issue, rotate, revoke (a secret is printed once).", no_args_is_help=True)

ReasonOption = Annotated[str, typer.Option("--reason", help="Why; recorded in the ledger.")]
ONCE = "shown once: store it now; Keyong keeps only its digest"


def key_json(new: NewApiKey) -> dict[str, Any]:
    """What a command that made a key prints: who holds it, its id, and the secret (this once)."""
    return {"principal": new.principal.name, "role": new.principal.role.value, "key_id": new.key_id,
            "api_key": new.api_key}  # fmt: skip


def print_key(console: Console, new: NewApiKey, what: str) -> None:
    console.print(f"{what} for [bold]{escape(new.principal.name)}[/] ({new.principal.role.value}), key id {new.key_id}")
    console.print(f"API key ({ONCE}):")
    console.print(new.api_key, markup=False, highlight=False, soft_wrap=True)
    console.print(
        "A login also takes the code of the person's second factor (TOTP): without one yet, the person enrols "
        "it with this key (a first console login, or POST /auth/totp/enrol then /auth/totp/confirm)."
    )


@principal_cli.command("add")
@refusing
def principal_add(
    name: Annotated[str, typer.Argument(help="Login name: 3-128 of a-z, 0-9, '.', '_', '-'.")],
    role: Annotated[Role, typer.Option("--role", help="One role: custodian, agency, operator or regulator.")],
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="operator: its registered operator (name or 统一社会信用代码; the login bears the operator's name). "
            "Others: the public body the person works for, never an operator (三权分置).",
        ),
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a principal and its first API key (printed once)."""
    with open_instance(home) as instance:
        new = instance.identity.create_principal(name, role, org=org)
        item = instance.identity.get_principal(name)
        missing_operator = role == Role.OPERATOR and name not in {
            o.name for o in instance.registry.licences.list_operators()
        }
    out = Output(json_out)
    if missing_operator:
        out.note(
            f"note: no operator named {name!r} is registered; licences are granted to the operator of the "
            f"principal's name (`keyong operator add {name} --uscc CODE`)"
        )
    out.result({**key_json(new), "org": item["org"], "active": True}, lambda c: print_key(c, new, "Principal added"))


def _principals_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="Principals")
    for column in ("name", "role", "organisation", "active", "live keys", "revoked keys", "held (SATRE 3.2.01)"):
        table.add_column(column, overflow="fold")
    for item in items:
        keys: list[dict[str, Any]] = item["keys"]
        table.add_row(
            item["name"],
            item["role"],
            item["org"] or "",
            "yes" if item["active"] else "suspended",
            ", ".join(k["key_id"] for k in keys if k["live"]),
            ", ".join(k["key_id"] for k in keys if not k["live"]),
            ", ".join(f"{h['kind']} by {h['by']}" for h in item.get("recovery_hold") or []),
        )
    return table


@principal_cli.command("list")
@refusing
def principal_list(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Every principal with its role, organisation and key ids (never a secret)."""
    with open_instance(home, sweep=False) as instance:
        items = instance.identity.list_principals()
    Output(json_out).result({"principals": items}, lambda c: c.print(_principals_table(items)))


@principal_cli.command("suspend")
@refusing
def principal_suspend(name: str, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Suspend a principal: its keys and tokens stop working at once."""
    with open_instance(home) as instance:
        instance.identity.set_active(name, False, reason=reason)
        item = instance.identity.get_principal(name)
    Output(json_out).result(item, lambda c: c.print(f"Principal [bold]{escape(name)}[/] suspended"))


@principal_cli.command("restore")
@refusing
def principal_restore(name: str, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Reactivate a suspended principal; its unrevoked keys work again."""
    with open_instance(home) as instance:
        instance.identity.set_active(name, True, reason=reason)
        item = instance.identity.get_principal(name)
    Output(json_out).result(item, lambda c: c.print(f"Principal [bold]{escape(name)}[/] reactivated"))


@principal_cli.command("totp-reset")
@refusing
def principal_totp_reset(
    name: str, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """Reset a principal's second factor (TOTP): ledgered with the reason; its next login must enrol again."""
    with open_instance(home) as instance:
        instance.identity.reset_totp(name, reason=reason)
        item = instance.identity.get_principal(name)
    Output(json_out).result(
        item, lambda c: c.print(f"Second factor of [bold]{escape(name)}[/] reset: the next login enrols a new one")
    )


@principal_cli.command("confirm-recovery")
@refusing
def principal_confirm_recovery(
    name: str,
    reason: ReasonOption,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Confirm a person's recovered credential or a new reviewer (SATRE 3.2.01): an agency person's own act,
    with their own key and code, never the host's nor the recoverer's; ledgered with the reason."""
    with open_instance(home) as instance:
        how = "Give your own agency key (--key-file F, with --totp CODE): the host cannot confirm anyone."
        actor = own_actor(instance, key_file, Role.AGENCY.value, claimed=None, how=how, totp=totp)
        from operators import Principal

        kinds = instance.identity.confirm_recovery(name, by=Principal(actor.name, Role.AGENCY), reason=reason)
        item = instance.identity.get_principal(name)
    Output(json_out).result(
        {**item, "confirmed": kinds, "confirmed_by": actor.name},
        lambda c: c.print(f"Recovery of [bold]{escape(name)}[/] confirmed by {escape(actor.name)}: {', '.join(kinds)}"),
    )


@key_cli.command("issue")
@refusing
def key_issue(
    principal: Annotated[str, typer.Argument(help="The principal's name.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """A further API key for a principal (printed once); its other keys keep working."""
    with open_instance(home) as instance:
        new = instance.identity.issue_api_key(principal)
    Output(json_out).result(key_json(new), lambda c: print_key(c, new, "Key issued"))


def _key_of(identity: IdentityService, target: str) -> str:
    """The key id ``target`` names: a key id, or a principal holding exactly one live key."""
    if identity.key_owner(target) is not None:
        return target
    live = [str(k["key_id"]) for k in identity.get_principal(target)["keys"] if k["live"]]  # type: ignore[attr-defined]
    if len(live) != 1:
        raise IdentityError(
            f"principal {target!r} holds {len(live)} live keys ({', '.join(live) or 'none'}): name the key id to rotate"
        )
    return live[0]


@key_cli.command("rotate")
@refusing
def key_rotate(
    target: Annotated[str, typer.Argument(help="A key id (see `principal list`), or a principal with one live key.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Replace a key by a new one (printed once); the old key and its tokens stop working at once."""
    with open_instance(home) as instance:
        old = _key_of(instance.identity, target)
        new = instance.identity.rotate_api_key(old)
    Output(json_out).result({**key_json(new), "replaced": old}, lambda c: print_key(c, new, f"Key {old} rotated"))


@key_cli.command("revoke")
@refusing
def key_revoke(
    target: Annotated[str, typer.Argument(help="A key id, or a principal's name to revoke all its keys.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Revoke a key (or every key of a principal): it and its tokens stop working at once."""
    with open_instance(home) as instance:
        identity = instance.identity
        if identity.key_owner(target) is not None:
            owner = str(identity.revoke_api_key(target)["principal"])
            revoked = [target]
        else:
            owner = target
            before = {k["key_id"] for k in identity.get_principal(target)["keys"] if k["live"]}  # type: ignore[attr-defined]
            if not before:
                raise IdentityError(f"{target!r} is neither a key id nor a principal with live keys")
            identity.revoke_api_keys(target)
            revoked = sorted(str(k) for k in before)
    data = {"principal": owner, "revoked": revoked}
    Output(json_out).result(
        data, lambda c: c.print(f"Revoked {len(revoked)} key(s) of [bold]{escape(owner)}[/]: {', '.join(revoked)}")
    )
