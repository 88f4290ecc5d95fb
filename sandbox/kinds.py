"""The job kinds an operator may submit and how each becomes a sandboxed process (DESIGN.md "Job kinds").

Why each kind is a fixed program run *inside* the sandbox rather than in the worker: the operator's
SQL is as untrusted as its Python. A DuckDB query run by the worker could read the vault or the
instance home (``read_csv``, ``ATTACH``, ``COPY … TO``, ``INSTALL``/``LOAD`` of extensions), so
the query too runs under :func:`sandbox.runner.run`, and DuckDB there is locked down on top: the
granted copies are loaded first, then external access, extension auto-install/auto-load and
community/unsigned extensions are switched off and the configuration is locked, so nothing the
query says can switch them back (原始数据不出域; GB/T 35273-2020 §6.3).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

from dp import DP_KINDS, PROGRAMS, DpKind, program_files, program_source
from sandbox.pool import SandboxPool, prestarted
from sandbox.runner import Limits, RunResult, run, sandbox_python

__all__ = [
    "DP_KINDS",
    "KINDS",
    "PROGRAMS",
    "SQL_RUNNER",
    "JobKind",
    "job_command",
    "prestarted",
    "program_source",
    "run_job",
]


class JobKind(StrEnum):
    """Every kind of job the queue holds: the single definition the worker, submission and the
    console ask (the DP members take their values from ``dp.DpKind``, which ``dp`` needs below us)."""

    SQL = "sql"
    PYTHON = "python"
    DP_QUERY = DpKind.QUERY.value
    DP_TRAIN = DpKind.TRAIN.value
    #: Not submitted by an operator: queued by the platform over a judged job's outputs (``sandbox.mitigation``).
    MITIGATION = "mitigation"


#: The kinds an operator may submit (DESIGN.md "Job kinds"), in the order they are offered.
KINDS: tuple[str, ...] = (JobKind.SQL.value, JobKind.PYTHON.value, *DP_KINDS)

# Runs inside the sandbox as /job/run_sql.py; the query is /job/query.sql. argv[1]: DuckDB's memory
# limit in MiB (below the sandbox's so DuckDB spills or fails cleanly before the kernel kills it).
SQL_RUNNER = r'''
"""Answer one DuckDB SELECT over the granted datasets; write /out/result.parquet and /out/result.csv."""
import pathlib
import sys

import duckdb
import pyarrow.csv
import pyarrow.parquet


def quoted(name):
    return '"' + name.replace('"', '""') + '"'


def main():
    query = pathlib.Path("/job/query.sql").read_text(encoding="utf-8")
    memory_mib = int(sys.argv[1])
    pathlib.Path("/tmp/duckdb").mkdir(exist_ok=True)
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": 1,
            "memory_limit": f"{memory_mib}MiB",
            "temp_directory": "/tmp/duckdb",
            "extension_directory": "/tmp/duckdb/extensions",
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
        },
    )
    con.execute("CREATE SCHEMA granted")
    for path in sorted(pathlib.Path("/data").glob("*.parquet")):
        name = path.name[: -len(".parquet")]
        literal = "'" + str(path).replace("'", "''") + "'"
        con.execute(f"CREATE TABLE granted.{quoted(name)} AS SELECT * FROM read_parquet({literal})")
        con.execute(f"CREATE VIEW main.{quoted(name)} AS SELECT * FROM granted.{quoted(name)}")
    # From here on the query can reach nothing but the tables above.
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        print(f"SQL error: {exc}", file=sys.stderr)
        return 1
    if len(statements) != 1:
        print(f"refused: a sql job is exactly one query, got {len(statements)} statements", file=sys.stderr)
        return 2
    if statements[0].type != duckdb.StatementType.SELECT:
        print(f"refused: only a SELECT query may run, got {statements[0].type.name}", file=sys.stderr)
        return 2
    try:
        table = con.sql(query).to_arrow_table()
    except duckdb.Error as exc:
        print(f"SQL error: {exc}", file=sys.stderr)
        return 1
    pyarrow.parquet.write_table(table, "/out/result.parquet")
    try:
        pyarrow.csv.write_csv(table, "/out/result.csv")
    except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError):
        table.to_pandas().to_csv("/out/result.csv", index=False)
    return 0


sys.exit(main())
'''


def run_job(
    kind: str,
    code: str,
    *,
    datasets: Mapping[str, Path],
    out_dir: Path,
    limits: Limits | None = None,
    pool: SandboxPool | None = None,
    stop: threading.Event | None = None,
) -> RunResult:
    """Run one job of ``kind`` over ``datasets`` (name -> desensitized Parquet copy) in the sandbox.

    ``sql``: ``code`` is one DuckDB SELECT; each dataset is a view named after it; the result is
    ``result.parquet`` and ``result.csv``. ``python``: ``code`` is a script run as
    ``/job/script.py`` with cwd ``/out``, datasets at ``/data/NAME.parquet``; besides pandas, numpy,
    duckdb, scikit-learn, diffprivlib and opacus, matplotlib (``Agg``; the system fonts, CJK included
    where installed) draws charts into ``/out`` — an image drawn here is reviewed, never passed
    unread, since the guard cannot audit pixels. ``dp-query`` /
    ``dp-train``: ``code`` is the platform's resolved plan (JSON), answered by the platform's program.
    ``pool``: pre-started sandboxes (:mod:`sandbox.prestart`); the job runs in one of ``kind`` when one
    is ready, else in a fresh sandbox — the same isolation and the same result either way.
    ``stop``: the job's stop signal, fresh or warm (default: the thread's ``sandbox.supervision.STOP``,
    which the worker's ``sandbox.heartbeat.watch`` sets); once set, this job's run is killed.
    Raises ValueError for an unknown kind, SandboxUnavailable when the sandbox cannot run.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; known kinds: {', '.join(KINDS)}")
    limits = limits or Limits()
    argv, files = job_command(kind, code, limits)
    if pool is not None:
        result = pool.run(kind, argv, data=datasets, out_dir=out_dir, limits=limits, files=files, stop=stop)
        if result is not None:
            return result
    return run(argv, data=datasets, out_dir=out_dir, limits=limits, files=files, stop=stop)


def job_command(kind: str, code: str, limits: Limits) -> tuple[list[str], dict[str, bytes]]:
    """What runs inside for a job of ``kind``: its argv and its files under ``/job/``."""
    python = [sandbox_python(), "-I", "-B"]
    if kind == JobKind.PYTHON:
        return [*python, "/job/script.py"], {"script.py": code.encode("utf-8")}
    if kind in PROGRAMS:
        # ``code`` is the platform's resolved plan (``dp.plans``), never operator code.
        files = program_files()
        files["plan.json"] = code.encode("utf-8")
        return [*python, f"/job/{PROGRAMS[kind]}"], files
    duckdb_mib = max(64, limits.memory_bytes // (1 << 20) // 2)
    return (
        [*python, "/job/run_sql.py", str(duckdb_mib)],
        {"query.sql": code.encode("utf-8"), "run_sql.py": SQL_RUNNER.encode("utf-8")},
    )


def scratch_out_dir() -> Path:
    """A fresh host directory for a job's ``/out`` when the caller has none (tests, benchmarks)."""
    return Path(tempfile.mkdtemp(prefix="keyong-out-")) / "out"
