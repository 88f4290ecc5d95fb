"""Fast ledger verification: the same report as the reference (:mod:`ledger.reference`), faster.

Why a second verifier: the reference walks a million entries through Python one row at a time
(~70-110k entries/s), so a regulator's full check of a year's ledger takes minutes. Two fast
paths compute the per-row verdicts (gap, link, content hash) and the Merkle leaves, and this
module turns them into the reference's report (:func:`report_from_rows`):

- ``native`` (SQLite, when the C extension is built: :mod:`ledger.native`): the row loop in C
  with OpenSSL's SHA-256, ~1.7-2 CPU-seconds per million entries on the project's 2-core machine
  (609k entries/s in bench/fastverify_bench.py at 1,000,000 entries, issue 21's target 500k);
- ``duckdb`` (PostgreSQL, or SQLite without the extension: :mod:`ledger.fastduck`): Arrow
  tables and DuckDB SQL, ~6 CPU-seconds per million (the reference: ~6.3, on one core).

Python only folds the <= 64 perfect nodes of each checkpoint size into a root, checks Ed25519
signatures, compares the stored nodes, and recomputes the rare rows the fast paths cannot be
trusted to encode exactly (:func:`ledger.reference.recompute_entry`).

Equivalence with the reference is the contract (``tests/test_fastverify.py`` holds both paths to
it), so every quirk of the reference is mirrored on purpose:

- rows are visited in ``seq`` order; the row *position*, not ``seq``, is the Merkle leaf index;
- ``expected`` is always the previous row's ``seq + 1`` (1 for the first row): a gap reports
  ``missing`` at ``expected``, a smaller ``seq`` (only possible for the first row) ``order``;
- a row whose ``hash`` or ``prev_hash`` is not hex feeds ``sha256(str(hash).encode())`` to the
  tree, exactly as the reference's ``except`` branch does;
- JSON strings: Python's ``encode_basestring`` escapes ``"``, ``\\`` and characters below 0x20
  and nothing else; rows whose strings hold any of those are recomputed in Python;
- the reference feeds the Merkle tree after each ``fetchmany(50_000)`` chunk, so a chunk's
  ``merkle_node``/``checkpoint_root`` problems follow that chunk's row problems and precede the
  next chunk's; at one leaf, nodes come lowest level first, then the checkpoint root;
- the ``MAX_PROBLEMS`` cap, ``last_good`` bound of ``checkpoint_root``, and both truncation rules
  (a signed size past the end; stored nodes past the end, only when no checkpoint is pending).

Storage the fast paths cannot represent exactly is handed to the reference verifier itself, so
the report stays identical: on SQLite, a value whose storage class is not the one the schema
declares (a BLOB in a TEXT column, text in an INTEGER column, NULL: only an attacker writing the
file can store those), a seq that is not an integer, or text that is not valid UTF-8 (which the
reference reports as ``unreadable``, naming the row); on either database, an Arrow column of an
unexpected type.
Such a database is pathological, and its verification simply runs at the reference's speed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from ledger import native
from ledger.checkpoints import SignedCheckpoint
from ledger.errors import UnrepresentableError
from ledger.keyring import signature_problems
from ledger.merkle import STORED_MIN_LEVEL, TreeAppender, node_hash
from ledger.reference import CHUNK, note_problems, reaches_past, verify_reference
from ledger.report import MAX_PROBLEMS, Problem, VerifyReport

__all__ = ["PATHS", "Rows", "default_path", "fast_verify", "gaps", "report_from_rows"]

# Order of problems of one row, and of Merkle events at one leaf (nodes sort by level, < 64).
_ROW_GAP, _ROW_LINK, _ROW_HASH = 0, 1, 2
_ROOT_ORDER = 1 << 20

PATHS = ("native", "duckdb")
"""The two fast paths: C over SQLite (:mod:`ledger.native`), and Arrow + DuckDB (either database)."""


def fast_verify(
    url: str,
    public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey],
    public_key_hex: str | Sequence[str],
    *,
    path: str | None = None,
    lock_timeout_ms: int = native.BUSY_TIMEOUT_MS,
) -> VerifyReport:
    """Verify the ledger at ``url`` (a SQLAlchemy URL: ``sqlite:///PATH`` or ``postgresql+psycopg://...``).

    Returns the very report the reference verifier returns for the same database state and
    ``public_key``: the same problems in the same order, entries, head and checkpoint count.
    ``public_key_hex`` is the key's raw hex, which stored checkpoints must name (several of each
    when the verifier trusts several keys; rotations are followed as :mod:`ledger.keyring` says).
    ``path`` picks one of :data:`PATHS` (default: native on SQLite when the extension is built,
    else duckdb); the report's ``method`` says which one answered, or ``reference`` when the
    database held storage only the reference mirrors. ``lock_timeout_ms``: how long a read waits on a lock
    another session holds on PostgreSQL (or, on the DuckDB path, SQLite's busy timeout) before it fails.
    """
    chosen = path or default_path(url)
    if chosen not in PATHS:
        raise ValueError(f"unknown verification path {chosen!r}; one of {PATHS}")
    try:
        if chosen == "native":
            if not native.AVAILABLE or make_url(url).get_backend_name() != "sqlite":
                raise ValueError("the native path needs the built extension and an SQLite ledger")
            report = _verify_native(url, public_key_hex)
        else:
            from ledger.fastduck import verify_duckdb  # DuckDB and pyarrow only when this path runs

            report = verify_duckdb(url, public_key_hex, lock_timeout_ms)
    except UnrepresentableError:
        return _reference_verify(url, public_key, lock_timeout_ms)
    report.method = chosen
    return report


def default_path(url: str) -> str:
    """native on SQLite when the extension is built and runs Python's own SQLite library, else duckdb."""
    sqlite = make_url(url).get_backend_name() == "sqlite"
    return "native" if sqlite and native.AVAILABLE and native.same_sqlite() else "duckdb"


def _reference_verify(
    url: str, public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey], lock_timeout_ms: int
) -> VerifyReport:
    """The reference verifier over ``url``, for storage the vectorized path cannot mirror."""
    engine = create_engine(url)
    try:
        return verify_reference(engine, public_key, lock_timeout_ms=lock_timeout_ms)
    finally:
        engine.dispose()


