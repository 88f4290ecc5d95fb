"""Dates generalized (泛化) to a month, a year or a band of years — and still dates or numbers.

GB/T 37964-2019 附录A 泛化技术: a date replaced by the period it falls in. Why typed results: a copy
is for analysis (数据可用不可见), and ``df.groupby(year).size()``, ``WHERE year >= 1960`` or a DP
program's bounds need numbers, not labels such as '1960-1964'. So:

* ``date_month``: the first day of the month, still a date (datetime64);
* ``date_year``: the year as an integer (nullable Int64);
* ``date_band``: the first year of the band of ``width`` years, as an integer (Int64); the width is
  stated in the report (``representation``), since 1960 alone cannot say whether it is a year or
  the start of 1960-1964.

Inputs are dates, text starting with a four-digit year (1990-05-03, 1990/5/3, 1990年5月3日,
19900503) or integers holding a year (or YYYYMMDD). Datetime columns take the pandas path, text
the Arrow path (parsed once per distinct value); both give the same result for the same date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.transforms.arrow import nfkc, per_distinct, str_series, text_arrow
from desensitize.transforms.errors import TransformError

__all__ = ["date_band", "date_month", "date_year"]

_YEAR = r"(?P<year>(?:1[89]|20)[0-9]{2})"
_YEAR_PREFIX = rf"^\s*{_YEAR}"
# The month after the year: separated (1990-05-03, 1990/5, 1990年5月) or compact (19900503, 199005).
_YEAR_MONTH = rf"^\s*{_YEAR}(?:\s*[-/.年]\s*(?P<sep>[0-9]{{1,2}})|(?P<compact>[0-9]{{2}})(?:[0-9]{{2}})?\s*$)"


def _is_number(dtype: object) -> bool:
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def date_year(values: pd.Series) -> pd.Series:
    """The year of each date (nullable Int64).

    Dates, or text starting with a four-digit year, or integers holding a year or YYYYMMDD. Text
    without a year becomes null.
    """
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return values.dt.year.astype("Int64")
    if _is_number(dtype):
        numbers = pd.to_numeric(values).astype("Float64")
        years = numbers.where(numbers < 10_000, numbers // 10_000)
        if ((years < 1000) | (years > 9999)).any():
            raise TransformError("numbers that are neither years nor YYYYMMDD dates")
        return years.astype("Int64")
    text = str_series(nfkc(text_arrow(values)), values.index)
    years = per_distinct(text, lambda uniques: pc.struct_field(pc.extract_regex(uniques, _YEAR_PREFIX), [0]))
    return pd.Series(pc.cast(years, pa.int64()), index=values.index, dtype="Int64")


def date_band(values: pd.Series, *, width: int = 5) -> pd.Series:
    """The first year of the band of ``width`` years each date falls in (Int64; bands start at
    multiples of ``width``: 1963 -> 1960 for width 5)."""
    if width < 1:
        raise TransformError(f"band width must be a positive number of years, not {width}")
    years = date_year(values)
    return (years // width) * width


def _months_of_text(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(year, month) per row of a text column as float arrays, NaN where there is no valid month."""
    text = str_series(nfkc(text_arrow(values)), values.index)

    def parse(uniques: pa.Array) -> pa.Array:
        parts = pc.extract_regex(uniques, _YEAR_MONTH)
        # One of the two month groups matched; the other is '' (RE2's unmatched group): glue them.
        empty, dash = pa.scalar("", pa.large_string()), pa.scalar("-", pa.large_string())
        month = pc.binary_join_element_wise(pc.struct_field(parts, "sep"), pc.struct_field(parts, "compact"), empty)
        return pc.binary_join_element_wise(pc.struct_field(parts, "year"), month, dash)

    joined = pd.Series(per_distinct(text, parse), index=values.index, dtype="str")
    split = joined.str.split("-", n=1, expand=True)
    if split.shape[1] < 2:
        nothing = np.full(len(values), np.nan)
        return nothing, nothing
    year = pd.to_numeric(split[0]).to_numpy(dtype=np.float64, na_value=np.nan)
    month = pd.to_numeric(split[1]).to_numpy(dtype=np.float64, na_value=np.nan)
    return year, month


def _first_days(year: np.ndarray, month: np.ndarray, index: pd.Index) -> pd.Series:
    """datetime64 of the first day of (year, month); NaT where either is missing or the month is not 1..12."""
    valid = ~np.isnan(year) & ~np.isnan(month) & (month >= 1) & (month <= 12)
    months = np.where(valid, (np.where(valid, year, 1970) - 1970) * 12 + np.where(valid, month, 1) - 1, 0)
    stamps = months.astype(np.int64).astype("datetime64[M]").astype("datetime64[s]")
    return pd.Series(np.where(valid, stamps, np.datetime64("NaT", "s")), index=index, dtype="datetime64[s]")


def date_month(values: pd.Series) -> pd.Series:
    """Each date replaced by the first day of its month (a date, datetime64; the time of day is dropped).

    A datetime column keeps its unit and time zone; text and YYYYMMDD integers become datetime64[s].
    Text whose month cannot be read (a year alone, '1990-13-01') becomes null: a date that cannot
    be generalized is suppressed rather than kept.
    """
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        tz = getattr(dtype, "tz", None)
        naive = values.dt.tz_localize(None) if tz is not None else values
        stamps = naive.to_numpy()  # datetime64 of the column's unit, NaT for nulls
        months = pd.Series(stamps.astype("datetime64[M]").astype(stamps.dtype), index=values.index)
        return months.dt.tz_localize(tz) if tz is not None else months
    if _is_number(dtype):
        numbers = pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(numbers)
        if ((numbers[present] < 10_000_000) | (numbers[present] > 99_999_999)).any():
            raise TransformError("numbers that are not YYYYMMDD dates (a year alone has no month)")
        return _first_days(numbers // 10_000, (numbers // 100) % 100, values.index)
    year, month = _months_of_text(values)
    return _first_days(year, month, values.index)
