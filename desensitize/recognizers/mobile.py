"""CN_MOBILE 手机号码: the one definition every engine asks.

1[3-9] + 9 digits, optional +86/0086, optional 3-4-4 spaces or hyphens.
"""

from __future__ import annotations

import pandas as pd

from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import (
    ALNUM,
    NOT_A_FRACTION,
    NOT_ALNUM_AFTER,
    NOT_BEFORE_A_FRACTION,
    SEP,
    fullmatch_cells,
)

__all__ = ["MOBILE", "mobile_cells"]

_MOBILE_BODY = rf"1[3-9][0-9]{SEP}[0-9]{{4}}{SEP}[0-9]{{4}}"
_MOBILE = (
    rf"\+(?<![{ALNUM}].)86[ \-]?{_MOBILE_BODY}{NOT_ALNUM_AFTER}"
    rf"|\(\+86\)[ \-]?{_MOBILE_BODY}{NOT_ALNUM_AFTER}"
    rf"|0(?<![{ALNUM}].){NOT_A_FRACTION}086[ \-]?{_MOBILE_BODY}{NOT_ALNUM_AFTER}"
    rf"|1(?<![{ALNUM}+].){NOT_A_FRACTION}[3-9][0-9]{SEP}[0-9]{{4}}{SEP}[0-9]{{4}}{NOT_BEFORE_A_FRACTION}"
)
# A cell is read without its spaces, hyphens and parentheses: the country code, then 11 digits.
_MOBILE_CELL = r"(?:\+?86|0086)?1[3-9][0-9]{9}"


def mobile_cells(text: pd.Series) -> pd.Series:
    """Cells holding a mobile number."""
    return fullmatch_cells(text.str.replace(r"[\s\-()]", "", regex=True), _MOBILE_CELL)


MOBILE = spec(
    "ChineseMobileRecognizer",
    "CN_MOBILE",
    [("mobile", _MOBILE, 0.8)],
    ("手机", "电话", "联系方式", "联系电话"),
    pii_type="cn_phone",
    cells=mobile_cells,
)
