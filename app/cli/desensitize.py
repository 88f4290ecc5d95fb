"""``keyong dataset desensitize NAME``: make the desensitized copy a sandbox may mount.

The host administrator acting as the custodian (DESIGN.md, Command-line contract). The registry
reads the raw version from the vault, applies the policy of the dataset's level to the columns as
the catalog classifies them, and records a ``desensitized`` version (:class:`registry.copies.Copies`).
With ``--json`` stdout carries exactly ``{"dataset", "version", "rows", "columns": [{"name", "type",
"action"}], "k_anonymity", "copy"}`` (plus the parent version, the fingerprint directory, the full
report, and issue 16's ``risk`` and ``utility`` with each column's ``representation`` / ``near_unique``
where measured); the progress bar goes to stderr.

``--keep-column COL --reason TEXT`` keeps a near-unique column of a personal table as it is instead
of pseudonymizing it (``desensitize.keys``); the reason is required and ledgered. Both options repeat:
one ``--reason`` for all kept columns, or one per ``--keep-column`` in the same order.

``--not-quasi COL --reason TEXT`` rules a column of a personal table not a quasi-identifier although
the defaults make it one (dates, employers, places, high-cardinality columns; ``desensitize.quasi``,
issue 23); the reason is required and ledgered, and pairs the same way. Given with ``--keep-column``
in one command, a single ``--reason`` covers both (which reason belongs to which option cannot be
told apart otherwise, and a ledgered reason must be the one meant).
"""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from app.cli.copy_measures import print_measures
from core import Actor

KeepColumnOption = Annotated[
    list[str] | None,
    typer.Option(
        "--keep-column",
        help="Keep this near-unique column as it is instead of pseudonymizing it (repeatable; needs --reason).",
    ),
]
NotQuasiOption = Annotated[
    list[str] | None,
    typer.Option(
        "--not-quasi",
        help="Rule this column not a quasi-identifier of a personal table (repeatable; needs --reason).",
    ),
]
ReasonOption = Annotated[
    list[str] | None,
    typer.Option(
        "--reason",
        help="Why the kept column stays / the column is not a quasi-identifier (ledgered): one for all, or one "
        "each in the same order.",
    ),
]


@refusing
def desensitize(
    name: Annotated[str, typer.Argument(help="The dataset to desensitize (its newest raw version).")],
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="A policy file (JSON) replacing the level's policy (default: HOME/policies/LEVEL.json, else shipped); "
            "a file other than the shipped policy must be approved first (keyong policy propose).",
        ),
    ] = None,
    sensitive: Annotated[
        str | None, typer.Option("--sensitive", help="Column whose l-diversity the report gives.")
    ] = None,
    keep_column: KeepColumnOption = None,
    not_quasi: NotQuasiOption = None,
    reason: ReasonOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Desensitize a dataset: policy by level, k-anonymity, guard fingerprints; record a desensitized version."""
    out = Output(json_out)
    if policy is not None and not policy.is_file():
        out.fail(f"{policy} is not a file")
    keep, rulings = _paired(out, keep_column or [], not_quasi or [], reason or [])
    with (
        open_instance(home) as instance,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=out.stderr,
            transient=True,
        ) as bar,
    ):
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        result = instance.registry.copies.make(
            name,
            by=Actor.host(),
            policy_path=policy,
            sensitive_column=sensitive,
            progress=progress,
            keep_columns=keep,
            not_quasi=rulings,
        )

    def render(console: Console) -> None:
        k = result.k_anonymity
        console.print(
            f"desensitized [bold]{result.dataset}[/] v{result.parent} -> v{result.version}: {result.rows:,} rows; "
            f"k-anonymity {_k_text(k)} (target {k.get('k_target')}), "
            f"{k.get('suppressed_rows', 0):,} rows suppressed"
        )
        table = Table(title="Columns: type as classified, action of the policy")
        for column in ("column", "type", "action"):
            table.add_column(column)
        for col in result.columns:
            table.add_row(col["name"], col["type"] or "-", col["action"])
        console.print(table)
        _print_quasi_identifiers(console, result.report)
        print_measures(console, result.report, version=result.version)
        for warning in result.as_json()["warnings"]:  # a kept key and linkage (red team 23, F5)
            console.print(f"[yellow]warning:[/] {warning}")
        console.print(f"Copy (what a sandbox mounts): {result.copy}")
        console.print(f"Guard fingerprints (never mounted): {result.fingerprints}")

    out.result(result.as_json(), render)


def _paired(
    out: Output, keep: list[str], not_quasi: list[str], reasons: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(kept columns, rulings), each column with its --reason (see the module docstring)."""
    if keep and not_quasi and len(reasons) > 1:
        out.fail(
            "with both --keep-column and --not-quasi give one --reason for all, or run them one kind at a time: "
            "which reason belongs to which column could not be told apart"
        )
    if keep and not_quasi:
        return _with_reasons(out, "--keep-column", keep, reasons), _with_reasons(out, "--not-quasi", not_quasi, reasons)
    if not_quasi:
        return {}, _with_reasons(out, "--not-quasi", not_quasi, reasons)
    return _with_reasons(out, "--keep-column", keep, reasons), {}


def _with_reasons(out: Output, option: str, columns: list[str], reasons: list[str]) -> dict[str, str]:
    """``option``'s columns paired with --reason: one reason for all, or one each; every reason non-empty."""
    if not columns:
        if reasons:
            out.fail("--reason goes with --keep-column or --not-quasi")
        return {}
    if len(set(columns)) != len(columns):
        out.fail(f"a column is given twice to {option}")
    if len(reasons) == 1:
        reasons = reasons * len(columns)
    if len(reasons) != len(columns):
        out.fail(f"{option} needs --reason: one for all its columns, or one each in the same order")
    if any(not r.strip() for r in reasons):
        out.fail("--reason must not be empty: it is ledgered")
    return {c: r.strip() for c, r in zip(columns, reasons, strict=True)}


def _print_quasi_identifiers(console: Console, report: dict[str, Any]) -> None:
    """The quasi-identifiers, why each is one and how far it was generalized; the custodian's rulings."""
    entries = (report.get("k_anonymity") or {}).get("quasi_identifiers") or []
    if entries:
        table = Table(title="Quasi-identifiers: why, and how far generalized")
        for column in ("column", "basis", "ladder", "generalized to"):
            table.add_column(column)
        for q in entries:
            table.add_row(str(q["column"]), str(q.get("basis", "policy")), str(q.get("ladder_type") or q.get("type")),
                          str(q.get("generalization")))  # fmt: skip
        console.print(table)
    for ruling in report.get("quasi_identifier_rulings") or []:
        console.print(f"ruled not a quasi-identifier: {ruling['column']} ({ruling['reason']})")


def _k_text(k: dict[str, object]) -> str:
    """k achieved, or the report's note where k means nothing (no quasi-identifiers: n/a, issue 16)."""
    return str(k["k_achieved"]) if k.get("k_achieved") is not None else str(k.get("note") or "n/a")
