"""The native verifier path on SQLite: the row loop in C (``ledger/_chainhash.c``), the report in Python.

Why C: issue 21 asks for >= 500,000 entries/s at 1,000,000 entries on two cores. The DuckDB path
(:mod:`ledger.fastduck`) spends ~5.5-6 CPU-seconds there, most of it reading through ADBC in a
second process and in DuckDB's software SHA-256; Python's own hashlib would pay a microsecond of
interpreter per call. The extension reads the entries straight from SQLite, builds each
canonical body, and checks and hashes with OpenSSL's libcrypto (SHA extensions of the CPU) on two
threads while a third reads: ~0.6 CPU-seconds of reading and ~1.1 of checking per million
entries. bench/fastverify_bench.py at 1,000,000 entries (same run, load average 4.6 on the 2-core
machine): 1.64 s, 609k entries/s, 1.7 CPU-seconds, 261 MB peak; the DuckDB path 7.2 s (5.4
CPU-s, 796 MB), the reference 9.5 s (5.5 CPU-s). Under heavier load (9) the CPU was 2.05 s.

Which SQLite: the extension links the system ``libsqlite3.so.0``, the very library Python's
``_sqlite3`` links here (``ldd`` of both names ``/lib/x86_64-linux-gnu/libsqlite3.so.0``, SQLite
3.40.1), so the process holds one copy of SQLite and its POSIX locks stay coherent with the
application's and the reference verifier's connections (sqlite.org/howtocorrupt.html, "multiple
copies of SQLite linked into the same application": the reason :mod:`ledger.fastread` reads
through ADBC in a separate process). :func:`same_sqlite` checks that the two run the same
library (the dynamic linker's answer) before the path is used by default.

What stays in Python: everything after the row loop, shared with the DuckDB path
(:func:`ledger.fastverify.report_from_rows`), and the rows the C code does not encode itself:
"slow" rows (a hash that is not 64 hex digits, a string that JSON escapes) are recomputed by
the reference's own :func:`ledger.reference.recompute_entry`. Storage the C code cannot mirror
exactly (a value of another storage class than the schema's, NULL, text that is not valid
UTF-8, an SQLite error) raises :class:`~ledger.errors.UnrepresentableError`, and the caller
hands the database to the reference verifier, as on the DuckDB path.

The extension is optional (``setup.py``): without a C compiler the build goes on, and
:data:`AVAILABLE` is false.
"""

from __future__ import annotations

import _sqlite3
import importlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ledger.checkpoints import SignedCheckpoint
from ledger.errors import UnrepresentableError
from ledger.keyring import ROTATION_ACTION
from ledger.queries import ENTRY_FIELDS
from ledger.reference import recompute_entry
from ledger.storage import BUSY_TIMEOUT_MS, sqlite_path

__all__ = [
    "AVAILABLE",
    "BUSY_TIMEOUT_MS",
    "WORKERS",
    "NativeScan",
    "merkle_levels",
    "same_sqlite",
    "scan_sqlite",
    "sqlite_file",
]


_chainhash: ModuleType | None
try:
    _chainhash = importlib.import_module("ledger._chainhash")
except ImportError:  # not built: the DuckDB path answers
    _chainhash = None

AVAILABLE = _chainhash is not None
"""Whether the C extension was built and imports."""

WORKERS = 2
"""Checking threads beside the reading thread. The target machine has two cores, and the reading
thread needs ~0.6 CPU-s per million entries where the checking needs ~1.1: two checkers share
the second core and whatever the reader leaves of the first."""

_FLAG_LINK, _FLAG_BAD, _FLAG_SLOW = 1, 2, 4

# Every column the reference reads, the note among them (FINDINGS21a F1: both check it, with
# ledger.reference.note_problems; text that is not UTF-8 there sends the database to the reference).
_OK_TEXT = " AND ".join(f"typeof({c}) = 'text'" for c in ("root", "time", "signature", "public_key", "note"))
_CHECKPOINTS = (
    "SELECT tree_size, root, time, signature, public_key, note, typeof(tree_size) = 'integer' AND "
    f"{_OK_TEXT} AS ok FROM ledger_checkpoints ORDER BY tree_size"
)
_NODES = (
    "SELECT level, idx, hash, typeof(level) = 'integer' AND typeof(idx) = 'integer' AND typeof(hash) = 'text' AS ok "
    "FROM ledger_nodes"
)
# As the reference's rotation_rows: SQL equality on the action, in seq order.
_ROTATIONS = f"SELECT seq, payload FROM ledger_entries WHERE action = '{ROTATION_ACTION}' ORDER BY seq"
_ENTRIES = f"SELECT {', '.join(ENTRY_FIELDS)} FROM ledger_entries ORDER BY seq"


