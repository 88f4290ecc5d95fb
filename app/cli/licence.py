"""``keyong operator …``, ``keyong licence …`` and ``keyong finding …`` (DESIGN.md, Command-line contract).

The local CLI is the host administrator's tool: it acts for the agency, except ``licence check``,
which acts as the operator it names (the ledger records it so).
"""

from datetime import date
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from app.cli.principal import key_json, print_key
from core import Actor, RegistryError
from operators import Role
from registry import LicenceState

operator_cli = typer.Typer(help="Operating companies (运营机构).", no_args_is_help=True)
licence_cli = typer.Typer(
    help="Licences (授权运营): grant, publicity, activate, suspend, revoke.", no_args_is_help=True
)
finding_cli = typer.Typer(help="Usage-monitoring findings (双鸭山 第三十一条) for the agency.", no_args_is_help=True)

ReasonOption = Annotated[str, typer.Option("--reason", help="Why; recorded in the ledger.")]


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


def _epsilon(value: str) -> float | dict[str, float]:
    """``3.0`` for every dataset, or ``A=1.0,B=2.0`` per dataset."""
    try:
        if "=" in value:
            return {name.strip(): float(eps) for name, eps in (part.split("=", 1) for part in _csv(value))}
        return float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give a number or NAME=EPS,NAME=EPS") from None


def _licence_table(items: list[dict[str, Any]], title: str = "Licences") -> Table:
    table = Table(title=title)
    for column in ("id", "operator", "state", "mode", "datasets", "scenarios", "valid until", "fee"):
        table.add_column(column, overflow="fold")
    for item in items:
        fee = item["fee_class"] + (f" {item['price_cents'] / 100:.2f}" if item["price_cents"] is not None else "")
        table.add_row(
            str(item["id"]),
            item["operator"],
            item["state"],
            item["mode"],
            ", ".join(d["name"] for d in item["datasets"]),
            ", ".join(item["scenarios"]),
            item["valid_until"],
            fee,
        )
    return table


