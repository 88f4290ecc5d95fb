"""CN_LICENSE_PLATE 机动车号牌, GA 36-2018: the one definition every engine asks.

Province abbreviation + letter (no I/O) + 5 characters (at most 2 letters), or a new-energy
6-character serial (D/F first or last).
"""

from __future__ import annotations

import re

import pandas as pd

from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import LETTERS_WITHOUT_I_O, NOT_ALNUM_AFTER, fullmatch_cells
from desensitize.recognizers.vocabulary import PROVINCE_ABBREVIATIONS

__all__ = ["LICENSE_PLATE", "license_plate_cells", "validate_plate"]

_L = LETTERS_WITHOUT_I_O
_HEAD = f"[{PROVINCE_ABBREVIATIONS}][{_L}]"
_SERIAL = rf"(?:[DF][0-9{_L}][0-9]{{4}}|[0-9]{{5}}[DF]|[0-9{_L}]{{4}}[0-9挂学警港澳领])"
_PLATE = rf"{_HEAD}[·•・ ]?{_SERIAL}{NOT_ALNUM_AFTER}"
_PLATE_CELL = _HEAD + _SERIAL
#: What is written between the parts of a plate (京A·12345, 京A 12345, 京A-12345).
_SEPARATORS = r"[\s·•・.\-]"
#: GA 36-2018: an ordinary 5-character serial holds at most this many letters.
_MAX_ORDINARY_LETTERS = 2


def validate_plate(text: str) -> bool | None:
    """GA 36-2018: an ordinary 5-character serial holds at most two letters; new-energy serials are
    checked by the pattern itself."""
    serial = re.sub(_SEPARATORS, "", text)[2:]
    if len(serial) == 5 and sum(c.isalpha() and c.isascii() for c in serial) > _MAX_ORDINARY_LETTERS:
        return False
    return None


def license_plate_cells(text: pd.Series) -> pd.Series:
    """Cells holding a plate (separators allowed), with the same letter rule as ``validate_plate``."""
    compact = text.str.replace(_SEPARATORS, "", regex=True)
    serial = compact.str.slice(2)
    ordinary = serial.str.len() == 5
    return (
        fullmatch_cells(compact, _PLATE_CELL) & ~(ordinary & (serial.str.count("[A-Z]") > _MAX_ORDINARY_LETTERS))
    ).fillna(False)


LICENSE_PLATE = spec(
    "ChineseLicensePlateRecognizer",
    "CN_LICENSE_PLATE",
    [("plate", _PLATE, 0.75)],
    ("车牌", "车牌号", "号牌"),
    validate_plate,
    pii_type="license_plate",
    cells=license_plate_cells,
)
