"""The DuckDB path of the fast verifier (:mod:`ledger.fastverify`): Arrow tables, SQL, DuckDB's SHA-256.

The three ledger tables are read as Arrow inside one read transaction (:mod:`ledger.fastread`:
ADBC, except for small SQLite ledgers), and the per-row work runs in DuckDB over those Arrow
tables: the canonical entry body, its chain hash, the Merkle leaf hash, and every perfect Merkle
node level. Links and seq gaps are whole-column comparisons (pyarrow, numpy). It serves
PostgreSQL, and SQLite when the C extension of :mod:`ledger.native` is not built; its own module
so that the native path never imports DuckDB or pyarrow (~0.4 CPU-seconds).

Speed, on the project's 2-core machine at 1,000,000 entries (bench/fastverify_bench.py): ~5.6 s,
~180k entries/s on SQLite and PostgreSQL alike, 2.2 times the reference. It is CPU-bound on both
cores throughout: reading costs ~3.5 CPU-seconds (ADBC, two connections, plus SQLite's
storage-class check), the per-row query ~5 (DuckDB's sha256 is plain software, ~2 us per
360-byte entry body, where hashlib's SHA-NI would need 0.25 us but pays ~1 us of Python per
call), the Merkle levels ~1.2.

JSON strings: Python's ``encode_basestring`` escapes ``"``, ``\\`` and characters below 0x20 and
nothing else. Rows whose action/actor/role/subject hold none of those, and whose hashes are 64
hex digits each (DuckDB's ``unhex`` is then ``bytes.fromhex``), are encoded by DuckDB as
``'"' || s || '"'``; every other row is recomputed with the reference's own code
(:func:`ledger.reference.recompute_entry`), fetched alone. Storage it cannot represent exactly
(:mod:`ledger.fastread`) raises :class:`~ledger.errors.UnrepresentableError`.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ledger.entry import GENESIS
from ledger.fastread import BUSY_TIMEOUT_MS, Snapshot, int64_array, read_snapshot
from ledger.fastverify import Rows, gaps, report_from_rows
from ledger.keyring import ROTATION_ACTION
from ledger.queries import ENTRY_FIELDS
from ledger.reference import recompute_entry
from ledger.report import VerifyReport

__all__ = ["verify_duckdb"]

THREADS = 2
"""DuckDB worker threads: the target machine has two cores."""

DUCKDB_MIN_ROWS = 4096
"""Below this many hashes per Merkle level, hashlib beats a DuckDB round trip."""

_GENESIS_HEX = GENESIS.hex()

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


def verify_duckdb(url: str, public_key_hex: str | Sequence[str], busy_ms: int = BUSY_TIMEOUT_MS) -> VerifyReport:
    """The report of the ledger at ``url`` through Arrow and DuckDB (raises UnrepresentableError); its reads
    wait on a lock at most ``busy_ms``."""
    snapshot = read_snapshot(url, busy_ms)
    with _duckdb() as con:
        return _verify_snapshot(con, snapshot, public_key_hex)


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


# Columns taken apart from their raw buffers: pyarrow would import pandas (0.4 s) to convert them.


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


def _check_rows(con: duckdb.DuckDBPyConnection, entries: pa.Table) -> Rows:
    n = entries.num_rows
    seq = _int64s(entries.column("seq"))
    gap = gaps(seq)
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
        for position, row in zip(slow.tolist(), entries.take(int64_array(slow)).to_pylist(), strict=True):
            row_bad, leaf = recompute_entry([row[name] for name in ENTRY_FIELDS])
            bad[position] = row_bad
            leaves[position] = np.frombuffer(leaf, dtype=np.uint8)
    return Rows(seq, gap, link, bad, leaves)


def _rotations(entries: pa.Table) -> list[tuple[int, object]]:
    """The rotation entries ``(seq, payload)`` of the snapshot, in seq order."""
    if not entries.num_rows:
        return []
    chosen = entries.filter(pc.equal(entries.column("action"), ROTATION_ACTION))
    return list(zip(chosen.column("seq").to_pylist(), chosen.column("payload").to_pylist(), strict=True))


def _verify_snapshot(
    con: duckdb.DuckDBPyConnection, snapshot: Snapshot, public_key_hex: str | Sequence[str]
) -> VerifyReport:
    entries = snapshot.entries
    n = entries.num_rows
    rows = _check_rows(con, entries) if n else None
    head = entries.column("hash")[n - 1].as_py() if n else None
    levels = partial(_merkle_levels, con)
    return report_from_rows(
        snapshot.checkpoints, snapshot.nodes, _rotations(entries), rows, head, levels, public_key_hex
    )
