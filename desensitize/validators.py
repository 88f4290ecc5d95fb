"""Which values of a column are valid values of a column type: vectorized, one boolean per cell.

Why: a column's type is suggested from its header *and* from its values (``desensitize.profiling``),
and a policy may treat a cell differently when it is not what its column claims (an ID column
holding "不详"). Checksummed identifiers are checked by their standard (GB 11643-1999 公民身份号码,
GB 32100-2015 统一社会信用代码, Luhn for bank cards), other types by format. Cells are read as a
clerk writes them: surrounding spaces, full-width characters (mapped to ASCII one for one) and, in
numbers, spaces or hyphens between digit groups are accepted.

Everything runs on whole columns: pandas ``.str`` methods over Arrow strings (RE2 regular
expressions, hence no lookarounds in the patterns below) and numpy arithmetic
(``desensitize.identifiers``). No Python loop touches the rows (PITFALLS: per-cell Python on pandas
3 strings is ~6x slower). Nulls are never valid.

The identifiers' tests are not written here: each entity's module in ``desensitize.recognizers``
owns its format, check and cell test (``CELL_TESTS``), which this module asks; what is here are the
column types that have no recognizer in free text (region, gender, ethnicity, dates, amounts …).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from desensitize.recognizers import CELL_TESTS, CJK, PROVINCES, fullmatch_cells, normalize_codepoints

__all__ = ["ETHNICITIES", "GENDER_VALUES", "VALUE_TYPES", "normalized_text", "valid_values"]

#: The 56 ethnic groups of GB/T 3304-1991 (民族名称), as written in registers (with 族).
ETHNICITIES: frozenset[str] = frozenset(
    f"{name}族"
    for name in (
        "汉", "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白", "土家", "哈尼",
        "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜", "水", "东乡", "纳西", "景颇", "柯尔克孜", "土",
        "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬", "锡伯", "阿昌", "普米", "塔吉克", "怒", "乌孜别克",
        "俄罗斯", "鄂温克", "德昂", "保安", "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴", "珞巴", "基诺",
    )
)  # fmt: skip

#: Gender as registers write it, including the GB/T 2261.1 codes (0 未知, 1 男, 2 女, 9 未说明).
GENDER_VALUES: frozenset[str] = frozenset(
    {"男", "女", "男性", "女性", "未知", "未说明", "m", "f", "male", "female", "1", "2", "0", "9"}
)

_RELIGIONS: frozenset[str] = frozenset(
    {"佛教", "道教", "伊斯兰教", "天主教", "基督教", "新教", "东正教", "无", "无宗教信仰", "不信教", "其他"}
)

_FULLWIDTH_CLASS = "[\uff01-\uff5e\u3000]"
_PROVINCE_RE = "(?:" + "|".join(PROVINCES) + ")"
_REGION_RE = (
    rf"(?:{_PROVINCE_RE}(?:[{CJK}]{{1,8}}?(?:自治州|地区|盟|市))?|[{CJK}]{{1,8}}?(?:自治州|地区|盟|市))"
    rf"(?:[{CJK}]{{1,8}}?(?:区|县|旗|市))?"
)
_COMPANY_RE = (
    r"(?:有限责任公司|股份有限公司|有限公司|公司|集团|合作社|经营部|商店|门市部|商行|协会|学会|基金会|事务所|中心|医院|"
    r"学校|厂|店|站|社|院|所)$"
)
_FREE_TEXT_PUNCTUATION = r"[\s，。；：！？、,.;:!?（）()“”\"]"
_LAT_LNG_RE = r"-?[0-9]{1,3}\.[0-9]+\s*[,，]\s*-?[0-9]{1,3}\.[0-9]+"


def _as_arrow_strings(values: pd.Series) -> pd.Series:
    """The column as pyarrow-backed strings; what cannot hold text identifiers becomes null.

    Integers are rendered (a phone number stored as int64 is still one); floats, booleans and dates
    are not, because an 18-digit number stored as a float has already lost digits.
    """
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return pd.Series(pd.NA, index=values.index, dtype="string[pyarrow]")
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return pd.Series(pd.NA, index=values.index, dtype="string[pyarrow]")
    if pd.api.types.is_integer_dtype(dtype):
        return values.astype("string[pyarrow]")
    if pd.api.types.is_object_dtype(dtype):
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind not in ("string", "empty", "integer"):
            values = values.where(values.map(lambda v: isinstance(v, str | int)).astype(bool), None)
    return values.astype("string[pyarrow]")


def normalized_text(values: pd.Series) -> pd.Series:
    """Stripped strings with full-width characters mapped to ASCII (nulls stay null).

    Only the rows holding a full-width character are rewritten, through one numpy pass over their
    joined code points, so an all-ASCII column costs one vectorized search.
    """
    text = _as_arrow_strings(values).str.strip()
    wide = text.str.contains(_FULLWIDTH_CLASS, regex=True).fillna(False).to_numpy(dtype=bool)
    if wide.any():
        rows = text[wide].tolist()
        separator = "\x00"
        joined = separator.join(rows)
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).copy()
        normalize_codepoints(codes)
        mapped = codes.tobytes().decode("utf-32-le").split(separator)
        if len(mapped) == len(rows):  # a row holding the separator itself keeps its full-width form
            text = text.copy()
            text.iloc[np.flatnonzero(wide)] = pd.Series(mapped, dtype="string[pyarrow]").str.strip().to_numpy()
    return text


def _bool(mask: pd.Series | np.ndarray, index: pd.Index) -> pd.Series:
    array = mask.to_numpy(dtype=bool, na_value=False) if isinstance(mask, pd.Series) else np.asarray(mask, bool)
    return pd.Series(array, index=index, dtype=bool)


def _numbers(values: pd.Series) -> pd.Series:
    """Numeric values of a column (numbers, or strings such as "3,200.50元", "45岁"), NaN otherwise."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(np.nan, index=values.index)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64")
    text = normalized_text(values).str.replace(r"[,，\s]|元|岁|周岁", "", regex=True)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _age(values: pd.Series) -> pd.Series:
    number = _numbers(values)
    return (number >= 0) & (number <= 150) & (number == np.floor(number))


