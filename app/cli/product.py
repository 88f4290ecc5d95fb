"""``keyong product …``, ``keyong objection …`` and ``keyong usage …`` (DESIGN.md, Command-line contract).

The local CLI is the host administrator's tool: it sees every product, objection and usage record.
``objection file`` may name who objects (``--by NAME --role ROLE``) so the ledger records them.
"""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, read_instance, reading, refusing
from app.cli.credentials import KeyFileOption, TotpOption, operator_actor
from core import Actor
from registry import ObjectionOutcome

product_cli = typer.Typer(help="Released data products (数据产品和服务).", no_args_is_help=True)
objection_cli = typer.Typer(
    help="Objections (异议) against products, catalog entries and licences.", no_args_is_help=True
)
usage_cli = typer.Typer(help="Usage records (使用记录) of licensed datasets.", no_args_is_help=True)

ROLES = ("custodian", "agency", "operator", "regulator")


def _price(data: dict[str, Any]) -> str:
    cents = data.get("price_cents")
    return data["fee_class"] if cents is None else f"{data['fee_class']} ¥{cents / 100:.2f}"


# --- products ----------------------------------------------------------------------------------


@product_cli.command("show")
@refusing
def product_show(
    name: Annotated[str, typer.Argument(help="Product name.")], home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """A product with its lineage, fee and attribution (数据来源, 获取日期; 双鸭山 第四十一条)."""
    from registry import read_product

    out = Output(json_out)
    # read-only, as the host sees it: no writer's open, no registry, no ORM (issue 21)
    with read_instance(home) as instance, reading(out, f"product {name!r}", ValueError):
        data = read_product(instance.rows, name)

    def render(console: Console) -> None:
        console.print(f"[bold]{data['name']}[/] ({data['state']}) by {data['operator']}, licence {data['licence_id']}")
        console.print(f"job {data['job']}, scenario {data['scenario']}, {_price(data)}")
        for dataset in data["datasets"]:
            console.print(f"  dataset {dataset['name']} v{dataset['version']} ({dataset['kind']})")
        console.print(f"code sha256 {data['code_sha256']}; guard {data['guard'].get('verdict')}")
        for review in data["reviews"]:
            console.print(f"  {review['decision']} by {review['reviewer']}: {review.get('reason', '')}")
        for artifact in data["artifacts"]:
            console.print(f"  artifact {artifact['name']} {artifact['bytes']} bytes -> {artifact['path']}")
        console.print(data["attribution"].get("statement", ""))

    out.result(data, render)


@product_cli.command("list")
@refusing
def product_list(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Every registered product (the local administrator sees all)."""
    from registry import read_products

    out = Output(json_out)
    with read_instance(home) as instance, reading(out, "the products", ValueError):  # read-only (issue 21)
        products = read_products(instance.rows)

    def render(console: Console) -> None:
        table = Table(title="Products (数据产品和服务)")
        for column in ("name", "operator", "licence", "scenario", "fee", "state"):
            table.add_column(column)
        for p in products:
            table.add_row(p["name"], p["operator"], str(p["licence_id"]), p["scenario"], _price(p), p["state"])
        console.print(table)

    out.result({"products": products}, render)


@product_cli.command("fetch")
@refusing
def product_fetch(
    name: Annotated[str, typer.Argument(help="Product name.")],
    to: Annotated[Path, typer.Option("--to", help="Directory to copy the artifacts into.")],
    operator: Annotated[
        str | None,
        typer.Option("--operator", help="The operator receiving it (only its own products) [default: its owner]."),
    ] = None,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Deliver an approved product to its operator, each artifact stamped with its attribution (第四十一条).

    Only the owning operator receives it; refused while an objection suspends it (第四十条) or once it is
    withdrawn. The delivery is ledgered.
    """
    with open_instance(home) as instance:
        # With the operator's own key, that operator fetches (only its own products); without one the host
        # administrator delivers to the owner and the ledger names the host as actor (issue 22, SATRE 3.1.06).
        by = operator_actor(instance, key_file, operator, totp)
        if by.is_host:
            owner = instance.registry.products.get(name, viewer=by).operator
            if operator is not None and operator != owner:
                Output(json_out).fail(f"product {name!r} is not {operator!r}'s: it is delivered only to its operator")
        data = instance.releases.fetch(name, to, by=by)

    def render(console: Console) -> None:
        for item in data["files"]:
            console.print(item["path"])
        console.print(data["attribution"].get("statement", ""))

    Output(json_out).result(data, render)


# --- objections --------------------------------------------------------------------------------


def _objection_line(o: dict[str, Any]) -> str:
    head = f"#{o['id']} {o['target_kind']} {o['target']} by {o['filed_by']} ({o['filed_role']}): {o['state']}"
    if o["outcome"]:
        head += f" -> {o['outcome']} by {o['resolved_by']}: {o['resolution']}"
    return head


@objection_cli.command("file")
@refusing
def objection_file(
    reason: Annotated[str, typer.Option("--reason", help="What is wrong, incomplete or infringing.")],
    product: Annotated[str | None, typer.Option("--product", help="Object to this product.")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Object to this catalog entry.")] = None,
    licence: Annotated[int | None, typer.Option("--licence", help="Object to this licence in publicity.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who objects (default: the host administrator).")] = None,
    role: Annotated[str | None, typer.Option("--role", help="The objector's role, with --by.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """File an objection (双鸭山 第四十条): a product's delivery stops at once."""
    out = Output(json_out)
    targets = [(kind, value) for kind, value in (("product", product), ("resource", dataset), ("licence", licence))]
    chosen = [(kind, str(value)) for kind, value in targets if value is not None]
    if len(chosen) != 1:
        out.fail("name exactly one of --product, --dataset or --licence")
    if (by is None) != (role is None):
        out.fail("--by and --role go together")
    if role is not None and role not in ROLES:
        out.fail(f"--role must be one of {', '.join(ROLES)}")
    actor = Actor(by, role) if by is not None and role is not None else Actor.host()
    kind, target = chosen[0]
    with open_instance(home) as instance:
        data = instance.registry.objections.file(kind, target, reason, by=actor).as_json()
    out.result(data, lambda console: console.print(_objection_line(data)))


@objection_cli.command("resolve")
@refusing
def objection_resolve(
    objection_id: Annotated[int, typer.Argument(metavar="ID", help="Objection number.")],
    outcome: Annotated[
        ObjectionOutcome, typer.Option("--outcome", help="withdraw, restore or restore after correction.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why; the objector reads it.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Resolve an objection: withdraw, restore, or restore after correction (双鸭山 第四十条)."""
    out = Output(json_out)
    with open_instance(home) as instance:
        data = instance.registry.objections.resolve(objection_id, outcome, reason, by=Actor.host()).as_json()
    out.result(data, lambda console: console.print(_objection_line(data)))


@objection_cli.command("list")
@refusing
def objection_list(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Every objection with its resolution."""
    out = Output(json_out)
    with open_instance(home, sweep=False) as instance:
        objections = [o.as_json() for o in instance.registry.objections.list(viewer=Actor.host())]

    def render(console: Console) -> None:
        if not objections:
            console.print("No objections.")
        for o in objections:
            console.print(_objection_line(o))

    out.result({"objections": objections}, render)


# --- usage -------------------------------------------------------------------------------------


@usage_cli.command("show")
@refusing
def usage_show(
    dataset: Annotated[str, typer.Argument(help="Dataset (catalog entry) name.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Usage records of a dataset per licence (黑龙江 第二十八条): scenarios, jobs, products, destruction."""
    out = Output(json_out)
    with open_instance(home, sweep=False) as instance:
        usage = instance.registry.usage
        data: dict[str, Any] = {
            "summary": usage.summary(dataset, viewer=Actor.host()),
            "records": usage.for_dataset(dataset, viewer=Actor.host()),
        }

    def render(console: Console) -> None:
        summary = data["summary"]
        console.print(
            f"[bold]{summary['dataset']}[/] provided by {summary['provider_name']}: {summary['records']} records"
        )
        table = Table()
        for column in ("licence", "operator", "scenarios used", "jobs", "products", "destroyed"):
            table.add_column(column)
        for entry in summary["licences"]:
            table.add_row(
                str(entry["licence_id"]),
                str(entry["operator"]),
                ", ".join(entry["scenarios_used"]),
                str(len(entry["jobs_admitted"])),
                ", ".join(entry["products_released"]),
                "yes" if entry["destroyed"] else "no",
            )
        console.print(table)

    out.result(data, render)
