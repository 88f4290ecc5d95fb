"""The fast verifier's reading: one snapshot of the three ledger tables as Arrow.

Why reading has a module of its own: it is where the database hazards live, and the checking in
:mod:`ledger.fastverify` is pure column arithmetic once the tables are here. The tables are read
inside one read transaction (PostgreSQL: REPEATABLE READ, like the reference), the entries by two
connections at once that share the snapshot.

ADBC's SQLite driver carries its own copy of SQLite, and two copies of SQLite in one process
corrupt a database they both open: POSIX locks belong to the process, so when one copy opens or
closes the file it silently takes or drops the other's locks (sqlite.org/howtocorrupt.html,
"multiple copies of SQLite linked into the same application"; the tests did corrupt databases
this way). The application and the reference verifier use Python's sqlite3 on the same file, so
on SQLite the driver runs in a process of its own, which imports nothing but pyarrow and the
driver and hands the tables back as Arrow IPC files in shared memory, mapped here without a
copy. Starting it costs ~0.3 s, more than Python's sqlite3 (the application's own copy, so safe)
needs to read a small ledger: small ledgers are read that way. PostgreSQL has no such hazard and
is read with ADBC in this process.

Storage the vectorized path cannot represent exactly raises :class:`UnrepresentableError`, and
the caller hands the database to the reference verifier: on SQLite, a value whose storage class
is not the one the schema declares, or text that is not valid UTF-8; on either database, an
Arrow column of an unexpected type.
"""

from __future__ import annotations

import inspect
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import numpy as np
import pyarrow as pa
from sqlalchemy.engine import make_url

from ledger.checkpoints import SignedCheckpoint
from ledger.errors import UnrepresentableError
from ledger.native import BUSY_TIMEOUT_MS, sqlite_file
from ledger.queries import ENTRY_FIELDS

if TYPE_CHECKING:
    from adbc_driver_manager import AdbcConnection

__all__ = [
    "BUSY_TIMEOUT_MS",
    "READERS",
    "SQLITE_IN_PROCESS_ROWS",
    "Snapshot",
    "UnrepresentableError",
    "int64_array",
    "read_snapshot",
    "sqlite_file",
]

READERS = 2
"""Database connections reading the entries in parallel, all in one snapshot."""

SQLITE_IN_PROCESS_ROWS = 50_000
"""Below this many entries Python's sqlite3 reads an SQLite ledger faster than a reader process starts."""


_TEXT_COLUMNS = ENTRY_FIELDS[1:]

_SQLITE_TEXT_OK = " AND ".join(f"typeof({c}) = 'text'" for c in _TEXT_COLUMNS)

