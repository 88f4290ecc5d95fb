"""Exact values of a table's key columns found in its free text, a whole column at a time.

Why: a near-unique column of a personal table (``desensitize.keys``) is pseudonymized, but a clerk's
备注 often repeats the same 统一社会信用代码, order or plate number verbatim; left there it links the
row back to the person as well as the column did (个人信息保护法 第七十三条(四): 去标识化 must hold
for the whole copy). The redactor is given the raw values and replaces each occurrence.

Why not a regular expression or Aho-Corasick: a key column has about as many distinct values as
rows (a million), a trie regex over them takes seconds to compile and tries the trie at every
character, and pyahocorasick is not a dependency. Instead the values are hashed (a polynomial hash
of their code points, modulo 2^64), the text's possible starting positions are selected with numpy
(a character some value starts with, at a word boundary), the same hash is computed there for each
value length, and ``searchsorted`` answers all positions at once; every hit is confirmed by
comparing the text itself, so a hash collision can cost a comparison, never a wrong redaction.

Matching rules (what a person reading the note would call "the same value"):

* full-width characters are read as ASCII and letters case-insensitively (``normalize_text``, the
  scanner's own normalisation; 统一社会信用代码 are upper case but typed either way);
* separators are not part of a key: whitespace, punctuation, symbols and invisible format
  characters between two letters or digits are folded away on both sides (KY12 345 678,
  KY-1234-5678, KY12·345·678 and KY12\u200b345678 are KY12345678), and the written span, separators
  included, is what is redacted; Chinese numerals read as digits (九一〇八 is 9108);
* a value longer than ``CHUNK_CHARS`` is searched as its chunks, so the search stays linear;
* a value of at least ``GLUED_KEY_CHARS`` characters (after that folding) is found anywhere, even
  glued inside a longer run of letters and digits (NOKY12345678): fail closed, a few false
  redactions (a 8-digit key inside a longer number) are acceptable, a surviving key is not;
* a shorter value starting (ending) with an ASCII letter or digit is found only as a whole token,
  not inside a longer run of letters and digits: order number 1001 is not redacted out of 21001,
  locker A0C out of BA0CD;
* values shorter than ``MIN_KEY_CHARS`` (one character) are not searched for: a digit cannot be told
  from any count in a note.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from desensitize.recognizers.text import normalize_codepoints

__all__ = [
    "CHUNK_CHARS",
    "GLUED_KEY_CHARS",
    "MIN_KEY_CHARS",
    "KeyIndex",
    "clean_keys",
    "found_in",
    "key_index",
    "key_spans",
    "merge_key_spans",
]

#: Shortest value searched for in free text (see the module docstring).
MIN_KEY_CHARS = 2
#: Shortest value (separators folded) found glued inside longer runs of letters and digits.
GLUED_KEY_CHARS = 6
#: Longest stretch of a key indexed as one value: a longer key is indexed as its chunks of this many
#: characters (and its last ones), so every part of it is still found, while the search, whose cost
#: grows with the longest indexed value, stays linear in the text (a 20,000-character value took
#: 34 s on 30 rows, red team 16b).
CHUNK_CHARS = 64


def _separator_table() -> np.ndarray:
    """Separators folded away between two letters or digits: any whitespace (line breaks included),
    punctuation, symbol or invisible format character of the Basic Multilingual Plane (a reader skips
    KY23·208·209, KY23,208,209 and a zero-width space alike; red team 16b). Control characters other
    than whitespace are not: the scanner joins a column's rows with them, and a key is not glued
    across two rows' notes."""
    table = np.zeros(0x110000 + 1, dtype=bool)
    for code in range(0x10000):
        category = unicodedata.category(chr(code))
        if category[0] in "ZPS" or category == "Cf":
            table[code] = True
    for char in "\t\n\r\x0b\x0c":
        table[ord(char)] = True
    return table


