"""Near-unique columns of a personal table are keys (issue 16, second bullet).

Rules exercised: a value held by one row links it back to a person through a public register, so in
a table of personal information (个人信息保护法 第四条, L3; 第二十八条, L4) such a column is
pseudonymized (GB/T 37964-2019 附录A 假名化; 去标识化, 个人信息保护法 第七十三条(四)) whatever its
type, and the same values are removed from the free text; L1/L2 copies keep it; the custodian may
keep one with a reason that is ledgered (双鸭山市公共数据管理暂行办法 第二十条: every step recorded).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app import Instance
from app.cli import cli as cli_app
from core import Actor, RegistryError
from desensitize.identifiers import uscc_check_char
from desensitize.keys import (
    FILLER_SHARE,
    MIN_GENERALIZED_ROWS,
    MIN_REST_ROWS,
    date_renderings,
    singled_out_share,
    visible_reason,
)
from desensitize.literals import CHUNK_CHARS, GLUED_KEY_CHARS, MIN_KEY_CHARS, clean_keys, key_index, key_spans
from desensitize.pipeline import desensitize_table
from desensitize.policy import Policy, PolicyError, Rule, load_policy
from desensitize.textscan import find_entities, redact
from desensitize.transforms import pseudonymize
from registry import Registry
from samples import synthetic

PEPPER = b"instance-pepper-for-tests-0123456789"
N = 240
TYPES: dict[str, str | None] = {
    "姓名": "person_name",
    "公民身份号码": "cn_resident_id",
    "性别": "gender",
    "企业代码": "uscc",  # the enterprise each resident represents: recognised, yet no rule of its own
    "订单号": None,  # int64 order numbers, unrecognised
    "车牌": None,  # plate numbers the profiler did not recognise
    "民族": "ethnicity",
    "备注": "free_text",
}
_HEX = re.compile(r"^[0-9a-f]{32}$")


def _uscc(i: int) -> str:
    body = f"91230100MA{i:07d}"
    return body + uscc_check_char(body)


def residents(n: int = N) -> pd.DataFrame:
    """Residents, each with their enterprise's code, an order number and a plate, all repeated in 备注."""
    ids = synthetic.generate_all(n, seed=5)["residents"]
    codes = [_uscc(i) for i in range(n)]
    orders = np.arange(700_001, 700_001 + n, dtype=np.int64)
    plates = [f"黑J{i:05d}" for i in range(n)]
    return pd.DataFrame(
        {
            "姓名": ids["姓名"].to_numpy()[:n],
            "公民身份号码": ids["公民身份号码"].to_numpy()[:n],
            "性别": ["男", "女"] * (n // 2),
            "企业代码": codes,
            "订单号": orders,
            "车牌": plates,
            "民族": ["汉族"] * n,
            "备注": [
                f"代表企业{c.lower()}办理，订单{o}，车辆{p}已登记"
                for c, o, p in zip(codes, orders, plates, strict=True)
            ],
        }
    )


def _cells(frame: pd.DataFrame) -> str:
    return "\n".join(str(v) for col in frame.columns for v in frame[col].dropna().tolist())


# -- the definition -------------------------------------------------------------------------------


def test_singled_out_share_by_hand() -> None:
    """Non-null rows whose value fewer than `group` rows hold: b and c of a, a, b, c (null left out)."""
    values = pd.Series(["a", "a", "b", None, "c"])
    assert singled_out_share(values) == 0.5
    assert singled_out_share(values, group=3) == 1.0  # a pair singles out its two rows too
    assert singled_out_share(pd.Series([None, None], dtype=object)) == 0.0
    assert singled_out_share(pd.Series([1.5, 1.5, 2.25, np.nan])) == pytest.approx(1 / 3)


def test_blanks_and_fillers_do_not_dilute_the_share_by_hand() -> None:
    """Redteam16 and 16b: blanks count as nulls; every value held by at least FILLER_SHARE of the rows and
    MIN_REST_ROWS rows is a filler, left out when MIN_REST_ROWS other rows hold something."""
    codes = [f"C{i:03d}" for i in range(10)]
    column = pd.Series(["无"] * 12 + codes + ["", " ", None])  # 22 rows hold something, "无" 12 >= 10
    assert singled_out_share(column) == 1.0  # the 10 codes, each of its own (not 10/22 = 0.45)
    assert singled_out_share(pd.Series(["无"] * 12 + codes[:9])) == pytest.approx(9 / 21)  # 9 < MIN_REST_ROWS
    # Two fillers, neither held by half the rows (180 "无", 140 "-"), hide 80 codes no longer: 80/80.
    two = pd.Series(["无"] * 180 + ["-"] * 140 + [f"KY{i:08d}" for i in range(80)])
    assert singled_out_share(two) == 1.0
    # A value held by 9 rows is no filler (fewer than MIN_REST_ROWS): 10 codes of 19 rows.
    assert singled_out_share(pd.Series(["无"] * 9 + codes)) == pytest.approx(10 / 19)
    assert singled_out_share(pd.Series(["男"] * 50 + ["女"] * 50)) == 0.0  # nothing else: categories only
    assert singled_out_share(pd.Series(["  ", ""], dtype=object)) == 0.0
    assert (MIN_REST_ROWS, FILLER_SHARE) == (10, 0.05)


def test_a_keep_reason_must_be_visible() -> None:
    """Redteam16b: a reason of one zero-width space kept a key verbatim; it is no reason."""
    for invisible in ("\u200b", " \u200b\u2060 ", "\ufeff", "\t"):
        assert not visible_reason(invisible)
        with pytest.raises(ValueError, match="needs a reason"):
            desensitize_table(
                residents(), TYPES, load_policy("L4"), pepper=PEPPER, keep_columns={"企业代码": invisible}
            )
    assert visible_reason("\u200b公开登记") and not visible_reason(None)


def test_key_spans_fold_any_separator_and_chinese_numerals() -> None:
    """Redteam16b: a key read through any punctuation, line break or invisible character between its
    characters, or written in Chinese numerals, is the key; the written span goes."""
    index = key_index(clean_keys(["KY23208209", "91080012"]))
    assert index is not None
    variants = ["KY23·208·209", "KY23，208，209", "KY23\n208209", "KY23\u200b208209", "KY23|208|209", "KY23–208–209",
                "KY23:208:209", "九一〇八〇〇一二", "九一零八 〇〇一二"]  # fmt: skip
    for written in variants:
        text = f"备注{written}。"
        starts, ends = key_spans(text, index)
        assert [text[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)] == [written], written
    starts, _ = key_spans("第一二三号", index)
    assert len(starts) == 0  # numerals that spell no key stay


def test_a_very_long_key_is_found_in_chunks_and_stays_linear() -> None:
    """Redteam16b: a 20,000-character key made the search quadratic (34 s on 30 rows); it is indexed as
    CHUNK_CHARS-long chunks, which together cover every character of it where it is written."""
    rng = np.random.default_rng(5)
    key = "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXY0123456789"), 20_000).tolist())
    index = key_index(clean_keys([key, "KY23208209"]))
    assert index is not None
    text = "前" + key + "后 KY23208209"
    starts, ends = key_spans(text, index)
    covered = np.zeros(len(text), dtype=bool)
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        covered[s:e] = True
    assert covered[1 : 1 + len(key)].all() and not covered[0] and not covered[1 + len(key)]
    assert CHUNK_CHARS == 64


