"""``keyong job …`` and ``keyong worker`` (DESIGN.md, Command-line contract).

The local CLI is the host administrator's tool: ``job submit`` and ``job mitigate`` act with the
operator's own key when one is given, else as the host for the operator (the ledger names the host as
actor, the operator as subject; issue 22, SATRE 3.1.06); ``job show`` prints output paths in the
home, which over the API an operator never gets.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
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
from app.cli.credentials import KeyFileOption, TotpOption, operator_actor
from core import Actor

job_cli = typer.Typer(help="Jobs of operators: submit, run, show, cancel.", no_args_is_help=True)


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _render_job(item: dict[str, Any]) -> Any:
    def render(console: Console) -> None:
        console.print(f"Job [bold]{item['job']}[/] ({item['kind']}, operator {item['operator']}): {item['state']}")
        console.print(f"  verdict: {item['verdict'] or 'not judged yet'}")
        if item.get("reason"):
            console.print(f"  reason: {item['reason']}")
        if item.get("resources"):
            r = item["resources"]
            console.print(f"  wall {r.get('wall')} s, CPU {r.get('cpu')} s, max RSS {r.get('max_rss')} bytes")
        for output in item["outputs"]:
            name, size, sha, path = (output.get(key) for key in ("name", "bytes", "sha256", "path"))
            console.print(f"  {name}  {size} bytes  sha256 {sha}  {path}", markup=False)

    return render


def _jobs_table(items: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in ("job", "operator", "kind", "state", "verdict", "created", "reason"):
        table.add_column(column, overflow="fold")
    for item in items:
        cells = ("job", "operator", "kind", "state", "verdict", "created_at", "reason")
        table.add_row(*(escape(str(item[key])) if item[key] is not None else "-" for key in cells))
    return table


def _warn_malformed(out: Output, items: list[dict[str, Any]]) -> None:
    """Name on stderr each job shown with stored fields it could not read (FINDINGS21a F4, F5)."""
    for item in items:
        if item.get("malformed"):
            fields = ", ".join(item["malformed"])
            out.note(f"job {item['job']}: stored {fields} could not be read (edited database?); shown empty")


@job_cli.command("submit")
@refusing
def job_submit(
    operator: Annotated[str, typer.Option("--operator", help="The operator the job is submitted for.")],
    dataset: Annotated[str, typer.Option("--dataset", help="Granted datasets, comma-separated.")],
    kind: Annotated[str, typer.Option("--kind", help="sql | python | dp-query | dp-train.")],
    file: Annotated[
        Path,
        typer.Option("--file", exists=True, dir_okay=False, readable=True, help="The query, script or DP spec (JSON)."),
    ],
    scenario: Annotated[str, typer.Option("--scenario", help="The declared application scenario (应用场景).")],
    title: Annotated[str, typer.Option("--title", help="A one-line title of the job (issue 18).")] = "",
    purpose: Annotated[str, typer.Option("--purpose", help="What the job's results are for (用途).")] = "",
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Submit a job: licence scope first, then quotas, then the queue."""
    out = Output(json_out)
    try:
        code = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        out.fail(f"{file} is not UTF-8 text")
    with open_instance(home) as instance:
        by = operator_actor(instance, key_file, operator, totp)
        job = instance.jobs.submit(operator, _csv(dataset), kind, code, scenario, by=by, title=title, purpose=purpose)
    out.result({"job": job, "state": "queued"}, lambda c: c.print(f"Job [bold]{job}[/] queued"))


