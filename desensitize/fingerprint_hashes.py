"""The keyed hashes behind the guard's fingerprints: normalisation ``fp-norm-1``, SipHash, row hashes.

Why apart from ``desensitize.fingerprints``: the set (what is kept, saved and probed) and the hashing
(how a value or a row becomes a uint64) change for different reasons; the guard's probes normalise
their candidates with the same functions (``normalise_for_fingerprint``, ``join_normalised``), so
a value probes as it was printed. See ``desensitize.fingerprints`` for the normalisation's rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.util import hash_array

from desensitize.letters import strip_non_alnum
from desensitize.transforms import arrow_strings, as_text, mostly_distinct, nfkc, on_rows

__all__ = [
    "DEFAULT_LENGTHS",
    "FRAGMENT_LENGTHS",
    "LENGTH_CLASSES",
    "MIN_VALUE_CHARS",
    "FingerprintError",
    "RawPrints",
    "class_lengths",
    "classed_distinct",
    "column_hashes",
    "column_prints",
    "combine_rows",
    "combined_lengths",
    "distinct_text",
    "fingerprint_key",
    "fragment_candidates",
    "fragments_of",
    "join_normalised",
    "long_distinct",
    "member",
    "mix",
    "normalise_for_fingerprint",
    "raw_column_hashes",
    "raw_prints",
    "siphash",
    "sorted_unique",
    "value_lengths",
]

#: Raw values shorter than this (after normalisation) are not fingerprinted: "男", "1" are in every output.
MIN_VALUE_CHARS = 2
_ROW_SEED = np.uint64(0x243F6A8885A308D3)


class FingerprintError(ValueError):
    """A fingerprint set that cannot be used: wrong pepper, damaged files, unknown kind or columns."""


def fingerprint_key(pepper: bytes) -> str:
    """The 16-character SipHash key, derived from the pepper so that it is never stored."""
    if not pepper:
        raise FingerprintError("the pepper must not be empty")
    digest = hmac.new(pepper, b"keyong-fingerprint", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")[:16]


def normalise_for_fingerprint(array: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """``fp-norm-1`` of each string (see the module docstring); nulls become ''."""
    array = pc.fill_null(nfkc(array), "")
    array = on_rows(
        array,
        pc.match_substring(array, ".0"),
        lambda a: pc.replace_substring_regex(a, r"^\s*(-?[0-9]+)\.0+\s*$", r"\1"),
    )
    array = pc.utf8_lower(strip_non_alnum(array))
    return _without_country_code(array)


def _without_country_code(array: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return on_rows(
        array,
        pc.or_(pc.starts_with(array, "86"), pc.starts_with(array, "0086")),
        lambda a: pc.replace_substring_regex(a, r"^(?:0086|86)(1[3-9][0-9]{9})$", r"\1"),
    )


def join_normalised(parts: Sequence[pa.Array]) -> pa.Array:
    """``fp-norm-1`` of strings glued from parts, given each part's own ``fp-norm-1``.

    Why: the guard glues neighbouring cells of a table in many combinations; normalising each
    distinct cell once and gluing is far cheaper than normalising every glued string. The removal
    of non-alphanumerics and lower-casing act character by character, and so does NFKC except for a
    part that starts with a combining mark composing with the previous part's last letter (e +
    U+0301), which no identifier of a Chinese dataset has. A part ``5200.0`` reads as its number 5200,
    as a cell should (glued first it would read 52000). Only the country-code rule looks at the
    whole value, so it is applied again here."""
    glued = pc.binary_join_element_wise(*parts, pa.scalar("", parts[0].type)) if len(parts) > 1 else parts[0]
    return _without_country_code(glued)


#: Classes of normalised identifier values, by the characters of their runs (first match wins): the guard
#: slides a window of each length a class holds over the runs of that class in an output.
LENGTH_CLASSES: dict[str, str] = {
    "digits": r"^[0-9]+x?$",
    "hex": r"^[0-9a-f]+$",
    "alnum": r"^[0-9a-z]+$",
    "han": r"^\p{Han}+$",
}
#: What a set built before lengths were recorded is assumed to hold (the identifier types Keyong knows:
#: mobiles, resident ids old and new, bank cards, 128-bit pseudonyms, USCCs, Chinese names).
DEFAULT_LENGTHS = {"digits": (11, 15, 16, 17, 18, 19), "hex": (32,), "alnum": (18,), "han": (2, 3, 4)}


def distinct_text(values: pd.Series) -> pa.Array:
    array = arrow_strings(as_text(pd.Series(values.dropna().unique())))
    return (array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array).cast(pa.large_string())


def value_lengths(normalised: pa.Array | pa.ChunkedArray) -> dict[str, dict[str, int]]:
    """How many distinct normalised values of each class have each length (lengths only, no content).

    Why: the guard probes an output's long runs of digits or letters with sliding windows, one width
    per length an identifier of the set can have, and judges a window hit against the chance of one.
    """
    return _as_lengths(class_lengths(long_distinct(normalised)))


def long_distinct(normalised: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The distinct normalised values of at least ``MIN_VALUE_CHARS`` characters (the values printed)."""
    return _unique(pc.filter(normalised, pc.greater_equal(pc.utf8_length(normalised), MIN_VALUE_CHARS)))


