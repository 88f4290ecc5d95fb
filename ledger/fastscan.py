"""Proving an SQLite ledger clean at speed: hash the bytes SQLite itself lays out, or stand aside.

Why a third path: :mod:`ledger.fastverify` reads nine columns as Arrow and rebuilds every entry
body in DuckDB, whose SHA-256 is plain software (~2 us per 360-byte body): ~5.8 CPU-seconds per
million entries. Almost every verification finds nothing wrong, and proving that needs far less
than naming the first bad entry. Here SQLite (ADBC's copy, 3.44 or newer: ``concat``) lays out each
canonical body itself, and two processes, each over one half of the rows in one shared snapshot,
run one ``sha256`` per entry (SHA-NI, ~0.5 us) over slices of the Arrow buffer, with no Python
object per column.

The answer is only ever "clean", with the very report the reference gives a clean ledger, or
``None``: then :func:`ledger.fastverify.fast_verify` runs its full path, which names every problem
exactly as the reference does. So a tampered ledger costs this attempt plus the full path, and
no report is ever built here from a shortcut. "Clean" is claimed only when every fact the
reference checks holds, each shown without trusting a fast-path assumption:

- seq: ``seq`` is the rowid, so an integer and unique; ``min = 1``, ``max = count = n`` and each
  half holding exactly its ``hi - lo + 1`` rows give exactly 1..n in order: no gap, no order problem;
- links: every ``prev_hash`` is 64 characters and equals the previous row's ``hash`` text (the
  seam between the halves compared here), the first one the genesis hex;
- hashes: ``sha256(fromhex(prev_hash) || body) == fromhex(hash)`` for every row, where ``body`` is
  exactly :func:`ledger.entry.entry_body`'s bytes because (a) ``concat`` keeps every byte, NUL
  included (``printf`` would stop at a NUL), (b) time, payload and prev_hash are raw text in both,
  (c) the four JSON strings hold nothing ``encode_basestring`` escapes (``"``, ``\\``, below 0x20),
  checked over their bytes, (d) every column's storage class is the schema's (``typeof``), so no
  BLOB or number is rendered as text, and (e) the body is valid UTF-8 (Arrow's full validation;
  the reference's sqlite3 would fail to decode anything else);
- the Merkle tree: every stored node of level >= STORED_MIN_LEVEL inside the tree equals the
  recomputed one, none lies beyond the end, every checkpoint of positive size is at most ``n`` and
  its root matches; every checkpoint's key and signature pass :func:`ledger.keyring.signature_problems`.

One snapshot: this process holds SQLite's write lock (``BEGIN IMMEDIATE``, through Python's own
sqlite3) while it reads the small tables and until both workers have taken their first read, so
all three see the same commit. The workers import nothing of Keyong: each runs this module's own
worker source under ``python -I`` (ADBC's SQLite must live in a process of its own:
:mod:`ledger.fastread` explains why).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import make_url

from ledger.checkpoints import SignedCheckpoint
from ledger.keyring import ROTATION_ACTION, signature_problems
from ledger.merkle import STORED_MIN_LEVEL, TreeAppender, node_hash
from ledger.report import GENESIS_HEX, VerifyReport

__all__ = ["MIN_ROWS", "prove_clean"]

MIN_ROWS = 50_000
"""Below this many entries the full path is about as quick as starting two worker processes."""

BUSY_TIMEOUT_MS = 30_000

_TYPES_OK = " AND ".join(
    f"typeof({c}) = 'text'" for c in ("time", "actor", "role", "action", "subject", "payload", "prev_hash", "hash")
)
# The body exactly as ledger.entry.entry_body lays it out, once the guards above hold.
_BODY = (
    """concat('{"action":"', action, '","actor":"', actor, '","payload":', payload, ',"prev_hash":"', prev_hash,"""
    """ '","role":"', role, '","seq":', seq, ',"subject":"', subject, '","time":"', time, '"}', char(0))"""
)
_ENTRIES_SQL = (
    f"SELECT CASE WHEN {_TYPES_OK} THEN {_BODY} END AS body, prev_hash, hash, "
    "action || actor || role || subject AS names FROM ledger_entries WHERE seq BETWEEN %d AND %d ORDER BY seq"
)
_CHECKPOINTS_SQL = (
    "SELECT tree_size, root, time, signature, public_key, typeof(tree_size) = 'integer' AND "
    + " AND ".join(f"typeof({c}) = 'text'" for c in ("root", "time", "signature", "public_key"))
    + " FROM ledger_checkpoints ORDER BY tree_size"
)
_NODES_SQL = (
    "SELECT level, idx, hash, typeof(level) = 'integer' AND typeof(idx) = 'integer' AND typeof(hash) = 'text' "
    "FROM ledger_nodes"
)


class _NotClean(Exception):
    """Something the shortcut cannot vouch for: the full path decides."""


# --- the worker process (self-contained: its source runs under python -I) ----------------------


def _worker_rows(job: dict[str, Any]) -> Any:
    """One snapshot's rows ``lo..hi`` as an Arrow table; says ``ready`` once the snapshot is taken."""
    import sys

    import adbc_driver_sqlite.dbapi as dbapi

    connection = dbapi.connect(job["path"])  # autocommit off: one read transaction
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {job['busy_ms']}")
            cursor.execute("SELECT count(*) FROM sqlite_master")
            cursor.fetchall()
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            cursor.execute(job["sql"])
            return cursor.fetch_arrow_table()
        finally:
            cursor.close()
    finally:
        connection.close()


