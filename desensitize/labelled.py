"""A labelled test set for the recognizers: true entity spans in sentences and in table cells.

Why generated: detection quality has to be measured on data whose answers are known, and real
government notes cannot leave their domain (原始数据不出域). The set is built from the synthetic
tables (``desensitize.synthetic``: valid IDs, USCCs, names, addresses of 双鸭山) and from generators
here for what those tables lack (bank cards with a Luhn digit, landlines, passports, travel
permits, plates, e-mail and IP addresses). It is deterministic: everything is drawn from one
``numpy.random.Generator`` seeded by ``seed``.

It is deliberately noisy where real notes are: digits in full-width form, numbers split by spaces
or hyphens, +86 prefixes, lower-case check characters, numbers glued into sentences, names
without any context word. And it carries hard negatives that must NOT be flagged: resident IDs and
USCCs with a wrong check character, IDs whose check character is right but whose birth date is
impossible or in the future, bank card numbers failing Luhn, 18-digit order numbers, timestamps,
amounts, dates, postal codes, and words that start with a surname character (全体同志, 于本月).

Two kinds of items:

* ``sentences``: free-text notes, each with 0-3 entities (0 for the hard-negative-only notes);
* ``cells``: a table with one column per entity type (Chinese headers, as a custodian's export
  would have them), mostly true values in noisy formats plus that type's hard negatives and nulls.

``evaluate`` scores predicted spans against the true ones per entity type, span by span, either
``exact`` (same start, end and type) or ``overlap`` (same type and intersection over union >= 0.5,
one-to-one): exact is the bar for identifiers, overlap is fair for names and addresses, whose
boundaries in running Chinese text are a matter of judgement (住在新兴大街12号 vs 新兴大街12号).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from desensitize import synthetic
from desensitize.identifiers import (
    USCC_ALPHABET,
    id_check_char,
    is_valid_resident_id,
    is_valid_uscc,
    luhn_check_digit,
)
from desensitize.recognizers import ENTITY_TYPES

__all__ = [
    "CELL_COLUMNS",
    "EntitySpan",
    "LabelledSet",
    "Score",
    "evaluate",
    "generate",
]

#: Column header of the cell table for each entity type, and the column type it holds.
CELL_COLUMNS: dict[str, tuple[str, str]] = {
    "CN_RESIDENT_ID": ("公民身份号码", "cn_resident_id"),
    "CN_USCC": ("统一社会信用代码", "uscc"),
    "CN_MOBILE": ("手机号码", "cn_phone"),
    "CN_LANDLINE": ("固定电话", "cn_landline"),
    "CN_BANK_CARD": ("银行卡号", "bank_card"),
    "CN_PASSPORT": ("护照号码", "passport"),
    "CN_TRAVEL_PERMIT": ("通行证号码", "travel_permit"),
    "CN_LICENSE_PLATE": ("车牌号码", "license_plate"),
    "EMAIL_ADDRESS": ("电子邮箱", "email"),
    "IP_ADDRESS": ("IP地址", "ip_address"),
    "PERSON": ("姓名", "person_name"),
    "CN_ADDRESS": ("住址", "address"),
}


@dataclass(frozen=True, slots=True)
class EntitySpan:
    """A true entity: ``row`` of the sentence (or cell) series, character offsets, type."""

    row: int
    start: int
    end: int
    entity_type: str


class _SpanLike(Protocol):
    row: int
    start: int
    end: int
    entity_type: str


@dataclass(frozen=True)
class LabelledSet:
    """The generated set. ``cells`` columns are named by ``CELL_COLUMNS`` headers; ``cell_truth``
    has the same shape and says which cells are true values of their column's type."""

    sentences: pd.Series
    sentence_entities: tuple[EntitySpan, ...]
    negative_rows: np.ndarray  # rows of ``sentences`` that hold hard negatives only
    cells: pd.DataFrame
    cell_truth: pd.DataFrame
    names: tuple[str, ...]  # the "dataset's own name column": names known to the custodian
    seed: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def cell_entities(self, entity_type: str) -> tuple[EntitySpan, ...]:
        """True spans of one cell column: the whole (stripped) value of every true cell."""
        header = CELL_COLUMNS[entity_type][0]
        values = self.cells[header]
        truth = self.cell_truth[header].to_numpy(dtype=bool)
        out = []
        for row in np.flatnonzero(truth):
            text = values.iloc[row]
            lead = len(text) - len(text.lstrip())
            out.append(EntitySpan(int(row), lead, len(text.rstrip()), entity_type))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Score:
    """Span-level quality of one entity type."""

    entity_type: str
    precision: float
    recall: float
    support: int  # true spans
    predicted: int
    true_positives: int

    def as_json(self) -> dict[str, object]:
        return {
            "entity_type": self.entity_type,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "support": self.support,
            "predicted": self.predicted,
            "true_positives": self.true_positives,
        }


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------


