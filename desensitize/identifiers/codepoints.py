"""Strings as digit and code-point matrices, so identifier columns are checked with numpy only.

Why: column validation over millions of rows must not loop in Python (PITFALLS: per-cell Python
work on pandas 3 strings is ~6x slower); a fixed-width numpy unicode array is a contiguous block of
UCS-4 code points, which a zero-copy view turns into a matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["codepoint_matrix", "digits_value", "is_ascii_digits", "valid_dates"]

_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def is_ascii_digits(s: str) -> bool:
    """True for a non-empty string of ASCII 0-9 only.

    ``str.isdigit`` alone also accepts full-width and superscript digits ('１', '²'),
    which would then crash ``int()`` or silently change a checksum.
    """
    return s.isascii() and s.isdigit()


def codepoint_matrix(values: pd.Series | np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Unicode code points of each string as an (n, width) uint32 matrix, plus lengths.

    Missing values and non-strings get length -1, as the scalar validators answer False
    for non-strings: a numeric column cannot hold these identifiers faithfully (leading
    zeros, the letter X and digits beyond float precision are lost), so judging its
    decimal rendering would flag garbage.  Strings longer than ``width`` are truncated in
    the matrix; callers compare the returned lengths before trusting the matrix.  A
    fixed-width numpy unicode array is a contiguous block of UCS-4 code points, so a
    zero-copy view gives the matrix.
    """
    s = pd.Series(values, copy=False)
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if s.dtype == object:
        if pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
            # Mixed object column (rare with pandas 3's str dtype): keep only real strings.
            s = s.where(s.map(lambda v: isinstance(v, str)).astype(bool), None)
    elif not pd.api.types.is_string_dtype(s.dtype):
        s = pd.Series(pd.NA, index=s.index, dtype="string")
    s = s.astype("string")
    lengths = s.str.len().fillna(-1).to_numpy(dtype=np.int64)
    fixed = np.asarray(s.to_numpy(dtype=object, na_value=""), dtype=f"<U{width}")
    if fixed.size == 0:
        return np.zeros((0, width), dtype=np.uint32), lengths
    return fixed.view(np.uint32).reshape(len(fixed), width), lengths


def valid_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    dim = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    return np.asarray(month_ok & (day >= 1) & (day <= dim))


def digits_value(d: np.ndarray) -> np.ndarray:
    """Integer value of a (n, k) matrix of digits, most significant first."""
    out = np.zeros(d.shape[0], dtype=np.int64)
    for j in range(d.shape[1]):  # loops over k <= 8 columns, never over rows
        out = out * 10 + d[:, j]
    return out
