"""The desensitization actions of a policy, vectorized over a whole column.

Why vectorized: a desensitized copy is made of every catalogued table, some with millions of rows,
on a two-core host. Per-cell Python on pandas 3's Arrow strings costs about 6x a vectorized pass
(PITFALLS.md), so every action here works on whole columns with pyarrow.compute, numpy or DuckDB,
and anything expensive per value (a keyed hash, a regular expression with captures) runs once per
*distinct* value and is mapped back through the codes of ``pd.factorize``.

The techniques are those of GB/T 37964-2019 附录A (suppression 抑制 incl. masking 屏蔽,
pseudonymization 假名化, generalization 泛化, randomization 随机化); ``desensitize.policy.TECHNIQUES``
maps each action to its technique. Nulls stay null under every action: "unknown" must not turn
into a value, and a value must not turn into "unknown" unless the action suppresses it.

Pseudonyms (the person key later jobs join and count on): HMAC-SHA256 keyed with the instance
pepper over ``f"{family}\\x1f{normalised value}"``, hex, truncated to 128 bits. ``family`` is the
column type, so 公民身份号码 in one table and 身份证号 in another give the same pseudonym and licensed
joins still work; normalisation (full-width to ASCII, no spaces or hyphens inside numbers, upper-case
check character, no +86 prefix) makes differently typed copies of one identifier agree. Without the
pepper a pseudonym cannot be reversed or recomputed, which is what makes it 去标识化 (个人信息保护法
第七十三条) rather than a plain hash anyone could brute-force over the 10^9 possible ID numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.policy import Rule

__all__ = [
    "ADDRESS_LEVELS",
    "COMPOUND_SURNAMES",
    "PSEUDONYM_HEX_CHARS",
    "TextRedactor",
    "TransformError",
    "address_parts",
    "apply_rule",
    "arrow_strings",
    "as_text",
    "band",
    "date_band",
    "date_year",
    "describe",
    "generalize_address",
    "keyed_hex",
    "mask",
    "mask_name",
    "mostly_distinct",
    "nfkc",
    "normalise_identifiers",
    "on_rows",
    "pseudonymize",
    "randomize",
    "redact_text",
    "round_values",
    "year_band_label",
]

#: Hex characters of a pseudonym: 128 bits of HMAC-SHA256.
PSEUDONYM_HEX_CHARS = 32

#: Below this many distinct values the keyed hashes are computed in Python (DuckDB's start-up
#: would dominate); above it in DuckDB, which uses every core. Measured on the 2-core host, 1M
#: distinct IDs: Python hashlib with copied inner/outer states 0.79 s (+0.09 s to build the list),
#: DuckDB sha256(opad || unhex(sha256(ipad || v))) 0.62 s with 2 threads, 1.11 s with one.
DUCKDB_MIN_VALUES = 20_000

TextRedactor = Callable[..., pd.Series]


class TransformError(ValueError):
    """An action that cannot apply to a column's values; the message names column and action."""


# ---------------------------------------------------------------------------
# Arrow plumbing
# ---------------------------------------------------------------------------


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
    if pd.api.types.is_integer_dtype(dtype):
        return values.astype("Int64").astype("str")
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
        return _series(table.take(_indices(codes)), values.index)
    return values.astype("str")


def _indices(codes: np.ndarray) -> pa.Array:
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


