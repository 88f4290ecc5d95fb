"""The byte-level fingerprint probe: known values found as substrings of anything an output says.

Why substrings and not tokens: a job that wants a key out glues it to its neighbours ("k1k2k3"),
joins keys with a letter, writes its digits in another script (٣٨ or 三八) or between invisible
characters. So every string (cells, names, metadata, logs) is read four ways before it is hashed
and looked up in the copy's fingerprints (``desensitize.fingerprints``, keyed hashes only):

1. as written, folded (NFKC, every script's digits and Chinese numerals to ASCII) and decoded
   (base64, hex, URL encoding, reversal: ``sandbox.encodings``);
2. whole, and as the tokens between separators;
3. normalised as the fingerprints are (``fp-norm-1``: separators, spaces and invisible characters
   gone, lower case), then cut into runs of digits, of hex, of letters and digits, and of Chinese
   characters;
4. every window of every length the set holds for that class slid over every longer run.

A whole value, a token or a run of exactly an identifier's length that is in the set is an exact
hit: hard. A window inside a longer run can also hit by chance (a long run of digits holds many
11-digit windows, and a million mobile numbers fill 1/100,000 of that space), so window hits are
weighed against the chance of that many: beyond a one-in-10,000 chance they are hard, otherwise
soft (a person looks). Chinese-name windows inside longer text are always soft: ordinary words
are names often enough.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize import FingerprintSet, fragment_candidates, non_alnum_pattern, normalise_for_fingerprint
from sandbox.encodings import decoded_readings
from sandbox.guard.probe_memo import MAX_VALUES, MEMO, StringsMemo, call_key, prints_digest

#: The run classes of ``desensitize.fingerprints.LENGTH_CLASSES``: what splits a run, and the alphabet size.
_RUN_SPLIT = {"digits": r"[^0-9x]+", "hex": r"[^0-9a-f]+", "alnum": r"[^0-9a-z]+", "han": r"[^\p{Han}]+"}
ALPHABET = {"digits": 10, "hex": 16, "alnum": 36}
_SEPARATORS = r"[\s,;|:=/\\，、；：。<>\"'()\[\]{}]+"
#: Poisson tail below which window hits are taken as no coincidence.
CHANCE = 1e-4
_CJK_NUMERALS = {"〇": "0", "零": "0", "一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7",
                 "八": "8", "九": "9", "壹": "1", "贰": "2", "貳": "2", "叁": "3", "參": "3", "肆": "4", "伍": "5",
                 "陆": "6", "陸": "6", "柒": "7", "捌": "8", "玖": "9", "两": "2"}  # fmt: skip


@cache
def _digit_table() -> dict[int, str]:
    """Every Unicode decimal digit (Nd, all scripts) and the Chinese numerals, to ASCII digits."""
    table = {ord(k): v for k, v in _CJK_NUMERALS.items()}
    everything = "".join(map(chr, range(0x80, 0x20000)))  # digits live in planes 0 and 1 only
    for match in re.finditer(r"\d", everything):  # str patterns' \d is Unicode's Nd, scanned in C
        table[ord(match.group())] = str(unicodedata.decimal(match.group()))
    return table


def _needs_folding() -> str:
    numerals = "".join(_CJK_NUMERALS)
    return rf"[^\x00-\x7F\x{{4E00}}-\x{{9FFF}}]|[{numerals}]"


def fold(values: pd.Series) -> pd.Series:
    """The distinct strings that folding changes, folded: NFKC, then every script's digits to ASCII."""
    if values.empty:
        return pd.Series([], dtype=object)
    array = pa.array(values.astype(str).tolist(), type=pa.large_string())
    candidates = pc.filter(array, pc.match_substring_regex(array, _needs_folding())).to_pylist()
    table = _digit_table()
    folded = {unicodedata.normalize("NFKC", s).translate(table) for s in candidates}
    return pd.Series(sorted(folded - set(candidates)), dtype=object)


def fold_digits(array: pa.Array) -> pa.Array:
    """Each string with every script's digits and the Chinese numerals as ASCII digits (NFKC first)."""
    needs = pc.match_substring_regex(array, _needs_folding())
    if not pc.any(needs).as_py():
        return array
    table = _digit_table()
    folded = [unicodedata.normalize("NFKC", s).translate(table) for s in pc.filter(array, needs).to_pylist()]
    return pc.replace_with_mask(array, pc.fill_null(needs, False), pa.array(folded, type=array.type))


