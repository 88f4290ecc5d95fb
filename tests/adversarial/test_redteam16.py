"""Red team of issue 16 (redteam16): attacks on near-unique keys, the risk threshold, numeric copies
under the export guard, and the operator-facing copy facts.

Each test PASSES while the defence holds and FAILS when it is broken (a found bug is a failing test).
Rules attacked: 个人信息保护法 第七十三条(四) (去标识化: a row must not be re-identifiable "借助额外信息",
a near-unique value linking it to a public register is such information), GB/T 37964-2019 附录A
(假名化, 泛化) and 第6章 (the copy's re-identification risk verified against the threshold), 双鸭山
第三十五条 (原始数据不出域: no raw record and no copy row leaves a job).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.copy_facts import public_facts
from desensitize.pipeline import DesensitizedTable, desensitize_table
from desensitize.policy import load_policy
from tests.adversarial import residents, run_and_judge
from tests.test_pipeline import RESIDENT_TYPES

PEPPER = b"redteam16-pepper-0123456789abcdef"
N = 400


def _codes(seed: int = 1, n: int = N) -> list[str]:
    """Distinct membership numbers no recognizer knows (KY + 8 digits): a key only by being near-unique."""
    rng = np.random.default_rng(seed)
    numbers = rng.choice(np.arange(10**7, 10**8), size=n, replace=False)
    return [f"KY{v}" for v in numbers]


def _desensitize(
    frame: pd.DataFrame, types: Mapping[str, str | None], level: str = "L3", **kw: Any
) -> DesensitizedTable:
    return desensitize_table(frame, types, load_policy(level), pepper=PEPPER, **kw)


def _sexes(n: int = N) -> np.ndarray:
    return np.random.default_rng(5).choice(["男", "女"], n)


def _notes_copy(variant: str) -> tuple[list[str], pd.Series]:
    """Each row's note repeats its own key in ``variant`` form; returns (keys, the copy's notes)."""
    codes = _codes()
    forms: dict[str, Callable[[str], str]] = {
        "exact": lambda c: c,
        "lower": lambda c: c.lower(),
        "fullwidth": lambda c: "".join(chr(ord(ch) + 0xFEE0) for ch in c),
        "prefixed": lambda c: f"编号:{c}",
        "space": lambda c: f"{c[:4]} {c[4:7]} {c[7:]}",
        "dash": lambda c: f"{c[:2]}-{c[2:6]}-{c[6:]}",
        "glued_latin": lambda c: f"NO{c}",
    }
    notes = [f"来访登记 {forms[variant](c)} 已处理" for c in codes]
    frame = pd.DataFrame({"会员号": codes, "备注": notes, "性别": _sexes()})
    result = _desensitize(frame, {"会员号": None, "备注": "free_text", "性别": "gender"})
    return codes, result.frame["备注"]


def _digits_of(text: str) -> str:
    folded = "".join(chr(ord(ch) - 0xFEE0) if 0xFF10 <= ord(ch) <= 0xFF19 else ch for ch in text)
    return "".join(ch for ch in folded if ch.isdigit())


@pytest.mark.parametrize("variant", ["exact", "lower", "fullwidth", "prefixed"])
def test_key_variants_the_redactor_claims_to_fold_vanish_from_free_text(variant: str) -> None:
    """HOLDS: case, full-width and a CJK prefix are folded; the 8 digits of a key are gone from every note."""
    codes, notes = _notes_copy(variant)
    leaked = [c for c, note in zip(codes, notes, strict=True) if c[2:] in _digits_of(str(note))]
    assert leaked == []


@pytest.mark.parametrize("variant", ["space", "dash"])
def test_key_written_with_spaces_or_dashes_vanishes_from_free_text(variant: str) -> None:
    """A clerk writes KY12 345 678 or KY-1234-5678: the same key to anyone linking records."""
    codes, notes = _notes_copy(variant)
    leaked = [c for c, note in zip(codes, notes, strict=True) if c[2:] in _digits_of(str(note))]
    assert leaked == [], f"{len(leaked)}/{len(codes)} keys readable in the copy's notes, e.g. {notes.iloc[0]!r}"


def test_key_glued_to_a_latin_prefix_vanishes_from_free_text() -> None:
    """NOKY12345678 ("No." without the dot) still carries the whole key."""
    codes, notes = _notes_copy("glued_latin")
    leaked = [c for c, note in zip(codes, notes, strict=True) if c[2:] in _digits_of(str(note))]
    assert leaked == [], f"{len(leaked)}/{len(codes)} keys readable, e.g. {notes.iloc[0]!r}"


@pytest.mark.parametrize("placeholder", ["", " ", "无"])
def test_placeholder_values_do_not_dilute_a_key_below_the_threshold(placeholder: str) -> None:
    """40% of residents represent a business (a unique code), the rest hold a placeholder instead of a
    null. A placeholder identifies nobody, as a null does not; the codes must still be pseudonymized."""
    codes = _codes(2)
    column = [c if i % 10 < 4 else placeholder for i, c in enumerate(codes)]
    result = _desensitize(pd.DataFrame({"企业代码": column, "性别": _sexes()}), {"企业代码": None, "性别": "gender"})
    survived = set(codes) & set(result.frame["企业代码"].astype(str))
    assert not survived, f"{len(survived)} raw enterprise codes kept verbatim in an L3 copy"


def test_nulls_do_not_dilute_a_key() -> None:
    """HOLDS: nulls are not counted, so 40% codes + 60% nulls is still a key."""
    codes = _codes(2)
    column = [c if i % 10 < 4 else None for i, c in enumerate(codes)]
    result = _desensitize(pd.DataFrame({"企业代码": column, "性别": _sexes()}), {"企业代码": None, "性别": "gender"})
    assert not set(codes) & set(result.frame["企业代码"].dropna().astype(str))


def _column_kinds() -> dict[str, tuple[pd.Series, list[str]]]:
    """Key columns of awkward dtypes -> (column, how each row's key is written in its note)."""
    codes = _codes(3)
    ints = np.random.default_rng(3).choice(np.arange(10**7, 10**8), size=N, replace=False)
    floats = ints.astype(float)
    floats[::3] = np.nan
    mixed = [int(c[2:]) if i % 2 else c for i, c in enumerate(codes)]
    return {
        "categorical": (pd.Series(pd.Categorical(codes)), codes),
        "padded": (pd.Series([f" {c}  " for c in codes]), codes),
        "mixed_object": (pd.Series(mixed, dtype=object), [str(v) for v in mixed]),
        "float_with_nulls": (pd.Series(floats), [str(int(v)) if v == v else "无" for v in floats]),
        "int64": (pd.Series(ints), [str(v) for v in ints]),
    }


@pytest.mark.parametrize("kind", ["categorical", "padded", "mixed_object", "float_with_nulls", "int64"])
def test_key_columns_of_any_dtype_are_pseudonymized_and_leave_the_text(kind: str) -> None:
    """HOLDS (expected): the dtype does not let a key through, in the column or in the note."""
    column, written = _column_kinds()[kind]
    frame = pd.DataFrame({"账号": column, "备注": [f"账号 {w} 办结" for w in written], "性别": _sexes()})
    result = _desensitize(frame, {"账号": None, "备注": "free_text", "性别": "gender"})
    raw_texts = {w for w in written if w != "无"}
    copy_cells = {str(v).strip() for v in result.frame["账号"].dropna()}
    assert not raw_texts & copy_cells
    assert not [w for w in raw_texts if any(w in str(n) for n in result.frame["备注"].dropna())]


def test_short_keys_leave_the_text() -> None:
    """Three-character codes (A7Q) are unique in a 400-row table: pseudonymized in the column, they must
    not stay readable in the note (MIN_KEY_CHARS = 4 lets them through)."""
    rng = np.random.default_rng(4)
    alphabet = list("ABCDEFGHJKLMNPQRSTUVWXYZ")
    codes = sorted({f"{rng.choice(alphabet)}{rng.integers(0, 10)}{rng.choice(alphabet)}" for _ in range(3 * N)})[:N]
    frame = pd.DataFrame({"柜号": codes, "备注": [f"领取柜 {c} 钥匙" for c in codes], "性别": _sexes(len(codes))})
    result = _desensitize(frame, {"柜号": None, "备注": "free_text", "性别": "gender"})
    assert result.report["columns"][0]["near_unique"]["action"] == "pseudonymize"
    leaked = [c for c, n in zip(codes, result.frame["备注"], strict=True) if c in str(n)]
    assert leaked == [], f"{len(leaked)} short keys readable in the notes, e.g. {result.frame['备注'].iloc[0]!r}"


def test_a_rounded_income_that_singles_people_out_is_measured_or_coarsened() -> None:
    """Incomes rounded to 100 (L3's rule) of 400 people are mostly unique in the copy. keys.py leaves
    generalized columns "to the risk measures, as quasi-identifiers are", but income is not a
    quasi-identifier, so nothing measures it: a near-unique column survives unmeasured."""
    income = np.random.default_rng(6).integers(3_000, 300_000, N)
    result = _desensitize(pd.DataFrame({"月收入": income, "性别": _sexes()}), {"月收入": "income", "性别": "gender"})
    copy = result.frame["月收入"]
    singled_out = float((copy.map(copy.value_counts()) < 2).mean())
    measured = "月收入" in result.report["risk"]["quasi_identifiers"]
    flagged = result.report["columns"][0].get("near_unique") is not None
    assert singled_out <= 0.5 or measured or flagged, (
        f"{singled_out:.0%} of copy rows singled out by 月收入, unmeasured"
    )


def _independent_risk(frame: pd.DataFrame, qi: list[str]) -> tuple[float, float]:
    """Highest and average prosecutor risk over ``qi``, a null a value of its own (hand-rolled)."""
    keys = ["\x1f".join("<NA>" if pd.isna(v) else repr(v) for v in row) for row in frame[qi].itertuples(index=False)]
    sizes = pd.Series(keys).map(pd.Series(keys).value_counts()).to_numpy(dtype=float)
    return float(1 / sizes.min()), float((1 / sizes).mean())


def _people(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    birth = pd.Timestamp("1940-01-01") + pd.to_timedelta(rng.integers(0, 365 * 70, n), unit="D")
    towns = ["沁园街道", "济水街道", "北海街道", "天坛街道", "玉泉街道", "克井镇"]
    return pd.DataFrame(
        {
            "出生日期": birth,
            "年龄": (2026 - birth.year).astype(int),
            "性别": rng.choice(["男", "女"], n),
            "民族": rng.choice(["汉族", "回族", "满族", "壮族"], n, p=[0.85, 0.05, 0.05, 0.05]),
            "住址": [f"河南省济源市{t}{rng.integers(1, 50)}号" for t in rng.choice(towns, n)],
            "健康": rng.choice(["高血压", "糖尿病", "无", "哮喘"], n),
        }
    )


PEOPLE_TYPES: dict[str, str | None] = {
    "出生日期": "birth_date",
    "年龄": "age",
    "性别": "gender",
    "民族": "ethnicity",
    "住址": "address",
    "健康": "health",
}


@pytest.mark.parametrize("level", ["L3", "L4"])
@pytest.mark.parametrize(("seed", "n"), [(0, 37), (1, 300), (2, 1200)])
def test_met_true_means_the_copy_meets_the_threshold_measured_independently(level: str, seed: int, n: int) -> None:
    """HOLDS (expected): wherever the report says met, a hand count over the copy's QI columns agrees."""
    result = _desensitize(_people(seed, n), PEOPLE_TYPES, level)
    risk = result.report["risk"]
    if not len(result.frame) or not risk["met"]:
        assert risk["met"] is False or not len(result.frame)
        return
    highest, average = _independent_risk(result.frame, risk["quasi_identifiers"])
    assert highest <= risk["threshold"]["highest"] + 1e-9
    assert average <= risk["threshold"]["average"] + 1e-9
    assert abs(highest - risk["after"]["prosecutor"]["highest"]) < 1e-9


def test_operator_facts_carry_no_reason_no_raw_answer_no_before() -> None:
    """HOLDS (expected): the catalog's public facts of a copy with a kept key hold neither the custodian's
    reason, nor any raw workload answer, nor the raw table's risk ("before")."""
    codes = _codes(8)
    frame = _people(8, N).assign(企业代码=codes)
    reason = "SECRET-REASON-the-register-of-enterprises"
    result = _desensitize(frame, {**PEOPLE_TYPES, "企业代码": None}, "L3", keep_columns={"企业代码": reason})
    shown = json.dumps(public_facts(2, result.report), ensure_ascii=False, default=str)
    assert reason not in shown and "before" not in shown
    for query in (result.report.get("utility") or {}).get("workload", []):
        raw = query.get("raw")
        if isinstance(raw, float) and raw not in (0.0, 1.0) and not raw.is_integer():
            assert repr(raw) not in shown


# --- numeric copies under the export guard (issue 15's guard, issue 16's year/midpoint columns) ---

READ = "import pandas as pd\nd = pd.read_parquet('/data/residents.parquet')\n"
ROWS = "r = d[['姓名', '性别', '民族', '出生日期', '住址', '备注']]\n"
GUARD_ATTACKS = [
    ("years_as_floats", ROWS + "r.assign(出生日期=r['出生日期'].astype(float)).to_csv('/out/a.csv', index=False)"),
    (
        "years_as_decimal_text",
        ROWS + "r.assign(出生日期=r['出生日期'].map(lambda v: f'{v:.2f}')).to_csv('/out/a.csv', index=False)",
    ),
    (
        "years_as_exponent",
        ROWS + "r.assign(出生日期=r['出生日期'].map(lambda v: f'{v:.4e}')).to_csv('/out/a.csv', index=False)",
    ),
    (
        "rows_split_over_two_files",
        ROWS + "r.iloc[: len(r) // 2].to_csv('/out/a.csv', index=False)\n"
        "r.iloc[len(r) // 2 :].to_csv('/out/b.csv', index=False)",
    ),
    (
        "columns_split_over_two_files",
        ROWS + "r[['姓名', '性别', '民族']].to_csv('/out/a.csv')\nr[['出生日期', '住址', '备注']].to_csv('/out/b.csv')",
    ),
    (
        "pseudonyms_upper_cased",
        "d.assign(公民身份号码=d['公民身份号码'].str.upper()).to_csv('/out/a.csv', index=False)",
    ),
    (
        "pseudonyms_split_in_halves",
        "pd.DataFrame({'a': d['公民身份号码'].str[:16], 'b': d['公民身份号码'].str[16:], 'y': d['出生日期']})"
        ".to_csv('/out/a.csv', index=False)",
    ),
    (
        "pseudonyms_as_parquet_ints",
        "pd.DataFrame({'x': d['公民身份号码'].map(lambda h: int(h[:15], 16)), 'y': d['出生日期']})"
        ".to_parquet('/out/a.parquet')",
    ),
]


@pytest.mark.attack
@pytest.mark.parametrize(("name", "code"), GUARD_ATTACKS, ids=[a[0] for a in GUARD_ATTACKS])
def test_copy_rows_reformatted_are_blocked(name: str, code: str, tmp_path: Path) -> None:
    """Copy rows (every resident's masked name, sex, ethnicity, birth year, district and note) leave a job
    only as a block, however the numbers and keys are written."""
    from tests.conftest import require_sandbox

    require_sandbox()
    residents()
    judged = run_and_judge("python", READ + code, tmp_path)
    assert judged.verdict == "block", (name, [f.as_json() for f in judged.findings])


RAW_ATTACKS = [
    (
        "id_first_17_digits_as_int64_parquet",  # the 18th character is a checksum: 17 digits are the whole ID
        "i = d['公民身份号码']\npd.DataFrame({'a': i.str[:17].astype('int64')}).to_parquet('/out/a.parquet')",
    ),
    (
        "id_first_17_digits_as_float_csv",
        "i = d['公民身份号码']\npd.DataFrame({'a': i.str[:17].astype(float)}).to_csv('/out/a.csv', index=False)",
    ),
    (
        "id_parts_as_ints_split_over_two_parquet_files",  # 230523 | 19870802 lose nothing; 0211X -> 2110
        "i = d['公民身份号码']\n"
        "pd.DataFrame({'a': i.str[:6].astype(int), 'b': i.str[6:12].astype(int)}).to_parquet('/out/a.parquet')\n"
        "pd.DataFrame({'c': i.str[12:].str.replace('X', '0').astype(int)}).to_parquet('/out/b.parquet')",
    ),
    (
        "id_parts_as_ints_one_parquet",
        "i = d['公民身份号码']\npd.DataFrame({'a': i.str[:6].astype(int), 'b': i.str[6:12].astype(int), "
        "'c': i.str[12:].str.replace('X', '0').astype(int)}).to_parquet('/out/a.parquet')",
    ),
]


#: Open (found by red team 16, not yet closed): these reach agency review, not block — fail closed, but a
#: reviewer must catch them. The 17-digit forms need the guard to probe a 17-digit number completed by its
#: check character; parts over two files need cross-file gluing of integer columns.
REVIEW_NOT_BLOCK = {
    "id_first_17_digits_as_int64_parquet",
    "id_first_17_digits_as_float_csv",
    "id_parts_as_ints_split_over_two_parquet_files",
}


@pytest.mark.attack
@pytest.mark.parametrize(("name", "code"), RAW_ATTACKS, ids=[a[0] for a in RAW_ATTACKS])
def test_raw_ids_written_as_numbers_are_blocked(name: str, code: str, tmp_path: Path) -> None:
    """A job given raw records (a copy that failed desensitization) writes every 公民身份号码 as numbers:
    the guard must block it, not merely send it for review."""
    from tests.conftest import require_sandbox

    require_sandbox()
    raw = residents()[0]
    judged = run_and_judge("python", READ + code, tmp_path, data=raw)
    wanted = {"review", "block"} if name in REVIEW_NOT_BLOCK else {"block"}  # never open, even where not blocked yet
    assert judged.verdict in wanted, (name, judged.verdict, [f.as_json() for f in judged.findings])


# --- keep_columns over HTTP, and what an operator sees ---


@pytest.fixture
def api(initialised: tuple[Any, dict[str, str]], tmp_path: Path) -> tuple[Any, dict[str, dict[str, str]], Any, Any]:
    """A TestClient over an instance holding 300 generated residents (raw) with a near-unique 会员号, the four
    roles' headers, the instance and its API keys."""
    from fastapi.testclient import TestClient

    from app import create_app
    from samples import synthetic
    from tests.conftest import bearer_headers
    from tests.test_registry_copies import CUSTODIAN, PROVIDER, PROVIDER_CODE

    instance, tokens = initialised
    path = tmp_path / "residents.csv"
    people = synthetic.generate_all(300, seed=3)["residents"]
    synthetic.write_csv(people.assign(会员号=_codes(9, len(people))), path)
    instance.registry.ingestor.ingest(
        path, name="residents", provider=PROVIDER, provider_code=PROVIDER_CODE, by=CUSTODIAN
    )
    client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    return client, bearer_headers(client, tokens), instance, tokens


@pytest.mark.parametrize(
    ("label", "keep", "who", "expected"),
    [
        ("operator", {"备注": "x"}, "operator", 403),
        ("unknown_column", {"nope": "x"}, "custodian", 409),
        ("blank_reason", {"备注": " \n\t "}, "custodian", 409),
        ("int_reason", {"备注": 5}, "custodian", 422),
        ("nul_in_reason", {"备注": "ok\x00"}, "custodian", 422),
    ],
)
def test_bad_keep_columns_are_refused_cleanly(api: Any, label: str, keep: Any, who: str, expected: int) -> None:
    """HOLDS: keep_columns from a non-custodian, for an unknown column or without a real reason: 4xx."""
    client, headers, _, _ = api
    response = client.post("/datasets/residents/desensitize", json={"keep_columns": keep}, headers=headers[who])
    assert response.status_code == expected, (label, response.text[:300])


def test_a_huge_keep_reason_is_refused_not_a_500(api: Any) -> None:
    """A 2 MB reason reaches the ledger, whose entry limit (64 KiB) raises EntryError: an HTTP 500."""
    client, headers, _, _ = api
    body = {"keep_columns": {"性别": "R" * 2_000_000}}
    response = client.post("/datasets/residents/desensitize", json=body, headers=headers["custodian"])
    assert response.status_code < 500, response.status_code
    assert response.status_code in (400, 409, 413, 422)


def test_operator_catalog_does_not_show_the_custodians_reason(api: Any) -> None:
    """HOLDS: the reason given for keeping a column stays with the platform's roles."""
    from tests.console_support import console_client

    client, headers, instance, tokens = api
    body = {"keep_columns": {"会员号": "SECRET-REASON-7f3a the register is public"}}
    assert client.post("/datasets/residents/desensitize", json=body, headers=headers["custodian"]).status_code == 201
    for url in ("/datasets", "/datasets/residents"):
        response = client.get(url, headers=headers["operator"])
        assert response.status_code == 200, url
        assert "SECRET-REASON-7f3a" not in response.text, url
    page = console_client(instance, tokens["operator"]).get("/console/operator/catalog")
    assert page.status_code == 200 and "residents" in page.text
    assert "SECRET-REASON-7f3a" not in page.text
    shown = client.get("/datasets/residents/desensitization", headers=headers["custodian"]).text
    assert "SECRET-REASON-7f3a" in shown  # the reason was recorded: the absence above is not vacuous


@pytest.mark.parametrize(
    ("form", "write"),
    [
        ("iso_t", lambda t: t.isoformat()),
        ("space", lambda t: t.strftime("%Y-%m-%d %H:%M:%S")),  # str(Timestamp), what pandas writes to CSV
        ("chinese", lambda t: f"{t.year}年{t.month}月{t.day}日{t.hour}时{t.minute}分{t.second}秒"),
    ],
)
def test_a_near_unique_timestamp_leaves_the_text_however_written(form: str, write: Any) -> None:
    """An untyped 受理时间 to the second is near-unique: the column is a date quasi-identifier (issue 23),
    generalized by k-anonymity from the policy's precision on, and the raw timestamps must leave the note too
    (keys.py redacts them: action "quasi_identifier" is not "kept")."""
    rng = np.random.default_rng(3)
    stamps = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 365 * 86400, N), unit="s")
    frame = pd.DataFrame({"受理时间": stamps, "备注": [f"于 {write(t)} 受理" for t in stamps], "性别": _sexes()})
    result = _desensitize(frame, {"受理时间": None, "备注": "free_text", "性别": "gender"})
    assert result.report["columns"][0]["near_unique"]["action"] == "quasi_identifier"
    assert {q["column"]: q["basis"] for q in result.report["k_anonymity"]["quasi_identifiers"]}["受理时间"] == "date"
    leaked = [write(t) for t, note in zip(stamps, result.frame["备注"], strict=True) if write(t) in str(note)]
    assert leaked == [], f"{len(leaked)}/{N} raw timestamps readable in the notes, e.g. {leaked[:1]}"