def _iou(a: _SpanLike, b: _SpanLike) -> float:
    inter = min(a.end, b.end) - max(a.start, b.start)
    if inter <= 0:
        return 0.0
    return inter / (max(a.end, b.end) - min(a.start, b.start))


def evaluate(truth: Iterable[_SpanLike], predicted: Iterable[_SpanLike], *, mode: str = "exact") -> dict[str, Score]:
    """Precision, recall and support per entity type (every type of ``ENTITY_TYPES`` is reported).

    ``mode="exact"``: a prediction is right when a true span has the same row, start, end and type.
    ``mode="overlap"``: right when a true span of the same type in the same row has intersection
    over union >= 0.5 with it; each true span matches at most one prediction. Precision of a type
    with no predictions is 1.0, recall of a type with no support is 1.0.
    """
    if mode not in ("exact", "overlap"):
        raise ValueError("mode must be 'exact' or 'overlap'")
    gold: dict[tuple[int, str], list[_SpanLike]] = {}
    support: dict[str, int] = dict.fromkeys(ENTITY_TYPES, 0)
    for t in truth:
        gold.setdefault((t.row, t.entity_type), []).append(t)
        support[t.entity_type] = support.get(t.entity_type, 0) + 1
    predicted_n: dict[str, int] = dict.fromkeys(support, 0)
    hits: dict[str, int] = dict.fromkeys(support, 0)
    used: set[int] = set()
    for p in predicted:
        predicted_n[p.entity_type] = predicted_n.get(p.entity_type, 0) + 1
        candidates = gold.get((p.row, p.entity_type), [])
        best, best_iou = None, 0.0
        for t in candidates:
            if id(t) in used:
                continue
            if mode == "exact":
                if t.start == p.start and t.end == p.end:
                    best = t
                    break
            else:
                iou = _iou(p, t)
                if iou >= 0.5 and iou > best_iou:
                    best, best_iou = t, iou
        if best is not None:
            used.add(id(best))
            hits[p.entity_type] = hits.get(p.entity_type, 0) + 1
    return {
        entity: Score(
            entity,
            hits[entity] / predicted_n[entity] if predicted_n[entity] else 1.0,
            hits[entity] / support[entity] if support[entity] else 1.0,
            support[entity],
            predicted_n[entity],
            hits[entity],
        )
        for entity in support
    }


