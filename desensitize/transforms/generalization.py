"""Generalization (泛化): addresses cut to their divisions, dates to years or bands, numbers to bands.

GB/T 37964-2019 附录A: a value replaced by the class it belongs to, so that fewer records share
each combination of quasi-identifiers less rarely (k-anonymity, ``desensitize.kanonymity``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.transforms.arrow import (
    arrow_strings,
    as_text,
    mostly_distinct,
    nfkc,
    per_distinct,
    str_series,
    take_indices,
    text_arrow,
)
from desensitize.transforms.errors import TransformError

__all__ = [
    "ADDRESS_LEVELS",
    "address_parts",
    "band",
    "date_band",
    "date_year",
    "generalize_address",
    "round_values",
    "year_band_label",
]

# Administrative divisions at the head of a Chinese address (GB/T 2260 names): province-level
# (省, 自治区, 特别行政区, the four municipalities), prefecture-level (市, 自治州, 地区, 盟) and
# county-level (区, 县, 旗, county-level 市). Each part is optional, because addresses often start
# below the province.
_DIVISION_PATTERN = (
    r"^(?P<province>(?:北京|天津|上海|重庆)市|[^省市区县旗盟0-9]{2,7}?(?:省|自治区|特别行政区))?"
    r"(?P<city>[^省市区县旗盟0-9]{1,8}?(?:市|自治州|地区|盟))?"
    r"(?P<district>[^省市区县旗盟0-9]{1,8}?(?:自治县|自治旗|新区|区|县|旗|市))?"
)
#: The divisions fit in this many characters; what follows is street and house, cut before parsing
#: so that the (slow, capturing) parse runs once per distinct division prefix, not per address.
_DIVISION_MAX_CHARS = 24
ADDRESS_LEVELS = ("province", "city", "district")


def _divisions(addresses: pa.Array) -> pa.StructArray:
    """(province, city, district) of distinct address texts (the capturing parse: slow, so per distinct)."""
    array = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(nfkc(addresses)), 0, _DIVISION_MAX_CHARS)
    array = pc.replace_substring_regex(array, r"\s+", "")
    heads = pc.list_element(pc.split_pattern_regex(array, r"[0-9]", max_splits=1), 0)
    return pc.extract_regex(heads, _DIVISION_PATTERN)


def address_parts(values: pd.Series) -> pa.StructArray | pa.ChunkedArray:
    """(province, city, district) of each address; empty strings where a part is missing.

    Addresses are nearly all distinct (house and room numbers) but their heads are not: each is
    cut before its first digit and the parse runs once per distinct head.
    """
    text = as_text(values)
    if mostly_distinct(text):
        cut = pc.utf8_slice_codeunits(arrow_strings(text), 0, _DIVISION_MAX_CHARS)
        heads = pc.list_element(pc.split_pattern_regex(cut, r"[0-9０-９]", max_splits=1), 0)
        text = str_series(heads, values.index)
    return per_distinct(text, _divisions)


def generalize_address(values: pd.Series, *, to: str = "district") -> pd.Series:
    """The address cut to its administrative division ``to`` (province, city or district).

    An address whose division at that level cannot be found is generalized to the finest level
    found above it; one with none at all becomes null (suppressed): keeping an address we cannot
    generalize would keep the street and house number.
    """
    if to not in ADDRESS_LEVELS:
        raise TransformError(f"unknown address level {to!r} (known: {', '.join(ADDRESS_LEVELS)})")
    parts = address_parts(values)
    province = pc.struct_field(parts, "province")
    city = pc.struct_field(parts, "city")
    district = pc.struct_field(parts, "district")
    empty = pa.scalar("", pa.large_string())
    if to == "province":
        out = province
    elif to == "city":
        # A municipality (北京市 …) is its own prefecture: 北京市朝阳区 -> 北京市.
        out = pc.binary_join_element_wise(province, city, empty)
    else:
        # Without a city part a district is only meaningful under a province (北京市朝阳区) or
        # alone (尖山区): keep whatever precedes it.
        out = pc.binary_join_element_wise(province, city, district, empty)
    out = pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.large_string()), out)
    return str_series(out, values.index)


_YEAR_PREFIX = r"^\s*(?P<year>(?:1[89]|20)[0-9]{2})"


def date_year(values: pd.Series) -> pd.Series:
    """The year of each date (nullable Int64).

    Dates, or text starting with a four-digit year (1990-05-03, 1990/5/3, 1990年5月, 19900503), or
    integers holding a year or YYYYMMDD. Text without a year becomes null.
    """
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return values.dt.year.astype("Int64")
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        numbers = pd.to_numeric(values).astype("Float64")
        years = numbers.where(numbers < 10_000, numbers // 10_000)
        if ((years < 1000) | (years > 9999)).any():
            raise TransformError("numbers that are neither years nor YYYYMMDD dates")
        return years.astype("Int64")
    text = str_series(nfkc(text_arrow(values)), values.index)
    years = per_distinct(text, lambda uniques: pc.struct_field(pc.extract_regex(uniques, _YEAR_PREFIX), [0]))
    return pd.Series(pc.cast(years, pa.int64()), index=values.index, dtype="Int64")


def _labels(keys: np.ndarray, label: Callable[[float], str], index: pd.Index) -> pd.Series:
    """A label per key (NaN -> null), formatted once per distinct key."""
    codes, uniques = pd.factorize(keys)
    table = pa.array([label(float(u)) for u in uniques], type=pa.large_string())
    return str_series(table.take(take_indices(codes)), index)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def year_band_label(start: float, width: int) -> str:
    """'1960-1964' for the band of ``width`` years starting at ``start``."""
    return f"{int(start)}-{int(start) + width - 1}"


def date_band(values: pd.Series, *, width: int = 5) -> pd.Series:
    """The band of ``width`` years each date falls in, e.g. '1960-1964' (bands start at multiples of width)."""
    years = date_year(values).to_numpy(dtype=np.float64, na_value=np.nan)
    start = np.floor(years / width) * width
    return _labels(start, lambda s: year_band_label(s, width), values.index)


def _numbers(values: pd.Series) -> np.ndarray:
    """float64 values with NaN for null; text must parse as numbers."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        raise TransformError(f"needs numbers, got {dtype}")
    if pd.api.types.is_numeric_dtype(dtype):
        return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan))
    text = str_series(nfkc(text_arrow(values)), values.index)
    parsed = pd.to_numeric(text.str.replace(",", "", regex=False).str.strip(), errors="coerce")
    bad = parsed.isna() & text.notna()
    if bad.any():
        raise TransformError(f"needs numbers, but {int(bad.sum())} values are not, e.g. {text[bad].iloc[0]!r}")
    return np.asarray(parsed.to_numpy(dtype=np.float64, na_value=np.nan))