def test_the_policy_field_validates_and_personal_levels_get_it_by_default() -> None:
    assert load_policy("L3").near_unique is not None and load_policy("L4").near_unique is not None
    assert load_policy("L1").near_unique is None and load_policy("L2").near_unique is None
    own = load_policy("L3").model_dump(mode="json")
    del own["near_unique"]
    assert Policy.model_validate(own).near_unique == load_policy("L3").near_unique  # fail closed
    with pytest.raises(ValueError, match="near_unique"):
        Policy.model_validate({**own, "near_unique": {"share": 0}})
    with pytest.raises(ValueError, match="near_unique"):
        Policy.model_validate({**own, "near_unique": {"action": "keep"}})
    # Policies without it keep the digest they had before the field existed.
    assert "near_unique" not in load_policy("L2").canonical_json()
    assert isinstance(PolicyError("x"), ValueError)


# -- the pipeline ---------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["L3", "L4"])
def test_keys_of_any_type_are_pseudonymized_and_vanish_from_free_text(level: str) -> None:
    raw = residents()
    result = desensitize_table(raw, TYPES, load_policy(level), pepper=PEPPER)
    by_name = {c["name"]: c for c in result.report["columns"]}
    for column in ("企业代码", "订单号", "车牌"):
        assert by_name[column]["action"] == "pseudonymize"
        assert by_name[column]["near_unique"] == {
            "share": 1.0, "threshold": 0.5, "group": 2, "action": "pseudonymize", "reason": None,
        }  # fmt: skip
        copy = result.frame[column]
        assert copy.map(lambda v: bool(_HEX.match(v))).all()
        # The policy's own pseudonym function and family: the guard's fingerprints and joins agree.
        family = TYPES[column] or f"untyped:{column}"
        expected = pseudonymize(raw[column], pepper=PEPPER, family=family)[result.kept_rows]
        assert copy.tolist() == expected.tolist()
        assert f"{column} (pseudonyms)" in result.fingerprints.columns["values"]
    cells = _cells(result.frame)
    for column in ("企业代码", "订单号", "车牌"):
        leaked = [v for v in raw[column].astype(str) if v in cells or v.lower() in cells]
        assert leaked == [], f"{column}: {leaked[:3]}"
    assert result.frame["备注"].str.contains("<KEY>").all()
    assert "near_unique" not in by_name["性别"] and "near_unique" not in by_name["民族"]
    assert result.fingerprints.contains_values(result.frame["订单号"].head(5)).all()


