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

Modules: :mod:`~ledger.merkle.tree` (the hashing definitions), :mod:`~ledger.merkle.nodes`
(where nodes come from, and assembling any subtree from perfect nodes),
:mod:`~ledger.merkle.proofs` (proof generation), :mod:`~ledger.merkle.appender` (O(log n)
appends), :mod:`~ledger.merkle.verification` (checking proofs, for untrusted input). Import from
``ledger.merkle``; the split is for reading.

This package imports only the standard library (the ``ledger`` package depends on nothing of
Keyong's).
"""

from ledger.merkle.appender import TreeAppender
from ledger.merkle.nodes import MemoryNodeSource, NodeSource
from ledger.merkle.proofs import consistency_proof, inclusion_proof, subtree_root
from ledger.merkle.tree import (
    EMPTY_ROOT,
    HASH_SIZE,
    STORED_MIN_LEVEL,
    Coord,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    split_point,
)
from ledger.merkle.verification import verify_consistency, verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "STORED_MIN_LEVEL",
    "Coord",
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
