"""Quasi-identifiers by default in a personal table (issue 23, first bullet).

Rules exercised: in a table of personal information (个人信息保护法 第四条, L3; 第二十八条, L4) dates,
employer and organisation names, places and high-cardinality attributes are quasi-identifiers
(GB/T 37964-2019 附录B K-匿名模型: every attribute that, combined with others, singles a person
out) unless the custodian rules otherwise with a reason that is ledgered (双鸭山市公共数据管理暂行
办法 第二十条: every step recorded); dates are first coarsened to the precision the policy allows;
each ladder rebuilt on its own output continues from there (a licence copy is derived from the base
copy); the risk is measured over quasi-identifier types at L1/L2 too (report only).
"""

from __future__ import annotations

import json
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
from desensitize.industries import OTHER, industry_of, size_class, split_label
from desensitize.kanonymity import group_sizes
from desensitize.ladders import build_ladder
from desensitize.pipeline import REPORT_ONLY_NOTE, desensitize_table
from desensitize.policy import Policy, PolicyError, load_policy
from desensitize.quasi import (
    HIGH_CARDINALITY,
    NOT_QUASI_REASON_CHARS,
    RulingError,
    check_not_quasi,
    coarsen_date,
    is_date_column,
)
from registry import Registry
from samples import synthetic
from tests.test_pipeline import INSURANCE_TYPES

PEPPER = b"default-quasi-pepper-0123456789abcdef"