def test_an_l2_copy_keeps_them() -> None:
    raw = residents()
    result = desensitize_table(raw, TYPES, load_policy("L2"), pepper=PEPPER)
    assert all("near_unique" not in c for c in result.report["columns"])
    for column in ("企业代码", "订单号", "车牌"):
        assert result.frame[column].tolist() == raw[column].loc[result.frame.index].tolist()


def test_a_kept_column_stays_with_its_reason_and_a_keep_needs_one() -> None:
    raw = residents()
    reason = "the register of enterprises is public and the analysis joins on it"
    result = desensitize_table(raw, TYPES, load_policy("L4"), pepper=PEPPER, keep_columns={"企业代码": f" {reason} "})
    column = next(c for c in result.report["columns"] if c["name"] == "企业代码")
    assert column["near_unique"]["action"] == "kept" and column["near_unique"]["reason"] == reason
    assert column["action"] == "keep"
    assert result.frame["企业代码"].tolist() == raw["企业代码"].loc[result.frame.index].tolist()
    assert "企业代码 (pseudonyms)" not in result.fingerprints.columns["values"]
    assert next(c for c in result.report["columns"] if c["name"] == "订单号")["action"] == "pseudonymize"
    with pytest.raises(ValueError, match="needs a reason"):
        desensitize_table(raw, TYPES, load_policy("L4"), pepper=PEPPER, keep_columns={"企业代码": "  "})
    with pytest.raises(KeyError, match="not"):
        desensitize_table(raw, TYPES, load_policy("L4"), pepper=PEPPER, keep_columns={"营业执照": "why"})


def _policy(share: float, group: int = 2, action: str = "pseudonymize") -> Policy:
    data = load_policy("L3").model_dump(mode="json")
    return Policy.model_validate({**data, "near_unique": {"share": share, "group": group, "action": action}})