_QUERIES = {
    "sqlite": {
        # The note too: both verifiers check it (ledger.reference.note_problems).
        "checkpoints": "SELECT tree_size, root, time, signature, public_key, note, typeof(tree_size) = 'integer' AND "
        + " AND ".join(f"typeof({c}) = 'text'" for c in ("root", "time", "signature", "public_key", "note"))
        + " AS ok FROM ledger_checkpoints ORDER BY tree_size",
        "nodes": "SELECT level, idx, hash, typeof(level) = 'integer' AND typeof(idx) = 'integer' "
        "AND typeof(hash) = 'text' AS ok FROM ledger_nodes",
        "odd": f"SELECT count(*) AS n FROM ledger_entries WHERE ({{where}}) AND NOT ({_SQLITE_TEXT_OK})",
    },
    "postgresql": {
        "checkpoints": "SELECT tree_size, root, time, signature, public_key, note, true AS ok "
        "FROM ledger_checkpoints ORDER BY tree_size",
        "nodes": "SELECT level, idx, hash, true AS ok FROM ledger_nodes",
    },
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The three ledger tables as one transaction saw them."""

    checkpoints: list[SignedCheckpoint]
    nodes: dict[tuple[int, int], str]
    entries: pa.Table


class _AdbcReader:
    """ADBC connections to one database that read one snapshot of the ledger tables.

    Self-contained, imports included: the SQLite reader process runs this class's source (see
    :func:`_reader_code`). Writes each table as an Arrow IPC file into ``job["directory"]`` when
    one is given, else keeps it in :attr:`tables`.
    """

    def __init__(self, job: dict[str, Any]) -> None:
        import importlib

        driver = importlib.import_module(
            "adbc_driver_sqlite" if job["dialect"] == "sqlite" else "adbc_driver_postgresql"
        )
        self.job = job
        self.database = driver.connect(job["uri"])
        self.opened: list[AdbcConnection] = []
        self.tables: dict[str, Any] = {}

    def connect(self, autocommit: bool) -> AdbcConnection:
        from adbc_driver_manager import AdbcConnection

        connection = AdbcConnection(self.database)
        self.opened.append(connection)
        if not autocommit:
            connection.set_autocommit(False)  # the driver begins a transaction: one snapshot
        return connection

    def update(self, connection: AdbcConnection, sql: str) -> None:
        from adbc_driver_manager import AdbcStatement

        statement = AdbcStatement(connection)
        try:
            statement.set_sql_query(sql)
            statement.execute_update()
        finally:
            statement.close()

    def query(self, connection: AdbcConnection, sql: str, name: str | None = None) -> list[dict[str, Any]]:
        """The rows of ``sql``; or, given a ``name``, the result kept (or written) as that table."""
        import os

        import pyarrow as pa
        import pyarrow.ipc as ipc
        from adbc_driver_manager import AdbcStatement

        statement = AdbcStatement(connection)
        try:
            statement.set_sql_query(sql)
            handle, _ = statement.execute_query()
            reader = pa.RecordBatchReader._import_from_c(handle.address)
            if name is None:
                rows: list[dict[str, Any]] = reader.read_all().to_pylist()
                return rows
            if self.job["directory"] is None:
                self.tables[name] = reader.read_all()
                return []
            with ipc.new_file(os.path.join(self.job["directory"], name), reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
            return []
        finally:
            statement.close()

    def share_snapshot(self, readers: list[AdbcConnection]) -> None:
        """Make every reader's transaction see the same snapshot."""
        job = self.job
        if job["dialect"] == "sqlite":
            for reader in readers:
                self.update(reader, f"PRAGMA busy_timeout = {job['busy_ms']}")
            # Several connections fix the same snapshot only if no commit lands while they take
            # their first read: a guard holds the write lock meanwhile (writers wait milliseconds).
            guard = self.connect(True) if len(readers) > 1 else None
            if guard is not None:
                self.update(guard, f"PRAGMA busy_timeout = {job['busy_ms']}")
                self.update(guard, "BEGIN IMMEDIATE")
            for reader in readers:
                self.query(reader, "SELECT count(*) AS n FROM sqlite_master")
            if guard is not None:
                self.update(guard, "ROLLBACK")
            return
        snapshot = ""
        for reader in readers:
            self.update(reader, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if snapshot:
                self.update(reader, f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            elif len(readers) > 1:
                snapshot = str(self.query(reader, "SELECT pg_export_snapshot() AS s")[0]["s"])
            # As SQLite's busy timeout: a DBA's lock on a ledger table made verify wait as long as it was
            # held; now the read fails ("canceling statement due to lock timeout") and verify says so.
            self.update(reader, f"SET LOCAL lock_timeout = {int(job['busy_ms'])}")

    def read_tables(self, readers: list[AdbcConnection]) -> dict[str, Any]:
        """Checkpoints and nodes by the first reader, the entries split in halves by seq among all."""
        from concurrent.futures import ThreadPoolExecutor

        job = self.job
        self.query(readers[0], job["checkpoints"], "checkpoints")
        self.query(readers[0], job["nodes"], "nodes")
        bounds = self.query(readers[0], job["bounds"])[0]
        low, high = bounds["low"], bounds["high"]
        if low is None or low == high or len(readers) == 1:
            parts = ["1 = 1"]
        else:
            middle = int(low) + (int(high) - int(low)) // 2
            parts = [f"seq <= {middle}", f"seq > {middle}"]

        def read_part(index: int) -> int:
            reader, where = readers[index], parts[index]
            odd = int(self.query(reader, job["odd"].format(where=where))[0]["n"]) if job["odd"] else 0
            self.query(reader, job["entries"].format(where=where), f"entries-{index}")
            return odd

        with ThreadPoolExecutor(len(parts)) as pool:  # the drivers release the GIL while they read
            odd = sum(pool.map(read_part, range(len(parts))))
        return {"parts": [f"entries-{i}" for i in range(len(parts))], "odd": odd}

    def close(self) -> None:
        from contextlib import suppress

        for connection in reversed(self.opened):
            with suppress(Exception):  # an autocommit connection has nothing to roll back
                connection.rollback()
            connection.close()
        self.database.close()


def _read_job(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One snapshot of the three ledger tables through ADBC, entries by two connections at once.

    Returns ``({"parts": names, "odd": N}, tables)``: the entry parts in seq order, and how many
    entries hold a value of another storage class than the schema's (SQLite).
    """
    adbc = _AdbcReader(job)
    try:
        readers = [adbc.connect(False) for _ in range(job["readers"])]
        adbc.share_snapshot(readers)
        return adbc.read_tables(readers), adbc.tables
    finally:
        adbc.close()


def _reader_main(job_json: str) -> None:
    """The SQLite reader process: runs :func:`_read_job` and prints its status as JSON."""
    import json
    import sys

    status, _ = _read_job(json.loads(job_json))
    sys.stdout.write(json.dumps(status))


def _reader_code() -> str:
    """What the reader process runs: the reader's own source, so that it need not import
    this package (which pulls in SQLAlchemy, DuckDB and more: half a second)."""
    try:
        return "from __future__ import annotations\nfrom typing import Any\n\n" + "\n\n".join(
            inspect.getsource(code) for code in (_AdbcReader, _read_job, _reader_main)
        )
    except OSError:  # no source shipped: import them the slow way
        root = str(Path(__file__).resolve().parent.parent)
        return f"import sys\nsys.path.insert(0, {root!r})\nfrom ledger.fastread import _reader_main\n"


def _scratch_directory() -> str | None:
    """Shared memory when the system has it, so that the tables never touch a disk."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def libpq_uri(url: str) -> str:
    """``url`` as the URI libpq reads, its query percent-encoded (``%20`` for a space), never ``+``.

    Why: SQLAlchemy renders a query the HTML-form way (a space as ``+``), which libpq does not decode. A URL
    with two settings in ``options`` (``-csearch_path=s -cstatement_timeout=0``) had the verifier read the
    schema ``s+-cstatement_timeout=0``: one a hostile DBA may create with an untouched copy of the ledger, so
    that verify said ok of the tampered one the application writes (red team 22).
    """
    parsed = make_url(url)
    base = parsed.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    if not parsed.query:
        return base
    return f"{base}?{urlencode(dict(parsed.query), doseq=True, quote_via=quote)}"


#: libpq waits at least this many seconds for a connection, whatever it is asked (its documented minimum).
LIBPQ_MIN_CONNECT_TIMEOUT = 2


def bounded_connect(url: str, busy_ms: int) -> str:
    """``url`` with libpq's ``connect_timeout`` no longer than the read's wait (``busy_ms``, in whole seconds,
    at least libpq's 2), unless it already says less.

    Why: the fast reader opens connections of its own, and libpq waits for an answer as long as TCP lets it: a
    database address that stopped answering new connections (a partition, a pooler or failover address that
    hangs) held ``GET /ledger/verify`` and a server worker without bound (red team 23b F5)."""
    parsed = make_url(url)
    seconds = max(LIBPQ_MIN_CONNECT_TIMEOUT, -(-int(busy_ms) // 1000))
    given = parsed.query.get("connect_timeout")
    if isinstance(given, str) and given.strip().isdigit() and 0 < int(given) <= seconds:
        return url
    return parsed.update_query_dict({"connect_timeout": str(seconds)}).render_as_string(hide_password=False)


def _job(url: str, busy_ms: int = BUSY_TIMEOUT_MS) -> dict[str, Any]:
    """What to read and how: dialect, driver URI, the queries, and how many parallel readers."""
    parsed = make_url(url)
    dialect = parsed.get_backend_name()
    if dialect == "sqlite":
        uri = path = sqlite_file(url)
        # A read-only open "succeeds" at BEGIN IMMEDIATE without locking: no guard, one reader.
        readers = READERS if os.access(path, os.W_OK) else 1
    elif dialect == "postgresql":
        uri = libpq_uri(bounded_connect(url, busy_ms))
        readers = READERS
    else:
        raise ValueError(f"fast_verify supports SQLite and PostgreSQL, not {dialect!r}")
    queries = _QUERIES[dialect]
    return {
        "dialect": dialect,
        "uri": uri,
        "directory": None,
        "readers": readers,
        "busy_ms": busy_ms,
        "checkpoints": queries["checkpoints"],
        "nodes": queries["nodes"],
        "bounds": "SELECT (SELECT min(seq) FROM ledger_entries) AS low, (SELECT max(seq) FROM ledger_entries) AS high",
        "odd": queries.get("odd", ""),
        "entries": f"SELECT {', '.join(ENTRY_FIELDS)} FROM ledger_entries WHERE {{where}} ORDER BY seq",
    }


def _load(path: str) -> pa.Table:
    """An Arrow IPC file, memory-mapped: no copy, and the file may be deleted right away (the
    table's buffers keep the mapping alive)."""
    return pa.ipc.open_file(pa.memory_map(path)).read_all()


def _read_in_child(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`_read_job` in a process of its own (SQLite through ADBC: see above)."""
    scratch = _scratch_directory()
    with tempfile.TemporaryDirectory(prefix="keyong-verify-", dir=scratch, ignore_cleanup_errors=True) as directory:
        job = {**job, "directory": directory}
        code = f"{_reader_code()}\n\n_reader_main(__import__('sys').argv[1])\n"
        child = subprocess.run([sys.executable, "-c", code, json.dumps(job)], capture_output=True, text=True)
        if child.returncode:
            lines = child.stderr.strip().splitlines() or [f"exit status {child.returncode}"]
            raise RuntimeError(f"reading the ledger failed: {lines[-1]}")
        status = json.loads(child.stdout)
        names = ["checkpoints", "nodes", *status["parts"]]
        return status, {name: _load(os.path.join(directory, name)) for name in names}


# pyarrow imports pandas (0.4 s) the first time it converts Python or NumPy objects itself
# (pa.array, to_numpy); these build the few arrays needed from raw buffers instead.


def int64_array(values: Any) -> pa.Array:
    """Python ints as an int64 Arrow array."""
    data = np.fromiter(values, dtype=np.int64, count=len(values))
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def _string_array(values: Any) -> pa.Array:
    """Python strings as a large_string Arrow array."""
    encoded = [value.encode() for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.large_string(), len(encoded), buffers)


def _read_with_sqlite3(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A small SQLite ledger through Python's sqlite3, in one transaction; ``None`` when it is large."""
    connection = sqlite3.connect(job["uri"], timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        connection.execute("BEGIN")

        def rows(sql: str) -> list[dict[str, Any]]:
            cursor = connection.execute(sql)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        ((low, high),) = connection.execute(job["bounds"]).fetchall()
        if isinstance(low, str | bytes) or isinstance(high, str | bytes):  # SQLite sorts text after numbers
            raise UnrepresentableError("a seq is text or a BLOB: the reference names the row")
        if (0 if low is None else high - low + 1) >= SQLITE_IN_PROCESS_ROWS:
            return None
        tables: dict[str, Any] = {"checkpoints": rows(job["checkpoints"]), "nodes": rows(job["nodes"])}
        ((odd,),) = connection.execute(job["odd"].format(where="1 = 1")).fetchall()
        if odd:  # a BLOB among the text: the caller hands the ledger to the reference
            return {"parts": [], "odd": odd}, tables
        columns = list(zip(*connection.execute(job["entries"].format(where="1 = 1")).fetchall(), strict=True))
        columns = columns or [()] * len(ENTRY_FIELDS)
        arrays = [int64_array(columns[0])] + [_string_array(column) for column in columns[1:]]
        tables["entries-0"] = pa.Table.from_arrays(arrays, names=list(ENTRY_FIELDS))
        return {"parts": ["entries-0"], "odd": odd}, tables
    finally:
        connection.close()  # rolls the read transaction back


def _rows_of(table: pa.Table | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(table, list):
        return table
    table.validate(full=True)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def read_snapshot(url: str, busy_ms: int = BUSY_TIMEOUT_MS) -> Snapshot:
    """Checkpoints, stored nodes and entries as one read transaction sees them; a read waits on a lock (SQLite's
    busy timeout, PostgreSQL's ``lock_timeout``) at most ``busy_ms``."""
    job = _job(url, busy_ms)
    if job["dialect"] == "postgresql":
        status, tables = _read_job(job)
    else:
        try:
            small = _read_with_sqlite3(job)
        except sqlite3.OperationalError as exc:  # stored text that is not UTF-8: the reference names the row
            if "Could not decode to UTF-8" not in str(exc):
                raise
            raise UnrepresentableError("the ledger holds text that is not UTF-8") from None
        status, tables = small if small is not None else _read_in_child(job)
    if status["odd"]:
        raise UnrepresentableError("an entry value has an unexpected storage class")
    try:
        cp_rows, node_rows = (_rows_of(tables[name]) for name in ("checkpoints", "nodes"))
    except (pa.ArrowInvalid, UnicodeDecodeError):  # text that is not UTF-8 (SQLite): the reference fails on it
        raise UnrepresentableError("a checkpoint or node holds text that is not UTF-8") from None
    if not all(row["ok"] for row in cp_rows) or not all(row["ok"] for row in node_rows):
        raise UnrepresentableError("a checkpoint or node value has an unexpected storage class")
    parts = [tables[name] for name in status["parts"]]
    if len({table.schema for table in parts}) > 1:
        raise UnrepresentableError("the two halves of the entries arrived with different column types")
    entries = pa.concat_tables(parts)
    if entries.num_rows:
        if not pa.types.is_integer(entries.column("seq").type):
            raise UnrepresentableError("seq is not an integer column")
        for name in _TEXT_COLUMNS:
            column = entries.column(name)
            if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                raise UnrepresentableError(f"column {name} arrived as {column.type}")
            try:
                column.validate(full=True)  # SQLite keeps any bytes as "text"; the reference would fail to decode
            except pa.ArrowInvalid:
                raise UnrepresentableError(f"column {name} holds text that is not UTF-8") from None
    checkpoints = [
        SignedCheckpoint(r["tree_size"], r["root"], r["time"], r["signature"], r["public_key"], r["note"])
        for r in cp_rows
    ]
    nodes = {(r["level"], r["idx"]): r["hash"] for r in node_rows}
    return Snapshot(checkpoints, nodes, entries)