def linkage_table(entries: list[dict[str, Any]], title: str = "What can be linked (issue 23)") -> Table:
    """The ``linkage`` entries as a table: datasets, joint or not, how keyed, the joined view's risk, and the
    kept keys verbatim under every licence (red team 23, F5: they join across licences)."""
    table = Table(title=title)
    columns = ("datasets", "joint", "pseudonym key", "joined view k", "risk after (highest)", "met")
    for column in (*columns, "verbatim: joins across licences"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        risk = entry.get("risk") or {}
        after = (risk.get("after") or {}).get("prosecutor") or {}
        highest = after.get("highest")
        table.add_row(
            " + ".join(entry["datasets"]),
            "yes" if entry["joint"] else "no",
            entry["key"],
            "-" if risk.get("k_achieved") is None else str(risk["k_achieved"]),
            "-" if highest is None else f"{highest:.3f}",
            "-" if risk.get("met") is None else str(risk["met"]).lower(),
            ", ".join(f"{c['dataset']}.{c['column']}" for c in entry.get("shared_columns") or []) or "-",
        )
    return table


def _render_licence(item: dict[str, Any]) -> Any:
    def render(console: Console) -> None:
        console.print(_licence_table([item], title=f"Licence {item['id']}"))
        if item.get("publicity_ends_at") and item["state"] == LicenceState.PUBLICITY:
            console.print(f"公示 until {item['publicity_ends_at']}")
        for d in item["datasets"]:
            console.print(f"  {d['name']}: ε {d['epsilon_spent']:g} of {d['epsilon_budget']:g} spent")
        for e in item["events"]:
            console.print(f"  {e['at']} {e['from_state'] or '-'} → {e['to_state']} by {e['by']}: {e['reason']}")
        if item.get("linkage"):
            console.print(linkage_table(item["linkage"]))

    return render


# --- operators -------------------------------------------------------------------------------


@operator_cli.command("add")
@refusing
def operator_add(
    name: Annotated[str, typer.Argument(help="The operator principal's name.")],
    uscc: Annotated[str, typer.Option("--uscc", help="统一社会信用代码 (18 characters).")],
    login: Annotated[
        bool,
        typer.Option("--login", help="Also create its first login (an operator principal) and print its key once."),
    ] = False,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Register an operating company (双鸭山 第四十八条), with its first login if asked."""
    with open_instance(home) as instance:
        if not login:
            view = instance.registry.licences.add_operator(name, uscc, by=Actor.host())
            Output(json_out).result(
                view.as_json(), lambda c: c.print(f"Operator [bold]{view.name}[/] added ({view.uscc})")
            )
            return
        operators = instance.registry.licences.operators
        added: list[Any] = []

        def register(recorder: Any) -> None:  # in the principal's transaction: both or neither
            added.append(type(operators)(recorder, operators.config).add_operator(name, uscc, by=Actor.host()))

        new = instance.identity.create_principal(name.strip(), Role.OPERATOR, org=name.strip(), alongside=register)
    view = added[0]

    def render(console: Console) -> None:
        console.print(f"Operator [bold]{view.name}[/] added ({view.uscc})")
        print_key(console, new, "First login created")

    Output(json_out).result({**view.as_json(), "login": key_json(new)}, render)


@operator_cli.command("list")
@refusing
def operator_list(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Every operator and its standing."""
    with open_instance(home, sweep=False) as instance:
        views = instance.registry.licences.list_operators()
    items: list[dict[str, Any]] = [v.as_json() for v in views]

    def render(console: Console) -> None:
        table = Table(title="Operators (运营机构)")
        for column in ("name", "统一社会信用代码", "qualification", "suspended because"):
            table.add_column(column)
        for item in items:
            table.add_row(item["name"], item["uscc"], item["qualification"], item["suspended_reason"])
        console.print(table)

    Output(json_out).result({"operators": items}, render)


@operator_cli.command("suspend")
@refusing
def operator_suspend(name: str, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Close an operator's access (第三十一条); its licences keep their state."""
    with open_instance(home) as instance:
        view = instance.registry.licences.suspend_operator(name, by=Actor.host(), reason=reason)
    Output(json_out).result(view.as_json(), lambda c: c.print(f"Operator [bold]{name}[/] suspended"))


@operator_cli.command("restore")
@refusing
def operator_restore(name: str, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Reopen a suspended operator's access once it has rectified (整改)."""
    with open_instance(home) as instance:
        view = instance.registry.licences.restore_operator(name, by=Actor.host(), reason=reason)
    Output(json_out).result(view.as_json(), lambda c: c.print(f"Operator [bold]{name}[/] restored"))


# --- licences --------------------------------------------------------------------------------


@licence_cli.command("grant")
@refusing
def licence_grant(
    operator: Annotated[str, typer.Argument(help="The operator's name.")],
    until: Annotated[str, typer.Option("--until", help="Last valid day, YYYY-MM-DD.")],
    scenarios: Annotated[str, typer.Option("--scenarios", help="Licensed scenarios (应用场景), comma-separated.")],
    datasets: Annotated[str, typer.Option("--datasets", help="Datasets, comma-separated.")] = "",
    mode: Annotated[str, typer.Option("--mode", help="整体授权 | 分领域授权 | 依场景授权.")] = "依场景授权",
    domains: Annotated[str, typer.Option("--domains", help="行业分类 for 分领域授权, comma-separated.")] = "",
    epsilon: Annotated[str, typer.Option("--epsilon", help="ε per dataset: 3.0, or NAME=EPS,NAME=EPS.")] = "3.0",
    publicity_days: Annotated[
        int | None, typer.Option("--publicity-days", help="公示 days; 0 activates at once [default: settings].")
    ] = None,
    fee_class: Annotated[str, typer.Option("--fee-class", help="公益 (free) | 经营性 (priced).")] = "公益",
    price_cents: Annotated[int | None, typer.Option("--price-cents", help="Price of 经营性 products.")] = None,
    valid_from: Annotated[str | None, typer.Option("--from", help="First valid day [default: today].")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded in the ledger.")] = "授权运营协议 granted",
    joint: Annotated[
        list[str] | None,
        typer.Option(
            "--joint",
            help="Datasets granted for joint analysis, comma-separated (A,B); repeat for another group. "
            "Others are keyed per dataset and never join (issue 23).",
        ),
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Grant a licence; it is publicised (公示) first unless the publicity period is 0 days."""
    groups = [[part.strip() for part in group.split(",")] for group in joint or []]
    valid_until = _day(until)
    start = _day(valid_from) if valid_from else None
    eps = _epsilon(epsilon)
    with open_instance(home) as instance:
        view = instance.registry.licences.grant(
            operator,
            datasets=_csv(datasets),
            mode=mode,
            domains=_csv(domains),
            scenarios=_csv(scenarios),
            valid_until=valid_until,
            valid_from=start,
            epsilon=eps,
            fee_class=fee_class,
            price_cents=price_cents,
            publicity_days=publicity_days,
            by=Actor.host(),
            reason=reason,
            joint=groups,
        )
        consent = instance.registry.licence_consent
        waiting = consent.get(view.id, viewer=Actor.host()) if view.state == LicenceState.DRAFT else None
    item = view.as_json()
    out = Output(json_out)
    if waiting and not waiting.complete:  # SATRE 1.5.04: a draft until every custodian agreed
        out.note(
            f"licence {view.id} stays a draft until each dataset's custodian agrees (`keyong licence consent "
            f"{view.id}`); then activate it with `keyong licence activate {view.id}`"
        )
    out.result(item, _render_licence(item))


@licence_cli.command("suspend")
@refusing
def licence_suspend(operator: str, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Suspend every active licence of OPERATOR."""
    with open_instance(home) as instance:
        views = instance.registry.licences.suspend(operator, by=Actor.host(), reason=reason)
    items = [v.as_json() for v in views]
    Output(json_out).result({"suspended": items}, lambda c: c.print(_licence_table(items, "Suspended")))


@licence_cli.command("list")
@refusing
def licence_list(
    home: HomeOption = None,
    json_out: JsonOption = False,
    operator: Annotated[str | None, typer.Option("--operator", help="Only this operator's.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only licences in this state.")] = None,
) -> None:
    """Licences, oldest first."""
    with open_instance(home, sweep=False) as instance:
        views = instance.registry.licences.list(viewer=Actor.host(), operator=operator, state=state)
    items = [v.as_json() for v in views]
    Output(json_out).result({"licences": items}, lambda c: c.print(_licence_table(items)))


@licence_cli.command("show")
@refusing
def licence_show(licence_id: int, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """One licence with its scope, budgets and events."""
    with open_instance(home, sweep=False) as instance:
        view = instance.registry.licences.get(licence_id, viewer=Actor.host())
    item = view.as_json()
    Output(json_out).result(item, _render_licence(item))


def _move(licence_id: int, to: LicenceState, reason: str, home: Any, json_out: bool, *, restore: bool) -> None:
    with open_instance(home) as instance:
        licences = instance.registry.licences
        current = licences.get(licence_id, viewer=Actor.host()).state
        if restore and current != LicenceState.SUSPENDED:
            raise RegistryError(f"licence {licence_id} is {current}, not suspended: nothing to restore")
        if not restore and current == LicenceState.SUSPENDED and to == LicenceState.ACTIVE:
            raise RegistryError(f"licence {licence_id} is suspended: use `keyong licence restore`")
        view = licences.transition(licence_id, to, by=Actor.host(), reason=reason)
    item = view.as_json()
    Output(json_out).result(item, _render_licence(item))


@licence_cli.command("publicise")
@refusing
def licence_publicise(
    licence_id: int, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """Start the 公示 of a draft licence."""
    _move(licence_id, LicenceState.PUBLICITY, reason, home, json_out, restore=False)


@licence_cli.command("activate")
@refusing
def licence_activate(
    licence_id: int, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """Activate a licence whose 公示 ended without open objection."""
    _move(licence_id, LicenceState.ACTIVE, reason, home, json_out, restore=False)


@licence_cli.command("restore")
@refusing
def licence_restore(
    licence_id: int, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """Restore a suspended licence."""
    _move(licence_id, LicenceState.ACTIVE, reason, home, json_out, restore=True)


@licence_cli.command("revoke")
@refusing
def licence_revoke(
    licence_id: int, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False
) -> None:
    """Revoke a licence; the operator's copies and outputs for it are destroyed (第六十二条)."""
    _move(licence_id, LicenceState.REVOKED, reason, home, json_out, restore=False)


@licence_cli.command("check")
@refusing
def licence_check(
    operator: str,
    datasets: Annotated[str, typer.Option("--datasets", help="Datasets the job uses, comma-separated.")],
    scenario: Annotated[str, typer.Option("--scenario", help="The job's declared scenario (应用场景).")],
    subject: Annotated[str, typer.Option("--subject", help="What is admitted, e.g. job:42.")] = "",
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Scope-check a job as OPERATOR would submit it: a dry run, never counted as a violation."""
    with open_instance(home) as instance:
        grant = instance.registry.licences.check_scope(
            operator, _csv(datasets), scenario, subject=subject, dry_run=True
        )
    item = grant.as_json()

    def render(console: Console) -> None:
        console.print(f"Admitted under licence {grant.licence_id} for {grant.scenario!r}:")
        for d in grant.datasets:
            console.print(f"  {d.name} v{d.version} ({d.path})")

    Output(json_out).result(item, render)


@licence_cli.command("sweep")
@refusing
def licence_sweep(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Activate licences whose 公示 ended, expire those past their date, report idle datasets."""
    with open_instance(home) as instance:
        registry = instance.registry
        activated = registry.licences.activate_due(by=Actor.host())
        expired = registry.licences.expire_due(by=Actor.host())
        idle = registry.monitoring.scan_idle(by=Actor.host())
    data = {
        "activated": [v.id for v in activated],
        "expired": [v.id for v in expired],
        "idle_findings": [f.id for f in idle],
    }

    def render(console: Console) -> None:
        console.print(
            f"activated {data['activated'] or 'none'}; expired {data['expired'] or 'none'}; "
            f"idle findings {data['idle_findings'] or 'none'}"
        )

    Output(json_out).result(data, render)


# --- findings --------------------------------------------------------------------------------


@finding_cli.command("list")
@refusing
def finding_list(
    home: HomeOption = None,
    json_out: JsonOption = False,
    state: Annotated[str | None, typer.Option("--state", help="open | resolved.")] = None,
    operator: Annotated[str | None, typer.Option("--operator", help="Only this operator's.")] = None,
) -> None:
    """Usage-monitoring findings for the agency."""
    with open_instance(home, sweep=False) as instance:
        views = instance.registry.monitoring.list_findings(viewer=Actor.host(), state=state, operator=operator)
    items: list[dict[str, Any]] = [v.as_json() for v in views]

    def render(console: Console) -> None:
        table = Table(title="Findings (使用监测)")
        for column in ("id", "kind", "operator", "licence", "state", "detail"):
            table.add_column(column)
        for f in items:
            table.add_row(
                str(f["id"]), f["kind"], f["operator"] or "", str(f["licence_id"] or ""), f["state"], f["detail"]
            )
        console.print(table)

    Output(json_out).result({"findings": items}, render)


@finding_cli.command("resolve")
@refusing
def finding_resolve(
    finding_id: int,
    resolution: Annotated[str, typer.Option("--resolution", help="What was done about it.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Close a finding, saying what was done (整改)."""
    with open_instance(home) as instance:
        view = instance.registry.monitoring.resolve_finding(finding_id, by=Actor.host(), resolution=resolution)
    Output(json_out).result(view.as_json(), lambda c: c.print(f"Finding {finding_id} resolved"))
