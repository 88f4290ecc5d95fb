"""Vectorized ledger verification: the same report as :meth:`ledger.service.Ledger.verify`, faster.

Why a second verifier: the reference walks a million entries through Python one row at a time
(~70-110k entries/s), so a regulator's full check of a year's ledger takes minutes. Here the three
ledger tables are read as Arrow inside one read transaction (PostgreSQL: REPEATABLE READ, like
the reference; ADBC, except for small SQLite ledgers, see "reading" below), and the per-row work
runs in DuckDB over those Arrow tables: the canonical entry body, its chain hash, the Merkle leaf
hash, and every perfect Merkle node level. Links and seq gaps are whole-column comparisons
(pyarrow, numpy). Python only folds the <= 64 perfect nodes of each checkpoint size into a root,
checks Ed25519 signatures, compares the stored nodes, and recomputes the rare rows DuckDB cannot
be trusted to encode exactly.

Speed, on the project's 2-core machine at 1,000,000 entries (bench/fastverify_bench.py): ~5.6 s,
~180k entries/s on SQLite and PostgreSQL alike, 2.2 times the reference, short of the issue's
500k/s. It is CPU-bound on both cores throughout: reading costs ~3.5 CPU-seconds (ADBC, two
connections, plus SQLite's storage-class check), the per-row query ~5 (DuckDB's sha256 is plain
software, ~2 us per 360-byte entry body, where hashlib's SHA-NI would need 0.25 us but pays ~1 us
of Python per call), the Merkle levels ~1.2.

Equivalence with the reference is the contract (``tests/test_fastverify.py`` holds it to that),
so every quirk of the reference is mirrored on purpose:

- rows are visited in ``seq`` order; the row *position*, not ``seq``, is the Merkle leaf index;
- ``expected`` is always the previous row's ``seq + 1`` (1 for the first row): a gap reports
  ``missing`` at ``expected``, a smaller ``seq`` (only possible for the first row) ``order``;
- a row whose ``hash`` or ``prev_hash`` is not hex feeds ``sha256(str(hash).encode())`` to the
  tree, exactly as the reference's ``except`` branch does;
- JSON strings: Python's ``encode_basestring`` escapes ``"``, ``\\`` and characters below 0x20
  and nothing else. Rows whose action/actor/role/subject hold none of those, and whose hashes are
  64 hex digits each (DuckDB's ``unhex`` is then ``bytes.fromhex``), are encoded by DuckDB as
  ``'"' || s || '"'``; every other row is recomputed with the reference's own code
  (:func:`ledger.entry.entry_body`), fetched alone;
- the reference feeds the Merkle tree after each ``fetchmany(50_000)`` chunk, so a chunk's
  ``merkle_node``/``checkpoint_root`` problems follow that chunk's row problems and precede the
  next chunk's; at one leaf, nodes come lowest level first, then the checkpoint root;
- the ``MAX_PROBLEMS`` cap, ``last_good`` bound of ``checkpoint_root``, and both truncation rules
  (a signed size past the end; stored nodes past the end, only when no checkpoint is pending).

Storage the vectorized path cannot represent exactly is handed to the reference verifier itself,
so the report stays identical: on SQLite, a value whose storage class is not the one the schema
declares (a BLOB in a TEXT column, text in an INTEGER column: only an attacker writing the file
can store those) or text that is not valid UTF-8 (on which the reference, and so this, raises
sqlite3's decoding error); on either database, an Arrow column of an unexpected type. Such a
database is pathological, and its verification simply runs at the reference's speed.
"""

from __future__ import annotations

import binascii
import hashlib
import inspect
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from ledger.entry import GENESIS, entry_body
from ledger.merkle import STORED_MIN_LEVEL, TreeAppender, node_hash
from ledger.report import MAX_PROBLEMS, Problem
from ledger.service import Ledger, SignedCheckpoint, VerifyReport

__all__ = ["fast_verify"]

