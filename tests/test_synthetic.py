"""Tests of samples.synthetic: the generated tables are valid, consistent, linked,
deterministic, and written in the encodings ingestion must handle."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desensitize.identifiers import (
    USCC_ALPHABET,
    is_valid_org_code,
    is_valid_resident_id,
    is_valid_uscc,
    resident_id_birth_date,
    resident_id_gender,
    valid_resident_ids,
    valid_usccs,
)
from samples.synthetic import (
    AS_OF,
    CONTRIBUTION_BASE_MAX,
    CONTRIBUTION_BASE_MIN,
    INDUSTRY_SECTIONS,
    SHUANGYASHAN_DISTRICTS,
    generate_all,
    market_entities,
    region_names,
    residents,
    social_insurance,
    write_csv,
)

FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**32 - 1)
DISTRICT_BY_CODE = {code: name for code, name, _ in SHUANGYASHAN_DISTRICTS}
MOBILE_PREFIXES = {str(p) for p in [*range(130, 140), 147, *range(150, 160), 166, *range(170, 179),
                                    *range(180, 190), 191, 198, 199]}  # fmt: skip
ADDRESS = re.compile(
    r"^黑龙江省双鸭山市(尖山区|岭东区|四方台区|宝山区|集贤县|友谊县|宝清县|饶河县)"
    r"[\u4e00-\u9fff]+(路|街|大街)[1-9]\d{0,2}号[1-9]\d?栋[1-6]单元[1-9]\d?0[1-4]室$"
)


def _age(birth: pd.Series) -> pd.Series:
    before = (birth.dt.month > AS_OF.month) | ((birth.dt.month == AS_OF.month) & (birth.dt.day > AS_OF.day))
    return AS_OF.year - birth.dt.year - before.astype(int)


def _single_substitutions(values: list[str], alphabets: list[str]) -> list[str]:
    return [
        v[:i] + c + v[i + 1 :] for v in values for i, alphabet in enumerate(alphabets) for c in alphabet if c != v[i]
    ]


# ---------------------------------------------------------------------------
# residents
# ---------------------------------------------------------------------------


def test_residents_schema() -> None:
    df = residents(40, seed=1)
    expected = ["姓名", "公民身份号码", "性别", "民族", "出生日期", "手机号码", "住址", "户籍地", "备注"]
    assert list(df.columns) == expected
    assert len(df) == 40
    assert df["出生日期"].dtype == "datetime64[ns]"
    assert residents(0).shape == (0, 9)
    with pytest.raises(ValueError):
        residents(5, seed=-1)


@FAST
@given(seeds, st.integers(1, 60))
def test_resident_ids_are_valid_and_agree_with_other_columns(seed: int, n: int) -> None:
    df = residents(n, seed)
    ids = df["公民身份号码"].tolist()
    assert all(is_valid_resident_id(i) for i in ids)
    assert valid_resident_ids(df["公民身份号码"]).all()
    assert df["公民身份号码"].is_unique and df["手机号码"].is_unique
    regions = region_names()
    for row in df.itertuples(index=False):
        pid = row.公民身份号码
        assert resident_id_gender(pid) == row.性别
        assert resident_id_birth_date(pid) == row.出生日期.date()
        assert regions[pid[:6]] == row.户籍地
        assert ADDRESS.match(row.住址), row.住址
        assert 2 <= len(row.姓名) <= 4
        assert len(row.手机号码) == 11 and row.手机号码.isdigit() and row.手机号码[:3] in MOBILE_PREFIXES
    assert df["出生日期"].between(pd.Timestamp("1940-01-01"), pd.Timestamp("2008-12-31")).all()


@settings(max_examples=5, deadline=None)
@given(seeds)
def test_one_character_change_of_a_generated_id_is_rejected(seed: int) -> None:
    ids = residents(12, seed)["公民身份号码"].tolist()
    variants = _single_substitutions(ids, ["0123456789"] * 17 + ["0123456789X"])
    assert len(variants) == 12 * (17 * 9 + 10)
    assert not valid_resident_ids(pd.Series(variants)).any()
    assert not any(is_valid_resident_id(v) for v in variants[::7])


def test_resident_distributions_are_plausible() -> None:
    df = residents(20_000, seed=3)
    local = df["户籍地"].str.startswith("黑龙江省双鸭山市")
    assert 0.08 < 1 - local.mean() < 0.12  # migrants
    assert (df["公民身份号码"].str[:6].map(DISTRICT_BY_CODE).notna() == local).all()
    assert 0.87 < (df["民族"] == "汉族").mean() < 0.93
    assert {"满族", "朝鲜族", "赫哲族"} <= set(df["民族"])
    assert 0.48 < (df["性别"] == "男").mean() < 0.53
    assert df["姓名"].str[0].value_counts().index[0] in {"王", "李", "张"}
    assert (df["姓名"].str.len() == 2).mean() == pytest.approx(0.25, abs=0.03)
    assert df["出生日期"].dt.year.between(1940, 2008).all()
    assert set(df["出生日期"].dt.year) == set(range(1940, 2009))
    # Locals mostly live in the district of their 户籍.
    live = df["住址"].str[8:11]
    assert (live == df["户籍地"].str[8:11])[local].mean() > 0.8


# ---------------------------------------------------------------------------
# market entities
# ---------------------------------------------------------------------------


@FAST
@given(seeds, st.integers(1, 80))
def test_entity_usccs_are_valid_and_consistent(seed: int, n: int) -> None:
    df = market_entities(n, seed)
    assert list(df.columns) == ["统一社会信用代码", "企业名称", "法定代表人", "注册资本", "行业", "成立日期", "住所"]
    codes = df["统一社会信用代码"]
    assert valid_usccs(codes, strict_org_code=True).all()
    assert all(is_valid_uscc(c, strict_org_code=True) for c in codes)
    assert codes.is_unique and df["企业名称"].is_unique
    for row in df.itertuples(index=False):
        code = row.统一社会信用代码
        assert code[:2] in {"91", "92", "93", "51"}
        assert is_valid_org_code(code[8:17])
        district = DISTRICT_BY_CODE[code[2:8]]
        assert row.住所.startswith("黑龙江省双鸭山市" + district)
        new_style = row.成立日期 >= pd.Timestamp("2015-10-01")
        assert code[8:10] == "MA" if new_style else code[8:16].isdigit()
        assert row.行业 in INDUSTRY_SECTIONS.values()
        if code[:2] == "93":
            assert row.企业名称.endswith("农民专业合作社") and row.行业 == INDUSTRY_SECTIONS["A"]
        if code[:2] == "91":
            assert row.企业名称.endswith(("有限公司", "有限责任公司"))
        assert row.注册资本 > 0 and round(row.注册资本, 2) == row.注册资本
        assert pd.Timestamp("1990-01-01") <= row.成立日期 <= pd.Timestamp(AS_OF)


@settings(max_examples=5, deadline=None)
@given(seeds)
def test_one_character_change_of_a_generated_uscc_is_rejected(seed: int) -> None:
    codes = market_entities(6, seed)["统一社会信用代码"].tolist()
    variants = _single_substitutions(codes, [USCC_ALPHABET] * 18)
    assert len(variants) == 6 * 18 * 30
    assert not valid_usccs(pd.Series(variants)).any()
    assert not any(is_valid_uscc(v) for v in variants[::11])


def test_entities_mix_and_legal_representatives_link_to_residents() -> None:
    people = residents(3000, seed=5)
    df = market_entities(2000, seed=5, residents_df=people)
    assert set(df["法定代表人"]) <= set(people["姓名"])
    kinds = df["统一社会信用代码"].str[:2].value_counts(normalize=True)
    assert kinds["91"] > 0.8 and {"92", "93", "51"} <= set(kinds.index)
    assert df["行业"].value_counts().index[0] == INDUSTRY_SECTIONS["F"]
    assert df["企业名称"].str.startswith("双鸭山").mean() > 0.5
    # Without residents the representatives are still names.
    alone = market_entities(50, seed=5)
    assert alone["法定代表人"].str.len().between(2, 4).all()


# ---------------------------------------------------------------------------
# social insurance
# ---------------------------------------------------------------------------


def test_social_insurance_links_and_bounds() -> None:
    tables = generate_all(4000, seed=11)
    people, si, ent = tables["residents"], tables["social_insurance"], tables["market_entities"]
    assert list(si.columns) == ["身份证号", "姓名", "出生日期", "参保单位", "月缴费基数", "参保状态", "参保日期"]
    assert si["身份证号"].is_unique
    merged = si.merge(people, left_on="身份证号", right_on="公民身份号码", how="left", validate="1:1")
    assert merged["公民身份号码"].notna().all()
    assert (merged["姓名_x"] == merged["姓名_y"]).all()
    # The enrolment's birth date is the resident's (the 身份证号 encodes it too): the demo model's age signal.
    assert (merged["出生日期_x"] == merged["出生日期_y"]).all()
    assert si["出生日期"].dtype == "datetime64[ns]"
    merged = merged.rename(columns={"出生日期_y": "出生日期"})
    age = _age(merged["出生日期"])
    assert (age >= 16).all()
    assert (age <= 65).mean() > 0.8
    assert (merged.loc[age > 65, "参保状态"] == "终止参保").all()
    working = people[_age(people["出生日期"]).between(16, 65)]
    assert len(si[age <= 65]) / len(working) == pytest.approx(0.8, abs=0.03)
    assert si["月缴费基数"].dtype == np.int64
    assert si["月缴费基数"].between(CONTRIBUTION_BASE_MIN, CONTRIBUTION_BASE_MAX).all()
    assert set(si["参保状态"]) == {"正常参保", "暂停参保", "终止参保"}
    assert (si["参保状态"] == "正常参保").mean() > 0.6
    founded = si["参保单位"].map(ent.set_index("企业名称")["成立日期"])
    assert founded.notna().all()
    assert (si["参保日期"] >= founded).all()
    assert (si["参保日期"] >= pd.Timestamp("1995-01-01")).all()
    assert (si["参保日期"] <= pd.Timestamp(AS_OF)).all()
    assert (si["参保日期"] >= merged["出生日期"] + pd.Timedelta(days=5844)).all()


def test_social_insurance_coverage_parameter() -> None:
    people = residents(1500, seed=2)
    ent = market_entities(20, seed=2)
    none_working = social_insurance(people, ent, seed=2, coverage=0.0)
    assert (none_working["参保状态"] == "终止参保").all()
    assert len(social_insurance(people, ent, seed=2, coverage=1.0)) > len(social_insurance(people, ent, seed=2))
    with pytest.raises(ValueError):
        social_insurance(people, ent.iloc[:0])
    with pytest.raises(ValueError):
        social_insurance(people, ent, coverage=1.5)


# ---------------------------------------------------------------------------
# generate_all, determinism, CSV
# ---------------------------------------------------------------------------


def test_generate_all_sizes() -> None:
    assert {k: len(v) for k, v in generate_all(400, seed=0).items() if k != "social_insurance"} == {
        "residents": 400,
        "market_entities": 20,
    }
    assert len(generate_all(30, seed=0)["market_entities"]) == 10


def _csv_bytes(tables: dict[str, pd.DataFrame], directory: Path, encoding: str = "utf-8") -> dict[str, bytes]:
    directory.mkdir()
    out = {}
    for name, df in tables.items():
        path = directory / f"{name}.csv"
        write_csv(df, path, encoding=encoding)
        out[name] = path.read_bytes()
    return out


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_same_seed_gives_identical_bytes_and_other_seeds_differ(tmp_path: Path, encoding: str) -> None:
    a = _csv_bytes(generate_all(300, seed=42), tmp_path / "a", encoding)
    b = _csv_bytes(generate_all(300, seed=42), tmp_path / "b", encoding)
    c = _csv_bytes(generate_all(300, seed=43), tmp_path / "c", encoding)
    assert a == b
    assert set(a) == {"residents", "social_insurance", "market_entities"}
    for name in a:
        assert a[name] != c[name]


def test_gb18030_csv_round_trips_and_is_not_utf8(tmp_path: Path) -> None:
    tables = generate_all(200, seed=9)
    for name, df in tables.items():
        gb = tmp_path / f"{name}.gb18030.csv"
        utf = tmp_path / f"{name}.utf8.csv"
        write_csv(df, gb, encoding="gb18030")
        write_csv(df, utf)
        raw = gb.read_bytes()
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        assert raw.decode("gb18030") == utf.read_bytes().decode("utf-8")
        assert not utf.read_bytes().startswith(b"\xef\xbb\xbf")
        back = pd.read_csv(gb, encoding="gb18030", dtype=str, keep_default_na=False)
        assert list(back.columns) == list(df.columns)
        for col in df.columns:
            if df[col].dtype.kind == "M":
                expected = df[col].dt.strftime("%Y-%m-%d").tolist()
            elif df[col].dtype.kind == "f":
                back[col] = back[col].astype(float)
                expected = df[col].tolist()
            else:
                expected = df[col].fillna("").astype(str).tolist()  # a null remark is an empty CSV field
            assert back[col].tolist() == expected, col
    # IDs survive as text, check character X included.
    ids = pd.read_csv(tmp_path / "residents.gb18030.csv", encoding="gb18030", dtype=str)["公民身份号码"]
    assert valid_resident_ids(ids).all()


def test_write_csv_rejects_other_encodings(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_csv(residents(2), tmp_path / "x.csv", encoding="big5")


def test_birth_dates_match_ids_at_scale() -> None:
    df = residents(5000, seed=8)
    ids = df["公民身份号码"]
    assert (pd.to_datetime(ids.str[6:14], format="%Y%m%d") == df["出生日期"]).all()
    odd = ids.str[16].astype(int) % 2 == 1
    assert ((df["性别"] == "男") == odd).all()
    assert (ids.str[17] == "X").mean() == pytest.approx(1 / 11, abs=0.02)
    assert ids.str[:6].map(region_names()).eq(df["户籍地"]).all()
    assert df["出生日期"].max() <= pd.Timestamp(dt.date(2008, 12, 31))


def test_resident_notes_carry_personal_data_in_sentences() -> None:
    """备注 is free text holding what real remarks hold: other people's names, phones, the resident's own ID."""
    df = residents(4000, seed=11)
    notes = df["备注"]
    share = notes.notna().mean()
    assert 0.35 < share < 0.55
    text = notes.dropna()
    own_id = text.str.contains("身份证号")
    rows = text[own_id].index
    assert len(rows) > 50
    assert all(df.at[i, "公民身份号码"] in df.at[i, "备注"] for i in rows)
    assert text.str.contains(r"1[3-9]\d{9}|1[3-9]\d \d{4} \d{4}", regex=True).sum() > 200
    assert text.str.contains("0469-", regex=False).sum() > 50
    assert (residents(4000, seed=11)["备注"].fillna("") == notes.fillna("")).all()  # deterministic
