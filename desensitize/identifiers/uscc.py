"""GB 32100-2015 统一社会信用代码 and GB 11714-1997 组织机构代码: check characters, scalar and vectorized.

* GB 32100-2015 《法人和其他组织统一社会信用代码编码规则》: 18 characters = registration
  authority (1) + entity category (1) + administrative division code (6) + subject
  identifier, i.e. the organization code of GB 11714 (9) + check character (1), over a
  31-character alphabet without I, O, Z, S, V, check computed modulo 31.
* GB 11714-1997 《全国组织机构代码编制规则》: 8 body characters + 1 check character,
  modulo 11 with weights 3, 7, 9, 10, 5, 8, 4, 2; 10 is written 'X' and 11 is written '0'.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from desensitize.identifiers.codepoints import codepoint_matrix, is_ascii_digits

__all__ = [
    "ORG_CODE_WEIGHTS",
    "USCC_ALPHABET",
    "USCC_REGISTRATION_AUTHORITIES",
    "USCC_WEIGHTS",
    "is_valid_org_code",
    "is_valid_uscc",
    "org_code_check_char",
    "org_code_check_chars",
    "uscc_check_char",
    "uscc_check_chars",
    "valid_usccs",
]

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
    if s[0] not in USCC_REGISTRATION_AUTHORITIES or not is_ascii_digits(s[2:8]):
        return False
    if uscc_check_char(s[:17]) != s[17]:
        return False
    return not strict_org_code or is_valid_org_code(s[8:17])


def uscc_check_chars(first17: np.ndarray) -> np.ndarray:
    """Check characters for many USCCs at once.

    ``first17`` is an (n, 17) integer matrix of indexes into ``USCC_ALPHABET`` (0-30);
    the result is an (n,) '<U1' array.
    """
    m = np.asarray(first17)
    if m.ndim != 2 or m.shape[1] != 17:
        raise ValueError(f"expected an (n, 17) index matrix, got shape {m.shape}")
    return np.asarray(_USCC_ALPHABET_NP[(31 - (m.astype(np.int64) @ _USCC_WEIGHTS_NP) % 31) % 31])


def org_code_check_chars(first8: np.ndarray) -> np.ndarray:
    """GB 11714 check characters for many organization-code bodies at once.

    ``first8`` is an (n, 8) integer matrix of GB 11714 character values (digits 0-9,
    letters A=10 .. Z=35); the result is an (n,) '<U1' array of '0'-'9' or 'X'.
    """
    m = np.asarray(first8)
    if m.ndim != 2 or m.shape[1] != 8:
        raise ValueError(f"expected an (n, 8) value matrix, got shape {m.shape}")
    return np.asarray(_ORG_CHECK_NP[11 - (m.astype(np.int64) @ _ORG_WEIGHTS_NP) % 11])


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
