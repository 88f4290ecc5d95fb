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
a 200,000-row table costs about as much as profiling a 1,000-row one. The value checks themselves
(check characters, formats) live in ``desensitize.validators``, shared with whoever needs to know
which cells of a column are valid. Imports nothing of Keyong outside ``desensitize``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from desensitize.cells import check_cells
from desensitize.validators import VALUE_TYPES, normalized_text, valid_values

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
        _pi("passport", "护照号码", ("护照号码", "护照号", "护照", "passport", "passportno"), sensitive=True),
        # 往来港澳/台湾通行证 and the permits of Hong Kong, Macao and Taiwan residents identify a person
        # as a passport does (GB/T 35273-2020 附录B: 个人身份信息 are sensitive).
        _pi("travel_permit", "通行证号码",
            ("通行证号码", "通行证号", "通行证", "港澳通行证", "往来港澳通行证", "台湾通行证", "往来台湾通行证",
             "港澳居民来往内地通行证", "台湾居民来往大陆通行证", "台胞证", "回乡证", "travelpermit", "permitno"),
            sensitive=True),
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
        _pi("cn_landline", "固定电话",
            ("固定电话", "固话", "座机", "座机号码", "座机号", "办公电话", "单位电话", "家庭电话", "办公室电话",
             "landline", "officephone"), ),
        _pi("email", "电子邮箱", ("电子邮箱", "邮箱地址", "电子邮件", "邮箱", "email", "mail", "emailaddress")),
        # GB/T 35273-2020 附录A lists IP addresses among 网络身份标识信息 (personal information).
        _pi("ip_address", "IP地址", ("ip地址", "ip", "ipaddress", "登录ip", "ipv4", "ipv6", "ip地址信息")),
        _pi("address", "住址",
            ("家庭住址", "居住地址", "现住址", "住址", "地址", "住所", "通讯地址", "联系地址", "address", "addr")),
        _pi("birth_date", "出生日期", ("出生日期", "出生年月", "生日", "birthdate", "birthday", "dob")),
        _pi("age", "年龄", ("年龄", "周岁", "岁数", "age")),
        _pi("gender", "性别", ("性别", "gender", "sex")),
        _pi("ethnicity", "民族", ("民族", "ethnicity", "nation")),
        _pi("household_region", "户籍地", ("户籍地", "户籍所在地", "籍贯", "户籍", "出生地")),
        _pi("license_plate", "车牌号", ("车牌号码", "车牌号", "号牌号码", "plate", "plateno")),
        _pi("income", "收入",
            ("收入", "月收入", "年收入", "工资", "薪资", "月缴费基数", "缴费基数", "salary", "income")),
        # Sentences written by clerks carry whatever personal information the case needed (names,
        # phones, IDs of relatives): treated as personal information until redacted.
        _pi("free_text", "备注等自由文本",
            ("备注", "说明", "情况说明", "描述", "内容", "备注信息", "详细描述", "事项说明", "处理意见", "办理意见",
             "摘要", "附言", "留言", "remark", "remarks", "note", "notes", "comment", "comments", "description",
             "memo"), ),
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


# Types whose values may be numbers or dates; every other type's values must be text (or integers)
# to be judged: an 18-digit identifier stored as a float has already lost digits.
_NUMERIC_TYPES = frozenset({"birth_date", "age", "income", "precise_location", "gender"})


def _judgeable(pii_type: str, values: pd.Series) -> bool:
    dtype = values.dtype
    if pii_type in _NUMERIC_TYPES:
        return True
    if pd.api.types.is_bool_dtype(dtype):
        return False
    return not (pd.api.types.is_float_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype))


def _share(mask: pd.Series | np.ndarray) -> float:
    array = np.asarray(mask, dtype=bool)
    return float(array.mean()) if array.size else 0.0


def _validated_share(pii_type: str, values: pd.Series) -> float | None:
    """Share of sampled values that are valid values of ``pii_type``; None when values cannot tell."""
    if pii_type not in VALUE_TYPES or not _judgeable(pii_type, values):
        return None
    return _share(valid_values(pii_type, values))