CHUNK = 50_000
"""The reference's ``fetchmany`` size: it decides where Merkle problems interleave with row problems."""

THREADS = 2
"""DuckDB worker threads: the target machine has two cores."""

READERS = 2
"""Database connections reading the entries in parallel, all in one snapshot."""

SQLITE_IN_PROCESS_ROWS = 50_000
"""Below this many entries Python's sqlite3 reads an SQLite ledger faster than a reader process starts."""

BUSY_TIMEOUT_MS = 30_000
"""How long SQLite connections wait for a lock (opening a WAL database, the snapshot guard)."""

DUCKDB_MIN_ROWS = 4096
"""Below this many hashes per Merkle level, hashlib beats a DuckDB round trip."""

_ENTRY_COLUMNS = ("seq", "time", "actor", "role", "action", "subject", "payload", "prev_hash", "hash")
_TEXT_COLUMNS = _ENTRY_COLUMNS[1:]
_GENESIS_HEX = GENESIS.hex()

# Order of problems of one row, and of Merkle events at one leaf (nodes sort by level, < 64).
_ROW_GAP, _ROW_LINK, _ROW_HASH = 0, 1, 2
_ROOT_ORDER = 1 << 20

# A row is "fast" when DuckDB's plain concatenation is exactly Python's encoding of it: both
# hashes are 64 hex digits (``unhex`` is then Python's ``bytes.fromhex``) and no JSON string field
# holds a character encode_basestring would escape (RE2 reads the ``\x00`` escapes itself).
# Python: f'{{"action":{enc(action)},"actor":{enc(actor)},"payload":{payload},"prev_hash":"{prev_hash}",'
#         f'"role":{enc(role)},"seq":{seq},"subject":{enc(subject)},"time":"{time}"}}'.encode()
_ROWS_SQL = r"""
SELECT seq, fast,
    CASE WHEN fast THEN sha256(prev_digest || encode(concat(
        '{"action":"', action, '","actor":"', actor, '","payload":', payload, ',"prev_hash":"', prev_hash,
        '","role":"', role, '","seq":', seq, ',"subject":"', subject, '","time":"', time, '"}'
    ))) <> lower(hash) END AS bad,
    CASE WHEN fast THEN sha256('\x00'::BLOB || digest) ELSE '%s' END AS leaf
FROM (
    SELECT *, digest IS NOT NULL AND prev_digest IS NOT NULL AND strlen(hash) = 64 AND strlen(prev_hash) = 64
        AND NOT regexp_matches(action || actor || role || subject, '[\x00-\x1f"\\]') AS fast
    FROM (SELECT *, try(unhex(hash)) AS digest, try(unhex(prev_hash)) AS prev_digest FROM entries)
)
""" % ("0" * 64)

_SQLITE_TEXT_OK = " AND ".join(f"typeof({c}) = 'text'" for c in _TEXT_COLUMNS)

_QUERIES = {
    "sqlite": {
        "checkpoints": "SELECT tree_size, root, time, signature, public_key, typeof(tree_size) = 'integer' AND "
        + " AND ".join(f"typeof({c}) = 'text'" for c in ("root", "time", "signature", "public_key"))
        + " AS ok FROM ledger_checkpoints ORDER BY tree_size",
        "nodes": "SELECT level, idx, hash, typeof(level) = 'integer' AND typeof(idx) = 'integer' "
        "AND typeof(hash) = 'text' AS ok FROM ledger_nodes",
        "odd": f"SELECT count(*) AS n FROM ledger_entries WHERE ({{where}}) AND NOT ({_SQLITE_TEXT_OK})",
    },
    "postgresql": {
        "checkpoints": "SELECT tree_size, root, time, signature, public_key, true AS ok "
        "FROM ledger_checkpoints ORDER BY tree_size",
        "nodes": "SELECT level, idx, hash, true AS ok FROM ledger_nodes",
    },
}