def band(
    values: pd.Series,
    *,
    width: float | None = None,
    edges: list[float] | None = None,
    bottom: float | None = None,
    top: float | None = None,
) -> pd.Series:
    """Each number replaced by its band: '30-34' (integers), '[2.5, 5)' (fractions), '≥20000' (top-coded).

    Bands are ``width`` wide starting at multiples of ``width``, or run between consecutive
    ``edges``; values below ``bottom`` / at or above ``top`` (or outside the edges) share one
    open-ended band each (top and bottom coding, GB/T 37964-2019 泛化技术).
    """
    if (width is None) == (edges is None):
        raise TransformError("band needs exactly one of width or edges")
    v = _numbers(values)
    present = ~np.isnan(v)
    integral = bool(np.all(np.floor(v[present]) == v[present]))
    if edges is not None:
        bounds = np.asarray(edges, dtype=np.float64)
        integral = integral and bool(np.all(np.floor(bounds) == bounds))
        position = np.searchsorted(bounds, v, side="right") - 1
        key = np.where(present, position.astype(np.float64), np.nan)
        key = np.where(present & (position < 0), -np.inf, key)
        key = np.where(present & (position >= len(bounds) - 1), np.inf, key)
        low_label, high_label = f"<{_number(bounds[0])}", f"≥{_number(bounds[-1])}"

        def label(k: float) -> str:
            lo, hi = bounds[int(k)], bounds[int(k) + 1]
            return f"{_number(lo)}-{_number(hi - 1)}" if integral else f"[{_number(lo)}, {_number(hi)})"

    else:
        assert width is not None
        integral = integral and float(width).is_integer()
        key = np.floor(v / width) * width
        low_label, high_label = f"<{_number(bottom or 0)}", f"≥{_number(top or 0)}"

        def label(k: float) -> str:
            return f"{_number(k)}-{_number(k + width - 1)}" if integral else f"[{_number(k)}, {_number(k + width)})"

    if bottom is not None:
        key = np.where(present & (v < bottom), -np.inf, key)
        low_label = f"<{_number(bottom)}"
    if top is not None:
        key = np.where(present & (v >= top), np.inf, key)
        high_label = f"≥{_number(top)}"

    def any_label(k: float) -> str:
        if k == -np.inf:
            return low_label
        if k == np.inf:
            return high_label
        return label(k)

    return _labels(key, any_label, values.index)


def round_values(values: pd.Series, *, to: float = 1.0) -> pd.Series:
    """Each number rounded to the nearest multiple of ``to`` (取整).

    Whole-number steps give integers (nullable Int64, or the column's own integer dtype when it
    has no nulls); fractional steps give floats rounded to the step's decimals (no 0.30000000000000004).
    """
    v = _numbers(values)
    rounded = np.round(v / to) * to
    if float(to).is_integer() and values.dtype.kind != "f":
        out = pd.Series(rounded, index=values.index).astype("Int64")
        if values.dtype.kind in "iu" and not out.isna().any():
            return out.astype(values.dtype)
        return out
    decimals = max(0, -math.floor(math.log10(to))) + 1
    return pd.Series(np.round(rounded, decimals), index=values.index, dtype=np.float64)