def _series(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(array, index=index, dtype="str")


def _text_arrow(values: pd.Series) -> pa.ChunkedArray:
    """The column's text (``as_text``) as Arrow strings."""
    return arrow_strings(as_text(values))


def _per_distinct(values: pd.Series, fn: Callable[[pa.Array], pa.Array]) -> pa.Array | pa.ChunkedArray:
    """``fn`` applied once per distinct value and mapped back; nulls stay null."""
    codes, uniques = pd.factorize(values)
    distinct = pa.array(uniques).cast(pa.large_string()) if len(uniques) else pa.array([], pa.large_string())
    return fn(distinct).take(_indices(codes))  # all-null indices when there is nothing: nulls of fn's type


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
    return repeats <= sample * sample / n


_NEEDS_NFKC = r"[^\x00-\x7F\x{4E00}-\x{9FFF}]"


def nfkc(array: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Unicode NFKC (full-width digits and letters to ASCII, ideographic space to space …).

    Only rows holding a character outside ASCII and the CJK Unified Ideographs are normalised:
    NFKC leaves those two ranges unchanged, so the result equals NFKC of every row, at a fraction
    of the cost on columns of Chinese text (0.39 s per million addresses for a blanket NFKC).
    """
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


# ---------------------------------------------------------------------------
# Normalisation and pseudonyms
# ---------------------------------------------------------------------------

#: Types whose values are codes written with optional separators: compared without spaces,
#: hyphens, dots or middle dots, in upper case (GB 11643-1999's check character 'X' is often typed 'x').
_COMPACT_FAMILIES = frozenset(
    {"cn_resident_id", "passport", "travel_permit", "bank_card", "uscc", "license_plate", "cn_phone", "cn_landline"}
)
#: Types compared without any whitespace (a name or an address typed with spaces is the same one).
_SPACELESS_FAMILIES = frozenset({"person_name", "address", "household_region", "company_name"})
_SEPARATORS = r"[\s\-‐‑‒–—―·•.]+"


def normalise_identifiers(values: pd.Series, family: str) -> pa.Array | pa.ChunkedArray:
    """The canonical text of each value of a column of type ``family``; empty values become null.

    Canonical means: surrounding whitespace removed, NFKC (full-width to ASCII), and per family:
    codes without separators and in upper case; mobile numbers without a +86/0086 prefix; landlines
    with a leading 0 instead of +86; e-mails in lower case; names and addresses without spaces.
    """
    array = pc.utf8_trim_whitespace(nfkc(_text_arrow(values)))
    if family in _COMPACT_FAMILIES:
        array = pc.utf8_upper(pc.replace_substring_regex(array, _SEPARATORS, ""))
        if family == "cn_phone":
            array = pc.replace_substring_regex(array, r"^(?:\+86|0086|86)(1[3-9][0-9]{9})$", r"\1")
        elif family == "cn_landline":
            array = pc.replace_substring_regex(array, r"^(?:\+86|0086)0?([1-9][0-9]{8,10})$", r"0\1")
    elif family in _SPACELESS_FAMILIES:
        array = pc.replace_substring_regex(array, r"\s+", "")
    elif family == "email":
        array = pc.utf8_lower(array)
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.large_string()), array)


def _hmac_pads(pepper: bytes) -> tuple[bytes, bytes]:
    """RFC 2104 inner and outer key pads for SHA-256 (block size 64)."""
    key = hashlib.sha256(pepper).digest() if len(pepper) > 64 else pepper
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _keyed_hex_python(messages: list[str | None], pepper: bytes) -> list[str | None]:
    ipad, opad = _hmac_pads(pepper)
    inner, outer = hashlib.sha256(ipad), hashlib.sha256(opad)
    out: list[str | None] = []
    for message in messages:
        if message is None:
            out.append(None)
            continue
        h = inner.copy()
        h.update(message.encode("utf-8"))
        o = outer.copy()
        o.update(h.digest())
        out.append(o.hexdigest()[:PSEUDONYM_HEX_CHARS])
    return out


def _keyed_hex_duckdb(messages: pa.Array | pa.ChunkedArray, pepper: bytes) -> pa.Array:
    import duckdb

    ipad, opad = _hmac_pads(pepper)
    with duckdb.connect() as con:
        con.execute("SET preserve_insertion_order = true")
        con.register("messages", pa.table({"v": messages}))
        result = con.sql(
            "SELECT substr(sha256($opad::BLOB || unhex(sha256($ipad::BLOB || encode(v)))), 1, $n) AS h FROM messages",
            params={"opad": opad, "ipad": ipad, "n": PSEUDONYM_HEX_CHARS},
        ).to_arrow_table()
    return result.column(0).combine_chunks().cast(pa.large_string())


def keyed_hex(messages: pa.Array | pa.ChunkedArray, pepper: bytes) -> pa.Array:
    """HMAC-SHA256(pepper, message) of each string, hex, 128 bits; nulls stay null.

    Two implementations giving identical results (tested against ``hmac.new``): Python's hashlib
    with copied inner/outer states for few values, DuckDB's vectorized sha256 for many.
    """
    if not pepper:
        raise ValueError("the pepper must not be empty: pseudonyms without a key are reversible by brute force")
    if len(messages) < DUCKDB_MIN_VALUES:
        return pa.array(_keyed_hex_python(messages.to_pylist(), pepper), type=pa.large_string())
    return _keyed_hex_duckdb(messages, pepper)


def pseudonymize(values: pd.Series, *, pepper: bytes, family: str) -> pd.Series:
    """Keyed 128-bit pseudonyms (hex) of the normalised values.

    A column with repeats is hashed once per distinct value; a column of (nearly) distinct values
    such as an ID column is hashed row by row, since factorizing it would cost more than it saves.
    """
    normalised = _series(normalise_identifiers(values, family), values.index)
    prefix = pa.scalar(f"{family}\x1f", pa.large_string())

    def hash_all(strings: pa.Array | pa.ChunkedArray) -> pa.Array:
        return keyed_hex(pc.binary_join_element_wise(prefix, strings, pa.scalar("", pa.large_string())), pepper)

    if mostly_distinct(normalised):  # an ID column: factorizing would find nothing to share
        return _series(hash_all(arrow_strings(normalised)), values.index)
    return _series(_per_distinct(normalised, hash_all), values.index)


# ---------------------------------------------------------------------------
# Masking (屏蔽)
# ---------------------------------------------------------------------------


def mask(
    values: pd.Series, *, keep_start: int = 0, keep_end: int = 0, char: str = "*", family: str | None = None
) -> pd.Series:
    """Characters between the first ``keep_start`` and last ``keep_end`` replaced by ``char``.

    Codes are masked in canonical form (so "+86 138-0279-0360" and "13802790360" mask alike).
    A value no longer than ``keep_start + keep_end`` is masked whole: showing all of it would
    not be masking.
    """
    if family is not None and family in _COMPACT_FAMILIES:
        array = normalise_identifiers(values, family)
    else:
        array = pc.utf8_trim_whitespace(nfkc(_text_arrow(values)))
    length = pc.utf8_length(array)
    kept = keep_start + keep_end
    hidden = pc.max_element_wise(pc.subtract(length, kept), 0)
    start = pc.utf8_slice_codeunits(array, 0, keep_start)
    end = pc.utf8_slice_codeunits(array, -keep_end) if keep_end else pa.scalar("", pa.large_string())
    stars = pc.binary_repeat(pa.scalar(char, pa.large_string()), hidden)
    partial = pc.binary_join_element_wise(start, stars, end, pa.scalar("", pa.large_string()))
    whole = pc.binary_repeat(pa.scalar(char, pa.large_string()), length)
    return _series(pc.if_else(pc.less_equal(length, kept), whole, partial), values.index)


#: Two-character surnames (复姓) kept whole by ``mask_name``.
COMPOUND_SURNAMES: tuple[str, ...] = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "长孙", "宇文", "夏侯",
    "轩辕", "端木", "独孤", "南宫", "西门", "万俟", "司徒", "司空", "澹台", "公冶", "太叔", "申屠", "呼延",
    "钟离", "宗政", "濮阳", "淳于", "单于", "闻人", "赫连", "百里", "东郭", "左丘", "第五", "拓跋",
)  # fmt: skip


def mask_name(values: pd.Series, *, stars: int | None = 2, char: str = "*") -> pd.Series:
    """The surname kept, the given name masked: 张三 -> 张**, 欧阳娜娜 -> 欧阳**.

    With ``stars`` a fixed number of mask characters also hides the given name's length (one
    or two characters, itself a hint); with None there is one per hidden character. Computed once
    per distinct name.
    """
    text = _series(pc.replace_substring_regex(nfkc(_text_arrow(values)), r"\s+", ""), values.index)
    compound = pa.array(COMPOUND_SURNAMES, type=pa.large_string())
    star = pa.scalar(char, pa.large_string())

    def masked(names: pa.Array) -> pa.Array:
        first_two = pc.utf8_slice_codeunits(names, 0, 2)
        is_compound = pc.is_in(first_two, value_set=compound)
        surname = pc.if_else(is_compound, first_two, pc.utf8_slice_codeunits(names, 0, 1))
        if stars is None:
            hidden = pc.max_element_wise(pc.subtract(pc.utf8_length(names), pc.utf8_length(surname)), 1)
        else:
            hidden = pa.scalar(stars, pa.int64())
        joined = pc.binary_join_element_wise(surname, pc.binary_repeat(star, hidden), pa.scalar("", pa.large_string()))
        return pc.if_else(pc.equal(names, ""), pa.scalar(None, pa.large_string()), joined)

    return _series(_per_distinct(text, masked), values.index)


# ---------------------------------------------------------------------------
# Generalization (泛化)
# ---------------------------------------------------------------------------

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
        text = _series(heads, values.index)
    return _per_distinct(text, _divisions)


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
    return _series(out, values.index)


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
    text = _series(nfkc(_text_arrow(values)), values.index)
    years = _per_distinct(text, lambda uniques: pc.struct_field(pc.extract_regex(uniques, _YEAR_PREFIX), [0]))
    return pd.Series(pc.cast(years, pa.int64()), index=values.index, dtype="Int64")


def _labels(keys: np.ndarray, label: Callable[[float], str], index: pd.Index) -> pd.Series:
    """A label per key (NaN -> null), formatted once per distinct key."""
    codes, uniques = pd.factorize(keys)
    table = pa.array([label(float(u)) for u in uniques], type=pa.large_string())
    return _series(table.take(_indices(codes)), index)


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
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    text = _series(nfkc(_text_arrow(values)), values.index)
    parsed = pd.to_numeric(text.str.replace(",", "", regex=False).str.strip(), errors="coerce")
    bad = parsed.isna() & text.notna()
    if bad.any():
        raise TransformError(f"needs numbers, but {int(bad.sum())} values are not, e.g. {text[bad].iloc[0]!r}")
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan)


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


# ---------------------------------------------------------------------------
# Randomization (随机化)
# ---------------------------------------------------------------------------


def _rng(pepper: bytes, column: str) -> np.random.Generator:
    """A generator seeded from the pepper and the column: the same copy made twice has the same noise.

    Fresh noise on every remake would let someone holding several copies average it away.
    """
    seed = hmac.new(pepper, f"keyong-randomize\x1f{column}".encode(), "sha256").digest()
    return np.random.default_rng(int.from_bytes(seed[:16], "big"))


def randomize(values: pd.Series, *, pepper: bytes, column: str, scale: float = 0.1, days: int = 15) -> pd.Series:
    """Noise addition (numbers: Laplace of scale ``scale`` x the column's std; dates: ±``days``) or,
    for anything else, a permutation of the column's values among its non-null rows (置换)."""
    rng = _rng(pepper, column)
    n = len(values)
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        shift = pd.to_timedelta(rng.integers(-days, days + 1, n), unit="D")
        return (values + shift.to_numpy()).astype(dtype)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        spread = float(np.nanstd(v)) if np.isfinite(v).any() else 0.0
        noisy = v + rng.laplace(0.0, scale * spread if spread > 0 else scale, n)
        if values.dtype.kind == "f":
            return pd.Series(noisy, index=values.index, dtype=dtype)
        out = pd.Series(np.round(noisy), index=values.index).astype("Int64")
        return out.astype(dtype) if values.dtype.kind in "iu" else out
    present = np.flatnonzero(values.notna().to_numpy(dtype=bool))
    shuffled = values.copy()
    shuffled.iloc[present] = values.iloc[rng.permutation(present)].to_numpy()
    return shuffled


# ---------------------------------------------------------------------------
# Free text
# ---------------------------------------------------------------------------


def redact_text(values: pd.Series, *, redactor: TextRedactor | None = None, names: Iterable[str] = ()) -> pd.Series:
    """Each entity in each text replaced by its type (``<CN_MOBILE>``, ``<PERSON>`` …).

    ``redactor`` defaults to ``desensitize.textscan.redact`` (presidio recognizers for Chinese
    identifiers), imported here so that this module does not depend on it at import time. ``names``
    are the person names of the dataset's own name columns: a name in a 备注 is found even when no
    pattern could find it.
    """
    if redactor is None:
        from desensitize.textscan import redact as redactor
    text = as_text(values)
    redacted = redactor(text, names=names)
    if len(redacted) != len(values):
        raise TransformError(f"the text redactor returned {len(redacted)} values for {len(values)}")
    out = pd.Series(redacted, dtype="str").set_axis(values.index)
    return out.where(text.notna())


# ---------------------------------------------------------------------------
# One rule on one column
# ---------------------------------------------------------------------------


def apply_rule(
    values: pd.Series,
    rule: Rule,
    *,
    pii_type: str | None,
    pepper: bytes,
    column: str,
    text_redactor: TextRedactor | None = None,
    names: Iterable[str] = (),
) -> pd.Series | None:
    """The column after ``rule``; None when the rule drops it. Never modifies ``values``."""
    action, params = rule.action, rule.params
    family = pii_type if pii_type is not None else f"untyped:{column}"
    try:
        if action == "keep":
            return values.copy()
        if action == "drop":
            return None
        if action == "pseudonymize":
            return pseudonymize(values, pepper=pepper, family=family)
        if action == "mask":
            return mask(values, family=pii_type, **params)
        if action == "mask_name":
            return mask_name(values, **params)
        if action == "generalize_address":
            return generalize_address(values, **params)
        if action == "date_year":
            return date_year(values)
        if action == "date_band":
            return date_band(values, **params)
        if action == "band":
            return band(values, **params)
        if action == "round":
            return round_values(values, **params)
        if action == "randomize":
            return randomize(values, pepper=pepper, column=column, **params)
        if action == "redact_text":
            return redact_text(values, redactor=text_redactor, names=names)
    except TransformError as exc:
        raise TransformError(f"column {column!r} ({pii_type or 'unrecognised'}): action {action!r}: {exc}") from None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as exc:
        raise TransformError(
            f"column {column!r} ({pii_type or 'unrecognised'}) of dtype {values.dtype}: action {action!r} "
            f"does not apply: {exc}"
        ) from None
    raise TransformError(f"column {column!r}: unknown action {action!r}")


def describe(rule: Rule) -> dict[str, Any]:
    """The rule as the report shows it: action, completed params, technique and basis."""
    return {"action": rule.action, "params": dict(rule.params), "technique": rule.technique, "basis": rule.basis}
