"""CN_USCC 统一社会信用代码, GB 32100-2015: the one definition every engine asks.

18 characters of the 31-character alphabet with the mod-31 check character (the arithmetic is
``desensitize.identifiers``'), a registration authority, an organisation category 1-9 and the
division code of a real province (GB/T 2260).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from desensitize.identifiers import is_valid_uscc, valid_usccs
from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import NOT_ALNUM_AFTER, lead
from desensitize.recognizers.vocabulary import PROVINCE_CODES

__all__ = ["USCC", "uscc_cells", "validate_uscc", "validate_usccs"]

_USCC_CHAR = "0-9A-HJ-NPQRTUWXY"
_USCC = lead(f"[{_USCC_CHAR}]") + rf"[{_USCC_CHAR}][0-9]{{6}}[{_USCC_CHAR}]{{10}}" + NOT_ALNUM_AFTER


def validate_uscc(text: str) -> bool:
    """GB 32100-2015: alphabet, registration authority, an organisation category 1-9 (position 2), a
    division code of a real province (positions 3-4, GB/T 2260) and the mod-31 check character.

    The category and province rules matter in text: an 18-digit resident ID with a wrong check
    character would otherwise pass the mod-31 check once in 31 tries and turn up as a USCC.
    """
    return "1" <= text[1:2] <= "9" and text[2:4] in PROVINCE_CODES and is_valid_uscc(text)


def uscc_cells(text: pd.Series) -> pd.Series:
    """The rule of ``validate_uscc`` over many values (cells, or candidates found in text)."""
    category = text.str.slice(1, 2)
    return (category.isin(list("123456789")) & text.str.slice(2, 4).isin(PROVINCE_CODES) & valid_usccs(text)).fillna(
        False
    )


def validate_usccs(texts: list[str]) -> np.ndarray:
    """``validate_uscc`` for many candidates at once."""
    return np.asarray(uscc_cells(pd.Series(texts, dtype=object)), dtype=bool)


USCC = spec(
    "ChineseUsccRecognizer",
    "CN_USCC",
    [("uscc", _USCC, 0.5)],
    ("统一社会信用代码", "信用代码"),
    validate_uscc,
    validate_usccs,
    pii_type="uscc",
    cells=uscc_cells,
)
