"""CN_RESIDENT_ID 公民身份号码, GB 11643-1999: the one definition every engine asks.

18 characters with the ISO 7064 MOD 11-2 check and a real birth date not in the future, or a
legacy 15-digit number (YYMMDD in the 1900s); the address code names a province (GB/T 2260).
Written compact, in 6-8-4 or 6-4-4-4 groups; the legacy form compact or 6-6-3. The check-character
arithmetic itself is ``desensitize.identifiers``'.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from desensitize.identifiers import is_valid_resident_id, valid_resident_ids
from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import (
    NOT_A_FRACTION,
    NOT_ALNUM_AFTER,
    NOT_BEFORE_A_FRACTION,
    SEP,
    compact,
    compact_cells,
    lead,
)
from desensitize.recognizers.vocabulary import ID_PROVINCE_CODES

__all__ = ["RESIDENT_ID", "resident_id_cells", "resident_ids_compact", "validate_resident_id", "validate_resident_ids"]

# The 18-digit form keeps matching inside decimals: a float never prints 18 digits on either side of
# its point, so "1.<ID>" is written on purpose.
_ID18 = lead("[1-9]") + rf"[0-9]{{5}}{SEP}[0-9]{{4}}{SEP}[0-9]{{4}}{SEP}[0-9]{{3}}[0-9Xx]" + NOT_ALNUM_AFTER
_ID15 = lead("[1-9]") + NOT_A_FRACTION + rf"[0-9]{{5}}{SEP}[0-9]{{6}}{SEP}[0-9]{{3}}" + NOT_BEFORE_A_FRACTION


def validate_resident_id(text: str) -> bool:
    """GB 11643-1999: a province address code (GB/T 2260), the MOD 11-2 check character and a real
    birth date, or a legacy 15-digit number."""
    digits = compact(text).upper()
    return digits[:2] in ID_PROVINCE_CODES and is_valid_resident_id(digits)


def resident_ids_compact(values: pd.Series) -> pd.Series:
    """The rule of ``validate_resident_id`` over many values written without separators."""
    return values.str.slice(0, 2).isin(ID_PROVINCE_CODES) & valid_resident_ids(values)


def validate_resident_ids(texts: list[str]) -> np.ndarray:
    """``validate_resident_id`` for many candidates at once."""
    digits = pd.Series([compact(t).upper() for t in texts], dtype=object)
    return np.asarray(resident_ids_compact(digits), dtype=bool)


def resident_id_cells(text: pd.Series) -> pd.Series:
    """Cells holding a resident ID (spaces or hyphens between digit groups allowed)."""
    return resident_ids_compact(compact_cells(text))


RESIDENT_ID = spec(
    "ChineseResidentIdRecognizer",
    "CN_RESIDENT_ID",
    [("resident_id_18", _ID18, 0.5), ("resident_id_15", _ID15, 0.3)],
    ("身份证", "身份证号", "公民身份号码", "证件号码"),
    validate_resident_id,
    validate_resident_ids,
    pii_type="cn_resident_id",
    cells=resident_id_cells,
)
