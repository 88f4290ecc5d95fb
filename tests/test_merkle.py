"""The ledger's Merkle tree against RFC 6962 / RFC 9162 §2.1.

What is checked, and against what:

- a literal, recursive transcription of RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH) and §2.1.4.1
  (SUBPROOF), written here with hashlib only, so the fast code in ``ledger.merkle`` is compared
  with the definition rather than with itself;
- the published RFC 6962 test vectors (the 8-leaf tree used by transparency-dev/merkle and
  certificate-transparency-go), so "agrees with our own reference" cannot hide a shared mistake;
- every proof produced over a node source with stored perfect nodes, one that stores none and
  one that returns only some, for all sizes 0..70 and random sizes up to ~2000;
- adversarial proofs the verifiers must all reject, and a fuzz test that they never raise.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    STORED_MIN_LEVEL,
    MemoryNodeSource,
    NodeSource,
    TreeAppender,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    split_point,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------------------------
# Independent reference: RFC 9162 §2.1, transcribed literally (recursive, slicing, hashlib).
# --------------------------------------------------------------------------------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_leaf(data: bytes) -> bytes:
    return _sha(b"\x00" + data)


def ref_node(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + left + right)


def ref_k(n: int) -> int:
    """Largest power of two strictly smaller than n, by counting rather than bit tricks."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (RFC 9162 §2.1.1)."""
    n = len(d)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return d[0]
    k = ref_k(n)
    return ref_node(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (RFC 9162 §2.1.3.1)."""
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (RFC 9162 §2.1.4.1)."""
    n = len(d)
    if m == n:
        return [] if complete else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], complete), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_consistency(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]); [] for m == 0 (undefined in the RFC) and m == n."""
    return [] if m == 0 else ref_subproof(m, d, True)


def ref_inclusion_shape(m: int, n: int) -> tuple[str, ...] | None:
    """What the RFC 9162 §2.1.3.2 verifier does with PATH(m, D[n]): for each element, whether
    it is a left ("L": HASH(p || r)) or right ("R": HASH(r || p)) sibling. Two (index, size)
    pairs with the same shape run the very same computation, so the same proof and root
    verify for both; the proof alone cannot tell them apart (the signed checkpoint binds the
    size to the root). None where no proof exists."""
    if not 0 <= m < n:
        return None
    if n == 1:
        return ()
    k = ref_k(n)
    if m < k:
        return (*ref_inclusion_shape(m, k), "R")  # type: ignore[misc]
    return (*ref_inclusion_shape(m - k, n - k), "L")  # type: ignore[misc]


def ref_consistency_shape(m: int, n: int, complete: bool = True) -> tuple[str, ...] | None:
    """The same for SUBPROOF (RFC 9162 §2.1.4.1/§2.1.4.2): whether the old root is implicit
    (old size a power of two, the verifier prepends root1) or sent, then each element's side."""
    if not 0 < m <= n:
        return None
    if m == n:
        return ("old root",) if complete else ("sent node",)
    k = ref_k(n)
    if m <= k:
        return (*ref_consistency_shape(m, k, complete), "R")  # type: ignore[misc]
    return (*ref_consistency_shape(m - k, n - k, False), "L")  # type: ignore[misc]


LEAVES: list[bytes] = [ref_leaf(i.to_bytes(4, "big")) for i in range(4200)]

# --------------------------------------------------------------------------------------------
# Node sources
# --------------------------------------------------------------------------------------------


