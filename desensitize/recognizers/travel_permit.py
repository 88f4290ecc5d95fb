"""CN_TRAVEL_PERMIT 通行证: the one definition every engine asks.

往来港澳通行证 C + 8 digits or C + letter + 7 digits; 港澳居民来往内地通行证 H/M + 8 (or 10) digits;
往来台湾通行证 T + 8 digits; 台湾居民来往大陆通行证 8 digits (in text only after its name).
"""

from __future__ import annotations

import pandas as pd

from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import LETTERS_WITHOUT_I_O, NOT_ALNUM_AFTER, compact_cells, fullmatch_cells, lead

__all__ = ["TRAVEL_PERMIT", "travel_permit_cells"]

# (first character, the rest) of the lettered permits: the text and cell patterns are built from these.
_FORMS = (
    ("C", rf"(?:[0-9]{{8}}|[{LETTERS_WITHOUT_I_O}][0-9]{{7}})"),
    ("[HM]", "[0-9]{8}(?:[0-9]{2})?"),
    ("T", "[0-9]{8}"),
)
_TAIWAN_NUMBER = "[0-9]{8}"
_PERMIT = "|".join(lead(first) + rest + NOT_ALNUM_AFTER for first, rest in _FORMS)
_PERMIT_TAIWAN_CONTEXT = (
    rf"(?:台胞证|台湾居民来往大陆通行证|来往大陆通行证|台湾同胞证)(?:号码|号)?(?::|[ \t])?[ \t]?"
    rf"(?P<e>{_TAIWAN_NUMBER}){NOT_ALNUM_AFTER}"
)
# In a 通行证 column the header is the context: the bare 8 digits are a Taiwan permit there.
_PERMIT_CELL = "|".join([*(first + rest for first, rest in _FORMS), _TAIWAN_NUMBER])


def travel_permit_cells(text: pd.Series) -> pd.Series:
    """Cells holding a travel permit number (spaces or hyphens between digit groups allowed)."""
    return fullmatch_cells(compact_cells(text), _PERMIT_CELL)


TRAVEL_PERMIT = spec(
    "ChineseTravelPermitRecognizer",
    "CN_TRAVEL_PERMIT",
    [("travel_permit", _PERMIT, 0.6), ("taiwan_permit_context", _PERMIT_TAIWAN_CONTEXT, 0.8)],
    ("通行证", "港澳通行证", "台胞证"),
    pii_type="travel_permit",
    cells=travel_permit_cells,
)
