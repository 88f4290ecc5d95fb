"""``keyong ledger …``: verify, prove, export and inspect the ledger (DESIGN.md, Ledger).

Regulators verify on their own with ``python -m ledger.verify``; these commands are the host
administrator's view of the same checks, plus checkpoints and witness cosignatures.
"""

import json
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli.conventions import (
    HomeOption,
    JsonOption,
    Output,
    open_instance,
    read_instance,
    reading,
    refusing,
    settings_for,
)
from app.cli.ledger_verifying import verifying
from app.ledger_whole import instance_verified
from ledger import LedgerError

if TYPE_CHECKING:  # the CLI's start loads no ledger or cryptography (issue 21)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ledger import WitnessPolicy

ledger_cli = typer.Typer(help="The hash-chained ledger: verify, prove, export, show.", no_args_is_help=True)

WITNESS_POLICY = "witnesses.policy"


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


@ledger_cli.command()
@refusing
def verify(
    home: HomeOption = None,
    json_out: JsonOption = False,
    reference: Annotated[
        bool, typer.Option("--reference", help="Use the plain-Python reference verifier (slower, same report).")
    ] = False,
) -> None:
    """Recompute the chain, the Merkle tree and every checkpoint; exit 1 on any problem."""
    out = Output(json_out)
    with ExitStack() as opened:
        try:
            ledger = opened.enter_context(verifying(home))
        except Exception as exc:  # a refusal (no key, a damaged database) words stderr; stdout is still JSON
            _unopened(out, exc)
            raise
        progress = opened.enter_context(_progress(out.stderr))
        try:
            total: int | None = ledger.size()
        except (ValueError, TypeError):  # a seq that is not a number: the verifier names that row
            total = None
        except Exception as exc:  # no ledger table at all (dropped): unverified, not a traceback (red team 21d)
            _unverified(out, exc)
        task = progress.add_task("verifying ledger", total=total)
        try:
            report = ledger.verify(progress=lambda n: progress.advance(task, n), reference=reference)
        except Exception as exc:  # fail closed, and say so: a verifier that cannot finish has verified nothing
            _unverified(out, exc)
    instance_verified(report)

    def render(console: Console) -> None:
        state = "[green]ok[/]" if report.ok else "[bold red]FAILED[/]"
        console.print(
            f"ledger {state}: {report.entries:,} entries, {report.checkpoints:,} checkpoints, head {report.head}"
        )
        # which verifier answered (native C on SQLite, duckdb, reference): the same report either way
        console.print(f"  verified by: {report.method}", markup=False)
        for problem in report.problems:
            console.print(f"  seq {problem.seq}: {problem.kind}: {problem.detail}", markup=False)
        for warning in report.warnings:  # what could not be checked (no remembered head): ok, but said
            console.print(f"  warning: {warning}", markup=False)

    out.result(report.as_json(), render)
    if not report.ok:
        raise typer.Exit(1)


def _unopened(out: Output, exc: Exception) -> None:
    """With ``--json``, ``{"ok": false, "error": …}`` on stdout for a ledger that could not even be opened
    (red team 21d: a missing key or a damaged database left stdout empty); the caller re-raises, so the
    refusal's message and exit code are :func:`refusing`'s as before."""
    if out.json_mode and not isinstance(exc, (typer.Exit, typer.TyperException)):  # a usage error stays exit 2
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        out.result({"ok": False, "error": f"the ledger could not be opened: {reason}"}, lambda console: None)


def _unverified(out: Output, exc: Exception) -> NoReturn:
    """Exit 1 saying the ledger could not be verified (with ``--json``: ``{"ok": false, "error": …}``).

    Both verifiers report what they can read (an ``unreadable`` entry, FINDINGS21a F2); this is for what
    they cannot (the database itself failing), which must not look like a crash nor like a pass.
    """
    reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    message = f"the ledger could not be verified: {type(exc).__name__}: {reason}"
    if out.json_mode:
        out.result({"ok": False, "error": message}, lambda console: None)
    out.fail(message)


