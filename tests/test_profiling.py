"""The column profiler: suggestions for classification and grading (双鸭山 第十一条 分类分级).

Sensitive personal information (个人信息保护法 第二十八条: resident IDs, health, bank cards …) is
suggested at L4, other personal information at L3, entity identifiers at L2; headers are not
trusted blindly and identifiers under uninformative headers are still found.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from desensitize import synthetic
from desensitize.identifiers import luhn_check_digit
from desensitize.profiling import PII_TYPES, ColumnProfile, max_level, profile_columns


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return synthetic.generate_all(3000, seed=7)


def by_name(profiles: list[ColumnProfile]) -> dict[str, ColumnProfile]:
    return {p.name: p for p in profiles}


def test_residents_are_classified_column_by_column(tables: dict[str, pd.DataFrame]) -> None:
    profiles = by_name(profile_columns(tables["residents"]))
    expected = {
        "姓名": ("person_name", "L3"),
        "公民身份号码": ("cn_resident_id", "L4"),
        "性别": ("gender", "L3"),
        "民族": ("ethnicity", "L3"),
        "出生日期": ("birth_date", "L3"),
        "手机号码": ("cn_phone", "L3"),
        "住址": ("address", "L3"),
        "户籍地": ("household_region", "L3"),
    }
    assert {name: (p.pii_type, p.level) for name, p in profiles.items()} == expected
    resident_id = profiles["公民身份号码"]
    assert resident_id.sensitive and resident_id.personal_info and resident_id.confidence >= 0.95
    assert any("100% of 1000 sampled values" in r for r in resident_id.reasons)
    assert all(p.personal_info for p in profiles.values())
    assert max_level(list(profiles.values())) == "L4"


def test_social_insurance_ids_under_a_short_header_are_sensitive(tables: dict[str, pd.DataFrame]) -> None:
    profiles = by_name(profile_columns(tables["social_insurance"]))
    assert (profiles["身份证号"].pii_type, profiles["身份证号"].level) == ("cn_resident_id", "L4")
    assert (profiles["参保单位"].pii_type, profiles["参保单位"].level) == ("company_name", "L2")
    assert profiles["参保状态"].pii_type is None and profiles["参保状态"].level == "L2"
    assert not profiles["参保状态"].personal_info


def test_market_entities_are_entity_identifiers_not_personal_information(tables: dict[str, pd.DataFrame]) -> None:
    """A USCC identifies a legal person, not a natural one: L2, not personal information."""
    profiles = by_name(profile_columns(tables["market_entities"]))
    uscc = profiles["统一社会信用代码"]
    assert (uscc.pii_type, uscc.level, uscc.personal_info) == ("uscc", "L2", False)
    assert uscc.confidence >= 0.95
    assert profiles["企业名称"].level == "L2"
    assert (profiles["法定代表人"].pii_type, profiles["法定代表人"].level) == ("person_name", "L3")
    assert profiles["注册资本"].pii_type is None


def test_a_misleading_header_is_not_trusted(tables: dict[str, pd.DataFrame]) -> None:
    """A column headed 身份证号 holding order numbers keeps a protective level but a low confidence."""
    rng = np.random.default_rng(1)
    orders = pd.Series([f"9{n:017d}" for n in rng.integers(0, 10**17, 500)], dtype="string")
    [profile] = profile_columns(pd.DataFrame({"身份证号": orders}))
    assert profile.pii_type == "cn_resident_id" and profile.level == "L4"
    assert profile.confidence < 0.5
    assert any("contradict" in r for r in profile.reasons)


def test_values_win_over_a_header_they_contradict(tables: dict[str, pd.DataFrame]) -> None:
    """A column headed 身份证号 that holds mobile numbers is suggested as phone numbers."""
    phones = tables["residents"]["手机号码"]
    [profile] = profile_columns(pd.DataFrame({"身份证号": phones}))
    assert (profile.pii_type, profile.level) == ("cn_phone", "L3")
    assert any("the values win" in r for r in profile.reasons)


def test_identifiers_under_uninformative_headers_are_found(tables: dict[str, pd.DataFrame]) -> None:
    """No header match but valid IDs, USCCs, phones: the values give them away."""
    people = tables["residents"]
    entities = tables["market_entities"]
    df = pd.DataFrame(
        {
            "字段7": people["公民身份号码"].iloc[:120].to_numpy(),
            "code": entities["统一社会信用代码"].iloc[:120].to_numpy(),
            "备注": people["手机号码"].iloc[:120].to_numpy(),
            "x": people["姓名"].iloc[:120].to_numpy(),
        }
    )
    profiles = by_name(profile_columns(df))
    assert (profiles["字段7"].pii_type, profiles["字段7"].level) == ("cn_resident_id", "L4")
    assert profiles["字段7"].confidence >= 0.9
    assert profiles["code"].pii_type == "uscc"
    assert profiles["备注"].pii_type == "cn_phone"
    assert profiles["x"].pii_type == "person_name"
    assert all("names nothing known" in p.reasons[0] for p in profiles.values())


def test_bank_cards_need_nearly_all_values_to_pass_luhn() -> None:
    """Luhn passes one random number in ten, so a column of arbitrary 16-digit numbers is not cards."""
    rng = np.random.default_rng(3)
    bodies = [f"62{n:013d}" for n in rng.integers(0, 10**13, 400)]
    cards = pd.Series([b + luhn_check_digit(b) for b in bodies], dtype="string")
    random_numbers = pd.Series([f"62{n:014d}" for n in rng.integers(0, 10**14, 400)], dtype="string")
    profiles = by_name(profile_columns(pd.DataFrame({"账户信息": cards, "流水": random_numbers})))
    assert (profiles["账户信息"].pii_type, profiles["账户信息"].level) == ("bank_card", "L4")
    assert profiles["流水"].pii_type is None


def test_compound_headers_are_read_by_their_head_noun() -> None:
    df = pd.DataFrame(
        {
            "联系人手机号": ["13912345678"],
            "法定代表人身份证号": ["11010519491231002X"],
            "联系人姓名": ["王小明"],
            "company_name": ["双鸭山某某有限公司"],
            "customer_phone": ["13812345678"],
            "电子邮箱地址": ["a@example.cn"],
            "既往病史": ["高血压"],
            "宗教信仰": ["无"],
        }
    )
    got = {p.name: (p.pii_type, p.level) for p in profile_columns(df)}
    assert got == {
        "联系人手机号": ("cn_phone", "L3"),
        "法定代表人身份证号": ("cn_resident_id", "L4"),
        "联系人姓名": ("person_name", "L3"),
        "company_name": ("company_name", "L2"),
        "customer_phone": ("cn_phone", "L3"),
        "电子邮箱地址": ("email", "L3"),
        "既往病史": ("health", "L4"),
        "宗教信仰": ("religion", "L4"),
    }


def test_sensitive_kinds_follow_pipl_article_28() -> None:
    """Every L4 kind is sensitive personal information and every sensitive kind is L4."""
    for kind in PII_TYPES.values():
        assert (kind.level == "L4") == kind.sensitive
        assert kind.personal_info == (kind.level in ("L3", "L4"))
    assert {"cn_resident_id", "health", "bank_card", "biometric", "religion", "precise_location"} <= {
        k.name for k in PII_TYPES.values() if k.sensitive
    }


def test_integer_phone_columns_are_read_but_float_ids_are_not_judged() -> None:
    phones = pd.Series(np.arange(13900000000, 13900000500, dtype=np.int64))
    floats = pd.Series(np.full(500, 1.1010519491231002e17))
    profiles = by_name(profile_columns(pd.DataFrame({"号码": phones, "字段": floats})))
    assert profiles["号码"].pii_type == "cn_phone"
    assert profiles["字段"].pii_type is None


def test_short_code_lists_are_not_mistaken_for_names() -> None:
    """Village names like 李庄 match the surname pattern, but a handful repeated is a code list."""
    villages = pd.Series(["李庄", "张村", "王屯"] * 200, dtype="string")
    [profile] = profile_columns(pd.DataFrame({"村": villages}))
    assert profile.pii_type is None


def test_the_sample_spreads_over_the_whole_column(tables: dict[str, pd.DataFrame]) -> None:
    """Identifiers that only start after many empty rows are still sampled."""
    ids = tables["residents"]["公民身份号码"].iloc[:2000].to_numpy()
    column = pd.Series([None] * 20_000 + list(ids), dtype="string")
    [profile] = profile_columns(pd.DataFrame({"字段": column}), sample=200)
    assert profile.pii_type == "cn_resident_id"
    assert any("of 200 sampled values" in r for r in profile.reasons)


def test_empty_columns_and_empty_frames() -> None:
    assert profile_columns(pd.DataFrame()) == []
    profiles = by_name(profile_columns(pd.DataFrame({"姓名": pd.Series([], dtype="string"), "x": [None] * 0})))
    assert profiles["姓名"].pii_type == "person_name"
    assert profiles["x"].pii_type is None and profiles["x"].level == "L2"
    with pytest.raises(ValueError):
        profile_columns(pd.DataFrame({"a": [1]}), sample=0)


def test_profiling_200k_rows_takes_well_under_a_second() -> None:
    people = synthetic.residents(200_000, seed=11)
    profile_columns(people.head(10))  # warm up imports and regex caches
    started = time.perf_counter()
    profiles = profile_columns(people)
    elapsed = time.perf_counter() - started
    assert len(profiles) == len(people.columns)
    assert elapsed < 0.5, f"profiling took {elapsed:.2f} s"
