"""The ledger's Merkle tree, exactly as RFC 6962 §2.1 / RFC 9162 §2.1 define it.

Why this shape and not a simpler one: a regulator holds a signed checkpoint (tree size, root)
and must be able to check, with any independent RFC 9162 implementation, that an entry is in
the log (inclusion proof) and that a later checkpoint extends an earlier one (consistency
proof). Any deviation from the RFC — Bitcoin-style duplication of an odd node, a different
split rule, missing domain-separation prefixes — would produce roots nobody else can check.

Definitions (RFC 9162 §2.1.1), with ``HASH`` = SHA-256:

- ``MTH({}) = HASH()`` — :data:`EMPTY_ROOT`;
- ``MTH({d0}) = HASH(0x00 || d0)`` — :func:`leaf_hash`;
- ``MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`` with ``k`` the largest power of two
  strictly smaller than ``n`` — :func:`node_hash`, :func:`split_point`.

In the ledger each leaf's ``d`` is the 32-byte entry hash of the hash chain, so leaves are
``leaf_hash(entry_hash)``. Everything else in this module works on leaf hashes.

Storage model. A *perfect node* ``(level, index)`` is the root of the perfect subtree over
leaves ``[index * 2**level, (index + 1) * 2**level)``. Every subtree the RFC's PATH and SUBPROOF
(RFC 9162 §2.1.3.1, §2.1.4.1) ever name is either such a perfect node or a "ragged" right edge
``[start, end)`` whose hash is a right fold over O(log n) perfect nodes. A database therefore
only needs the perfect nodes; it keeps those of level >= :data:`STORED_MIN_LEVEL` (one row per
256 leaves, like the tiles of a tlog) and the lower ones are recomputed from the leaf hashes of
their 256-leaf block. Proof generation first works out *which* nodes it needs, then asks the
:class:`NodeSource` for them in batches: one ``perfect_nodes`` call, and one ``leaf_hashes``
range read per block involved — at most two for a proof (the block around the proven leaf or
the old tree's edge, and the incomplete block at the new tree's right edge). A proof at
1,000,000 leaves thus costs three queries and a few hundred hashes, not a full recomputation.

This module imports only the standard library (the ``ledger`` package depends on nothing of
Keyong's).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Protocol, runtime_checkable

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "STORED_MIN_LEVEL",
    "MemoryNodeSource",
    "NodeSource",
    "TreeAppender",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "split_point",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""SHA-256 output size; every node, leaf hash and root has exactly this many bytes."""

EMPTY_ROOT: bytes = sha256(b"").digest()
"""MTH of the empty tree: the hash of the empty string (RFC 9162 §2.1.1)."""