@ledger_cli.command()
@refusing
def prove(
    seq: Annotated[int, typer.Argument(min=1, help="Entry number.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Inclusion proof of entry SEQ against the latest signed checkpoint (made now if needed)."""
    out = Output(json_out)
    with open_instance(home, sweep=False) as instance:
        proof = instance.ledger.prove(seq, checkpoint_if_needed=True)
    data = proof.as_json()

    def render(console: Console) -> None:
        console.print(f"entry {seq} ({proof.entry_hash}) is leaf {seq - 1} of the tree of size {proof.tree_size}")
        console.print(f"root {proof.root}, signed {proof.checkpoint.time}")
        for step in proof.path:
            console.print(f"  {step}")

    out.result(data, render)


@ledger_cli.command()
@refusing
def consistency(
    old_size: Annotated[int, typer.Argument(min=0)],
    new_size: Annotated[int, typer.Argument(min=0)],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """RFC 9162 consistency proof between two tree sizes."""
    out = Output(json_out)
    with open_instance(home, sweep=False) as instance:
        proof = instance.ledger.consistency(old_size, new_size)
    out.result(proof.as_json(), lambda console: console.print_json(json.dumps(proof.as_json())))


@ledger_cli.command()
@refusing
def export(
    to: Annotated[Path | None, typer.Option("--to", help="File to write (JSON lines).")] = None,
    to_storage: Annotated[
        bool, typer.Option("--to-storage", help="Write it as a new object under ledger/exports/ in the storage.")
    ] = False,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Every entry then every checkpoint as JSON lines, for regulators."""
    out = Output(json_out)
    if (to is None) == (not to_storage):
        out.fail("give exactly one of --to FILE and --to-storage")
    if to is None:
        from app.ledger_publish import export_to_storage

        with open_instance(home) as instance:
            stored = export_to_storage(instance)
        out.result(
            stored, lambda c: c.print(f"wrote {stored['entries']:,} entries to {stored['key']} in {stored['storage']}")
        )
        return
    with open_instance(home, sweep=False) as instance:
        with _progress(out.stderr) as progress, to.open("w", encoding="utf-8") as handle:
            task = progress.add_task(f"exporting to {to}", total=instance.ledger.size())
            count, cps = instance.ledger.export(handle, progress=lambda n: progress.advance(task, n))
        public_key = instance.ledger.public_key_hex
    data = {"file": str(to), "entries": count, "checkpoints": cps, "public_key": public_key}
    out.result(
        data,
        lambda c: c.print(
            f"wrote {count:,} entries and {cps:,} checkpoints to {to}\n"
            f"verify: python -m ledger.verify {to} --public-key {public_key}"
        ),
    )


@ledger_cli.command()
@refusing
def show(
    home: HomeOption = None,
    json_out: JsonOption = False,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. job.submitted.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject, e.g. job:42.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    since: Annotated[str | None, typer.Option(help="Only entries at or after this UTC time (ISO 8601).")] = None,
    after: Annotated[int, typer.Option(min=0, help="Only entries after this seq (pagination).")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Entries matching the filters, oldest first."""
    from ledger import read_entries

    out = Output(json_out)
    # read-only: no writer's open, no signing key, no registry (issue 21); the query is Ledger.entries'
    with read_instance(home) as instance, reading(out, "the ledger", ValueError):
        found = read_entries(
            instance.rows, action=action, subject=subject, actor=actor, since=since, after=after, limit=limit
        )
    data = {
        "entries": [e.as_json() for e in found],
        "next_after": found[-1].seq if len(found) == limit else None,
    }

    def render(console: Console) -> None:
        table = Table()
        for column in ("seq", "time", "actor", "role", "action", "subject"):
            table.add_column(column, no_wrap=column in ("seq", "time"))
        for e in found:
            table.add_row(str(e.seq), e.time, e.actor, e.role, e.action, e.subject)
        console.print(table)

    out.result(data, render)


@ledger_cli.command()
@refusing
def checkpoint(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Sign a checkpoint of the current head now; prints it and its C2SP signed note."""
    from app.ledger_publish import publish as publish_ledger

    out = Output(json_out)
    with open_instance(home) as instance:
        signed = instance.ledger.checkpoint()
        note = instance.ledger.checkpoint_note(signed.tree_size)
        vkey = instance.ledger.verifier_for(signed.public_key).vkey
        published = publish_ledger(instance)  # the signer publishes what it signs (issue 19)
    data = {**signed.as_json(), "note": note, "vkey": vkey, "published": published.as_json()}
    out.result(data, lambda c: c.out(note, end="", highlight=False))


@ledger_cli.command()
@refusing
def cosign(
    tree_size: Annotated[int, typer.Argument(min=0, help="Size of the checkpoint the witness cosigned.")],
    line: Annotated[str, typer.Argument(help="The witness's cosignature/v1 signature line.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Store a witness cosignature; the witness must be in HOME/witnesses.policy."""
    from app.ledger_publish import publish as publish_ledger
    from ledger import PolicyError, WitnessPolicy

    out = Output(json_out)
    with open_instance(home) as instance:
        policy_file = instance.home / WITNESS_POLICY
        if not policy_file.exists():
            out.fail(f"no witnesses configured: write {policy_file} ('witness NAME VKEY' lines and 'quorum N')")
        try:
            policy = WitnessPolicy.parse(policy_file.read_text(encoding="utf-8"))
        except PolicyError as exc:
            out.fail(f"{policy_file}: {exc}")
        witness = instance.ledger.add_cosignature(tree_size, line, policy)
        published = publish_ledger(instance)  # the cosignature joins its checkpoint in the bucket (issue 19)
    out.result(
        {"tree_size": tree_size, "witness": witness, "published": published.as_json()},
        lambda c: c.print(f"stored {witness}'s cosignature"),
    )


@ledger_cli.command("public-key")
@refusing
def public_key(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """The key regulators verify checkpoints with: hex, and as a C2SP note verifier key.

    ``keys`` lists every key the ledger has had, oldest first, with the tree sizes each signed
    (SATRE 2.4.05: old checkpoints stay verifiable by the retired keys' public halves)."""
    out = Output(json_out)
    with open_instance(home, sweep=False) as instance:
        ledger = instance.ledger
        keys = [
            {**period.as_json(), "vkey": ledger.verifier_for(period.public_key).vkey}
            for period in ledger.key_schedule().periods
        ]
        data = {
            "public_key": ledger.public_key_hex,
            "vkey": ledger.verifier.vkey,
            "origin": ledger.origin,
            "keys": keys,
        }

    def render(console: Console) -> None:
        console.print(f"{data['public_key']}\n{data['vkey']}")
        if len(keys) > 1:
            for key in keys:
                until = key["until_size"] if key["until_size"] is not None else "now"
                console.print(f"  {key['key_id']}  {key['public_key']}  signs sizes {key['from_size']}..{until}")

    out.result(data, render)


@ledger_cli.command()
@refusing
def publish(
    home: HomeOption = None,
    json_out: JsonOption = False,
    recheck: Annotated[
        bool, typer.Option("--recheck", help="Compare every published object with the database, not only new ones.")
    ] = False,
) -> None:
    """Publish signed checkpoints, their notes, entries and cosignatures to the storage (catches up; idempotent).

    An object already published with the same bytes is fine; with other bytes the command fails
    loudly and overwrites nothing (the bucket was altered)."""
    from app.ledger_publish import publish as publish_ledger

    out = Output(json_out)
    with open_instance(home) as instance:
        result = publish_ledger(instance, recheck=recheck)
        where = instance.storage.url
    data = {**result.as_json(), "storage": where}
    out.result(
        data,
        lambda c: c.print(
            f"published {len(result.published)} checkpoint(s) to {where}: {result.written} objects written, "
            f"{result.present} already there; latest checkpoint {result.latest}"
        ),
    )


KeySpecs = Annotated[
    list[str],
    typer.Option(
        "--public-key",
        help="The log's key: the note verifier key `keyong ledger public-key` prints, 64 hex or a PEM file; "
        "repeat for keys across rotations.",
    ),
]


def _verifier_inputs(
    out: Output, public_key: list[str], witnesses: Path | None
) -> "tuple[list[Ed25519PublicKey], str | None, WitnessPolicy | None]":
    """The verifier keys, the one log they name (if any) and the witness policy; a clear refusal otherwise."""
    from ledger import PolicyError, WitnessPolicy, key_origin
    from ledger.verify import load_public_key

    try:
        keys = [load_public_key(spec) for spec in public_key]
    except (ValueError, OSError) as exc:
        out.fail(f"cannot read the public key: {exc}")
    origins = {origin for spec in public_key if (origin := key_origin(spec)) is not None}
    if len(origins) > 1:
        out.fail(f"the verifier keys name different logs: {', '.join(sorted(origins))}")
    policy = None
    if witnesses is not None:
        try:
            policy = WitnessPolicy.parse(witnesses.read_text(encoding="utf-8"))
        except (PolicyError, OSError) as exc:
            out.fail(f"{witnesses}: {exc}")
    return keys, next(iter(origins), None), policy


@ledger_cli.command("verify-published")
@refusing
def verify_published_command(
    public_key: KeySpecs,
    storage_url: Annotated[
        str | None,
        typer.Option(
            "--storage-url",
            help="s3://BUCKET/PREFIX, file://DIR or a directory (the storage root). Default: the storage "
            "--home's settings name (KEYONG_STORAGE_URL, else the home); no database is opened either way.",
        ),
    ] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="S3 endpoint URL (not for AWS itself).")] = None,
    witnesses: Annotated[
        Path | None, typer.Option("--witnesses", help="Witness policy ('witness NAME VKEY' lines, 'quorum N').")
    ] = None,
    state: Annotated[
        Path | None, typer.Option("--state", help="File keeping the last checkpoint you trusted (refuses a rollback).")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Verify the published ledger from the storage alone (no database, no home); exit 1 on any problem.

    S3 credentials are read from KEYONG_STORAGE_ACCESS_KEY_ID / KEYONG_STORAGE_SECRET_ACCESS_KEY (or AWS_*)."""
    from app.ledger_publish import storage_for_url
    from ledger import verify_published
    from ledger.verify import TrustedState

    out = Output(json_out)
    keys, origin, policy = _verifier_inputs(out, public_key, witnesses)
    trusted_state = TrustedState(state) if state is not None else None
    trusted = trusted_state.load() if trusted_state is not None else None
    storage = (
        storage_for_url(storage_url, endpoint=endpoint)
        if storage_url is not None
        else settings_for(home).open_storage()  # the settings only: the home's database is never read
    )
    with _progress(out.stderr) as progress:
        task = progress.add_task("verifying published ledger", total=None)
        report = verify_published(
            storage,
            keys,
            origin=origin,
            policy=policy,
            progress=lambda n: progress.advance(task, n),
            extra_sizes=(trusted["tree_size"],) if trusted else (),
        )
    data = {**report.as_json(), "storage": storage.url}
    if trusted_state is not None and report.ok and report.latest is not None:
        reason = trusted_state.check(report.latest, report.roots.get(trusted["tree_size"]) if trusted else None)
        if reason:
            report.add(None, "trusted_checkpoint", reason)
        else:
            trusted_state.save(report.latest)
            data["trusted"] = {"tree_size": report.latest["tree_size"], "root": report.latest["root"]}
        data.update(ok=report.ok, problems=[p.as_json() for p in report.problems])

    def render(console: Console) -> None:
        verdict = "[green]ok[/]" if report.ok else "[bold red]FAILED[/]"
        console.print(
            f"published ledger {verdict}: {report.entries:,} entries, {report.checkpoints:,} checkpoints, "
            f"head {report.head}"
        )
        if report.witnessed:
            console.print(f"  witnessed at size {report.witnessed['tree_size']}: {report.witnessed['witnesses']}")
        for problem in report.problems:
            console.print(f"  seq {problem.seq}: {problem.kind}: {problem.detail}", markup=False)
        for warning in report.warnings:  # what could not be checked (no remembered head): ok, but said
            console.print(f"  warning: {warning}", markup=False)

    out.result(data, render)
    if not report.ok:
        raise typer.Exit(1)


__all__ = ["LedgerError", "ledger_cli"]
