"""Benchmark of the ledger's Merkle tree (ledger/merkle/), against the naive RFC definition.

Why: a regulator's ``keyong ledger verify`` recomputes the root over every entry, and
``keyong ledger prove`` must answer at any ledger size without recomputing the tree. This
script measures both at ``--leaves`` leaves (default 1,000,000) and prints one JSON object
per line:

* ``leaf_hash``: SHA-256(0x00 || entry hash) for every entry (part of a full verification);
* ``root_from_leaf_hashes``: the level-by-level MTH, in µs per leaf;
* ``memory_source_build``: computing the stored perfect nodes (level >= 8) once;
* ``inclusion_proof`` / ``consistency_proof``: generation time via ``MemoryNodeSource`` once
  its nodes are built (median / p99 / max over random positions), with the number of calls
  made to the node source, and verification time;
* ``tree_appender``: per-append cost of the incremental builder, and resuming it from a source;
* ``naive_recursive_root`` / ``naive_recursive_path``: the literal recursive RFC 9162 §2.1
  definition on ``--baseline-leaves`` leaves (default 2**16) — the baseline — with the fast
  code on the same leaves in the same run for the speed-up.

Each root timing is the best of ``--repeat`` runs (default 3). Run:
``.venv/bin/python bench/merkle_bench.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from benchinfo import best_of, emit, machine

from ledger.merkle import (
    MemoryNodeSource,
    TreeAppender,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "median_ms": round(statistics.median(ordered) * 1e3, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 3),
        "max_ms": round(ordered[-1] * 1e3, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1e3, 3),
    }


class CountingSource:
    """Counts the calls a proof makes to the node source (= database round trips)."""

    def __init__(self, inner: MemoryNodeSource) -> None:
        self.inner = inner
        self.leaf_calls = 0
        self.leaves_read = 0
        self.node_calls = 0

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        self.leaf_calls += 1
        self.leaves_read += end - start
        return self.inner.leaf_hashes(start, end)

    def perfect_nodes(self, coords: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        self.node_calls += 1
        return self.inner.perfect_nodes(coords)


# The baseline: RFC 9162 §2.1.1 and §2.1.3.1 written literally (recursion over list slices).


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(d: Sequence[bytes]) -> bytes:
    if len(d) == 0:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:])).digest()


def naive_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*naive_path(m, d[:k]), naive_mth(d[k:])]
    return [*naive_path(m - k, d[k:]), naive_mth(d[:k])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--baseline-leaves", type=int, default=1 << 16)
    parser.add_argument("--proofs", type=int, default=300, help="random proofs to time")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    host = machine()
    n = args.leaves
    rng = random.Random(args.seed)

    entry_hashes = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    seconds, leaves = best_of(args.repeat, lambda: [leaf_hash(e) for e in entry_hashes])
    emit({"bench": "leaf_hash", "leaves": n, "seconds": round(seconds, 3),
          "us_per_leaf": round(seconds / n * 1e6, 3), "machine": host})  # fmt: skip

    seconds, root = best_of(args.repeat, lambda: root_from_leaf_hashes(leaves))
    emit({"bench": "root_from_leaf_hashes", "leaves": n, "seconds": round(seconds, 3),
          "us_per_leaf": round(seconds / n * 1e6, 3), "root": root.hex(), "machine": host})  # fmt: skip

    source = MemoryNodeSource(leaves)
    seconds, _ = timed(source.build)
    emit({"bench": "memory_source_build", "leaves": n, "seconds": round(seconds, 3),
          "us_per_leaf": round(seconds / n * 1e6, 3), "machine": host})  # fmt: skip

    counting = CountingSource(source)
    indices = [0, n // 2, n - 1, *(rng.randrange(n) for _ in range(args.proofs))]
    gen_times: list[float] = []
    verify_times: list[float] = []
    for index in indices:
        seconds, proof = timed(lambda index=index: inclusion_proof(counting, index, n))
        gen_times.append(seconds)
        seconds, ok = timed(lambda index=index, proof=proof: verify_inclusion(leaves[index], index, n, proof, root))
        verify_times.append(seconds)
        if not ok:
            raise SystemExit(f"inclusion proof for {index} did not verify")
    emit({"bench": "inclusion_proof", "leaves": n, "proofs": len(indices), "source": "MemoryNodeSource (built)",
          **summary_ms(gen_times), "verify_median_ms": round(statistics.median(verify_times) * 1e3, 3),
          "node_calls_per_proof": counting.node_calls / len(indices),
          "leaf_calls_per_proof": counting.leaf_calls / len(indices),
          "leaves_read_per_proof": round(counting.leaves_read / len(indices), 1), "machine": host})  # fmt: skip

    counting = CountingSource(source)
    old_sizes = [1, 256, n - 1, *(rng.randrange(1, n) for _ in range(args.proofs))]
    gen_times, verify_times = [], []
    for old in old_sizes:
        seconds, proof = timed(lambda old=old: consistency_proof(counting, old, n))
        gen_times.append(seconds)
        old_root = subtree_root(source, 0, old)
        seconds, ok = timed(lambda old=old, proof=proof, r=old_root: verify_consistency(old, n, proof, r, root))
        verify_times.append(seconds)
        if not ok:
            raise SystemExit(f"consistency proof {old} -> {n} did not verify")
    emit({"bench": "consistency_proof", "leaves": n, "proofs": len(old_sizes), "source": "MemoryNodeSource (built)",
          **summary_ms(gen_times), "verify_median_ms": round(statistics.median(verify_times) * 1e3, 3),
          "node_calls_per_proof": counting.node_calls / len(old_sizes),
          "leaf_calls_per_proof": counting.leaf_calls / len(old_sizes),
          "leaves_read_per_proof": round(counting.leaves_read / len(old_sizes), 1), "machine": host})  # fmt: skip

    def append_all() -> tuple[int, bytes]:
        appender = TreeAppender()
        stored = 0
        for leaf in leaves:
            stored += len(appender.append(leaf))
        return stored, appender.root()

    seconds, (stored, appended_root) = timed(append_all)
    if appended_root != root:
        raise SystemExit("TreeAppender root differs from root_from_leaf_hashes")
    resume_seconds, resumed = timed(lambda: TreeAppender.from_source(source, n))
    emit({"bench": "tree_appender", "leaves": n, "seconds": round(seconds, 3),
          "us_per_append": round(seconds / n * 1e6, 3), "stored_nodes_emitted": stored,
          "from_source_ms": round(resume_seconds * 1e3, 3), "resumed_root_ok": resumed.root() == root,
          "machine": host})  # fmt: skip

    b = args.baseline_leaves
    base = leaves[:b]
    naive_seconds, naive_root = best_of(args.repeat, lambda: naive_mth(base))
    fast_seconds, fast_root = best_of(args.repeat, lambda: root_from_leaf_hashes(base))
    if naive_root != fast_root:
        raise SystemExit("naive and level-by-level roots differ")
    emit({"bench": "naive_recursive_root", "baseline": "recursive RFC 9162 §2.1.1 over list slices",
          "leaves": b, "seconds": round(naive_seconds, 3), "us_per_leaf": round(naive_seconds / b * 1e6, 3),
          "root_from_leaf_hashes_seconds": round(fast_seconds, 3),
          "root_from_leaf_hashes_us_per_leaf": round(fast_seconds / b * 1e6, 3),
          "speedup": round(naive_seconds / fast_seconds, 2), "machine": host})  # fmt: skip

    base_source = MemoryNodeSource(base)
    base_source.build()
    base_indices = [rng.randrange(b) for _ in range(5)]
    naive_times, fast_times = [], []
    for index in base_indices:
        seconds, expected = timed(lambda index=index: naive_path(index, base))
        naive_times.append(seconds)
        seconds, proof = timed(lambda index=index: inclusion_proof(base_source, index, b))
        fast_times.append(seconds)
        if proof != expected:
            raise SystemExit(f"inclusion proof for {index} differs from the naive PATH")
    emit({"bench": "naive_recursive_path", "baseline": "recursive RFC 9162 §2.1.3.1 PATH, recomputing subtrees",
          "leaves": b, "proofs": len(base_indices), "naive_median_ms": round(statistics.median(naive_times) * 1e3, 3),
          "inclusion_proof_median_ms": round(statistics.median(fast_times) * 1e3, 3),
          "speedup": round(statistics.median(naive_times) / statistics.median(fast_times), 1),
          "machine": host})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