def _worker_text(column: Any, width: int | None) -> bytes:
    """A text column without nulls, valid UTF-8 (as the reference's sqlite3 decodes it), its
    values back to back (each ``width`` long when given)."""
    import pyarrow as pa

    if column.null_count or not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise ValueError(f"nulls or type {column.type}")
    column.validate(full=True)
    pieces = []
    for chunk in column.chunks:
        if not len(chunk):
            continue
        code = "q" if pa.types.is_large_string(chunk.type) else "i"
        offsets = memoryview(chunk.buffers()[1]).cast(code)[chunk.offset : chunk.offset + len(chunk) + 1]
        first, last = offsets[0], offsets[-1]
        if width is not None and offsets.tolist() != list(range(first, first + width * len(chunk) + 1, width)):
            raise ValueError(f"a value is not {width} characters long")
        pieces.append(memoryview(chunk.buffers()[2])[first:last])
    return b"".join(pieces)


def _worker_check(job: dict[str, Any]) -> dict[str, Any]:
    """Rows ``lo..hi``: all present, linked, hashing to their hash; writes their Merkle leaves."""
    import binascii
    import hashlib
    import re
    from collections import deque

    table = _worker_rows(job)
    if table.num_rows != job["hi"] - job["lo"] + 1:
        return {"clean": False, "why": "seq gap"}
    names = _worker_text(table.column("names"), None)
    if len(names.translate(None, bytes(range(32)) + b'"\\')) != len(names):
        return {"clean": False, "why": "a JSON string needs escaping"}
    # Each body ends in a NUL, which no clean body holds (the JSON strings were just checked, and
    # canonical JSON escapes NUL): one C-level split yields every body.
    bodies = _worker_text(table.column("body"), None).split(b"\0")
    hashes = _worker_text(table.column("hash"), 64)
    prevs = _worker_text(table.column("prev_hash"), 64)
    if len(bodies) != table.num_rows + 1 or bodies[-1] or prevs[64:] != hashes[:-64]:
        return {"clean": False, "why": "a NUL in a body, or a link"}
    stored = binascii.a2b_hex(hashes)
    sha256, whole = hashlib.sha256, re.compile(b".{32}", re.S)
    kind = type(sha256())
    states = list(map(sha256, [binascii.a2b_hex(prevs[:64]), *whole.findall(stored, 0, len(stored) - 32)]))
    deque(map(kind.update, states, bodies), 0)
    if b"".join(map(kind.digest, states)) != stored:
        return {"clean": False, "why": "hash"}
    prefixed = re.findall(b".{33}", b"\x00" + b"\x00".join(whole.findall(stored)), re.S)  # RFC 9162 leaf prefix
    leaves = b"".join(map(kind.digest, map(sha256, prefixed)))
    with open(job["out"], "wb") as handle:
        handle.write(leaves)
    return {"clean": True, "first_prev": prevs[:64].decode(), "last_hash": hashes[-64:].decode()}


def _worker_main(job_json: str) -> None:
    import json
    import sys

    try:
        result = _worker_check(json.loads(job_json))
    except Exception as exc:  # anything unexpected: not clean, the full path decides
        result = {"clean": False, "why": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(result) + "\n")


def _worker_code() -> str:
    functions = (_worker_rows, _worker_text, _worker_check, _worker_main)
    source = "\n\n".join(inspect.getsource(function) for function in functions)
    return f"from __future__ import annotations\nfrom typing import Any\n\n{source}\n\n_worker_main(__import__('sys').argv[1])\n"


# --- this process -----------------------------------------------------------------------------


def prove_clean(url: str, public_key_hex: str | list[str]) -> VerifyReport | None:
    """The reference's report when the SQLite ledger at ``url`` is clean; ``None`` when it may
    not be, or when this path does not apply (another database, a small or read-only ledger)."""
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
        return None
    if not Path(path).is_file() or not os.access(path, os.W_OK):  # the snapshot guard needs the write lock
        return None
    trusted = [public_key_hex] if isinstance(public_key_hex, str) else list(public_key_hex)
    try:
        return _prove(path, trusted)
    except Exception:  # _NotClean, or anything unexpected: the full path decides, never this one
        return None