#: What some class of ``LENGTH_CLASSES`` holds: a value outside it is counted in no class.
_IN_SOME_CLASS = "|".join(f"(?:{pattern})" for pattern in LENGTH_CLASSES.values())


def classed_distinct(columns: Sequence[pa.Array | pa.ChunkedArray]) -> pa.Array:
    """``long_distinct`` of the columns' normalised text laid end to end, without the values of no class.

    Why: it serves only ``class_lengths`` and ``combined_lengths``, which count class members (a value of no
    class is never counted, and a pseudonym equal to one would be of no class either), and one hash table
    of every raw identifier (3.3M strings for a million residents, addresses included) took 1.2 CPU-s:
    here each column is made distinct on its own, addresses (of no class) are left out before, and the
    columns are made distinct together only when two of them hold values of one length (values of
    different lengths differ)."""
    parts: list[pa.Array] = []
    lengths: list[set[int]] = []
    for column in columns:
        long = pc.filter(column, pc.greater_equal(pc.utf8_length(column), MIN_VALUE_CHARS))
        part = _unique(pc.filter(long, pc.match_substring_regex(long, _IN_SOME_CLASS))).cast(pa.large_string())
        parts.append(part)
        lengths.append(set(pc.unique(pc.utf8_length(part)).to_pylist()))
    if not parts:
        return pa.array([], pa.large_string())
    joined = pa.concat_arrays(parts)
    if sum(map(len, lengths)) == len(set().union(*lengths)):  # no length in two columns: no value in two
        return joined
    return pc.unique(joined)


#: Any key serves to tell whether strings are all different (equal strings hash equal under every key).
_DISTINCT_CHECK_KEY = "keyong-distinct!"