STORED_MIN_LEVEL = 8
"""Lowest level of perfect node a database keeps. Level 8 = 256 leaves per stored node, so the
table holds ~n/128 rows in total and anything below is recomputed from one 256-leaf read."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

Coord = tuple[int, int]
"""A perfect node ``(level, index)`` covering leaves ``[index << level, (index + 1) << level)``."""


# --------------------------------------------------------------------------------------------
# Hashing (RFC 9162 §2.1.1)
# --------------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """``HASH(0x00 || data)``. The 0x00 / 0x01 prefixes are the RFC's domain separation between
    leaves and interior nodes, which is what gives second-preimage resistance: without them an
    interior node could be presented as a leaf whose data is ``left || right``."""
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``HASH(0x01 || left || right)`` for an interior node (RFC 9162 §2.1.1)."""
    return sha256(_NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The RFC's ``k``: the largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    if n < 2:
        raise ValueError(f"split_point needs n >= 2, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(leaves: Sequence[bytes]) -> bytes:
    """MTH over already leaf-hashed values, level by level (used to verify a whole ledger).

    Why level by level: it is one tight list comprehension per level (~n hashes in total, no
    recursion and no slicing), which matters at 1,000,000 leaves.

    Why it equals the recursive RFC definition: label the node formed at level ``j`` position
    ``i`` as covering leaves ``[i * 2**j, min((i + 1) * 2**j, n))``. If that range has more than
    ``2**(j-1)`` leaves its children are ``(j-1, 2i)``, a full block of ``2**(j-1)`` leaves, and
    ``(j-1, 2i+1)`` with the rest — and ``2**(j-1)`` is exactly the largest power of two strictly
    below the range's size, i.e. the RFC split. If it has at most ``2**(j-1)`` leaves there is no
    right partner at level ``j-1``: the node is the unpaired last node, and carrying it up
    unchanged is right because it covers the very same leaves, so its MTH is the same. Pairing
    (or duplicating) it instead would be the Bitcoin construction, not RFC 6962. The tests
    check this against a literal recursive implementation for every size up to a few thousand.
    """
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    level: Sequence[bytes] = leaves
    h = sha256
    prefix = _NODE_PREFIX
    while n > 1:
        # zip over one iterator pairs (0, 1), (2, 3), ...; an odd last node is left out here
        # and carried up unchanged just below.
        it = iter(level)
        paired = [h(prefix + a + b).digest() for a, b in zip(it, it, strict=False)]
        if n & 1:
            paired.append(level[-1])
        level = paired
        n = len(level)
    return level[0]


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """Root of a ragged right edge from its perfect pieces, largest first: the RFC recursion
    on ``[start, end)`` with ``start`` aligned splits off the largest perfect block first, so
    the root is ``node(P1, node(P2, ... node(Pm-1, Pm)))``."""
    acc = hashes[-1]
    for piece in reversed(hashes[:-1]):
        acc = node_hash(piece, acc)
    return acc


# --------------------------------------------------------------------------------------------
# Node sources
# --------------------------------------------------------------------------------------------


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
        prefix = _NODE_PREFIX
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


# --------------------------------------------------------------------------------------------
# Planning: which perfect nodes make up a subtree
# --------------------------------------------------------------------------------------------

# A plan is either a perfect node (a ``tuple[int, int]``) or a pair ``[left_plan, right_plan]``
# (a ``list``) meaning ``node_hash(left, right)``.
_Plan = Coord | list


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


def _resolve(source: NodeSource, coords: set[Coord]) -> dict[Coord, bytes]:
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


def _roots_of_ranges(source: NodeSource, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """MTH of each range, fetching everything needed in one batch."""
    plans = [_plan(start, end) for start, end in ranges]
    coords: set[Coord] = set()
    for plan in plans:
        _collect(plan, coords)
    nodes = _resolve(source, coords)
    return [_evaluate(plan, nodes) for plan in plans]


# --------------------------------------------------------------------------------------------
# Proof generation (RFC 9162 §2.1.3.1 and §2.1.4.1)
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def subtree_root(source: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) of the leaves held by ``source`` (RFC 9162 §2.1.1).

    ``start == end`` gives :data:`EMPTY_ROOT`. With ``start = 0`` this is the tree head of size
    ``end``. Aligned ranges (all the proofs use) cost O(log n) nodes; any range is accepted.
    """
    _check_int("start", start)
    _check_int("end", end)
    if start < 0 or end < start:
        raise ValueError(f"invalid range [{start}, {end})")
    if start == end:
        return EMPTY_ROOT
    return _roots_of_ranges(source, [(start, end)])[0]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees of PATH(m, D[n]) (RFC 9162 §2.1.3.1), leaf level first.

    PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) if m < k, else PATH(m - k, D[k:n]) : MTH(D[0:k]);
    walking down from the root produces the siblings top first, hence the final reverse.
    """
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree of the first ``size`` leaves (RFC 9162
    §2.1.3.1), ordered from the leaf's sibling up to the root's child, as the verifier
    (§2.1.3.2) consumes it.

    Raises ValueError unless ``0 <= index < size`` (a proof for the empty tree is undefined).
    """
    _check_int("index", index)
    _check_int("size", size)
    if size <= 0:
        raise ValueError(f"inclusion proof needs size >= 1, got {size}")
    if not 0 <= index < size:
        raise ValueError(f"index {index} outside the tree of size {size}")
    ranges = _inclusion_ranges(index, size)
    if not ranges:
        return []
    return _roots_of_ranges(source, ranges)


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The subtrees of PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (RFC 9162 §2.1.4.1), for
    ``0 < m < n``, in proof order.

    SUBPROOF(m, D[n], b): if m == n it is {} when b is true (the verifier already holds that
    root) and {MTH(D[n])} otherwise; for m < n, with k the split, it is
    SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) if m <= k, else SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]).
    """
    ranges: list[tuple[int, int]] = []
    lo, hi, whole = 0, new_size, True
    while True:
        if old_size - lo == hi - lo:
            if not whole:
                ranges.append((lo, hi))
            break
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if old_size - lo <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole = False
    ranges.reverse()
    return ranges


def consistency_proof(source: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    """Proof that the tree of ``new_size`` leaves extends the one of ``old_size`` (RFC 9162
    §2.1.4.1).

    ``old_size == 0`` and ``old_size == new_size`` give ``[]``, as the RFC's PROOF does (any
    tree extends the empty one; a tree is consistent with itself). Raises ValueError for
    negative sizes or ``old_size > new_size``.
    """
    _check_int("old_size", old_size)
    _check_int("new_size", new_size)
    if old_size < 0 or new_size < 0:
        raise ValueError("tree sizes must be >= 0")
    if old_size > new_size:
        raise ValueError(f"old_size {old_size} > new_size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    return _roots_of_ranges(source, _consistency_ranges(old_size, new_size))


# --------------------------------------------------------------------------------------------
# Incremental building on append
# --------------------------------------------------------------------------------------------


def _check_hash(name: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"{name} must be {HASH_SIZE} bytes")
    return value


class TreeAppender:
    """Keeps the right edge of the tree so that each append costs O(log n) hashes.

    State is the *frontier* (a.k.a. compact range of [0, size)): for each set bit of ``size``
    from high to low, the root of the perfect subtree it stands for. Together they are exactly
    the perfect nodes the RFC recursion splits ``[0, size)`` into, so the root is their right
    fold (RFC 9162 §2.1.1) and appending a leaf merges equal-sized neighbours like binary
    carry. Each merge completes a perfect node; the ones of level >= STORED_MIN_LEVEL are
    returned for the database to store.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        _check_int("size", size)
        if size < 0:
            raise ValueError("size must be >= 0")
        if len(frontier) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier hashes, got {len(frontier)}")
        self._frontier: list[bytes] = [_check_hash("frontier hash", h) for h in frontier]
        self._size = size

    @staticmethod
    def frontier_coords(size: int) -> list[Coord]:
        """Perfect nodes forming the frontier of a tree of ``size`` leaves, high level first."""
        coords: list[Coord] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                coords.append((level, start >> level))
                start += 1 << level
        return coords

    @classmethod
    def from_source(cls, source: NodeSource, size: int) -> TreeAppender:
        """Resume from a stored tree: one perfect_nodes call plus one read of < 256 leaves."""
        _check_int("size", size)
        if size < 0:
            raise ValueError("size must be >= 0")
        coords = cls.frontier_coords(size)
        nodes = _resolve(source, set(coords))
        return cls(size, [nodes[c] for c in coords])

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def frontier(self) -> list[bytes]:
        """A copy of the frontier hashes, high level first."""
        return list(self._frontier)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the perfect nodes ``(level, index, hash)`` it completed
        with level >= STORED_MIN_LEVEL, lowest level first."""
        acc = _check_hash("leaf", leaf)
        position = self._size
        frontier = self._frontier
        completed: list[tuple[int, int, bytes]] = []
        level = 0
        while position >> level & 1:
            acc = node_hash(frontier.pop(), acc)
            level += 1
            if level >= STORED_MIN_LEVEL:
                completed.append((level, position >> level, acc))
        frontier.append(acc)
        self._size = position + 1
        return completed

    def extend(self, leaves: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
        """Append many leaf hashes; same result as :meth:`append` one by one, about twice as fast.

        Whole aligned blocks of ``2**STORED_MIN_LEVEL`` leaves are hashed level by level in tight
        list comprehensions and enter the frontier as one perfect subtree; only the ragged
        ends go through :meth:`append`. Appends and verification of a million entries spend a
        large share of their time here.
        """
        block = 1 << STORED_MIN_LEVEL
        completed: list[tuple[int, int, bytes]] = []
        i, n = 0, len(leaves)
        while i < n and self._size % block:
            completed += self.append(leaves[i])
            i += 1
        h = sha256
        prefix = _NODE_PREFIX
        while n - i >= block:
            level = leaves[i : i + block]
            if any(len(leaf) != HASH_SIZE for leaf in level):
                raise ValueError(f"leaf must be {HASH_SIZE} bytes")
            for _ in range(STORED_MIN_LEVEL):
                it = iter(level)
                level = [h(prefix + a + b).digest() for a, b in zip(it, it, strict=True)]
            completed += self._push_perfect(STORED_MIN_LEVEL, level[0])
            i += block
        while i < n:
            completed += self.append(leaves[i])
            i += 1
        return completed

    def _push_perfect(self, level: int, node: bytes) -> list[tuple[int, int, bytes]]:
        """Add a perfect subtree of ``2**level`` leaves at an aligned position (carry upwards)."""
        position = self._size >> level
        completed = [(level, position, node)]
        acc = node
        frontier = self._frontier
        while position & 1:
            acc = node_hash(frontier.pop(), acc)
            level += 1
            position >>= 1
            completed.append((level, position, acc))
        frontier.append(acc)
        self._size += 1 << completed[0][0]
        return completed

    def root(self) -> bytes:
        """MTH of the current tree in O(log n); EMPTY_ROOT for size 0."""
        if not self._frontier:
            return EMPTY_ROOT
        return _fold_right(self._frontier)


# --------------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2)
# --------------------------------------------------------------------------------------------


def _is_uint(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_path(proof: object) -> bool:
    return isinstance(proof, list | tuple) and all(_is_hash(p) for p in proof)


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """True iff ``proof`` shows the leaf hash at ``index`` in the tree of ``size`` with ``root``
    (RFC 9162 §2.1.3.2).

    Never raises: anything malformed — non-int or negative numbers, ``index >= size``, hashes
    that are not 32 bytes, a proof that is not a list/tuple of such hashes, a proof of the
    wrong length — is simply False, because a verifier is fed untrusted input.
    """
    if not (_is_uint(index) and _is_uint(size) and _is_hash(leaf_hash) and _is_hash(root) and _is_path(proof)):
        return False
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False  # more path elements than the tree has levels
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # The node is the last one of its level and has no right sibling there: it is
                # carried up unchanged until it becomes a right child.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> bool:
    """True iff ``proof`` shows the tree (size2, root2) extends (size1, root1) (RFC 9162
    §2.1.4.2). Never raises; malformed input is False (see :func:`verify_inclusion`).

    Edge cases, which the RFC's algorithm leaves to the caller:

    - ``size1 == size2``: the proof must be empty and ``root1 == root2`` (the RFC's PROOF is
      empty here; trees of equal size are consistent iff they are the same tree).
    - ``size1 == 0``: RFC 9162 says a proof is not defined for an empty first tree. Every tree
      extends the empty tree, so we accept exactly the empty proof — and, our choice, only if
      ``root1`` is EMPTY_ROOT, the one root a tree of size 0 can have (RFC 9162 §2.1.1), so a
      bogus "size 0" checkpoint is not silently accepted. ``root2`` is only checked to be a
      hash: nothing in an empty proof can bind it.
    """
    if not (_is_uint(size1) and _is_uint(size2) and _is_hash(root1) and _is_hash(root2) and _is_path(proof)):
        return False
    if size1 > size2:
        return False
    if size1 == size2:
        return len(proof) == 0 and root1 == root2
    if size1 == 0:
        return len(proof) == 0 and root1 == EMPTY_ROOT
    if len(proof) == 0:
        return False  # step 1: a non-trivial consistency needs a proof
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        # step 2: the old tree is a perfect subtree of the new one and its root is not sent
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:  # step 4: skip the levels where the old tree's last node is a right child
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False  # trailing elements
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2
