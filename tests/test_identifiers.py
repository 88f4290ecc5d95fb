"""Tests of desensitize.identifiers: check characters of Chinese identifiers.

The checksums are verified against their defining congruences (ISO 7064 MOD 11-2 for
GB 11643, the mod-31 sum of GB 32100, the mod-11 sum of GB 11714, Luhn) rather than against
a copy of the implementation, against published values, and by the property that makes them
worth checking: every single-character substitution is detected.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desensitize.identifiers import (
    USCC_ALPHABET,
    id_check_char,
    is_luhn_valid,
    is_valid_org_code,
    is_valid_resident_id,
    is_valid_uscc,
    luhn_check_digit,
    org_code_check_char,
    org_code_check_chars,
    resident_id_birth_date,
    resident_id_check_chars,
    resident_id_gender,
    uscc_check_char,
    uscc_check_chars,
    valid_luhn,
    valid_resident_ids,
    valid_usccs,
)

DIGITS = "0123456789"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------

digits17 = st.text(alphabet=DIGITS, min_size=17, max_size=17)


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    """A valid 18-digit resident ID built from its parts (not from the validator)."""
    region = draw(st.integers(110000, 829999))
    birth = draw(st.dates(dt.date(1900, 1, 1), dt.date(2024, 12, 31)))
    seq = draw(st.integers(0, 999))
    body = f"{region:06d}{birth:%Y%m%d}{seq:03d}"
    return body + id_check_char(body)


@st.composite
def valid_usccs_st(draw: st.DrawFn) -> str:
    first = draw(st.sampled_from("123456789ABCDEFGNY"))
    second = draw(st.sampled_from(USCC_ALPHABET))
    region = draw(st.text(alphabet=DIGITS, min_size=6, max_size=6))
    rest = draw(st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9))
    body = first + second + region + rest
    return body + uscc_check_char(body)


# ---------------------------------------------------------------------------
# GB 11643-1999 resident ID
# ---------------------------------------------------------------------------


def _mod11_2_holds(id18: str) -> bool:
    """ISO 7064 MOD 11-2 as defined: sum(a_i * 2^(18-i)) == 1 (mod 11), check X = 10."""
    values = [10 if c in "Xx" else int(c) for c in id18]
    return sum(v * 2 ** (17 - i) for i, v in enumerate(values)) % 11 == 1


@pytest.mark.parametrize("value", ["11010519491231002X", "11010519491231002x"])
def test_published_example_id_is_valid(value: str) -> None:
    assert is_valid_resident_id(value)
    assert resident_id_birth_date(value) == dt.date(1949, 12, 31)
    assert resident_id_gender(value) == "女"  # sequence 002: even


@pytest.mark.parametrize(
    "value",
    [
        "110105194912310021",  # wrong check character
        "110105194912310020",
        "11010519491231002Y",  # not a check character
        "1101051949123100X2",  # X inside the body
        "11010519491231002",  # 17 characters
        "11010519491231002XX",  # 19 characters
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits
        "",
    ],
)
def test_invalid_ids(value: str) -> None:
    assert not is_valid_resident_id(value)
    assert resident_id_birth_date(value) is None
    assert resident_id_gender(value) is None


@pytest.mark.parametrize(
    "body",
    [
        "11010519490230002",  # 30 February
        "11010519491301002",  # month 13
        "11010519490000002",  # month 0
        "11010518991231002",  # before 1900
        "21010521000101002",  # in the future
        "01010519491231002",  # address code starting with 0
        "11010519000229002",  # 1900 is not a leap year
    ],
)
def test_correct_check_char_does_not_rescue_bad_fields(body: str) -> None:
    value = body + id_check_char(body)
    assert _mod11_2_holds(value)
    assert not is_valid_resident_id(value, today=dt.date(2026, 1, 1))
    assert not valid_resident_ids(pd.Series([value]), today=dt.date(2026, 1, 1)).iloc[0]


def test_leap_day_and_today_bounds() -> None:
    leap = "11010520000229001"
    assert is_valid_resident_id(leap + id_check_char(leap))
    born_today = f"110105{dt.date(2026, 1, 1):%Y%m%d}001"
    full = born_today + id_check_char(born_today)
    assert is_valid_resident_id(full, today=dt.date(2026, 1, 1))
    assert not is_valid_resident_id(full, today=dt.date(2025, 12, 31))
    assert resident_id_gender(full, today=dt.date(2026, 1, 1)) == "男"


@pytest.mark.parametrize(
    ("value", "valid", "birth", "gender"),
    [
        ("110105491231002", True, dt.date(1949, 12, 31), "女"),
        ("110105491231001", True, dt.date(1949, 12, 31), "男"),
        ("110105480229003", True, dt.date(1948, 2, 29), "男"),
        ("110105490229002", False, None, None),  # 1949 is not a leap year
        ("110105491331002", False, None, None),  # month 13
        ("010105491231002", False, None, None),  # address code starting with 0
        ("11010549123100X", False, None, None),  # legacy numbers have no check character
    ],
)
def test_legacy_15_digit_ids(value: str, valid: bool, birth: dt.date | None, gender: str | None) -> None:
    assert is_valid_resident_id(value) is valid
    assert resident_id_birth_date(value) == birth
    assert resident_id_gender(value) == gender
    assert valid_resident_ids(pd.Series([value])).iloc[0] == valid


@FAST
@given(digits17)
def test_id_check_char_satisfies_mod11_2(body: str) -> None:
    assert _mod11_2_holds(body + id_check_char(body))


@pytest.mark.parametrize("bad", ["1234", "1101051949123100X", "１1010519491231002", "a" * 17])
def test_id_check_char_rejects_malformed_bodies(bad: str) -> None:
    with pytest.raises(ValueError):
        id_check_char(bad)


def _substitutions(value: str, alphabets: list[str]) -> list[str]:
    return [
        value[:i] + c + value[i + 1 :]
        for i, alphabet in enumerate(alphabets)
        for c in alphabet
        if c != value[i].upper()
    ]


@FAST
@given(valid_ids())
def test_any_single_substitution_breaks_an_id(value: str) -> None:
    assert is_valid_resident_id(value)
    variants = _substitutions(value, [DIGITS] * 17 + [DIGITS + "X"])
    assert len(variants) == 17 * 9 + 10
    assert not any(is_valid_resident_id(v) for v in variants)
    assert not valid_resident_ids(pd.Series(variants)).any()


def test_vectorized_check_chars_match_scalar() -> None:
    rng = np.random.default_rng(1)
    m = rng.integers(0, 10, size=(500, 17), dtype=np.uint8)
    expected = [id_check_char("".join(map(str, row))) for row in m]
    assert resident_id_check_chars(m).tolist() == expected
    # All eleven check characters occur, so the lookup table is exercised in full.
    assert set(expected) == set("0123456789X")
    with pytest.raises(ValueError):
        resident_id_check_chars(m[:, :16])


# ---------------------------------------------------------------------------
# GB 32100-2015 USCC and GB 11714 organization code
# ---------------------------------------------------------------------------


def _mod31_holds(code: str) -> bool:
    idx = [USCC_ALPHABET.index(c) for c in code]
    return (sum(v * 3**i for i, v in enumerate(idx[:17])) + idx[17]) % 31 == 0


@pytest.mark.parametrize(
    "value",
    [
        "91350100M000100Y43",  # example from GB 32100-2015 commentary
        "914403001922038216",  # 华为技术有限公司 (public register)
        "9144030071526726XG",  # 深圳市腾讯计算机系统有限公司 (public register)
    ],
)
def test_published_usccs_are_valid(value: str) -> None:
    assert is_valid_uscc(value)
    assert is_valid_uscc(value, strict_org_code=True)
    assert _mod31_holds(value)
    assert valid_usccs(pd.Series([value]), strict_org_code=True).iloc[0]


def _with_check(body: str) -> str:
    return body + uscc_check_char(body)


@pytest.mark.parametrize(
    "value",
    [
        "91350100M000100Y44",  # wrong check
        "91350100m000100y43",  # lower case
        "91350100M000100I43",  # I is not in the alphabet
        "91350100M000100Y4",  # 17 characters
        "91350100M000100Y433",  # 19 characters
        _with_check("01350100M000100Y4"),  # 0 is no registration authority
        _with_check("H1350100M000100Y4"),  # H neither
        _with_check("9135A100M000100Y4"),  # letter inside the division code
    ],
)
def test_invalid_usccs(value: str) -> None:
    assert not is_valid_uscc(value)
    assert not valid_usccs(pd.Series([value])).iloc[0]


def test_strict_org_code_check() -> None:
    # Positions 9-17 "M000100Y5" fail GB 11714 (the check is 4) but the USCC check is fine.
    code = _with_check("91350100M000100Y5")
    assert is_valid_uscc(code)
    assert not is_valid_uscc(code, strict_org_code=True)
    assert valid_usccs(pd.Series([code])).iloc[0]
    assert not valid_usccs(pd.Series([code]), strict_org_code=True).iloc[0]


@pytest.mark.parametrize(
    ("body", "check"),
    [("M000100Y", "4"), ("00000000", "0"), ("40000000", "X"), ("00010000", "1"), ("19220382", "1")],
)
def test_org_code_known_values(body: str, check: str) -> None:
    assert org_code_check_char(body) == check
    assert is_valid_org_code(body + check)
    assert not is_valid_org_code(body + ("2" if check != "2" else "3"))


@FAST
@given(st.text(alphabet=DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=8, max_size=8))
def test_org_code_check_satisfies_mod11(body: str) -> None:
    check = org_code_check_char(body)
    values = [int(c) if c.isdigit() else ord(c) - 55 for c in body]
    check_value = 10 if check == "X" else int(check)
    assert (sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) + check_value) % 11 == 0


@FAST
@given(st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17))
def test_uscc_check_char_satisfies_mod31(body: str) -> None:
    assert _mod31_holds(body + uscc_check_char(body))


@FAST
@given(valid_usccs_st())
def test_any_single_substitution_breaks_a_uscc(value: str) -> None:
    assert is_valid_uscc(value)
    variants = _substitutions(value, [USCC_ALPHABET] * 18)
    assert len(variants) == 18 * 30
    assert not any(is_valid_uscc(v) for v in variants)
    assert not valid_usccs(pd.Series(variants)).any()


def test_vectorized_uscc_and_org_check_chars_match_scalar() -> None:
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 31, size=(400, 17))
    bodies = ["".join(USCC_ALPHABET[i] for i in row) for row in idx]
    assert uscc_check_chars(idx).tolist() == [uscc_check_char(b) for b in bodies]
    values = rng.integers(0, 36, size=(400, 8))
    org_bodies = ["".join(DIGITS[v] if v < 10 else chr(55 + v) for v in row) for row in values]
    expected = [org_code_check_char(b) for b in org_bodies]
    assert org_code_check_chars(values).tolist() == expected
    assert {"0", "X"} <= set(expected)


# ---------------------------------------------------------------------------
# Luhn
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("79927398713", True),
        ("79927398710", False),
        ("0", False),  # too short to carry a check digit
        ("4111-1111-1111-1111", False),
        ("", False),
    ],
)
def test_luhn_known_values(value: str, valid: bool) -> None:
    assert is_luhn_valid(value) is valid
    assert valid_luhn(pd.Series([value]), min_len=2).iloc[0] == valid


def test_luhn_check_digit_known() -> None:
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_check_digit("411111111111111") == "1"
    with pytest.raises(ValueError):
        luhn_check_digit("12a4")


@FAST
@given(st.text(alphabet=DIGITS, min_size=12, max_size=18))
def test_luhn_detects_every_single_digit_change(payload: str) -> None:
    card = payload + luhn_check_digit(payload)
    assert is_luhn_valid(card)
    variants = _substitutions(card, [DIGITS] * len(card))
    assert not any(is_luhn_valid(v) for v in variants)
    assert not valid_luhn(pd.Series(variants)).any()


# ---------------------------------------------------------------------------
# vectorized == scalar on messy columns
# ---------------------------------------------------------------------------

messy_ids = st.one_of(
    valid_ids(),
    valid_ids().map(lambda s: s[:-1] + ("x" if s[-1] == "X" else s[-1])),
    st.text(alphabet=DIGITS + "Xx", min_size=14, max_size=19),
    st.text(max_size=20),
    st.none(),
)


@FAST
@given(st.lists(messy_ids, max_size=40))
def test_vectorized_resident_ids_agree_with_scalar(values: list[str | None]) -> None:
    series = pd.Series(values, dtype=object, index=range(100, 100 + len(values)))
    result = valid_resident_ids(series)
    assert result.dtype == bool
    assert list(result.index) == list(series.index)
    assert result.tolist() == [is_valid_resident_id(v) for v in values]  # type: ignore[arg-type]


messy_usccs = st.one_of(
    valid_usccs_st(),
    st.text(alphabet=USCC_ALPHABET + "IOZSVabc", min_size=17, max_size=19),
    st.text(max_size=20),
    st.none(),
)


@FAST
@given(st.lists(messy_usccs, max_size=40), st.booleans())
def test_vectorized_usccs_agree_with_scalar(values: list[str | None], strict: bool) -> None:
    result = valid_usccs(pd.Series(values, dtype=object), strict_org_code=strict)
    assert result.tolist() == [is_valid_uscc(v, strict_org_code=strict) for v in values]  # type: ignore[arg-type]


@FAST
@given(st.lists(st.one_of(st.text(alphabet=DIGITS, min_size=0, max_size=19), st.text(max_size=19)), max_size=40))
def test_vectorized_luhn_agrees_with_scalar(values: list[str]) -> None:
    result = valid_luhn(pd.Series(values, dtype=object))
    assert result.tolist() == [is_luhn_valid(v) for v in values]


def test_non_string_values_are_never_valid() -> None:
    as_int = 110105194912310029
    assert not is_valid_resident_id(as_int)  # type: ignore[arg-type]
    assert not valid_resident_ids(pd.Series([as_int])).any()
    assert not valid_resident_ids(pd.Series(["11010519491231002X", as_int], dtype=object)).iloc[1]
    assert valid_resident_ids(np.array(["11010519491231002X"])).tolist() == [True]
    assert valid_resident_ids(pd.Series(["11010519491231002X"], dtype="category")).tolist() == [True]
    assert valid_usccs(pd.Series([], dtype=object)).tolist() == []
