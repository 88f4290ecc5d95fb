"""The generated 市场主体登记 of 双鸭山: market entities with valid unified social credit codes.

Why: the USCC recognizers verify check characters (GB 32100-2015, with the GB 11714-1997
organization code inside), so the generated codes must pass them; and the 法定代表人 are drawn from
the residents, so names link across tables and the export guard's record-linkage rules have
something to catch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from desensitize import USCC_ALPHABET, org_code_check_chars, uscc_check_chars
from samples.columns import Text, age_on, ascii_rows, code_digits, concat, frame, table_rng, unique_redraw, weighted
from samples.population import draw_names, local_addresses
from samples.world import (
    AS_OF,
    CITY,
    COMPANY_FORMS,
    ENTITY_KINDS,
    INDUSTRY_SECTIONS,
    INDUSTRY_WORDS,
    SHOP_FORMS,
    SHUANGYASHAN_DISTRICTS,
    STREAM_ENTITIES,
    TRADE_CHARS,
)

__all__ = ["market_entities"]


def _uscc_index(chars: str) -> np.ndarray:
    lut = {c: i for i, c in enumerate(USCC_ALPHABET)}
    return np.array([lut[c] for c in chars], dtype=np.int64)


# GB 11714 value of each USCC alphabet character (digits 0-9, letters A=10 .. Z=35).
_USCC_TO_ORG_VALUE = np.array(
    [int(c) if c.isdigit() else ord(c) - ord("A") + 10 for c in USCC_ALPHABET], dtype=np.int64
)
_USCC_ASCII = np.frombuffer(USCC_ALPHABET.encode("ascii"), dtype=np.uint8)
_ASCII_TO_USCC_INDEX = np.full(128, -1, dtype=np.int64)
_ASCII_TO_USCC_INDEX[_USCC_ASCII] = np.arange(len(USCC_ALPHABET))
_NEW_CODE_DATE = np.datetime64("2015-10-01", "D")  # 三证合一: "MA…" subject codes from then on


class _Kinds(NamedTuple):
    """The drawn kind of each entity: index into ``ENTITY_KINDS`` and one mask per kind."""

    kind: np.ndarray
    is_company: np.ndarray
    is_shop: np.ndarray
    is_coop: np.ndarray
    is_assoc: np.ndarray


def market_entities(n: int, seed: int = 0, residents_df: pd.DataFrame | None = None) -> pd.DataFrame:
    """``n`` market entities registered in 双鸭山 (市场主体登记), deterministic in ``seed``.

    Columns: 统一社会信用代码, 企业名称, 法定代表人, 注册资本 (万元, 2 decimals), 行业 (GB/T 4754
    门类), 成立日期 (datetime64[ns]), 住所.  The USCC is GB 32100-valid: position 1-2 the
    kind (91 企业, 92 个体工商户, 93 农民专业合作社, 51 社会团体), 3-8 the registering district,
    9-17 a GB 11714 organization code with a valid check (``MA`` + 6 characters for entities
    founded since the 2015 reform, 8 digits before), 18 the mod-31 check.  Names follow
    行政区划 + 字号 + 行业 + 组织形式 and are distinct.  With ``residents_df`` the
    法定代表人 are residents aged 20-75, so names link across tables.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = table_rng(seed, STREAM_ENTITIES)

    kind_index = weighted(rng, n, [w for _, w in ENTITY_KINDS])
    kind_code = np.array([k for k, _ in ENTITY_KINDS])[kind_index]
    kinds = _Kinds(kind_index, *(kind_code == k for k, _ in ENTITY_KINDS))
    district = weighted(rng, n, [w for _, _, w in SHUANGYASHAN_DISTRICTS])

    # Founding date: density rising toward the present; cooperatives exist since the 2007 law.
    as_of = np.datetime64(AS_OF, "D")
    start = np.where(kinds.is_coop, np.datetime64("2007-07-01", "D"), np.datetime64("1990-01-01", "D"))
    span = (as_of - start).astype(np.int64)
    founded = start + (np.sqrt(rng.random(n)) * span).astype(np.int64)

    industry, word = _industries(rng, kinds)
    names, company_form = _entity_names(rng, kinds, district, word)
    usccs = _usccs(rng, kinds, district, founded)
    capital = _registered_capital(rng, kinds, company_form)
    representative = _representatives(rng, n, residents_df)
    address = local_addresses(rng, district, with_flat=False)

    return frame(
        {
            "统一社会信用代码": usccs,
            "企业名称": names,
            "法定代表人": representative,
            "注册资本": capital,
            "行业": industry,
            "成立日期": founded.astype("datetime64[ns]"),
            "住所": address,
        }
    )


def _industries(rng: np.random.Generator, kinds: _Kinds) -> tuple[np.ndarray, np.ndarray]:
    """(行业 section name, the industry word of the company name) per entity."""
    n = len(kinds.kind)
    sections = list(INDUSTRY_WORDS)
    section = weighted(rng, n, [INDUSTRY_WORDS[s][0] for s in sections])
    section = np.where(kinds.is_coop, sections.index("A"), section)
    word_lists = [INDUSTRY_WORDS[s][1] for s in sections]
    max_words = max(len(w) for w in word_lists)
    word_table = np.array([list(w) + [w[0]] * (max_words - len(w)) for w in word_lists])
    word_count = np.array([len(w) for w in word_lists])
    word = word_table[section, (rng.random(n) * word_count[section]).astype(np.int64)]
    industry = np.array([INDUSTRY_SECTIONS[s] for s in sections])[section]
    industry = np.where(kinds.is_assoc, INDUSTRY_SECTIONS["S"], industry)
    coop_words = np.array(("水稻种植", "大豆种植", "玉米种植", "蔬菜种植", "生猪养殖", "肉牛养殖", "农机"))
    word = np.where(kinds.is_coop, coop_words[rng.integers(0, len(coop_words), n)], word)
    return industry, word