# Value detectors tried when the header says nothing (or is contradicted), strongest first: check
# characters, then distinctive formats, then names, addresses and sentences.
_VALUE_DETECTORS = (
    "cn_resident_id", "uscc", "bank_card", "cn_phone", "cn_landline", "email", "ip_address", "license_plate",
    "passport", "travel_permit", "person_name", "address", "free_text",
)  # fmt: skip


def _detect_by_values(values: pd.Series) -> tuple[str, float] | None:
    if not len(values):
        return None
    text: pd.Series | None = None
    for pii_type in _VALUE_DETECTORS:
        share = _validated_share(pii_type, values)
        if share is None or share < VALID_SHARE:
            continue
        text = normalized_text(values) if text is None else text
        if pii_type == "bank_card":
            # One number in ten passes Luhn by chance: ask for nearly all, and card-like lengths.
            lengths = text.str.replace(r"[\s-]", "", regex=True).str.len()
            if share < 0.95 or _share(lengths.between(15, 19).fillna(False)) < 0.95:
                continue
        if pii_type == "travel_permit" and _share(text.str.match("[A-Z]", na=False)) < VALID_SHARE:
            continue  # 8 bare digits are a 台胞证 number only under a header that says so
        if pii_type == "person_name" and text.nunique() < 0.3 * len(text):
            continue  # names are many and varied; a short code list that happens to match is not
        return pii_type, share
    return None


def _profile(name: str, series: pd.Series, sample: int) -> ColumnProfile:
    header_type, strength, synonym = _header_type(name)
    values = _sample(series, sample)
    reasons: list[str] = []
    n = len(values)

    if header_type is not None:
        kind = PII_TYPES[header_type]
        how = "names" if strength == 1.0 else f"contains {synonym!r}, which names"
        reasons.append(f"header {name!r} {how} {kind.label} ({kind.name})")
        share = _validated_share(header_type, values) if n else None
        if share is None:
            return _suggest(name, header_type, 0.85 * strength, reasons)
        reasons.append(f"{share:.0%} of {n} sampled values look like {kind.label}")
        if share >= MISMATCH_SHARE:
            return _suggest(name, header_type, round(strength * (0.6 + 0.39 * share), 2), reasons)
        other = _detect_by_values(values)
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

    found = _detect_by_values(values)
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


def profile_columns(
    df: pd.DataFrame, sample: int = 1000, *, overrides: Mapping[str, str | None] | None = None
) -> list[ColumnProfile]:
    """One suggestion per column of ``df``, in column order.

    Each column's header is matched against known synonyms and an evenly spread sample of at most
    ``sample`` non-null values is validated (``desensitize.validators``: GB 11643 resident IDs,
    GB 32100 USCCs, Luhn bank cards, phone, e-mail, IP, plate and document formats, common-surname
    names, addresses, sentences). Values that validate under an unhelpful header are still found; a
    header the values contradict yields a low confidence.

    ``overrides`` (column -> type, or None for "no personal information") is the custodian's own
    classification, which always wins: such a column gets that type's level, confidence 1.0 and a
    reason that says who decided (分类分级 is the custodian's decision, 双鸭山 第十一条).
    """
    if sample < 1:
        raise ValueError("sample must be at least 1")
    overrides = dict(overrides or {})
    unknown = {t for t in overrides.values() if t is not None and t not in PII_TYPES}
    if unknown:
        raise ValueError(f"unknown column types {sorted(unknown)}; known: {sorted(PII_TYPES)}")
    check_cells(df)  # bytes, nested values, lone surrogates: refused by column and record, as the pipeline does
    out = []
    for i, column in enumerate(df.columns):
        name = str(column)
        if name in overrides:
            out.append(_overridden(name, overrides[name]))
        else:
            out.append(_profile(name, df.iloc[:, i], sample))
    return out


def _overridden(name: str, pii_type: str | None) -> ColumnProfile:
    reason = ("set by the custodian",)
    if pii_type is None:
        return ColumnProfile(name, None, "L2", False, False, 1.0, reason)
    kind = PII_TYPES[pii_type]
    return ColumnProfile(name, pii_type, kind.level, kind.personal_info, kind.sensitive, 1.0, reason)