def test_the_threshold_of_the_policy_is_honoured() -> None:
    """100 rows: column A has 50 values of their own and 25 pairs (share 0.50, not more than 0.5: kept);
    column B 52 of their own and 24 pairs (0.52: a key)."""
    a = [f"A{i:04d}" for i in range(50)] + [f"P{i:04d}" for i in range(25) for _ in range(2)]
    b = [f"B{i:04d}" for i in range(52)] + [f"Q{i:04d}" for i in range(24) for _ in range(2)]
    frame = pd.DataFrame({"a": a, "b": b})
    types: dict[str, str | None] = {"a": None, "b": None}

    def actions(policy: Policy) -> dict[str, str]:
        report = desensitize_table(frame, types, policy, pepper=PEPPER).report
        return {c["name"]: c.get("near_unique", {}).get("action", "-") for c in report["columns"]}

    assert actions(_policy(0.5)) == {"a": "-", "b": "pseudonymize"}
    assert actions(_policy(0.49)) == {"a": "pseudonymize", "b": "pseudonymize"}
    assert actions(_policy(0.6)) == {"a": "-", "b": "-"}
    assert actions(_policy(0.9, group=3)) == {"a": "pseudonymize", "b": "pseudonymize"}  # pairs single out
    dropped = desensitize_table(frame, types, _policy(0.5, action="drop"), pepper=PEPPER)
    assert list(dropped.frame.columns) == ["a"]
    assert next(c for c in dropped.report["columns"] if c["name"] == "b")["action"] == "drop"


def test_masked_values_are_judged_as_masked_and_quasi_identifiers_are_left_to_k_anonymity() -> None:
    """L3 masks mobiles to 138****5678, still one per person: pseudonymized; surnames 张** are not keys;
    a birth date (a quasi-identifier) is generalized by k-anonymity, not hashed."""
    people = synthetic.generate_all(600, seed=3)["residents"]
    types = {"姓名": "person_name", "手机号码": "cn_phone", "出生日期": "birth_date", "性别": "gender"}
    result = desensitize_table(people[list(types)], types, load_policy("L3"), pepper=PEPPER)
    by_name = {c["name"]: c for c in result.report["columns"]}
    assert by_name["手机号码"]["action"] == "pseudonymize" and by_name["手机号码"]["near_unique"]["share"] > 0.9
    assert "near_unique" not in by_name["姓名"] and "near_unique" not in by_name["出生日期"]


def test_a_near_unique_date_is_generalized_to_its_month_not_hashed() -> None:
    """A registration date per person: to the first day of its month (12 months x 20 rows: no longer
    near-unique); a timestamp to the second that stays unique even by year is pseudonymized. Since issue 23 a
    date of a personal table is a quasi-identifier generalized by k-anonymity (tests/test_default_quasi.py), not
    a key: the near-unique check applies to a date the custodian ruled not a quasi-identifier."""
    days = pd.Series(pd.date_range("2021-01-01", periods=240, freq="36h"))
    frame = pd.DataFrame({"登记日期": days, "备注": ["无"] * 240})
    as_qi = desensitize_table(frame, {"登记日期": None, "备注": "free_text"}, load_policy("L4"), pepper=PEPPER)
    assert as_qi.report["columns"][0]["near_unique"]["action"] == "quasi_identifier"
    assert as_qi.frame["登记日期"].dtype == "Int64" and set(as_qi.frame["登记日期"].dropna()) <= {2020, 2021, 2022}
    ruled = {"登记日期": "test: the near-unique check of issue 16"}
    result = desensitize_table(
        frame, {"登记日期": None, "备注": "free_text"}, load_policy("L4"), pepper=PEPPER, not_quasi=ruled
    )
    column = result.report["columns"][0]
    assert column["action"] == "date_month" and column["representation"] == {"kind": "month"}
    assert column["near_unique"]["action"] == "generalize" and column["near_unique"]["to"] == "month"
    assert (result.frame["登记日期"].dt.day == 1).all()
    assert result.frame["登记日期"].dt.to_period("M").tolist() == days.dt.to_period("M").tolist()
    years = pd.DataFrame({"t": pd.Series(pd.date_range("1900-01-01", periods=50, freq="400D"))})
    hashed = desensitize_table(years, {"t": None}, load_policy("L4"), pepper=PEPPER, not_quasi={"t": "test"})
    assert hashed.report["columns"][0]["near_unique"]["action"] == "pseudonymize"


