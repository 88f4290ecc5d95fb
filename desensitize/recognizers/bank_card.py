"""CN_BANK_CARD 银行卡号: the one definition every engine asks.

16 or 19 digits starting 3-6 (ISO/IEC 7812 major industry identifiers of bank cards, 62 for
UnionPay) passing Luhn (ISO/IEC 7812-1 Annex B; the arithmetic is ``desensitize.identifiers``');
16-19 digits after a card context word (卡号, 银行卡, 账号 …). 17- and 18-digit numbers need the
context word because order and waybill numbers have those lengths and one in ten passes Luhn by
chance. An 18-digit valid resident ID is an ID, not a card.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from desensitize.identifiers import is_luhn_valid, valid_luhn
from desensitize.recognizers.resident_id import resident_ids_compact, validate_resident_id
from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import NOT_A_FRACTION, SEP, compact, compact_cells

__all__ = ["BANK_CARD", "bank_card_cells", "bank_cards_compact", "validate_bank_card", "validate_bank_cards"]

_CARD_CONTEXT = (
    r"(?:卡号|银行卡号?|借记卡号?|储蓄卡号?|信用卡号?|银联卡号?|账号|帐号|账户|帐户"
    r"|收款账号|开户账号|卡号码)"
)
# Card numbers are written in groups of four: a group after a separator continues the number, so
# the end also refuses "followed by a separator and a short group" (the 3 last digits of 19).
_CARD_END = r"(?![0-9A-Za-z]|[ \-][0-9]{1,3}(?![0-9]))"
# Not the fractional part of a decimal either (NOT_A_FRACTION): "0.5674677435240816" has 16 digits
# after the point, which start with 3-6 and pass Luhn one time in ten.
_CARD_PLAIN = (
    r"[3-6](?<![0-9A-Za-z].)" + NOT_A_FRACTION + rf"[0-9]{{3}}(?:{SEP}[0-9]{{4}}){{3}}(?:{SEP}[0-9]{{3}})?" + _CARD_END
)
_CARD_WITH_CONTEXT = (
    rf"{_CARD_CONTEXT}(?:为|是|:|[ \t])?[ \t]?(?P<e>[3-6][0-9]{{3}}(?:{SEP}[0-9]{{4}}){{3}}(?:{SEP}[0-9]{{1,3}})?)"
    + _CARD_END
)


def validate_bank_card(text: str) -> bool:
    """Luhn (ISO/IEC 7812-1 Annex B) over 16-19 digits; an 18-digit valid resident ID is an ID, not a card."""
    digits = compact(text)
    if not 16 <= len(digits) <= 19 or not is_luhn_valid(digits):
        return False
    return not (len(digits) == 18 and validate_resident_id(digits))


def bank_cards_compact(values: pd.Series) -> pd.Series:
    """The rule of ``validate_bank_card`` over many values written without separators."""
    lengths = values.str.len()
    return (valid_luhn(values, min_len=16, max_len=19) & ~((lengths == 18) & resident_ids_compact(values))).fillna(
        False
    )


def validate_bank_cards(texts: list[str]) -> np.ndarray:
    """``validate_bank_card`` for many candidates at once."""
    return np.asarray(bank_cards_compact(pd.Series([compact(t) for t in texts], dtype=object)), dtype=bool)


def bank_card_cells(text: pd.Series) -> pd.Series:
    """Cells holding a bank card number (spaces or hyphens between digit groups allowed) that starts
    with 3-6, as the free-text patterns require."""
    digits = compact_cells(text)
    return (digits.str.slice(0, 1).isin(["3", "4", "5", "6"]) & bank_cards_compact(digits)).fillna(False)


BANK_CARD = spec(
    "ChineseBankCardRecognizer",
    "CN_BANK_CARD",
    [("bank_card", _CARD_PLAIN, 0.5), ("bank_card_context", _CARD_WITH_CONTEXT, 0.6)],
    ("卡号", "银行卡", "账号", "开户行"),
    validate_bank_card,
    validate_bank_cards,
    pii_type="bank_card",
    cells=bank_card_cells,
)