class LeavesOnlySource:
    """A source that stores no perfect node at all: everything comes from leaves."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._leaves = list(leaves)

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        assert 0 <= start <= end <= len(self._leaves), (start, end)
        return self._leaves[start:end]

    def perfect_nodes(self, coords: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {}


class PartialSource(MemoryNodeSource):
    """Returns a pseudo-random subset of the stored nodes it is asked for."""

    def __init__(self, leaves: Sequence[bytes], seed: int) -> None:
        super().__init__(leaves)
        self._seed = seed

    def perfect_nodes(self, coords: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found = super().perfect_nodes(coords)
        return {c: h for c, h in found.items() if hash((self._seed, c)) % 3 != 0}


class CountingSource:
    """Wraps a source and records every call, to pin down the O(1)-round-trip claim."""

    def __init__(self, inner: NodeSource) -> None:
        self.inner = inner
        self.leaf_calls: list[tuple[int, int]] = []
        self.node_calls: list[list[tuple[int, int]]] = []

    def reset(self) -> None:
        self.leaf_calls.clear()
        self.node_calls.clear()

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        self.leaf_calls.append((start, end))
        return self.inner.leaf_hashes(start, end)

    def perfect_nodes(self, coords: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        self.node_calls.append(list(coords))
        return self.inner.perfect_nodes(coords)


@lru_cache(maxsize=64)
def memory_source(n: int) -> MemoryNodeSource:
    source = MemoryNodeSource(LEAVES[:n])
    source.build()
    return source


@lru_cache(maxsize=4200)
def root_of(n: int) -> bytes:
    return root_from_leaf_hashes(LEAVES[:n])


def all_sources(n: int, seed: int = 0) -> list[NodeSource]:
    """The stored-node source, the leaves-only source and (where there are stored nodes to
    leave out, n >= 256) the partial one."""
    sources: list[NodeSource] = [memory_source(n), LeavesOnlySource(LEAVES[:n])]
    if n >= 1 << STORED_MIN_LEVEL:
        sources.append(PartialSource(LEAVES[:n], seed))
    return sources


def test_sources_satisfy_the_protocol() -> None:
    for source in all_sources(300):
        assert isinstance(source, NodeSource)


# --------------------------------------------------------------------------------------------
# Hashing and known answers (RFC 6962 test vectors as used by transparency-dev/merkle)
# --------------------------------------------------------------------------------------------

KAT_DATA = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
KAT_LEAVES = [leaf_hash(d) for d in KAT_DATA]
KAT_ROOTS = [  # index = tree size
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (index (0-based), size, path)
KAT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
KAT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def test_hash_primitives() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    a, b = LEAVES[0], LEAVES[1]
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert node_hash(a, b) != node_hash(b, a)
    # Domain separation: an interior node is not the leaf hash of its children's bytes.
    assert leaf_hash(a + b) != node_hash(a, b)
    assert [split_point(n) for n in (2, 3, 4, 5, 8, 9, 1000)] == [1, 2, 2, 4, 4, 8, 512]
    assert all(split_point(n) == ref_k(n) for n in range(2, 3000))
    with pytest.raises(ValueError):
        split_point(1)


def test_known_roots() -> None:
    source = MemoryNodeSource(KAT_LEAVES)
    appender = TreeAppender()
    assert appender.root().hex() == KAT_ROOTS[0]
    for size, expected in enumerate(KAT_ROOTS):
        assert root_from_leaf_hashes(KAT_LEAVES[:size]).hex() == expected, size
        assert ref_mth(KAT_LEAVES[:size]).hex() == expected, size
        assert subtree_root(source, 0, size).hex() == expected, size
        if size:
            appender.append(KAT_LEAVES[size - 1])
            assert appender.root().hex() == expected, size


@pytest.mark.parametrize(("index", "size", "path"), KAT_INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    source = MemoryNodeSource(KAT_LEAVES)
    proof = inclusion_proof(source, index, size)
    assert [p.hex() for p in proof] == path
    assert verify_inclusion(KAT_LEAVES[index], index, size, proof, bytes.fromhex(KAT_ROOTS[size]))
    assert_inclusion_attacks_fail(KAT_LEAVES[index], index, size, proof, bytes.fromhex(KAT_ROOTS[size]), all_bits=True)


@pytest.mark.parametrize(("size1", "size2", "path"), KAT_CONSISTENCY)
def test_known_consistency_proofs(size1: int, size2: int, path: list[str]) -> None:
    source = MemoryNodeSource(KAT_LEAVES)
    proof = consistency_proof(source, size1, size2)
    assert [p.hex() for p in proof] == path
    root1, root2 = bytes.fromhex(KAT_ROOTS[size1]), bytes.fromhex(KAT_ROOTS[size2])
    assert verify_consistency(size1, size2, proof, root1, root2)
    if size1 != size2:
        assert_consistency_attacks_fail(size1, size2, proof, root1, root2, all_bits=True)


def _bitcoin_root(leaves: Sequence[bytes]) -> bytes:
    level = list(leaves)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [ref_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _balanced_root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    half = (len(leaves) + 1) // 2
    return ref_node(_balanced_root(leaves[:half]), _balanced_root(leaves[half:]))


def _unprefixed_root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = ref_k(len(leaves))
    return _sha(_unprefixed_root(leaves[:k]) + _unprefixed_root(leaves[k:]))


@pytest.mark.parametrize("wrong", [_bitcoin_root, _balanced_root, _unprefixed_root])
def test_known_answers_catch_plausible_wrong_trees(wrong: Callable[[Sequence[bytes]], bytes]) -> None:
    """The vectors have teeth: common non-RFC constructions disagree with them somewhere."""
    assert any(wrong(KAT_LEAVES[:n]).hex() != KAT_ROOTS[n] for n in range(1, 9))


# --------------------------------------------------------------------------------------------
# The fast root equals the recursive definition
# --------------------------------------------------------------------------------------------


def test_level_by_level_root_equals_recursive_definition_exhaustive() -> None:
    for n in range(0, 600):
        assert root_from_leaf_hashes(LEAVES[:n]) == ref_mth(LEAVES[:n]), n


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=600, max_value=4200))
def test_level_by_level_root_equals_recursive_definition_random(n: int) -> None:
    assert root_from_leaf_hashes(LEAVES[:n]) == ref_mth(LEAVES[:n])


def test_root_accepts_any_sequence() -> None:
    assert root_from_leaf_hashes(tuple(LEAVES[:5])) == ref_mth(LEAVES[:5])


# --------------------------------------------------------------------------------------------
# Proofs: exact equality with PATH / SUBPROOF, and they verify
# --------------------------------------------------------------------------------------------


def check_tree(n: int, indices: Sequence[int], old_sizes: Sequence[int], seed: int = 0) -> None:
    leaves = LEAVES[:n]
    root = root_of(n)
    paths = {i: ref_path(i, leaves) for i in indices}
    subproofs = {m: ref_consistency(m, leaves) for m in old_sizes}
    for source in all_sources(n, seed):
        assert subtree_root(source, 0, n) == root
        for i, expected in paths.items():
            proof = inclusion_proof(source, i, n)
            assert proof == expected, (type(source).__name__, i, n)
            assert verify_inclusion(leaves[i], i, n, proof, root), (i, n)
        for m, expected in subproofs.items():
            proof = consistency_proof(source, m, n)
            assert proof == expected, (type(source).__name__, m, n)
            assert verify_consistency(m, n, proof, root_of(m), root), (m, n)


def test_all_proofs_for_every_size_up_to_70() -> None:
    for n in range(0, 71):
        check_tree(n, range(n), range(n + 1))


SIZES = st.one_of(
    st.integers(min_value=0, max_value=2100),
    st.sampled_from([255, 256, 257, 511, 512, 513, 767, 768, 769, 1023, 1024, 1025, 1536, 1792, 2047, 2048, 2049]),
)


@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=SIZES, data=st.data())
def test_proofs_random_sizes(n: int, data: st.DataObject) -> None:
    seed = data.draw(st.integers(0, 1000), label="seed")
    indices = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=4), label="indices") if n else []
    old_sizes = data.draw(st.lists(st.integers(0, n), max_size=4), label="old_sizes")
    check_tree(n, [*indices, *([0, n - 1] if n else [])], [*old_sizes, 0, n, n // 2, n - 1 if n else 0], seed)


def test_subtree_root_any_range() -> None:
    n = 40
    for source in all_sources(n):
        for start in range(n + 1):
            for end in range(start, n + 1):
                assert subtree_root(source, start, end) == ref_mth(LEAVES[start:end]), (start, end)


@settings(max_examples=40, deadline=None)
@given(bounds=st.tuples(st.integers(0, 1300), st.integers(0, 1300)).map(sorted))
def test_subtree_root_random_ranges_over_stored_nodes(bounds: list[int]) -> None:
    start, end = bounds
    for source in all_sources(1300):
        assert subtree_root(source, start, end) == ref_mth(LEAVES[start:end])


def test_generation_rejects_bad_arguments() -> None:
    source = memory_source(10)
    for index, size in [(0, 0), (10, 10), (11, 10), (-1, 10), (0, -1)]:
        with pytest.raises(ValueError):
            inclusion_proof(source, index, size)
    for old, new in [(5, 4), (-1, 3), (1, -1)]:
        with pytest.raises(ValueError):
            consistency_proof(source, old, new)
    with pytest.raises(ValueError):
        subtree_root(source, 5, 4)
    with pytest.raises(TypeError):
        inclusion_proof(source, True, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # beyond what the source holds
        inclusion_proof(source, 0, 11)
    assert consistency_proof(source, 0, 10) == []
    assert consistency_proof(source, 0, 0) == []
    assert consistency_proof(source, 7, 7) == []
    assert inclusion_proof(source, 0, 1) == []


def test_memory_source_nodes() -> None:
    n = 1300
    source = memory_source(n)
    coords = [(level, i) for level in range(0, 12) for i in range(8)]
    found = source.perfect_nodes(coords)
    expected = {(level, i) for level in range(STORED_MIN_LEVEL, 12) for i in range(8) if (i + 1) << level <= n}
    assert set(found) == expected == {(8, 0), (8, 1), (8, 2), (8, 3), (8, 4), (9, 0), (9, 1), (10, 0)}
    for (level, i), value in found.items():
        assert value == ref_mth(LEAVES[i << level : (i + 1) << level])
    assert source.size == len(source) == n
    with pytest.raises(ValueError):
        source.leaf_hashes(5, n + 1)


# --------------------------------------------------------------------------------------------
# O(1) calls to the source at scale
# --------------------------------------------------------------------------------------------

BIG = (1 << 17) + 12345 + 77


@pytest.fixture(scope="module")
def big_tree() -> tuple[list[bytes], CountingSource]:
    leaves = [ref_leaf(i.to_bytes(4, "big")) for i in range(BIG)]
    inner = MemoryNodeSource(leaves)
    inner.build()
    return leaves, CountingSource(inner)


def test_proofs_at_scale_use_constant_calls(big_tree: tuple[list[bytes], CountingSource]) -> None:
    leaves, source = big_tree
    root = root_from_leaf_hashes(leaves)
    rng = random.Random(7)
    sizes = [BIG, BIG - 77, 1 << 17, (1 << 17) + 256 * 5]
    size_roots = {size: root_from_leaf_hashes(leaves[:size]) for size in sizes}
    assert size_roots[BIG] == root
    for size in sizes:
        source.reset()
        assert subtree_root(source, 0, size) == size_roots[size]
        edge = size >> STORED_MIN_LEVEL << STORED_MIN_LEVEL  # start of the incomplete block
        near_edge = [edge - d for d in (1, 256, 257, 512, 513) if edge - d >= 0]
        indices = [0, size - 1, size // 2, *near_edge, *(rng.randrange(size) for _ in range(40))]
        for index in indices:
            source.reset()
            proof = inclusion_proof(source, index, size)
            assert verify_inclusion(leaves[index], index, size, proof, size_roots[size]), (index, size)
            assert len(source.node_calls) == 1
            assert len(source.leaf_calls) <= 2
            assert sum(end - start for start, end in source.leaf_calls) < 3 << STORED_MIN_LEVEL
        for old in [1, 255, 256, 257, size - 1, *near_edge[1:], *(rng.randrange(1, size) for _ in range(40))]:
            source.reset()
            proof = consistency_proof(source, old, size)
            old_root = subtree_root(source.inner, 0, old)
            assert verify_consistency(old, size, proof, old_root, size_roots[size]), (old, size)
            assert len(source.node_calls) <= 1
            assert len(source.leaf_calls) <= 2
            assert sum(end - start for start, end in source.leaf_calls) < 3 << STORED_MIN_LEVEL
        source.reset()
        appender = TreeAppender.from_source(source, size)
        assert appender.root() == size_roots[size]
        assert len(source.node_calls) <= 1 and len(source.leaf_calls) <= 1
    # subtree_root over the stored nodes agrees with the full computation at a few old sizes.
    for old in (12345, 99999, 1 << 16):
        assert subtree_root(source.inner, 0, old) == root_from_leaf_hashes(leaves[:old])


# --------------------------------------------------------------------------------------------
# TreeAppender
# --------------------------------------------------------------------------------------------


def test_appender_roots_and_emitted_nodes_every_size_to_600() -> None:
    appender = TreeAppender()
    assert appender.size == 0 and appender.root() == EMPTY_ROOT
    emitted: dict[tuple[int, int], bytes] = {}
    for n in range(1, 601):
        for level, index, value in appender.append(LEAVES[n - 1]):
            assert (level, index) not in emitted
            assert (index + 1) << level == n, "a node is emitted exactly when it is completed"
            emitted[(level, index)] = value
        assert appender.size == n
        assert appender.root() == root_of(n) == ref_mth(LEAVES[:n]), n
    expected = {
        (level, i): ref_mth(LEAVES[i << level : (i + 1) << level])
        for level in range(STORED_MIN_LEVEL, 10)
        for i in range(600 >> level)
    }
    assert set(expected) == {(8, 0), (8, 1), (9, 0)}
    assert emitted == expected


def test_appender_emits_exactly_the_stored_nodes_and_resumes_from_source() -> None:
    n = 4200
    source = memory_source(n)
    appender = TreeAppender()
    emitted: dict[tuple[int, int], bytes] = {}
    frontiers: dict[int, list[bytes]] = {0: []}
    for i, leaf in enumerate(LEAVES[:n]):
        for level, index, value in appender.append(leaf):
            emitted[(level, index)] = value
        frontiers[i + 1] = appender.frontier
    all_coords = [(level, i) for level in range(STORED_MIN_LEVEL, 14) for i in range(n >> STORED_MIN_LEVEL)]
    assert emitted == source.perfect_nodes(all_coords)
    assert appender.root() == root_of(n)
    for size in [*range(0, 600), *range(600, n + 1, 97), n]:
        resumed = TreeAppender.from_source(source, size)
        assert resumed.size == size
        assert resumed.frontier == frontiers[size], size
        assert resumed.root() == root_of(size)
    # Resuming and appending the rest gives the same nodes as appending from scratch.
    resumed = TreeAppender.from_source(source, 1000)
    later: dict[tuple[int, int], bytes] = {}
    for leaf in LEAVES[1000:n]:
        for level, index, value in resumed.append(leaf):
            later[(level, index)] = value
    assert later == {c: h for c, h in emitted.items() if (c[1] + 1) << c[0] > 1000}
    assert resumed.root() == root_of(n)


def test_appender_rejects_bad_state() -> None:
    with pytest.raises(ValueError):
        TreeAppender(3, [LEAVES[0]])  # size 3 needs 2 frontier hashes
    with pytest.raises(ValueError):
        TreeAppender(1, [b"short"])
    with pytest.raises(ValueError):
        TreeAppender(-1, [])
    with pytest.raises(ValueError):
        TreeAppender().append(b"x" * 31)
    with pytest.raises(ValueError):
        TreeAppender().append("not bytes")  # type: ignore[arg-type]
    assert TreeAppender(2, [node_hash(LEAVES[0], LEAVES[1])]).root() == root_of(2)
    assert TreeAppender.frontier_coords(13) == [(3, 0), (2, 2), (0, 12)]


# --------------------------------------------------------------------------------------------
# Adversarial proofs: every one must be rejected
# --------------------------------------------------------------------------------------------

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _bits(all_bits: bool, rng: random.Random) -> Sequence[int]:
    return range(256) if all_bits else [rng.randrange(256)]


def _proof_mutations(proof: list[bytes], extras: Sequence[bytes], all_bits: bool, seed: int) -> Iterator[Any]:
    """Proofs that differ from ``proof`` and must not verify."""
    rng = random.Random(seed)
    for i, element in enumerate(proof):
        for bit in _bits(all_bits, rng):
            yield [*proof[:i], _flip(element, bit), *proof[i + 1 :]]
        yield [*proof[:i], element[:-1], *proof[i + 1 :]]  # truncated
        yield [*proof[:i], element + b"\x00", *proof[i + 1 :]]  # overlong
        yield [*proof[:i], *proof[i + 1 :]]  # missing element
        yield [*proof[:i], SOME_HASH, *proof[i:]]  # inserted element
        for wrong_type in (element.hex(), bytearray(element), memoryview(element), int.from_bytes(element), None):
            yield [*proof[:i], wrong_type, *proof[i + 1 :]]
    for i in range(len(proof) - 1):
        if proof[i] != proof[i + 1]:
            yield [*proof[:i], proof[i + 1], proof[i], *proof[i + 2 :]]  # reordered
    for extra in [SOME_HASH, EMPTY_ROOT, bytes(32), *extras, *proof[:1]]:
        yield [*proof, extra]  # extra element at the end
        yield [extra, *proof]  # extra element at the front
    yield [*proof, b""]
    yield [b"", *proof]
    yield b"".join(proof)  # not a list
    yield None
    yield "proof"


def assert_inclusion_attacks_fail(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes, *, all_bits: bool = False, seed: int = 0
) -> None:
    rng = random.Random(seed)
    assert verify_inclusion(leaf, index, size, proof, root)
    assert verify_inclusion(leaf, index, size, tuple(proof), root)  # type: ignore[arg-type]
    # Other positions and sizes. A change of size that keeps the path's shape (e.g. leaf 0 in
    # trees of 5..8 leaves) runs the identical computation, so RFC 9162 verification must accept
    # it; every other one must be rejected. We check both, so neither direction can drift.
    shape = ref_inclusion_shape(index, size)
    positions = {(i, size) for i in (index - 1, index + 1, index ^ 1, index ^ 2, size, size + index)}
    positions |= {(index, n) for n in (size - 1, size + 1, size * 2, size // 2, 0, index)}
    positions.discard((index, size))
    for other_index, other_size in sorted(positions):
        same_shape = other_index >= 0 and ref_inclusion_shape(other_index, other_size) == shape
        verdict = verify_inclusion(leaf, other_index, other_size, proof, root)
        assert verdict == same_shape, f"({index}, {size}) proof checked as ({other_index}, {other_size}): {verdict}"
    probes: list[tuple[str, Any, Any, Any, Any, Any]] = []
    for wrong_leaf in (SOME_HASH, EMPTY_ROOT, root, leaf_hash(leaf), leaf[:-1], leaf + b"\x00", b"", leaf.hex()):
        if wrong_leaf != leaf:
            probes.append(("leaf", wrong_leaf, index, size, proof, root))
    for bit in _bits(all_bits, rng):
        probes.append(("leaf bit", _flip(leaf, bit), index, size, proof, root))
        probes.append(("root bit", leaf, index, size, proof, _flip(root, bit)))
    for wrong_root in (SOME_HASH, EMPTY_ROOT, root[:-1], root + b"\x00", None, bytearray(root)):
        if wrong_root != root or not isinstance(wrong_root, bytes):
            probes.append(("root", leaf, index, size, proof, wrong_root))
    for bad_int in (float(index), str(index), None, True if index == 1 else -1):
        probes.append(("index type", leaf, bad_int, size, proof, root))
    probes.append(("size type", leaf, index, float(size), proof, root))
    for bad in _proof_mutations(proof, [root, leaf], all_bits, seed):
        probes.append(("proof", leaf, index, size, bad, root))
    accepted = [p[0] for p in probes if verify_inclusion(*p[1:])]
    assert not accepted, f"accepted corrupted inclusion proofs for ({index}, {size}): {accepted}"


def assert_consistency_attacks_fail(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes, *, all_bits: bool = False, seed: int = 0
) -> None:
    assert 0 < size1 < size2
    rng = random.Random(seed)
    assert verify_consistency(size1, size2, proof, root1, root2)
    # As for inclusion: a change of sizes that keeps the proof's shape must verify (identical
    # computation), every other one must not. In practice only size2 can keep it.
    shape = ref_consistency_shape(size1, size2)
    pairs = {(m, size2) for m in (size1 - 1, size1 + 1, size1 ^ 2, size1 * 2, size1 // 2, 0, size2)}
    pairs |= {(size1, n) for n in (size2 - 1, size2 + 1, size2 * 2, size2 // 2, size1)}
    pairs.discard((size1, size2))
    for m, n in sorted(pairs):
        same_shape = m < n and ref_consistency_shape(m, n) == shape
        verdict = verify_consistency(m, n, proof, root1, root2)
        assert verdict == same_shape, f"({size1}, {size2}) proof checked as ({m}, {n}): {verdict}"
    probes: list[tuple[str, Any, Any, Any, Any, Any]] = []
    probes.append(("swapped roots", size1, size2, proof, root2, root1))
    probes.append(("swapped sizes", size2, size1, proof, root1, root2))
    probes.append(("empty proof", size1, size2, [], root1, root2))
    for wrong in (SOME_HASH, EMPTY_ROOT, root1[:-1], root1 + b"\x00", None, bytearray(root1), root1.hex()):
        if wrong != root1 or not isinstance(wrong, bytes):
            probes.append(("root1", size1, size2, proof, wrong, root2))
        if wrong != root2 or not isinstance(wrong, bytes):
            probes.append(("root2", size1, size2, proof, root1, wrong))
    for bit in _bits(all_bits, rng):
        probes.append(("root1 bit", size1, size2, proof, _flip(root1, bit), root2))
        probes.append(("root2 bit", size1, size2, proof, root1, _flip(root2, bit)))
    probes.append(("size types", float(size1), size2, proof, root1, root2))
    probes.append(("size types", size1, str(size2), proof, root1, root2))
    for bad in _proof_mutations(proof, [root1, root2], all_bits, seed):
        probes.append(("proof", size1, size2, bad, root1, root2))
    accepted = [p[0] for p in probes if verify_consistency(*p[1:])]
    assert not accepted, f"accepted corrupted consistency proofs for ({size1}, {size2}): {accepted}"


def test_inclusion_attacks_every_bit_small_trees() -> None:
    for n in (1, 2, 3, 5, 8, 13):
        for i in range(n):
            proof = inclusion_proof(memory_source(n), i, n)
            assert_inclusion_attacks_fail(LEAVES[i], i, n, proof, root_of(n), all_bits=True)


def test_consistency_attacks_every_bit_small_trees() -> None:
    for n in (2, 3, 5, 8, 13):
        for m in range(1, n):
            proof = consistency_proof(memory_source(n), m, n)
            assert_consistency_attacks_fail(m, n, proof, root_of(m), root_of(n), all_bits=True)


def test_attacks_fail_for_every_proof_up_to_48() -> None:
    for n in range(1, 49):
        source = memory_source(n)
        for i in range(n):
            proof = inclusion_proof(source, i, n)
            assert_inclusion_attacks_fail(LEAVES[i], i, n, proof, root_of(n), seed=n * 1000 + i)
        for m in range(1, n):
            proof = consistency_proof(source, m, n)
            assert_consistency_attacks_fail(m, n, proof, root_of(m), root_of(n), seed=n * 1000 + m)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(71, 4200), data=st.data())
def test_attacks_fail_random_large_trees(n: int, data: st.DataObject) -> None:
    source = memory_source(n)
    i = data.draw(st.integers(0, n - 1), label="index")
    m = data.draw(st.integers(1, n - 1), label="old_size")
    assert_inclusion_attacks_fail(LEAVES[i], i, n, inclusion_proof(source, i, n), root_of(n), seed=i)
    assert_consistency_attacks_fail(m, n, consistency_proof(source, m, n), root_of(m), root_of(n), seed=m)


def test_inclusion_edge_cases() -> None:
    leaf = LEAVES[0]
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    # The Go implementation's probes for an empty proof: (index, size) in {(0,0), (1,0), (2,1)}.
    for index, size in [(0, 0), (1, 0), (2, 1), (1, 1)]:
        assert not verify_inclusion(leaf, index, size, [], leaf)
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], b"")
    assert not verify_inclusion(leaf, 0, 1, [leaf], leaf)


def test_consistency_edge_cases() -> None:
    """Equal sizes need an empty proof and equal roots; size1 == 0 (no proof defined by the RFC)
    is accepted exactly with an empty proof and root1 == EMPTY_ROOT."""
    r5, r7 = root_of(5), root_of(7)
    assert verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    assert verify_consistency(0, 7, [], EMPTY_ROOT, r7)
    assert verify_consistency(5, 5, [], r5, r5)
    assert not verify_consistency(0, 7, [], r5, r7)  # a size-0 tree has only one possible root
    assert not verify_consistency(0, 0, [], EMPTY_ROOT, r7)
    assert not verify_consistency(0, 7, [EMPTY_ROOT], EMPTY_ROOT, r7)
    assert not verify_consistency(0, 0, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT)
    assert not verify_consistency(5, 5, [], r5, r7)
    assert not verify_consistency(5, 5, [r5], r5, r5)
    assert not verify_consistency(5, 7, [], r5, r7)
    assert not verify_consistency(7, 5, [], r7, r5)
    assert not verify_consistency(1, 0, [], r5, r5)
    assert not verify_consistency(-1, 5, [], r5, r5)
    assert not verify_consistency(True, True, [], r5, r5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Fuzz: the verifiers never raise
# --------------------------------------------------------------------------------------------

HASHLIKE = st.one_of(
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=40),
    st.sampled_from([EMPTY_ROOT, LEAVES[0], root_of(8)]),
)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=40),
    st.builds(bytearray, st.binary(max_size=33)),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.tuples(st.integers()),
)
ANY_INT = st.one_of(st.integers(min_value=-5, max_value=5000), st.integers(min_value=-(2**70), max_value=2**70), JUNK)
ANY_HASH = st.one_of(HASHLIKE, JUNK)
ANY_PROOF = st.one_of(
    st.lists(st.binary(min_size=32, max_size=32), max_size=70),
    st.lists(st.one_of(HASHLIKE, JUNK), max_size=12),
    st.tuples(HASHLIKE, HASHLIKE),
    JUNK,
)


@settings(max_examples=300, deadline=None)
@given(leaf=ANY_HASH, index=ANY_INT, size=ANY_INT, proof=ANY_PROOF, root=ANY_HASH)
def test_verify_inclusion_never_raises(leaf: Any, index: Any, size: Any, proof: Any, root: Any) -> None:
    assert type(verify_inclusion(leaf, index, size, proof, root)) is bool


@settings(max_examples=300, deadline=None)
@given(size1=ANY_INT, size2=ANY_INT, proof=ANY_PROOF, root1=ANY_HASH, root2=ANY_HASH)
def test_verify_consistency_never_raises(size1: Any, size2: Any, proof: Any, root1: Any, root2: Any) -> None:
    assert type(verify_consistency(size1, size2, proof, root1, root2)) is bool


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(0, 2**64),
    size=st.integers(0, 2**64),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=66),
    leaf=st.binary(min_size=32, max_size=32),
)
def test_well_formed_random_proofs_are_rejected(index: int, size: int, proof: list[bytes], leaf: bytes) -> None:
    """Random proofs for huge trees: no crash, and a proof not derived from the root fails."""
    assert verify_inclusion(leaf, index, size, proof, SOME_HASH) is False
    assert verify_consistency(index, size, proof, SOME_HASH, EMPTY_ROOT) is False


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 1300), count=st.integers(0, 1300))
def test_extend_equals_appending_one_by_one(start: int, count: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(start + count)]
    one, many = TreeAppender(), TreeAppender()
    for leaf in leaves[:start]:
        one.append(leaf)
        many.append(leaf)
    expected = [node for leaf in leaves[start:] for node in one.append(leaf)]
    assert many.extend(leaves[start:]) == expected
    assert many.size == one.size and many.root() == one.root() == root_from_leaf_hashes(leaves)
    assert many.frontier == one.frontier


def test_extend_refuses_bad_leaves() -> None:
    with pytest.raises(ValueError):
        TreeAppender().extend([b"\x00" * 31] * 256)