# -- the literal search in free text --------------------------------------------------------------


def test_key_spans_by_hand() -> None:
    """Word boundaries for short letters and digits, case and full width ignored, one character not searched."""
    keys = clean_keys(["91230100MA1B2C3D4E", "1001", "黑A12345", "ab1", "x1001", 42, None, "Q"])
    assert keys == ("1001", "91230100MA1B2C3D4E", "AB1", "X1001", "黑A12345")  # folded; "Q" shorter than 2
    assert MIN_KEY_CHARS == 2 and GLUED_KEY_CHARS == 6
    index = key_index(keys)
    assert index is not None
    text = "代码９１２３0100ma1b2c3d4e，订单1001与21001、10010，车黑A12345号 x1001"
    starts, ends = key_spans(text, index)
    found = sorted(text[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True))
    assert found == ["1001", "x1001", "黑A12345", "９１２３0100ma1b2c3d4e"]
    assert key_index(()) is None


def test_key_spans_fold_separators_glue_long_keys_and_bound_short_ones() -> None:
    """Redteam16: KY12 345 678 and KY-1234-5678 are KY12345678 (the written span goes, separators and
    all); NOKY12345678 holds it glued (six characters or more: found anywhere); a short key AB1 only as
    a whole token (编号AB1， yes, XAB1Y no)."""
    index = key_index(clean_keys(["KY12345678", "AB1"]))
    assert index is not None
    text = "甲KY12 345 678乙 ky-1234-5678 NOKY12345678号 编号AB1， XAB1Y AB1"
    starts, ends = key_spans(text, index)
    found = sorted(text[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True))
    assert found == ["AB1", "AB1", "KY12 345 678", "KY12345678", "ky-1234-5678"]
    assert "NOKY12345678" in text and text.index("KY12345678") in starts.tolist()


def test_redact_replaces_keys_beside_the_recognised_entities() -> None:
    notes = pd.Series(["订单700123已付，联系13800138000", None, "无订单"])
    out = redact(notes, keys=["700123"], workers=1)
    assert out.tolist()[0] == "订单<KEY>已付，联系<CN_MOBILE>"
    assert out.isna().tolist() == [False, True, False] and out.tolist()[2] == "无订单"
    spans = find_entities(notes, keys=["700123"])
    assert [(s.row, s.entity_type) for s in spans] == [(0, "KEY"), (0, "CN_MOBILE")]


def test_forked_and_inline_key_redaction_agree() -> None:
    raw = residents(2000)
    keys = raw["企业代码"].tolist() + raw["订单号"].astype(str).tolist()
    notes = pd.concat([raw["备注"]] * 40, ignore_index=True)  # large enough to fork
    inline = redact(notes, keys=keys, workers=1)
    assert inline.equals(redact(notes, keys=keys, workers=2))
    assert not inline.str.contains("700").any()


# -- the registry, the ledger and the CLI --------------------------------------------------------

CUSTODIAN = Actor("demo-custodian", "custodian")
PROVIDER_CODE = "11230500MB1234567" + uscc_check_char("11230500MB1234567")


@dataclass
class Env:
    instance: Instance
    registry: Registry


@pytest.fixture
def env(initialised: tuple[Instance, dict[str, str]], tmp_path: Path) -> Env:
    instance, _ = initialised
    path = tmp_path / "represented.csv"
    synthetic.write_csv(residents(), path)
    instance.registry.ingestor.ingest(
        path, name="represented", provider="双鸭山市公安局", provider_code=PROVIDER_CODE, by=CUSTODIAN
    )
    return Env(instance, instance.registry)