class _UnrepresentableError(Exception):
    """The snapshot holds values the vectorized path cannot treat exactly like the reference."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The three ledger tables as one transaction saw them."""

    checkpoints: list[SignedCheckpoint]
    nodes: dict[tuple[int, int], str]
    entries: pa.Table


def fast_verify(url: str, public_key: Ed25519PublicKey, public_key_hex: str) -> VerifyReport:
    """Verify the ledger at ``url`` (a SQLAlchemy URL: ``sqlite:///PATH`` or ``postgresql+psycopg://...``).

    Returns the very report :meth:`Ledger.verify` of a ledger with ``public_key`` returns for the
    same database state: the same problems in the same order, entries, head and checkpoint count.
    ``public_key_hex`` is the key's raw hex, which stored checkpoints must name.
    """
    try:
        snapshot = _read_snapshot(url)
    except _UnrepresentableError:
        return _reference_verify(url, public_key, public_key_hex)
    with _duckdb() as con:
        return _verify_snapshot(con, snapshot, public_key, public_key_hex)


# --- reading ----------------------------------------------------------------------------------
#
# ADBC's SQLite driver carries its own copy of SQLite, and two copies of SQLite in one process
# corrupt a database they both open: POSIX locks belong to the process, so when one copy opens or
# closes the file it silently takes or drops the other's locks (sqlite.org/howtocorrupt.html,
# "multiple copies of SQLite linked into the same application"; the tests did corrupt databases
# this way). The application and the reference verifier use Python's sqlite3 on the same file, so
# on SQLite the driver runs in a process of its own, which imports nothing but pyarrow and the
# driver and hands the tables back as Arrow IPC files in shared memory, mapped here without a
# copy. Starting it costs ~0.3 s, more than Python's sqlite3 (the application's own copy, so safe)
# needs to read a small ledger: small ledgers are read that way. PostgreSQL has no such hazard and
# is read with ADBC in this process.