def _unique(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``pc.unique(values)``, without its hash table when no two values are equal (each column's values come
    distinct from ``column_prints``, and normalising rarely makes two equal; a copy's pseudonyms are
    distinct per person). When no two of their 64-bit hashes are equal no two values are (equal values hash
    equal), and the values, in their order, are what ``pc.unique`` returns. Sorting the hashes costs about
    a third of the hash table on a million identifiers; equal hashes (equal values, or a collision) take
    ``pc.unique``."""
    flat = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if _native is None or len(flat) < 2 or flat.null_count:
        return pc.unique(flat)
    hashes = np.sort(siphash(flat, _DISTINCT_CHECK_KEY))
    if np.any(hashes[1:] == hashes[:-1]):
        return pc.unique(flat)
    return flat


def class_lengths(distinct: pa.Array) -> dict[str, dict[int, int]]:
    """Per class of ``LENGTH_CLASSES`` (first match wins), how many of ``distinct`` have each length."""
    out: dict[str, dict[int, int]] = {}
    left = distinct
    for name, pattern in LENGTH_CLASSES.items():
        matched = pc.match_substring_regex(left, pattern)
        lengths = pc.value_counts(pc.utf8_length(pc.filter(left, matched)))
        out[name] = {int(item["values"].as_py()): int(item["counts"].as_py()) for item in lengths}
        left = pc.filter(left, pc.invert(matched))
    return out


def _as_lengths(counts: Mapping[str, Mapping[int, int]]) -> dict[str, dict[str, int]]:
    """The report form: classes in ``LENGTH_CLASSES`` order, lengths ascending, empty ones left out."""
    out: dict[str, dict[str, int]] = {}
    for name in LENGTH_CLASSES:
        held = {n: c for n, c in sorted(counts.get(name, {}).items()) if c}
        if held:
            out[name] = {str(n): c for n, c in held.items()}
    return out


def combined_lengths(
    distinct: pa.Array, counts: Mapping[str, Mapping[int, int]], more: pa.Array | pa.ChunkedArray
) -> dict[str, dict[str, int]]:
    """``value_lengths`` of ``distinct`` (whose ``class_lengths`` are ``counts``) together with ``more``.

    Why: the raw identifiers' distinct values are counted on the other core with the raw hashes
    (``raw_prints``); only ``more`` (the pseudonyms) is made distinct here, and those of its values that
    ``distinct`` holds already (of a length both have) are not counted twice: the same figures as
    ``value_lengths`` over both, without a hash table of every value."""
    extra = long_distinct(more)
    if len(extra) and len(distinct):
        same_length = pc.filter(
            distinct, pc.is_in(pc.utf8_length(distinct), value_set=pc.unique(pc.utf8_length(extra)))
        )
        if len(same_length):
            extra = pc.filter(extra, pc.invert(pc.is_in(extra, value_set=same_length)))
    added = class_lengths(extra)
    total = {name: dict(counts.get(name, {})) for name in LENGTH_CLASSES}
    for name, by_length in added.items():
        for n, c in by_length.items():
            total[name][n] = total[name].get(n, 0) + c
    return _as_lengths(total)


#: The optional C loop (``desensitize/transforms/_keyedhash.c``, setup.py): SipHash-2-4 over the column's
#: own bytes, ~0.02 s per million short strings where pandas' ``hash_array`` (a Python str per value,
#: encoded again) took 0.2-0.3 CPU-s; ~15 such columns per million-row table. Without it, pandas (same
#: hashes: tests/test_keyedhash.py).
_native: ModuleType | None
try:
    _native = importlib.import_module("desensitize.transforms._keyedhash")
except ImportError:  # not built: no compiler
    _native = None


def siphash(normalised: pa.ChunkedArray | pa.Array, key: str) -> np.ndarray:
    """pandas' ``hash_array(values, hash_key=key, categorize=False)`` of the strings (the guard's hashes)."""
    strings = pa.types.is_string(normalised.type) or pa.types.is_large_string(normalised.type)
    if _native is not None and strings and normalised.null_count == 0 and len(key.encode()) == 16 and len(normalised):
        return _siphash_native(normalised, key)
    objects = normalised.to_numpy(zero_copy_only=False) if len(normalised) else np.array([], dtype=object)
    return np.asarray(hash_array(objects.astype(object, copy=False), hash_key=key, categorize=False))


def _siphash_native(normalised: pa.ChunkedArray | pa.Array, key: str) -> np.ndarray:
    """The C loop's SipHash-2-4 of each string's UTF-8 bytes (what pandas hashes), then pandas' finalizer."""
    assert _native is not None
    array = normalised.combine_chunks() if isinstance(normalised, pa.ChunkedArray) else normalised
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    _, offsets, data = array.buffers()
    starts = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    raw = np.frombuffer(_native.siphash24(key.encode(), starts, data if data is not None else b""), dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix(raw)


def column_hashes(values: pd.Series, key: str, *, canonical: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the keyed hash of the normalised value, and whether it is long enough to be a value print.

    ``canonical`` values (pseudonyms: lower-case hex) are their own normalisation and skip it.
    """
    hashes, long_enough, _ = column_prints(values, key, canonical=canonical)
    return hashes, long_enough


def column_prints(
    values: pd.Series, key: str, *, canonical: bool = False
) -> tuple[np.ndarray, np.ndarray, pa.Array | pa.ChunkedArray]:
    """``column_hashes`` and the normalised text it hashed: every row's (nulls as '') or, for a column
    with repeats, every distinct value's. Either holds the same set of normalised values of at least
    ``MIN_VALUE_CHARS`` characters as the normalised distinct values of the column."""

    def normalise(array: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
        return pc.fill_null(array, "") if canonical else normalise_for_fingerprint(array)

    if mostly_distinct(values):
        normalised = normalise(arrow_strings(as_text(values)))
        return siphash(normalised, key), (pc.utf8_length(normalised).to_numpy() >= MIN_VALUE_CHARS), normalised
    codes, uniques = pd.factorize(values)
    rows = np.where(codes < 0, len(uniques), codes)
    normalised = normalise(arrow_strings(as_text(pd.Series(uniques))))
    hashes = np.append(siphash(normalised, key), siphash(pa.array([""], pa.large_string()), key))
    long_enough = np.append(pc.utf8_length(normalised).to_numpy(zero_copy_only=False) >= MIN_VALUE_CHARS, False)
    return hashes[rows], long_enough[rows], normalised


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit affects every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return np.asarray(x ^ (x >> np.uint64(31)))


def combine_rows(columns: Sequence[np.ndarray], n: int) -> np.ndarray:
    """One order-dependent hash per row from the (already keyed) hashes of its cells."""
    acc = np.full(n, _ROW_SEED, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for hashes in columns:
            acc = mix(acc ^ hashes)
    return acc


def sorted_unique(arrays: Iterable[np.ndarray]) -> np.ndarray:
    """Sorted distinct values (sort + neighbour compare: numpy 2's hash-based ``np.unique`` took 5 s on 5M)."""
    parts = [a.astype(np.uint64, copy=False) for a in arrays]
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    merged = np.sort(np.concatenate(parts))
    if len(merged) < 2:
        return merged
    keep = np.empty(len(merged), dtype=bool)
    keep[0] = True
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    return merged[keep]


def member(sorted_set: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Which ``hashes`` are in ``sorted_set``.

    The probes are sorted first: numpy's binary search then walks the set in order instead of jumping
    across it for every probe, about 10x faster for a million probes into millions of prints.
    """
    if len(sorted_set) == 0 or len(hashes) == 0:
        return np.zeros(len(hashes), dtype=bool)
    order = np.argsort(hashes)
    probes = hashes[order]
    at = np.searchsorted(sorted_set, probes)
    found = np.empty(len(hashes), dtype=bool)
    found[order] = sorted_set[np.minimum(at, len(sorted_set) - 1)] == probes
    return found


def raw_column_hashes(raw: pd.DataFrame, pepper: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per raw column: each row's keyed hash of its normalised value, and whether it is long enough.

    The raw side of :meth:`FingerprintSet.build`, callable on its own so that it can run while the
    table is still being transformed (it needs nothing but the raw table).
    """
    return raw_prints(raw, pepper).hashes


@dataclass(slots=True)
class RawPrints:
    """The raw side of the fingerprints: ``raw_column_hashes``, and for the ``identifiers`` columns the
    distinct normalised values they hashed that some class holds (``classed_distinct``) with their
    ``class_lengths``: the value lengths are counted on them rather than on those columns normalised a
    second time."""

    hashes: dict[str, tuple[np.ndarray, np.ndarray]]
    identifiers: list[str] = field(default_factory=list)
    distinct: pa.Array | None = None
    counts: dict[str, dict[int, int]] = field(default_factory=dict)


def raw_prints(
    raw: pd.DataFrame, pepper: bytes, identifiers: Sequence[str] = (), skip: Sequence[str] = ()
) -> RawPrints:
    """``raw_column_hashes``, and the distinct normalised values of the ``identifiers`` columns; the ``skip``
    columns (not identifiers) are left out, for the caller to hash elsewhere (``column_hashes``)."""
    key = fingerprint_key(pepper)
    out = RawPrints({}, [str(c) for c in identifiers])
    texts: list[pa.Array | pa.ChunkedArray] = []
    for column in (c for c in raw.columns if c not in skip or c in identifiers):
        hashes, long_enough, normalised = column_prints(raw[column], key)
        out.hashes[str(column)] = (hashes, long_enough)
        if str(column) in out.identifiers:
            texts.append(normalised)
    out.distinct = classed_distinct(texts)
    out.counts = class_lengths(out.distinct)
    return out


#: Hex digits of the pieces of a pseudonym kept as fragment prints (red team 23, F7): 40, 48 and 64 bits
#: still tell apart the people of any table Keyong holds, so a job must not carry them out shortened.
FRAGMENT_LENGTHS = (10, 12, 16)
_PSEUDONYM = r"^[0-9a-f]{20,}$"  # a pseudonym long enough for its pieces to be fragments (128-bit keys: 32)
_HEX_PIECE = rf"^[0-9a-f]{{{min(FRAGMENT_LENGTHS)},31}}$"  # a shortened pseudonym (shorter than a whole one)
_DECIMAL_PIECE = r"^[0-9]{9,20}$"  # int(prefix, 16) of 10 to 16 hex digits, written in decimal


def fragments_of(pseudonyms: pa.Array) -> pa.Array:
    """The first and the last ``FRAGMENT_LENGTHS`` hex digits of each pseudonym (canonical: lower-case hex),
    distinct, in order of first appearance among all first pieces, then among all last ones."""
    hexes = pc.filter(pseudonyms, pc.fill_null(pc.match_substring_regex(pseudonyms, _PSEUDONYM), False))
    hexes = hexes.cast(pa.large_string())
    if (fast := _fragments_of_equal_lengths(hexes)) is not None:
        return fast
    pieces = [pc.utf8_slice_codeunits(hexes, 0, n) for n in FRAGMENT_LENGTHS]
    pieces += [pc.utf8_slice_codeunits(hexes, -n) for n in FRAGMENT_LENGTHS]
    both = (
        pa.concat_arrays([p.cast(pa.large_string()) for p in pieces]) if len(hexes) else pa.array([], pa.large_string())
    )
    return pc.unique(both)


def _fragments_of_equal_lengths(hexes: pa.Array) -> pa.Array | None:
    """``fragments_of`` when every pseudonym has the same even number of digits (a key column's 32), else None.

    Why: a million pseudonyms make six million pieces, whose hash table of strings took seconds. A piece
    of n <= 16 hex digits *is* an n-digit number: read from the strings' bytes as one, the pieces of a
    length are made distinct as integers (``pd.factorize`` numbers them in order of first appearance)
    and each distinct one is copied from the pseudonym it first appears in: the same strings, in the
    same order, as ``pc.unique`` over the pieces' text."""
    m = len(hexes)
    if m == 0:
        return None
    _, offsets_buffer, data_buffer = hexes.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[hexes.offset : hexes.offset + m + 1]
    width = int(offsets[1] - offsets[0])
    if width % 2 or width < 2 * max(FRAGMENT_LENGTHS) // 2 or not np.all(np.diff(offsets) == width):
        return None
    rows = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(m, width)
    nibbles = _HEX_VALUE[rows]
    packed = (nibbles[:, 0::2] << np.uint8(4)) | nibbles[:, 1::2]  # a byte per two digits
    half = width // 2
    head16 = np.ascontiguousarray(packed[:, :8]).view(">u8").ravel().astype(np.uint64)
    tail16 = np.ascontiguousarray(packed[:, half - 8 : half]).view(">u8").ravel().astype(np.uint64)
    firsts: list[pa.Array] = []
    lasts: list[pa.Array] = []
    for n in FRAGMENT_LENGTHS:
        head = head16 >> np.uint64(4 * (16 - n))
        tail = tail16 & np.uint64((1 << (4 * n)) - 1)
        codes, _ = pd.factorize(np.concatenate([head, tail]))
        running = np.maximum.accumulate(codes)
        first = np.ones(len(codes), dtype=bool)
        first[1:] = codes[1:] > running[:-1]  # codes follow first appearance: a new code is a new piece
        at = np.flatnonzero(first)
        from_head, from_tail = at[at < m], at[at >= m] - m
        firsts.append(_fixed_width(rows[from_head, :n]))
        lasts.append(_fixed_width(rows[from_tail, width - n :]))
    return pa.concat_arrays([*firsts, *lasts])


#: The value of each lower-case hex digit by its ASCII byte (0 for any other byte).
_HEX_VALUE = np.zeros(256, dtype=np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def _fixed_width(rows: np.ndarray) -> pa.Array:
    """Strings of one width from a (count, width) matrix of their UTF-8 bytes."""
    count, width = rows.shape
    offsets = np.arange(0, width * (count + 1), width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(rows.tobytes()))


def fragment_candidates(normalised: pa.Array) -> pa.Array:
    """What an output's pieces (in ``fp-norm-1``) would be if they were shortened pseudonyms.

    A hex piece of 10 to 31 digits: its first and last 10, 12 and 16 digits (as far as it reaches); a
    decimal piece of 9 to 20 digits (``int(prefix, 16)``): its value as 10, 12 and 16 hex digits,
    zero-padded, as far as it fits."""
    pieces = pc.unique(normalised.cast(pa.large_string()))
    hexes = pc.filter(pieces, pc.fill_null(pc.match_substring_regex(pieces, _HEX_PIECE), False))
    out: list[pa.Array] = []
    for n in FRAGMENT_LENGTHS:
        long_enough = pc.filter(hexes, pc.greater_equal(pc.utf8_length(hexes), n))
        out += [pc.utf8_slice_codeunits(long_enough, 0, n), pc.utf8_slice_codeunits(long_enough, -n)]
    numbers = pc.filter(pieces, pc.fill_null(pc.match_substring_regex(pieces, _DECIMAL_PIECE), False)).to_pylist()
    values = [int(text) for text in numbers]
    out.append(pa.array([f"{v:0{n}x}" for v in values for n in FRAGMENT_LENGTHS if v < 16**n], pa.large_string()))
    return pc.unique(pa.concat_arrays([a.cast(pa.large_string()) for a in out]))
