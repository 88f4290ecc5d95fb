"""CN_PASSPORT 护照号码: the one definition every engine asks.

E + 8 digits or E + letter + 7 digits (ordinary passports since 2012), G + 8 digits (older),
D/S/P (+E) + 7-8 digits (diplomatic, service, public affairs).
"""

from __future__ import annotations

import pandas as pd

from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import LETTERS_WITHOUT_I_O, NOT_ALNUM_AFTER, fullmatch_cells, lead

__all__ = ["PASSPORT", "passport_cells"]

# (first character, the rest): the text pattern and the cell pattern are both built from these.
_FORMS = (
    ("E", rf"[0-9{LETTERS_WITHOUT_I_O}][0-9]{{7}}"),
    ("[GDSP]", "[0-9]{8}"),
    ("[DSP]", "E[0-9]{7}"),
)
_PASSPORT = "|".join(lead(first) + rest + NOT_ALNUM_AFTER for first, rest in _FORMS)
_PASSPORT_CELL = "|".join(first + rest for first, rest in _FORMS)


def passport_cells(text: pd.Series) -> pd.Series:
    """Cells holding a passport number."""
    return fullmatch_cells(text, _PASSPORT_CELL)


PASSPORT = spec(
    "ChinesePassportRecognizer",
    "CN_PASSPORT",
    [("passport", _PASSPORT, 0.6)],
    ("护照", "护照号码"),
    pii_type="passport",
    cells=passport_cells,
)
