"""``keyong dataset …``: show, list, publish, classify, consent and revoke catalog entries, and decide
catalog requests (DESIGN.md, Command-line contract).

The local CLI is the host administrator's tool: it acts as the role each command implies (the
custodian publishes, the agency decides) and the ledger records the host as the actor.
``dataset show NAME --json`` prints ``ResourceView.as_json()``; its ``catalog`` key, with the rules'
Chinese field names, is a public contract. Issue 16 adds ``risk``, ``utility`` and ``copy_facts`` of the
newest desensitized version (:func:`show_json`); the human output prints them as tables.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from app.cli.copy_measures import print_measures
from app.copy_facts import newest_copy_facts, risk_of, utility_of
from core import Actor, RegistryError

if TYPE_CHECKING:
    from registry import ColumnClass, RequestView, ResourceView

dataset_cli = typer.Typer(help="Data resources: ingest, catalog, classification, versions.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Machine name of the dataset.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why; kept with the change and in the ledger.")]


def parse_column(spec: str) -> tuple[str, ColumnClass]:
    """``col=L4:身份证号`` or ``col=L4:身份证号:sensitive`` (also ``敏感``) or ``col=L2``."""
    from registry import ColumnClass

    column, sep, grading = spec.rpartition("=")
    parts = grading.split(":")
    if not sep or not column or not 1 <= len(parts) <= 3 or not parts[0]:
        raise RegistryError(f"--column {spec!r}: write COLUMN=LEVEL[:PII_TYPE[:sensitive]], e.g. 身份证号=L4:身份证号")
    sensitive = len(parts) == 3
    if sensitive and parts[2].strip().lower() not in ("sensitive", "敏感"):
        raise RegistryError(f"--column {spec!r}: the third part may only be 'sensitive' (or 敏感)")
    data: dict[str, Any] = {"level": parts[0].strip().upper(), "sensitive_personal_info": sensitive}
    if len(parts) >= 2 and parts[1].strip():
        data["pii_type"] = parts[1].strip()
    try:
        return column.strip(), ColumnClass.model_validate(data)
    except ValueError as exc:
        raise RegistryError(f"--column {spec!r}: {exc}") from None


def _render_resource(view: ResourceView) -> Any:
    def render(console: Console) -> None:
        table = Table(title=f"{view.name}: {view.title}", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in view.catalog_json().items():
            if key != "数据项":
                table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
        table.add_row("分级", f"{view.level} (个人信息: {view.personal_info}, 敏感: {view.sensitive_personal_info})")
        table.add_row("state", view.state + (f" until {view.available_until:%Y-%m-%d}" if view.available_until else ""))
        if view.obtained_via_sharing:
            table.add_row("共享获取", f"{view.source_region or '?'}; consent: {view.provider_consent or 'none'}")
        table.add_row("licensable", "yes" if view.licensable else f"no: {view.licensing_refusal}")
        console.print(table)
        columns = Table(title="数据项")
        for header in ("数据项名称", "数据项格式", "PII类型", "分级", "suggested", "confidence"):
            columns.add_column(header)
        for item in view.items:
            suggested = f"{item.suggested_level or ''} {item.suggested_pii_type or ''}".strip()
            confidence = f"{item.confidence:.2f}" if item.confidence is not None else ""
            columns.add_row(item.name, item.format, item.pii_type or "", item.level, suggested, confidence)
        console.print(columns)
        if view.versions:
            versions = Table(title="versions")
            for header in ("version", "kind", "rows", "parent", "sha256", "path"):
                versions.add_column(header)
            for v in view.versions:
                versions.add_row(
                    str(v.version), v.kind, f"{v.rows:,}", str(v.parent or ""), v.content_sha256[:16], v.path
                )
            console.print(versions)
        copy = _newest_copy(view)
        if copy is not None:
            print_measures(console, copy.report, version=copy.version)

    return render


def _newest_copy(view: ResourceView) -> Any:
    """The newest desensitized version (the one a licence serves), or ``None``."""
    copies = [v for v in view.versions if v.kind == "desensitized"]
    return max(copies, key=lambda v: v.version) if copies else None


def show_json(view: ResourceView) -> dict[str, Any]:
    """``ResourceView.as_json()`` plus issue 16's measures of the newest copy: ``risk`` and ``utility`` as the
    report holds them (``null`` when none was measured) and ``copy_facts``, what an operator is shown
    (``app.copy_facts.public_facts``; ``null`` without a desensitized version)."""
    copy = _newest_copy(view)
    report = copy.report if copy is not None else None
    return view.as_json() | {
        "risk": risk_of(report),
        "utility": utility_of(report),
        "copy_facts": newest_copy_facts(view.versions),
    }


def _render_request(request: RequestView) -> Any:
    def render(console: Console) -> None:
        console.print(
            f"catalog request {request.id} ({request.kind} of {request.dataset}): [bold]{request.state}[/]",
            markup=True,
        )
        if request.decided_by:
            console.print(f"decided by {request.decided_by}: {request.decision_reason}", markup=False)

    return render


@dataset_cli.command()
@refusing
def show(name: NameArg, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """A catalog entry: its 资源目录 fields, classification, versions, and whether it may be licensed."""
    with open_instance(home, sweep=False) as instance:
        view = instance.registry.catalog.get(name)
        linkage = instance.registry.licence_copies.dataset_linkage(name, viewer=Actor.host())
    base = _render_resource(view)

    def render(console: Console) -> None:
        base(console)
        for entry in linkage:  # issue 23: what each licence serving it can link it with
            others = ", ".join(entry["linkable_with"]) or "nothing (keyed for this dataset alone)"
            console.print(f"licence {entry['licence']} ({entry['operator']}): linkable with {others}", markup=False)

    Output(json_out).result(show_json(view) | {"linkage": linkage}, render)


@dataset_cli.command("list")
@refusing
def list_(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Every catalog entry."""
    with open_instance(home, sweep=False) as instance:
        views = instance.registry.catalog.list()

    def render(console: Console) -> None:
        table = Table(title="资源目录")
        for header in ("name", "数据资源名称", "提供方名称", "分级", "共享类型", "开放类型", "state", "licensable"):
            table.add_column(header)
        for v in views:
            table.add_row(
                v.name,
                v.title,
                v.provider_name,
                v.level,
                v.sharing_type,
                v.opening_type,
                v.state,
                "yes" if v.licensable else "no",
            )
        console.print(table)

    Output(json_out).result({"datasets": [v.as_json() for v in views]}, render)


