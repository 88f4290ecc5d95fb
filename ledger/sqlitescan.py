"""The fast verifier's pass over an SQLite ledger: the chain and the Merkle levels with hashlib, on both cores.

Why not DuckDB and ADBC here (:mod:`ledger.fastread`, still used for PostgreSQL): on the 2-core
machine they verified ~0.2 M entries/s, and the issue asks 0.5 M/s. Measured at 1M entries
(bench/fastverify_bench.py), DuckDB's sha256 is plain software (~2 us per 360-byte body) and
ADBC's reading ~3.5 CPU-seconds, while hashlib uses the CPU's SHA instructions (~0.5 us per
body, Python's call included). So each entry is hashed by hashlib, but never by a Python loop:
a chunk of rows is turned into columns by ``zip(*rows)`` and every per-row step is a ``map``
over C functions (``encode_basestring``, ``str.__mod__`` with the body template, ``str.encode``,
``bytes.fromhex``, ``sha256``, ``HASH.digest``), so no bytecode runs per entry. The body
template is :func:`ledger.entry.entry_body`'s f-string as a ``%`` template: ``'%s' % x`` is
``f'{x}'`` for every value the driver returns, so the bytes hashed are the reference's.

Two worker processes each take half of the entries (split on a multiple of :data:`ALIGN`
leaves, so that each half's perfect Merkle nodes are the tree's own), read them with Python's
sqlite3 (the reference's driver: values arrive exactly as the reference sees them, and no
second copy of SQLite enters a process, see :mod:`ledger.fastread`), and return each entry's
seq, the positions whose link or hash is bad, and their Merkle levels. They run the source of
this module's worker functions under ``python -I`` (stdlib only: ~20 ms to start, where
importing the ``ledger`` package costs half a second). One snapshot for all: the parent holds
SQLite's write lock (``BEGIN IMMEDIATE``) while it reads checkpoints, nodes and rotations and
until both workers have begun their read transactions, as :mod:`ledger.fastread` does for its
readers; writers wait those few tens of milliseconds.

A chunk where any ``map`` raises (a hash that is not hex, a value of an unexpected type) is
checked row by row with the reference's own :func:`ledger.reference.recompute_entry`, whose
source the workers carry. A ``seq`` that is not an integer, a checkpoint or node value of an
unexpected storage class, or text that is not UTF-8 makes :func:`scan` raise
:class:`~ledger.fastread.UnrepresentableError`, and the caller runs the reference verifier.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ledger.checkpoints import SignedCheckpoint
from ledger.entry import GENESIS, entry_body
from ledger.fastread import BUSY_TIMEOUT_MS, UnrepresentableError
from ledger.keyring import ROTATION_ACTION
from ledger.queries import ENTRY_COLUMNS
from ledger.reference import CHUNK, recompute_entry

__all__ = ["ALIGN", "PARALLEL_MIN_ROWS", "WORKERS", "Scan", "scan"]

WORKERS = 2
"""Worker processes: the target machine has two cores."""

PARALLEL_MIN_ROWS = 40_000
"""Below this many entries one pass in this process is faster than starting the workers."""

ALIGN = 256
"""The split between the workers' halves falls on a multiple of this many leaves, so every perfect
node of level <= 8 lies within one half; the few above are hashed here."""

# entry_body's f-string as a bytes template, for rows whose strings need no JSON escape (encode_basestring
# is then '"' + s + '"') and whose seq is an int (rowid: always).
BODY_BYTES = (
    b'{"action":"%s","actor":"%s","payload":%s,"prev_hash":"%s","role":"%s","seq":%d,"subject":"%s","time":"%s"}'
)
_TEXT_FIELDS = ("time", "actor", "role", "action", "subject", "payload", "prev_hash", "hash")
FAST_SQL = (
    "SELECT seq, min("
    + ", ".join(f"typeof({c})" for c in _TEXT_FIELDS)
    + ") = 'text', "
    + ", ".join(f"CAST({c} AS BLOB)" for c in _TEXT_FIELDS)
    + " FROM ledger_entries WHERE {where} ORDER BY seq"
)
"""Raw bytes (no UTF-8 decoding per value: half the driver's cost) and whether every value is text."""
TEXT_SQL = f"SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE seq BETWEEN ? AND ? ORDER BY seq"
LINK_SQL = "SELECT prev_hash, hash FROM ledger_entries WHERE seq BETWEEN ? AND ? ORDER BY seq"

_CHECKPOINTS_SQL = (
    "SELECT tree_size, root, time, signature, public_key, note, typeof(tree_size) = 'integer' AND "
    + " AND ".join(f"typeof({c}) = 'text'" for c in ("root", "time", "signature", "public_key"))
    + " FROM ledger_checkpoints ORDER BY tree_size"
)
_NODES_SQL = (
    "SELECT level, idx, hash, typeof(level) = 'integer' AND typeof(idx) = 'integer' AND typeof(hash) = 'text' "
    "FROM ledger_nodes"
)


@dataclass(slots=True)
class Scan:
    """One snapshot of an SQLite ledger, its entries already checked and hashed."""

    checkpoints: list[SignedCheckpoint]
    nodes: dict[tuple[int, int], str]
    rotations: list[tuple[int, Any]]
    seq: np.ndarray
    link: np.ndarray
    bad: np.ndarray
    levels: list[np.ndarray]
    head: Any
    meanwhile: Any = None


# --- the workers' code: self-contained, stdlib only (run from source under python -I) ---------


def _hash_part(connection: Any, where: str, first_prev: Any) -> tuple[dict[str, Any], list[bytes]]:
    """Check the entries ``where`` selects, in seq order: ``(header, [seq int64, level 0, level 1, ...])``.

    ``first_prev`` is the hash the first row's ``prev_hash`` must equal (``None``: not known here,
    the parent checks that seam). The header lists the positions whose link or hash is bad, and
    ``odd`` when a seq is not an integer or text is not UTF-8 (the reference must then answer).
    """
    from array import array
    from hashlib import sha256

    digest = type(sha256()).digest
    cursor = connection.execute(FAST_SQL.format(where=where))
    seqs_out = array("q")
    leaves: list[bytes] = []
    link: list[int] = []
    bad: list[int] = []
    previous = first_prev
    position = 0
    while rows := cursor.fetchmany(CHUNK):
        seqs, oks, times, actors, roles, actions, subjects, payloads, prevs, hashes = zip(*rows, strict=True)
        if not set(map(type, seqs)) <= {int}:
            return {"odd": True}, []
        seqs_out.extend(seqs)
        if all(oks):  # text everywhere: the raw bytes are the reference's strings, UTF-8 encoded
            try:  # the reference's driver fails on text that is not UTF-8 (an ASCII separator: no
                # value's stray bytes can pair with the next value's)
                b"\n".join(times + actors + roles + actions + subjects + payloads + prevs + hashes).decode()
            except UnicodeDecodeError:
                return {"odd": True}, []
        link_at, previous = _links(connection, seqs, prevs, hashes, oks, previous)
        link.extend(position + i for i in link_at)
        chunk_bad, chunk_leaves = _chunk_hashes(
            actions, actors, payloads, prevs, roles, seqs, subjects, times, hashes, oks
        )
        if chunk_leaves is None:  # the reference's own per-row code decides such a chunk
            chunk_bad, chunk_leaves = [], []
            text_rows = connection.execute(TEXT_SQL, (seqs[0], seqs[-1])).fetchall()
            for i, row in enumerate(text_rows):
                row_bad, leaf = recompute_entry(row)
                if row_bad:
                    chunk_bad.append(i)
                chunk_leaves.append(leaf)
        bad.extend(position + i for i in chunk_bad)
        leaves += chunk_leaves
        position += len(rows)
    levels = [b"".join(leaves)]
    level = leaves
    while len(level) >= 2:
        level = list(
            map(
                digest,
                map(
                    sha256,
                    map(bytes.__add__, map(bytes.__add__, [b"\x01"] * (len(level) // 2), level[0::2]), level[1::2]),
                ),
            )
        )
        levels.append(b"".join(level))
    return {"odd": False, "rows": position, "link": link, "bad": bad}, [seqs_out.tobytes(), *levels]


def _chunk_hashes(*columns: Any) -> tuple[list[int], list[bytes] | None]:
    """One chunk's bad positions and leaves, every step a ``map`` of C functions; ``None`` leaves when
    a row needs the reference's code (a JSON escape, a hash that is not plain hex, another storage class)."""
    import re
    from binascii import Error, unhexlify
    from hashlib import sha256
    from itertools import repeat
    from operator import add

    actions, actors, payloads, prevs, roles, seqs, subjects, times, hashes, oks = columns
    if not all(oks) or re.search(rb'[\x00-\x1f"\\]', b"\xff".join(actions + actors + roles + subjects)):
        return [], None
    digest = type(sha256()).digest
    try:
        stored = list(map(unhexlify, hashes))
        prev_bytes = list(map(unhexlify, prevs))
    except (Error, TypeError):
        return [], None
    if set(map(len, stored)) != {32}:
        return [], None
    bodies = map(BODY_BYTES.__mod__, zip(actions, actors, payloads, prevs, roles, seqs, subjects, times, strict=True))
    computed = list(map(digest, map(sha256, map(add, prev_bytes, bodies))))
    leaves = list(map(digest, map(sha256, map(add, repeat(b"\x00"), stored))))
    if computed == stored:
        return [], leaves
    return [i for i, (c, s) in enumerate(zip(computed, stored, strict=True)) if c != s], leaves


def _links(connection: Any, seqs: Any, prevs: Any, hashes: Any, oks: Any, previous: Any) -> tuple[list[int], Any]:
    """A chunk's positions whose prev_hash is not the previous row's hash (``previous``: the one before
    the chunk, ``None`` when the parent checks that seam), and its last hash, all as the reference
    compares them: the driver's values (text decodes to ``str``; a chunk with other storage classes is
    read again as such)."""
    if all(oks):
        first_prev, last = prevs[0].decode(), hashes[-1].decode()
        pairs = zip(prevs[1:], hashes[:-1], strict=True)
        inner = [] if prevs[1:] == hashes[:-1] else [i + 1 for i, (p, h) in enumerate(pairs) if p != h]
    else:
        rows = connection.execute(LINK_SQL, (seqs[0], seqs[-1])).fetchall()
        first_prev, last = rows[0][0], rows[-1][1]
        inner = [i + 1 for i, (row, before) in enumerate(zip(rows[1:], rows[:-1], strict=True)) if row[0] != before[1]]
    head = [0] if previous is not None and first_prev != previous else []
    return head + inner, last


def _open(path: str) -> Any:
    import sqlite3

    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    connection.execute("BEGIN")
    connection.execute("SELECT count(*) FROM sqlite_master").fetchall()  # the read transaction's snapshot
    return connection


def _worker_main(job_json: str) -> None:
    """A worker: begin the snapshot, say so, check its part, write header and arrays to stdout."""
    import json
    import sys

    job = json.loads(job_json)
    out = sys.stdout.buffer
    try:
        connection = _open(job["path"])
    except Exception as exc:  # the parent reports it (it may not wait on a silent worker)
        out.write(json.dumps({"error": repr(exc)}).encode() + b"\n")
        return
    out.write(b"ready\n")
    out.flush()
    try:
        header, arrays = _hash_part(connection, job["where"], job["first_prev"])
    except Exception as exc:  # not UTF-8 (sqlite3.OperationalError) and anything else: the reference answers
        header, arrays = {"odd": True, "error": repr(exc)}, []
    finally:
        connection.close()
    header["sizes"] = [len(a) for a in arrays]
    out.write(json.dumps(header).encode() + b"\n")
    for part in arrays:
        out.write(part)
    out.flush()


def _worker_code() -> str:
    """The workers' program: the reference's entry code and this module's worker functions, from source."""
    constants = (
        f"CHUNK = {CHUNK}\nBUSY_TIMEOUT_MS = {BUSY_TIMEOUT_MS}\nENTRY_COLUMNS = {ENTRY_COLUMNS!r}\n"
        f"BODY_BYTES = {BODY_BYTES!r}\nFAST_SQL = {FAST_SQL!r}\nTEXT_SQL = {TEXT_SQL!r}\nLINK_SQL = {LINK_SQL!r}\n"
    )
    header = "from __future__ import annotations\nimport hashlib\nfrom json.encoder import encode_basestring\n"
    header += "from typing import Any\nfrom collections.abc import Sequence\n"
    functions = (entry_body, recompute_entry, _hash_part, _chunk_hashes, _links, _open, _worker_main)
    body = "\n\n".join(inspect.getsource(function) for function in functions)
    return f"{header}{constants}\n{body}\n\n_worker_main(__import__('sys').argv[1])\n"


# --- the parent ---------------------------------------------------------------------------------


def _read_header(stream: IO[bytes]) -> dict[str, Any]:
    line = stream.readline()
    if not line:
        raise RuntimeError("a verification worker ended without an answer")
    value: dict[str, Any] = json.loads(line)
    return value


def _collect(stream: IO[bytes]) -> tuple[dict[str, Any], list[bytes]]:
    header = _read_header(stream)
    return header, [stream.read(size) if size else b"" for size in header.get("sizes", [])]


def _tables(connection: sqlite3.Connection) -> tuple[list[SignedCheckpoint], dict[tuple[int, int], str], list[Any]]:
    """Checkpoints, stored nodes and rotations, as the reference reads them (same driver, same snapshot)."""
    cp_rows = connection.execute(_CHECKPOINTS_SQL).fetchall()
    node_rows = connection.execute(_NODES_SQL).fetchall()
    if not all(row[-1] for row in cp_rows) or not all(row[-1] for row in node_rows):
        raise UnrepresentableError("a checkpoint or node value has an unexpected storage class")
    checkpoints = [SignedCheckpoint(*row[:6]) for row in cp_rows]
    nodes = {(level, idx): h for level, idx, h, _ in node_rows}
    query = "SELECT seq, payload FROM ledger_entries WHERE action = ? ORDER BY seq"
    rotations = [(int(seq), payload) for seq, payload in connection.execute(query, (ROTATION_ACTION,))]
    return checkpoints, nodes, rotations


def _levels(parts: list[tuple[int, list[bytes]]]) -> list[np.ndarray]:
    """The tree's perfect levels from the parts' own: joined while the split is aligned, else hashed here."""
    import hashlib

    total = sum(rows for rows, _ in parts)
    levels = [np.frombuffer(b"".join(p[1][0] for p in parts), dtype=np.uint8).reshape(total, 32)]
    level = 1
    while total >> level:
        if all(rows % (1 << level) == 0 for rows, _ in parts[:-1]) and all(len(p[1]) > level for p in parts[:-1]):
            joined = b"".join(p[1][level] if len(p[1]) > level else b"" for p in parts)
        else:
            below = levels[-1].tobytes()
            joined = b"".join(
                hashlib.sha256(b"\x01" + below[i : i + 64]).digest() for i in range(0, (len(below) // 64) * 64, 64)
            )
        levels.append(np.frombuffer(joined, dtype=np.uint8).reshape(total >> level, 32))
        level += 1
    return levels


def _spawn(path: str, where: str, first_prev: str | None) -> subprocess.Popen[bytes]:
    job = json.dumps({"path": path, "where": where, "first_prev": first_prev})
    return subprocess.Popen([sys.executable, "-I", "-c", _worker_code(), job], stdout=subprocess.PIPE)


def _split_where(connection: sqlite3.Connection) -> list[str] | None:
    """The workers' seq ranges, the first a multiple of ALIGN entries long; None when one pass is better."""
    low, high = connection.execute("SELECT min(seq), max(seq) FROM ledger_entries").fetchone()
    if not isinstance(low, int) or not isinstance(high, int) or high - low + 1 < max(PARALLEL_MIN_ROWS, 2 * ALIGN):
        return None
    first = (high - low + 1) // WORKERS // ALIGN * ALIGN
    cut = low + first - 1
    return [f"seq <= {cut}", f"seq > {cut}"]


def _seam_values(connection: sqlite3.Connection, wheres: list[str]) -> list[Any]:
    """Each later part's first ``prev_hash`` against the earlier part's last ``hash``: link or not."""
    links = []
    for before, after in itertools.pairwise(wheres):
        last = connection.execute(
            f"SELECT hash FROM ledger_entries WHERE {before} ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        first = connection.execute(
            f"SELECT prev_hash FROM ledger_entries WHERE {after} ORDER BY seq LIMIT 1"
        ).fetchone()
        links.append(last is not None and first is not None and first[0] != last[0])
    return links


def scan(path: str, meanwhile: Callable[[list[SignedCheckpoint], list[Any]], Any] | None = None) -> Scan:
    """Checkpoints, nodes, rotations and every entry's verdicts and leaves, in one snapshot.

    ``meanwhile(checkpoints, rotations)`` runs here while the workers hash (the checkpoint signatures:
    ~1 ms each on a busy machine, a second at a checkpoint per 1,000 entries); its result is
    :attr:`Scan.meanwhile`.
    """
    during: Any = None
    if not Path(path).is_file():
        raise FileNotFoundError(f"no SQLite database at {path}")
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        try:
            writable = os.access(path, os.W_OK)
            connection.execute("BEGIN IMMEDIATE" if writable else "BEGIN")
            checkpoints, nodes, rotations = _tables(connection)
            wheres = _split_where(connection) if writable else None
            head_row = connection.execute("SELECT hash FROM ledger_entries ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.OperationalError as exc:
            raise UnrepresentableError(str(exc)) from None
        if wheres is None:
            results = [_hash_part(connection, "1 = 1", GENESIS.hex())]
            seams: list[Any] = []
            during = meanwhile(checkpoints, rotations) if meanwhile is not None else None
        else:
            seams = _seam_values(connection, wheres)
            workers = [_spawn(path, where, GENESIS.hex() if not i else None) for i, where in enumerate(wheres)]
            streams = [worker.stdout for worker in workers if worker.stdout is not None]
            for stream in streams:  # each worker's snapshot is taken while this one holds the write lock
                if stream.readline() != b"ready\n":
                    raise UnrepresentableError("a verification worker could not open the database")
            connection.execute("ROLLBACK")
            during = meanwhile(checkpoints, rotations) if meanwhile is not None else None
            results = [_collect(stream) for stream in streams]
            workers, running = [], workers
            for worker in running:
                worker.wait()
    finally:
        for worker in workers:  # only on an error: stop the workers this call started
            worker.kill()
            worker.wait()
        connection.close()
    found = _assemble(checkpoints, nodes, rotations, results, seams, head_row)
    found.meanwhile = during
    return found


def _assemble(
    checkpoints: list[SignedCheckpoint],
    nodes: dict[tuple[int, int], str],
    rotations: list[Any],
    results: list[tuple[dict[str, Any], list[bytes]]],
    seams: list[Any],
    head_row: Any,
) -> Scan:
    if any(header.get("odd") for header, _ in results):
        raise UnrepresentableError("an entry's seq is not an integer, or its text is not UTF-8")
    total = sum(header["rows"] for header, _ in results)
    seq = np.concatenate([np.zeros(0, dtype=np.int64)] + [np.frombuffer(a[0], dtype=np.int64) for _, a in results])
    link = np.zeros(total, dtype=bool)
    bad = np.zeros(total, dtype=bool)
    offset = 0
    for index, (header, _) in enumerate(results):
        link[np.asarray(header["link"], dtype=np.int64) + offset] = True
        bad[np.asarray(header["bad"], dtype=np.int64) + offset] = True
        if index and header["rows"] and seams[index - 1]:
            link[offset] = True
        offset += header["rows"]
    parts = [(header["rows"], arrays[1:]) for header, arrays in results if header["rows"]]
    levels = _levels(parts) if total else []
    head = head_row[0] if head_row is not None else GENESIS.hex()
    return Scan(checkpoints, nodes, rotations, seq, link, bad, levels, head)