def test_the_registry_copy_pseudonymizes_and_ledgers_a_kept_column_with_its_reason(env: Env) -> None:
    entry = env.registry.catalog.get("represented")
    assert entry.level.value in {"L3", "L4"}
    first = env.registry.copies.make("represented", by=CUSTODIAN)
    columns = {c["name"]: c for c in first.report["columns"]}
    assert columns["订单号"]["near_unique"]["action"] == "pseudonymize"
    before = env.instance.ledger.size()
    reason = "joined with the public register of enterprises"
    second = env.registry.copies.make("represented", by=CUSTODIAN, keep_columns={"企业代码": reason})
    columns = {c["name"]: c for c in second.report["columns"]}
    assert (columns["企业代码"]["near_unique"]["action"], columns["企业代码"]["near_unique"]["reason"]) == (
        "kept",
        reason,
    )
    assert columns["企业代码"]["near_unique"]["share"] == 1.0
    stored = env.registry.catalog.get("represented").versions[-1].report or {}
    assert next(c for c in stored["columns"] if c["name"] == "企业代码")["near_unique"]["reason"] == reason
    logged = [e.payload for e in env.instance.ledger.entries(after=before) if e.action == "dataset.desensitized"]
    assert len(logged) == 1
    near = {item["name"]: item for item in logged[0]["near_unique"]}
    assert near["企业代码"]["action"] == "kept" and near["企业代码"]["reason"] == reason
    assert near["订单号"]["action"] == "pseudonymize"
    assert logged[0]["keep_columns"] == {"企业代码": reason}


def test_the_registry_refuses_a_keep_without_reason_or_column(env: Env) -> None:
    before = env.instance.ledger.size()
    with pytest.raises(RegistryError, match="needs a reason"):
        env.registry.copies.make("represented", by=CUSTODIAN, keep_columns={"企业代码": " "})
    with pytest.raises(RegistryError, match="no column '营业执照'"):
        env.registry.copies.make("represented", by=CUSTODIAN, keep_columns={"营业执照": "why"})
    assert env.instance.ledger.size() == before


def test_cli_keep_column_needs_a_reason_and_records_it(env: Env) -> None:
    home = ["--home", str(env.instance.home)]
    base = ["dataset", "desensitize", "represented", *home, "--json"]
    missing = CliRunner().invoke(cli_app, [*base, "--keep-column", "企业代码"])
    assert missing.exit_code == 1 and "--reason" in missing.output
    empty = CliRunner().invoke(cli_app, [*base, "--keep-column", "企业代码", "--reason", " "])
    assert empty.exit_code == 1
    unknown = CliRunner().invoke(cli_app, [*base, "--keep-column", "营业执照", "--reason", "why"])
    assert unknown.exit_code == 1 and "营业执照" in unknown.output
    kept = ["--keep-column", "企业代码", "--keep-column", "订单号", "--reason", "register join", "--reason", "audit"]
    ok = CliRunner().invoke(cli_app, [*base, *kept])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    near = {c["name"]: c["near_unique"] for c in data["report"]["columns"] if "near_unique" in c}
    assert (near["企业代码"]["reason"], near["订单号"]["reason"]) == ("register join", "audit")
    assert {c["name"]: c["action"] for c in data["columns"]}["订单号"] == "keep"
    two = CliRunner().invoke(cli_app, [*base, "--keep-column", "企业代码", "--reason", "a", "--reason", "b"])
    assert two.exit_code == 1


def test_the_custodian_keeps_a_column_over_http(env: Env, initialised: tuple[Instance, dict[str, str]]) -> None:
    from fastapi.testclient import TestClient

    from app import create_app
    from tests.conftest import bearer_headers

    client = TestClient(create_app(instance=env.instance))
    headers = bearer_headers(client, initialised[1])
    url = "/datasets/represented/desensitize"
    refused = client.post(url, json={"keep_columns": {"企业代码": ""}}, headers=headers["custodian"])
    assert refused.status_code in {400, 409, 422}, refused.text
    assert "reason" in refused.text
    made = client.post(url, json={"keep_columns": {"企业代码": "register join"}}, headers=headers["custodian"])
    assert made.status_code == 201, made.text
    near = {c["name"]: c["near_unique"] for c in made.json()["report"]["columns"] if "near_unique" in c}
    assert near["企业代码"]["action"] == "kept" and near["企业代码"]["reason"] == "register join"
    assert near["订单号"]["action"] == "pseudonymize"


