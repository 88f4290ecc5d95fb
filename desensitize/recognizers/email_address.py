"""EMAIL_ADDRESS: the one definition every engine asks."""

from __future__ import annotations

import pandas as pd

from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import NOT_ALNUM_AFTER, fullmatch_cells, lead

__all__ = ["EMAIL", "email_cells"]

_LOCAL_FIRST = "[A-Za-z0-9]"
_LOCAL_REST = r"[A-Za-z0-9._%+\-]{0,63}@"
_DOMAIN = (
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}"
)
# In text the address does not continue a word or an address-like run ("a.b@" is not cut at "b").
_EMAIL = lead(_LOCAL_FIRST) + r"(?<![._%+\-].)" + _LOCAL_REST + _DOMAIN + NOT_ALNUM_AFTER
_EMAIL_CELL = _LOCAL_FIRST + _LOCAL_REST + _DOMAIN


def email_cells(text: pd.Series) -> pd.Series:
    """Cells holding an e-mail address."""
    return fullmatch_cells(text, _EMAIL_CELL)


EMAIL = spec(
    "ChineseEmailRecognizer",
    "EMAIL_ADDRESS",
    [("email", _EMAIL, 0.9, "@", 64)],
    ("邮箱", "电子邮件", "邮件"),
    pii_type="email",
    cells=email_cells,
)