# ---------------------------------------------------------------------------
# value generators
# ---------------------------------------------------------------------------

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
_PINYIN = ("zhang", "wang", "li", "liu", "chen", "yang", "zhao", "huang", "zhou", "wu", "xu", "sun", "hu", "zhu",
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


class _Draw:
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
        self.other_regions = [text for _, text in synthetic.OTHER_REGIONS]
        self.districts = [name for _, name, _ in synthetic.SHUANGYASHAN_DISTRICTS]
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
            local = self.pick(_PINYIN) + self.pick(("", ".", "_")) + self.pick(_PINYIN)
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


# ---------------------------------------------------------------------------
# sentences
# ---------------------------------------------------------------------------

# Clause templates per entity type: "{}" is where the value goes. Some clauses carry no context word
# at all (a bare name, a number in passing), as real notes do.
_CLAUSES: dict[str, tuple[str, ...]] = {
    "PERSON": (
        "联系人{}", "联系人：{}", "姓名：{}", "申请人{}", "法定代表人为{}", "户主{}", "经办人{}", "{}先生来电反映",
        "{}女士称", "患者{}", "投诉人{}称", "收件人：{}", "车主{}", "其子{}在外地务工", "家属{}代为办理",
        "{}同志", "紧急联系人{}", "{}于近日到窗口办理业务", "经核实{}已搬离原址", "与{}取得联系",
        "由{}负责跟进", "据{}介绍",
    ),
    "CN_RESIDENT_ID": ("身份证号{}", "公民身份号码：{}", "身份证号码为{}", "证件号码{}", "（身份证{}）", "持{}号身份证",
                       "身份证：{}", "{}"),
    "CN_USCC": ("统一社会信用代码{}", "信用代码：{}", "统一社会信用代码为{}的企业", "（统一社会信用代码：{}）",
                "代码{}"),
    "CN_MOBILE": ("电话{}", "手机：{}", "联系电话{}", "手机号码为{}", "请拨打{}", "{}已停机", "号码{}", "联系方式{}"),
    "CN_LANDLINE": ("办公电话{}", "座机{}", "固话：{}", "请拨打{}咨询", "值班电话{}", "联系电话{}"),
    "CN_BANK_CARD": ("尾号不详的银行卡{}", "{}", "转入{}", "工资卡{}"),
    "CN_PASSPORT": ("护照号码{}", "持护照{}", "护照：{}", "证件号{}", "护照号{}入境"),
    "CN_TRAVEL_PERMIT": ("港澳通行证{}", "往来港澳通行证号码{}", "通行证号{}", "往来台湾通行证{}", "持{}出境"),
    "CN_LICENSE_PLATE": ("车牌号{}", "车牌{}的车辆", "{}号车辆", "驾驶{}小型轿车", "{}在路口违停"),
    "EMAIL_ADDRESS": ("邮箱{}", "电子邮件：{}", "请发送至{}", "{}", "联系邮箱{}"),
    "IP_ADDRESS": ("IP地址{}", "登录IP：{}", "来自{}的访问", "服务器{}", "源地址{}"),
    "CN_ADDRESS": ("家住{}", "住址：{}", "现居住于{}", "地址为{}", "位于{}", "寄往{}", "在{}发生", "{}"),
}  # fmt: skip
# Clauses whose context word lets a 16-19 digit card of any length be recognised.
_CARD_CONTEXT_CLAUSES = ("银行卡号{}", "卡号：{}", "转入账号{}", "借记卡号{}")
# The 台湾居民来往大陆通行证 number is 8 digits: recognisable only after its name.
_TAIWAN_CLAUSES = ("台胞证{}", "台湾居民来往大陆通行证号码{}")

_NEGATIVE_CLAUSES: tuple[tuple[str, str], ...] = (
    ("身份证号{}（校验位有误）", "bad_check_id"), ("身份证号{}", "bad_check_id"), ("证件号码{}", "impossible_birth_id"),
    ("身份证号码{}无效", "impossible_birth_id"), ("统一社会信用代码{}（待核）", "bad_check_uscc"),
    ("卡号{}无效", "bad_luhn_card"), ("银行卡{}", "bad_luhn_card"), ("订单号{}", "order_number"),
    ("运单号{}已签收", "order_number"), ("流水号{}", "order_number"), ("时间戳{}", "timestamp"),
    ("于{}受理", "timestamp"), ("金额{}元", "amount"), ("缴费{}元", "amount"), ("邮编{}", "zip_code"),
    ("发票号码{}", "invoice"), ("{}前办结", "date"), ("日期：{}", "date"),
)  # fmt: skip
_NEGATIVE_PHRASES: tuple[str, ...] = (
    "联系人信息已更新", "申请人数较去年有所增加", "负责人员已到位", "全体同志参加会议", "于本月底前完成整改",
    "高新区管委会已受理", "尖山区人民政府已答复", "方案已报批", "各位女士先生请注意", "请于工作日办理",
    "金额已到账", "马上处理", "周末不办公", "明天上午复查", "安全检查合格", "户主要求补办", "于当日办结",
    "关于调整参保政策的通知", "常年在外务工", "宝清县城区供暖正常", "双鸭山市2024年统计公报",
)  # fmt: skip
_PREFIXES = ("", "", "", "经核实，", "据反映，", "备注：", "情况说明：", "来电记录：", "回访：", "经查，")
_JOINERS = ("，", "，", "；", "。", " ")


def _sentence(draw: _Draw, types: list[str], negatives: int) -> tuple[str, list[tuple[int, int, str]]]:
    parts: list[tuple[str, str | None]] = []  # (text, entity type or None); clause text has "{}" once
    for entity in types:
        if entity == "CN_BANK_CARD" and draw.p(0.5):
            parts.append((draw.pick(_CARD_CONTEXT_CLAUSES), "CN_BANK_CARD*"))
        elif entity == "CN_TRAVEL_PERMIT" and draw.p(0.12):
            parts.append((draw.pick(_TAIWAN_CLAUSES), "CN_TRAVEL_PERMIT*"))
        else:
            parts.append((draw.pick(_CLAUSES[entity]), entity))
    for _ in range(negatives):
        if draw.p(0.7):
            template, maker = _NEGATIVE_CLAUSES[int(draw.rng.integers(0, len(_NEGATIVE_CLAUSES)))]
            parts.append((template.format(getattr(draw, maker)()), None))
        else:
            parts.append((draw.pick(_NEGATIVE_PHRASES), None))
    order = draw.rng.permutation(len(parts))
    text = draw.pick(_PREFIXES)
    spans: list[tuple[int, int, str]] = []
    for i, k in enumerate(order):
        template, entity = parts[int(k)]
        if i:
            text += draw.pick(_JOINERS)
        if entity is None:
            text += template
            continue
        value = _value(draw, entity)
        before, after = template.split("{}")
        start = len(text) + len(before)
        text += before + value + after
        spans.append((start, start + len(value), entity.rstrip("*")))
    return text + draw.pick(("。", "。", "", "！")), spans


def _value(draw: _Draw, entity: str) -> str:
    makers: dict[str, Callable[[], str]] = {
        "CN_RESIDENT_ID": draw.resident_id,
        "CN_USCC": draw.uscc,
        "CN_MOBILE": draw.mobile,
        "CN_LANDLINE": draw.landline,
        "CN_BANK_CARD": draw.bank_card,
        "CN_BANK_CARD*": lambda: draw.bank_card(any_length=True),
        "CN_PASSPORT": draw.passport,
        "CN_TRAVEL_PERMIT": draw.travel_permit,
        "CN_TRAVEL_PERMIT*": lambda: draw.digits(8),
        "CN_LICENSE_PLATE": draw.plate,
        "EMAIL_ADDRESS": draw.email,
        "IP_ADDRESS": draw.ip,
        "PERSON": draw.person,
        "CN_ADDRESS": draw.address,
    }
    return makers[entity]()


# ---------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------


def _bad_cell(draw: _Draw, entity: str) -> str:
    """A hard negative for a cell column of ``entity``: looks like the type, is not one."""
    makers: dict[str, Callable[[], str]] = {
        "CN_RESIDENT_ID": lambda: draw.bad_check_id() if draw.p(0.6) else draw.impossible_birth_id(),
        "CN_USCC": draw.bad_check_uscc,
        "CN_MOBILE": lambda: "1" + draw.pick(("0", "1", "2")) + draw.digits(9),  # no 10x-12x mobile networks
        "CN_LANDLINE": lambda: "00" + draw.digits(1 + int(draw.p(0.5))) + "-" + draw.digits(7),  # no area code 00…
        "CN_BANK_CARD": draw.bad_luhn_card,
        "CN_PASSPORT": lambda: draw.pick(("A", "B", "K", "X")) + draw.digits(8),
        "CN_TRAVEL_PERMIT": lambda: draw.pick(("C", "T")) + draw.digits(6),
        "CN_LICENSE_PLATE": lambda: "黑J" + draw.pick(tuple("ABCDEFGH")) * 3 + draw.digits(2),
        "EMAIL_ADDRESS": lambda: draw.pick(_PINYIN) + draw.pick(("@", "@@", "#")) + draw.pick(("qq", "163.", "com")),
        "IP_ADDRESS": lambda: ".".join(str(draw.rng.integers(256, 999) if i == 2 else draw.rng.integers(1, 255))
                                       for i in range(4)),
        "PERSON": lambda: draw.pick(("不详", "未知", "无", "本人", "同上", "待补充")),
        "CN_ADDRESS": lambda: draw.pick(("不详", "同上", "无固定住所", "待补充", "外地")),
    }  # fmt: skip
    return makers[entity]()


def _cells(draw: _Draw, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns: dict[str, list[str | None]] = {}
    truth: dict[str, list[bool]] = {}
    for entity, (header, _) in CELL_COLUMNS.items():
        values: list[str | None] = []
        flags: list[bool] = []
        for _ in range(n):
            r = draw.rng.random()
            if r < 0.04:
                values.append(None)
                flags.append(False)
            elif r < 0.20:
                values.append(_bad_cell(draw, entity))
                flags.append(False)
            else:
                value = _value(draw, entity)
                if draw.p(0.05):
                    value = " " + value + " "  # stray spaces around a cell: still a value
                values.append(value)
                flags.append(True)
        columns[header] = values
        truth[header] = flags
    return pd.DataFrame(columns, dtype="str"), pd.DataFrame(truth)


# ---------------------------------------------------------------------------
# the set
# ---------------------------------------------------------------------------


def generate(n_sentences: int = 4000, n_cells: int = 600, seed: int = 0) -> LabelledSet:
    """The labelled set: ``n_sentences`` notes (about a quarter hard-negative only, the rest with
    1-3 entities of types drawn uniformly) and a table of ``n_cells`` rows per entity type.

    The names of the residents table are the ``names`` a custodian knows; about one name in five in
    the notes is someone else's (a clerk, a relative) and can be found only from its context.
    """
    if n_sentences < 0 or n_cells < 0:
        raise ValueError("sizes must be non-negative")
    rng = np.random.default_rng(seed)
    tables = synthetic.generate_all(max(200, min(20_000, n_sentences // 2 + n_cells)), seed=seed)
    fresh = synthetic.residents(2000, seed=seed + 7919)
    draw = _Draw(rng, tables, fresh)

    texts: list[str] = []
    entities: list[EntitySpan] = []
    negative_rows: list[int] = []
    for row in range(n_sentences):
        if draw.p(0.25):
            text, spans = _sentence(draw, [], int(draw.rng.integers(1, 4)))
            negative_rows.append(row)
        else:
            k = int(draw.rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
            types = [ENTITY_TYPES[int(i)] for i in draw.rng.integers(0, len(ENTITY_TYPES), k)]
            text, spans = _sentence(draw, types, int(draw.p(0.35)))
        texts.append(text)
        entities.extend(EntitySpan(row, s, e, t) for s, e, t in spans)

    cells, truth = _cells(draw, n_cells)
    return LabelledSet(
        sentences=pd.Series(texts, dtype="str", name="备注"),
        sentence_entities=tuple(entities),
        negative_rows=np.array(negative_rows, dtype=np.int64),
        cells=cells,
        cell_truth=truth,
        names=tuple(tables["residents"]["姓名"].tolist()),
        seed=seed,
        counts={"sentence_entities": len(entities), "cell_positives": int(truth.to_numpy().sum())},
    )