def insurance(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """The generated social-insurance enrolment of ``n`` residents (about 70 % of them are insured)."""
    return synthetic.generate_all(n, seed=seed)["social_insurance"].reset_index(drop=True)


def _qis(report: dict) -> dict[str, dict]:
    return {q["column"]: q for q in report["k_anonymity"]["quasi_identifiers"]}


# -- what is a quasi-identifier ------------------------------------------------------------------


@pytest.mark.parametrize("level", ["L3", "L4"])
def test_a_date_and_an_employer_are_quasi_identifiers_generalized_until_k_holds(level: str) -> None:
    """Issue 23's measure: 参保单位 verbatim and 参保日期 to the day left most rows unique. Now both are
    quasi-identifiers, the date first coarsened to the policy's precision, and k holds over them."""
    raw = insurance()
    unique_before = float((group_sizes(raw, ["参保单位", "参保日期"]) == 1).mean())
    assert unique_before > 0.5  # the finding, on the generated table
    policy = load_policy(level)
    result = desensitize_table(raw, INSURANCE_TYPES, policy, pepper=PEPPER)
    qis = _qis(result.report)
    assert qis["参保单位"]["basis"] == "employer" and qis["参保单位"]["ladder_type"] == "employer"
    assert qis["参保单位"]["type"] == "company_name"
    assert qis["参保日期"]["basis"] == "date" and qis["参保日期"]["ladder_type"] == "date"
    assert qis["参保日期"]["type"] is None
    assert qis["出生日期"]["basis"] == "policy" and qis["出生日期"]["ladder_type"] == "birth_date"
    assert "月缴费基数" not in qis  # income: a sensitive attribute of the policy, l-diversity's target
    # Three values, not high-cardinality, but they split the k classes (red team 23 F2): one by the data.
    assert "参保状态" not in qis or qis["参保状态"]["basis"] == "splits classes"
    k = result.report["k_anonymity"]
    # At the policy's precision: coarsened here, or already by the near-unique check (a month, issue 16).
    near = next(c for c in result.report["columns"] if c["name"] == "参保日期").get("near_unique") or {}
    assert k["dates_coarsened"].get("参保日期", near.get("to")) == policy.dates
    assert k["k_achieved"] >= k["k_required"] >= policy.k
    copy = result.frame
    assert int(group_sizes(copy, list(qis)).min()) >= k["k_required"]
    assert float((group_sizes(copy, ["参保单位", "参保日期"]) == 1).mean()) == 0.0
    assert set(copy["参保单位"]).isdisjoint(set(raw["参保单位"]))  # no employer name survives
    if level == "L4":  # the year at most, an integer (numbers stay numbers, issue 16)
        assert copy["参保日期"].dtype == "Int64"
    else:  # a month at most, written as its first day, or a year (band) once generalized further
        column = copy["参保日期"]
        assert column.dtype == "Int64" or bool((column.dropna().dt.day == 1).all())
    risk = result.report["risk"]
    assert set(risk["quasi_identifiers"]) == set(qis) and risk["met"] is True


def test_an_untyped_high_cardinality_column_is_a_quasi_identifier() -> None:
    """A number the profiler recognised nothing in, with many distinct values, climbs numeric bands (written
    as numbers); an untyped text one goes to '*'; one with fewer than 20 values is not a quasi-identifier."""
    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame(
        {
            "性别": rng.choice(["男", "女"], n),
            "身高": rng.normal(168, 8, n).round(1),
            "车型": [f"型号{i % 60}" for i in range(n)],
            "等级": [f"{i % (HIGH_CARDINALITY - 1)}级" for i in range(n)],
        }
    )
    types = {"性别": "gender", "身高": None, "车型": None, "等级": None}
    result = desensitize_table(frame, types, load_policy("L3"), pepper=PEPPER)
    qis = _qis(result.report)
    assert qis["身高"]["basis"] == "high_cardinality" and qis["身高"]["ladder_type"] == "number"
    assert qis["车型"]["basis"] == "high_cardinality" and qis["车型"]["ladder_type"] == "text"
    # Fewer than 20 values, not high-cardinality, but it splits the k classes (red team 23 F2): measured on the data.
    assert qis["等级"]["basis"] == "splits classes" and qis["等级"]["ladder_type"] == "text"
    assert qis["身高"]["level"] >= 1 and pd.api.types.is_float_dtype(result.frame["身高"].dtype)
    assert result.report["k_anonymity"]["k_achieved"] >= 5
    # L1/L2 copies are not personal tables: no default quasi-identifier.
    public = desensitize_table(frame, types, load_policy("L2"), pepper=PEPPER)
    assert public.report["k_anonymity"]["quasi_identifiers"] == []


def test_places_and_employer_named_columns_are_quasi_identifiers() -> None:
    n = 300
    frame = pd.DataFrame(
        {
            "性别": ["男", "女"] * (n // 2),
            "工作单位": [f"双鸭山市{i % 7}号建筑工程有限公司" for i in range(n)],
            "住址": [f"黑龙江省双鸭山市尖山区{i}号" for i in range(n)],
        }
    )
    result = desensitize_table(
        frame, {"性别": "gender", "工作单位": None, "住址": "address"}, _no_address_qi(), pepper=PEPPER
    )
    qis = _qis(result.report)
    assert qis["工作单位"]["basis"] == "employer"  # untyped, named like an employer
    assert qis["住址"]["basis"] == "place" and qis["住址"]["ladder_type"] == "address"


def _no_address_qi() -> Policy:
    """The L3 policy without address among its quasi-identifier types: the default still makes it one."""
    data = json.loads(load_policy("L3").model_dump_json())
    data["quasi_identifiers"] = [t for t in data["quasi_identifiers"] if t not in {"address", "household_region"}]
    return Policy.model_validate(data)


def test_keys_free_text_and_sensitive_columns_are_not_quasi_identifiers() -> None:
    raw = insurance(1500)
    result = desensitize_table(raw, {**INSURANCE_TYPES, "参保状态": "health"}, load_policy("L4"), pepper=PEPPER)
    qis = _qis(result.report)
    assert "身份证号" not in qis  # a pseudonym
    # A name reduced to its surname by its rule still splits the classes (red team 23 F1): masked whole if need be.
    assert qis["姓名"]["basis"] == "splits classes" and qis["姓名"]["ladder_type"] == "masked_name"
    assert "参保状态" not in qis and "月缴费基数" not in qis  # sensitive types of the policy
    assert result.report["k_anonymity"]["l_diversity"]["column"] in {"参保状态", "月缴费基数"}


def test_the_risk_is_measured_over_quasi_identifier_types_at_l1_and_l2() -> None:
    """Issue 23 item 3: L1/L2 policies list no quasi-identifier, yet the report gives the risk over the personal
    quasi-identifier types present (report only: no threshold applies, the copy is not refused)."""
    residents = synthetic.generate_all(600, seed=2)["residents"]
    types = {"性别": "gender", "民族": "ethnicity", "出生日期": "birth_date", "户籍地": "household_region"}
    result = desensitize_table(residents[list(types)], types, load_policy("L2"), pepper=PEPPER)
    risk = result.report["risk"]
    assert set(risk["quasi_identifiers"]) == set(types)
    assert risk["after"]["prosecutor"]["highest"] == 1.0  # birth dates to the day single people out
    assert risk["met"] is True and risk["reason"] == REPORT_ONLY_NOTE and risk["threshold"] is None
    assert result.report["k_anonymity"]["quasi_identifiers"] == []  # nothing generalized at L2


# -- rulings -------------------------------------------------------------------------------------


def test_a_custodian_ruling_removes_a_default_quasi_identifier() -> None:
    raw = insurance()
    reason = "参保日期 is published for every insured person (public register)"
    result = desensitize_table(raw, INSURANCE_TYPES, load_policy("L3"), pepper=PEPPER, not_quasi={"参保日期": reason})
    assert "参保日期" not in _qis(result.report) and "参保单位" in _qis(result.report)
    assert result.report["quasi_identifier_rulings"] == [{"column": "参保日期", "reason": reason, "was": "date"}]
    assert result.frame["参保日期"].tolist()[:5] == raw["参保日期"].tolist()[:5] or result.report["rows_suppressed"]


def test_bad_rulings_are_refused() -> None:
    raw = insurance(600)
    policy = load_policy("L4")
    with pytest.raises(KeyError, match="营业执照"):
        desensitize_table(raw, INSURANCE_TYPES, policy, pepper=PEPPER, not_quasi={"营业执照": "why"})
    for blank in ("", "   ", "\u200b"):
        with pytest.raises(ValueError, match="needs a reason"):
            desensitize_table(raw, INSURANCE_TYPES, policy, pepper=PEPPER, not_quasi={"参保日期": blank})
    with pytest.raises(ValueError, match="at most"):
        check_not_quasi({"参保日期": "x" * (NOT_QUASI_REASON_CHARS + 1)}, raw.columns)
    # The policy's own types are the level's policy: no ruling removes them.
    with pytest.raises(RulingError, match="keyong policy propose"):
        desensitize_table(raw, INSURANCE_TYPES, policy, pepper=PEPPER, not_quasi={"出生日期": "we need the day"})


# -- dates, employers, ladders -------------------------------------------------------------------


def test_dates_are_coarsened_to_the_policy_precision() -> None:
    days = pd.Series(pd.to_datetime(["2021-03-17", "2020-12-01 08:30", None], format="mixed"))
    assert coarsen_date(days, "month").tolist()[:2] == [pd.Timestamp("2021-03-01"), pd.Timestamp("2020-12-01")]
    assert coarsen_date(days, "year").tolist()[:2] == [2021, 2020] and coarsen_date(days, "year").dtype == "Int64"
    text = pd.Series(["2021-03-17", "2021年3月5日", "20210411", "2021/4/2", None])
    assert is_date_column(text, None)
    assert coarsen_date(text, "month").dt.month.tolist()[:4] == [3, 3, 4, 4]
    assert not is_date_column(pd.Series(["甲", "乙", "2021-01-01"]), None)
    assert not is_date_column(pd.Series([2021, 2022]), None)  # a year is a number, as coarse as any policy allows
    with pytest.raises(ValueError, match="precision"):
        coarsen_date(days, "week")


def test_policy_dates_field_is_validated_and_defaulted() -> None:
    assert load_policy("L3").dates == "month" and load_policy("L4").dates == "year"
    assert load_policy("L1").dates is None
    data = json.loads(load_policy("L3").model_dump_json())
    with pytest.raises((PolicyError, ValueError)):
        Policy.model_validate({**data, "dates": "fortnight"})
    data.pop("dates")
    assert Policy.model_validate(data).dates == "month"  # fail closed: the level's default, not the day


def test_industries_and_size_classes() -> None:
    assert industry_of("双鸭山市煜荣机械制造有限公司") == "制造"
    assert industry_of("黑龙江昊千医药连锁有限公司") == "批发零售"
    assert industry_of("双鸭山市汇汇信息技术股份有限公司") == "信息技术"
    assert industry_of("集贤县林源蔬菜种植农民专业合作社") == "农林牧渔"
    assert industry_of("双鸭山市第一中学") == "教育" and industry_of("甲乙丙") == OTHER
    assert [size_class(n) for n in (1, 9, 10, 49, 50, 249, 250)] == ["1-9", "1-9", "10-49", "10-49", "50-249",
                                                                     "50-249", "250+"]  # fmt: skip
    with pytest.raises(ValueError):
        size_class(0)
    assert split_label("制造（10-49）") == ("制造", "10-49") and split_label("制造") == ("制造", None)
    assert split_label("某某（集团）有限公司") == (None, None)


def test_employer_ladder_and_its_rebuild_on_its_own_output() -> None:
    shops = ["双鸭山辰荣商贸有限公司"] * 10 + ["饶河县利睿商贸有限公司", "宝清县广福米业门市部"]
    names = pd.Series(["双鸭山市煜荣机械制造有限公司"] * 12 + shops)
    ladder = build_ladder(names, "employer", "单位")
    assert ladder.names == ["value", "industry + size class", "industry", "*"]
    level1 = ladder.values(1, names)
    assert level1.iloc[0] == "制造（10-49）" and level1.iloc[12] == "批发零售（10-49）"
    assert level1.iloc[-1] == level1.iloc[-2] == "批发零售（1-9）"
    again = build_ladder(level1, "employer", "单位")  # a licence copy: from the base copy's labels
    assert again.names == ["value", "industry", "*"]
    assert again.values(1, level1).tolist() == ladder.values(2, names).tolist()
    assert build_ladder(ladder.values(2, names), "employer").names == ["value", "*"]


def test_date_and_number_ladders_continue_from_their_own_output() -> None:
    months = pd.Series(pd.to_datetime([f"{1990 + i % 30}-{1 + i % 12:02d}-01" for i in range(200)]))
    ladder = build_ladder(months, "date", "d")
    assert ladder.names[:2] == ["value", "year"] and ladder.names[-1] == "*"
    years = ladder.values(1, months)
    assert years.dtype == "Int64" and years.iloc[0] == 1990
    again = build_ladder(years, "date", "d")
    assert again.names[0] == "value" and "year" not in again.names and again.names[1] == "5-year band"
    assert again.values(1, years).tolist() == ladder.values(2, months).tolist()
    numbers = pd.Series(np.linspace(100.0, 900.0, 300))
    bands = build_ladder(numbers, "number", "n")
    assert len(bands.names) >= 3 and bands.names[-1] == "*"
    first = bands.values(1, numbers)
    assert first.dtype == np.float64 and first.nunique() < numbers.nunique()
    rebuilt = build_ladder(first, "number", "n")
    assert rebuilt.values(rebuilt.top, first).isna().all()
    assert all(rebuilt.cards[i + 1] <= rebuilt.cards[i] for i in range(rebuilt.top))


# -- the registry, the ledger, the CLI and the API -----------------------------------------------

CUSTODIAN = Actor("demo-custodian", "custodian")
PROVIDER_CODE = "11230500MB1234568" + uscc_check_char("11230500MB1234568")


@dataclass
class Env:
    instance: Instance
    registry: Registry


@pytest.fixture
def env(initialised: tuple[Instance, dict[str, str]], tmp_path: Path) -> Env:
    instance, _ = initialised
    path = tmp_path / "insured.csv"
    synthetic.write_csv(insurance(), path)
    instance.registry.ingestor.ingest(
        path, name="insured", provider="双鸭山市人力资源和社会保障局", provider_code=PROVIDER_CODE, by=CUSTODIAN
    )
    return Env(instance, instance.registry)


def test_the_registry_ledgers_a_ruling_with_its_reason(env: Env) -> None:
    entry = env.registry.catalog.get("insured")
    assert entry.level.value in {"L3", "L4"}
    first = env.registry.copies.make("insured", by=CUSTODIAN)
    assert {"参保单位", "参保日期"} <= set(_qis(first.report))
    before = env.instance.ledger.size()
    reason = "the analysis needs the employer; the licence forbids linking it to the register"
    second = env.registry.copies.make("insured", by=CUSTODIAN, not_quasi={"参保单位": reason})
    assert "参保单位" not in _qis(second.report)
    assert second.report["quasi_identifier_rulings"] == [{"column": "参保单位", "reason": reason, "was": "employer"}]
    stored = env.registry.catalog.get("insured").versions[-1].report or {}
    assert stored["quasi_identifier_rulings"][0]["reason"] == reason
    logged = [e.payload for e in env.instance.ledger.entries(after=before) if e.action == "dataset.desensitized"]
    assert len(logged) == 1
    assert logged[0]["not_quasi_identifiers"] == [{"column": "参保单位", "reason": reason, "was": "employer"}]
    assert {q["column"]: q["basis"] for q in logged[0]["quasi_identifiers"]}["参保日期"] == "date"


def test_the_registry_refuses_bad_rulings_and_records_nothing(env: Env) -> None:
    before = env.instance.ledger.size()
    with pytest.raises(RegistryError, match="needs a reason"):
        env.registry.copies.make("insured", by=CUSTODIAN, not_quasi={"参保单位": " "})
    with pytest.raises(RegistryError, match="营业执照"):
        env.registry.copies.make("insured", by=CUSTODIAN, not_quasi={"营业执照": "why"})
    with pytest.raises(RegistryError, match="at most"):
        env.registry.copies.make("insured", by=CUSTODIAN, not_quasi={"参保单位": "x" * (NOT_QUASI_REASON_CHARS + 1)})
    with pytest.raises(RegistryError, match="policy propose"):
        env.registry.copies.make("insured", by=CUSTODIAN, not_quasi={"出生日期": "why"})
    with pytest.raises(RegistryError, match="no column '营业执照' to keep"):  # _checked_keep through check_keep
        env.registry.copies.make("insured", by=CUSTODIAN, keep_columns={"营业执照": "why"})
    assert env.instance.ledger.size() == before
    assert [v for v in env.registry.catalog.get("insured").versions if v.kind == "desensitized"] == []


def test_cli_not_quasi_needs_a_reason_and_records_it(env: Env) -> None:
    base = ["dataset", "desensitize", "insured", "--home", str(env.instance.home), "--json"]
    missing = CliRunner().invoke(cli_app, [*base, "--not-quasi", "参保单位"])
    assert missing.exit_code == 1 and "--reason" in missing.output
    blank = CliRunner().invoke(cli_app, [*base, "--not-quasi", "参保单位", "--reason", " "])
    assert blank.exit_code == 1
    unknown = CliRunner().invoke(cli_app, [*base, "--not-quasi", "营业执照", "--reason", "why"])
    assert unknown.exit_code == 1 and "营业执照" in unknown.output
    mixed = ["--keep-column", "身份证号", "--not-quasi", "参保单位", "--reason", "a", "--reason", "b"]
    ambiguous = CliRunner().invoke(cli_app, [*base, *mixed])
    assert ambiguous.exit_code == 1 and "told apart" in ambiguous.output
    ruled = ["--not-quasi", "参保单位", "--not-quasi", "参保日期", "--reason", "employer kept", "--reason", "public"]
    ok = CliRunner().invoke(cli_app, [*base, *ruled])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert {r["column"]: r["reason"] for r in data["report"]["quasi_identifier_rulings"]} == {
        "参保单位": "employer kept",
        "参保日期": "public",
    }
    assert {q["column"] for q in data["k_anonymity"]["quasi_identifiers"]}.isdisjoint({"参保单位", "参保日期"})


def test_the_custodian_rules_over_http(env: Env, initialised: tuple[Instance, dict[str, str]]) -> None:
    from fastapi.testclient import TestClient

    from app import create_app
    from tests.conftest import bearer_headers

    client = TestClient(create_app(instance=env.instance))
    headers = bearer_headers(client, initialised[1])
    url = "/datasets/insured/desensitize"
    refused = client.post(url, json={"not_quasi_identifiers": {"参保单位": ""}}, headers=headers["custodian"])
    assert refused.status_code in {400, 409, 422}, refused.text
    assert "reason" in refused.text
    operator = client.post(url, json={"not_quasi_identifiers": {"参保单位": "x"}}, headers=headers["operator"])
    assert operator.status_code == 403
    made = client.post(url, json={"not_quasi_identifiers": {"参保单位": "needed"}}, headers=headers["custodian"])
    assert made.status_code == 201, made.text
    assert made.json()["report"]["quasi_identifier_rulings"][0]["reason"] == "needed"


def test_cli_human_output_says_why_each_column_is_a_quasi_identifier(env: Env) -> None:
    args = ["dataset", "desensitize", "insured", "--home", str(env.instance.home)]
    out = CliRunner().invoke(cli_app, [*args, "--not-quasi", "参保日期", "--reason", "published by law"])
    assert out.exit_code == 0, out.output
    assert "Quasi-identifiers" in out.output and "employer" in out.output
    assert "ruled not a quasi-identifier: 参保日期 (published by law)" in out.output


def test_the_copy_facts_say_a_near_unique_quasi_identifier_is_generalized_not_pseudonymized() -> None:
    from app.copy_facts import describe_near_unique

    said = describe_near_unique({"share": 0.57, "threshold": 0.5, "group": 2, "action": "quasi_identifier"})
    assert said is not None and "generalized by k-anonymity" in said and "pseudonymized" not in said
