"""Recognizers of Chinese personal information in free text: one definition per entity, two engines.

Why one definition: presidio is the reference engine for free text (the issue asks for presidio
``PatternRecognizer``s in a ``RecognizerRegistry``), but it analyses one string at a time and runs
at a few thousand rows per second; ``desensitize.textscan`` scans a whole column at once. Both
read the regular expressions, scores and validators defined here, so they cannot drift apart, and
a test checks that they find the same spans.

What is recognised (entity name -> column type of ``desensitize.profiling``):

* ``CN_RESIDENT_ID`` 公民身份号码, GB 11643-1999: 18 characters with the ISO 7064 MOD 11-2 check and a
  real birth date not in the future, or a legacy 15-digit number (YYMMDD in the 1900s).
* ``CN_USCC`` 统一社会信用代码, GB 32100-2015: 18 characters with the mod-31 check character.
* ``CN_BANK_CARD`` 银行卡号: 16 or 19 digits starting 3-6 (ISO/IEC 7812 major industry identifiers
  of bank cards, 62 for UnionPay) passing Luhn; 16-19 digits after a card context word (卡号, 银行卡,
  账号 …). 17- and 18-digit numbers need the context word because order and waybill numbers have
  those lengths and one in ten passes Luhn by chance.
* ``CN_MOBILE`` 手机号码: 1[3-9] + 9 digits, optional +86/0086, optional 3-4-4 spaces or hyphens.
* ``CN_LANDLINE`` 固定电话: area code (010, 02X, or 0[3-9]XX; optionally in parentheses) + a 7-8 digit
  local number starting 2-8, optional extension.
* ``CN_PASSPORT`` 护照号码: E + 8 digits or E + letter + 7 digits (ordinary passports since 2012),
  G + 8 digits (older), D/S/P (+E) + 7-8 digits (diplomatic, service, public affairs).
* ``CN_TRAVEL_PERMIT`` 通行证: 往来港澳通行证 C + 8 digits or C + letter + 7 digits; 港澳居民来往内地通行证
  H/M + 8 (or 10) digits; 往来台湾通行证 T + 8 digits; 台湾居民来往大陆通行证 8 digits after its name.
* ``CN_LICENSE_PLATE`` 机动车号牌 (GA 36-2018): province abbreviation + letter (no I/O) + 5 characters
  (at most 2 letters), or a new-energy 6-character serial (D/F first or last).
* ``EMAIL_ADDRESS``, ``IP_ADDRESS`` (IPv4 with octets <= 255, IPv6 checked by ``ipaddress``).
* ``PERSON`` 姓名: a surname from the list below + 1-2 given-name characters, only where the text
  says a name follows (姓名, 联系人, 法定代表人, 户主, 申请人 …) or precedes a title (先生, 女士, 同志 …);
  plus exact matches of the dataset's own names (``names=``), which is how names without any
  context are found.
* ``CN_ADDRESS`` 地址: province / city / district / town / village / road / house-number patterns;
  a road needs a house number unless an administrative division precedes it.

Noisy digits: full-width characters (U+FF01-U+FF5E) and the ideographic space (U+3000) are mapped
to ASCII before matching by a length-preserving translation, so offsets stay those of the original
text. Tokens glued to other letters or digits do not match: Python's ``\\b`` never fires between a
Chinese character and a digit, so every pattern uses explicit lookarounds instead.

presidio must run offline: ``build_analyzer`` uses presidio's no-op NLP engine (no spaCy model to
download). presidio's context enhancement needs NLP tokens, which no-op does not produce, so the
context words are part of the patterns themselves (a name pattern starts with its context word and
reports only the name, through the regex group ``e``).

presidio itself (with spaCy and torch behind it) takes about two seconds to import, so the presidio
classes are created on first use (PEP 562 module ``__getattr__``): the column profiler and the
scanner import this module without paying for presidio.

Standards: GB 11643-1999, GB 32100-2015, ISO/IEC 7812-1 (Luhn), GA 36-2018 (号牌); what counts as
personal information follows GB/T 35273-2020 附录A and 个人信息保护法 第二十八条.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from desensitize.identifiers import (
    is_luhn_valid,
    is_valid_resident_id,
    is_valid_uscc,
    valid_luhn,
    valid_resident_ids,
    valid_usccs,
)

__all__ = [
    "CJK",
    "COMPOUND_SURNAMES",
    "DATASET_NAME_SCORE",
    "ENTITY_TO_PII_TYPE",
    "ENTITY_TYPES",
    "ID_PROVINCE_CODES",
    "LANGUAGE",
    "NAME_PLACEHOLDERS",
    "NAME_STOP_CHARS",
    "PATTERN_FLAGS",
    "PERSON_CONTEXT",
    "PERSON_DENY",
    "PERSON_TITLES",
    "PERSON_VERBS",
    "PROVINCES",
    "PROVINCE_ABBREVIATIONS",
    "PROVINCE_CODES",
    "RECOGNIZER_SPECS",
    "SINGLE_SURNAMES",
    "PatternSpec",
    "RecognizerSpec",
    "build_analyzer",
    "build_registry",
    "clean_names",
    "dataset_names_spec",
    "normalize_codepoints",
    "normalize_text",
    "recognizer_classes",
    "validate_bank_card",
    "validate_bank_cards",
    "validate_ip",
    "validate_person",
    "validate_plate",
    "validate_resident_id",
    "validate_resident_ids",
    "validate_uscc",
    "validate_usccs",
]

LANGUAGE = "zh"

#: Flags both engines compile every pattern with. Case matters (a lower-case "e12345678" is not a
#: passport number, a USCC is printed in upper case), so presidio's default IGNORECASE is not used.
PATTERN_FLAGS = re.DOTALL

#: The CJK Unified Ideographs block as literal characters (so that the class also works in RE2,
#: which has no \\u escapes).
CJK = "\u4e00-\u9fff"

#: Presidio entity name -> column type (the shared vocabulary of ``desensitize.profiling``).
ENTITY_TO_PII_TYPE: dict[str, str] = {
    "CN_RESIDENT_ID": "cn_resident_id",
    "CN_USCC": "uscc",
    "CN_MOBILE": "cn_phone",
    "CN_LANDLINE": "cn_landline",
    "CN_BANK_CARD": "bank_card",
    "CN_PASSPORT": "passport",
    "CN_TRAVEL_PERMIT": "travel_permit",
    "CN_LICENSE_PLATE": "license_plate",
    "EMAIL_ADDRESS": "email",
    "IP_ADDRESS": "ip_address",
    "PERSON": "person_name",
    "CN_ADDRESS": "address",
}

#: The entity types, in the order that breaks ties between equal-score spans of equal length:
#: checksummed identifiers first, then the more specific formats.
ENTITY_TYPES: tuple[str, ...] = tuple(ENTITY_TO_PII_TYPE)

# ---------------------------------------------------------------------------
# Length-preserving normalisation
# ---------------------------------------------------------------------------

_FULLWIDTH_TABLE: dict[int, int] = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FULLWIDTH_TABLE[0x3000] = 0x20


def normalize_text(text: str) -> str:
    """Full-width ASCII variants (U+FF01-U+FF5E) and U+3000 mapped to ASCII, one character for one.

    Clerks type identifiers with a Chinese input method in full-width mode ("１３８…"); mapping
    character for character keeps every offset of the original text valid.
    """
    return text.translate(_FULLWIDTH_TABLE)


def normalize_codepoints(codes: np.ndarray) -> None:
    """``normalize_text`` in place on an array of code points (uint32): a whole column at numpy speed."""
    wide = (codes >= 0xFF01) & (codes <= 0xFF5E)
    codes[wide] -= 0xFEE0
    codes[codes == 0x3000] = 0x20


# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

#: Single-character surnames: the ~300 most frequent (national registers), which cover well over
#: 95 % of the population.
SINGLE_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆"
    "汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易"
    "乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍"
    "华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师"
    "和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝郜鞠鄂丰衣那来"
)

#: Compound surnames (复姓) in use today.
COMPOUND_SURNAMES: tuple[str, ...] = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "夏侯", "长孙", "宇文",
    "司徒", "轩辕", "端木", "独孤", "南宫", "西门", "百里", "呼延", "澹台", "公冶", "申屠", "太史",
)  # fmt: skip

#: 省级行政区 with their official suffixes (GB/T 2260).
PROVINCES: tuple[str, ...] = (
    "北京市", "天津市", "上海市", "重庆市", "河北省", "山西省", "辽宁省", "吉林省", "黑龙江省", "江苏省",
    "浙江省", "安徽省", "福建省", "江西省", "山东省", "河南省", "湖北省", "湖南省", "广东省", "海南省",
    "四川省", "贵州省", "云南省", "陕西省", "甘肃省", "青海省", "台湾省", "内蒙古自治区", "广西壮族自治区",
    "西藏自治区", "宁夏回族自治区", "新疆维吾尔自治区", "香港特别行政区", "澳门特别行政区",
)  # fmt: skip

#: One-character province abbreviations that open a licence plate (GA 36-2018).
PROVINCE_ABBREVIATIONS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"

#: Words announcing that a person's name follows. Longest first, so that 法定代表人 wins over 代表人.
PERSON_CONTEXT: tuple[str, ...] = tuple(
    sorted(
        {
            "姓名", "名字", "联系人", "法定代表人", "法人代表", "法人", "户主", "申请人", "负责人", "经办人",
            "投诉人", "举报人", "当事人", "患者", "病人", "委托人", "代理人", "收件人", "收货人", "寄件人",
            "监护人", "被保险人", "投保人", "受益人", "驾驶人", "驾驶员", "车主", "机主", "业主", "承租人",
            "出租人", "持卡人", "开户人", "户名", "办理人", "签收人", "报案人", "证人", "对接人", "联络人",
            "填报人", "审核人", "录入人", "来访人", "来电人", "求助人", "参保人", "借款人", "担保人", "户主姓名",
            "被申请人", "嫌疑人", "被告", "原告", "第三人", "房东", "租户", "住户", "职工", "家属", "配偶", "丈夫",
            "妻子", "儿子", "女儿", "父亲", "母亲", "其子", "其女", "其夫", "其妻", "之子", "之女", "紧急联系人",
        },
        key=lambda w: (-len(w), w),
    )
)  # fmt: skip

#: Titles that follow a name (张伟先生, 李娜女士, 王建国同志).
PERSON_TITLES: tuple[str, ...] = (
    "先生", "女士", "同志", "小姐", "老师", "师傅", "医生", "大夫", "主任", "经理", "书记", "局长", "科长",
    "处长", "所长", "院长", "校长", "村长", "组长", "队长", "律师", "警官", "大爷", "大妈", "阿姨", "老人",
)  # fmt: skip

#: Characters that end a name: particles, verbs and nouns that follow names in administrative text
#: and almost never are given-name characters (见 tests: the generated names are never cut short).
NAME_STOP_CHARS = (
    "的了是在与及或等为于从对把被让给到去说称电手身住联性年出证号码户籍地址邮箱座机固话办理申请先女士同也都就又还曾均"
    "代则之后前时经由将已并且而但因所以如果请系即其该此这那你我他她们个位名岁男今昨日身份护照通行驾驶车牌银行卡账户网"
    "统反映表示访问投诉举报现居属父母亲妻夫儿媳外公司单企村镇乡县区市省街组委会工作员签盖"
)

#: Words that start with a surname character but are not names, seen after context words or
#: before titles ("负责人任务", "申请人于本月", "全体同志").
PERSON_DENY: frozenset[str] = frozenset(
    (
        "全体", "各位", "诸位", "广大", "方面", "方式", "方案", "方法", "任务", "任何", "任意", "于是", "于本",
        "于今", "于当", "于上", "于下", "于近", "于昨", "于次", "于某", "于此", "于该", "于其", "于凌", "于每",
        "于一", "于两", "于三", "于去年", "于前日", "于明日", "于明天", "于早上", "于晚上", "于中午", "于傍晚",
        "于周末", "于春节", "于年底", "于年初", "于月底", "于月初", "于同日", "于节后", "和平", "和谐", "高级",
        "高新区", "高速", "金额", "金融", "周末", "周边", "明天", "明年", "明确", "文件", "文化", "石油", "黄金",
        "林业", "马上", "常年", "安全", "安排", "安装", "康复", "温度", "成本", "成员", "成年", "时间", "时候",
        "程序", "余额", "关于", "关系", "包括", "平安", "单位", "管理", "解决", "费用", "许可", "车辆", "连续",
        "项目", "华人", "国家", "应该", "应当", "宁可", "向前", "向上", "向下", "向东", "向西", "向南", "向北",
        "全部", "全面", "全市", "全县", "全区", "全省", "全国", "同时", "同意", "同学", "同事", "本人", "家属",
        "那么", "那里", "那个", "那些", "来自", "来电", "来访", "来信", "来到", "姜汤", "毛巾", "江边", "龙头",
        "白天", "白色", "史上", "严重", "严格", "钱款", "万元", "万人", "路口", "路段", "路面", "邮件",
    )
)  # fmt: skip

# ---------------------------------------------------------------------------
# Validators (True: checked, score 1.0; False: rejected; None: pattern score stands)
# ---------------------------------------------------------------------------


def _compact(text: str) -> str:
    """Digits without the spaces and hyphens the patterns allow between groups."""
    return text.replace(" ", "").replace("-", "")


#: First two digits of GB/T 2260 division codes: the provinces, plus 10 for national registrations.
PROVINCE_CODES = frozenset(
    (
        "10", "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42",
        "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
    )
)  # fmt: skip
#: A resident ID's address code names a province (10 is no province: national registrations only).
ID_PROVINCE_CODES = PROVINCE_CODES - {"10"}


def validate_resident_id(text: str) -> bool:
    """GB 11643-1999: a province address code (GB/T 2260), the MOD 11-2 check character and a real
    birth date, or a legacy 15-digit number."""
    compact = _compact(text).upper()
    return compact[:2] in ID_PROVINCE_CODES and is_valid_resident_id(compact)


def validate_uscc(text: str) -> bool:
    """GB 32100-2015: alphabet, registration authority, an organisation category 1-9 (position 2), a
    division code of a real province (positions 3-4, GB/T 2260) and the mod-31 check character.

    The category and province rules matter in text: an 18-digit resident ID with a wrong check
    character would otherwise pass the mod-31 check once in 31 tries and turn up as a USCC.
    """
    return "1" <= text[1:2] <= "9" and text[2:4] in PROVINCE_CODES and is_valid_uscc(text)


def validate_bank_card(text: str) -> bool:
    """Luhn (ISO/IEC 7812-1 Annex B) over 16-19 digits; an 18-digit valid resident ID is an ID, not a card."""
    digits = _compact(text)
    if not 16 <= len(digits) <= 19 or not is_luhn_valid(digits):
        return False
    return not (len(digits) == 18 and validate_resident_id(digits))


# Vectorized twins of the three checksum validators, for the column scanner, which validates all
# candidates of a pattern at once with numpy (``desensitize.identifiers``). They apply the same
# rules; tests/test_recognizers.py checks that they agree value by value.


def _in(values: list[str], allowed: frozenset[str], start: int) -> np.ndarray:
    return np.fromiter((v[start : start + 2] in allowed for v in values), dtype=bool, count=len(values))


def validate_resident_ids(texts: list[str]) -> np.ndarray:
    """``validate_resident_id`` for many candidates at once."""
    compact = [_compact(t).upper() for t in texts]
    return _in(compact, ID_PROVINCE_CODES, 0) & valid_resident_ids(pd.Series(compact, dtype=object)).to_numpy(bool)


def validate_usccs(texts: list[str]) -> np.ndarray:
    """``validate_uscc`` for many candidates at once."""
    category = np.fromiter(("1" <= t[1:2] <= "9" for t in texts), dtype=bool, count=len(texts))
    return category & _in(texts, PROVINCE_CODES, 2) & valid_usccs(pd.Series(texts, dtype=object)).to_numpy(bool)


def validate_bank_cards(texts: list[str]) -> np.ndarray:
    """``validate_bank_card`` for many candidates at once."""
    compact = [_compact(t) for t in texts]
    lengths = np.fromiter(map(len, compact), dtype=np.int64, count=len(compact))
    luhn = valid_luhn(pd.Series(compact, dtype=object), min_len=16, max_len=19).to_numpy(bool)
    return luhn & ~((lengths == 18) & validate_resident_ids(compact))


def _plate_serial(text: str) -> str:
    return re.sub(r"[\s·•・.\-]", "", text)[2:]


def validate_plate(text: str) -> bool | None:
    """GA 36-2018: an ordinary 5-character serial holds at most two letters; new-energy serials are
    checked by the pattern itself."""
    serial = _plate_serial(text)
    if len(serial) == 5 and sum(c.isalpha() and c.isascii() for c in serial) > 2:
        return False
    return None


def validate_ip(text: str) -> bool | None:
    """The ``ipaddress`` module decides; an IPv6 candidate without a hex digit ("::") is no address."""
    if not any(c.isalnum() for c in text):
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return None


def validate_person(text: str) -> bool | None:
    """Reject words that merely start with a surname character (全体同志, 于本月)."""
    if text in PERSON_DENY or text[:2] in PERSON_DENY:
        return False
    return None


# ---------------------------------------------------------------------------
# Pattern building blocks
# ---------------------------------------------------------------------------

_ALNUM = "0-9A-Za-z"
# Not preceded / followed by a letter or digit. The lookbehind sits *after* the first consumed
# character ("X(?<![..].)"), which gives Python's `re` a literal first character to search for:
# three times faster than a leading lookbehind, and the same set of matches.
_NA = rf"(?![{_ALNUM}])"


def _lead(first: str) -> str:
    """A first character class followed by 'and the character before it is no letter or digit'."""
    return rf"{first}(?<![{_ALNUM}].)"


_SEP = r"[ \-]?"  # at most one space or hyphen between digit groups
# Between a context word and its value: a colon, 为/是, spaces or tabs. (Not \s: Python's `re` and the
# `regex` module presidio uses disagree on whether \x1c-\x1f are spaces.)

# A bare digit run right after "<digit>." is the fractional part of a decimal, not an identifier: a
# float printed at full precision ("17563.18839598282") has 11 digits after the point one time in
# five, one in twenty of those reads as a mobile or landline number, and a 15-digit fraction reads
# as a legacy resident id one time in 1,200 (the check sits after the first character, like _lead).
# Nor is the integer part of a decimal: a sum of 1.5e10 yuan prints as "15234567890.123". Known raw
# values written as decimals are still caught by the guard's fingerprint rule.
_NOT_A_FRACTION = r"(?<![0-9]\..)"
_NOT_BEFORE_A_FRACTION = rf"(?![{_ALNUM}]|\.[0-9])"  # nor its integer part

# 公民身份号码: compact, 6-8-4 or 6-4-4-4 groups; the 15-digit legacy form compact or 6-6-3.
# The 18-digit form keeps matching inside decimals: a float never prints 18 digits on either side of
# its point, so "1.<ID>" is written on purpose.
_ID18 = _lead("[1-9]") + rf"[0-9]{{5}}{_SEP}[0-9]{{4}}{_SEP}[0-9]{{4}}{_SEP}[0-9]{{3}}[0-9Xx]" + _NA
_ID15 = _lead("[1-9]") + _NOT_A_FRACTION + rf"[0-9]{{5}}{_SEP}[0-9]{{6}}{_SEP}[0-9]{{3}}" + _NOT_BEFORE_A_FRACTION

_USCC_CHAR = "0-9A-HJ-NPQRTUWXY"
_USCC = _lead(f"[{_USCC_CHAR}]") + rf"[{_USCC_CHAR}][0-9]{{6}}[{_USCC_CHAR}]{{10}}" + _NA

_MOBILE_BODY = rf"1[3-9][0-9]{_SEP}[0-9]{{4}}{_SEP}[0-9]{{4}}"
_MOBILE = (
    rf"\+(?<![{_ALNUM}].)86[ \-]?{_MOBILE_BODY}{_NA}"
    rf"|\(\+86\)[ \-]?{_MOBILE_BODY}{_NA}"
    rf"|0(?<![{_ALNUM}].){_NOT_A_FRACTION}086[ \-]?{_MOBILE_BODY}{_NA}"
    rf"|1(?<![{_ALNUM}+].){_NOT_A_FRACTION}[3-9][0-9]{_SEP}[0-9]{{4}}{_SEP}[0-9]{{4}}{_NOT_BEFORE_A_FRACTION}"
)

# Area code in parentheses or followed by a space or hyphen, then 7-8 digits; written without a
# separator only as 3+7, 3+8 or 4+7 digits: a 12-digit run starting with 0 is more often a
# 发票代码 (invoice code) than a phone number.
_LANDLINE = (
    rf"(?:\((?:010|02[0-9]|0[3-9][0-9]{{2}})\)[ \-]?[2-8][0-9]{{6,7}}"
    rf"|0(?<![{_ALNUM}].)(?:10|2[0-9]|[3-9][0-9]{{2}})[ \-][2-8][0-9]{{6,7}}"
    rf"|0(?<![{_ALNUM}].){_NOT_A_FRACTION}(?:10|2[0-9])[2-8][0-9]{{6,7}}"
    rf"|0(?<![{_ALNUM}].){_NOT_A_FRACTION}[3-9][0-9]{{2}}[2-8][0-9]{{6}})"
    rf"(?:(?:-|转|分机|ext\.?)[0-9]{{1,5}})?{_NOT_BEFORE_A_FRACTION}"
)

_CARD_CONTEXT = (
    r"(?:卡号|银行卡号?|借记卡号?|储蓄卡号?|信用卡号?|银联卡号?|账号|帐号|账户|帐户"
    r"|收款账号|开户账号|卡号码)"
)
# Card numbers are written in groups of four: a group after a separator continues the number, so
# the end also refuses "followed by a separator and a short group" (the 3 last digits of 19).
_CARD_END = r"(?![0-9A-Za-z]|[ \-][0-9]{1,3}(?![0-9]))"
# Not the fractional part of a decimal either (_NOT_A_FRACTION): "0.5674677435240816" has 16 digits
# after the point, which start with 3-6 and pass Luhn one time in ten.
_CARD_PLAIN = (
    r"[3-6](?<![0-9A-Za-z].)"
    + _NOT_A_FRACTION
    + rf"[0-9]{{3}}(?:{_SEP}[0-9]{{4}}){{3}}(?:{_SEP}[0-9]{{3}})?"
    + _CARD_END
)
_CARD_WITH_CONTEXT = (
    rf"{_CARD_CONTEXT}(?:为|是|:|[ \t])?[ \t]?(?P<e>[3-6][0-9]{{3}}(?:{_SEP}[0-9]{{4}}){{3}}(?:{_SEP}[0-9]{{1,3}})?)"
    + _CARD_END
)

_LETTER = "A-HJ-NP-Z"  # plates and some document numbers leave out I and O
_PASSPORT = (
    _lead("E") + rf"[0-9{_LETTER}][0-9]{{7}}{_NA}"
    "|" + _lead("[GDSP]") + rf"[0-9]{{8}}{_NA}"
    "|" + _lead("[DSP]") + rf"E[0-9]{{7}}{_NA}"
)

_PERMIT = (
    _lead("C") + rf"(?:[0-9]{{8}}|[{_LETTER}][0-9]{{7}}){_NA}"
    "|" + _lead("[HM]") + rf"[0-9]{{8}}(?:[0-9]{{2}})?{_NA}"
    "|" + _lead("T") + rf"[0-9]{{8}}{_NA}"
)
_PERMIT_TAIWAN_CONTEXT = (
    rf"(?:台胞证|台湾居民来往大陆通行证|来往大陆通行证|台湾同胞证)(?:号码|号)?(?::|[ \t])?[ \t]?(?P<e>[0-9]{{8}}){_NA}"
)

_PLATE = (
    rf"[{PROVINCE_ABBREVIATIONS}][{_LETTER}][·•・ ]?"
    rf"(?:[DF][0-9{_LETTER}][0-9]{{4}}|[0-9]{{5}}[DF]|[0-9{_LETTER}]{{4}}[0-9挂学警港澳领])"
    rf"{_NA}"
)

_EMAIL = (
    _lead("[A-Za-z0-9]") + r"(?<![._%+\-].)[A-Za-z0-9._%+\-]{0,63}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}" + _NA
)

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"(?<![{_ALNUM}.]){_OCTET}(?:\.{_OCTET}){{3}}(?![{_ALNUM}]|\.[0-9])"
_HEX = "[0-9A-Fa-f]{1,4}"
_IPV6 = (
    rf"(?<![{_ALNUM}.])(?:{_HEX}(?::{_HEX}){{7}}|(?:{_HEX}(?::{_HEX}){{0,6}})?::(?:{_HEX}(?::{_HEX}){{0,6}})?)"
    rf"(?![{_ALNUM}]|:[0-9A-Fa-f])"
)


def _cjk_except(excluded: str) -> str:
    """A character class of the CJK block without ``excluded``, written as ranges.

    One class test per character is several times faster than a negative lookahead followed by the
    CJK class, which matters in patterns that try every position of a long text.
    """
    ranges: list[str] = []
    low = 0x4E00
    for code in sorted({ord(c) for c in excluded if "\u4e00" <= c <= "\u9fff"}):
        if code > low:
            ranges.append(chr(low) if code - 1 == low else f"{chr(low)}-{chr(code - 1)}")
        low = code + 1
    if low <= 0x9FFF:
        ranges.append(f"{chr(low)}-\u9fff")
    return "[" + "".join(ranges) + "]"


# Names.
_SURNAME = "(?:" + "|".join(COMPOUND_SURNAMES) + f"|[{SINGLE_SURNAMES}])"
_GIVEN = _cjk_except(NAME_STOP_CHARS)
_NAME = f"{_SURNAME}{_GIVEN}{{1,2}}"
# One score for every name pattern: where a known name and a name read from its context overlap
# (known 李英, text 李英梅同志), the longer reading wins.
_NAME_SCORE = 0.8
#: The score of a dataset name found in text (both engines).
DATASET_NAME_SCORE = _NAME_SCORE
_PERSON_WITH_CONTEXT = "(?:" + "|".join(PERSON_CONTEXT) + r")(?:为|是|:|[ \t])?[ \t]?" + f"(?P<e>{_NAME})"
#: Verbs and particles that follow a person who is the subject of a clause (王小明于5月到窗口办理,
#: 据李娜介绍, 由张伟负责).
PERSON_VERBS: tuple[str, ...] = (
    "于", "已", "在", "称", "说", "表示", "反映", "介绍", "曾", "现", "因", "到", "来电", "来访", "负责", "取得",
    "联系", "办理", "签字", "同意", "申请", "本人",
)  # fmt: skip
# A name before a title (张伟先生) or opening a clause before one of those verbs. It must not continue
# a Chinese word, unless that word is a particle that commonly precedes a name (向张伟先生, 由李娜负责).
# The check sits after the surname (one lookbehind per surname length), which gives `re` a literal
# first character to search for.
_AFTER = "向给和与及请由经对被让把跟叫是为找问称派据令陪将、"
# 向 and 和 are surnames too, but before a name they are far more often "to" and "and".
_OPENING_SURNAMES = SINGLE_SURNAMES.replace("向", "").replace("和", "")
_TITLE_OR_VERB = "|".join((*PERSON_TITLES, *PERSON_VERBS))
_PERSON_BEFORE_TITLE_OR_VERB = (
    "(?:(?:" + "|".join(COMPOUND_SURNAMES) + f")(?:(?<![{CJK}]..)|(?<=[{_AFTER}]..))"
    f"|[{_OPENING_SURNAMES}](?:(?<![{CJK}].)|(?<=[{_AFTER}].)))"
    f"{_GIVEN}{{1,2}}(?={_TITLE_OR_VERB})"
)

# Addresses.
_ADDRESS_STOP = "在住于址是为的到往至从号室栋、"
_PART = _cjk_except(_ADDRESS_STOP)
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


# ---------------------------------------------------------------------------
# Definitions
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """One regular expression of a recognizer. If it has a group named ``e``, that group is the entity
    (the rest is context, such as 联系人 before a name)."""

    name: str
    regex: str
    score: float
    #: Optional, for the column scanner only (presidio runs every pattern everywhere): every match
    #: contains an occurrence of ``required`` that starts at most ``reach`` characters after the
    #: match's start, so the scanner tries the pattern only there.
    required: str | None = None
    reach: int = 0


@dataclass(frozen=True, slots=True)
class RecognizerSpec:
    """Everything both engines need to know about one recognizer."""

    name: str  # the presidio class name
    entity_type: str
    patterns: tuple[PatternSpec, ...]
    context: tuple[str, ...] = ()
    validator: Callable[[str], bool | None] | None = None
    #: The same check as ``validator`` over a list of candidates (True: checked, False: rejected),
    #: for validators that only answer True or False.
    batch_validator: Callable[[list[str]], np.ndarray] | None = None


def _spec(
    name: str,
    entity: str,
    patterns: Iterable[tuple[str, str, float] | tuple[str, str, float, str, int]],
    context: Iterable[str] = (),
    validator: Callable[[str], bool | None] | None = None,
    batch_validator: Callable[[list[str]], np.ndarray] | None = None,
) -> RecognizerSpec:
    return RecognizerSpec(
        name, entity, tuple(PatternSpec(*p) for p in patterns), tuple(context), validator, batch_validator
    )


#: The built-in recognizers (the dataset's own names are added per call: ``dataset_names_spec``).
RECOGNIZER_SPECS: tuple[RecognizerSpec, ...] = (
    _spec("ChineseResidentIdRecognizer", "CN_RESIDENT_ID",
          [("resident_id_18", _ID18, 0.5), ("resident_id_15", _ID15, 0.3)],
          ("身份证", "身份证号", "公民身份号码", "证件号码"), validate_resident_id, validate_resident_ids),
    _spec("ChineseUsccRecognizer", "CN_USCC", [("uscc", _USCC, 0.5)],
          ("统一社会信用代码", "信用代码"), validate_uscc, validate_usccs),
    _spec("ChineseBankCardRecognizer", "CN_BANK_CARD",
          [("bank_card", _CARD_PLAIN, 0.5), ("bank_card_context", _CARD_WITH_CONTEXT, 0.6)],
          ("卡号", "银行卡", "账号", "开户行"), validate_bank_card, validate_bank_cards),
    _spec("ChineseMobileRecognizer", "CN_MOBILE", [("mobile", _MOBILE, 0.8)],
          ("手机", "电话", "联系方式", "联系电话")),
    _spec("ChineseLandlineRecognizer", "CN_LANDLINE", [("landline", _LANDLINE, 0.7)],
          ("电话", "座机", "固话", "办公电话")),
    _spec("ChinesePassportRecognizer", "CN_PASSPORT", [("passport", _PASSPORT, 0.6)], ("护照", "护照号码")),
    _spec("ChineseTravelPermitRecognizer", "CN_TRAVEL_PERMIT",
          [("travel_permit", _PERMIT, 0.6), ("taiwan_permit_context", _PERMIT_TAIWAN_CONTEXT, 0.8)],
          ("通行证", "港澳通行证", "台胞证")),
    _spec("ChineseLicensePlateRecognizer", "CN_LICENSE_PLATE", [("plate", _PLATE, 0.75)],
          ("车牌", "车牌号", "号牌"), validate_plate),
    _spec("ChineseEmailRecognizer", "EMAIL_ADDRESS", [("email", _EMAIL, 0.9, "@", 64)], ("邮箱", "电子邮件", "邮件")),
    _spec("ChineseIpRecognizer", "IP_ADDRESS", [("ipv4", _IPV4, 0.8, r"\.[0-9]{1,3}\.[0-9]{1,3}\.", 3),
           ("ipv6", _IPV6, 0.8, "::|:[0-9A-Fa-f]{1,4}:", 40)],
          ("IP", "IP地址", "登录地址"), validate_ip),
    _spec("ChinesePersonRecognizer", "PERSON",
          [("person_context", _PERSON_WITH_CONTEXT, _NAME_SCORE),
           ("person_title_or_verb", _PERSON_BEFORE_TITLE_OR_VERB, _NAME_SCORE, _TITLE_OR_VERB, 4)],
          PERSON_CONTEXT, validate_person),
    _spec("ChineseAddressRecognizer", "CN_ADDRESS",
          [("address_province", _ADDRESS_WITH_PROVINCE, 0.7),
           ("address_local", _ADDRESS_LOCAL, 0.65, _ADDRESS_KEY, _ADDRESS_KEY_REACH)],
          ("地址", "住址", "住所", "居住", "家住")),
)  # fmt: skip


def _trie_regex(words: Iterable[str]) -> str:
    """One regular expression matching any of ``words``, longest first, as a character trie.

    A flat alternation of 100,000 names makes the engine try every name at every position; the
    trie tries only the names that share the characters read so far.
    """
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        ends_here = "" in node
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends_here:
            body = body + "?" if len(branches) == 1 and len(branches[0]) == 1 else f"(?:{body})?"
        return body

    return emit(root)


#: What name columns hold where no name is known; never taken for a name.
NAME_PLACEHOLDERS: frozenset[str] = frozenset(
    ("不详", "未知", "无名", "暂无", "同上", "待补充", "待定", "本人", "其他", "空白", "匿名", "测试", "null", "none")
)


def clean_names(names: Iterable[object]) -> tuple[str, ...]:
    """Distinct names of at least two characters (one would match everywhere), normalised like the
    text, without the placeholders and common words a name column also holds (不详, 同上)."""
    out = {normalize_text(n).strip() for n in names if isinstance(n, str)}
    return tuple(sorted(n for n in out if len(n) >= 2 and n.lower() not in NAME_PLACEHOLDERS and n not in PERSON_DENY))


@functools.lru_cache(maxsize=8)
def _dataset_names_spec(names: tuple[str, ...]) -> RecognizerSpec | None:
    if not names:
        return None
    return _spec("DatasetNameRecognizer", "PERSON", [("dataset_names", _trie_regex(names), _NAME_SCORE)])


def dataset_names_spec(names: Iterable[object]) -> RecognizerSpec | None:
    """The recognizer of the dataset's own names (from its name columns), or None without names.

    These names are recognised wherever they occur, without context: a custodian who knows that
    王小明 is in the table wants 王小明 removed from its notes too.
    """
    return _dataset_names_spec(clean_names(names))


# ---------------------------------------------------------------------------
# presidio
# ---------------------------------------------------------------------------

_PRESIDIO_EXPORTS = ("ChinesePatternRecognizer", *(spec.name for spec in RECOGNIZER_SPECS), "DatasetNameRecognizer")


@functools.cache
def recognizer_classes() -> dict[str, type]:
    """The presidio recognizer classes, created on first use (importing presidio costs ~2 s)."""
    import regex
    from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult

    class ChinesePatternRecognizer(PatternRecognizer):  # type: ignore[misc]
        """A presidio ``PatternRecognizer`` over a ``RecognizerSpec``.

        ``analyze`` differs from presidio's in two ways the Chinese patterns need: the text is
        normalised first (full-width digits), and a pattern's group ``e``, when present, is the
        entity, so a context word can be part of the pattern without becoming part of the span.
        """

        SPEC: RecognizerSpec

        def __init__(self, spec: RecognizerSpec | None = None) -> None:
            spec = spec or self.SPEC
            self.spec = spec
            super().__init__(
                supported_entity=spec.entity_type,
                name=spec.name,
                supported_language=LANGUAGE,
                patterns=[Pattern(p.name, p.regex, p.score) for p in spec.patterns],
                context=list(spec.context),
                global_regex_flags=PATTERN_FLAGS,
            )

        def validate_result(self, pattern_text: str) -> bool | None:
            return None if self.spec.validator is None else self.spec.validator(pattern_text)

        def analyze(
            self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: int | None = None
        ) -> list[Any]:
            text = normalize_text(text)
            flags = regex_flags or self.global_regex_flags
            results = []
            for pattern in self.patterns:
                if not pattern.compiled_regex or pattern.compiled_with_flags != flags:
                    pattern.compiled_with_flags = flags
                    pattern.compiled_regex = regex.compile(pattern.regex, flags=flags)
                grouped = "e" in pattern.compiled_regex.groupindex
                for match in pattern.compiled_regex.finditer(text):
                    start, end = match.span("e") if grouped else match.span()
                    if start < 0 or start == end:
                        continue
                    matched = text[start:end]
                    validation = self.validate_result(matched)
                    if validation is False:
                        continue
                    score = EntityRecognizer.MAX_SCORE if validation else pattern.score
                    explanation = self.build_regex_explanation(
                        self.name, pattern.name, pattern.regex, pattern.score, validation, flags
                    )
                    explanation.score = score
                    results.append(
                        RecognizerResult(
                            entity_type=self.supported_entities[0],
                            start=start,
                            end=end,
                            score=score,
                            analysis_explanation=explanation,
                            recognition_metadata={
                                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                            },
                        )
                    )
            return EntityRecognizer.remove_duplicates(results)

    classes: dict[str, type] = {"ChinesePatternRecognizer": ChinesePatternRecognizer}
    for spec in RECOGNIZER_SPECS:
        classes[spec.name] = type(spec.name, (ChinesePatternRecognizer,), {"SPEC": spec, "__doc__": spec.name})

    class DatasetNameRecognizer(ChinesePatternRecognizer):
        """PERSON: exact matches of the names found in the dataset's own name columns."""

        def __init__(self, names: Iterable[str]) -> None:
            spec = dataset_names_spec(names)
            if spec is None:
                raise ValueError("DatasetNameRecognizer needs at least one name of two or more characters")
            super().__init__(spec)

    classes["DatasetNameRecognizer"] = DatasetNameRecognizer
    return classes


