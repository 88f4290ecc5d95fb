"""Checking proofs (RFC 9162 §2.1.3.2 and §2.1.4.2), for input nobody vouches for.

Never raises: a malformed proof is simply not a proof. Used by the standalone verifier
(``python -m ledger.verify``) and by anyone holding a signed checkpoint.
"""

from __future__ import annotations

from ledger.merkle.tree import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = ["verify_consistency", "verify_inclusion"]


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
