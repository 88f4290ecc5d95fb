"""A first column profiler: which columns hold personal information, and which level to suggest.

Why: classification and grading (双鸭山市公共数据管理暂行办法 第十一条 分类分级) is the custodian's
decision, but a custodian facing a 60-column export needs a starting point that is right for the
columns that matter most. This profiler reads each column's header and validates a sample of its
values against the national check-character standards, so that it neither trusts a misleading
header nor misses identifiers under an uninformative one. Its answers are *suggestions* kept
beside the custodian's decision (the registry stores both).

Levels (registry vocabulary, 双鸭山 第十一条):

* L4 — sensitive personal information (个人信息保护法 第二十八条: 生物识别、宗教信仰、特定身份、
  医疗健康、金融账户、行踪轨迹): resident ID numbers, health, bank cards, biometrics, religion,
  precise location.
* L3 — other personal information (names, phones, addresses, birth dates, gender, ethnicity …).
* L2 — identifiers of legal entities (统一社会信用代码, company names) and every column the
  profiler recognises nothing in: whether a column may be opened as is (L1) is a custodian's
  decision, never a guess, so the profiler does not suggest L1.

Work is vectorized over an evenly spread sample of at most ``sample`` rows per column: profiling
a 200,000-row table costs about as much as profiling a 1,000-row one. Imports nothing of Keyong
outside ``desensitize``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from desensitize.identifiers import valid_luhn, valid_resident_ids, valid_usccs

__all__ = ["LEVELS", "PII_TYPES", "ColumnProfile", "PiiType", "max_level", "profile_columns"]

LEVELS = ("L1", "L2", "L3", "L4")


@dataclass(frozen=True, slots=True)
class PiiType:
    """A kind of column: its level, whether it is (sensitive) personal information, its header words."""

    name: str
    label: str  # the Chinese name custodians read
    level: str
    personal_info: bool
    sensitive: bool
    synonyms: tuple[str, ...]


def _pi(name: str, label: str, synonyms: tuple[str, ...], *, sensitive: bool = False) -> PiiType:
    return PiiType(name, label, "L4" if sensitive else "L3", True, sensitive, synonyms)


def _entity(name: str, label: str, synonyms: tuple[str, ...]) -> PiiType:
    return PiiType(name, label, "L2", False, False, synonyms)


#: The column kinds the profiler knows, with the header words that name them. ASCII synonyms are
#: written normalised (lower case, no separators); they match the whole header or one of its words.
PII_TYPES: dict[str, PiiType] = {
    t.name: t
    for t in (
        _pi("cn_resident_id", "公民身份号码",
            ("公民身份号码", "身份证号码", "身份证号", "居民身份证号码", "居民身份证号", "身份证", "证件号码",
             "证件号", "身份证件号码", "idcard", "idcardno", "idno", "residentid", "idnumber"), sensitive=True),
        _pi("passport", "护照号码", ("护照号码", "护照号", "passport", "passportno"), sensitive=True),
        _pi("bank_card", "银行卡号",
            ("银行卡号", "银行卡号码", "银行账号", "银行账户", "卡号", "开户账号", "bankcard", "cardno",
             "bankaccount", "iban"), sensitive=True),
        _pi("health", "医疗健康",
            ("病历", "诊断", "诊断结果", "疾病", "病史", "既往病史", "健康状况", "病种", "病情", "就诊记录",
             "残疾类别", "残疾等级", "diagnosis", "disease", "medical"), sensitive=True),
        _pi("religion", "宗教信仰", ("宗教信仰", "宗教", "religion"), sensitive=True),
        _pi("biometric", "生物识别信息",
            ("指纹", "人脸", "人脸图像", "虹膜", "声纹", "掌纹", "fingerprint", "faceimage", "biometric"),
            sensitive=True),
        _pi("precise_location", "行踪轨迹",
            ("经纬度", "经度", "纬度", "定位", "行踪", "轨迹", "行动轨迹", "gps", "latitude", "longitude", "lat",
             "lng", "lon"), sensitive=True),
        _pi("person_name", "姓名",
            ("姓名", "名字", "户主姓名", "联系人", "法定代表人", "法人代表", "负责人", "申请人", "name", "fullname",
             "personname"), ),
        _pi("cn_phone", "手机号码",
            ("手机号码", "手机号", "手机", "联系电话", "电话号码", "电话", "联系方式", "移动电话", "mobile", "phone",
             "tel", "telephone", "cellphone"), ),
        _pi("email", "电子邮箱", ("电子邮箱", "邮箱地址", "电子邮件", "邮箱", "email", "mail", "emailaddress")),
        _pi("address", "住址",
            ("家庭住址", "居住地址", "现住址", "住址", "地址", "住所", "通讯地址", "联系地址", "address", "addr")),
        _pi("birth_date", "出生日期", ("出生日期", "出生年月", "生日", "birthdate", "birthday", "dob")),
        _pi("gender", "性别", ("性别", "gender", "sex")),
        _pi("ethnicity", "民族", ("民族", "ethnicity", "nation")),
        _pi("household_region", "户籍地", ("户籍地", "户籍所在地", "籍贯", "户籍", "出生地")),
        _pi("license_plate", "车牌号", ("车牌号码", "车牌号", "号牌号码", "plate", "plateno")),
        _pi("income", "收入",
            ("收入", "月收入", "年收入", "工资", "薪资", "月缴费基数", "缴费基数", "salary", "income")),
        _entity("uscc", "统一社会信用代码",
                ("统一社会信用代码", "社会信用代码", "信用代码", "uscc", "creditcode", "unifiedsocialcreditcode")),
        _entity("company_name", "单位名称",
                ("企业名称", "单位名称", "公司名称", "参保单位", "工作单位", "机构名称", "companyname", "company",
                 "orgname", "employer")),
    )
}  # fmt: skip

# Header -> type by exact match, then a Chinese synonym contained in the header, then an ASCII word.
_EXACT: dict[str, str] = {s: t.name for t in PII_TYPES.values() for s in t.synonyms}
_CJK_SYNONYMS: list[tuple[str, str]] = sorted(
    ((s, t.name) for t in PII_TYPES.values() for s in t.synonyms if not s.isascii()),
    key=lambda pair: -len(pair[0]),
)
_SEPARATORS = re.compile(r"[\s_\-./:：（）()【】\[\]]+")
_WORDS = re.compile(r"[a-z]+|[0-9]+")

_PHONE = r"^(?:\+?86[- ]?)?1[3-9]\d{9}$"
_EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"
_GENDER = {"男", "女", "男性", "女性", "未知", "m", "f", "male", "female", "1", "2", "0", "9"}
_COMMON_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆"
    "汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍"
    "庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华"
    "喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和"
    "仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_CHINESE_NAME = rf"^[{_COMMON_SURNAMES}][\u4e00-\u9fff]{{1,3}}$|^(?:欧阳|司马|上官|诸葛|东方|皇甫|尉迟|公孙|慕容|令狐)[\u4e00-\u9fff]{{1,2}}$"  # noqa: E501

VALID_SHARE = 0.8  # share of sampled values that must validate for a value-only detection
MISMATCH_SHARE = 0.2  # below this share, a header's claim is contradicted by the values


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """The profiler's suggestion for one column, with the reasons a custodian can check."""

    name: str
    pii_type: str | None
    level: str
    personal_info: bool
    sensitive: bool
    confidence: float
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pii_type": self.pii_type,
            "level": self.level,
            "personal_info": self.personal_info,
            "sensitive": self.sensitive,
            "confidence": self.confidence,
            "reasons": list(self.reasons),
        }


