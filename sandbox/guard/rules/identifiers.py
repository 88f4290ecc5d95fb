"""Identifiers: direct identifiers recognised, and the copy's fingerprinted values found anywhere.

Why: a raw identifier (GB 11643-1999 公民身份号码, GB 32100-2015 统一社会信用代码, mobiles, names …)
or a pseudonym (GB/T 37964-2019 假名化; person keys are for joining inside, not for carrying out)
in an output restores a person, which 个人信息保护法 第七十三条 says a de-identified value must not
and 双鸭山 第五十四条 forbids (no raw data out, nor restored through reversible algorithms). Every
string of the output is probed: headers, cells, metadata, chunks, names (``sandbox.guard.probe``),
and keys split over cells of a row are glued back in every order before probing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize import FingerprintSet, find_entities, join_normalised, normalise_for_fingerprint
from sandbox.encodings import decoded_readings
from sandbox.guard.combinations import Combinations
from sandbox.guard.content import Content, Table, cell_texts
from sandbox.guard.context import Context
from sandbox.guard.findings import HARD, SOFT, Finding
from sandbox.guard.probe import ALPHABET, Hits, fold_digits

#: Glued combinations of this many cells at most, and never more columns than this (a wider table is
#: glued over adjacent cells only).
GLUE_CELLS = 3
GLUE_COLUMNS = 12
#: Identifier lengths worth gluing for (shorter values are names, found by the recognizers).
GLUE_MIN_LENGTH = 6
#: Consecutive strings are glued and probed up to this many characters, text columns up to this many rows.
JOIN_LIMIT = 1_000_000
JOIN_ROWS = 50_000


def hit_findings(
    found: dict[str, Hits], file: str, location: str, what: str = "", *, rule: str = "identifier.fingerprint"
) -> list[Finding]:
    """Findings for probe hits (never the value)."""
    findings: list[Finding] = []
    for dataset, hits in found.items():
        if hits.whole:
            detail = f"raw or pseudonymized identifier value(s) of dataset {dataset}{what}"
            if not hits.exact:
                detail += f" inside longer runs ({hits.windows} found where chance gives {hits.expected:.2g})"
            findings.append(Finding(rule, HARD, file, location, detail))
        elif hits.windows or hits.names:
            detail = (
                f"possible identifier value(s) of dataset {dataset} inside longer text "
                f"({hits.windows + hits.names} found, at a level chance could explain): a person checks"
            )
            findings.append(Finding("identifier.possible", SOFT, file, location, detail))
        findings += _shortened(dataset, hits, file, location)
    return findings


def _shortened(dataset: str, hits: Hits, file: str, location: str) -> list[Finding]:
    """Shortened pseudonyms (red team 23, F7): a pseudonym's first or last 10-16 hex digits, as hex or as
    the integer they make, are still person keys; beyond chance blocked, at a chance level a person checks."""
    if not hits.fragments:
        return []
    what = (
        f"{hits.fragments} shortened pseudonym(s) of dataset {dataset} (a pseudonym's first or last 10-16 hex "
        f"digits, as hex or as integers; chance gives {hits.fragment_expected:.2g})"
    )
    if hits.shortened:
        return [Finding("identifier.pseudonym_fragment", HARD, file, location, what)]
    return [Finding("identifier.possible", SOFT, file, location, f"possible {what}: a person checks")]


def recognized(values: pd.Series, ctx: Context, file: str, location: str) -> list[Finding]:
    """Direct identifiers the recognizers find in strings or their decoded readings."""
    if values.empty:
        return []
    readings = _chunks(pd.concat([values, decoded_readings(values, reversals=False)], ignore_index=True))
    spans = find_entities(readings, names=ctx.names)
    if not spans:
        return []
    kinds = ", ".join(sorted({s.entity_type for s in spans}))
    encoded = " (some encoded)" if any(s.row >= len(values) for s in spans) else ""
    return [
        Finding(
            "identifier.recognized", HARD, file, location, f"{len(spans)} direct identifier(s) of type {kinds}{encoded}"
        )
    ]


#: Recognizers read long strings in overlapping pieces: their patterns search to the end of a string,
#: so one long run of digits costs time quadratic in its length.
CHUNK, OVERLAP = 2048, 64


def _chunks(values: pd.Series) -> pd.Series:
    """The strings, each longer than ``CHUNK`` cut into overlapping pieces (an identifier is shorter
    than the overlap, so none is cut in two everywhere)."""
    lengths = values.astype(str).str.len()
    if not bool((lengths > CHUNK).any()):
        return values
    pieces: list[str] = []
    for text in values.astype(str):
        if len(text) <= CHUNK:
            pieces.append(text)
        else:
            pieces += [text[i : i + CHUNK] for i in range(0, len(text), CHUNK - OVERLAP)]
    return pd.Series(pieces, dtype=object)


def _is_decimal(series: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(series.dtype) and not bool((series.dropna() % 1 == 0).all())


def texts(values: pd.Series, ctx: Context, file: str, location: str, *, recognize: bool = True) -> list[Finding]:
    findings = recognized(values, ctx, file, location) if recognize else []
    return findings + hit_findings(ctx.probe.strings(values), file, location)


def _table(table: Table, ctx: Context, file: str) -> list[Finding]:
    where = "" if table.location == "table" else f"{table.location} "
    findings = texts(pd.Series(table.header, dtype=object), ctx, file, f"{where}header")
    for i, series in enumerate(table.columns):
        location = f"{where}column {i + 1}"
        if _is_decimal(series):
            numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
            found = ctx.probe.numbers(numbers)
            findings += hit_findings(found, file, location, " written as the digits of decimal numbers")
            findings += hit_findings(ctx.probe.long_numbers(table.strings(i)), file, location)
        else:
            findings += texts(table.strings(i), ctx, file, location)
    findings += _glued(table, ctx, file, where)
    findings += _rows_in_order(table, ctx, file, where)
    return findings


def check(content: Content, ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    for table in content.tables:
        findings += _table(table, ctx, content.file)
        findings += _columns_in_order(table, ctx, content.file)
        turned = ctx.turned(table)
        if turned is not None:  # a key split over the rows of a sideways table is split over its columns
            findings += _glued(turned, ctx, content.file, f"{turned.location} ")
    for block in content.texts:
        findings += texts(block.values, ctx, content.file, block.location)
    for block in content.sequences:
        findings += joined(block.values.astype(str).tolist(), ctx, content.file, block.location)
    return findings


def joined(values: list[str], ctx: Context, file: str, location: str) -> list[Finding]:
    """A key split over consecutive strings (JSON leaves, lines, cells down a column): they are glued in
    order and the glued text probed with sliding windows (chance-weighted; bounded in size)."""
    text = "".join(values)
    if len(values) < 2 or len(text) > JOIN_LIMIT:
        return []
    found = ctx.probe.strings(pd.Series([text], dtype=object), decode=False)
    return hit_findings(found, file, f"{location} (consecutive, joined)", rule="identifier.split_cells")


def _columns_in_order(table: Table, ctx: Context, file: str) -> list[Finding]:
    """Text columns read down their rows (a key split over a cell and the one below it)."""
    if table.rows > JOIN_ROWS:
        return []
    findings: list[Finding] = []
    for i, column in enumerate(table.columns):
        if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
            continue
        cells = (table.written[i] if table.written is not None else column).fillna("").astype(str).tolist()
        if not any(cells):
            continue
        where = "" if table.location == "table" else f"{table.location} "
        findings += joined(cells, ctx, file, f"{where}column {i + 1}")
    return findings


def _rows_in_order(table: Table, ctx: Context, file: str, where: str) -> list[Finding]:
    """Every row's text cells glued left to right (a key split over any number of adjacent cells; numbers
    are left to :func:`_glued`: their digits glued row after row would hit mobile numbers by chance)."""
    eligible = [i for i, c in enumerate(table.columns) if not pd.api.types.is_numeric_dtype(c.dtype)]
    if table.rows == 0 or table.rows > JOIN_ROWS or len(eligible) < 2 or not ctx.probe.prints:
        return []
    cells = [_cells(table, i) for i in eligible]
    rows = Combinations([c[0] for c in cells], [len(c[2]) for c in cells]).distinct(range(len(cells)))
    glued = join_normalised([c[1].take(pa.array(r)) for c, r in zip(cells, rows, strict=True)]).cast(pa.large_string())
    long = pc.filter(glued, pc.greater_equal(pc.utf8_length(glued), GLUE_MIN_LENGTH))
    if len(long) == 0:
        return []
    found = ctx.probe.strings(pd.Series(long.to_pylist(), dtype=object), decode=False)
    return hit_findings(found, file, f"{where}cells of a row, glued", rule="identifier.split_cells")


# --- keys split over cells --------------------------------------------------------------------


def _targets(ctx: Context) -> set[int]:
    lengths: set[int] = set()
    for prints in ctx.probe.prints.values():
        for kind, counts in prints.lengths().items():
            if kind != "han":
                lengths.update(length for length in counts if length >= GLUE_MIN_LENGTH)
    return lengths


def _cells(table: Table, i: int) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """(code per row, fp-norm-1 of each distinct cell, its length) of column ``i``; a null reads as ''.

    Cells as written where the file has written text (CSV): a part such as ``021175`` read as the
    integer 21175 would lose its leading zero and never glue back into the identifier it came from."""
    codes, uniques = table.factorized(i, written=True)
    if table.written is not None:
        text = uniques.astype(object).fillna("")
    else:
        text = cell_texts(uniques if len(uniques) else pd.Series([], dtype=object)).fillna("")
    strings = pa.array([*text.astype(str).tolist(), ""], type=pa.large_string())
    normalised = normalise_for_fingerprint(fold_digits(strings))
    lengths = pc.utf8_length(normalised).to_numpy(zero_copy_only=False)
    return np.where(codes < 0, len(uniques), codes), normalised, lengths


def _orders(columns: int, lengths: list[set[int]], targets: set[int]) -> Iterable[tuple[int, ...]]:
    """Ordered pairs and triples of columns whose cell lengths can add up to a target length."""
    narrow = columns > GLUE_COLUMNS
    for width in range(2, GLUE_CELLS + 1):
        combos = (
            (tuple(range(i, i + width)) for i in range(columns - width + 1))
            if narrow
            else itertools.permutations(range(columns), width)
        )
        for combo in combos:
            sums = {0}
            for i in combo:
                sums = {s + length for s in sums for length in lengths[i] if length}
            if sums & targets:
                yield combo


def _chance(prints: FingerprintSet, lengths: np.ndarray) -> float:
    """Expected chance hits of random strings of these lengths against the set (its digits, hex, alnum values)."""
    expected = 0.0
    per_length = dict(zip(*np.unique(lengths, return_counts=True), strict=True))
    for kind, counts in prints.lengths().items():
        alphabet = ALPHABET.get(kind)
        if alphabet is None:
            continue
        for length, count in counts.items():
            expected += float(per_length.get(length, 0)) * count / float(alphabet) ** length
    return expected


def _glued(table: Table, ctx: Context, file: str, where: str) -> list[Finding]:
    """Identifier values split across cells of a row, adjacent or not, glued back in any order.

    Per combination of columns only the rows whose cells' lengths add up to an identifier's length are
    glued, each distinct combination once; hits are weighed against chance like sliding windows
    (many short cells glued in many orders make many probes)."""
    targets = _targets(ctx)
    eligible = [i for i, c in enumerate(table.columns) if not _is_decimal(c)]
    if table.rows == 0 or len(eligible) < 2 or not targets:
        return []
    cells = [_cells(table, i) for i in eligible]
    length_sets = [set(np.unique(lengths).tolist()) for _, _, lengths in cells]
    wanted = np.array(sorted(targets))
    found_combinations = Combinations([c[0] for c in cells], [len(c[2]) for c in cells])
    glued: list[pa.Array] = []
    for combo in _orders(len(eligible), length_sets, targets):
        codes = found_combinations.distinct(combo)
        total = sum(cells[i][2][c] for c, i in zip(codes, combo, strict=True))
        keep = np.isin(total, wanted)
        if not keep.any():
            continue
        parts = [cells[i][1].take(pa.array(c[keep])) for c, i in zip(codes, combo, strict=True)]
        glued.append(join_normalised(parts).cast(pa.large_string()))
        ctx.probe.count(int(keep.sum()))
    if not glued:
        return []
    values = pa.concat_arrays(glued)
    lengths = pc.utf8_length(values).to_numpy(zero_copy_only=False)
    found = {}
    for name, prints in ctx.probe.prints.items():
        hits = int(prints.contains_normalised(values).sum())
        if hits:
            found[name] = Hits(windows=hits, expected=_chance(prints, lengths))
    return hit_findings(
        found, file, f"{where}cells of a row", " split across cells of a row", rule="identifier.split_cells"
    )


__all__ = ["check", "hit_findings", "recognized", "texts"]