def tokens(values: pd.Series) -> pd.Series:
    """Separator-split pieces of each string, and the alphanumeric runs of its normalised form."""
    if values.empty:
        return pd.Series([], dtype=object)
    array = pa.array(values.astype(str).tolist(), type=pa.large_string())
    spaced = pc.list_flatten(pc.split_pattern_regex(array, _SEPARATORS))
    pieces = pc.list_flatten(pc.split_pattern_regex(array, non_alnum_pattern(array)))
    runs = pc.list_flatten(pc.split_pattern_regex(normalise_for_fingerprint(array), r"[^0-9a-z]+"))
    both = pa.concat_arrays([a.cast(pa.large_string()) for a in (spaced, pieces, runs)])
    both = pc.unique(pc.filter(both, pc.greater_equal(pc.utf8_length(both), 2)))
    return pd.Series(both.to_pylist(), dtype=object)


@dataclass(slots=True)
class Hits:
    """What the probe found of one dataset in one place."""

    exact: int = 0
    windows: int = 0
    expected: float = 0.0
    names: int = 0  # Chinese-name windows inside longer text (soft)
    fragments: int = 0  # pieces that are a pseudonym's first or last 10/12/16 hex digits (red team 23, F7)
    fragment_expected: float = 0.0

    @property
    def whole(self) -> bool:
        """Exact hits, or window hits beyond the chance level."""
        return self.exact > 0 or (self.windows > 0 and poisson_tail(self.windows, self.expected) < CHANCE)

    @property
    def shortened(self) -> bool:
        """Shortened pseudonyms beyond the chance level (random hex pieces rarely are one)."""
        return self.fragments > 0 and poisson_tail(self.fragments, self.fragment_expected) < CHANCE

    @property
    def certain(self) -> bool:
        return self.whole or self.shortened

    @property
    def possible(self) -> bool:
        return not self.certain and (self.windows > 0 or self.names > 0 or self.fragments > 0)


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean)."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    term = math.exp(-mean)
    below = term
    for i in range(1, k):
        term *= mean / i
        below += term
    return max(0.0, 1.0 - below)


