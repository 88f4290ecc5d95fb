"""Personal information in a column of free text, found a whole column at a time.

Why not presidio cell by cell: presidio's ``AnalyzerEngine`` analyses one string per call, runs
every recognizer's patterns over it and builds result objects on the way; pattern-only it manages
a few thousand rows per second, and a 备注 column of a million rows would take minutes. This
scanner reads the same definitions (``desensitize.recognizers``: patterns, scores, validators) and
runs them over the whole column at once:

1. the column is joined into one string, rows separated by a control character that occurs in no
   row and that no pattern can match or look through as anything but "not a letter, digit or
   Chinese character" (exactly what the start and end of a string are to presidio);
2. the joined string is normalised in one numpy pass (full-width to ASCII, length-preserving);
3. each pattern runs once with ``finditer`` over the joined string; each candidate is checked by
   the recognizer's validator (check characters, dates, deny-list);
4. overlaps are resolved as presidio does: within one entity type a span contained in another
   with an equal or higher score goes (presidio's ``remove_duplicates``); across types the higher
   score wins, then the longer span, then the entity listed first in ``ENTITY_TYPES``;
5. spans are mapped back to rows with ``numpy.searchsorted`` over the row offsets, and for
   ``redact`` the joined string is rebuilt with ``<ENTITY_TYPE>`` labels and split again; values of
   the table's near-unique columns (``keys``, ``desensitize.literals``) are ``KEY`` spans, score 1.

The result equals presidio's (``recognizers.build_analyzer``) after the same overlap resolution;
``tests/test_textscan.py`` checks it span for span. presidio's analyzer itself keeps overlapping
spans of different types (its anonymizer resolves them later); a scanner that returns spans to
redact must resolve them, which is the only difference by design.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from desensitize.forking import Forked, worth_forking
from desensitize.literals import clean_keys, found_in, key_index, key_spans, merge_key_spans
from desensitize.recognizers import (
    DATASET_NAME_SCORE,
    ENTITY_TYPES,
    PATTERN_FLAGS,
    RECOGNIZER_SPECS,
    RecognizerSpec,
    clean_names,
    dataset_names_spec,
    normalize_codepoints,
)

__all__ = ["Span", "find_entities", "redact", "resolve_overlaps"]


class Span(NamedTuple):
    """One entity found: ``row`` is the position in the input (0-based, not the Series index);
    ``start``/``end`` are character offsets in that row's original text."""

    row: int
    start: int
    end: int
    entity_type: str
    score: float


_KINDS = (*ENTITY_TYPES, "KEY")  # KEY: a value of a near-unique column
_PRIORITY = {entity: i for i, entity in enumerate(_KINDS)}
_SEPARATORS = ("\x00", "\x01", "\x02", "\x03", "\x04", "\x05", "\x06", "\x07", "\x08", "\ufdd0", "\ufdd1")


@dataclass(frozen=True, slots=True)
class _Compiled:
    entity: int  # index into ENTITY_TYPES
    regex: re.Pattern[str]
    grouped: bool
    score: float
    validator: Callable[[str], bool | None] | None
    batch_validator: Callable[[list[str]], np.ndarray] | None
    required: re.Pattern[str] | None
    reach: int


@functools.lru_cache(maxsize=16)
def _compile(spec: RecognizerSpec) -> tuple[_Compiled, ...]:
    out = []
    for pattern in spec.patterns:
        compiled = re.compile(pattern.regex, PATTERN_FLAGS)
        required = re.compile(pattern.required, PATTERN_FLAGS) if pattern.required else None
        out.append(
            _Compiled(
                _PRIORITY[spec.entity_type], compiled, "e" in compiled.groupindex, pattern.score, spec.validator,
                spec.batch_validator, required, pattern.reach,
            )
        )  # fmt: skip
    return tuple(out)


def _specs(entities: Iterable[str] | None) -> list[RecognizerSpec]:
    specs = list(RECOGNIZER_SPECS)
    if entities is not None:
        wanted = set(entities)
        unknown = wanted - set(ENTITY_TYPES)
        if unknown:
            raise ValueError(f"unknown entity types {sorted(unknown)}; known: {list(ENTITY_TYPES)}")
        specs = [s for s in specs if s.entity_type in wanted]
    return specs


_CODE_BITS = 21  # every Unicode code point fits in 21 bits, so three of them pack exactly into 63