def __getattr__(name: str) -> Any:  # PEP 562: the presidio classes on first access
    if name in _PRESIDIO_EXPORTS:
        return recognizer_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_registry(names: Iterable[str] = ()) -> Any:
    """A presidio ``RecognizerRegistry`` for Chinese (``zh``) holding every recognizer defined here,
    plus the dataset-name recognizer when ``names`` are given."""
    from presidio_analyzer import RecognizerRegistry

    classes = recognizer_classes()
    recognizers = [classes[spec.name]() for spec in RECOGNIZER_SPECS]
    if dataset_names_spec(names) is not None:
        recognizers.append(classes["DatasetNameRecognizer"](names))
    return RecognizerRegistry(recognizers=recognizers, supported_languages=[LANGUAGE])


#: The default NLP configuration: no model at all, so presidio runs offline on the patterns alone.
OFFLINE_NLP = {"nlp_engine_name": "no_op", "models": [{"lang_code": LANGUAGE, "model_name": "no_op"}]}


def build_analyzer(names: Iterable[str] = (), nlp_configuration: dict[str, Any] | None = None) -> Any:
    """A presidio ``AnalyzerEngine`` that runs offline: the no-op NLP engine needs no spaCy model.

    (A plain ``AnalyzerEngine()`` tries to download ``en_core_web_lg``, which these machines cannot.)
    An installation with a Chinese spaCy model passes e.g. ``{"nlp_engine_name": "spacy", "models":
    [{"lang_code": "zh", "model_name": "zh_core_web_sm"}]}``: the same recognizers then get presidio's
    token-based context enhancement and its NER (README, "Desensitization").
    """
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration=nlp_configuration or OFFLINE_NLP)
    return AnalyzerEngine(
        registry=build_registry(names), nlp_engine=provider.create_engine(), supported_languages=[LANGUAGE]
    )
