"""The column profiler: suggestions for classification and grading (双鸭山 第十一条 分类分级).

Sensitive personal information (个人信息保护法 第二十八条: resident IDs, health, bank cards …) is
suggested at L4, other personal information at L3, entity identifiers at L2; headers are not
trusted blindly and identifiers under uninformative headers are still found.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from desensitize.identifiers import luhn_check_digit, uscc_check_char
from desensitize.profiling import PII_TYPES, ColumnProfile, max_level, profile_columns
from desensitize.validators import VALUE_TYPES, valid_values
from samples import labelled, synthetic


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
        "备注": ("free_text", "L3"),
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
            "字段9": people["手机号码"].iloc[:120].to_numpy(),
            "x": people["姓名"].iloc[:120].to_numpy(),
        }
    )
    profiles = by_name(profile_columns(df))
    assert (profiles["字段7"].pii_type, profiles["字段7"].level) == ("cn_resident_id", "L4")
    assert profiles["字段7"].confidence >= 0.9
    assert profiles["code"].pii_type == "uscc"
    assert profiles["字段9"].pii_type == "cn_phone"
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


def test_profiling_200k_rows_validates_a_bounded_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Profiling cost does not grow with the table: every validator sees at most ``sample`` values.

    (This replaces a timed assertion: the speed of the whole pipeline is bench/desensitize_bench.py's to
    show, not a unit test's.)"""
    import desensitize.profiling as profiling

    seen: list[int] = []

    def counting(pii_type: str, values: pd.Series) -> pd.Series:
        seen.append(len(values))
        return valid_values(pii_type, values)

    monkeypatch.setattr(profiling, "valid_values", counting)
    people = synthetic.residents(200_000, seed=11)
    profiles = by_name(profile_columns(people))
    assert len(profiles) == len(people.columns)
    assert profiles["公民身份号码"].pii_type == "cn_resident_id"
    assert seen and max(seen) <= 1000


# ---------------------------------------------------------------------------
# The types added with the recognizers, and the value checks of desensitize.validators
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cells() -> labelled.LabelledSet:
    return labelled.generate(0, 400, seed=9)


def test_every_recognised_column_of_the_labelled_table_is_typed_and_graded(cells: labelled.LabelledSet) -> None:
    """Headers as a custodian's export writes them; values include noisy forms and some invalid cells."""
    profiles = by_name(profile_columns(cells.cells))
    for entity, (header, pii_type) in labelled.CELL_COLUMNS.items():
        profile = profiles[header]
        assert profile.pii_type == pii_type, entity
        assert profile.level == PII_TYPES[pii_type].level and profile.confidence >= 0.85
    assert {p.name for p in profiles.values() if p.level == "L4"} == {
        "公民身份号码",
        "银行卡号",
        "护照号码",
        "通行证号码",
    }
    assert profiles["统一社会信用代码"].level == "L2"


def test_the_new_types_are_found_by_their_values_alone(cells: labelled.LabelledSet) -> None:
    """Only the valid cells, under headers that say nothing: the values alone give the type."""
    columns = {}
    for i, (header, pii_type) in enumerate(labelled.CELL_COLUMNS.values()):
        valid = cells.cells[header][cells.cell_truth[header].to_numpy()]
        columns[f"字段{i}"] = (valid.reset_index(drop=True).iloc[:250], pii_type)
    df = pd.DataFrame({name: values for name, (values, _) in columns.items()})
    profiles = by_name(profile_columns(df))
    assert {name: profiles[name].pii_type for name in columns} == {name: t for name, (_, t) in columns.items()}


def test_free_text_columns_are_personal_information_to_redact() -> None:
    notes = synthetic.residents(600, seed=3)["备注"]
    profiles = by_name(profile_columns(pd.DataFrame({"备注": notes, "情况说明": notes, "字段": notes})))
    for name in ("备注", "情况说明", "字段"):
        assert (profiles[name].pii_type, profiles[name].level, profiles[name].personal_info) == (
            "free_text",
            "L3",
            True,
        )
    assert profiles["备注"].confidence >= 0.95


