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
* a value starting (ending) with an ASCII letter or digit is not found inside a longer run of
  letters and digits: order number 1001 is not redacted out of 21001;
* values shorter than ``MIN_KEY_CHARS`` are not searched for: a row number 1..999 cannot be told
  from a count or an amount in a note, and searching for it would redact every number.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from desensitize.recognizers.text import normalize_text

__all__ = ["MIN_KEY_CHARS", "KeyIndex", "clean_keys", "found_in", "key_index", "key_spans"]

#: Shortest value searched for in free text (see the module docstring).
MIN_KEY_CHARS = 4

_BASE = 0x100000001B3  # odd, so that the hash of a longer window never degenerates to a shorter one's
_MASK = (1 << 64) - 1
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALNUM = np.zeros(0x110000 + 1, dtype=bool)
for _c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
    _ALNUM[ord(_c)] = True


def _fold(text: str) -> str:
    """The text as it is compared: full-width as ASCII, letters upper case; one character for one."""
    return normalize_text(text).translate(_UPPER)


def clean_keys(values: Iterable[object]) -> tuple[str, ...]:
    """Distinct values worth searching for: strings, folded and stripped, at least ``MIN_KEY_CHARS``
    long, without control characters (the scanner joins rows with them)."""
    out = {_fold(v).strip() for v in values if isinstance(v, str)}
    return tuple(sorted(v for v in out if len(v) >= MIN_KEY_CHARS and v.isprintable()))


@dataclass(frozen=True, slots=True)
class KeyIndex:
    """The values by length, as sorted hashes, and the characters a value can start with."""

    first: np.ndarray  # bool per code point
    hashes: dict[int, np.ndarray]  # length -> sorted hashes of the values of that length
    values: frozenset[str]
    longest: int


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _powers(length: int) -> list[int]:
    powers = [1]
    for _ in range(length - 1):
        powers.append((powers[-1] * _BASE) & _MASK)
    return powers


@functools.lru_cache(maxsize=4)
def key_index(keys: tuple[str, ...]) -> KeyIndex | None:
    """The index of ``keys`` (``clean_keys`` output); None when there are none."""
    if not keys:
        return None
    first = np.zeros(0x110000 + 1, dtype=bool)
    by_length: dict[int, list[str]] = {}
    for key in keys:
        by_length.setdefault(len(key), []).append(key)
    hashes: dict[int, np.ndarray] = {}
    powers = _powers(max(by_length))
    for length, group in by_length.items():
        codes = _codes("".join(group)).reshape(len(group), length).astype(np.uint64)
        first[codes[:, 0]] = True
        h = np.zeros(len(group), dtype=np.uint64)
        for j in range(length):
            h += codes[:, j] * np.uint64(powers[j])  # wraps modulo 2^64, as the text side does
        hashes[length] = np.unique(h)
    return KeyIndex(first, hashes, frozenset(keys), max(by_length))


def found_in(keys: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Whether each probe is in ``keys`` (sorted): all probes at once, by ``searchsorted``."""
    if len(keys) == 0 or len(probes) == 0:
        return np.zeros(len(probes), dtype=bool)
    at = np.minimum(np.searchsorted(keys, probes), len(keys) - 1)
    return np.asarray(keys[at] == probes)


def key_spans(text: str, index: KeyIndex) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of every occurrence of an indexed value in ``text`` (overlaps all returned).

    ``text`` is one string (the scanner's joined column); offsets are into it.
    """
    folded = _fold(text)
    codes = _codes(folded)
    n = len(codes)
    padded = np.concatenate((codes, np.zeros(index.longest + 1, dtype=np.uint32)))
    alnum = _ALNUM[padded]
    starts = np.flatnonzero(index.first[codes])
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
        candidate = (ends <= n) & ~(alnum[ends - 1] & alnum[ends]) & found_in(keys, h)
        for start in starts[candidate].tolist():
            if folded[start : start + length] in index.values:  # confirmed: a collision redacts nothing
                found_starts.append(start)
                found_ends.append(start + length)
    return np.array(found_starts, dtype=np.int64), np.array(found_ends, dtype=np.int64)