@dataset_cli.command()
@refusing
def publish(
    file: Annotated[
        Path, typer.Option("--file", exists=True, dir_okay=False, help="Catalog entry JSON (Chinese or English keys).")
    ],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Publish a catalog entry as the custodian."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{file} is not a UTF-8 JSON document: {exc}") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{file} must hold one JSON object: the catalog entry")
    from registry import Catalog

    entry = Catalog.parse_entry(data)
    with open_instance(home) as instance:
        view = instance.registry.catalog.publish(entry, by=Actor.host())
    Output(json_out).result(view.as_json(), _render_resource(view))


@dataset_cli.command()
@refusing
def bounds(
    name: NameArg,
    column: Annotated[str, typer.Argument(help="The column.")],
    lo_hi: Annotated[
        str | None, typer.Option("--bounds", help="Public bounds 'lo,hi' (numbers) that DP jobs clip to.")
    ] = None,
    domain: Annotated[
        str | None, typer.Option("--domain", help="Public domain 'a,b,c': the groups or classes DP jobs use.")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Declare a column's public bounds and/or domain as the custodian (neither clears them).

    DP jobs (issue 8) take bounds, groups and classes from here, never from the data.
    """
    parsed: list[float] | None = None
    if lo_hi is not None:
        try:
            parsed = [float(part) for part in lo_hi.split(",")]
        except ValueError:
            raise RegistryError(f"--bounds takes two numbers 'lo,hi', not {lo_hi!r}") from None
    values = [part.strip() for part in domain.split(",") if part.strip()] if domain is not None else None
    with open_instance(home) as instance:
        view = instance.registry.catalog.set_public_bounds(name, column, bounds=parsed, domain=values, by=Actor.host())
    item = next(i for i in view.items if i.name == column)
    Output(json_out).result(
        {"dataset": name, "column": column, "bounds": item.public_bounds, "domain": item.public_domain},
        lambda c: c.print(f"{name}.{column}: bounds {item.public_bounds}, domain {item.public_domain}"),
    )


@dataset_cli.command()
@refusing
def classify(
    name: NameArg,
    level: Annotated[str, typer.Option("--level", help="The resource's level, L1..L4.")],
    column: Annotated[
        list[str] | None,
        typer.Option("--column", help="COLUMN=LEVEL[:PII_TYPE[:sensitive]], repeatable; e.g. 身份证号=L4:身份证号."),
    ] = None,
    personal: Annotated[
        bool | None, typer.Option("--personal/--not-personal", help="Resource flag; default: from its columns.")
    ] = None,
    sensitive: Annotated[
        bool | None, typer.Option("--sensitive/--not-sensitive", help="Resource flag; default: from its columns.")
    ] = None,
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why a column recognised as a direct identifier gets another type (ledgered)."),
    ] = "",
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Grade a resource and some of its columns as the custodian (双鸭山 第十一条)."""
    columns = dict(parse_column(spec) for spec in column or [])
    with open_instance(home) as instance:
        view = instance.registry.catalog.classify(
            name,
            level=level.strip().upper(),
            personal_info=personal,
            sensitive_personal_info=sensitive,
            columns=columns,
            by=Actor.host(),
            reason=reason,
        )
    Output(json_out).result(view.as_json(), _render_resource(view))


@dataset_cli.command()
@refusing
def consent(
    name: NameArg,
    provider: Annotated[str, typer.Option("--provider", help="The sharing provider that consented.")],
    reference: Annotated[str, typer.Option("--reference", help="Reference of its consent document.")],
    on: Annotated[
        datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="Date of the consent [default: today].")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record the sharing provider's consent to authorized operation (双鸭山 第四十三条)."""
    given: date | None = on.date() if on else None
    with open_instance(home) as instance:
        view = instance.registry.catalog.record_consent(
            name, provider=provider, reference=reference, on=given, by=Actor.host()
        )
    Output(json_out).result(view.as_json(), _render_resource(view))


@dataset_cli.command()
@refusing
def revoke(name: NameArg, reason: ReasonOption, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Ask for an entry's revocation (the agency decides; 黑龙江 第十六条: in use, six more months)."""
    with open_instance(home) as instance:
        request = instance.registry.catalog.request_revocation(name, by=Actor.host(), reason=reason)
    Output(json_out).result(request.as_json(), _render_request(request))


@dataset_cli.command()
@refusing
def requests(
    state: Annotated[str | None, typer.Option("--state", help="pending, approved or rejected.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Catalog requests: restrictions and revocations waiting for, or decided by, the agency."""
    with open_instance(home) as instance:
        found = instance.registry.catalog.requests(state)

    def render(console: Console) -> None:
        table = Table(title="catalog requests")
        for header in ("id", "dataset", "kind", "state", "requested by", "reason"):
            table.add_column(header)
        for r in found:
            table.add_row(str(r.id), r.dataset, r.kind, r.state, r.requested_by, r.reason)
        console.print(table)

    Output(json_out).result({"requests": [r.as_json() for r in found]}, render)


def _decide(request_id: int, approve: bool, reason: str, home: Path | None, json_out: bool) -> None:
    with open_instance(home) as instance:
        request = instance.registry.catalog.decide(request_id, approve, by=Actor.host(), reason=reason)
    Output(json_out).result(request.as_json(), _render_request(request))


@dataset_cli.command("approve-request")
@refusing
def approve_request(
    request_id: Annotated[int, typer.Argument(min=1, help="Catalog request id.")],
    reason: ReasonOption,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Approve a catalog request as the agency: the restriction or revocation takes effect."""
    _decide(request_id, True, reason, home, json_out)


@dataset_cli.command("reject-request")
@refusing
def reject_request(
    request_id: Annotated[int, typer.Argument(min=1, help="Catalog request id.")],
    reason: ReasonOption,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Reject a catalog request as the agency: the entry stays as it is."""
    _decide(request_id, False, reason, home, json_out)


@dataset_cli.command("finalize-revocations")
@refusing
def finalize_revocations(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Revoke for good the entries whose six-month grace has ended (黑龙江 第十六条)."""
    with open_instance(home) as instance:
        names = instance.registry.catalog.finalize_revocations(by=Actor.host())
    Output(json_out).result(
        {"revoked": names}, lambda console: console.print(f"revoked: {', '.join(names) or 'none'}", markup=False)
    )
