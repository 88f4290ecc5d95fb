"""GB 11643-1999 《公民身份号码》: check character, birth date and gender, scalar and vectorized.

18 characters = 6-digit address code (GB/T 2260) + 8-digit birth date YYYYMMDD + 3-digit sequence
code (odd for men, even for women) + 1 check character computed with ISO 7064:1983 MOD 11-2. The
legacy 15-digit number (before 1999) has a 6-digit birth date YYMMDD in the 1900s and no check
character.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from desensitize.identifiers.codepoints import codepoint_matrix, digits_value, is_ascii_digits, valid_dates

__all__ = [
    "RESIDENT_ID_CHECK_MAP",
    "RESIDENT_ID_WEIGHTS",
    "id_check_char",
    "is_valid_resident_id",
    "resident_id_birth_date",
    "resident_id_check_chars",
    "resident_id_gender",
    "valid_resident_ids",
]

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


def id_check_char(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits of a resident ID.

    The weighted sum S = sum(a_i * 2^(17-i) mod 11) selects "10X98765432"[S mod 11], so that
    the full 18-character number satisfies ISO 7064 MOD 11-2.  Raises ValueError when
    ``first17`` is not exactly 17 ASCII digits, because a check character of anything else
    has no meaning and a silent answer would hide a caller's bug.
    """
    if len(first17) != 17 or not is_ascii_digits(first17):
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
        if not is_ascii_digits(body) or body[0] == "0":
            return None
        if check.upper() != id_check_char(body):
            return None
        birth = _real_date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
        if birth is None or not (_EARLIEST_BIRTH <= birth <= today):
            return None
        return birth, int(body[16])
    if len(s) == 15:
        # Legacy number issued before GB 11643-1999: YYMMDD in the 1900s, no check char.
        if not is_ascii_digits(s) or s[0] == "0":
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


def resident_id_check_chars(first17: np.ndarray) -> np.ndarray:
    """Check characters for many resident IDs at once.

    ``first17`` is an (n, 17) integer matrix of digits 0-9 (any integer dtype); the result
    is an (n,) array of dtype '<U1'.  One matrix product replaces n Python loops, which is
    what lets the generator emit a million IDs in well under a second.
    """
    m = np.asarray(first17)
    if m.ndim != 2 or m.shape[1] != 17:
        raise ValueError(f"expected an (n, 17) digit matrix, got shape {m.shape}")
    return np.asarray(_ID_CHECK_NP[(m.astype(np.int64) @ _ID_WEIGHTS_NP) % 11])


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
        y, m, d = digits_value(digits[:, 6:10]), digits_value(digits[:, 10:12]), digits_value(digits[:, 12:14])
        key = y * 10000 + m * 100 + d
        ok18 = (
            (lengths == 18)
            & is_digit[:, :17].all(axis=1)
            & (digits[:, 0] != 0)
            & (last_value == expected)
            & valid_dates(y, m, d)
            & (key >= 19000101)
            & (key <= today_key)
        )

        # Legacy 15-digit numbers (the matrix is zero-padded after position 15).
        y15 = 1900 + digits_value(digits[:, 6:8])
        m15, d15 = digits_value(digits[:, 8:10]), digits_value(digits[:, 10:12])
        ok15 = (
            (lengths == 15)
            & is_digit[:, :15].all(axis=1)
            & (digits[:, 0] != 0)
            & valid_dates(y15, m15, d15)
            & (y15 * 10000 + m15 * 100 + d15 <= today_key)
        )
        out = ok18 | ok15
    return pd.Series(out, index=index, dtype=bool)