def test_a_remarks_column_holding_phone_numbers_is_read_by_its_values(tables: dict[str, pd.DataFrame]) -> None:
    [profile] = profile_columns(pd.DataFrame({"备注": tables["residents"]["手机号码"].iloc[:200]}))
    assert profile.pii_type == "cn_phone"
    assert any("the values win" in r for r in profile.reasons)


def test_header_synonyms_of_the_new_types() -> None:
    df = pd.DataFrame(
        {
            "固定电话": ["0469-4221234"] * 3,
            "座机": ["(0451)86001234"] * 3,
            "办公电话": ["010-62345678"] * 3,
            "IP地址": ["192.168.1.10", "10.0.0.1", "fe80::1"],
            "ip": ["8.8.8.8"] * 3,
            "通行证号码": ["C12345678", "CA1234567", "T12345678"],
            "港澳通行证": ["C12345678"] * 3,
            "年龄": [34, 56, 7],
            "age": ["34岁", "56", "7"],
            "描述": ["申请人于今日到窗口办理，材料齐全。"] * 3,
            "内容": ["来电反映小区供暖不足，已转办。"] * 3,
        }
    )
    got = {p.name: (p.pii_type, p.level) for p in profile_columns(df)}
    assert got == {
        "固定电话": ("cn_landline", "L3"),
        "座机": ("cn_landline", "L3"),
        "办公电话": ("cn_landline", "L3"),
        "IP地址": ("ip_address", "L3"),
        "ip": ("ip_address", "L3"),
        "通行证号码": ("travel_permit", "L4"),
        "港澳通行证": ("travel_permit", "L4"),
        "年龄": ("age", "L3"),
        "age": ("age", "L3"),
        "描述": ("free_text", "L3"),
        "内容": ("free_text", "L3"),
    }


def test_eight_digit_codes_are_not_taken_for_taiwan_permits_without_a_header() -> None:
    codes = pd.Series([f"{n:08d}" for n in np.random.default_rng(4).integers(0, 10**8, 300)], dtype="str")
    [profile] = profile_columns(pd.DataFrame({"发票号码": codes}))
    assert profile.pii_type is None


def test_the_custodian_overrides_the_suggestion(tables: dict[str, pd.DataFrame]) -> None:
    df = tables["residents"][["姓名", "民族", "备注"]]
    profiles = by_name(profile_columns(df, overrides={"民族": "ethnicity", "备注": None}))
    assert (profiles["民族"].pii_type, profiles["民族"].confidence) == ("ethnicity", 1.0)
    assert profiles["备注"].pii_type is None and profiles["备注"].reasons == ("set by the custodian",)
    assert profiles["姓名"].pii_type == "person_name" and profiles["姓名"].confidence < 1.0
    with pytest.raises(ValueError, match="unknown column types"):
        profile_columns(df, overrides={"民族": "nationality"})


