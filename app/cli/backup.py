"""``keyong backup create OUT`` / ``keyong backup restore ARCHIVE --home NEWHOME`` (SATRE 2.2.06, 3.1.09).

The host administrator's tool for 双鸭山市公共数据管理暂行办法 第六十条 (数据备份、加密认证): the logic is in
:mod:`app.backup`; the passphrase comes from ``--passphrase-file`` or ``$KEYONG_BACKUP_PASSPHRASE``, never
from the command line (where ``ps`` would show it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.backup_archive import PASSPHRASE_ENV, BackupError, passphrase_from
from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing, settings_for

backup_cli = typer.Typer(help="Back up a home into one archive; restore it as a new home.", no_args_is_help=True)

PassphraseOption = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help=f"File whose first line is the passphrase (default: ${PASSPHRASE_ENV}).",
        show_default=False,
    ),
]


@backup_cli.command()
@refusing
def create(
    out_file: Annotated[Path, typer.Argument(metavar="OUT", help="Archive to write (a tar; must not exist).")],
    passphrase_file: PassphraseOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Back up the home: database snapshot, files, secrets (encrypted), manifest; ledgered."""
    from app.backup import create_backup

    out = Output(json_out)
    try:
        passphrase = passphrase_from(passphrase_file)
        with open_instance(home) as instance, out.stderr.status("backing up"):
            result = create_backup(instance, out_file, passphrase)
    except BackupError as exc:
        out.fail(str(exc))
    except OSError as exc:  # a file that cannot be read or written: a refusal with the reason, nothing kept
        out.fail(f"backup failed: {exc}")

    def render(console: Console) -> None:
        console.print(
            f"wrote {result.archive}: {result.files} members, {result.bytes:,} bytes, ledger size "
            f"{result.ledger['size']}, manifest sha256 {result.manifest_sha256}"
        )
        for item in result.skipped:
            console.print(f"  skipped {item}", markup=False)

    out.result(result.as_json(), render)


@backup_cli.command()
@refusing
def restore(
    archive: Annotated[Path, typer.Argument(help="Archive written by `keyong backup create`.")],
    passphrase_file: PassphraseOption = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="An empty PostgreSQL database or schema for a PostgreSQL home's rows (default: $KEYONG_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Restore ARCHIVE as the new home --home (absent or empty), then verify its ledger; exit 1 if it does not."""
    from app.backup import restore_backup

    out = Output(json_out)
    settings = settings_for(home)
    if not archive.is_file():
        out.fail(f"{archive} is not a file")
    try:
        with out.stderr.status("checking and restoring"):
            passphrase = passphrase_from(passphrase_file)
            result = restore_backup(archive, settings.home, passphrase, settings, database_url)
    except BackupError as exc:
        out.fail(str(exc))
    except OSError as exc:  # the staging directory is already removed
        out.fail(f"restore failed, nothing was kept: {exc}")

    def render(console: Console) -> None:
        report = result.verify
        state = "[green]ok[/]" if result.ok else "[bold red]FAILED[/]"
        console.print(f"restored {result.files} members into [bold]{result.home}[/]")
        console.print(f"ledger {state}: {report.entries:,} entries, head {report.head}")
        if not result.head_matches:
            console.print("  the restored ledger's head differs from the one the manifest recorded")
        for problem in report.problems:
            console.print(f"  seq {problem.seq}: {problem.kind}: {problem.detail}", markup=False)

    out.result(result.as_json(), render)
    if not result.ok:
        out.fail(f"the restored home at {result.home} does not verify; do not serve it")
