"""``keyong serve``: the API and the console, with the workers that run the jobs submitted to them.

Why workers come with the server (issue 17): a job submitted while no worker runs stays ``queued``
forever, so ``serve`` supervises ``--workers N`` (default 1) real ``keyong worker`` loops beside
uvicorn; ``--workers 0`` is an API-only node whose jobs wait for workers started elsewhere.

Why child processes and not threads: a worker's jobs run under bubblewrap with ``--die-with-parent``
and its export guard is CPU-bound, so a worker is best its own process — one that crashes (or is
killed) takes only its own run with it, and the supervisor starts another after a back-off that
doubles while it keeps failing (a missing sandbox must not spin). The workers run in sessions of
their own so a terminal's Ctrl-C reaches the server only, which then stops them in order: SIGTERM
(a worker finishes its current job), SIGKILL after :data:`STOP_GRACE` seconds. Should the server
itself die, the kernel sends each worker SIGTERM (``PR_SET_PDEATHSIG``). Their stdout goes to the
server's stderr, so ``serve --json`` still prints exactly one JSON document.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.conventions import HomeOption, JsonOption, Output, refusing, settings_for

#: Seconds a worker is given to finish its current job after SIGTERM before it is killed.
STOP_GRACE = 30.0
#: A worker that ran this long before it died is restarted at once; a quicker death doubles the wait.
HEALTHY_AFTER = 60.0
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class _Slot:
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    due: float = 0.0  # monotonic time of the next start
    backoff: float = FIRST_BACKOFF
    restarts: int = 0


@dataclass
class Supervisor:
    """Keeps ``count`` copies of ``command`` running until :meth:`stop`."""

    command: list[str]
    count: int
    note: Callable[[str], None]
    grace: float = STOP_GRACE
    poll: float = 0.5
    slots: list[_Slot] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.slots = [_Slot() for _ in range(self.count)]
        if self.count:
            self._thread = threading.Thread(target=self._run, name="worker-supervisor", daemon=True)
            self._thread.start()

    def pids(self) -> list[int]:
        return [s.process.pid for s in self.slots if s.process is not None and s.process.poll() is None]

    def _spawn(self, slot: _Slot) -> None:
        try:
            slot.process = subprocess.Popen(  # our own interpreter and CLI, no shell
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=sys.stderr.fileno(),  # the server's stdout is its JSON document only
                start_new_session=True,
                preexec_fn=_die_with_parent,  # prctl only, between fork and exec
            )
            slot.started = time.monotonic()
        except OSError as exc:
            self.note(f"could not start a worker: {exc}")
            slot.process = None
            self._later(slot, ran=0.0)

    def _later(self, slot: _Slot, *, ran: float) -> None:
        slot.backoff = FIRST_BACKOFF if ran >= HEALTHY_AFTER else min(slot.backoff * 2, MAX_BACKOFF)
        slot.due = time.monotonic() + (0.0 if ran >= HEALTHY_AFTER else slot.backoff)

    def _run(self) -> None:
        # Spawned from this one long-lived thread: PR_SET_PDEATHSIG fires when the spawning thread ends.
        while not self._stop.is_set():
            now = time.monotonic()
            for slot in self.slots:
                if slot.process is not None and slot.process.poll() is not None:
                    code, ran = slot.process.returncode, now - slot.started
                    slot.process = None
                    slot.restarts += 1
                    self._later(slot, ran=ran)
                    self.note(f"worker exited with code {code} after {ran:.0f} s; restarting in {slot.due - now:.0f} s")
                if slot.process is None and now >= slot.due and not self._stop.is_set():
                    self._spawn(slot)
            self._stop.wait(self.poll)
        self._terminate()

    def _terminate(self) -> None:
        running = [s.process for s in self.slots if s.process is not None and s.process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.note(f"worker {process.pid} did not stop within {self.grace:g} s; killing it")
                process.kill()
                process.wait()

    def stop(self) -> None:
        """Stop the workers (SIGTERM, then SIGKILL after ``grace``) and wait for them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def worker_command(home: Path, poll: float) -> list[str]:
    return [sys.executable, "-m", "app.cli", "worker", "--home", str(home), "--poll", f"{poll:g}"]


def sweep_retention(instance: Any, out: Output) -> None:
    """At start, purge the dataset versions whose retention ended and that nothing holds (SATRE 3.1.09;
    each deletion ledgered like ``keyong retention sweep``). A failure is reported, never fatal: serving
    goes on and the next start, or the CLI, sweeps again."""
    from core import Actor

    try:
        swept = instance.registry.retention.sweep(by=Actor.host())
    except Exception as exc:  # reported; the server must still start
        out.note(f"retention sweep failed: {exc}")
        return
    for item in swept["purged"]:
        out.note(f"retention: purged {item['dataset']} version(s) {item['versions']} ({item['reason']})")
    if swept["held"]:
        out.note(f"retention: {len(swept['held'])} due version(s) held; see `keyong retention due`")


@refusing  # a refused transport (or home) is exit 1 with the reason, never a traceback
def serve(
    home: HomeOption = None,
    json_out: JsonOption = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            max=64,
            help="Worker processes to run and supervise beside the server; 0: an API-only node.",
        ),
    ] = 1,
    poll: Annotated[
        float, typer.Option("--poll", min=0.1, help="Seconds between a worker's looks at an empty queue.")
    ] = 2.0,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="PEM certificate (chain): serve HTTPS (with --tls-key).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
    behind_tls_proxy: Annotated[
        bool,
        typer.Option(
            "--behind-tls-proxy",
            help="A TLS-terminating proxy in front is the only way in: allows a non-loopback bind without "
            "--tls-cert, and still sends HSTS and Secure cookies.",
        ),
    ] = False,
) -> None:
    """Serve the API (OpenAPI at /docs) and the web console (/console) with uvicorn, and run the workers.

    Only a loopback address may be served without TLS (SATRE 2.8.01, ``app.transport``)."""
    import uvicorn

    from app.api import create_app
    from app.transport import plan_transport

    out = Output(json_out)
    # Decided before the home is opened or a socket bound: a refused transport leaves nothing running.
    transport = plan_transport(host, port, certfile=tls_cert, keyfile=tls_key, behind_tls_proxy=behind_tls_proxy)
    settings = settings_for(home)
    if transport.secure:
        settings = settings.model_copy(update={"transport_secure": True})
    app = create_app(settings)  # opens (and migrates) the home before any worker starts
    sweep_retention(app.state.instance, out)
    url = transport.url
    if json_out:
        out.result(
            {
                "home": str(settings.home),
                "url": url,
                "docs": f"{url}/docs",
                "console": f"{url}/console",
                "workers": workers,
            },
            print,
        )
    else:
        out.note(f"Keyong at {url} (console: /console, API docs: /docs, home {settings.home})")
    if workers:
        out.note(f"running {workers} supervised worker(s); stopping the server stops them")
    else:
        out.note("API-only node (--workers 0): submitted jobs wait for a `keyong worker` on this home")
    supervisor = Supervisor(worker_command(settings.home, poll), workers, out.note)
    # uvicorn handles SIGINT/SIGTERM while it runs and re-raises the signal once shut down; these
    # handlers make that re-raise harmless, so the workers are stopped below before the process ends.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    supervisor.start()
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=not json_out, **transport.uvicorn_options())
    finally:
        supervisor.stop()
        out.note("server and workers stopped")


__all__ = ["Supervisor", "serve", "worker_command"]