@job_cli.command("cost")
@refusing
def job_cost(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A dp-query or dp-train spec.")
    ],
    kind: Annotated[str | None, typer.Option("--kind", help="dp-query | dp-train (default: from the spec).")] = None,
    operator: Annotated[str | None, typer.Option("--operator", help="Show this operator's remaining budget.")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="The dataset the spec would run over.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """What a DP spec would charge (ε, δ) before it runs; nothing is charged."""
    out = Output(json_out)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        out.fail(f"{file} is not UTF-8 text")
    with open_instance(home, sweep=False) as instance:
        item = instance.jobs.cost(kind, text, operator=operator, dataset=dataset)

    def render(console: Console) -> None:
        console.print(f"{item['kind']} costs ε = {item['epsilon']:g}, δ = {item['delta']:g}")
        if "noise_multiplier" in item:
            console.print(
                f"  DP-SGD: noise multiplier {item['noise_multiplier']:.4g}, sample rate {item['sample_rate']:.4g}, "
                f"{item['steps']} steps ({item['accountant']} accountant)"
            )
        if "epsilon_remaining" in item:
            fits = "fits" if item["fits"] else "does NOT fit"
            console.print(f"  remaining ε = {item['epsilon_remaining']:g}, δ = {item['delta_remaining']:g}: {fits}")

    out.result(item, render)


@job_cli.command("mitigate")
@refusing
def job_mitigate(
    job: int,
    suppress: Annotated[
        bool, typer.Option("--suppress", help="Suppress cells below the threshold, with secondary suppression.")
    ] = False,
    round_to: Annotated[
        int | None, typer.Option("--round-base", min=2, max=1000, help="Round counts to this base (e.g. 5).")
    ] = None,
    key_file: KeyFileOption = None,
    totp: TotpOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Queue a mitigated copy of a judged job's tables for the guard to re-check (ACRO's mitigations)."""
    with open_instance(home) as instance:
        by = operator_actor(instance, key_file, None, totp)  # with a key, mitigate checks the job is its own
        new = instance.jobs.mitigate(job, suppress=suppress, round_base=round_to, by=by)
    Output(json_out).result(
        {"job": new, "state": "queued", "source_job": job},
        lambda c: c.print(f"Mitigation of job {job} queued as job [bold]{new}[/]; run it, then read its verdict"),
    )


@job_cli.command("run-pending")
@refusing
def job_run_pending(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Run every queued job in this process, then exit (a long-running loop: `keyong worker`)."""
    out = Output(json_out)
    with open_instance(home) as instance:
        worker = instance.worker()
        try:
            views = worker.run_pending()
        except Exception as exc:
            _fail_unavailable(out, exc)
    items = [v.as_json() for v in views]

    def render(console: Console) -> None:
        console.print(_jobs_table(items, f"Ran {len(items)} job(s)") if items else "No queued jobs.")

    out.result({"ran": items}, render)


@job_cli.command("show")
@refusing
def job_show(job: int, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """A job's state, verdict, findings, outputs (with their paths in the home), reason and resources."""
    from sandbox import read_job

    out = Output(json_out)
    with read_instance(home) as instance, reading(out, f"job {job}"):
        item = read_job(instance.rows, job).as_json()
    _warn_malformed(out, [item])
    out.result(item, _render_job(item))


@job_cli.command("cancel")
@refusing
def job_cancel(job: int, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Cancel a queued job at once, or ask the worker of a running one to kill it."""
    with open_instance(home) as instance:
        item = instance.jobs.cancel(job, by=Actor.host()).as_json()
    message = "cancelled" if item["state"] == "cancelled" else "cancellation requested; its worker will kill it"
    Output(json_out).result(item, lambda c: c.print(f"Job [bold]{job}[/] {message}"))


@job_cli.command("list")
@refusing
def job_list(
    operator: Annotated[str | None, typer.Option("--operator", help="Only this operator's jobs.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many, newest first.")] = 100,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Jobs, newest first."""
    from sandbox import read_jobs

    out = Output(json_out)
    with read_instance(home) as instance, reading(out, "the jobs"):
        items = [v.as_json() for v in read_jobs(instance.rows, operator=operator, state=state, limit=limit)]
    _warn_malformed(out, items)
    out.result({"jobs": items}, lambda c: c.print(_jobs_table(items, "Jobs")))


@refusing
def worker(
    home: HomeOption = None,
    json_out: JsonOption = False,
    once: Annotated[bool, typer.Option("--once", help="Run the queued jobs, then exit.")] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between looks at an empty queue.")] = 2.0,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Worker mode, as on another host: only KEYONG_DATABASE_URL, KEYONG_STORAGE_URL, the worker's "
            "storage credentials and its data master key; never the vault key (also KEYONG_WORKER_MODE=1, or a "
            "home holding no instance).",
        ),
    ] = False,
) -> None:
    """Claim and run queued jobs in the sandbox until stopped (SIGTERM or Ctrl-C finish the current job first)."""
    out = Output(json_out)
    with _open_for_worker(home, remote) as instance:
        runner = instance.worker()
        try:
            if once:
                count = len(runner.run_pending())
            else:
                stop = threading.Event()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, lambda *_: stop.set())
                out.note(f"worker {runner.worker_id} polling every {poll:g} s (home {instance.home})")
                count = runner.run_forever(stop, poll=poll)
        except Exception as exc:
            _fail_unavailable(out, exc)
    out.result(
        {"worker": runner.worker_id, "ran": count}, lambda c: c.print(f"Worker {runner.worker_id} ran {count} job(s)")
    )


@contextmanager
def _open_for_worker(home: Path | None, remote: bool) -> Iterator[Any]:
    """The full instance on the server's own host; worker mode (``app.worker_instance``) elsewhere."""
    from app.instance import MARKER
    from app.worker_instance import WorkerInstance, WorkerSettings

    settings = settings_for(home)
    if remote or WorkerSettings().worker_mode or not (settings.home / MARKER).exists():
        with WorkerInstance.open(settings) as instance:
            yield instance
        return
    with open_instance(home) as full:
        yield full


def _fail_unavailable(out: Output, exc: Exception) -> NoReturn:
    """No sandbox, no jobs: say what to install; any other error propagates."""
    from sandbox import sandbox_unavailable_error

    unavailable = sandbox_unavailable_error()
    if unavailable is not None and isinstance(exc, unavailable):
        out.fail(f"the sandbox is unavailable, so no job was run: {exc}")
    if isinstance(exc, ImportError) and "sandbox" in str(exc):
        out.fail(f"the sandbox runner is not installed, so no job was run: {exc}")
    raise exc
