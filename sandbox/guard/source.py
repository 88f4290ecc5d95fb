"""The granted copies as the guard sees them: each column's domain, and groups re-counted on demand.

Why the guard reads the copy: ``pass`` must mean *accounted for* (issue 15). A table an operator
wrote passes only when the platform can derive it: its dimension columns hold values of the copy's
columns, and re-aggregating the copy on those columns gives its cell sizes and reproduces its
measures. The same domains show when a table is a list of people instead (its rows are
combinations that few or no other rows of the copy share). The copy is the desensitized one the
sandbox read; the raw data never comes near the guard either (原始数据不出域).

Values are compared by *key*: the text a person would write (integers without ``.0``, dates as
``YYYY-MM-DD``), NFKC-normalised and stripped, so that ``1980`` in a CSV meets 1980 in Parquet and
``１９８０`` meets ``1980``. Work is per distinct value (``pd.factorize``), never per cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from desensitize import as_text
from sandbox.guard.probe import fold_digits

#: Labels of margin rows and columns (pandas' ``All``, and the usual Chinese totals).
MARGIN_LABELS = frozenset({"all", "total", "合计", "总计", "总体", "全部", "小计", "总数", "汇总"})
#: Low-cardinality columns whose values' counts and shares per group are candidate measures.
INDICATOR_MAX_VALUES = 24


def _object_text(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value == int(value) and abs(value) < 2**63:
        return str(int(value))
    return str(value)


def keys_of(values: pd.Series) -> pd.Series:
    """Each cell's comparison key (object strings; None for null or empty)."""
    if values.dtype == object:
        array = pa.array([_object_text(v) for v in values], type=pa.large_string())
    else:
        array = pa.array(as_text(values), type=pa.large_string(), from_pandas=True)
    array = pc.utf8_trim_whitespace(array)
    needs = pc.match_substring_regex(array, r"[^\x00-\x7F]")
    if pc.any(needs).as_py():  # １９８０, ١٩٨٠ and 一九八〇 are 1980
        array = fold_digits(pc.if_else(needs, pc.utf8_normalize(array, "NFKC"), array))
    array = pc.replace_substring_regex(array, r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[ T]00:00:00$", r"\1")
    array = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.large_string()), array)
    return pd.Series(array.to_numpy(zero_copy_only=False), dtype=object, index=values.index)


def distinct_keys(
    values: pd.Series, factorized: tuple[np.ndarray, pd.Series] | None = None
) -> tuple[np.ndarray, pd.Index]:
    """(code per row, distinct keys); a null or empty cell gets code -1. ``factorized``: the values'
    codes and distinct values when the caller has them already (a read table keeps them)."""
    codes, uniques = factorized if factorized is not None else pd.factorize(values, use_na_sentinel=True)
    if len(uniques) == 0:
        return codes.astype(np.int64), pd.Index([], dtype=object)
    keys = keys_of(pd.Series(uniques))
    key_codes, distinct = pd.factorize(keys, use_na_sentinel=True)
    mapped = np.where(codes >= 0, key_codes[np.maximum(codes, 0)], -1)
    return mapped.astype(np.int64), pd.Index(distinct, dtype=object)


@dataclass(slots=True)
class KeyedColumn:
    """A column of an output table by key: per-row codes into its distinct keys (-1 for null)."""

    codes: np.ndarray
    keys: pd.Index

    @classmethod
    def of(cls, values: pd.Series, factorized: tuple[np.ndarray, pd.Series] | None = None) -> KeyedColumn:
        codes, keys = distinct_keys(values, factorized)
        return cls(codes, keys)

    def margins(self) -> np.ndarray:
        """Per row: is it a margin label (``All``, ``合计``…)."""
        per_key = pd.Series(self.keys, dtype=object).str.lower().isin(MARGIN_LABELS).to_numpy()
        return np.where(self.codes >= 0, per_key[np.maximum(self.codes, 0)] if len(per_key) else False, False)

    def values(self) -> pd.Index:
        """The distinct keys that are not margin labels."""
        return self.keys[~pd.Series(self.keys, dtype=object).str.lower().isin(MARGIN_LABELS).to_numpy()]

    def into(self, column: SourceColumn) -> np.ndarray:
        """Per row: the code of its key in ``column`` (-1 where absent, the null code for a null)."""
        found = column.keys.get_indexer(self.keys) if len(self.keys) else np.zeros(0, dtype=np.int64)
        mapped = found[np.maximum(self.codes, 0)] if len(found) else np.full(len(self.codes), -1)
        return np.where(self.codes >= 0, mapped, column.null_code).astype(np.int64)