def max_level(profiles: list[ColumnProfile]) -> str:
    """The highest level among the columns (a resource is graded by its most sensitive item)."""
    return max((p.level for p in profiles), default="L2", key=LEVELS.index)


def _normalise(header: str) -> str:
    return _SEPARATORS.sub("", str(header).strip().lower())


def _header_type(header: str) -> tuple[str | None, float, str]:
    """(type, strength, matched synonym): exact match 1.0, contained Chinese or ASCII word 0.8."""
    key = _normalise(header)
    if not key:
        return None, 0.0, ""
    if key in _EXACT:
        return _EXACT[key], 1.0, key
    # A Chinese compound names its head last (联系人手机号 is a phone, 法定代表人身份证号 an ID):
    # the synonym ending latest wins, then the longest.
    best: tuple[int, int, str, str] | None = None
    for synonym, name in _CJK_SYNONYMS:
        at = key.rfind(synonym)
        if at >= 0:
            rank = (at + len(synonym), len(synonym), synonym, name)
            if best is None or rank[:2] > best[:2]:
                best = rank
    if best is not None:
        return best[3], 0.8, best[2]
    for word in _WORDS.findall(str(header).lower()):
        if word in _EXACT:
            return _EXACT[word], 0.8, word
    return None, 0.0, ""


def _sample(series: pd.Series, size: int) -> pd.Series:
    """At most ``size`` non-null values spread evenly over the column's non-null rows (deterministic).

    Spread, not the head: exports are often sorted (by district, by date), and a column may be
    empty for its first thousands of rows.
    """
    present = np.flatnonzero(series.notna().to_numpy(dtype=bool))
    if len(present) > size:
        present = present[_spread(len(present), size)]
    return series.iloc[present]


def _spread(n: int, size: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, num=min(n, size)).astype(np.int64))


def _as_text(values: pd.Series) -> pd.Series | None:
    """Sampled values as strings, or None when the column cannot faithfully hold text identifiers.

    Integers are rendered (a phone number stored as int64 is still a phone number); floats are not,
    because an 18-digit number has already lost digits as a float and judging its rendering would
    flag garbage.
    """
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        return values.astype("int64").astype(str).astype("string")
    if pd.api.types.is_float_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return None
    text = values.astype("string")
    return text.str.strip()