@dataclass(slots=True)
class Probe:
    """Probes strings against several datasets' fingerprints (one :class:`Hits` per dataset)."""

    prints: Mapping[str, FingerprintSet]
    max_probes: int = 20_000_000
    probed: int = field(default=0)
    #: Results kept across judgements (``sandbox.guard.probe_memo``); None: every call computes.
    memo: StringsMemo | None = field(default=MEMO, repr=False)
    _digest: bytes | None = field(default=None, repr=False)
    _checks: int = field(default=0, repr=False)  # calls of :meth:`count` (each checks the budget)

    def readings(self, values: pd.Series, *, decode: bool = True) -> pd.Series:
        """The strings as written, folded and decoded (distinct)."""
        values = pd.Series(pd.unique(values.astype(str)), dtype=object)
        readings = [values, fold(values)]
        if decode:
            readings.append(decoded_readings(pd.concat(readings, ignore_index=True)))
        return pd.Series(pd.unique(pd.concat(readings, ignore_index=True)), dtype=object)

    def strings(self, values: pd.Series, *, decode: bool = True, windows: bool = True) -> dict[str, Hits]:
        """Hits per dataset among ``values`` (any strings); empty when nothing is found.

        A call made before with the same strings against sets of the same content is answered from the
        memo (``sandbox.guard.probe_memo``), its probes counted against the budget as the call counted them."""
        if values.empty or not self.prints:
            return {}
        key = self._memo_key(values, decode=decode, windows=windows)
        if key is not None and self.memo is not None and (known := self.memo.get(key)) is not None:
            if known.checked:  # the budget is checked where the call checked it, on the same sum
                self.count(known.window_probes)
            self.probed += known.probes
            return known.hits()
        before, checks = self.probed, self._checks
        found, probes = self._strings(values, decode=decode, windows=windows)
        if key is not None and self.memo is not None:
            self.memo.put(key, found, self.probed - before, probes, checked=self._checks > checks)
        self.probed += probes
        return found

    def _memo_key(self, values: pd.Series, *, decode: bool, windows: bool) -> bytes | None:
        if self.memo is None or len(values) > MAX_VALUES:
            return None
        if self._digest is None:
            self._digest = prints_digest(self.prints)
        return call_key(self._digest, values.astype(str).tolist(), decode=decode, windows=windows)

    def _strings(self, values: pd.Series, *, decode: bool, windows: bool) -> tuple[dict[str, Hits], int]:
        """Hits per dataset, and the candidate probes made (the window probes are counted as they are made)."""
        readings = self.readings(values, decode=decode)
        pieces = tokens(readings)
        candidates = pd.concat(
            [readings, pieces, digit_forms(decimals_in(readings)), hex_of_numbers(pieces)], ignore_index=True
        )
        fragments = shortened_candidates(pd.concat([readings, pieces], ignore_index=True))
        found: dict[str, Hits] = {}
        for name, prints in self.prints.items():
            hits = Hits(exact=int(prints.contains_values(candidates).sum()))
            hits.fragments = int(prints.contains_fragments(fragments).sum())
            hits.fragment_expected = prints.fragment_chance(fragments) if hits.fragments else 0.0
            if windows:
                self._windows(readings, prints, hits)
            if hits.exact or hits.windows or hits.names or hits.fragments:
                found[name] = hits
        return found, (len(candidates) + len(fragments)) * len(self.prints)

    def _windows(self, readings: pd.Series, prints: FingerprintSet, hits: Hits) -> None:
        normalised = normalise_for_fingerprint(pa.array(readings.tolist(), type=pa.large_string()))
        for kind, lengths in prints.lengths().items():
            split = _RUN_SPLIT.get(kind)
            if split is None or not lengths:
                continue
            shortest = min(lengths)
            runs = pc.unique(pc.list_flatten(pc.split_pattern_regex(normalised, split)))
            runs = pc.filter(runs, pc.greater_equal(pc.utf8_length(runs), shortest)).to_pylist()
            if not runs:
                continue
            exact = [r for r in runs if len(r) in lengths]
            if kind != "han" and exact:
                hits.exact += int(prints.contains_normalised(pa.array(exact, pa.large_string())).sum())
            inside: list[str] = []
            chance = 0.0
            for width, count in lengths.items():
                for run in runs:
                    if len(run) > width:
                        inside.extend(run[i : i + width] for i in range(len(run) - width + 1))
                        if kind != "han":
                            chance += (len(run) - width + 1) * count / float(ALPHABET[kind]) ** width
            self.count(len(inside))
            if not inside:
                continue
            found = int(prints.contains_normalised(pa.array(inside, pa.large_string())).sum())
            if kind == "han":
                hits.names += found
            else:
                hits.windows += found
                hits.expected += chance

    def count(self, probes: int) -> None:
        """Account for probes made elsewhere (glued cells); past the budget the output is refused."""
        self.probed += probes
        self._checks += 1
        if self.probed > self.max_probes:
            raise ProbeLimitError(f"more than {self.max_probes} probes")

    def long_numbers(self, texts: pd.Series) -> dict[str, Hits]:
        """The string probe over numbers whose digits outrun the shortest identifier (the others
        cannot hold one: their digit forms are probed by :meth:`numbers`)."""
        if texts.empty or not self.prints:
            return {}
        array = pa.array(texts.astype(str).tolist(), type=pa.large_string())
        long = pc.filter(array, pc.greater(pc.utf8_length(normalise_for_fingerprint(array)), 10))
        if len(long) == 0:
            return {}
        return self.strings(pd.Series(long.to_pylist(), dtype=object), decode=False)

    def numbers(self, values: np.ndarray) -> dict[str, Hits]:
        """Identifier-length digit strings of decimals (integer part, fraction, significant digits)."""
        forms = digit_forms(values)
        if forms.empty or not self.prints:
            return {}
        found: dict[str, Hits] = {}
        for name, prints in self.prints.items():
            exact = int(prints.contains_values(forms).sum())
            if exact:
                found[name] = Hits(exact=exact)
        return found


def shortened_candidates(values: pd.Series) -> pa.Array:
    """Each string's tokens, normalised (``ABCD1234-EF56`` reads ``abcd1234ef56``), as shortened pseudonyms
    would be probed: hex pieces of 10 to 31 digits and decimal integers of 9 to 20 digits
    (``desensitize.fragment_candidates``)."""
    if values.empty:
        return pa.array([], pa.large_string())
    array = pa.array(values.astype(str).tolist(), type=pa.large_string())
    spaced = pc.list_flatten(pc.split_pattern_regex(array, _SEPARATORS)).cast(pa.large_string())
    return fragment_candidates(normalise_for_fingerprint(pa.concat_arrays([array, spaced])))


