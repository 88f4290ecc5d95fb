"""Entity values and hard negatives for the labelled set, drawn with the noise real notes carry.

Why apart from ``samples.labelled``: what a true value looks like (full-width digits, numbers split
by spaces or hyphens, +86 prefixes, lower-case check characters) and what a convincing false one
looks like (a wrong check character, an impossible birth date, a failing Luhn digit, order numbers,
timestamps) is one concern, the sentences and cells that carry them another.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from desensitize import USCC_ALPHABET, id_check_char, is_valid_resident_id, is_valid_uscc, luhn_check_digit
from samples.world import OTHER_REGIONS, SHUANGYASHAN_DISTRICTS

__all__ = ["PINYIN", "ValueDraw"]

_FULLWIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}

# Bank identification numbers (first six digits) of cards common in China, with the usual length.
_BINS: tuple[tuple[str, int], ...] = (
    ("622202", 19), ("621700", 19), ("622848", 19), ("621661", 19), ("623058", 19), ("622262", 19),
    ("621226", 19), ("622908", 18), ("622588", 16), ("625802", 16), ("436742", 16), ("524047", 16),
    ("356889", 16), ("622700", 19), ("621483", 16), ("601382", 19), ("622260", 17),
)  # fmt: skip
_AREA_CODES = ("0469", "0469", "0469", "0451", "0452", "0454", "0459", "010", "021", "020", "024", "0431", "0371")
_EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "sohu.com", "foxmail.com", "gmail.com",
                  "hotmail.com", "sys.gov.cn", "shuangyashan.gov.cn", "example.com.cn", "yeah.net")  # fmt: skip
PINYIN = ("zhang", "wang", "li", "liu", "chen", "yang", "zhao", "huang", "zhou", "wu", "xu", "sun", "hu", "zhu",
           "gao", "lin", "he", "guo", "ma", "luo", "wei", "ming", "hua", "jun", "li", "na", "jing", "fang", "lei",
           "yan", "xiao", "hong", "tao", "bin", "yu", "hao", "jie", "qiang", "ping")  # fmt: skip
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_PLATE_PROVINCES = "黑黑黑黑黑吉辽京津冀鲁豫苏浙沪粤川蒙"
_TOWNS = (
    "七星泡镇",
    "小城子镇",
    "福利镇",
    "升昌镇",
    "兴安乡",
    "五九七农场",
    "小佳河镇",
    "东方红镇",
    "长林子乡",
    "龙头镇",
)
_VILLAGES = ("永红村", "新发村", "东升村", "胜利村", "前进村", "红旗村", "太平村", "长胜村", "富强村", "团结村")
_COUNTIES = ("宝清县", "集贤县", "友谊县", "饶河县")
_STREET_SUFFIXES = ("路", "街", "大街")


def _fullwidth(text: str) -> str:
    return text.translate(_FULLWIDTH)


class ValueDraw:
    """Entity values and noise, all drawn from one generator."""

    def __init__(self, rng: np.random.Generator, tables: dict[str, pd.DataFrame], fresh: pd.DataFrame) -> None:
        self.rng = rng
        people = tables["residents"]
        entities = tables["market_entities"]
        self.ids = people["公民身份号码"].tolist()
        self.births = people["出生日期"].dt.date.tolist()
        self.phones = people["手机号码"].tolist()
        self.addresses = people["住址"].tolist() + entities["住所"].tolist()
        self.usccs = entities["统一社会信用代码"].tolist()
        self.companies = entities["企业名称"].tolist()
        self.known_names = people["姓名"].tolist()
        known = set(self.known_names)
        self.fresh_names = [n for n in fresh["姓名"].tolist() if n not in known]
        self.other_regions = [text for _, text in OTHER_REGIONS]
        self.districts = [name for _, name, _ in SHUANGYASHAN_DISTRICTS]
        self.streets = sorted({_street(a) for a in people["住址"].tolist()[:2000]} - {""})

    # -- helpers -----------------------------------------------------------------
    def p(self, probability: float) -> bool:
        return bool(self.rng.random() < probability)

    def pick(self, options: list[str] | tuple[str, ...]) -> str:
        return options[int(self.rng.integers(0, len(options)))]

    def digits(self, n: int) -> str:
        return "".join(str(d) for d in self.rng.integers(0, 10, n))

    def maybe_fullwidth(self, text: str, probability: float = 0.1) -> str:
        return _fullwidth(text) if self.p(probability) else text

    # -- identifiers ---------------------------------------------------------------
    def resident_id(self) -> str:
        value = self.pick(self.ids)
        r = self.rng.random()
        if r < 0.05:  # legacy 15-digit number of someone born in the 1900s
            body = value[:6] + value[8:14] + value[14:17]
            return body if value[6:8] == "19" else value
        if value.endswith("X") and self.p(0.3):
            value = value[:-1] + "x"
        if r < 0.60:
            return self.maybe_fullwidth(value, 0.15)
        if r < 0.72:
            return f"{value[:6]} {value[6:14]} {value[14:]}"
        if r < 0.84:
            return f"{value[:6]} {value[6:10]} {value[10:14]} {value[14:]}"
        return f"{value[:6]}-{value[6:14]}-{value[14:]}"

    def uscc(self) -> str:
        return self.maybe_fullwidth(self.pick(self.usccs), 0.05)

    def mobile(self) -> str:
        value = self.pick(self.phones)
        r = self.rng.random()
        if r < 0.45:
            return self.maybe_fullwidth(value, 0.15)
        if r < 0.57:
            return f"{value[:3]} {value[3:7]} {value[7:]}"
        if r < 0.69:
            return f"{value[:3]}-{value[3:7]}-{value[7:]}"
        if r < 0.90:
            return self.pick(("+86", "+86 ", "+86-", "0086", "(+86)")) + value
        return f"+86 {value[:3]} {value[3:7]} {value[7:]}"

    def landline(self) -> str:
        area = self.pick(_AREA_CODES)
        local = str(self.rng.integers(2, 9)) + self.digits(7 if len(area) == 3 or self.p(0.3) else 6)
        r = self.rng.random()
        if r < 0.5:
            value = f"{area}-{local}"
        elif r < 0.65:
            value = f"({area}){local}"
        elif r < 0.75:
            value = f"（{area}）{local}"
        elif r < 0.85 or len(area) + len(local) > 11:
            value = f"{area} {local}"
        else:  # written solid only where the digits cannot be an invoice code (12 digits)
            value = area + local
        if self.p(0.12):
            value += self.pick(("转", "-")) + self.digits(int(self.rng.integers(2, 5)))
        return self.maybe_fullwidth(value, 0.05)

    def bank_card(self, any_length: bool = False) -> str:
        while True:
            bin_, length = _BINS[int(self.rng.integers(0, len(_BINS)))]
            if any_length or length in (16, 19):
                break
        body = bin_ + self.digits(length - 7)
        value = body + luhn_check_digit(body)
        r = self.rng.random()
        if r < 0.5:
            return self.maybe_fullwidth(value, 0.12)
        separator = " " if r < 0.85 else "-"
        return separator.join(value[i : i + 4] for i in range(0, len(value), 4))

    def passport(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            value = "E" + self.digits(8)
        elif r < 0.9:
            value = "E" + self.pick(tuple("ABCDEFGHJKLMNPQRSTUVWXYZ")) + self.digits(7)
        else:
            value = "G" + self.digits(8)
        return self.maybe_fullwidth(value, 0.05)

    def travel_permit(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            value = "C" + self.digits(8)
        elif r < 0.7:
            value = "C" + self.pick(tuple("ABCDEFGHJKLMNPQRSTUVWXYZ")) + self.digits(7)
        elif r < 0.85:
            value = self.pick(("H", "M")) + self.digits(8)
        else:
            value = "T" + self.digits(8)
        return self.maybe_fullwidth(value, 0.05)

    def plate(self) -> str:
        province = self.pick(tuple(_PLATE_PROVINCES))
        letter = "J" if province == "黑" and self.p(0.6) else self.pick(tuple("ABCDEFGHJKLMN"))
        r = self.rng.random()
        if r < 0.5:
            serial = self.digits(5)
        elif r < 0.75:
            serial = self.pick(tuple(_PLATE_LETTERS)) + self.digits(4)
        elif r < 0.85:
            serial = (
                self.digits(2) + self.pick(tuple(_PLATE_LETTERS)) + self.pick(tuple(_PLATE_LETTERS)) + self.digits(1)
            )
        elif r < 0.93:
            serial = self.pick(("D", "F")) + self.pick(tuple(_PLATE_LETTERS + "0123456789")) + self.digits(4)
        else:
            serial = self.digits(5) + self.pick(("D", "F"))
        joiner = self.pick(("·", " ")) if self.p(0.1) else ""
        return province + letter + joiner + serial

    def email(self) -> str:
        domain = self.pick(_EMAIL_DOMAINS)
        if domain == "qq.com" and self.p(0.6):
            local = str(self.rng.integers(10_000, 3_000_000_000))
        else:
            local = self.pick(PINYIN) + self.pick(("", ".", "_")) + self.pick(PINYIN)
            if self.p(0.5):
                local += str(self.rng.integers(1, 2025))
        return local + "@" + domain

    def ip(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return f"192.168.{self.rng.integers(0, 256)}.{self.rng.integers(1, 255)}"
        if r < 0.5:
            return f"10.{self.rng.integers(0, 256)}.{self.rng.integers(0, 256)}.{self.rng.integers(1, 255)}"
        if r < 0.85:
            return ".".join(str(self.rng.integers(1, 224 if i == 0 else 256)) for i in range(4))
        if r < 0.93:
            return "2001:db8::" + format(int(self.rng.integers(1, 0xFFFF)), "x")
        if r < 0.96:
            return "fe80::" + ":".join(format(int(v), "x") for v in self.rng.integers(0, 0xFFFF, 3))
        return ":".join(format(int(v), "x") for v in self.rng.integers(0, 0xFFFF, 8))

    def person(self, known_share: float = 0.8) -> str:
        return self.pick(self.known_names) if self.p(known_share) else self.pick(self.fresh_names)

    def address(self) -> str:
        r = self.rng.random()
        full = self.pick(self.addresses)
        if r < 0.55:
            return self.maybe_fullwidth(full, 0.03)
        local = full.removeprefix("黑龙江省双鸭山市")
        if r < 0.7:
            return local
        if r < 0.8:
            for district in self.districts:
                if local.startswith(district):
                    return local.removeprefix(district)
            return local
        if r < 0.9:
            return f"{self.pick(self.other_regions)}{self.pick(self.streets)}{self.rng.integers(1, 300)}号"
        return f"{self.pick(_COUNTIES)}{self.pick(_TOWNS)}{self.pick(_VILLAGES)}{self.rng.integers(1, 12)}组"

    # -- hard negatives ------------------------------------------------------------
    def bad_check_id(self) -> str:
        value = self.pick(self.ids)
        wrong = self.pick(tuple(c for c in "0123456789X" if c != value[-1]))
        return value[:-1] + wrong

    def impossible_birth_id(self) -> str:
        """Right check character, impossible or future birth date: valid-looking to a checksum-only test."""
        value = self.pick(self.ids)
        date = self.pick(("19900231", "19870229", "19751301", "19680032", "20990101", "20310615", "18990101"))
        body = value[:6] + date + value[14:17]
        return body + id_check_char(body)

    def bad_check_uscc(self) -> str:
        value = self.pick(self.usccs)
        wrong = self.pick(tuple(c for c in USCC_ALPHABET if c != value[-1]))
        return value[:-1] + wrong

    def bad_luhn_card(self) -> str:
        while True:
            bin_, length = _BINS[int(self.rng.integers(0, len(_BINS)))]
            if length in (16, 19):
                break
        body = bin_ + self.digits(length - 7)
        good = luhn_check_digit(body)
        value = body + self.pick(tuple(d for d in "0123456789" if d != good))
        return value if self.p(0.6) else " ".join(value[i : i + 4] for i in range(0, len(value), 4))

    def order_number(self) -> str:
        """18 digits that are no resident ID (a valid one would be indistinguishable)."""
        while True:
            value = self.pick(("2024", "2025", "2023")) + self.digits(14) if self.p(0.6) else self.digits(18)
            if value[0] != "0" and not is_valid_resident_id(value) and not is_valid_uscc(value):
                return value

    def timestamp(self) -> str:
        seconds = int(self.rng.integers(1_600_000_000, 1_780_000_000))
        if self.p(0.5):
            return str(seconds * 1000 + int(self.rng.integers(0, 1000)))
        moment = _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC)
        return moment.strftime(self.pick(("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d%H%M%S")))

    def date(self) -> str:
        day = _dt.date(2020, 1, 1) + _dt.timedelta(days=int(self.rng.integers(0, 2000)))
        return day.strftime(self.pick(("%Y年%m月%d日", "%Y-%m-%d", "%Y.%m.%d", "%Y/%m/%d")))

    def amount(self) -> str:
        value = float(self.rng.lognormal(8, 1.5))
        return self.pick((f"{value:,.2f}", f"{value:.2f}", f"{int(value)}"))

    def zip_code(self) -> str:
        return "15" + self.digits(4)

    def invoice(self) -> str:
        return self.pick(("0", "1", "2", "3")) + self.digits(int(self.rng.choice([7, 11, 19])))


def _street(address: str) -> str:
    """The street of a generated 住址 (district + street + 号 ...), "" if it cannot be cut out."""
    for suffix in ("大街", "路", "街"):
        cut = address.find(suffix)
        if cut > 0:
            start = max(address.rfind("区", 0, cut), address.rfind("县", 0, cut)) + 1
            return address[start : cut + len(suffix)]
    return ""