@dataclass(slots=True)
class SourceColumn:
    """One column of a copy: per-row codes into its distinct keys, the keys, and their counts."""

    name: str
    codes: np.ndarray
    keys: pd.Index
    counts: np.ndarray
    numbers: np.ndarray | None = None
    #: The distinct numbers, sorted (numeric columns): how dense the domain is around a value.
    sorted_numbers: np.ndarray | None = None

    @property
    def distinct(self) -> int:
        return len(self.keys)

    @property
    def null_code(self) -> int:
        return len(self.keys)


@dataclass(slots=True)
class SourceCopy:
    """A granted copy, indexed for domain lookups and re-aggregation."""

    name: str
    rows: int
    columns: list[SourceColumn] = field(default_factory=list)
    #: The datasets joined into this source (a link group's joined view, ``sandbox.guard.joined``);
    #: empty for a granted copy itself.
    members: tuple[str, ...] = ()
    #: Aggregates of this copy already computed for a judgement, kept with it for the next (issue 21):
    #: a worker keeps one object per file version (``sandbox.guard_sources``), and an object's rows and
    #: columns never change once indexed. Keyed by the identities of its own columns (see
    #: ``sandbox.guard.explain``), bounded there; never compared, never shown.
    memo: dict[tuple[object, ...], object] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, name: str, path: Path) -> SourceCopy:
        table = pq.read_table(path, use_pandas_metadata=False)
        return cls.from_frame(name, table.to_pandas(ignore_metadata=True))

    @classmethod
    def from_frame(cls, name: str, frame: pd.DataFrame) -> SourceCopy:
        columns: list[SourceColumn] = []
        for column in frame.columns:
            series = frame[column]
            codes, keys = distinct_keys(series)
            if len(keys):  # the lookup table every judgement probes, built with the index, not by a judgement
                keys.get_indexer(keys[:1])
            counts = np.bincount(codes[codes >= 0], minlength=len(keys)) if len(keys) else np.zeros(0, np.int64)
            numbers = None
            ordered = None
            if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
                numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
                ordered = np.unique(numbers[np.isfinite(numbers)])
            columns.append(SourceColumn(str(column), codes, keys, counts, numbers, ordered))
        return cls(name, len(frame), columns)

    def column_codes(self, column: SourceColumn) -> np.ndarray:
        """Per row code with nulls as the null code (so groups keep null as a value)."""
        return np.where(column.codes >= 0, column.codes, column.null_code)


def combine(parts: Sequence[tuple[np.ndarray, int]], *others: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One int64 key per row from several code columns (``(codes, radix)``), for the source rows and
    for any other rows coded the same way (``others``: one code array per part each); keys agree
    across all of them. Re-numbers jointly before a product would overflow."""
    keys = [parts[0][0].astype(np.int64)] + [o[0].astype(np.int64) for o in others]
    for i, (codes, radix) in enumerate(parts[1:], start=1):
        width = radix + 1
        if max(int(k.max(initial=0)) for k in keys) + 1 > (2**62) // width:
            joint, _ = pd.factorize(np.concatenate(keys))
            keys = np.split(joint.astype(np.int64), np.cumsum([len(k) for k in keys])[:-1])
        keys = [keys[0] * width + codes] + [k * width + o[i] for k, o in zip(keys[1:], others, strict=True)]
    return keys


__all__ = [
    "INDICATOR_MAX_VALUES",
    "MARGIN_LABELS",
    "KeyedColumn",
    "SourceColumn",
    "SourceCopy",
    "combine",
    "distinct_keys",
    "keys_of",
]