def _prove(path: str, trusted: list[str]) -> VerifyReport | None:
    guard = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        guard.execute("BEGIN IMMEDIATE")  # no commit lands until every worker holds its snapshot
        ((low, high, n),) = guard.execute("SELECT min(seq), max(seq), count(*) FROM ledger_entries").fetchall()
        if n < max(MIN_ROWS, 1):
            return None
        if low != 1 or high != n:
            raise _NotClean("seq is not exactly 1..n")
        cps, nodes, rotations = _small_tables(guard)
        with tempfile.TemporaryDirectory(prefix="keyong-scan-", dir=_scratch()) as directory:
            parts = _run_workers(guard, path, n, directory)
            leaves = b"".join(Path(directory, f"leaves-{i}").read_bytes() for i in range(len(parts)))
    finally:
        guard.close()  # rolls the guard back if the workers failed to start
    _check_seams(parts)
    _check_tree(leaves, n, cps, nodes)
    if signature_problems(cps, rotations, trusted):
        raise _NotClean("a checkpoint signature or key")
    return VerifyReport(entries=n, head=parts[-1]["last_hash"], checkpoints=len(cps))


def _small_tables(
    guard: sqlite3.Connection,
) -> tuple[list[SignedCheckpoint], dict[tuple[int, int], str], list[tuple[int, Any]]]:
    """Checkpoints, stored nodes and rotations (by the action index), of the schema's storage classes."""
    cps, nodes = [], {}
    for tree_size, root, time, signature, public_key, ok in guard.execute(_CHECKPOINTS_SQL):
        if not ok:
            raise _NotClean("a checkpoint value of another storage class")
        cps.append(SignedCheckpoint(tree_size, root, time, signature, public_key))
    for level, idx, node, ok in guard.execute(_NODES_SQL):
        if not ok:
            raise _NotClean("a node value of another storage class")
        nodes[(level, idx)] = node
    rotations = [
        (seq, payload)
        for seq, payload in guard.execute(
            "SELECT seq, payload FROM ledger_entries WHERE action = ? ORDER BY seq", (ROTATION_ACTION,)
        )
    ]
    return cps, nodes, rotations


def _scratch() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _run_workers(guard: sqlite3.Connection, path: str, n: int, directory: str) -> list[dict[str, Any]]:
    """Two workers over the halves of 1..n (one for a single row); releases the guard once both read."""
    middle = n // 2
    ranges = [(1, middle), (middle + 1, n)] if middle else [(1, n)]
    code = _worker_code()
    workers = []
    try:
        for i, (lo, hi) in enumerate(ranges):
            job = {
                "path": path,
                "busy_ms": BUSY_TIMEOUT_MS,
                "lo": lo,
                "hi": hi,
                "sql": _ENTRIES_SQL % (lo, hi),
                "out": os.path.join(directory, f"leaves-{i}"),
            }
            command = [sys.executable, "-I", "-c", code, json.dumps(job)]
            workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline() != "ready\n":
                raise _NotClean("a worker did not take its snapshot")
        guard.execute("ROLLBACK")
        results = [json.loads(worker.communicate()[0] or "{}") for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    if not all(result.get("clean") for result in results):
        raise _NotClean("a worker found something")
    return results


def _check_seams(parts: list[dict[str, Any]]) -> None:
    """The first row links to the genesis, and each half's first row to the previous half's last."""
    expected = GENESIS_HEX
    for part in parts:
        if part["first_prev"] != expected:
            raise _NotClean("link at a seam")
        expected = part["last_hash"]


def _levels(leaves: bytes) -> list[bytes]:
    """Every perfect Merkle level as 32-byte hashes back to back: level k+1 from pairs of level k."""
    sha256, nodes = hashlib.sha256, re.compile(b".{65}", re.S)
    digest = type(sha256()).digest
    levels = [leaves]
    while len(levels[-1]) >= 64:
        m = len(levels[-1]) // 64
        pairs = np.empty((m, 65), dtype=np.uint8)
        pairs[:, 0] = 1  # RFC 9162 interior-node prefix
        pairs[:, 1:] = np.frombuffer(levels[-1], dtype=np.uint8, count=64 * m).reshape(m, 64)
        levels.append(b"".join(map(digest, map(sha256, nodes.findall(pairs.tobytes())))))
    return levels


def _check_tree(leaves: bytes, n: int, cps: list[SignedCheckpoint], stored: dict[tuple[int, int], str]) -> None:
    """Stored nodes and checkpoint roots against the tree of the ``n`` leaves, as the reference compares them."""
    if len(leaves) != 32 * n:
        raise _NotClean("leaves missing")
    levels = _levels(leaves)
    stored = dict(stored)
    for level in range(STORED_MIN_LEVEL, len(levels)):
        row = levels[level]
        for idx in range(len(row) // 32):
            if stored.pop((level, idx), None) != row[32 * idx : 32 * idx + 32].hex():
                raise _NotClean("a stored Merkle node")
    if any((idx + 1) << level > n for level, idx in stored):
        raise _NotClean("stored nodes beyond the end")
    for cp in cps:
        if cp.tree_size <= 0:
            continue
        if cp.tree_size > n:
            raise _NotClean("a checkpoint beyond the end")
        pieces = [levels[level][32 * idx : 32 * idx + 32] for level, idx in TreeAppender.frontier_coords(cp.tree_size)]
        root = pieces[-1]
        for piece in reversed(pieces[:-1]):
            root = node_hash(piece, root)
        if root.hex() != cp.root:
            raise _NotClean("a checkpoint root")
