"""CN_ADDRESS 地址: the one definition every engine asks.

Province / city / district / town / village / road / house-number patterns; in text a road needs a
house number unless an administrative division precedes it. A cell (of a 住址 column) is an address
when it names at least one place and then a street, village or house number, and is not a sentence.
"""

from __future__ import annotations

import pandas as pd

from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import CJK, cjk_except
from desensitize.recognizers.vocabulary import PROVINCES

__all__ = ["ADDRESS", "address_cells"]

_ADDRESS_STOP = "在住于址是为的到往至从号室栋、"
_PART = cjk_except(_ADDRESS_STOP)
_PROVINCE = "(?:" + "|".join(p.removesuffix("市") + "市?" if p.endswith("市") else p for p in PROVINCES) + ")"
_CITY = f"(?:{_PART}{{1,7}}?(?:自治州|地区|盟|市))"
_DISTRICT = f"(?:{_PART}{{1,7}}?(?:区|县|旗|市))"
_TOWN = f"(?:{_PART}{{1,7}}?(?:街道|镇|乡|苏木))"
_VILLAGE_SUFFIXES = ("社区", "小区", "村", "屯")
_ROAD_SUFFIXES = ("大街", "大道", "路", "街", "巷", "胡同")
_VILLAGE = f"(?:{_PART}{{1,7}}?(?:" + "|".join(_VILLAGE_SUFFIXES) + ")(?:[0-9]{1,3}组)?)"
_ROAD = f"(?:{_PART}{{1,10}}?(?:" + "|".join(_ROAD_SUFFIXES) + ")(?:[东西南北中]段)?)"
_NUMBER = (
    "(?:[0-9]{1,5}(?:号院|号|弄)(?:[0-9]{1,3}(?:号楼|栋|幢|座))?(?:[0-9]{1,2}单元)?(?:[0-9]{1,3}(?:层|楼))?"
    "(?:[0-9]{1,5}(?:室|户|号))?)"
)
_ADDRESS_WITH_PROVINCE = f"{_PROVINCE}{_CITY}?{_DISTRICT}?{_TOWN}?(?:{_VILLAGE}{_NUMBER}?|{_VILLAGE}?{_ROAD}{_NUMBER}?)"
# Without a province, an address starts where no Chinese word goes on (or after a verb or particle
# that introduces places: 住, 在, 位于, 寄往 …) and needs either a road and a house number, or a
# district or town followed by a village or road (then the number is optional). The conditionals
# (?(d)…) ask whether the district (d) or town (t) group took part.
_ADDRESS_START = f"(?:(?<![{CJK}])|(?<=[{_ADDRESS_STOP}居寄发送迁达抵]))"
# Every local address holds a road or village suffix; the first one starts at most 50 characters in
# (city 10 + district 8 + town 9 + village 13 + road name 10).
_ADDRESS_KEY = "|".join((*_ROAD_SUFFIXES, *_VILLAGE_SUFFIXES))
_ADDRESS_KEY_REACH = 60
_ADDRESS_LOCAL = (
    f"{_ADDRESS_START}{_CITY}?(?P<d>{_DISTRICT})?(?P<t>{_TOWN})?(?P<v>{_VILLAGE})?"
    f"(?:{_ROAD}(?(d){_NUMBER}?|(?(t){_NUMBER}?|{_NUMBER}))"
    f"|(?(v)(?(d){_NUMBER}?|(?(t){_NUMBER}?|(?!)))|(?!)))"
)

# An address cell names at least one place and then a street, village or house number.
_ADDRESS_CELL = (
    r"(?:省|自治区|市|盟|州|区|县|旗|镇|乡|街道|村|屯|路|街|大道|巷|胡同)"
    rf".*?(?:[0-9]+(?:号|弄|栋|幢|室)|[{CJK}](?:村|屯|组|路|街|大道|巷|胡同|小区|社区))"
)


def address_cells(text: pd.Series) -> pd.Series:
    """Cells holding an address: 6-80 characters, no sentence punctuation, places then a street."""
    return (
        text.str.len().between(6, 80)
        & ~text.str.contains("[，。；！？,;!?]", regex=True)
        & text.str.contains(_ADDRESS_CELL, regex=True)
    ).fillna(False)


ADDRESS = spec(
    "ChineseAddressRecognizer",
    "CN_ADDRESS",
    [
        ("address_province", _ADDRESS_WITH_PROVINCE, 0.7),
        ("address_local", _ADDRESS_LOCAL, 0.65, _ADDRESS_KEY, _ADDRESS_KEY_REACH),
    ],
    ("地址", "住址", "住所", "居住", "家住"),
    pii_type="address",
    cells=address_cells,
)