def _share(mask: pd.Series | np.ndarray) -> float:
    array = np.asarray(mask, dtype=bool)
    return float(array.mean()) if array.size else 0.0


def _validated_share(pii_type: str, values: pd.Series, text: pd.Series | None) -> float | None:
    """Share of sampled values that look like ``pii_type``; None when values cannot tell."""
    if pii_type == "birth_date":
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return 1.0
        if text is None:
            return None
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
        return _share(parsed.notna())
    if text is None:
        return None
    if pii_type == "cn_resident_id":
        return _share(valid_resident_ids(text))
    if pii_type == "uscc":
        return _share(valid_usccs(text))
    if pii_type == "cn_phone":
        return _share(text.str.match(_PHONE, na=False))
    if pii_type == "bank_card":
        compact = text.str.replace(r"[\s-]", "", regex=True)
        return _share(valid_luhn(compact, min_len=13, max_len=19))
    if pii_type == "email":
        return _share(text.str.match(_EMAIL, na=False))
    if pii_type == "gender":
        return _share(text.str.lower().isin(_GENDER))
    if pii_type == "person_name":
        return _share(text.str.match(_CHINESE_NAME, na=False))
    return None


# Value detectors tried when the header says nothing (or is contradicted), strongest first.
_VALUE_DETECTORS = ("cn_resident_id", "uscc", "bank_card", "cn_phone", "email", "person_name")


def _detect_by_values(values: pd.Series, text: pd.Series | None) -> tuple[str, float] | None:
    if text is None or not len(text):
        return None
    for pii_type in _VALUE_DETECTORS:
        share = _validated_share(pii_type, values, text)
        if share is None or share < VALID_SHARE:
            continue
        if pii_type == "bank_card":
            # One number in ten passes Luhn by chance: ask for nearly all, and card-like lengths.
            lengths = text.str.replace(r"[\s-]", "", regex=True).str.len()
            if share < 0.95 or _share(lengths.between(15, 19)) < 0.95:
                continue
        if pii_type == "person_name" and text.nunique() < 0.3 * len(text):
            continue  # names are many and varied; a short code list that happens to match is not
        return pii_type, share
    return None


def _profile(name: str, series: pd.Series, sample: int) -> ColumnProfile:
    header_type, strength, synonym = _header_type(name)
    values = _sample(series, sample)
    text = _as_text(values)
    reasons: list[str] = []
    n = len(values)

    if header_type is not None:
        kind = PII_TYPES[header_type]
        how = "names" if strength == 1.0 else f"contains {synonym!r}, which names"
        reasons.append(f"header {name!r} {how} {kind.label} ({kind.name})")
        share = _validated_share(header_type, values, text) if n else None
        if share is None:
            return _suggest(name, header_type, 0.85 * strength, reasons)
        reasons.append(f"{share:.0%} of {n} sampled values look like {kind.label}")
        if share >= MISMATCH_SHARE:
            return _suggest(name, header_type, round(strength * (0.6 + 0.39 * share), 2), reasons)
        other = _detect_by_values(values, text)
        if other is not None:
            other_type, other_share = other
            reasons.append(
                f"but {other_share:.0%} look like {PII_TYPES[other_type].label} ({other_type}): the values win"
            )
            return _suggest(name, other_type, round(0.5 + 0.3 * other_share, 2), reasons)
        # The header claims a kind the values contradict: keep the header's (protective) level but
        # say clearly that the custodian must look.
        reasons.append("the values contradict the header: check this column before relying on the suggestion")
        return _suggest(name, header_type, 0.3, reasons)

    found = _detect_by_values(values, text)
    if found is not None:
        found_type, share = found
        reasons.append(f"header {name!r} names nothing known, but {share:.0%} of {n} sampled values look like "
                       f"{PII_TYPES[found_type].label} ({found_type})")  # fmt: skip
        return _suggest(name, found_type, round(0.6 + 0.35 * share, 2), reasons)
    reasons.append("no personal information recognised in the header or the sampled values; the level is a default")
    return ColumnProfile(name, None, "L2", False, False, 0.5 if n else 0.3, tuple(reasons))


def _suggest(name: str, pii_type: str, confidence: float, reasons: list[str]) -> ColumnProfile:
    kind = PII_TYPES[pii_type]
    return ColumnProfile(
        name, pii_type, kind.level, kind.personal_info, kind.sensitive, min(0.99, confidence), tuple(reasons)
    )


def profile_columns(df: pd.DataFrame, sample: int = 1000) -> list[ColumnProfile]:
    """One suggestion per column of ``df``, in column order.

    Each column's header is matched against known synonyms and an evenly spread sample of at most
    ``sample`` non-null values is validated (GB 11643 resident IDs, GB 32100 USCCs, Luhn bank
    cards, mobile and e-mail patterns, common-surname names). Values that validate under an
    unhelpful header are still found; a header the values contradict yields a low confidence.
    """
    if sample < 1:
        raise ValueError("sample must be at least 1")
    return [_profile(str(column), df.iloc[:, i], sample) for i, column in enumerate(df.columns)]