def _root(levels: list[np.ndarray], size: int) -> bytes:
    """MTH of the first ``size`` leaves: the right fold of the perfect nodes of its frontier."""
    pieces: list[bytes] = [levels[level][idx].tobytes() for level, idx in TreeAppender.frontier_coords(size)]
    acc = pieces[-1]
    for piece in reversed(pieces[:-1]):
        acc = node_hash(piece, acc)
    return acc


@dataclass(slots=True)
class Rows:
    """Per-row verdicts in row order, and the leaf hashes the reference would feed its tree."""

    seq: np.ndarray
    gap: np.ndarray
    link: np.ndarray
    bad: np.ndarray
    leaves: np.ndarray


def gaps(seq: np.ndarray) -> np.ndarray:
    """Rows whose seq is not the previous row's + 1 (the first row's not 1): the reference's ``expected``."""
    gap = np.empty(len(seq), dtype=bool)
    if len(seq):
        gap[0] = seq[0] != 1
        np.not_equal(seq[1:], seq[:-1] + 1, out=gap[1:])
    return gap


def _row_problems(rows: Rows, limit: int) -> tuple[list[tuple[tuple[int, ...], Problem]], int]:
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


@dataclass(slots=True)
class _MerkleEvents:
    """What the Merkle side found: problems keyed for merging, their count, and a pending checkpoint."""

    events: list[tuple[tuple[int, ...], Problem]]
    total: int
    pending: SignedCheckpoint | None


