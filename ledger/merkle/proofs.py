"""Proof generation (RFC 9162 §2.1.3.1 and §2.1.4.1): inclusion and consistency proofs, subtree roots.

Each proof is first described as the leaf ranges whose roots it lists, then those roots are read
from a :class:`~ledger.merkle.nodes.NodeSource` in one batch.
"""

from __future__ import annotations

from ledger.merkle.nodes import NodeSource, roots_of_ranges
from ledger.merkle.tree import EMPTY_ROOT, check_int

__all__ = ["consistency_proof", "inclusion_proof", "subtree_root"]


def subtree_root(source: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) of the leaves held by ``source`` (RFC 9162 §2.1.1).

    ``start == end`` gives :data:`EMPTY_ROOT`. With ``start = 0`` this is the tree head of size
    ``end``. Aligned ranges (all the proofs use) cost O(log n) nodes; any range is accepted.
    """
    check_int("start", start)
    check_int("end", end)
    if start < 0 or end < start:
        raise ValueError(f"invalid range [{start}, {end})")
    if start == end:
        return EMPTY_ROOT
    return roots_of_ranges(source, [(start, end)])[0]


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
    check_int("index", index)
    check_int("size", size)
    if size <= 0:
        raise ValueError(f"inclusion proof needs size >= 1, got {size}")
    if not 0 <= index < size:
        raise ValueError(f"index {index} outside the tree of size {size}")
    ranges = _inclusion_ranges(index, size)
    if not ranges:
        return []
    return roots_of_ranges(source, ranges)


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
    check_int("old_size", old_size)
    check_int("new_size", new_size)
    if old_size < 0 or new_size < 0:
        raise ValueError("tree sizes must be >= 0")
    if old_size > new_size:
        raise ValueError(f"old_size {old_size} > new_size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    return roots_of_ranges(source, _consistency_ranges(old_size, new_size))