class ProbeLimitError(RuntimeError):
    """An output too large to probe completely: the guard cannot vouch for it (blocked)."""


IDENTIFIER_DIGITS = (11, 18)
#: Decimals read out of text per call at most: beyond, chance matches against a large set become likely.
DECIMALS_IN_TEXT_CAP = 10_000
_DECIMAL = r"^[+\-]?[0-9]*\.[0-9]+(?:[eE][+\-]?[0-9]{1,3})?$"


def decimals_in(values: pd.Series) -> np.ndarray:
    """Distinct decimals written inside strings ("均值 17563.1308616635"), none past the cap."""
    if values.empty:
        return np.array([], dtype=np.float64)
    array = pa.array(values.astype(str).tolist(), type=pa.large_string())
    pieces = pc.list_flatten(pc.split_pattern_regex(array, r"[^0-9.eE+\-]+"))
    found = pc.unique(pc.filter(pieces, pc.match_substring_regex(pieces, _DECIMAL)))
    if len(found) == 0 or len(found) > DECIMALS_IN_TEXT_CAP:
        return np.array([], dtype=np.float64)
    return np.asarray(pc.cast(found, pa.float64()).to_numpy(zero_copy_only=False))


def hex_of_numbers(pieces: pd.Series) -> pd.Series:
    """A 128-bit pseudonym written as a decimal integer (``int(key, 16)``: 30 to 39 digits) read back as hex."""
    if pieces.empty:
        return pd.Series([], dtype=object)
    numbers = pieces[pieces.str.fullmatch(r"[0-9]{30,39}", na=False)]
    return pd.Series([f"{int(n):032x}" for n in numbers if int(n) < 2**128], dtype=object)


#: A decimal with at most this many digits in all (whole and fraction) holds no identifier, not even
#: with a zero appended: identifiers have 11 digits or more (``IDENTIFIER_DIGITS``).
SHORT_DIGITS = min(IDENTIFIER_DIGITS) - 2


def _short_decimals(values: np.ndarray) -> np.ndarray:
    """Which values certainly print with at most :data:`SHORT_DIGITS` digits (rendering them is the slow part).

    ``round(v, d) == v`` with ``|v| < 10**w`` proves that ``v`` is the double nearest a decimal of ``w``
    whole and ``d`` fraction digits, so its shortest round-trip text has no more; a value not proven
    short is rendered and checked (what this misses costs time, never a finding)."""
    short = np.zeros(len(values), dtype=bool)
    magnitude = np.abs(values)
    for whole in range(SHORT_DIGITS + 1):
        places = SHORT_DIGITS - whole
        short |= (magnitude < 10.0**whole) & (np.round(values, places) == values)
    return short


def digit_forms(numbers: np.ndarray) -> pd.Series:
    """Digit strings of identifier length hidden in decimals ("0.13812345678", "5234.1308616635").

    A decimal drops its trailing zeros (phone 13086166350 written as 0.1308616635), so a string one
    digit short is also tried with a zero appended."""
    values = np.asarray(numbers, dtype=np.float64)
    values = pd.unique(values[np.isfinite(values) & (values != np.floor(values))])
    values = values[~_short_decimals(values)]
    texts = values.astype(str)
    shortest = min(IDENTIFIER_DIGITS) - 1  # digits; a shorter decimal cannot hold one (even with a zero appended)
    texts = texts[np.char.str_len(texts) > shortest]
    forms: set[str] = set()
    for text in texts:
        mantissa = text.split("e")[0].lstrip("-")
        whole, _, fraction = mantissa.partition(".")
        for digits in (whole, fraction, (whole + fraction).lstrip("0")):
            if len(digits) in IDENTIFIER_DIGITS:
                forms.add(digits)
            elif len(digits) + 1 in IDENTIFIER_DIGITS:
                forms.add(digits + "0")
    return pd.Series(sorted(forms), dtype=object)


__all__ = [
    "ALPHABET",
    "CHANCE",
    "Hits",
    "Probe",
    "ProbeLimitError",
    "digit_forms",
    "fold",
    "fold_digits",
    "poisson_tail",
    "shortened_candidates",
    "tokens",
]
