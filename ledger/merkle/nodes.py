"""Where the tree's nodes come from, and how any subtree is assembled from perfect nodes.

A database keeps only the perfect nodes of level >= :data:`~ledger.merkle.tree.STORED_MIN_LEVEL`;
everything a proof or an appender needs is worked out first (a *plan* over perfect nodes), then
fetched from a :class:`NodeSource` in O(1) batched calls, the missing low levels recomputed from
leaf hashes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Protocol, TypeAlias, runtime_checkable

from ledger.merkle.tree import NODE_PREFIX, STORED_MIN_LEVEL, Coord, node_hash, root_from_leaf_hashes

__all__ = ["MemoryNodeSource", "NodeSource", "resolve", "roots_of_ranges"]


@runtime_checkable
class NodeSource(Protocol):
    """Where proof generation reads the tree from (the database, or memory).

    Both methods are batched on purpose: a caller works out every coordinate it needs first
    and asks once, so a proof costs O(1) round trips regardless of tree size.
    """

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        """Leaf hashes of leaves ``[start, end)``, in order."""
        ...

    def perfect_nodes(self, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        """Stored hashes of the perfect nodes among ``coords`` that the source has. It may
        return only some (a database keeps level >= STORED_MIN_LEVEL only); callers compute
        the rest from leaves."""
        ...


class MemoryNodeSource:
    """An in-memory :class:`NodeSource` over a list of leaf hashes, for tests and for the
    offline verifier (which rebuilds the tree from an export and then answers proofs).

    It keeps the same nodes a database would — every perfect node of level >=
    :data:`STORED_MIN_LEVEL` — computed on first use or by :meth:`build`, so proofs from it
    take the same code path (and the same number of calls) as proofs from the database.
    """

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self._leaves: list[bytes] = list(leaf_hashes)
        self._levels: list[list[bytes]] | None = None  # _levels[j] = nodes of level STORED_MIN_LEVEL + j

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._leaves)

    def __len__(self) -> int:
        return len(self._leaves)

    def build(self) -> None:
        """Compute every perfect node of level >= STORED_MIN_LEVEL: about n hashes for level 8
        and n / 256 more for the levels above it."""
        if self._levels is not None:
            return
        block = 1 << STORED_MIN_LEVEL
        leaves = self._leaves
        full = len(leaves) // block
        current = [root_from_leaf_hashes(leaves[i * block : (i + 1) * block]) for i in range(full)]
        levels: list[list[bytes]] = []
        h = sha256
        prefix = NODE_PREFIX
        while current:
            levels.append(current)
            it = iter(current)
            current = [h(prefix + a + b).digest() for a, b in zip(it, it, strict=False)]
        self._levels = levels

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        if not 0 <= start <= end <= len(self._leaves):
            raise ValueError(f"leaf range [{start}, {end}) outside [0, {len(self._leaves)})")
        return self._leaves[start:end]

    def perfect_nodes(self, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        self.build()
        assert self._levels is not None
        found: dict[Coord, bytes] = {}
        for level, index in coords:
            j = level - STORED_MIN_LEVEL
            if 0 <= j < len(self._levels) and 0 <= index < len(self._levels[j]):
                found[(level, index)] = self._levels[j][index]
        return found


# A plan is either a perfect node (a ``tuple[int, int]``) or a pair ``[left_plan, right_plan]``
# (a ``list``) meaning ``node_hash(left, right)``.
_Plan: TypeAlias = Coord | list["_Plan"]


def _plan(start: int, end: int) -> _Plan:
    """How MTH(D[start:end]) (RFC 9162 §2.1.1) is assembled from perfect nodes.

    A range whose size is a power of two and whose start is aligned to it is one perfect node.
    Otherwise apply the RFC split. For ranges the proofs use (always aligned) this bottoms out
    after O(log n) steps; an unaligned range — only reachable through :func:`subtree_root` —
    decomposes correctly too, just into smaller nodes.
    """
    n = end - start
    if n & (n - 1) == 0 and start & (n - 1) == 0:
        level = n.bit_length() - 1
        return (level, start >> level)
    k = 1 << ((n - 1).bit_length() - 1)
    return [_plan(start, start + k), _plan(start + k, end)]


def _collect(plan: _Plan, out: set[Coord]) -> None:
    if isinstance(plan, tuple):
        out.add(plan)
    else:
        _collect(plan[0], out)
        _collect(plan[1], out)


def _evaluate(plan: _Plan, nodes: dict[Coord, bytes]) -> bytes:
    if isinstance(plan, tuple):
        return nodes[plan]
    return node_hash(_evaluate(plan[0], nodes), _evaluate(plan[1], nodes))


def _merge_ranges(ranges: Iterable[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Sorted, coalesced leaf ranges; ranges separated by at most ``gap`` leaves are merged, as
    reading up to one block of unneeded leaves is cheaper than another round trip."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + gap:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def resolve(source: NodeSource, coords: set[Coord]) -> dict[Coord, bytes]:
    """Hashes of all ``coords`` in O(1) calls to ``source``.

    One :meth:`NodeSource.perfect_nodes` call for the coordinates a database may hold (level
    >= STORED_MIN_LEVEL); every other node — lower levels, and any stored-level node the source
    did not return — is computed from leaves, read with one :meth:`NodeSource.leaf_hashes` call
    per cluster of nearby ranges. For an inclusion or consistency proof with stored nodes there
    are at most two clusters (the 256-leaf block around the proven leaf or old size, and the
    incomplete block at the right edge): two range reads of at most 256 leaves each, or one of
    at most 767 when the two blocks are at most one block apart.
    """
    nodes: dict[Coord, bytes] = {}
    wanted = sorted(c for c in coords if c[0] >= STORED_MIN_LEVEL)
    if wanted:
        got = source.perfect_nodes(wanted)
        for coord in wanted:
            value = got.get(coord)
            if value is not None:
                nodes[coord] = value
    missing = [c for c in coords if c not in nodes]
    if not missing:
        return nodes
    leaf_ranges = [(index << level, (index + 1) << level) for level, index in missing]
    segments: list[tuple[int, Sequence[bytes]]] = []
    for start, end in _merge_ranges(leaf_ranges, 1 << STORED_MIN_LEVEL):
        leaves = source.leaf_hashes(start, end)
        if len(leaves) != end - start:
            raise ValueError(f"node source returned {len(leaves)} leaf hashes for [{start}, {end})")
        segments.append((start, leaves))
    starts = [s for s, _ in segments]
    for level, index in missing:
        lo = index << level
        seg_start, leaves = segments[bisect.bisect_right(starts, lo) - 1]
        offset = lo - seg_start
        nodes[(level, index)] = root_from_leaf_hashes(leaves[offset : offset + (1 << level)])
    return nodes


def roots_of_ranges(source: NodeSource, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """MTH of each range, fetching everything needed in one batch."""
    plans = [_plan(start, end) for start, end in ranges]
    coords: set[Coord] = set()
    for plan in plans:
        _collect(plan, coords)
    nodes = resolve(source, coords)
    return [_evaluate(plan, nodes) for plan in plans]
