"""Generalization (泛化): addresses cut to their administrative divisions, numbers rounded.

Dates to months, years or bands are ``dates``; numbers to bands (midpoints, top/bottom coded) are
``banding``.

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

from desensitize.transforms.arrow import arrow_strings, as_text, mostly_distinct, nfkc, per_distinct, str_series
from desensitize.transforms.banding import numbers
from desensitize.transforms.errors import TransformError

__all__ = ["ADDRESS_LEVELS", "address_parts", "generalize_address", "round_values"]

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
    return _per_head(values, _divisions)


def _per_head(values: pd.Series, fn: Callable[[pa.Array], pa.Array]) -> pa.Array | pa.ChunkedArray:
    """``fn`` of each address's distinct head (or distinct address, when they repeat), mapped back to the rows."""
    text = as_text(values)
    if mostly_distinct(text):
        cut = pc.utf8_slice_codeunits(arrow_strings(text), 0, _DIVISION_MAX_CHARS)
        heads = pc.list_element(pc.split_pattern_regex(cut, r"[0-9０-９]", max_splits=1), 0)
        text = str_series(heads, values.index)
    return per_distinct(text, fn)


def generalize_address(values: pd.Series, *, to: str = "district") -> pd.Series:
    """The address cut to its administrative division ``to`` (province, city or district).

    An address whose division at that level cannot be found is generalized to the finest level
    found above it; one with none at all becomes null (suppressed): keeping an address we cannot
    generalize would keep the street and house number. Computed once per distinct head.
    """
    if to not in ADDRESS_LEVELS:
        raise TransformError(f"unknown address level {to!r} (known: {', '.join(ADDRESS_LEVELS)})")

    def cut(heads: pa.Array) -> pa.Array:
        parts = _divisions(heads)
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
        return pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.large_string()), out).cast(pa.large_string())

    return str_series(_per_head(values, cut), values.index)


def round_values(values: pd.Series, *, to: float = 1.0) -> pd.Series:
    """Each number rounded to the nearest multiple of ``to`` (取整).

    Whole-number steps give integers (nullable Int64, or the column's own integer dtype when it
    has no nulls); fractional steps give floats rounded to the step's decimals (no 0.30000000000000004).
    """
    v = numbers(values)
    rounded = np.round(v / to) * to
    if float(to).is_integer() and values.dtype.kind != "f":
        out = pd.Series(rounded, index=values.index).astype("Int64")
        if values.dtype.kind in "iu" and not out.isna().any():
            return out.astype(values.dtype)
        return out
    decimals = max(0, -math.floor(math.log10(to))) + 1
    return pd.Series(np.round(rounded, decimals), index=values.index, dtype=np.float64)