def _merkle_problems(
    levels: list[np.ndarray], stored: dict[tuple[int, int], str], sizes: list[SignedCheckpoint], n: int
) -> _MerkleEvents:
    """Stored nodes that differ (popped from ``stored``) and checkpoint roots that do not match.

    Keys sort each problem where the reference reports it: after its chunk's row problems, at its
    last leaf, nodes by level and the checkpoint root after them.
    """
    found = _MerkleEvents([], 0, None)
    for level in range(STORED_MIN_LEVEL, len(levels)):
        for idx, node in enumerate(levels[level]):
            if stored.pop((level, idx), None) != node.tobytes().hex():
                end = ((idx + 1) << level) - 1
                detail = f"stored Merkle node ({level}, {idx}) does not match entries"
                problem = Problem(idx * (1 << level) + 1, "merkle_node", detail)
                found.events.append(((end // CHUNK, 1, end, level), problem))
                found.total += 1
    last_good = 0
    for cp in sizes:
        if cp.tree_size > n:
            found.pending = cp
            break
        if _root(levels, cp.tree_size).hex() == cp.root:
            last_good = cp.tree_size
            continue
        end = cp.tree_size - 1
        detail = (
            f"signed checkpoint of size {cp.tree_size} does not match entries "
            f"{last_good + 1}..{cp.tree_size}: history was rewritten"
        )
        found.events.append(((end // CHUNK, 1, end, _ROOT_ORDER), Problem(last_good + 1, "checkpoint_root", detail)))
        found.total += 1
    return found


def _truncation_problems(pending: SignedCheckpoint | None, stored: dict[tuple[int, int], str], n: int) -> list[Problem]:
    """A signed size past the end; stored nodes past the end (only when no checkpoint is pending)."""
    last: list[Problem] = []
    if pending is not None:
        detail = f"a checkpoint of size {pending.tree_size} was signed but only {n} entries remain"
        last.append(Problem(n + 1, "truncated", detail))
    if pending is None and any(reaches_past(coord, n) for coord in stored):
        last.append(Problem(n + 1, "truncated", "stored Merkle nodes cover entries that no longer exist"))
    return last


def _verify_native(url: str, public_key_hex: str | Sequence[str]) -> VerifyReport:
    scan = native.scan_sqlite(url)
    rows = Rows(scan.seq, gaps(scan.seq), scan.link, scan.bad, scan.leaves) if len(scan.seq) else None
    return report_from_rows(
        scan.checkpoints, scan.nodes, scan.rotations, rows, scan.head, native.merkle_levels, public_key_hex
    )


def report_from_rows(
    cps: list[SignedCheckpoint],
    stored_nodes: dict[tuple[int, int], str],
    rotations: list[tuple[int, object]],
    rows: Rows | None,
    head: str | None,
    levels_of: Callable[[np.ndarray], list[np.ndarray]],
    public_key_hex: str | Sequence[str],
) -> VerifyReport:
    """The reference's report from per-row verdicts: signatures, row problems, Merkle problems, truncation.

    Shared by both fast paths; ``rows`` is None for an empty ledger, ``levels_of`` computes the
    perfect Merkle levels over the leaves.
    """
    report = VerifyReport()
    report.checkpoints = len(cps)
    trusted = [public_key_hex] if isinstance(public_key_hex, str) else list(public_key_hex)
    first = signature_problems(cps, rotations, trusted) + note_problems(cps)

    n = 0 if rows is None else len(rows.seq)
    events: list[tuple[tuple[int, ...], Problem]] = []
    row_total = 0
    stored = dict(stored_nodes)
    sizes = [cp for cp in cps if cp.tree_size > 0]
    merkle = _MerkleEvents([], 0, sizes[0] if sizes else None)
    if rows is not None and head is not None:
        events, row_total = _row_problems(rows, MAX_PROBLEMS)
        merkle = _merkle_problems(levels_of(rows.leaves), stored, sizes, n)
        events += merkle.events
        report.head = head
    report.entries = n
    last = _truncation_problems(merkle.pending, stored, n)

    # Only the first row problems were spelled out; any later one sorts after MAX_PROBLEMS of
    # them, so the merged head is exact and the count covers the rest.
    events.sort(key=lambda event: event[0])
    total = len(first) + row_total + merkle.total + len(last)
    ordered = first + [problem for _, problem in events] + last
    report.problems = ordered[:MAX_PROBLEMS]
    report.truncated_problems = total > MAX_PROBLEMS
    return report