def _read_job(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One snapshot of the three ledger tables through ADBC, entries by two connections at once.

    Self-contained, imports included: the SQLite reader process runs this function's source.
    Writes each table as an Arrow IPC file into ``job["directory"]`` when one is given, else
    returns them. Returns ``({"parts": names, "odd": N}, tables)``: the entry parts in seq order,
    and how many entries hold a value of another storage class than the schema's (SQLite).
    """
    import os
    from concurrent.futures import ThreadPoolExecutor
    from contextlib import suppress

    import pyarrow as pa
    import pyarrow.ipc as ipc
    from adbc_driver_manager import AdbcConnection, AdbcStatement

    sqlite = job["dialect"] == "sqlite"
    if sqlite:
        import adbc_driver_sqlite as driver
    else:
        import adbc_driver_postgresql as driver
    database = driver.connect(job["uri"])
    opened: list[AdbcConnection] = []
    tables: dict[str, Any] = {}

    def connect(autocommit: bool) -> AdbcConnection:
        connection = AdbcConnection(database)
        opened.append(connection)
        if not autocommit:
            connection.set_autocommit(False)  # the driver begins a transaction: one snapshot
        return connection

    def update(connection: AdbcConnection, sql: str) -> None:
        statement = AdbcStatement(connection)
        try:
            statement.set_sql_query(sql)
            statement.execute_update()
        finally:
            statement.close()

    def query(connection: AdbcConnection, sql: str, name: str | None = None) -> list[dict[str, Any]]:
        statement = AdbcStatement(connection)
        try:
            statement.set_sql_query(sql)
            handle, _ = statement.execute_query()
            reader = pa.RecordBatchReader._import_from_c(handle.address)
            if name is None:
                return reader.read_all().to_pylist()
            if job["directory"] is None:
                tables[name] = reader.read_all()
                return []
            with ipc.new_file(os.path.join(job["directory"], name), reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
            return []
        finally:
            statement.close()

    try:
        readers = [connect(False) for _ in range(job["readers"])]
        if sqlite:
            for reader in readers:
                update(reader, f"PRAGMA busy_timeout = {job['busy_ms']}")
            # Several connections fix the same snapshot only if no commit lands while they take
            # their first read: a guard holds the write lock meanwhile (writers wait milliseconds).
            guard = connect(True) if len(readers) > 1 else None
            if guard is not None:
                update(guard, f"PRAGMA busy_timeout = {job['busy_ms']}")
                update(guard, "BEGIN IMMEDIATE")
            for reader in readers:
                query(reader, "SELECT count(*) AS n FROM sqlite_master")
            if guard is not None:
                update(guard, "ROLLBACK")
        else:
            snapshot = ""
            for reader in readers:
                update(reader, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                if snapshot:
                    update(reader, f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                elif len(readers) > 1:
                    snapshot = str(query(reader, "SELECT pg_export_snapshot() AS s")[0]["s"])
        query(readers[0], job["checkpoints"], "checkpoints")
        query(readers[0], job["nodes"], "nodes")
        bounds = query(readers[0], job["bounds"])[0]
        low, high = bounds["low"], bounds["high"]
        if low is None or low == high or len(readers) == 1:
            parts = ["1 = 1"]
        else:
            middle = int(low) + (int(high) - int(low)) // 2
            parts = [f"seq <= {middle}", f"seq > {middle}"]

        def read_part(index: int) -> int:
            reader, where = readers[index], parts[index]
            odd = int(query(reader, job["odd"].format(where=where))[0]["n"]) if job["odd"] else 0
            query(reader, job["entries"].format(where=where), f"entries-{index}")
            return odd

        with ThreadPoolExecutor(len(parts)) as pool:  # the drivers release the GIL while they read
            odd = sum(pool.map(read_part, range(len(parts))))
        return {"parts": [f"entries-{i}" for i in range(len(parts))], "odd": odd}, tables
    finally:
        for connection in reversed(opened):
            with suppress(Exception):  # an autocommit connection has nothing to roll back
                connection.rollback()
            connection.close()
        database.close()


def _reader_main(job_json: str) -> None:
    """The SQLite reader process: runs :func:`_read_job` and prints its status as JSON."""
    import json
    import sys

    status, _ = _read_job(json.loads(job_json))
    sys.stdout.write(json.dumps(status))


def _reader_code() -> str:
    """What the reader process runs: the two functions' own source, so that it need not import
    this package (which pulls in SQLAlchemy, DuckDB and more: half a second)."""
    try:
        return "from __future__ import annotations\nfrom typing import Any\n\n" + "\n\n".join(
            inspect.getsource(function) for function in (_read_job, _reader_main)
        )
    except OSError:  # no source shipped: import them the slow way
        root = str(Path(__file__).resolve().parent.parent)
        return f"import sys\nsys.path.insert(0, {root!r})\nfrom ledger.fastverify import _reader_main\n"


def _scratch_directory() -> str | None:
    """Shared memory when the system has it, so that the tables never touch a disk."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _job(url: str) -> dict[str, Any]:
    """What to read and how: dialect, driver URI, the queries, and how many parallel readers."""
    parsed = make_url(url)
    dialect = parsed.get_backend_name()
    if dialect == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ValueError(f"fast_verify needs an SQLite database file, not {url!r}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"no SQLite database at {path}")
        uri = path
        # A read-only open "succeeds" at BEGIN IMMEDIATE without locking: no guard, one reader.
        readers = READERS if os.access(path, os.W_OK) else 1
    elif dialect == "postgresql":
        # libpq reads the same URI; query options such as ``options=-csearch_path=...`` pass through.
        uri = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        readers = READERS
    else:
        raise ValueError(f"fast_verify supports SQLite and PostgreSQL, not {dialect!r}")
    queries = _QUERIES[dialect]
    return {
        "dialect": dialect,
        "uri": uri,
        "directory": None,
        "readers": readers,
        "busy_ms": BUSY_TIMEOUT_MS,
        "checkpoints": queries["checkpoints"],
        "nodes": queries["nodes"],
        "bounds": "SELECT (SELECT min(seq) FROM ledger_entries) AS low, (SELECT max(seq) FROM ledger_entries) AS high",
        "odd": queries.get("odd", ""),
        "entries": f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM ledger_entries WHERE {{where}} ORDER BY seq",
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
# (pa.array, to_numpy); these build and take apart the few arrays needed from raw buffers instead.


def _int64_array(values: Any) -> pa.Array:
    data = np.fromiter(values, dtype=np.int64, count=len(values))
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def _string_array(values: Any) -> pa.Array:
    encoded = [value.encode() for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.large_string(), len(encoded), buffers)


def _int64s(column: pa.ChunkedArray) -> np.ndarray:
    """An integer column without nulls as int64."""
    parts = [np.zeros(0, dtype=np.int64)]
    for chunk in pc.cast(column, pa.int64()).chunks:
        if not len(chunk):
            continue
        parts.append(np.frombuffer(chunk.buffers()[1], dtype=np.int64)[chunk.offset : chunk.offset + len(chunk)])
    return np.concatenate(parts)


def _bools(column: pa.ChunkedArray) -> np.ndarray:
    """A boolean column, nulls as False."""
    parts = [np.zeros(0, dtype=bool)]
    for chunk in column.chunks:
        if not len(chunk):
            continue
        validity, values = chunk.buffers()[:2]
        start, stop = chunk.offset, chunk.offset + len(chunk)
        bits = np.unpackbits(np.frombuffer(values, dtype=np.uint8), bitorder="little")[start:stop].astype(bool)
        if chunk.null_count:
            bits &= np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")[start:stop].astype(bool)
        parts.append(bits)
    return np.concatenate(parts)


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
        if (0 if low is None else high - low + 1) >= SQLITE_IN_PROCESS_ROWS:
            return None
        tables: dict[str, Any] = {"checkpoints": rows(job["checkpoints"]), "nodes": rows(job["nodes"])}
        ((odd,),) = connection.execute(job["odd"].format(where="1 = 1")).fetchall()
        if odd:  # a BLOB among the text: the caller hands the ledger to the reference
            return {"parts": [], "odd": odd}, tables
        columns = list(zip(*connection.execute(job["entries"].format(where="1 = 1")).fetchall(), strict=True))
        columns = columns or [()] * len(_ENTRY_COLUMNS)
        arrays = [_int64_array(columns[0])] + [_string_array(column) for column in columns[1:]]
        tables["entries-0"] = pa.Table.from_arrays(arrays, names=list(_ENTRY_COLUMNS))
        return {"parts": ["entries-0"], "odd": odd}, tables
    finally:
        connection.close()  # rolls the read transaction back


def _rows_of(table: pa.Table | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(table, list):
        return table
    table.validate(full=True)
    return table.to_pylist()


def _read_snapshot(url: str) -> _Snapshot:
    """Checkpoints, stored nodes and entries as one read transaction sees them."""
    job = _job(url)
    if job["dialect"] == "postgresql":
        status, tables = _read_job(job)
    else:
        small = _read_with_sqlite3(job)
        status, tables = small if small is not None else _read_in_child(job)
    if status["odd"]:
        raise _UnrepresentableError("an entry value has an unexpected storage class")
    try:
        cp_rows, node_rows = (_rows_of(tables[name]) for name in ("checkpoints", "nodes"))
    except (pa.ArrowInvalid, UnicodeDecodeError):  # text that is not UTF-8 (SQLite): the reference fails on it
        raise _UnrepresentableError("a checkpoint or node holds text that is not UTF-8") from None
    if not all(row["ok"] for row in cp_rows) or not all(row["ok"] for row in node_rows):
        raise _UnrepresentableError("a checkpoint or node value has an unexpected storage class")
    parts = [tables[name] for name in status["parts"]]
    if len({table.schema for table in parts}) > 1:
        raise _UnrepresentableError("the two halves of the entries arrived with different column types")
    entries = pa.concat_tables(parts)
    if entries.num_rows:
        if not pa.types.is_integer(entries.column("seq").type):
            raise _UnrepresentableError("seq is not an integer column")
        for name in _TEXT_COLUMNS:
            column = entries.column(name)
            if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                raise _UnrepresentableError(f"column {name} arrived as {column.type}")
            try:
                column.validate(full=True)  # SQLite keeps any bytes as "text"; the reference would fail to decode
            except pa.ArrowInvalid:
                raise _UnrepresentableError(f"column {name} holds text that is not UTF-8") from None
    checkpoints = [
        SignedCheckpoint(r["tree_size"], r["root"], r["time"], r["signature"], r["public_key"]) for r in cp_rows
    ]
    nodes = {(r["level"], r["idx"]): r["hash"] for r in node_rows}
    return _Snapshot(checkpoints, nodes, entries)


def _reference_verify(url: str, public_key: Ed25519PublicKey, public_key_hex: str) -> VerifyReport:
    """The reference verifier over ``url``, for storage the vectorized path cannot mirror.

    ``Ledger`` wants a signing key, which verification never uses: a throwaway one is given and
    the public key to check against is set in its place.
    """
    engine = create_engine(url)
    try:
        ledger = Ledger(engine, Ed25519PrivateKey.generate(), origin="keyong.local/fastverify")
        ledger.public_key = public_key
        ledger.public_key_hex = public_key_hex
        return ledger.verify(reference=True)
    finally:
        engine.dispose()


# --- computing --------------------------------------------------------------------------------


@contextmanager
def _duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(config={"threads": THREADS})
    try:
        yield con
    finally:
        con.close()


def _hex_to_bytes(hexes: pa.ChunkedArray) -> np.ndarray:
    """64-digit hex strings (DuckDB's sha256 output) as an (n, 32) uint8 array.

    Every value has the same length, so each chunk's character data is one contiguous run that
    ``binascii`` decodes at memory speed.
    """
    decoded: list[bytes] = []
    for chunk in hexes.chunks:
        if not len(chunk):
            continue
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
        if chunk.null_count or int(offsets[-1] - offsets[0]) != 64 * len(chunk):
            raise RuntimeError("expected 64 hex digits in every row")
        decoded.append(binascii.a2b_hex(memoryview(chunk.buffers()[2])[int(offsets[0]) : int(offsets[-1])]))
    return np.frombuffer(b"".join(decoded), dtype=np.uint8).reshape(len(hexes), 32)


def _sha256_rows(con: duckdb.DuckDBPyConnection, rows: np.ndarray) -> np.ndarray:
    """SHA-256 of every row of an (m, k) uint8 array, as (m, 32): DuckDB's threads for many rows."""
    m, width = rows.shape
    if m < DUCKDB_MIN_ROWS:
        sha256 = hashlib.sha256
        data = rows.tobytes()
        digests = b"".join([sha256(data[i : i + width]).digest() for i in range(0, m * width, width)])
        return np.frombuffer(digests, dtype=np.uint8).reshape(m, 32)
    column = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), m, [None, pa.py_buffer(rows)])
    con.register("rows_to_hash", pa.Table.from_arrays([column], names=["x"]))
    try:
        hexes = con.sql("SELECT sha256(x) AS h FROM rows_to_hash").to_arrow_table().column("h")
    finally:
        con.unregister("rows_to_hash")
    return _hex_to_bytes(hexes)


def _merkle_levels(con: duckdb.DuckDBPyConnection, leaves: np.ndarray) -> list[np.ndarray]:
    """Every perfect node: level ``k`` holds nodes ``(k, i)`` for ``i < n >> k``, as (n >> k, 32).

    Perfect nodes are all a stored node, a checkpoint root fold or the reference's comparisons
    ever involve, and level k+1 is simply ``node_hash`` of the pairs (2i, 2i+1) of level k.
    """
    levels = [leaves]
    current = leaves
    while len(current) >= 2:
        m = len(current) // 2
        pairs = np.empty((m, 65), dtype=np.uint8)
        pairs[:, 0] = 1  # RFC 9162 interior-node prefix
        pairs[:, 1:] = current[: 2 * m].reshape(m, 64)
        current = _sha256_rows(con, pairs)
        levels.append(current)
    return levels


def _root(levels: list[np.ndarray], size: int) -> bytes:
    """MTH of the first ``size`` leaves: the right fold of the perfect nodes of its frontier."""
    pieces = [levels[level][idx].tobytes() for level, idx in TreeAppender.frontier_coords(size)]
    acc = pieces[-1]
    for piece in reversed(pieces[:-1]):
        acc = node_hash(piece, acc)
    return acc


@dataclass(slots=True)
class _Rows:
    """Per-row verdicts in row order, and the leaf hashes the reference would feed its tree."""

    seq: np.ndarray
    gap: np.ndarray
    link: np.ndarray
    bad: np.ndarray
    leaves: np.ndarray


def _reference_row(row: dict[str, Any]) -> tuple[bool, bytes]:
    """The reference's own hash check of one row: (content does not match, Merkle leaf)."""
    sha256 = hashlib.sha256
    stored = row["hash"]
    prev_hash = row["prev_hash"]
    try:
        digest = bytes.fromhex(stored)
        computed = sha256(
            bytes.fromhex(prev_hash)
            + entry_body(
                row["seq"],
                row["time"],
                row["actor"],
                row["role"],
                row["action"],
                row["subject"],
                row["payload"],
                prev_hash,
            )
        ).digest()
    except (ValueError, TypeError):
        digest, computed = sha256(str(stored).encode()).digest(), b""
    return computed != digest, sha256(b"\x00" + digest).digest()


def _check_rows(con: duckdb.DuckDBPyConnection, entries: pa.Table) -> _Rows:
    n = entries.num_rows
    seq = _int64s(entries.column("seq"))
    gap = np.empty(n, dtype=bool)
    gap[0] = seq[0] != 1
    np.not_equal(seq[1:], seq[:-1] + 1, out=gap[1:])
    stored = entries.column("hash")
    prev_hash = entries.column("prev_hash")
    link = np.empty(n, dtype=bool)
    link[0] = prev_hash[0].as_py() != _GENESIS_HEX
    link[1:] = _bools(pc.not_equal(prev_hash.slice(1), stored.slice(0, n - 1)))

    con.register("entries", entries)
    try:
        result = con.sql(_ROWS_SQL).to_arrow_table()
    finally:
        con.unregister("entries")
    if not np.array_equal(_int64s(result.column("seq")), seq):
        raise RuntimeError("DuckDB did not preserve the row order")  # preserve_insertion_order is on
    fast = _bools(result.column("fast"))
    bad = _bools(result.column("bad"))
    leaves = _hex_to_bytes(result.column("leaf"))
    slow = np.flatnonzero(~fast)
    if len(slow):
        bad = bad.copy()
        leaves = leaves.copy()
        for position, row in zip(slow.tolist(), entries.take(_int64_array(slow)).to_pylist(), strict=True):
            row_bad, leaf = _reference_row(row)
            bad[position] = row_bad
            leaves[position] = np.frombuffer(leaf, dtype=np.uint8)
    return _Rows(seq, gap, link, bad, leaves)


def _row_problems(rows: _Rows, limit: int) -> tuple[list[tuple[tuple[int, ...], Problem]], int]:
    """The first row problems (at least ``limit`` when there are that many) and how many in all."""
    any_problem = rows.gap | rows.link | rows.bad
    total = int(rows.gap.sum()) + int(rows.link.sum()) + int(rows.bad.sum())
    found: list[tuple[tuple[int, ...], Problem]] = []
    for position in np.flatnonzero(any_problem)[:limit].tolist():
        seq = int(rows.seq[position])
        chunk = position // CHUNK
        if rows.gap[position]:
            expected = int(rows.seq[position - 1]) + 1 if position else 1
            if seq > expected:
                problem = Problem(expected, "missing", f"entries {expected}..{seq - 1} are missing (deleted)")
            else:
                problem = Problem(seq, "order", f"entry {seq} appears out of order")
            found.append(((chunk, 0, position, _ROW_GAP), problem))
        if rows.link[position]:
            problem = Problem(seq, "link", "prev_hash does not match the previous entry's hash")
            found.append(((chunk, 0, position, _ROW_LINK), problem))
        if rows.bad[position]:
            problem = Problem(seq, "hash", "content does not match its hash (edited, inserted or reordered)")
            found.append(((chunk, 0, position, _ROW_HASH), problem))
    return found, total


def _verify_snapshot(
    con: duckdb.DuckDBPyConnection, snapshot: _Snapshot, public_key: Ed25519PublicKey, public_key_hex: str
) -> VerifyReport:
    report = VerifyReport()
    cps = snapshot.checkpoints
    report.checkpoints = len(cps)
    first: list[Problem] = []
    for cp in cps:
        if cp.public_key != public_key_hex:
            first.append(
                Problem(None, "checkpoint_key", f"checkpoint of size {cp.tree_size} names a foreign public key")
            )
        if not cp.verify(public_key):
            first.append(
                Problem(None, "checkpoint_signature", f"checkpoint of size {cp.tree_size} has a bad signature")
            )

    entries = snapshot.entries
    n = entries.num_rows
    events: list[tuple[tuple[int, ...], Problem]] = []
    row_total = merkle_total = 0
    stored = dict(snapshot.nodes)
    pending: SignedCheckpoint | None = None
    sizes = [cp for cp in cps if cp.tree_size > 0]
    if n:
        rows = _check_rows(con, entries)
        row_events, row_total = _row_problems(rows, MAX_PROBLEMS)
        events += row_events
        levels = _merkle_levels(con, rows.leaves)
        for level in range(STORED_MIN_LEVEL, len(levels)):
            for idx, node in enumerate(levels[level]):
                if stored.pop((level, idx), None) != node.tobytes().hex():
                    end = ((idx + 1) << level) - 1
                    detail = f"stored Merkle node ({level}, {idx}) does not match entries"
                    events.append(
                        ((end // CHUNK, 1, end, level), Problem(idx * (1 << level) + 1, "merkle_node", detail))
                    )
                    merkle_total += 1
        last_good = 0
        for cp in sizes:
            if cp.tree_size > n:
                pending = cp
                break
            if _root(levels, cp.tree_size).hex() == cp.root:
                last_good = cp.tree_size
                continue
            end = cp.tree_size - 1
            detail = (
                f"signed checkpoint of size {cp.tree_size} does not match entries "
                f"{last_good + 1}..{cp.tree_size}: history was rewritten"
            )
            events.append(((end // CHUNK, 1, end, _ROOT_ORDER), Problem(last_good + 1, "checkpoint_root", detail)))
            merkle_total += 1
        report.head = entries.column("hash")[n - 1].as_py()
    elif sizes:
        pending = sizes[0]
    report.entries = n

    last: list[Problem] = []
    if pending is not None:
        last.append(
            Problem(
                n + 1,
                "truncated",
                f"a checkpoint of size {pending.tree_size} was signed but only {n} entries remain",
            )
        )
    beyond = [coord for coord in stored if (coord[1] + 1) << coord[0] > n]
    if beyond and pending is None:
        last.append(Problem(n + 1, "truncated", "stored Merkle nodes cover entries that no longer exist"))

    # Only the first row problems were spelled out; any later one sorts after MAX_PROBLEMS of
    # them, so the merged head is exact and the count covers the rest.
    events.sort(key=lambda event: event[0])
    total = len(first) + row_total + merkle_total + len(last)
    ordered = first + [problem for _, problem in events] + last
    report.problems = ordered[:MAX_PROBLEMS]
    report.truncated_problems = total > MAX_PROBLEMS
    return report