_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d")


def _birth_date(values: pd.Series) -> pd.Series:
    today = pd.Timestamp(_dt.date.today())
    earliest = pd.Timestamp("1900-01-01")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        dates = values.dt.tz_localize(None) if getattr(values.dt, "tz", None) is not None else values
        return (dates >= earliest) & (dates <= today)
    text = normalized_text(values)
    # 1980年1月2日, 1980/01/02, 1980.1.2 -> 1980-1-2; a time of day makes it a timestamp, not a date.
    text = text.str.replace(r"[年月/.]", "-", regex=True).str.replace("日", "", regex=False)
    # The formats match disjoint texts, so a cell is valid when any format reads it as a date in range. Not
    # merged into one datetime64[ns] series: pandas reads 0001-01-01 or 9999-12-31 at a coarser unit, which
    # nanoseconds cannot hold (an OutOfBoundsDatetime at ingest: red team 21c F3).
    valid = pd.Series(False, index=values.index)
    for fmt in _DATE_FORMATS:
        attempt = pd.to_datetime(text.astype(object), format=fmt, errors="coerce")
        valid |= ((attempt >= earliest) & (attempt <= today)).fillna(False).astype(bool)
    return valid


def _free_text(text: pd.Series) -> pd.Series:
    return (
        (text.str.len() >= 10)
        & text.str.contains(f"[{CJK}]", regex=True)
        & text.str.contains(_FREE_TEXT_PUNCTUATION, regex=True)
    ).fillna(False)


def _precise_location(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        number = values.astype("float64")
        return (number.abs() <= 180) & (number != np.floor(number))  # coordinates carry decimals
    return fullmatch_cells(normalized_text(values), _LAT_LNG_RE)


def _income(values: pd.Series) -> pd.Series:
    return _numbers(values) >= 0


# The identifiers' cell tests are their recognizers' (``CELL_TESTS``); the types below have no
# recognizer in free text.
_TEXT_TESTS: dict[str, Callable[[pd.Series], pd.Series]] = {
    **CELL_TESTS,
    "household_region": lambda t: fullmatch_cells(t, _REGION_RE),
    "gender": lambda t: t.str.lower().isin(GENDER_VALUES),
    "ethnicity": lambda t: t.isin(ETHNICITIES) | (t + "族").isin(ETHNICITIES),
    "religion": lambda t: t.isin(_RELIGIONS),
    "company_name": lambda t: (t.str.len() >= 4) & t.str.contains(_COMPANY_RE, regex=True),
    "free_text": _free_text,
}
_VALUE_TESTS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "birth_date": _birth_date,
    "age": _age,
    "income": _income,
    "precise_location": _precise_location,
}

#: The column types whose values can be tested (health, biometric: no value test makes sense).
VALUE_TYPES: frozenset[str] = frozenset(_TEXT_TESTS) | frozenset(_VALUE_TESTS)


def valid_values(pii_type: str, values: pd.Series) -> pd.Series:
    """A boolean Series aligned with ``values``: which cells are valid values of ``pii_type``.

    Raises ValueError for a type without a value test (see ``VALUE_TYPES``). Null cells are False.
    """
    if not isinstance(values, pd.Series):
        values = pd.Series(values)
    if pii_type in _VALUE_TESTS:
        return _bool(_VALUE_TESTS[pii_type](values), values.index)
    if pii_type not in _TEXT_TESTS:
        raise ValueError(f"no value test for column type {pii_type!r}; testable: {sorted(VALUE_TYPES)}")
    return _bool(_TEXT_TESTS[pii_type](normalized_text(values)), values.index)