@dataclass(frozen=True, slots=True)
class _NameIndex:
    """The dataset's names as sorted packed keys, so that a column is searched by table lookup.

    presidio's ``DatasetNameRecognizer`` matches the names with one trie-shaped regular expression;
    compiling that for a few hundred thousand names takes seconds, and running it tries the trie at
    every character. Here a name of two or three characters is its code points packed into one
    uint64, every position of the text whose character can start a name is packed the same way,
    and ``numpy.searchsorted`` answers all positions at once. The rare longer names (复姓 with a
    two-character given name, transliterations) keep a small trie regex.
    """

    first: np.ndarray  # bool per code point: can start a name
    keys2: np.ndarray  # sorted packed two-character names
    keys3: np.ndarray  # sorted packed three-character names
    longer: re.Pattern[str] | None


@functools.lru_cache(maxsize=4)
def _name_index(names: tuple[str, ...]) -> _NameIndex | None:
    """Built from the names' code points in one array (a few hundred thousand names: no loop per name)."""
    if not names:
        return None
    lengths = np.fromiter(map(len, names), dtype=np.int64, count=len(names))
    codes = np.frombuffer("".join(names).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    offsets = np.zeros(len(names), dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)[:-1]
    first = np.zeros(0x110000, dtype=bool)
    first[codes[offsets[lengths > 0]]] = True
    keys: dict[int, np.ndarray] = {}
    for size in (2, 3):
        at = offsets[lengths == size]
        packed = np.zeros(len(at), dtype=np.uint64)
        for i in range(size):
            packed = (packed << np.uint64(_CODE_BITS)) | codes[at + i]
        keys[size] = np.unique(packed)
    longer = [names[i] for i in np.flatnonzero((lengths != 2) & (lengths != 3)).tolist()]
    long_spec = dataset_names_spec(longer) if longer else None
    return _NameIndex(
        first,
        keys[2],
        keys[3],
        re.compile(long_spec.patterns[0].regex, PATTERN_FLAGS) if long_spec else None,
    )


def _name_candidates(text: str, index: _NameIndex) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of the longest dataset name starting at each position where one starts.

    Overlapping finds are all returned; the overlap resolution keeps what presidio's left-to-right
    ``finditer`` keeps (the earlier, then the longer).
    """
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(codes)
    starts = np.flatnonzero(index.first[codes[: max(n - 1, 0)]])
    c0 = codes[starts] << np.uint64(_CODE_BITS)
    pair = c0 | codes[starts + 1]
    ends = np.where(found_in(index.keys2, pair), starts + 2, -1)
    three = starts[starts + 2 < n]
    triple = (pair[: len(three)] << np.uint64(_CODE_BITS)) | codes[three + 2]
    ends[: len(three)] = np.where(found_in(index.keys3, triple), three + 3, ends[: len(three)])
    hit = ends >= 0
    found_starts, found_ends = starts[hit], ends[hit]
    if index.longer is not None:
        spans = np.array([m.span() for m in index.longer.finditer(text)], dtype=np.int64).reshape(-1, 2)
        found_starts = np.concatenate((found_starts, spans[:, 0]))
        found_ends = np.concatenate((found_ends, spans[:, 1]))
    return found_starts.astype(np.int64), found_ends.astype(np.int64)


def _strings(texts: pd.Series | Sequence[str | None] | Iterable[str | None]) -> tuple[list[str], np.ndarray]:
    """The rows as Python strings ("" for nulls) and the null mask.

    A non-string value (a number in an object column) is read as its ``str``: a phone number stored
    as an integer is still a phone number.
    """
    series = texts if isinstance(texts, pd.Series) else pd.Series(list(texts), dtype=object)
    null = series.isna().to_numpy(dtype=bool)
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
        return series.fillna("").tolist(), null
    values = series.tolist()
    return [
        v if isinstance(v, str) else ("" if isnull else str(v)) for v, isnull in zip(values, null, strict=True)
    ], null


@dataclass(frozen=True, slots=True)
class _Scan:
    """Kept spans over the joined column (global offsets), plus what maps them back to rows."""

    joined: str
    separator: str
    row_starts: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    kinds: np.ndarray
    scores: np.ndarray


def _join(values: list[str]) -> tuple[str, str]:
    """Join the rows with a separator that occurs in none of them."""
    for separator in _SEPARATORS:
        joined = separator.join(values)
        if joined.count(separator) == max(len(values) - 1, 0):
            return joined, separator
    raise ValueError("every candidate row separator occurs in the text")  # pragma: no cover


def _normalized(joined: str) -> str:
    if joined.isascii():
        return joined
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).copy()
    normalize_codepoints(codes)
    return codes.tobytes().decode("utf-32-le")


def _windows(text: str, pattern: _Compiled, row_ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where ``pattern`` can start: (first, last, end of row) per window, in text order.

    A match contains an occurrence of the required text starting at most ``reach`` characters in.
    ``finditer`` over the required text reports non-overlapping occurrences, so that occurrence is
    either reported itself or swallowed by a reported one that overlaps it; either way the match
    starts between ``hit start - reach`` and ``hit end - 1`` of some reported hit (and not before its
    row). Overlapping windows are merged; a search may look ahead to the end of the row, as a full
    scan does.
    """
    assert pattern.required is not None
    spans = [m.span() for m in pattern.required.finditer(text)]
    if not spans:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    hits = np.array(spans, dtype=np.int64).reshape(-1, 2)
    row = np.searchsorted(row_ends, hits[:, 0], side="left")
    row_starts = np.concatenate(([0], row_ends[:-1] + 1))
    first = np.maximum(hits[:, 0] - pattern.reach, row_starts[row])
    last = np.maximum(hits[:, 1] - 1, hits[:, 0])
    running_last = np.maximum.accumulate(last)
    new = np.ones(len(first), dtype=bool)
    new[1:] = first[1:] > running_last[:-1]
    group = np.cumsum(new) - 1
    lasts = np.zeros(int(group[-1]) + 1, dtype=np.int64)
    np.maximum.at(lasts, group, last)
    return first[new], lasts, row_ends[row[new]]


def _matches(text: str, pattern: _Compiled, row_ends: np.ndarray) -> Iterator[re.Match[str]]:
    """The matches a full ``finditer`` over ``text`` would give, searching only the windows where a
    match can start when the pattern declares its required text."""
    if pattern.required is None:
        yield from pattern.regex.finditer(text)
        return
    search = pattern.regex.search
    resume = 0
    for first, last, row_end in zip(*(a.tolist() for a in _windows(text, pattern, row_ends)), strict=True):
        position = max(first, resume)
        while position <= last:
            match = search(text, position, row_end)
            if match is None or match.start() > last:
                break
            yield match
            resume = position = match.end() if match.end() > match.start() else match.end() + 1


def _candidates(
    text: str, row_starts: np.ndarray, specs: list[RecognizerSpec]
) -> tuple[list[int], list[int], list[int], list[float]]:
    starts: list[int] = []
    ends: list[int] = []
    kinds: list[int] = []
    scores: list[float] = []
    row_ends = np.append(row_starts[1:] - 1, len(text))
    for spec in specs:
        for pattern in _compile(spec):
            if pattern.batch_validator is not None:
                spans = [
                    match.span("e") if pattern.grouped else match.span() for match in _matches(text, pattern, row_ends)
                ]
                spans = [(s, e) for s, e in spans if 0 <= s < e]
                valid = pattern.batch_validator([text[s:e] for s, e in spans]) if spans else np.zeros(0, dtype=bool)
                kept = [span for span, ok in zip(spans, valid.tolist(), strict=True) if ok]
                starts.extend(s for s, _ in kept)
                ends.extend(e for _, e in kept)
                kinds.extend([pattern.entity] * len(kept))
                scores.extend([1.0] * len(kept))
                continue
            validator = pattern.validator
            for match in _matches(text, pattern, row_ends):
                start, end = match.span("e") if pattern.grouped else match.span()
                if start < 0 or start == end:
                    continue
                score = pattern.score
                if validator is not None:
                    verdict = validator(text[start:end])
                    if verdict is False:
                        continue
                    if verdict:
                        score = 1.0
                starts.append(start)
                ends.append(end)
                kinds.append(pattern.entity)
                scores.append(score)
    return starts, ends, kinds, scores


def _resolve_cluster(members: list[tuple[int, int, int, float, int]]) -> list[int]:
    """Indexes kept among overlapping candidates (start, end, kind, score, index)."""
    # presidio's remove_duplicates: within one type, drop a span contained in a kept one whose score
    # is equal or higher (identical spans collapse to the best).
    kept: list[tuple[int, int, int, float, int]] = []
    for m in sorted(members, key=lambda m: (m[2], m[0], -(m[1] - m[0]), -m[3])):
        if not any(k[2] == m[2] and k[0] <= m[0] and m[1] <= k[1] and m[3] <= k[3] for k in kept):
            kept.append(m)
    # Across types: higher score, then longer, then the entity listed first, then earlier.
    chosen: list[tuple[int, int, int, float, int]] = []
    for m in sorted(kept, key=lambda m: (-m[3], -(m[1] - m[0]), m[2], m[0])):
        if all(m[1] <= c[0] or c[1] <= m[0] for c in chosen):
            chosen.append(m)
    return [m[4] for m in chosen]


def _resolve(starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Positions (into the inputs) of the spans kept, in text order.

    Most candidates overlap nothing; numpy finds the clusters of overlapping ones (sorted by start,
    a new cluster begins where a start reaches the running maximum of the ends before it) and
    Python decides only inside those clusters.
    """
    n = len(starts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # Identical spans of one type (a name found by its context and again as a dataset name) collapse to
    # the best score first, as presidio's remove_duplicates does, so that they do not form clusters.
    best = np.lexsort((-scores, kinds, ends, starts))
    same = np.zeros(n, dtype=bool)
    same[1:] = (
        (starts[best][1:] == starts[best][:-1])
        & (ends[best][1:] == ends[best][:-1])
        & (kinds[best][1:] == kinds[best][:-1])
    )
    if same.any():
        unique = best[~same]
        return np.asarray(unique[_resolve(starts[unique], ends[unique], kinds[unique], scores[unique])])
    order = np.lexsort((ends, starts))
    s, e = starts[order], ends[order]
    running_end = np.maximum.accumulate(e)
    new_cluster = np.ones(n, dtype=bool)
    new_cluster[1:] = s[1:] >= running_end[:-1]
    cluster = np.cumsum(new_cluster) - 1
    sizes = np.bincount(cluster)
    keep = sizes[cluster] == 1
    crowded = np.flatnonzero(~keep)
    if len(crowded):
        k, sc = kinds[order], scores[order]
        bounds = np.flatnonzero(np.diff(cluster[crowded])) + 1
        for group in np.split(crowded, bounds):
            members = [(int(s[i]), int(e[i]), int(k[i]), float(sc[i]), int(i)) for i in group]
            keep[_resolve_cluster(members)] = True
    return np.asarray(order[keep])


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans, chosen as the scanner chooses them (see the module docstring).

    Public so that presidio's raw analyzer results can be resolved the same way for comparison.
    """
    spans = list(spans)
    if not spans:
        return []
    rows = np.array([s.row for s in spans], dtype=np.int64)
    # Rows never overlap each other: offset each row far apart and resolve all at once.
    width = max(s.end for s in spans) + 1
    starts = rows * width + np.array([s.start for s in spans], dtype=np.int64)
    ends = rows * width + np.array([s.end for s in spans], dtype=np.int64)
    kinds = np.array([_PRIORITY[s.entity_type] for s in spans], dtype=np.int64)
    scores = np.array([s.score for s in spans], dtype=np.float64)
    return sorted((spans[i] for i in _resolve(starts, ends, kinds, scores)), key=lambda s: (s.row, s.start))


def _scan(values: list[str], names: tuple[str, ...], entities: Iterable[str] | None, keys: tuple[str, ...]) -> _Scan:
    """Candidates of every pattern, of the dataset's (cleaned) ``names`` and ``keys``, overlaps resolved."""
    entities = tuple(entities) if entities is not None else None
    joined, separator = _join(values)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    row_starts = np.zeros(len(values), dtype=np.int64)
    if len(values) > 1:
        row_starts[1:] = np.cumsum(lengths + 1)[:-1]
    text = _normalized(joined)
    starts, ends, kinds, scores = _candidates(text, row_starts, _specs(entities))
    s = np.array(starts, dtype=np.int64)
    e = np.array(ends, dtype=np.int64)
    k = np.array(kinds, dtype=np.int64)
    sc = np.array(scores, dtype=np.float64)
    index = _name_index(names) if entities is None or "PERSON" in set(entities) else None
    if index is not None:
        name_starts, name_ends = _name_candidates(text, index)
        s = np.concatenate((s, name_starts))
        e = np.concatenate((e, name_ends))
        k = np.concatenate((k, np.full(len(name_starts), _PRIORITY["PERSON"], dtype=np.int64)))
        sc = np.concatenate((sc, np.full(len(name_starts), DATASET_NAME_SCORE, dtype=np.float64)))
    keyed = key_index(keys) if entities is None else None
    if keyed is not None:
        s, e, k, sc = merge_key_spans((s, e, k, sc), key_spans(text, keyed), _PRIORITY["KEY"])
    kept = _resolve(s, e, k, sc)
    return _Scan(joined, separator, row_starts, s[kept], e[kept], k[kept], sc[kept])


def find_entities(
    texts: pd.Series | Sequence[str | None] | Iterable[str | None],
    *,
    names: Iterable[str] = (),
    entities: Iterable[str] | None = None,
    keys: Iterable[str] = (),
) -> list[Span]:
    """Every entity found in ``texts``, in row and text order, overlaps resolved.

    ``names``: person names from the dataset's own name columns, found as PERSON wherever they occur.
    ``entities``: restrict to these entity types (default: all of ``ENTITY_TYPES``, and ``KEY`` for
    ``keys``, values of the table's near-unique columns). Null rows yield nothing.
    """
    values, _ = _strings(texts)
    scan = _scan(values, clean_names(names), entities, clean_keys(keys))
    rows = np.searchsorted(scan.row_starts, scan.starts, side="right") - 1
    local_starts = scan.starts - scan.row_starts[rows]
    local_ends = scan.ends - scan.row_starts[rows]
    return [
        Span(row, start, end, _KINDS[kind], score)
        for row, start, end, kind, score in zip(
            rows.tolist(), local_starts.tolist(), local_ends.tolist(), scan.kinds.tolist(), scan.scores.tolist(),
            strict=True,
        )
    ]  # fmt: skip


def _redacted(values: list[str], names: tuple[str, ...], keys: tuple[str, ...]) -> list[str]:
    """The rows with every entity replaced by its label (rows joined, scanned once, split again)."""
    if not values:
        return []
    scan = _scan(values, names, None, keys)
    joined = scan.joined
    labels = [f"<{entity}>" for entity in _KINDS]
    pieces: list[str] = []
    previous = 0
    for start, end, kind in zip(scan.starts.tolist(), scan.ends.tolist(), scan.kinds.tolist(), strict=True):
        pieces.append(joined[previous:start])
        pieces.append(labels[kind])
        previous = end
    pieces.append(joined[previous:])
    return "".join(pieces).split(scan.separator)


def redact(
    texts: pd.Series, *, names: Iterable[str] = (), keys: Iterable[str] = (), workers: int | None = None
) -> pd.Series:
    """``texts`` with every entity replaced by ``<ENTITY_TYPE>`` (e.g. "联系人<PERSON>，电话<CN_MOBILE>").

    GB/T 37964-2019 calls this suppression (抑制) of the identifying part of a value; the rest of
    the note stays readable; ``keys`` (values of near-unique columns) become ``<KEY>``. Nulls stay
    null; index, name and a string dtype are kept (else object strings). A large column is split in two and the second
    half scanned on the other core (``desensitize.forking``; ``workers=1`` keeps it in-process);
    rows are independent, so the result is the same either way.
    """
    series = texts if isinstance(texts, pd.Series) else pd.Series(list(texts), dtype=object)
    values, null = _strings(series)
    names, key_values = clean_names(names), clean_keys(keys)
    if worth_forking(len(values), workers):
        # Compile in the parent, so that both halves use (and the child inherits) the same patterns.
        _name_index(names), key_index(key_values)
        for spec in _specs(None):
            _compile(spec)
        half = len(values) // 2
        with Forked(lambda: _redacted(values[half:], names, key_values), "the free-text redaction") as second:
            rebuilt = _redacted(values[:half], names, key_values)
            rebuilt += second.result()
    else:
        rebuilt = _redacted(values, names, key_values)
    out = pd.Series(rebuilt, index=series.index, name=series.name, dtype=object)
    missing = np.flatnonzero(null)
    if len(missing):
        out.iloc[missing] = series.iloc[missing].to_numpy(dtype=object)
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
        out = out.astype(series.dtype)
    return out
