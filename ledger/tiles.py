"""The ledger's Merkle tree as C2SP tlog-tiles (https://c2sp.org/tlog-tiles), for off-the-shelf tooling.

Why: with the hash tiles in the bucket, any tlog client (Go ``golang.org/x/mod/sumdb/tlog``,
Sigsum, torchwood) computes inclusion and consistency proofs against a published checkpoint by
itself, with no Keyong code and no database. Format, as the spec has it:

* a tile of level ``L`` and index ``N`` lists the hashes at tree level ``8 * L`` with indices
  ``N * 256 .. N * 256 + W - 1``, concatenated (32 bytes each); level 0 holds the leaf hashes
  (RFC 6962 ``HASH(0x00 || entry hash)``);
* a full tile has ``W = 256`` and never changes; the tile at the right edge of a tree of size S is
  partial, ``W = (S >> 8L) mod 256``, and is named with the ``.p/<W>`` suffix, so a later, wider
  partial tile is another object: nothing is ever rewritten;
* the path is ``tile/<L>/<N>[.p/<W>]`` with ``N`` in 3-digit elements, all but the last prefixed by
  ``x`` (index 1234067 is ``x001/x234/067``).

Published under ``ledger/tile/``; the entries themselves are the ledger's JSONL objects
(:mod:`ledger.published`), not tlog-tiles entry bundles. Pure: standard library and this package.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from ledger.merkle import root_from_leaf_hashes

__all__ = ["TILE_WIDTH", "TileHasher", "parse_tile_path", "tile_path", "tiles_between"]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 5  # tlog-tiles: "<L> MUST be a decimal ASCII integer between 0 and 5"

_PATH = re.compile(r"^tile/([0-5])/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?$")


def tile_path(level: int, index: int, width: int) -> str:
    """``tile/<L>/<N>[.p/<W>]`` (without the ``ledger/`` prefix)."""
    if not 0 <= level <= MAX_LEVEL or index < 0 or not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"no tile of level {level}, index {index}, width {width}")
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    path = f"tile/{level}/" + "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def parse_tile_path(path: str) -> tuple[int, int, int] | None:
    """(level, index, width) of a canonical tile path, or ``None`` (a re-spelling is no tile)."""
    match = _PATH.match(path)
    if match is None:
        return None
    level, index = int(match.group(1)), int(match.group(2).replace("x", "").replace("/", ""))
    width = int(match.group(3)) if match.group(3) else TILE_WIDTH
    if width > TILE_WIDTH or tile_path(level, index, width) != path:
        return None
    return level, index, width


def tiles_between(old_size: int, new_size: int) -> Iterator[tuple[int, int, int]]:
    """The tiles (level, index, width) of a tree of ``new_size`` whose content a tree of ``old_size`` lacked.

    These are what a publisher writes for a checkpoint after the previous one: every tile that became
    full, and the new partial tile at each level's right edge.
    """
    for level in range(MAX_LEVEL + 1):
        count_new, count_old = new_size >> (TILE_HEIGHT * level), old_size >> (TILE_HEIGHT * level)
        if count_new == 0:
            return
        for index in range(count_old // TILE_WIDTH, (count_new + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, count_new - index * TILE_WIDTH)
            if index * TILE_WIDTH + width > count_old:
                yield level, index, width


class TileHasher:
    """The tiles of a log read leaf by leaf, as SHA-256 digests of their bytes (what a verifier compares).

    :meth:`add` takes leaf hashes in order; full tiles are recorded as they fill, and :meth:`edge`
    records the partial tiles of the tree's current size (call it at every checkpoint size).
    """

    def __init__(self) -> None:
        self._open: list[list[bytes]] = [[]]
        self._index: list[int] = [0]
        self.digests: dict[str, str] = {}

    def add(self, leaf: bytes) -> None:
        level, value = 0, leaf
        while True:
            self._open[level].append(value)
            if len(self._open[level]) < TILE_WIDTH:
                return
            hashes = self._open[level]
            self.digests[tile_path(level, self._index[level], TILE_WIDTH)] = hashlib.sha256(
                b"".join(hashes)
            ).hexdigest()
            value = root_from_leaf_hashes(hashes)  # the node at level 8 * (level + 1)
            self._open[level] = []
            self._index[level] += 1
            level += 1
            if level > MAX_LEVEL:
                return
            if level == len(self._open):
                self._open.append([])
                self._index.append(0)

    def edge(self) -> None:
        for level, hashes in enumerate(self._open):
            if hashes:
                path = tile_path(level, self._index[level], len(hashes))
                self.digests[path] = hashlib.sha256(b"".join(hashes)).hexdigest()
