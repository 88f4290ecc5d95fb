"""Arrow plumbing of the actions: columns as Arrow strings, once-per-distinct evaluation, NFKC.

Why: per-cell Python on pandas 3's Arrow strings costs about 6x a vectorized pass (PITFALLS.md), so
every action works on whole columns with pyarrow.compute, and anything expensive per value runs
once per *distinct* value and is mapped back through the codes of ``pd.factorize``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "arrow_strings",
    "as_text",
    "mostly_distinct",
    "nfkc",
    "on_rows",
    "per_distinct",
    "str_series",
    "take_indices",
    "text_arrow",
]


def as_text(values: pd.Series) -> pd.Series:
    """The column as pandas strings, nulls kept.

    Integers render as digits (a phone number stored as int64 is still a phone number), floats
    that hold integers without their ``.0``, dates as ``YYYY-MM-DD`` (with the time only when
    there is one), so that text actions and fingerprints see what a person would write.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        return values
    if isinstance(dtype, pd.CategoricalDtype):
        return as_text(values.astype(dtype.categories.dtype))
    if pd.api.types.is_bool_dtype(dtype):
        return values.map({True: "true", False: "false"}).astype("str")
    if pd.api.types.is_integer_dtype(dtype):  # unsigned: a uint64 above 2**63 has no Int64 (red team 21c F1)
        return values.astype("UInt64" if pd.api.types.is_unsigned_integer_dtype(dtype) else "Int64").astype("str")
    if pd.api.types.is_float_dtype(dtype):
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        integral = np.isfinite(array) & (np.floor(array) == array) & (np.abs(array) < 2**53)
        text = values.astype("str")
        if integral.any():
            as_int = pd.Series(np.where(integral, array, 0).astype(np.int64), index=values.index).astype("str")
            text = text.where(~integral, as_int)
        return text
    if pd.api.types.is_datetime64_any_dtype(dtype):
        codes, uniques = pd.factorize(values)
        if len(uniques) == 0:
            return pd.Series(pd.NA, index=values.index, dtype="str")
        dates_only = bool((uniques.normalize() == uniques).all())
        rendered = uniques.strftime("%Y-%m-%d" if dates_only else "%Y-%m-%dT%H:%M:%S")
        table = pa.array(list(rendered), type=pa.large_string())
        return str_series(table.take(take_indices(codes)), values.index)
    return values.astype("str")


def take_indices(codes: np.ndarray) -> pa.Array:
    """Factorize codes as Arrow take-indices, -1 (null) as a null index."""
    return pa.array(codes, mask=codes < 0)


def arrow_strings(text: pd.Series) -> pa.ChunkedArray:
    """Zero-copy Arrow view of a pandas string column (large_string, the storage of ``str``)."""
    array = pa.array(text.array) if not hasattr(text.array, "__arrow_array__") else text.array.__arrow_array__()
    if isinstance(array, pa.Array):
        array = pa.chunked_array([array])
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    return array


def str_series(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(array, index=index, dtype="str")


def text_arrow(values: pd.Series) -> pa.ChunkedArray:
    """The column's text (``as_text``) as Arrow strings."""
    return arrow_strings(as_text(values))


def per_distinct(values: pd.Series, fn: Callable[[pa.Array], pa.Array]) -> pa.Array | pa.ChunkedArray:
    """``fn`` applied once per distinct value and mapped back; nulls stay null.

    Arrow strings are dictionary-encoded by Arrow itself (a quarter of ``pd.factorize``'s time on a
    million addresses); both number the distinct values in order of first appearance."""
    if isinstance(values.dtype, pd.StringDtype) and hasattr(values.array, "__arrow_array__"):
        encoded = pc.dictionary_encode(arrow_strings(values).combine_chunks())
        distinct = encoded.dictionary.cast(pa.large_string())
        return fn(distinct).take(encoded.indices)
    codes, uniques = pd.factorize(values)
    distinct = pa.array(uniques).cast(pa.large_string()) if len(uniques) else pa.array([], pa.large_string())
    return fn(distinct).take(take_indices(codes))  # all-null indices when there is nothing: nulls of fn's type


def mostly_distinct(values: pd.Series, sample: int = 4096) -> bool:
    """Whether a column is so nearly all distinct that factorizing it first would not pay.

    Judged on a spread sample: a sample of s rows from U equally frequent values repeats about
    s²/2U of them, so at most s²/n repeats means U >= n/2 (a small sample of 25,000 birth dates
    looks distinct to a plain distinct-share test; this one is not fooled).
    """
    n = len(values)
    if n <= sample:
        return False
    picked = values.iloc[np.linspace(0, n - 1, sample).astype(np.int64)]
    repeats = sample - picked.nunique(dropna=False)
    return bool(repeats <= sample * sample / n)


_NEEDS_NFKC = r"[^\x00-\x7F\x{4E00}-\x{9FFF}]"


def nfkc(array: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Unicode NFKC (full-width digits and letters to ASCII, ideographic space to space …).

    Only rows holding a character outside ASCII and the CJK Unified Ideographs are normalised:
    NFKC leaves those two ranges unchanged, so the result equals NFKC of every row, at a fraction
    of the cost on columns of Chinese text (0.39 s per million addresses for a blanket NFKC). A column
    all of ASCII (IDs, phone numbers) is returned as it is after one byte test, not a regex per row
    (0.01 against 0.06-0.09 s per million).
    """
    if pc.all(pc.string_is_ascii(array)).as_py() is not False:  # nulls stay null either way
        return array
    return on_rows(array, pc.match_substring_regex(array, _NEEDS_NFKC), lambda a: pc.utf8_normalize(a, "NFKC"))


def on_rows(
    array: pa.ChunkedArray | pa.Array,
    rows: pa.ChunkedArray | pa.Array,
    fn: Callable[[pa.Array], pa.Array],
) -> pa.ChunkedArray | pa.Array:
    """``fn`` applied to the selected rows only, the others unchanged.

    For the expensive string functions that most rows do not need: a regular expression or NFKC
    over every row costs 0.1-0.4 s per million; over the few rows that need it, next to nothing.
    """
    if not pc.any(rows).as_py():
        return array
    flat = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    mask = rows.combine_chunks() if isinstance(rows, pa.ChunkedArray) else rows
    mask = pc.fill_null(mask, False)
    return pc.replace_with_mask(flat, mask, fn(pc.filter(flat, mask)))