def _entity_names(
    rng: np.random.Generator, kinds: _Kinds, district: np.ndarray, word: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(distinct 企业名称, the company form drawn for each row): 行政区划 + 字号 + 行业 + 组织形式."""
    n = len(kinds.kind)
    district_names = np.array([name for _, name, _ in SHUANGYASHAN_DISTRICTS])
    company_prefix = np.array(["双鸭山", "双鸭山市", "黑龙江"])[weighted(rng, n, [0.6, 0.25, 0.15])]
    company_prefix = np.where(rng.random(n) < 0.15, district_names[district], company_prefix)
    prefix = np.select(
        [kinds.is_company, kinds.is_shop, kinds.is_coop],
        [company_prefix, concat(CITY, district_names[district]), district_names[district]],
        CITY,
    )
    company_form = np.array([f for f, _ in COMPANY_FORMS])[weighted(rng, n, [w for _, w in COMPANY_FORMS])]
    shop_form = np.array(SHOP_FORMS)[rng.integers(0, len(SHOP_FORMS), n)]
    form = np.select(
        [kinds.is_company, kinds.is_shop, kinds.is_coop], [company_form, shop_form, "农民专业合作社"], "协会"
    )

    trade_pool = np.array(TRADE_CHARS)
    trade1 = trade_pool[rng.integers(0, len(trade_pool), n)]
    trade2 = trade_pool[rng.integers(0, len(trade_pool), n)]
    names = concat(prefix, trade1, trade2, word, form)

    def redraw_name(pos: np.ndarray) -> np.ndarray:
        t1 = trade_pool[rng.integers(0, len(trade_pool), len(pos))]
        t2 = trade_pool[rng.integers(0, len(trade_pool), len(pos))]
        return concat(prefix[pos], t1, t2, word[pos], form[pos])

    return unique_redraw(names.astype(object), redraw_name).astype(str), company_form


def _usccs(rng: np.random.Generator, kinds: _Kinds, district: np.ndarray, founded: np.ndarray) -> np.ndarray:
    """Distinct GB 32100-2015 codes: kind + district + GB 11714 organization code + mod-31 check."""
    n = len(kinds.kind)
    new_style = founded >= _NEW_CODE_DATE

    def draw_body(size: int, new: np.ndarray) -> np.ndarray:
        body = np.empty((size, 8), dtype=np.int64)
        body[:, :2] = np.where(new[:, None], _uscc_index("MA")[None, :], rng.integers(0, 10, (size, 2)))
        body[:, 2:] = np.where(new[:, None], rng.integers(0, 31, (size, 6)), rng.integers(0, 10, (size, 6)))
        body[:, 0] = np.where(new, body[:, 0], rng.integers(1, 10, size))  # legacy codes do not start with 0
        return body

    # Organization code (positions 9-17), as USCC alphabet indexes.
    body = draw_body(n, new_style)
    region_digits = code_digits([c for c, _, _ in SHUANGYASHAN_DISTRICTS])[district].astype(np.int64)
    auth_kind = np.stack([_uscc_index(k) for k, _ in ENTITY_KINDS])[kinds.kind]  # (n, 2)

    def uscc_strings(rows: np.ndarray, body_rows: np.ndarray) -> np.ndarray:
        org_check = org_code_check_chars(_USCC_TO_ORG_VALUE[body_rows]).view(np.uint32)
        first17 = np.concatenate(
            [auth_kind[rows], region_digits[rows], body_rows, _ASCII_TO_USCC_INDEX[org_check][:, None]], axis=1
        )
        codes = np.empty((len(rows), 18), dtype=np.uint8)
        codes[:, :17] = _USCC_ASCII[first17]
        codes[:, 17] = uscc_check_chars(first17).view(np.uint32) if len(rows) else 0
        return ascii_rows(codes)

    usccs = uscc_strings(np.arange(n), body)

    def redraw_uscc(pos: np.ndarray) -> np.ndarray:
        body[pos] = draw_body(len(pos), new_style[pos])
        return uscc_strings(pos, body[pos])

    return unique_redraw(usccs.astype(object), redraw_uscc).astype(str) if n else usccs


def _registered_capital(rng: np.random.Generator, kinds: _Kinds, company_form: np.ndarray) -> np.ndarray:
    """Registered capital, 万元: lognormal by kind, two decimals."""
    n = len(kinds.kind)
    median = np.select([kinds.is_company, kinds.is_shop, kinds.is_coop], [100.0, 5.0, 50.0], 3.0)
    sigma = np.select([kinds.is_company, kinds.is_shop, kinds.is_coop], [1.3, 1.0, 1.0], 0.5)
    capital = median * np.exp(sigma * rng.standard_normal(n))
    capital = np.where(kinds.is_company & (company_form == "股份有限公司"), capital * 10, capital)
    return np.asarray(np.round(np.clip(capital, 0.1, 1_000_000.0), 2))


def _representatives(rng: np.random.Generator, n: int, residents_df: pd.DataFrame | None) -> pd.Series | Text:
    """Legal representatives: residents aged 20-75 when given, else freshly drawn names."""
    if residents_df is not None and len(residents_df):
        ages = age_on(residents_df["出生日期"].to_numpy(), AS_OF)
        pool = np.flatnonzero((ages >= 20) & (ages <= 75))
        if len(pool) == 0:
            pool = np.arange(len(residents_df))
        return residents_df["姓名"].take(pool[rng.integers(0, len(pool), n)])
    return draw_names(rng, rng.random(n) < 0.7)
