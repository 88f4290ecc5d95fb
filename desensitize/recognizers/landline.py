"""CN_LANDLINE 固定电话: the one definition every engine asks.

Area code (010, 02X, or 0[3-9]XX; optionally in parentheses) + a 7-8 digit local number starting
2-8, optional extension.
"""

from __future__ import annotations

import pandas as pd

from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import ALNUM, NOT_A_FRACTION, NOT_BEFORE_A_FRACTION, fullmatch_cells

__all__ = ["LANDLINE", "landline_cells"]

_AREA = "(?:010|02[0-9]|0[3-9][0-9]{2})"
_LOCAL = "[2-8][0-9]{6,7}"
_EXTENSION = r"(?:(?:-|转|分机|ext\.?)[0-9]{1,5})?"

# In text: area code in parentheses or followed by a space or hyphen, then 7-8 digits; written
# without a separator only as 3+7, 3+8 or 4+7 digits: a 12-digit run starting with 0 is more often a
# 发票代码 (invoice code) than a phone number.
_LANDLINE = (
    rf"(?:\({_AREA}\)[ \-]?{_LOCAL}"
    rf"|0(?<![{ALNUM}].)(?:10|2[0-9]|[3-9][0-9]{{2}})[ \-]{_LOCAL}"
    rf"|0(?<![{ALNUM}].){NOT_A_FRACTION}(?:10|2[0-9]){_LOCAL}"
    rf"|0(?<![{ALNUM}].){NOT_A_FRACTION}[3-9][0-9]{{2}}[2-8][0-9]{{6}})"
    rf"{_EXTENSION}{NOT_BEFORE_A_FRACTION}"
)
# A whole cell: the area code with or without parentheses, an optional separator, the number.
_LANDLINE_CELL = rf"(?:\({_AREA}\)|{_AREA})[ \-]?{_LOCAL}{_EXTENSION}"


def landline_cells(text: pd.Series) -> pd.Series:
    """Cells holding a landline number."""
    return fullmatch_cells(text, _LANDLINE_CELL)


LANDLINE = spec(
    "ChineseLandlineRecognizer",
    "CN_LANDLINE",
    [("landline", _LANDLINE, 0.7)],
    ("电话", "座机", "固话", "办公电话"),
    pii_type="cn_landline",
    cells=landline_cells,
)