_SEPARATORS = _separator_table()
#: Chinese numerals read as the digits they stand for, one code point for one (offsets stay true):
#: 九一〇八 is a key 9108 written out (red team 16b).
_NUMERALS = {
    "〇": "0",
    "零": "0",
    "一": "1",
    "二": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
_NUMERAL_FROM = np.array([ord(c) for c in _NUMERALS], dtype=np.uint32)
_NUMERAL_TO = np.array([ord(d) for d in _NUMERALS.values()], dtype=np.uint32)

_BASE = 0x100000001B3  # odd, so that the hash of a longer window never degenerates to a shorter one's
_MASK = (1 << 64) - 1
_ALNUM = np.zeros(0x110000 + 1, dtype=bool)
for _c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
    _ALNUM[ord(_c)] = True


def _folded_codes(text: str) -> np.ndarray:
    """The text's code points as they are compared: full-width as ASCII (``normalize_text``), letters
    upper case; one for one. On numpy: ``str.translate`` over a column's text would take seconds."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).copy()
    normalize_codepoints(codes)
    codes[(codes >= 0x61) & (codes <= 0x7A)] -= 0x20
    if np.isin(codes, _NUMERAL_FROM).any():
        for numeral, digit in zip(_NUMERAL_FROM.tolist(), _NUMERAL_TO.tolist(), strict=True):
            codes[codes == numeral] = digit
    return codes


def clean_keys(values: Iterable[object]) -> tuple[str, ...]:
    """Distinct values worth searching for: strings, folded and stripped, at least ``MIN_KEY_CHARS``
    long, without control characters (the scanner joins rows with them)."""
    strings = [v for v in values if isinstance(v, str) and "\x00" not in v]
    folded = _folded_codes("\x00".join(strings)).tobytes().decode("utf-32-le").split("\x00") if strings else []
    out = {v.strip() for v in folded}
    return tuple(sorted(v for v in out if len(v) >= MIN_KEY_CHARS and v.isprintable()))


@dataclass(frozen=True, slots=True)
class _Lengths:
    """Values by length, as sorted hashes, and the characters a value can start with."""

    first: np.ndarray  # bool per code point
    hashes: dict[int, np.ndarray]  # length -> sorted hashes of the values of that length
    values: frozenset[str]
    longest: int


@dataclass(frozen=True, slots=True)
class KeyIndex:
    """Short values, searched as whole tokens in the text as written, and long values (separators
    folded), searched anywhere in the separator-folded text (see the module docstring)."""

    bounded: _Lengths | None
    glued: _Lengths | None


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _powers(length: int) -> list[int]:
    powers = [1]
    for _ in range(length - 1):
        powers.append((powers[-1] * _BASE) & _MASK)
    return powers


def _kept(codes: np.ndarray) -> np.ndarray:
    """Which characters stay in the separator-folded view: all but runs of ``_SEPARATORS`` with a
    letter or digit on both sides."""
    n = len(codes)
    if n == 0:
        return np.ones(0, dtype=bool)
    sep = _SEPARATORS[codes]
    alnum = _ALNUM[codes]
    at = np.arange(n)
    left = np.maximum.accumulate(np.where(sep, -1, at))
    right = np.minimum.accumulate(np.where(sep, n, at)[::-1])[::-1]
    left_ok = (left >= 0) & alnum[np.maximum(left, 0)]
    right_ok = (right < n) & alnum[np.minimum(right, n - 1)]
    kept: np.ndarray = ~(sep & left_ok & right_ok)
    return kept


def _without_separators(text: str) -> str:
    codes = _codes(text)
    folded: str = codes[_kept(codes)].tobytes().decode("utf-32-le")
    return folded


def _lengths(keys: Iterable[str]) -> _Lengths | None:
    by_length: dict[int, list[str]] = {}
    for key in keys:
        by_length.setdefault(len(key), []).append(key)
    if not by_length:
        return None
    first = np.zeros(0x110000 + 1, dtype=bool)
    hashes: dict[int, np.ndarray] = {}
    powers = _powers(max(by_length))
    for length, group in by_length.items():
        codes = _codes("".join(group)).reshape(len(group), length).astype(np.uint64)
        first[codes[:, 0]] = True
        h = np.zeros(len(group), dtype=np.uint64)
        for j in range(length):
            h += codes[:, j] * np.uint64(powers[j])  # wraps modulo 2^64, as the text side does
        hashes[length] = np.unique(h)
    return _Lengths(first, hashes, frozenset(keys), max(by_length))


@functools.lru_cache(maxsize=4)
def key_index(keys: tuple[str, ...]) -> KeyIndex | None:
    """The index of ``keys`` (``clean_keys`` output); None when there are none."""
    if not keys:
        return None
    glued = {_without_separators(k) for k in keys}
    long = {part for k in glued if len(k) >= GLUED_KEY_CHARS for part in _chunks(k)}
    short = [k for k in keys if len(_without_separators(k)) < GLUED_KEY_CHARS]
    return KeyIndex(_lengths(short), _lengths(long))


def _chunks(key: str) -> list[str]:
    """``key`` itself, or, when longer than ``CHUNK_CHARS``, its consecutive chunks and its last
    ``CHUNK_CHARS`` characters: found one by one, they cover every character of the key as written."""
    if len(key) <= CHUNK_CHARS:
        return [key]
    return [key[i : i + CHUNK_CHARS] for i in range(0, len(key) - CHUNK_CHARS, CHUNK_CHARS)] + [key[-CHUNK_CHARS:]]


def found_in(keys: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Whether each probe is in ``keys`` (sorted): all probes at once, by ``searchsorted``."""
    if len(keys) == 0 or len(probes) == 0:
        return np.zeros(len(probes), dtype=bool)
    at = np.minimum(np.searchsorted(keys, probes), len(keys) - 1)
    return np.asarray(keys[at] == probes)


def _search(codes: np.ndarray, index: _Lengths, *, bounded: bool) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of every occurrence of an indexed value in ``codes`` (folded code points);
    ``bounded``: a value edged by a letter or digit only as a whole token."""
    folded = codes.tobytes().decode("utf-32-le")
    n = len(codes)
    padded = np.concatenate((codes, np.zeros(index.longest + 1, dtype=np.uint32)))
    alnum = _ALNUM[padded]
    starts = np.flatnonzero(index.first[codes])
    if bounded:
        inside_word = alnum[starts] & np.concatenate(([False], alnum[: n - 1]))[starts]
        starts = starts[~inside_word]
    h = np.zeros(len(starts), dtype=np.uint64)
    found_starts: list[int] = []
    found_ends: list[int] = []
    for j, power in enumerate(_powers(index.longest)):
        h += padded[starts + j].astype(np.uint64) * np.uint64(power)
        length = j + 1
        keys = index.hashes.get(length)
        if keys is None:
            continue
        ends = starts + length
        candidate = (ends <= n) & found_in(keys, h)
        if bounded:
            candidate &= ~(alnum[ends - 1] & alnum[ends])
        for start in starts[candidate].tolist():
            if folded[start : start + length] in index.values:  # confirmed: a collision redacts nothing
                found_starts.append(start)
                found_ends.append(start + length)
    return np.array(found_starts, dtype=np.int64), np.array(found_ends, dtype=np.int64)


def key_spans(text: str, index: KeyIndex) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of every occurrence of an indexed value in ``text`` (overlaps all returned).

    ``text`` is one string (the scanner's joined column); offsets are into it. A long value found in
    the separator-folded view is mapped back to the written span, its separators included.
    """
    codes = _folded_codes(text)
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    if index.bounded is not None:
        s, e = _search(codes, index.bounded, bounded=True)
        starts.append(s)
        ends.append(e)
    if index.glued is not None:
        kept = _kept(codes)
        at = np.flatnonzero(kept)
        s, e = _search(codes[kept], index.glued, bounded=False)
        starts.append(at[s])
        ends.append(at[e - 1] + 1 if len(e) else e)
    if not starts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(starts).astype(np.int64), np.concatenate(ends).astype(np.int64)


def merge_key_spans(
    spans: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], keys: tuple[np.ndarray, np.ndarray], kind: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The scanner's candidates (starts, ends, kinds, scores) with the key spans added as ``kind``, score 1.

    A key the recognizers found too (a 统一社会信用代码 is both) is not added twice: the recognizer's
    span keeps its type and takes score 1, which redacts the same characters and spares the overlap
    resolution one cluster per row (its Python part costs seconds over a key column).
    """
    starts, ends, kinds, scores = spans
    key_starts, key_ends = keys
    if len(key_starts) == 0:
        return spans
    width = np.int64(max(int(ends.max(initial=0)), int(key_ends.max())) + 1)
    known = starts * width + ends
    key_packed = key_starts * width + key_ends
    scores = np.where(np.isin(known, key_packed), 1.0, scores)
    new = ~np.isin(key_packed, known)
    return (
        np.concatenate((starts, key_starts[new])),
        np.concatenate((ends, key_ends[new])),
        np.concatenate((kinds, np.full(int(new.sum()), kind, dtype=np.int64))),
        np.concatenate((scores, np.ones(int(new.sum()), dtype=np.float64))),
    )