VALID_AND_INVALID: dict[str, tuple[list[object], list[object]]] = {
    "cn_resident_id": (["11010519491231002X", "11010519491231002x", "110105 19491231 002X",
                        "１１０１０５１９４９１２３１００２Ｘ", "110105491231002", " 11010519491231002X "],
                       ["110105194912310021", "99010519491231002X", "1101051949123100", "不详"]),
    "uscc": (["91230502MA1B2C3D4" + uscc_check_char("91230502MA1B2C3D4")],
             ["91230502MA1B2C3D40", "90230502MA1B2C3D4" + uscc_check_char("90230502MA1B2C3D4")]),
    "bank_card": (["622588021234567" + luhn_check_digit("622588021234567"),
                   "6222 0212 3456 7890 12" + luhn_check_digit("622202123456789012")],
                  ["622588021234567" + str((int(luhn_check_digit("622588021234567")) + 1) % 10),
                   "1234567812345670", "11010519491231002X"]),
    "cn_phone": (["13812345678", "+86 138 1234 5678", "138-1234-5678", "(+86)13812345678",
                  "１３８１２３４５６７８"],
                 ["12812345678", "1381234567", "0469-4221234"]),
    "cn_landline": (["0469-4221234", "(0469)4221234", "（０４６９）４２２１２３４", "010-62345678转8001",
                     "04694221234"],
                    ["13812345678", "001-4221234", "0469-1221234"]),
    "email": (["zhang.san@163.com", "12345@qq.com"], ["zhang@", "a@b", "@qq.com"]),
    "ip_address": (["192.168.1.100", "8.8.8.8", "fe80::1", "2001:db8::8a2e:370:7334", "::1"],
                   ["256.1.1.1", "1.2.3", "fe80:::1", "12:30"]),
    "passport": (["E12345678", "EA1234567", "G12345678"], ["A12345678", "E1234567"]),
    "travel_permit": (["C12345678", "CA1234567", "H12345678", "T12345678", "12345678"], ["C1234567", "X12345678"]),
    "license_plate": (["黑J12345", "黑JD12345", "黑J12345F", "黑J·A1234", "京A1234学"],
                      ["黑JABC12", "黑I12345", "J12345"]),
    "person_name": (["王小明", "欧阳娜娜", "买买提·艾力"], ["不详", "X先生", "王"]),
    "address": (["黑龙江省双鸭山市尖山区新兴大街12号", "尖山区和平路5号", "宝清县七星泡镇永红村3组"],
                ["黑龙江省双鸭山市", "不详", "新兴大街12号，周末不办公。"]),
    "household_region": (["黑龙江省双鸭山市宝清县", "北京市朝阳区"], ["新兴大街12号", "不详"]),
    "gender": (["男", "女", "1", "F", "未说明"], ["男女", "3"]),
    "ethnicity": (["汉族", "满族", "朝鲜", "鄂伦春族"], ["汉人", "火星族"]),
    "age": ([34, 0, "56岁"], [-1, 151, "三十", 3.5]),
    "birth_date": (["1980-01-02", "1980年1月2日", "19800102", "1980/01/02"],
                   ["2099-01-01", "1899-12-31", "1980-02-30"]),
    "free_text": (["申请人于今日到窗口办理，材料齐全。", "户主 王小明 已搬离 原址"],
                  ["王小明", "黑龙江省双鸭山市尖山区", "abc, def"]),
    "company_name": (["双鸭山鑫盛商贸有限公司", "宝清县永红水稻种植农民专业合作社"], ["王小明", "新兴大街12号"]),
    "income": (["3,200.50元", 5000], ["不详", -3]),
}  # fmt: skip


@pytest.mark.parametrize("pii_type", sorted(VALID_AND_INVALID))
def test_valid_values_accept_noisy_valid_values_and_refuse_the_rest(pii_type: str) -> None:
    valid, invalid = VALID_AND_INVALID[pii_type]
    values = pd.Series([*valid, *invalid, None], index=range(100, 100 + len(valid) + len(invalid) + 1), dtype=object)
    got = valid_values(pii_type, values)
    assert got.index.equals(values.index) and got.dtype == bool
    assert got.tolist() == [True] * len(valid) + [False] * len(invalid) + [False]


def test_valid_values_on_typed_columns() -> None:
    floats = pd.Series([1.1010519491231002e17, np.nan])
    assert valid_values("cn_resident_id", floats).tolist() == [False, False]  # digits already lost
    phones = pd.Series([13812345678, 12345], dtype="int64")
    assert valid_values("cn_phone", phones).tolist() == [True, False]
    births = pd.Series(pd.to_datetime(["1980-01-02", "2099-01-01", None]))
    assert valid_values("birth_date", births).tolist() == [True, False, False]
    assert valid_values("age", pd.Series([34.0, 34.5, np.nan])).tolist() == [True, False, False]
    assert valid_values("gender", pd.Series([1, 2, 3])).tolist() == [True, True, False]
    assert valid_values("precise_location", pd.Series([46.6453, 131.1514, 12.0])).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="no value test"):
        valid_values("health", pd.Series(["高血压"]))
    assert set(PII_TYPES) >= VALUE_TYPES and "health" not in VALUE_TYPES
