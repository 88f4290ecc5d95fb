"""The pseudonyms' fragment prints, hashed before k-anonymity and picked for the rows it keeps.

Why: the guard's fragment prints (``desensitize.fingerprint_hashes.fragments_of``: the first and last
10, 12 and 16 hex digits of every pseudonym of the copy, red team 23 F7) are six keyed hashes per
pseudonym, the largest single cost of the fingerprints (~2.5 CPU-s per million rows). They depend on
which rows k-anonymity keeps, but the pseudonyms themselves are settled when the table is transformed:
so every row's pieces are cut and hashed then (``pseudonym_pieces``, on the other core while this
process runs k-anonymity, risk and utility: ``desensitize.forking``), and once the kept rows are known
``kept_fragments`` only selects theirs and makes them distinct — the same sorted hashes and the same
counts per length as ``fragments_of`` over the copy's pseudonyms.

A piece of n <= 16 hex digits *is* an n-digit number, so two pieces of one length are the same text
exactly when their numbers are equal: the counts of distinct pieces come from integers, never from
hashes (no collision can change them). Only pseudonyms of one even width are handled this way (a key
column's 32 digits, ``_fragments_of_equal_lengths``'s case); anything else returns None and the caller
takes the general path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.fingerprint_hashes import (
    _HEX_VALUE,
    FRAGMENT_LENGTHS,
    _fixed_width,
    column_hashes,
    siphash,
)
from desensitize.forking import on_threads, worth_forking
from desensitize.transforms import arrow_strings, as_text

__all__ = [
    "CopyPrints",
    "PseudonymPieces",
    "copy_hashes",
    "copy_prints",
    "kept_fragments",
    "picked_fragments",
    "picked_hashes",
    "pseudonym_pieces",
]

_PSEUDONYM = r"^[0-9a-f]{20,}$"  # as fragments_of: a pseudonym long enough for its pieces to be fragments


@dataclass(slots=True)
class PseudonymPieces:
    """Every row's pieces of the pseudonym columns (the columns one after another, all input rows).

    ``at``: the positions (into the columns' rows laid end to end) of the values that are pseudonyms;
    per length n, ``prints[n]`` the keyed hashes of the distinct pieces, sorted, and ``codes[n]`` which of
    them each of those values' first pieces, then each one's last piece, is (``2 * len(at)`` codes): the
    kept rows' prints are then a selection of sorted arrays, no sort (``kept_fragments``)."""

    names: list[str]
    rows: int
    at: np.ndarray
    codes: dict[int, np.ndarray]
    prints: dict[int, np.ndarray]


def pseudonym_pieces(frame: pd.DataFrame, names: Sequence[str], key: str) -> PseudonymPieces | None:
    """The pieces of every row of the ``names`` columns of ``frame`` (the copy's pseudonym columns before
    any row is suppressed), or None when their pseudonyms are not all of one even width of at least 16
    digits."""
    rows, names = len(frame), list(names)
    parts = [pc.fill_null(arrow_strings(as_text(frame[c])), "") for c in names]
    if not parts:
        return None
    text = pa.chunked_array([a for p in parts for a in _chunks(p)], type=pa.large_string()).combine_chunks()
    matched = pc.fill_null(pc.match_substring_regex(text, _PSEUDONYM), False).to_numpy(zero_copy_only=False)
    at = np.flatnonzero(matched)
    hexes = pc.filter(text, pa.array(matched))
    if len(hexes) == 0:
        return PseudonymPieces(names, rows, at, {}, {})
    _, offsets_buffer, data_buffer = hexes.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[hexes.offset : hexes.offset + len(hexes) + 1]
    width = int(offsets[1] - offsets[0])
    if width % 2 or width < max(FRAGMENT_LENGTHS) or not np.all(np.diff(offsets) == width):
        return None
    digits = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(len(hexes), width)
    nibbles = _HEX_VALUE[digits]
    packed = (nibbles[:, 0::2] << np.uint8(4)) | nibbles[:, 1::2]  # a byte per two digits
    half = width // 2
    head16 = np.ascontiguousarray(packed[:, :8]).view(">u8").ravel().astype(np.uint64)
    tail16 = np.ascontiguousarray(packed[:, half - 8 : half]).view(">u8").ravel().astype(np.uint64)

    def numbered(n: int) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        def run() -> tuple[np.ndarray, np.ndarray]:
            numbers = np.concatenate([head16 >> np.uint64(4 * (16 - n)), tail16 & np.uint64((1 << (4 * n)) - 1)])
            hashed = np.concatenate(
                [siphash(_fixed_width(digits[:, :n]), key), siphash(_fixed_width(digits[:, width - n :]), key)]
            )
            return _numbered(numbers, hashed)

        return run

    # One length per thread: the hashing and the argsorts release the GIL, so a forked helper running this
    # uses the second core as soon as the process it works for waits on it (desensitize.ahead).
    done = on_threads({str(n): numbered(n) for n in FRAGMENT_LENGTHS}, threads=2 if worth_forking(len(hexes)) else 1)
    codes = {n: done[str(n)][0] for n in FRAGMENT_LENGTHS}
    prints = {n: done[str(n)][1] for n in FRAGMENT_LENGTHS}
    return PseudonymPieces(names, rows, at, codes, prints)


def _numbered(numbers: np.ndarray, hashed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each value's piece numbered in the order of the distinct pieces' hashes, those hashes sorted).

    Equal pieces have equal hashes, so one sort of the hashes brings every piece's values together; when
    no two distinct pieces share a hash (checked on the numbers, exact) the runs of equal hashes *are*
    the distinct pieces, and one argsort does what ``np.unique`` over the numbers and an argsort of the
    distinct pieces' hashes did (two sorts of 2M values per length, ~1.2 CPU-s per million rows in all).
    A collision takes that path, so the result never depends on the hashes being distinct."""
    order = np.argsort(hashed)
    sorted_hashes, sorted_numbers = hashed[order], numbers[order]
    new = np.ones(len(order), dtype=bool)
    np.not_equal(sorted_hashes[1:], sorted_hashes[:-1], out=new[1:])
    if np.any(~new[1:] & (sorted_numbers[1:] != sorted_numbers[:-1])):  # two pieces, one hash
        return _numbered_by_pieces(numbers, hashed)
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.cumsum(new, dtype=np.int32) - 1
    return rank, sorted_hashes[new]


def _numbered_by_pieces(numbers: np.ndarray, hashed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_numbered`` when hashes collide: distinct pieces by their numbers, then ordered by their hashes."""
    distinct, inverse = np.unique(numbers, return_inverse=True)
    by_piece = np.empty(len(distinct), dtype=np.uint64)
    by_piece[inverse] = hashed
    order = np.argsort(by_piece)
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank[inverse.ravel()], by_piece[order]


def kept_fragments(pieces: PseudonymPieces, kept: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """The fragment prints of the kept rows' pseudonyms (sorted distinct hashes) and the distinct pieces
    per length, as ``fragments_of`` and its hashing give them over the copy."""
    if len(kept) != pieces.rows:
        raise ValueError(f"{len(kept)} kept flags for pseudonym pieces of {pieces.rows} rows")
    chosen = np.tile(np.asarray(kept, dtype=bool), len(pieces.names))[pieces.at]
    if not chosen.any():
        return np.zeros(0, dtype=np.uint64), {}
    both = np.concatenate([chosen, chosen])  # first pieces, then last ones
    counts: dict[str, int] = {}
    parts: list[np.ndarray] = []
    for n, codes in pieces.codes.items():
        present = np.zeros(len(pieces.prints[n]), dtype=bool)
        present[codes[both]] = True
        counts[str(n)] = int(np.count_nonzero(present))
        parts.append(pieces.prints[n][present])
    merged = np.sort(np.concatenate(parts), kind="stable")  # sorted runs: a merge (timsort), not a sort
    keep = np.ones(len(merged), dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    return merged[keep], counts


@dataclass(slots=True)
class CopyPrints:
    """What the fingerprints need of the copy, hashed before k-anonymity for every input row: the pseudonyms'
    ``pieces`` and, per column k-anonymity does not generalize, each row's keyed hash and whether it is long
    enough (``column_hashes``); the fingerprints pick the kept rows' ones."""

    pieces: PseudonymPieces | None
    hashes: dict[str, tuple[np.ndarray, np.ndarray]]
    #: Raw columns' ``column_hashes`` left out of the early raw side (``raw_prints``'s ``skip``): free text.
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def copy_prints(
    frame: pd.DataFrame,
    pseudonyms: Sequence[str],
    columns: Sequence[str],
    key: str,
    raw: pd.DataFrame | None = None,
    raw_columns: Sequence[str] = (),
) -> CopyPrints:
    """``pseudonym_pieces`` of the ``pseudonyms`` columns and ``copy_hashes``: the two halves of the work,
    which a large table runs in two forked children (``desensitize.ahead``)."""
    pieces = pseudonym_pieces(frame, pseudonyms, key) if pseudonyms else None
    return CopyPrints(pieces, *copy_hashes(frame, pseudonyms, columns, key, raw, raw_columns))


def copy_hashes(
    frame: pd.DataFrame,
    pseudonyms: Sequence[str],
    columns: Sequence[str],
    key: str,
    raw: pd.DataFrame | None = None,
    raw_columns: Sequence[str] = (),
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The row hashes of the ``columns`` of ``frame``, and those of the ``raw_columns`` of ``raw`` (as
    ``raw_prints`` hashes them).

    Only columns of strings are hashed ahead: their text is each value's own (``as_text`` renders dates
    by what the whole column holds, which suppression can change), so a kept row's hash is the same
    whether hashed among all rows or among the kept ones; the others are left to the fingerprints."""
    hashes = {
        c: column_hashes(frame[c].reset_index(drop=True), key, canonical=c in pseudonyms)
        for c in columns
        if isinstance(frame[c].dtype, pd.StringDtype)
    }
    raw_hashes = {c: column_hashes(raw[c], key) for c in raw_columns} if raw is not None else {}
    return hashes, raw_hashes


def picked_hashes(
    early: CopyPrints | None, kept: np.ndarray | None, raw_rows: int, copy_rows: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The kept rows' hashes of the copy's columns hashed ahead (``early``), when ``kept`` picks the copy's rows."""
    if early is None or kept is None or len(kept) != raw_rows or int(np.count_nonzero(kept)) != copy_rows:
        return {}
    return {c: (hashes[kept], long_enough[kept]) for c, (hashes, long_enough) in early.hashes.items()}


def picked_fragments(
    pieces: PseudonymPieces | None, pseudonyms: list[str], kept: np.ndarray | None, copy_rows: int
) -> tuple[np.ndarray, dict[str, int]] | None:
    """The kept rows' fragments from ``pieces`` (``kept_fragments``) when they are of the copy's pseudonym
    columns and ``kept`` picks the copy's rows among theirs; else None (cut and hashed from the copy)."""
    if pieces is None or kept is None or pieces.names != pseudonyms or len(kept) != pieces.rows:
        return None
    return kept_fragments(pieces, kept) if int(np.count_nonzero(kept)) == copy_rows else None


def _chunks(array: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(array.chunks) if isinstance(array, pa.ChunkedArray) else [array]