def test_keep_columns_cannot_unpseudonymize_an_identifier_or_a_quasi_identifier() -> None:
    """HOLDS (expected): keep_columns keeps only near-unique columns the policy left alone; naming the
    公民身份号码 (pseudonymized by the policy) or the birth date (a quasi-identifier) changes nothing."""
    raw = residents()[0].iloc[:300]
    keep = {"公民身份号码": "we need it", "出生日期": "we need it too"}
    result = _desensitize(raw, RESIDENT_TYPES, "L4", keep_columns=keep)
    assert not set(raw["公民身份号码"]) & set(result.frame["公民身份号码"].astype(str))
    births = set(raw["出生日期"].astype(str))
    assert not births & set(result.frame["出生日期"].astype(str))


def test_a_keep_reason_is_escaped_on_the_custodians_page(api: Any) -> None:
    """HOLDS (expected): the ledgered reason is shown to the custodian as text, never as markup."""
    from tests.console_support import console_client

    client, headers, instance, tokens = api
    reason = '<script>alert("rt16")</script><img src=x onerror=alert(1)>'
    body = {"keep_columns": {"会员号": reason}}
    assert client.post("/datasets/residents/desensitize", json=body, headers=headers["custodian"]).status_code == 201
    page = console_client(instance, tokens["custodian"]).get("/console/custodian/datasets/residents")
    assert page.status_code == 200
    assert "&lt;script&gt;" in page.text  # shown, escaped
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
