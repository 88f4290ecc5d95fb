"""Check characters of Chinese identifiers, scalar and vectorized.

Why this module exists: classifying a column as "公民身份号码" or "统一社会信用代码" by a
regular expression alone mistakes any 18-digit number (order numbers, timestamps, bank
references) for a personal identifier.  Every one of these identifiers carries a check
character defined by a national standard, and a value that passes both the format and
its check character is an identifier with near certainty (a random 18-character string
passes a mod-11 check one time in eleven, a mod-31 check one time in thirty-one).  The
same arithmetic lets the synthetic-data generator emit identifiers that downstream
recognizers accept, so the demo and the tests exercise the real code paths.

Standards implemented:

* GB 11643-1999 《公民身份号码》: 18 characters = 6-digit address code (GB/T 2260) +
  8-digit birth date YYYYMMDD + 3-digit sequence code (odd for men, even for women) +
  1 check character computed with ISO 7064:1983 MOD 11-2.  The legacy 15-digit number
  (before 1999) has a 6-digit birth date YYMMDD in the 1900s and no check character.
* GB 32100-2015 《法人和其他组织统一社会信用代码编码规则》: 18 characters = registration
  authority (1) + entity category (1) + administrative division code (6) + subject
  identifier, i.e. the organization code of GB 11714 (9) + check character (1), over a
  31-character alphabet without I, O, Z, S, V, check computed modulo 31.
* GB 11714-1997 《全国组织机构代码编制规则》: 8 body characters + 1 check character,
  modulo 11 with weights 3, 7, 9, 10, 5, 8, 4, 2; 10 is written 'X' and 11 is written '0'.
* Luhn (ISO/IEC 7812-1 Annex B): bank card numbers (银行卡号).

Scalar functions take and return Python strings and never raise on malformed input (they
answer False or None).  Vectorized functions work on numpy digit matrices or pandas
Series with numpy arithmetic only: column validation over millions of rows must not loop
in Python (see PITFALLS: per-cell Python work on pandas 3 strings is ~6x slower).

This module imports nothing from other Keyong packages.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

__all__ = [
    "ORG_CODE_WEIGHTS",
    "RESIDENT_ID_CHECK_MAP",
    "RESIDENT_ID_WEIGHTS",
    "USCC_ALPHABET",
    "USCC_REGISTRATION_AUTHORITIES",
    "USCC_WEIGHTS",
    "codepoint_matrix",
    "id_check_char",
    "is_luhn_valid",
    "is_valid_org_code",
    "is_valid_resident_id",
    "is_valid_uscc",
    "luhn_check_digit",
    "org_code_check_char",
    "org_code_check_chars",
    "resident_id_birth_date",
    "resident_id_check_chars",
    "resident_id_gender",
    "uscc_check_char",
    "uscc_check_chars",
    "valid_luhn",
    "valid_resident_ids",
    "valid_usccs",
]

# ---------------------------------------------------------------------------
# GB 11643-1999 公民身份号码
# ---------------------------------------------------------------------------

#: Weight of position i (0-based, left to right) of the first 17 digits: 2^(17-i) mod 11
#: (GB 11643-1999 §8.2, ISO 7064 MOD 11-2).  Equals 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2.
RESIDENT_ID_WEIGHTS: tuple[int, ...] = tuple(pow(2, 17 - i, 11) for i in range(17))

#: Check character indexed by (weighted sum mod 11); the value 10 is written 'X'.
RESIDENT_ID_CHECK_MAP = "10X98765432"

_ID_WEIGHTS_NP = np.array(RESIDENT_ID_WEIGHTS, dtype=np.int32)
_ID_CHECK_NP = np.array(list(RESIDENT_ID_CHECK_MAP), dtype="<U1")
# Numeric value of each check character (what the check character "stands for"):
# index k -> value (12 - k) mod 11, so that sum + value == 1 (mod 11).
_ID_CHECK_VALUE_NP = np.array([(12 - k) % 11 for k in range(11)], dtype=np.int64)

_EARLIEST_BIRTH = _dt.date(1900, 1, 1)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _is_ascii_digits(s: str) -> bool:
    """True for a non-empty string of ASCII 0-9 only.

    ``str.isdigit`` alone also accepts full-width and superscript digits ('１', '²'),
    which would then crash ``int()`` or silently change a checksum.
    """
    return s.isascii() and s.isdigit()


def id_check_char(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits of a resident ID.

    The weighted sum S = sum(a_i * 2^(17-i) mod 11) selects "10X98765432"[S mod 11], so that
    the full 18-character number satisfies ISO 7064 MOD 11-2.  Raises ValueError when
    ``first17`` is not exactly 17 ASCII digits, because a check character of anything else
    has no meaning and a silent answer would hide a caller's bug.
    """
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError(f"expected 17 ASCII digits, got {first17!r}")
    total = sum(int(c) * w for c, w in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return RESIDENT_ID_CHECK_MAP[total % 11]


def _real_date(year: int, month: int, day: int) -> _dt.date | None:
    try:
        return _dt.date(year, month, day)
    except ValueError:
        return None


def _parse_resident_id(s: object, today: _dt.date | None = None) -> tuple[_dt.date, int] | None:
    """Return (birth date, sequence digit) of a valid resident ID, or None.

    One parser serves validation, birth date and gender so that they can never disagree
    about which numbers are valid.
    """
    if not isinstance(s, str):
        return None
    today = today or _dt.date.today()
    if len(s) == 18:
        body, check = s[:17], s[17]
        if not _is_ascii_digits(body) or body[0] == "0":
            return None
        if check.upper() != id_check_char(body):
            return None
        birth = _real_date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
        if birth is None or not (_EARLIEST_BIRTH <= birth <= today):
            return None
        return birth, int(body[16])
    if len(s) == 15:
        # Legacy number issued before GB 11643-1999: YYMMDD in the 1900s, no check char.
        if not _is_ascii_digits(s) or s[0] == "0":
            return None
        birth = _real_date(1900 + int(s[6:8]), int(s[8:10]), int(s[10:12]))
        if birth is None or birth > today:
            return None
        return birth, int(s[14])
    return None


def is_valid_resident_id(s: str, today: _dt.date | None = None) -> bool:
    """True if ``s`` is a valid 18-digit (GB 11643-1999) or legacy 15-digit resident ID.

    18 digits: the first 17 are ASCII digits, the address code does not start with 0
    (GB/T 2260 province codes run 11-82), the embedded YYYYMMDD is a real calendar date
    between 1900-01-01 and ``today`` (default: the current date), and the check character
    matches ('X' or 'x' for ten; lower case is accepted because clerks type it).
    15 digits: all ASCII digits, address code not starting with 0, and YYMMDD a real date
    in the 1900s.  Any other input, including non-strings, is invalid.
    """
    return _parse_resident_id(s, today) is not None


def resident_id_birth_date(s: str, today: _dt.date | None = None) -> _dt.date | None:
    """Birth date encoded in a valid resident ID, None if the ID is invalid."""
    parsed = _parse_resident_id(s, today)
    return None if parsed is None else parsed[0]


def resident_id_gender(s: str, today: _dt.date | None = None) -> str | None:
    """Return "男" or "女" from the parity of the sequence code's last digit, None if invalid.

    GB 11643-1999 §5.3: the sequence code is odd for men and even for women; its last
    digit is position 17 of an 18-digit number and position 15 of a 15-digit one.
    """
    parsed = _parse_resident_id(s, today)
    if parsed is None:
        return None
    return "男" if parsed[1] % 2 == 1 else "女"


# ---------------------------------------------------------------------------
# GB 32100-2015 统一社会信用代码 and GB 11714-1997 组织机构代码
# ---------------------------------------------------------------------------

#: The 31 characters a USCC may use: digits and upper-case letters except I, O, Z, S, V,
#: which are too easily confused with 1, 0, 2, 5, U (GB 32100-2015 §4.2, table 1).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

#: Weight of positions 1-17 (GB 32100-2015 §4.3): 3^(i-1) mod 31.
USCC_WEIGHTS: tuple[int, ...] = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

#: Registration authorities of position 1 (GB 32100-2015 appendix A): 1 机构编制, 2 外交,
#: 3 司法行政, 4 文化, 5 民政, 6 旅游, 7 宗教, 8 工会, 9 工商, A 中央军委改革和编制办公室,
#: B-G 其他 (农业, 等), N 农业, Y 其他.
USCC_REGISTRATION_AUTHORITIES = "123456789ABCDEFGNY"

#: GB 11714-1997 weights of the 8 body characters of an organization code.
ORG_CODE_WEIGHTS: tuple[int, ...] = (3, 7, 9, 10, 5, 8, 4, 2)

_USCC_INDEX = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS_NP = np.array(USCC_WEIGHTS, dtype=np.int64)
_USCC_ALPHABET_NP = np.array(list(USCC_ALPHABET), dtype="<U1")
_ORG_WEIGHTS_NP = np.array(ORG_CODE_WEIGHTS, dtype=np.int64)
_ORG_CHECK_NP = np.array(list("0123456789X0"), dtype="<U1")  # index = 11 - (sum mod 11)

# Code point -> USCC alphabet index (-1 outside), and -> GB 11714 value (-1 outside).
_USCC_LUT = np.full(128, -1, dtype=np.int64)
for _i, _c in enumerate(USCC_ALPHABET):
    _USCC_LUT[ord(_c)] = _i
_ORG_LUT = np.full(128, -1, dtype=np.int64)
for _i in range(10):
    _ORG_LUT[ord("0") + _i] = _i
for _i in range(26):
    _ORG_LUT[ord("A") + _i] = 10 + _i
_AUTHORITY_LUT = np.zeros(128, dtype=bool)
for _c in USCC_REGISTRATION_AUTHORITIES:
    _AUTHORITY_LUT[ord(_c)] = True
del _i, _c


def _org_char_value(c: str) -> int:
    """GB 11714 value of a body character: '0'-'9' -> 0-9, 'A'-'Z' -> 10-35."""
    if "0" <= c <= "9":
        return ord(c) - ord("0")
    if "A" <= c <= "Z":
        return ord(c) - ord("A") + 10
    raise ValueError(f"not an organization-code character: {c!r}")


def org_code_check_char(first8: str) -> str:
    """GB 11714-1997 check character of an 8-character organization-code body.

    C = 11 - (sum(value_i * w_i) mod 11), written 'X' for 10 and '0' for 11, with digits
    worth 0-9 and letters A-Z worth 10-35.  Positions 9-17 of a USCC are such a code
    (body + check), which is why the generator needs it.  Raises ValueError on input that
    is not 8 characters of 0-9/A-Z.
    """
    if len(first8) != 8:
        raise ValueError(f"expected 8 characters, got {first8!r}")
    total = sum(_org_char_value(c) * w for c, w in zip(first8, ORG_CODE_WEIGHTS, strict=True))
    return "0123456789X0"[11 - total % 11]


def is_valid_org_code(s: str) -> bool:
    """True if ``s`` is 9 characters of 0-9/A-Z whose last one is the GB 11714 check.

    A hyphen before the check character (printed form "12345678-9") is not accepted:
    callers normalise printing conventions before validating.
    """
    if not isinstance(s, str) or len(s) != 9 or not s.isascii():
        return False
    try:
        return org_code_check_char(s[:8]) == s[8]
    except ValueError:
        return False


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character for the first 17 characters of a USCC.

    C = 31 - (sum(index_i * w_i) mod 31), where index is the position in
    ``USCC_ALPHABET``; 31 is written as index 0.  Raises ValueError when ``first17`` is not
    17 characters of the USCC alphabet.
    """
    if len(first17) != 17 or any(c not in _USCC_INDEX for c in first17):
        raise ValueError(f"expected 17 characters of the USCC alphabet, got {first17!r}")
    total = sum(_USCC_INDEX[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(s: str, strict_org_code: bool = False) -> bool:
    """True if ``s`` is a well-formed 统一社会信用代码 with a correct check character.

    Checks: 18 characters, all from the 31-character alphabet (upper case only: the
    standard prints upper case, and lower-case input is a sign of a different kind of
    string), registration authority (position 1) in ``USCC_REGISTRATION_AUTHORITIES``,
    positions 3-8 digits (a GB/T 2260 division code), and the mod-31 check character.
    With ``strict_org_code`` positions 9-17 must also be a GB 11714 organization code with
    a correct check.  That is off by default because codes issued to some individual
    businesses (个体工商户) carry a subject identifier that is not a GB 11714 code.
    """
    if not isinstance(s, str) or len(s) != 18:
        return False
    if any(c not in _USCC_INDEX for c in s):
        return False
    if s[0] not in USCC_REGISTRATION_AUTHORITIES or not _is_ascii_digits(s[2:8]):
        return False
    if uscc_check_char(s[:17]) != s[17]:
        return False
    return not strict_org_code or is_valid_org_code(s[8:17])


# ---------------------------------------------------------------------------
# Luhn (bank cards)
# ---------------------------------------------------------------------------


def _luhn_sum(digits: str, double_rightmost: bool) -> int:
    total = 0
    double = double_rightmost
    for c in reversed(digits):
        d = ord(c) - 48
        if double:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        double = not double
    return total


def luhn_check_digit(digits: str) -> str:
    """The Luhn digit to append to ``digits`` (a bank card number without its last digit).

    Doubling starts at the rightmost payload digit, because that digit becomes the second
    from the right once the check digit is appended.  Raises ValueError on non-digits.
    """
    if not _is_ascii_digits(digits):
        raise ValueError(f"expected ASCII digits, got {digits!r}")
    return str((10 - _luhn_sum(digits, double_rightmost=True) % 10) % 10)


def is_luhn_valid(s: str) -> bool:
    """True if ``s`` is at least two ASCII digits and passes the Luhn check."""
    if not isinstance(s, str) or len(s) < 2 or not _is_ascii_digits(s):
        return False
    return _luhn_sum(s, double_rightmost=False) % 10 == 0


# ---------------------------------------------------------------------------
# Vectorized versions
# ---------------------------------------------------------------------------


def resident_id_check_chars(first17: np.ndarray) -> np.ndarray:
    """Check characters for many resident IDs at once.

    ``first17`` is an (n, 17) integer matrix of digits 0-9 (any integer dtype); the result
    is an (n,) array of dtype '<U1'.  One matrix product replaces n Python loops, which is
    what lets the generator emit a million IDs in well under a second.
    """
    m = np.asarray(first17)
    if m.ndim != 2 or m.shape[1] != 17:
        raise ValueError(f"expected an (n, 17) digit matrix, got shape {m.shape}")
    return _ID_CHECK_NP[(m.astype(np.int64) @ _ID_WEIGHTS_NP) % 11]


def uscc_check_chars(first17: np.ndarray) -> np.ndarray:
    """Check characters for many USCCs at once.

    ``first17`` is an (n, 17) integer matrix of indexes into ``USCC_ALPHABET`` (0-30);
    the result is an (n,) '<U1' array.
    """
    m = np.asarray(first17)
    if m.ndim != 2 or m.shape[1] != 17:
        raise ValueError(f"expected an (n, 17) index matrix, got shape {m.shape}")
    return _USCC_ALPHABET_NP[(31 - (m.astype(np.int64) @ _USCC_WEIGHTS_NP) % 31) % 31]


def org_code_check_chars(first8: np.ndarray) -> np.ndarray:
    """GB 11714 check characters for many organization-code bodies at once.

    ``first8`` is an (n, 8) integer matrix of GB 11714 character values (digits 0-9,
    letters A=10 .. Z=35); the result is an (n,) '<U1' array of '0'-'9' or 'X'.
    """
    m = np.asarray(first8)
    if m.ndim != 2 or m.shape[1] != 8:
        raise ValueError(f"expected an (n, 8) value matrix, got shape {m.shape}")
    return _ORG_CHECK_NP[11 - (m.astype(np.int64) @ _ORG_WEIGHTS_NP) % 11]


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


def _valid_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    dim = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    return month_ok & (day >= 1) & (day <= dim)


def _digits_value(d: np.ndarray) -> np.ndarray:
    """Integer value of a (n, k) matrix of digits, most significant first."""
    out = np.zeros(d.shape[0], dtype=np.int64)
    for j in range(d.shape[1]):  # loops over k <= 8 columns, never over rows
        out = out * 10 + d[:, j]
    return out


def valid_resident_ids(series: pd.Series | np.ndarray, today: _dt.date | None = None) -> pd.Series:
    """Vectorized ``is_valid_resident_id``: a boolean Series aligned with ``series``.

    Same rules as the scalar function (which the tests check value by value), computed
    with numpy over the code-point matrix: the mod-11 check is one matrix product and the
    calendar check is arithmetic on year/month/day columns.
    """
    index = series.index if isinstance(series, pd.Series) else None
    today = today or _dt.date.today()
    cp, lengths = codepoint_matrix(series, 18)
    n = len(lengths)
    out = np.zeros(n, dtype=bool)
    if n:
        # int32 halves the memory traffic of int64 on an (n, 18) matrix; sums stay small.
        codes = cp.view(np.int32)  # code points are < 0x110000, so the view is exact
        shifted = codes - 48
        is_digit = (shifted >= 0) & (shifted <= 9)
        digits = shifted * is_digit
        today_key = today.year * 10000 + today.month * 100 + today.day

        # 18-character numbers.
        last = codes[:, 17]
        last_value = np.where((last >= 48) & (last <= 57), last - 48, np.where((last == 88) | (last == 120), 10, -1))
        expected = _ID_CHECK_VALUE_NP[(digits[:, :17] @ _ID_WEIGHTS_NP) % 11]
        y, m, d = _digits_value(digits[:, 6:10]), _digits_value(digits[:, 10:12]), _digits_value(digits[:, 12:14])
        key = y * 10000 + m * 100 + d
        ok18 = (
            (lengths == 18)
            & is_digit[:, :17].all(axis=1)
            & (digits[:, 0] != 0)
            & (last_value == expected)
            & _valid_dates(y, m, d)
            & (key >= 19000101)
            & (key <= today_key)
        )

        # Legacy 15-digit numbers (the matrix is zero-padded after position 15).
        y15 = 1900 + _digits_value(digits[:, 6:8])
        m15, d15 = _digits_value(digits[:, 8:10]), _digits_value(digits[:, 10:12])
        ok15 = (
            (lengths == 15)
            & is_digit[:, :15].all(axis=1)
            & (digits[:, 0] != 0)
            & _valid_dates(y15, m15, d15)
            & (y15 * 10000 + m15 * 100 + d15 <= today_key)
        )
        out = ok18 | ok15
    return pd.Series(out, index=index, dtype=bool)


def valid_usccs(series: pd.Series | np.ndarray, strict_org_code: bool = False) -> pd.Series:
    """Vectorized ``is_valid_uscc``: a boolean Series aligned with ``series``."""
    index = series.index if isinstance(series, pd.Series) else None
    cp, lengths = codepoint_matrix(series, 18)
    n = len(lengths)
    out = np.zeros(n, dtype=bool)
    if n:
        codes = cp.view(np.int32)
        ascii_codes = np.minimum(codes, 127)
        idx = np.where(codes < 128, _USCC_LUT[ascii_codes], -1)
        in_alphabet = (idx >= 0).all(axis=1)
        safe = np.maximum(idx, 0)
        expected = (31 - (safe[:, :17] @ _USCC_WEIGHTS_NP) % 31) % 31
        region_digits = (idx[:, 2:8] >= 0) & (idx[:, 2:8] <= 9)
        out = (
            (lengths == 18)
            & in_alphabet
            & (codes[:, 0] < 128)
            & _AUTHORITY_LUT[ascii_codes[:, 0]]
            & region_digits.all(axis=1)
            & (safe[:, 17] == expected)
        )
        if strict_org_code:
            org = np.where(codes[:, 8:17] < 128, _ORG_LUT[ascii_codes[:, 8:17]], -1)
            body_ok = (org[:, :8] >= 0).all(axis=1)
            check_idx = 11 - (np.maximum(org[:, :8], 0) @ _ORG_WEIGHTS_NP) % 11
            expected_code = np.frombuffer(b"0123456789X0", dtype=np.uint8).astype(np.int64)[check_idx]
            out &= body_ok & (codes[:, 16] == expected_code)
    return pd.Series(out, index=index, dtype=bool)


def valid_luhn(series: pd.Series | np.ndarray, min_len: int = 2, max_len: int = 19) -> pd.Series:
    """Vectorized ``is_luhn_valid`` for strings of ``min_len``-``max_len`` digits.

    Numbers of different lengths are right-aligned in one matrix (left-padded with zeros,
    which add nothing to a Luhn sum), so the doubling pattern counted from the right is
    the same column mask for every row.  Bank card numbers are 13-19 digits.
    """
    index = series.index if isinstance(series, pd.Series) else None
    cp, lengths = codepoint_matrix(series, max_len)
    n = len(lengths)
    out = np.zeros(n, dtype=bool)
    if n:
        codes = cp.view(np.int32)
        pos = np.arange(max_len)
        inside = pos[None, :] < lengths[:, None]
        is_digit = (codes >= 48) & (codes <= 57)
        all_digits = np.where(inside, is_digit, True).all(axis=1)
        digits = np.where(inside & is_digit, codes - 48, 0)
        # Right-align: row r's digit at column j moves to column j + (max_len - len_r).
        shift = np.clip(max_len - lengths, 0, max_len)
        src = pos[None, :] - shift[:, None]
        aligned = np.where(src >= 0, np.take_along_axis(digits, np.clip(src, 0, max_len - 1), axis=1), 0)
        doubled_cols = ((max_len - 1 - pos) % 2) == 1  # 2nd, 4th, ... digit from the right
        doubled = aligned * 2
        doubled = np.where(doubled > 9, doubled - 9, doubled)
        total = np.where(doubled_cols[None, :], doubled, aligned).sum(axis=1)
        out = (lengths >= min_len) & (lengths <= max_len) & all_digits & (total % 10 == 0)
    return pd.Series(out, index=index, dtype=bool)
