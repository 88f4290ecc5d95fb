"""What a strict reader makes of one output: its tables, its other strings, and its canonical bytes.

Why a common shape: every rule (identifiers, records, statistics, free text) must see *all* of a
file, whatever its format; a reader's only job is to turn every byte into either a table cell, a
string of text (names, keys, metadata, chunks, attributes) or a finding that says what it could not
account for. The rules then never parse a format themselves, so a format a rule forgot cannot
hide content from it.

``canonical`` is what the operator receives: the platform's own serialisation of exactly what the
reader read (re-written CSV, JSON, Parquet and PNG; normalised text and SVG), so bytes the reader
did not account for (padding, quoting choices, trailing data, custom chunks) never leave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sandbox.guard.findings import Finding


@dataclass(slots=True)
class Table:
    """One table of an output. ``columns`` hold typed values (numbers where a whole column is
    numeric); ``written`` the cells exactly as written (CSV text), or None when the typed values
    are what the file holds (Parquet, JSON). ``nested``: some cells are lists or objects, so it is
    no statistical table (its leaves are in the content's texts too)."""

    location: str
    header: list[str]
    columns: list[pd.Series]
    written: list[pd.Series] | None = None
    nested: bool = False
    #: Each column's factorization, made once: every rule reads columns by their distinct values, and
    #: hashing a million cells again per rule was most of a judgement's time (issue 15's benchmark).
    _factorized: dict[tuple[int, bool], tuple[np.ndarray, pd.Series]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def frame(self) -> pd.DataFrame:
        """The typed table with unique column names (a repeated header name gets ``#2``, ``#3``…)."""
        seen: dict[str, int] = {}
        names: list[str] = []
        for name in self.header:
            seen[name] = seen.get(name, 0) + 1
            names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
        data = {n: c.reset_index(drop=True) for n, c in zip(names, self.columns, strict=True)}
        return pd.DataFrame(data, columns=names) if data else pd.DataFrame(index=range(0))

    def factorized(self, i: int, *, written: bool = False) -> tuple[np.ndarray, pd.Series]:
        """Column ``i`` (typed, or as written when ``written`` and the file has written cells) as a code
        per row (-1 for null) and its distinct values in order of first appearance."""
        as_written = written and self.written is not None
        key = (i, as_written)
        if key not in self._factorized:
            column = self.written[i] if as_written and self.written is not None else self.columns[i]
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            self._factorized[key] = (np.asarray(codes), pd.Series(uniques, dtype=column.dtype))
        return self._factorized[key]

    def seed(self, i: int, codes: np.ndarray, uniques: pd.Series, *, written: bool = False) -> None:
        """A reader that already knows column ``i``'s factorization (Arrow's dictionary) hands it over."""
        self._factorized[(i, written)] = (codes, uniques)

    def strings(self, i: int) -> pd.Series:
        """Column ``i``'s distinct cell texts as the operator reads them (non-empty)."""
        _, uniques = self.factorized(i, written=True)  # distinct first: 1M cells, few values
        texts = uniques.astype(object) if self.written is not None else cell_texts(uniques)
        texts = texts.dropna().astype(str)
        if self.written is not None or not _injective(uniques):  # distinct values, distinct texts otherwise
            texts = pd.Series(pd.unique(texts), dtype=object)
        texts = texts.astype(object)
        return texts[texts != ""].reset_index(drop=True)


@dataclass(slots=True)
class TextBlock:
    """Strings of one place of an output that are not table cells (``location`` names the place)."""

    location: str
    values: pd.Series


@dataclass(slots=True)
class Content:
    """Everything a strict reader found in one output file."""

    file: str
    format: str
    tables: list[Table] = field(default_factory=list)
    texts: list[TextBlock] = field(default_factory=list)
    #: Strings in the order the file holds them (JSON leaves, lines, SVG texts): a key split over
    #: consecutive ones is found by joining them.
    sequences: list[TextBlock] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    canonical: bytes | None = None
    #: Free text, drawings, unstructured documents: a person must read it (review at best).
    free_text: bool = False
    image: bool = False
    #: Made by the platform itself: a DP answer it signed, a chart it rendered from a passing table.
    signed: bool = False
    rendered: bool = False

    def add_sequence(self, location: str, values: list[str]) -> None:
        if len(values) > 1:
            self.sequences.append(TextBlock(location, pd.Series(values, dtype=object)))

    def add_text(self, location: str, values: list[str] | pd.Series) -> None:
        series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
        series = series[series.notna()].astype(str)
        if len(series):
            self.texts.append(TextBlock(location, series.drop_duplicates().reset_index(drop=True)))


def _injective(values: pd.Series) -> bool:
    """Whether :func:`cell_texts` gives distinct values distinct texts: numbers and booleans (pandas
    counts 0.0 and -0.0 as one value), not objects (``1`` and ``"1"`` read the same)."""
    dtype = values.dtype
    return bool(pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def cell_texts(series: pd.Series) -> pd.Series:
    """A typed column as text: whole floats without ``.0``, other floats by ``repr``, nulls as null.

    Why ``repr``: the operator's file holds the shortest round-tripping form of a float, and that
    is what a hidden identifier would be written in.
    """
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(object).where(series.notna(), None).map(lambda v: None if v is None else str(v).lower())
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(values)
        whole = finite & (values == np.floor(values)) & (np.abs(values) < 2**63)
        out = np.empty(len(values), dtype=object)
        out[~finite] = None
        out[whole] = values[whole].astype(np.int64).astype(str)
        rest = finite & ~whole
        out[rest] = values[rest].astype(str)  # numpy prints the shortest round-tripping form, as repr does
        out[np.isinf(values)] = np.where(values[np.isinf(values)] > 0, "inf", "-inf")
        return pd.Series(out, dtype=object, index=series.index)
    if pd.api.types.is_integer_dtype(series.dtype):
        present = series.notna().to_numpy()
        out = np.full(len(series), None, dtype=object)
        out[present] = series.to_numpy()[present].astype(str)
        return pd.Series(out, dtype=object, index=series.index)
    return series.astype(object).where(series.notna(), None).map(lambda v: None if v is None else str(v))


__all__ = ["Content", "Table", "TextBlock", "cell_texts"]
