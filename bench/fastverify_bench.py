"""fast_verify against the reference Ledger.verify, in the same run, on SQLite and PostgreSQL.

    python bench/fastverify_bench.py [--entries 1000000] [--db sqlite,postgresql] [--repeat 3]

Builds a ledger of ``--entries`` entries through ``Ledger.append_many`` in batches of 5,000 (SQLite
in a temporary directory; PostgreSQL in a fresh database at KEYONG_TEST_POSTGRES_URL's server,
dropped afterwards), then times the verifiers on it and checks that their reports are
identical. Prints one JSON line per database: each fast path's entries/s (best of ``--repeat``;
``native``, the C extension, on SQLite when it is built, and ``duckdb``) beside the target, the
reference's (best of ``--reference-repeat``), peak memory, the load average and the machine.
Each figure also comes as CPU seconds (this process and its reader process): on a machine shared
with other work the wall clock counts their turns too. Issue 21's target for verification is
>= 500,000 entries/s on 2 cores at 1,000,000.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from benchinfo import emit, machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.database import make_engine, migrate
from ledger import Ledger, Record, VerifyReport, native
from ledger.fastverify import PATHS, default_path, fast_verify

PG_ADMIN = os.environ.get("KEYONG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BATCH = 5000
TARGET = 500_000
T = TypeVar("T")


def record(i: int) -> Record:
    """The same entries as bench/ledger.py: a realistic payload with non-ASCII text."""
    return Record(
        f"operator-{i % 7}",
        "operator",
        "job.submitted",
        f"job:{i}",
        {"dataset": "residents", "kind": "sql", "scenario": "城市治理", "sha256": f"{i:064x}"},
    )


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (fast_verify's workers and reader)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_runs(repeat: int, fn: Callable[[], T]) -> tuple[float, float, T]:
    """Best wall seconds and best CPU seconds of ``repeat`` runs, and the last result."""
    best_wall, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), cpu_seconds()
        result = fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, cpu_seconds() - cpu)
    return best_wall, best_cpu, result  # type: ignore[return-value]


class PeakMemory:
    """Peak resident memory of this process plus its children (fast_verify's SQLite reader), in MB.

    Sampled from /proc every 20 ms in a thread, in a run of its own: getrusage cannot tell a
    child's peak apart from what it inherited at fork, and sampling would disturb a timed run.
    """

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss_kb(pid: int | str) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _children(self) -> list[str]:
        me = str(os.getpid())
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if stat.rsplit(")", 1)[1].split()[1] == me:
                    found.append(entry.name)
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            total = self._rss_kb(os.getpid()) + sum(self._rss_kb(pid) for pid in self._children())
            self.peak_kb = max(self.peak_kb, total)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return round(self.peak_kb / 1024, 1)


def path_figures(path: str, url: str, ledger: Ledger, repeat: int) -> tuple[dict[str, object], VerifyReport]:
    """One fast path's best wall and CPU seconds, its rate, and its peak memory (in a run of its own)."""
    key, key_hex = ledger.public_key, ledger.public_key_hex
    seconds, cpu, report = timed_runs(repeat, lambda: fast_verify(url, key, key_hex, path=path))
    with PeakMemory() as memory:
        fast_verify(url, ledger.public_key, ledger.public_key_hex, path=path)
    rate = report.entries / seconds
    figures = {
        f"{path}_method": report.method,  # which verifier answered: the path itself, or the reference's fallback
        f"{path}_seconds": round(seconds, 3),
        f"{path}_entries_per_s": round(rate),
        f"{path}_cpu_seconds": round(cpu, 3),
        # An upper bound for two idle cores: entries over half the CPU seconds.
        f"{path}_entries_per_cpu_s_x2": round(report.entries / (cpu / 2)),
        f"{path}_meets_target": rate >= TARGET,
        f"{path}_peak_resident_mb_during": memory.mb,
    }
    return figures, report


def run(db: str, url: str, entries: int, repeat: int, reference_repeat: int) -> None:
    engine = make_engine(url)
    migrate(engine)
    ledger = Ledger(engine, Ed25519PrivateKey.generate(), origin="keyong.local/bench")
    started = time.perf_counter()
    for first in range(0, entries, BATCH):
        ledger.append_many(record(i) for i in range(first, min(entries, first + BATCH)))
    build_seconds = time.perf_counter() - started

    default = default_path(url)
    paths = [default, *(p for p in PATHS if p != default and (p != "native" or (db == "sqlite" and native.AVAILABLE)))]
    resident_before = PeakMemory._rss_kb(os.getpid()) / 1024
    figures: dict[str, object] = {}
    reports = {}
    for path in paths:
        found, reports[path] = path_figures(path, url, ledger, repeat)
        figures.update(found)
    reference_seconds, reference_cpu, reference = timed_runs(reference_repeat, lambda: ledger.verify(reference=True))
    fast = reports[default]
    fast_seconds = float(figures[f"{default}_seconds"])  # type: ignore[arg-type]
    emit(
        {
            "bench": "ledger_fast_verify",
            "db": db,
            "entries": fast.entries,
            "checkpoints": fast.checkpoints,
            "ok": fast.ok,
            # fast_verify's default path here (native on SQLite when the C extension is built)
            "default_path": default,
            "paths": paths,
            "same_report": all(report.as_json() == reference.as_json() for report in reports.values()),
            "target_entries_per_s": TARGET,
            **figures,
            "reference_seconds": round(reference_seconds, 3),
            "reference_entries_per_s": round(reference.entries / reference_seconds),
            "reference_cpu_seconds": round(reference_cpu, 3),
            "speedup_over_reference": round(reference_seconds / fast_seconds, 2),
            "repeat": repeat,
            "reference_repeat": reference_repeat,
            "load_average_1min": round(os.getloadavg()[0], 2),
            # Resident memory of this process (which built the ledger) before the runs; each path's
            # peak is measured in a run of its own, this process and its reader process together.
            "resident_mb_before": round(resident_before, 1),
            "build_seconds": round(build_seconds, 1),
            "machine": machine(
                duckdb=version("duckdb"),
                pyarrow=version("pyarrow"),
                adbc_driver_sqlite=version("adbc-driver-sqlite"),
                adbc_driver_postgresql=version("adbc-driver-postgresql"),
                sqlite=sqlite3.sqlite_version,
                openssl=ssl.OPENSSL_VERSION,
                native_extension=native.AVAILABLE,
            ),
        }
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=3, help="fast_verify runs; the best counts")
    parser.add_argument("--reference-repeat", type=int, default=1, help="reference runs; the best counts")
    args = parser.parse_args()
    for db in args.db.split(","):
        if db == "sqlite":
            with tempfile.TemporaryDirectory() as directory:
                url = f"sqlite:///{Path(directory) / 'bench.db'}"
                run(db, url, args.entries, args.repeat, args.reference_repeat)
        elif db == "postgresql":
            name = f"keyong_fastverify_{uuid.uuid4().hex[:10]}"
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
                run(db, url, args.entries, args.repeat, args.reference_repeat)
            finally:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        else:
            parser.error(f"unknown database {db!r}")


if __name__ == "__main__":
    main()
