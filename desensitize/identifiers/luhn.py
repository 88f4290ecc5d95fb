"""Luhn (ISO/IEC 7812-1 Annex B): the check digit of bank card numbers (银行卡号), scalar and vectorized."""

from __future__ import annotations

import numpy as np
import pandas as pd

from desensitize.identifiers.codepoints import codepoint_matrix, is_ascii_digits

__all__ = ["is_luhn_valid", "luhn_check_digit", "valid_luhn"]


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
    if not is_ascii_digits(digits):
        raise ValueError(f"expected ASCII digits, got {digits!r}")
    return str((10 - _luhn_sum(digits, double_rightmost=True) % 10) % 10)


def is_luhn_valid(s: str) -> bool:
    """True if ``s`` is at least two ASCII digits and passes the Luhn check."""
    if not isinstance(s, str) or len(s) < 2 or not is_ascii_digits(s):
        return False
    return _luhn_sum(s, double_rightmost=False) % 10 == 0


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
