"""``keyong dataset ingest FILE --name NAME --provider ORG [--level L1..L4] [--encoding auto]``.

The host administrator acting as the custodian (DESIGN.md, Command-line contract): reads the file,
profiles its columns, stores the raw copy encrypted in the vault and records a ``raw`` version
(:class:`registry.ingest.Ingestor`). With ``--json`` stdout carries exactly the result document;
progress goes to stderr.
"""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from core import Actor

LARGE_FILE = 16 * 1024 * 1024  # above this, stage notes go to stderr even when it is not a terminal


@refusing
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8 or GB18030), Parquet or XLSX file.", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="Machine name of the dataset (SQL view name).")],
    provider: Annotated[str, typer.Option("--provider", help="提供方名称: the providing organisation.")],
    provider_code: Annotated[
        str | None,
        typer.Option(
            "--provider-code", help="提供方代码: the provider's 统一社会信用代码 (required for a new dataset)."
        ),
    ] = None,
    level: Annotated[
        str | None, typer.Option("--level", help="Grade a new dataset L1..L4 (default: the highest level suggested).")
    ] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="CSV encoding: auto, utf-8 or gb18030.")] = "auto",
    title: Annotated[str | None, typer.Option("--title", help="数据资源名称 (default: the name).")] = None,
    industry: Annotated[str, typer.Option("--industry", help="行业分类 of a new dataset.")] = "",
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Ingest a raw file: profile its columns, encrypt it into the vault, record a raw version."""
    out = Output(json_out)
    if not file.is_file():
        out.fail(f"{file} is not a file")
    loud = file.stat().st_size >= LARGE_FILE and not out.stderr.is_terminal
    with open_instance(home) as instance, out.stderr.status(f"ingesting {file.name}") as status:

        def progress(stage: str) -> None:
            status.update(stage)
            if loud:
                out.note(stage)

        result = instance.registry.ingestor.ingest(
            file,
            name=name,
            provider=provider,
            provider_code=provider_code,
            level=level,
            encoding=encoding,
            title=title,
            industry=industry,
            by=Actor.host(),
            progress=progress,
        )

    def render(console: Console) -> None:
        action = "published and ingested" if result.published else "ingested a new raw version of"
        console.print(
            f"{action} [bold]{result.dataset}[/] v{result.version}: {result.rows:,} rows, "
            f"{result.data_format}{f' ({result.encoding})' if result.encoding else ''}, sha256 {result.sha256}"
        )
        table = Table(title="Columns and the profiler's suggestions; the custodian decides")
        for column in ("column", "type", "PII type", "level", "confidence"):
            table.add_column(column)
        for col in result.columns:
            table.add_row(col["name"], col["type"], col["pii_type"] or "-", col["level"], f"{col['confidence']:.2f}")
        console.print(table)
        console.print(f"Raw copy (encrypted): {result.vault_path}")

    out.result(result.as_json(), render)