@dataclass(slots=True)
class NativeScan:
    """The three ledger tables as one read transaction saw them, the entries already checked.

    ``link``/``bad`` are per row in seq order, ``leaves`` the (n, 32) Merkle leaves the
    reference would feed its tree; slow rows are already recomputed.
    """

    checkpoints: list[SignedCheckpoint]
    nodes: dict[tuple[int, int], str]
    rotations: list[tuple[int, object]]
    seq: np.ndarray
    link: np.ndarray
    bad: np.ndarray
    leaves: np.ndarray
    head: str | None
    slow_rows: int


def sqlite_file(url: str) -> str:
    """The database file of an SQLite URL (a file: the verifiers open it again, in another connection).

    A ``file:`` URI (``sqlite:///file:/path/keyong.db?mode=rw&uri=true``, which SQLAlchemy and Settings
    accept) names its file in the URI's path: the verifiers open that file, read-only or as they do any
    other, and ignore the URI's parameters. Refusing it made ``ledger verify`` fail on such a home unless
    ``--reference`` was given (the reference verifier uses the engine as it is)."""
    path = sqlite_path(url)
    if path is None:
        raise ValueError(f"fast_verify needs an SQLite database file, not {url!r}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"no SQLite database at {path}")
    return path


def same_sqlite() -> bool:
    """Does the extension run the very SQLite that Python's sqlite3 runs (one copy in the process)?

    Asked of the dynamic linker: the address of ``sqlite3_libversion`` as ``_sqlite3`` resolves it
    must be the extension's own. Anything else (another copy, no ``_sqlite3`` file) is a no.
    """
    if _chainhash is None or _chainhash.sqlite_version != sqlite3.sqlite_version:
        return False
    module = getattr(_sqlite3, "__file__", None)
    return bool(module) and bool(_chainhash.same_sqlite_as(module))


def scan_sqlite(url: str, workers: int = WORKERS) -> NativeScan:
    """Read and check an SQLite ledger in C; raises UnrepresentableError for what only the reference mirrors."""
    if _chainhash is None:
        raise RuntimeError("the ledger._chainhash extension is not built")
    path = sqlite_file(url)
    readonly = not os.access(path, os.W_OK)
    try:
        results, scan = _chainhash.snapshot(
            str(Path(path)), readonly, BUSY_TIMEOUT_MS, [_CHECKPOINTS, _NODES, _ROTATIONS], _ENTRIES, workers
        )
    except _chainhash.Error as exc:  # the reference meets the same database and reports in its own terms
        raise UnrepresentableError(f"SQLite: {exc}") from None
    except UnicodeDecodeError:
        raise UnrepresentableError("a checkpoint, node or rotation holds text that is not UTF-8") from None
    if scan is None:
        raise UnrepresentableError("an entry holds a value of another storage class, NULL, or text that is not UTF-8")
    cp_rows, node_rows, rotation_rows = results
    if not all(row[-1] for row in cp_rows) or not all(row[-1] for row in node_rows):
        raise UnrepresentableError("a checkpoint or node value has an unexpected storage class")
    return _assemble(scan, cp_rows, node_rows, rotation_rows)


def _assemble(
    scan: tuple[Any, ...], cp_rows: list[tuple[Any, ...]], node_rows: list[tuple[Any, ...]], rotations: list[Any]
) -> NativeScan:
    n, seq_bytes, flag_bytes, leaf_bytes, slow, head = scan
    flags = np.frombuffer(flag_bytes, dtype=np.uint8)
    leaves = np.frombuffer(leaf_bytes, dtype=np.uint8).reshape(n, 32)
    bad = (flags & _FLAG_BAD) != 0
    if slow:
        leaves = leaves.copy()
        for position, row in slow:
            row_bad, leaf = recompute_entry(row)
            bad[position] = row_bad
            leaves[position] = np.frombuffer(leaf, dtype=np.uint8)
    return NativeScan(
        checkpoints=[SignedCheckpoint(r[0], r[1], r[2], r[3], r[4], r[5]) for r in cp_rows],
        nodes={(r[0], r[1]): r[2] for r in node_rows},
        rotations=[(int(r[0]), r[1]) for r in rotations],
        seq=np.frombuffer(seq_bytes, dtype=np.int64),
        link=(flags & _FLAG_LINK) != 0,
        bad=bad,
        leaves=leaves,
        head=head,
        slow_rows=len(slow),
    )


def merkle_levels(leaves: np.ndarray, workers: int = 2) -> list[np.ndarray]:
    """Every perfect Merkle level over ``leaves`` (level 0 itself first), hashed in C."""
    if _chainhash is None:
        raise RuntimeError("the ledger._chainhash extension is not built")
    upper = _chainhash.merkle_levels(np.ascontiguousarray(leaves), workers)
    return [leaves, *(np.frombuffer(level, dtype=np.uint8).reshape(-1, 32) for level in upper)]
