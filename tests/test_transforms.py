"""The policy actions on whole columns (GB/T 37964-2019 techniques): results, nulls, pseudonym stability."""

from __future__ import annotations

import hashlib
import hmac
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from desensitize import transforms as tf
from desensitize.identifiers import is_valid_resident_id
from desensitize.policy import ACTIONS, Rule

PEPPER = b"instance-pepper-for-tests-0123456789"
OTHER_PEPPER = b"another-instance-pepper-9876543210"
ID = "230522200608091620"  # GB 11643-1999-valid (check character 0)
ID_X = "22020220000617533X"


def _reference_pseudonym(family: str, canonical: str, pepper: bytes = PEPPER) -> str:
    """What the documentation promises, computed with the standard library only."""
    return hmac.new(pepper, f"{family}\x1f{canonical}".encode(), hashlib.sha256).hexdigest()[:32]


def _s(values: list, dtype: str | None = "str") -> pd.Series:
    return pd.Series(values, dtype=dtype)


# ---------------------------------------------------------------------------
# pseudonyms
# ---------------------------------------------------------------------------


def test_fixture_ids_are_valid() -> None:
    assert is_valid_resident_id(ID) and is_valid_resident_id(ID_X)


def test_pseudonym_is_the_documented_hmac() -> None:
    out = tf.pseudonymize(_s([ID, ID_X]), pepper=PEPPER, family="cn_resident_id")
    assert out.tolist() == [_reference_pseudonym("cn_resident_id", ID), _reference_pseudonym("cn_resident_id", ID_X)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", p) for p in out)


def test_pseudonym_is_stable_across_formats() -> None:
    ids = _s([ID, f" {ID} ", "２３０５２２２００６０８０９１６２０", "230522-20060809-1620", "230522 2006 0809 1620"])
    assert tf.pseudonymize(ids, pepper=PEPPER, family="cn_resident_id").nunique() == 1
    lower_x = _s([ID_X, ID_X.lower(), "２２０２０２２００００６１７５３３ｘ"])
    assert tf.pseudonymize(lower_x, pepper=PEPPER, family="cn_resident_id").nunique() == 1
    phones = _s(["13802790360", "+86 138-0279-0360", "0086 13802790360", "86-138 0279 0360", "１３８０２７９０３６０"])
    out = tf.pseudonymize(phones, pepper=PEPPER, family="cn_phone")
    assert out.nunique() == 1
    assert out.iloc[0] == _reference_pseudonym("cn_phone", "13802790360")
    emails = _s(["Zhang.San@Example.COM", " zhang.san@example.com"])
    assert tf.pseudonymize(emails, pepper=PEPPER, family="email").nunique() == 1


def test_pseudonym_is_stable_across_frames_and_column_names() -> None:
    residents = pd.DataFrame({"公民身份号码": _s([ID, ID_X])})
    insurance = pd.DataFrame({"身份证号": _s([ID_X.lower(), "other", ID])})
    a = tf.pseudonymize(residents["公民身份号码"], pepper=PEPPER, family="cn_resident_id")
    b = tf.pseudonymize(insurance["身份证号"], pepper=PEPPER, family="cn_resident_id")
    assert a.iloc[0] == b.iloc[2] and a.iloc[1] == b.iloc[0]
    # Joins work on the pseudonyms as they did on the raw values.
    joined = pd.DataFrame({"p": a, "r": [1, 2]}).merge(pd.DataFrame({"p": b, "s": [3, 4, 5]}), on="p")
    assert sorted(zip(joined["r"], joined["s"], strict=True)) == [(1, 5), (2, 3)]


def test_pseudonym_depends_on_pepper_and_family_and_hides_the_value() -> None:
    values = _s([ID, "13802790360"])
    mine = tf.pseudonymize(values, pepper=PEPPER, family="cn_resident_id")
    theirs = tf.pseudonymize(values, pepper=OTHER_PEPPER, family="cn_resident_id")
    as_phone = tf.pseudonymize(values, pepper=PEPPER, family="cn_phone")
    assert not set(mine) & set(theirs)
    assert not set(mine) & set(as_phone)
    for raw, pseudonym in zip(values, mine, strict=True):
        assert raw not in pseudonym
        assert pseudonym != hashlib.sha256(raw.encode()).hexdigest()[:32]  # not an unkeyed hash


def test_pseudonym_nulls_and_empty_values_stay_null() -> None:
    out = tf.pseudonymize(_s([ID, None, "", "  "]), pepper=PEPPER, family="cn_resident_id")
    assert out.iloc[0] == _reference_pseudonym("cn_resident_id", ID)
    assert out.iloc[1:].isna().all()


def test_pseudonym_of_untyped_and_numeric_columns() -> None:
    numbers = pd.Series([13802790360, 13802790360, None], dtype="Int64")
    out = tf.pseudonymize(numbers, pepper=PEPPER, family="cn_phone")
    assert out.iloc[0] == _reference_pseudonym("cn_phone", "13802790360") == out.iloc[1]
    assert pd.isna(out.iloc[2])


def test_duckdb_and_python_hashes_agree_with_hmac() -> None:
    n = tf.DUCKDB_MIN_VALUES + 10
    messages = pa.array([f"cn_phone\x1f1380000{i:04d}" for i in range(n)], type=pa.large_string())
    via_duckdb = tf.keyed_hex(messages, PEPPER).to_pylist()  # above the threshold: DuckDB
    via_python = tf._keyed_hex_python(messages.to_pylist(), PEPPER)
    assert via_duckdb == via_python
    for i in (0, 1234, n - 1):
        assert via_duckdb[i] == hmac.new(PEPPER, messages[i].as_py().encode(), hashlib.sha256).hexdigest()[:32]


def test_long_pepper_is_hashed_first_as_hmac_does() -> None:
    pepper = bytes(range(100))
    assert tf.keyed_hex(pa.array(["x"], pa.large_string()), pepper).to_pylist() == [
        hmac.new(pepper, b"x", hashlib.sha256).hexdigest()[:32]
    ]


def test_empty_pepper_is_refused() -> None:
    with pytest.raises(ValueError, match="pepper"):
        tf.keyed_hex(pa.array(["x"], pa.large_string()), b"")


def test_many_distinct_values_take_the_vectorized_path() -> None:
    n = tf.DUCKDB_MIN_VALUES * 2
    ids = pd.Series([f"{i:011d}" for i in range(n)], dtype="str")
    out = tf.pseudonymize(ids, pepper=PEPPER, family="passport")
    assert out.nunique() == n
    assert out.iloc[777] == _reference_pseudonym("passport", f"{777:011d}")


# ---------------------------------------------------------------------------
# masking
# ---------------------------------------------------------------------------


def test_mask_phone_in_canonical_form() -> None:
    phones = _s(["+86 138-0279-0360", "13802790360", None, "110"])
    out = tf.mask(phones, keep_start=3, keep_end=4, family="cn_phone")
    assert out.iloc[0] == out.iloc[1] == "138****0360"
    assert pd.isna(out.iloc[2])
    assert out.iloc[3] == "***"  # too short to keep anything


def test_mask_plain_text_and_other_character() -> None:
    out = tf.mask(_s(["黑J12345", "AB"]), keep_start=2, char="#")
    assert out.tolist() == ["黑J#####", "##"]


def test_mask_name_keeps_only_the_surname() -> None:
    names = _s(["张三", "欧阳娜娜", "李 小明", None, "王", "司马光"])
    fixed = tf.mask_name(names)
    assert fixed.tolist()[:3] == ["张**", "欧阳**", "李**"]
    assert pd.isna(fixed.iloc[3])
    assert fixed.iloc[4] == "王**" and fixed.iloc[5] == "司马**"
    by_length = tf.mask_name(names, stars=None)
    assert by_length.tolist()[:3] == ["张*", "欧阳**", "李**"]


# ---------------------------------------------------------------------------
# generalization
# ---------------------------------------------------------------------------


ADDRESSES = _s(
    [
        "黑龙江省双鸭山市尖山区兴安路185号10栋5单元1701室",
        "北京市朝阳区建国路88号",
        "双鸭山市宝清县人民路1号",
        "黑龙江省双鸭山市新兴大街1号",
        "内蒙古自治区呼和浩特市新城区",
        "上海市浦东新区世纪大道１００号",
        "兴安路2号",
        None,
    ]
)


def test_generalize_address_to_district() -> None:
    assert tf.generalize_address(ADDRESSES, to="district").tolist()[:6] == [
        "黑龙江省双鸭山市尖山区",
        "北京市朝阳区",
        "双鸭山市宝清县",
        "黑龙江省双鸭山市",  # no district found: the finest level found above it
        "内蒙古自治区呼和浩特市新城区",
        "上海市浦东新区",
    ]
    out = tf.generalize_address(ADDRESSES, to="district")
    assert out.iloc[6:].isna().all()  # nothing to generalize to: suppressed, never kept raw


def test_generalize_address_to_city_and_province() -> None:
    city = tf.generalize_address(ADDRESSES, to="city").tolist()
    assert city[:5] == ["黑龙江省双鸭山市", "北京市", "双鸭山市", "黑龙江省双鸭山市", "内蒙古自治区呼和浩特市"]
    province = tf.generalize_address(ADDRESSES, to="province").tolist()
    assert province[0] == "黑龙江省" and province[1] == "北京市" and pd.isna(province[2])


def test_generalize_many_addresses_per_distinct_head() -> None:
    streets = [f"黑龙江省双鸭山市{d}兴安路{i}号{i % 7}栋" for i in range(3000) for d in ("尖山区", "宝清县")]
    out = tf.generalize_address(pd.Series(streets, dtype="str"))
    assert set(out) == {"黑龙江省双鸭山市尖山区", "黑龙江省双鸭山市宝清县"}


def test_date_year_from_dates_text_and_numbers() -> None:
    dates = pd.Series(pd.to_datetime(["1990-05-03", None, "1961-12-31"]))
    assert tf.date_year(dates).tolist() == [1990, pd.NA, 1961]
    text = _s(["1990-05-03", "1988年5月", "19770101", "unknown", None, "２００１/１/２"])
    assert tf.date_year(text).tolist() == [1990, 1988, 1977, pd.NA, pd.NA, 2001]
    assert tf.date_year(pd.Series([19900503, 1988])).tolist() == [1990, 1988]
    with pytest.raises(tf.TransformError):
        tf.date_year(pd.Series([12, 1988]))


def test_date_band() -> None:
    # The first year of the band (Int64), not a label: 1990-1994 -> 1990.
    dates = pd.Series(pd.to_datetime(["1990-05-03", None, "1964-12-31", "1965-01-01"]))
    out = tf.date_band(dates, width=5)
    assert str(out.dtype) == "Int64"
    assert out.iloc[0] == 1990 and pd.isna(out.iloc[1])
    assert out.iloc[2] == 1960 and out.iloc[3] == 1965
    assert tf.date_band(dates, width=10).iloc[3] == 1960


def test_band_by_width_with_top_coding() -> None:
    # Whole numbers in whole-number bands: 3000-3999 holds 3000..3999, midpoint 3499.5.
    income = pd.Series([3000, 5200, 25000, None], dtype="Int64")
    assert tf.band(income, width=1000).tolist()[:3] == [3499.5, 5499.5, 25499.5]
    coded = tf.band(income, width=1000, top=20000, bottom=4000)
    assert coded.tolist()[:3] == [4000.0, 5499.5, 20000.0]  # bottom-coded to 4000, top-coded to 20000
    assert pd.isna(coded.iloc[3]) and coded.dtype == np.float64
    labels = tf.band_labels(income, width=1000, top=20000, bottom=4000)
    assert labels.tolist()[:3] == ["<4000", "5000-5999", "≥20000"] and pd.isna(labels.iloc[3])


def test_band_by_edges_and_fractions() -> None:
    ages = pd.Series([3, 17, 18, 64, 65, 90])
    # Below the first edge -> 18, at or above the last -> 65; 18-39 -> 28.5, 40-64 -> 52.
    assert tf.band(ages, edges=[18, 40, 65]).tolist() == [18.0, 18.0, 28.5, 52.0, 65.0, 65.0]
    assert tf.band_labels(ages, edges=[18, 40, 65]).tolist() == ["<18", "<18", "18-39", "40-64", "≥65", "≥65"]
    # Fractions: the interval [0, 2.5) has midpoint 1.25.
    assert tf.band(pd.Series([0.5, 2.6, np.nan]), width=2.5).tolist()[:2] == [1.25, 3.75]
    assert tf.band_labels(pd.Series([0.5, 2.6, np.nan]), width=2.5).tolist()[:2] == ["[0, 2.5)", "[2.5, 5)"]
    assert tf.band(_s(["31", "1,200"]), width=10).tolist() == [34.5, 1204.5]


def test_band_refuses_text_that_is_not_numbers() -> None:
    with pytest.raises(tf.TransformError, match="not"):
        tf.band(_s(["31", "thirty"]), width=10)


def test_round_values() -> None:
    assert tf.round_values(pd.Series([5234, 5251]), to=100).tolist() == [5200, 5300]
    assert tf.round_values(pd.Series([5234, 5251]), to=100).dtype == np.int64
    assert tf.round_values(pd.Series([5234, None], dtype="Int64"), to=100).tolist() == [5200, pd.NA]
    assert tf.round_values(pd.Series([1.234, 5.678, np.nan]), to=0.1).tolist()[:2] == [1.2, 5.7]


# ---------------------------------------------------------------------------
# randomization
# ---------------------------------------------------------------------------


def test_randomize_numbers_is_noisy_and_repeatable() -> None:
    values = pd.Series(np.arange(1000, dtype=np.int64) * 10)
    once = tf.randomize(values, pepper=PEPPER, column="x")
    again = tf.randomize(values, pepper=PEPPER, column="x")
    other = tf.randomize(values, pepper=OTHER_PEPPER, column="x")
    assert once.equals(again)  # remaking a copy does not give fresh noise to average away
    assert not once.equals(other)
    assert (once != values).mean() > 0.9
    assert once.dtype == values.dtype
    assert abs(float(once.mean()) - float(values.mean())) < 0.1 * float(values.std())


def test_randomize_dates_and_text_keep_nulls() -> None:
    dates = pd.Series(pd.to_datetime(["2000-01-01", None, "2010-06-30"]))
    shifted = tf.randomize(dates, pepper=PEPPER, column="d", days=3)
    assert pd.isna(shifted.iloc[1])
    assert (shifted.dropna() - dates.dropna()).abs().max() <= pd.Timedelta(days=3)
    text = _s(["a", None, "b", "c", "d"])
    permuted = tf.randomize(text, pepper=PEPPER, column="t")
    assert pd.isna(permuted.iloc[1])
    assert sorted(permuted.dropna()) == ["a", "b", "c", "d"]


# ---------------------------------------------------------------------------
# free text
# ---------------------------------------------------------------------------


def _fake_redactor(texts: pd.Series, *, names=()) -> pd.Series:
    """Phones and the given names only: enough to see that the pipeline hands both over."""
    out = texts.str.replace(r"1[3-9]\d{9}", "<CN_MOBILE>", regex=True)
    for name in names:
        out = out.str.replace(name, "<PERSON>", regex=False)
    return out


def test_redact_text_uses_the_injected_redactor_and_names() -> None:
    texts = _s(["联系人张伟，电话13802790360", None, "无"])
    out = tf.redact_text(texts, redactor=_fake_redactor, names=["张伟"])
    assert out.iloc[0] == "联系人<PERSON>，电话<CN_MOBILE>"
    assert pd.isna(out.iloc[1]) and out.iloc[2] == "无"


def test_redact_text_refuses_a_redactor_that_loses_rows() -> None:
    with pytest.raises(tf.TransformError, match="returned"):
        tf.redact_text(_s(["a", "b"]), redactor=lambda texts, names=(): texts.iloc[:1])


def test_redact_text_with_the_real_redactor() -> None:
    textscan = pytest.importorskip(
        "desensitize.textscan", reason="desensitize.textscan (helper A's free-text scanner) is not importable yet"
    )
    assert callable(textscan.redact)
    texts = _s([f"户主张伟，身份证号{ID}，电话13802790360", None])
    out = tf.redact_text(texts, names=["张伟"])  # the default redactor
    assert ID not in out.iloc[0] and "13802790360" not in out.iloc[0] and "张伟" not in out.iloc[0]
    assert "<CN_RESIDENT_ID>" in out.iloc[0] and "<CN_MOBILE>" in out.iloc[0]
    assert pd.isna(out.iloc[1])


# ---------------------------------------------------------------------------
# apply_rule, text rendering
# ---------------------------------------------------------------------------


_ACTION_SAMPLES: dict[str, tuple[Rule, pd.Series, str | None]] = {
    "keep": (Rule(action="keep"), _s(["a", None]), None),
    "pseudonymize": (Rule(action="pseudonymize"), _s([ID, None]), "cn_resident_id"),
    "mask": (Rule(action="mask", params={"keep_start": 1}), _s(["abc", None]), None),
    "mask_name": (Rule(action="mask_name"), _s(["张三", None]), "person_name"),
    "generalize_address": (Rule(action="generalize_address"), _s(["北京市朝阳区x", None]), "address"),
    "date_year": (Rule(action="date_year"), pd.Series(pd.to_datetime(["2000-01-01", None])), "birth_date"),
    "date_band": (Rule(action="date_band"), pd.Series(pd.to_datetime(["2000-01-01", None])), "birth_date"),
    "date_month": (Rule(action="date_month"), pd.Series(pd.to_datetime(["2000-01-09", None])), "birth_date"),
    "band": (Rule(action="band", params={"width": 5}), pd.Series([31.0, np.nan]), "age"),
    "round": (Rule(action="round", params={"to": 10}), pd.Series([31.0, np.nan]), "income"),
    "randomize": (Rule(action="randomize"), pd.Series([31.0, np.nan]), "income"),
    "redact_text": (Rule(action="redact_text"), _s(["电话13802790360", None]), "free_text"),
}


@pytest.mark.parametrize("action", [a for a in ACTIONS if a != "drop"])
def test_every_action_keeps_nulls_null_and_leaves_the_input_alone(action: str) -> None:
    rule, values, pii_type = _ACTION_SAMPLES[action]
    before = values.copy()
    out = tf.apply_rule(values, rule, pii_type=pii_type, pepper=PEPPER, column="c", text_redactor=_fake_redactor)
    assert out is not None and len(out) == len(values)
    assert pd.notna(out.iloc[0]) and pd.isna(out.iloc[1])
    assert values.equals(before)


def test_drop_returns_nothing() -> None:
    assert tf.apply_rule(_s(["x"]), Rule(action="drop"), pii_type=None, pepper=PEPPER, column="c") is None


def test_apply_rule_errors_name_the_column_and_action() -> None:
    with pytest.raises(tf.TransformError, match=r"'收入'.*'band'"):
        tf.apply_rule(_s(["很多"]), Rule(action="band", params={"width": 5}), pii_type="income", pepper=PEPPER,
                     column="收入")  # fmt: skip


def test_untyped_pseudonyms_are_separated_by_column() -> None:
    rule = Rule(action="pseudonymize")
    a = tf.apply_rule(_s(["x"]), rule, pii_type=None, pepper=PEPPER, column="a")
    b = tf.apply_rule(_s(["x"]), rule, pii_type=None, pepper=PEPPER, column="b")
    assert a is not None and b is not None and a.iloc[0] != b.iloc[0]


def test_as_text_renders_like_a_person_writes() -> None:
    assert tf.as_text(pd.Series([1.0, 2.5, None])).tolist()[:2] == ["1", "2.5"]
    assert tf.as_text(pd.Series([13802790360])).tolist() == ["13802790360"]
    assert tf.as_text(pd.Series(pd.to_datetime(["2006-08-09", None]))).tolist()[0] == "2006-08-09"
    assert tf.as_text(pd.Series(pd.to_datetime(["2006-08-09 10:30"]))).tolist() == ["2006-08-09T10:30:00"]
    assert tf.as_text(pd.Series([True, False])).tolist() == ["true", "false"]


@pytest.mark.parametrize(
    ("family", "raw", "canonical"),
    [
        ("cn_resident_id", " ２２０２０２-２０００ ０６１７５３３ｘ ", ID_X),
        ("cn_phone", "+86 138 0279 0360", "13802790360"),
        ("cn_landline", "+86 469-5123456", "04695123456"),
        ("cn_landline", "0469-5123456", "04695123456"),
        ("bank_card", "6222 0202 0000 1234", "6222020200001234"),
        ("license_plate", "黑j·12345", "黑J12345"),
        ("person_name", " 李 小明 ", "李小明"),
        ("email", " Li@Example.Com ", "li@example.com"),
        ("company_name", "双鸭山　远方 有限公司", "双鸭山远方有限公司"),
    ],
)
def test_normalise_identifiers(family: str, raw: str, canonical: str) -> None:
    assert tf.normalise_identifiers(_s([raw]), family).to_pylist() == [canonical]