def test_columns_the_policy_generalizes_are_coarsened_while_still_near_unique() -> None:
    """Redteam16: 20 incomes 1500, 2500, ..., 20500 banded by L4 (1000 wide from 0, top-coded at 20000)
    are one per band. Doubled to 2000: 1500 | 2500 3500 | ... | 18500 19500 | 20500 (top) singles out
    2/20: kept at 2000. The same incomes unclassified (kept raw) are a key and pseudonymized."""
    incomes = [1500 + 1000 * i for i in range(20)]
    assert MIN_GENERALIZED_ROWS == 20
    frame = pd.DataFrame({"月收入": incomes, "金额": incomes})
    result = desensitize_table(frame, {"月收入": "income", "金额": None}, load_policy("L4"), pepper=PEPPER)
    by_name = {c["name"]: c for c in result.report["columns"]}
    income = by_name["月收入"]
    assert income["action"] == "band" and income["params"]["width"] == 2000.0
    assert income["near_unique"] == {
        "share": 1.0, "threshold": 0.5, "group": 2, "reason": None, "action": "generalize", "to": 2000.0,
        "share_after": 0.1,
    }  # fmt: skip
    assert income["representation"]["width"] == 2000.0
    copy = result.frame["月收入"].tolist()
    assert copy[1] == copy[2] and copy[17] == copy[18] and len(set(copy)) == 11
    assert by_name["金额"]["action"] == "pseudonymize" and by_name["金额"]["near_unique"]["share"] == 1.0
    five = desensitize_table(frame.head(5), {"月收入": "income", "金额": None}, load_policy("L4"), pepper=PEPPER)
    assert "near_unique" not in five.report["columns"][0]  # fewer than MIN_GENERALIZED_ROWS: not examined
    assert five.report["columns"][0]["params"]["width"] == 1000.0


def test_a_generalized_column_no_width_can_settle_is_pseudonymized() -> None:
    """Fail closed: a year of birth (date_year, no width to double) still one per row is pseudonymized."""
    years = pd.to_datetime([f"{1950 + i}-03-01" for i in range(20)])
    frame = pd.DataFrame({"入职日期": years})
    policy = load_policy("L3").model_copy(update={"default": Rule(action="date_year")})
    result = desensitize_table(frame, {"入职日期": None}, policy, pepper=PEPPER)
    report = result.report["columns"][0]
    assert report["near_unique"]["action"] == "pseudonymize" and report["action"] == "pseudonymize"
    assert not set(result.frame["入职日期"].astype(str)) & {str(1950 + i) for i in range(20)}


def test_date_renderings_by_hand() -> None:
    """Redteam16: a near-unique date leaves the note however written; day precision gets date-only forms."""
    stamp = pd.Series(pd.to_datetime(["2023-10-04 04:46:47", None]))
    assert date_renderings(stamp) == {
        "2023-10-04 04:46:47",
        "2023-10-04T04:46:47",
        "2023/10/04 04:46:47",
        "2023年10月4日4时46分47秒",
        "2023年10月4日04时46分47秒",
        "2023年10月4日 04:46:47",
        "2023年10月04日4时46分47秒",
        "2023年10月04日04时46分47秒",
        "2023年10月04日 04:46:47",
    }
    days = pd.Series(pd.to_datetime(["2023-01-05", "2023-10-24"]))
    assert date_renderings(days) == {
        "2023-01-05", "2023/01/05", "20230105", "2023年1月5日", "2023年01月05日",
        "2023-10-24", "2023/10/24", "20231024", "2023年10月24日",
    }  # fmt: skip
