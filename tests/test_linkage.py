"""Linked copies (issue 23): a link group anonymized on its joined view, checked from outside the module.

Every k and risk figure asserted here is recomputed with plain pandas on the frames ``link_tables``
returns (outer join on the person key with null keys kept apart, records deduplicated per person,
``groupby`` counting distinct persons), never read back from the report alone.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from desensitize.linkage import LinkedTable, group_name, licence_key, link_tables, rekey
from desensitize.policy import RiskThreshold, load_policy
from samples import synthetic

PEPPER = b"test-linkage-pepper-0123456789abcdef"
GROUP = ["residents", "social_insurance"]
RISK = RiskThreshold(highest=0.1, average=0.05, record_threshold=0.1)
RESIDENT_QI: dict[str, str | None] = {
    "性别": "gender",
    "民族": "ethnicity",
    "出生日期": "birth_date",
    "户籍地": "household_region",
}
AVERAGE_ONLY = RiskThreshold(highest=None, average=0.2, record_threshold=None)
INSURANCE_QI: dict[str, str | None] = {"出生日期": "birth_date", "参保单位": None, "参保状态": None}


@functools.cache
def _tables() -> dict[str, pd.DataFrame]:
    return synthetic.generate_all(3000, seed=5)


def _group(licence: int = 1, *, risk: RiskThreshold | None = RISK, k: int = 5) -> list[LinkedTable]:
    """Residents and social insurance, keyed for ``licence`` and the group, as a licence copy is."""
    key = licence_key(PEPPER, licence, GROUP)
    people = _tables()["residents"][[*RESIDENT_QI, "公民身份号码"]].copy()
    people["公民身份号码"] = rekey(people["公民身份号码"], key)
    insured = _tables()["social_insurance"][[*INSURANCE_QI, "身份证号", "月缴费基数"]].copy()
    insured["身份证号"] = rekey(insured["身份证号"], key)
    return [
        LinkedTable("residents", people, "公民身份号码", dict(RESIDENT_QI), None, k, 0.05, risk),
        LinkedTable("social_insurance", insured, "身份证号", dict(INSURANCE_QI), "月缴费基数", k, 0.05, risk),
    ]


def _records(frames: dict[str, pd.DataFrame], tables: list[LinkedTable]) -> tuple[pd.DataFrame, list[str]]:
    """The joined view by plain pandas: null keys are persons of their own, one record per person and tuple."""
    joined: pd.DataFrame | None = None
    for table in tables:
        own = frames[table.name][[table.person_key, *table.quasi_identifiers]].copy()
        own.columns = ["person", *[f"{table.name}.{c}" for c in table.quasi_identifiers]]
        own["person"] = own["person"].astype(object)
        null = own["person"].isna().to_numpy()
        own.loc[null, "person"] = [f"null:{table.name}:{i}" for i in range(int(null.sum()))]
        own[f"{table.name}.present"] = 1
        joined = own if joined is None else joined.merge(own, on="person", how="outer")
    assert joined is not None
    columns = [c for c in joined.columns if c != "person"]
    return joined.drop_duplicates(), columns


def _persons_per_class(frames: dict[str, pd.DataFrame], tables: list[LinkedTable]) -> pd.Series:
    records, columns = _records(frames, tables)
    return records.groupby(columns, dropna=False)["person"].nunique()


def _rows_per_class(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    return frame.groupby(columns, dropna=False).size()


def test_two_tables_granted_jointly_meet_k_and_risk_on_the_joined_view() -> None:
    tables = _group()
    result = link_tables(tables)
    report = result.report
    assert report["met"] is True, report["reason"]
    assert report["k_required"] == 10  # highest prosecutor risk 0.1 -> k >= 10

    persons = _persons_per_class(result.frames, tables)
    assert persons.min() >= 10  # distinct persons per class of the joined view
    assert 1.0 / persons.min() <= RISK.highest
    assert len(persons) / persons.sum() <= RISK.average  # classes / records, per person
    assert report["k_achieved"] == persons.min()

    before = _persons_per_class({t.name: t.frame for t in tables}, tables)
    assert before.min() == 1  # the joined raw attributes single people out
    assert report["before"]["k"] == 1 and report["before"]["sample_uniques_share"] > 0.5
    assert report["after"]["sample_uniques_share"] == 0.0

    # Each table alone still meets its own k (rows, as its base copy is measured).
    for table in tables:
        assert _rows_per_class(result.frames[table.name], list(table.quasi_identifiers)).min() >= 10
    # The same attribute in two tables is two columns of the joined view.
    assert {"residents.出生日期", "social_insurance.出生日期"} <= set(report["quasi_identifiers"])


def test_generalization_is_propagated_numbers_stay_numbers_and_persons_go_whole() -> None:
    tables = _group()
    inputs = [t.frame.copy() for t in tables]
    result = link_tables(tables)
    assert all(t.frame.equals(before) for t, before in zip(tables, inputs, strict=True))  # inputs left alone
    report = result.report
    levels = {g["column"]: g for g in report["generalization"]}
    assert set(levels) == set(report["quasi_identifiers"])
    assert any(g["level"] > 0 for g in levels.values())  # the raw join needs generalization
    for table in tables:
        out = result.frames[table.name]
        assert list(out.columns) == list(table.frame.columns)
        assert len(out) == len(table.frame) - report["rows_suppressed"][table.name]
        birth = out["出生日期"]
        assert pd.api.types.is_numeric_dtype(birth.dtype) or pd.api.types.is_datetime64_any_dtype(birth.dtype)
    # A suppressed person is gone from every table: no key kept in one table was dropped from another.
    kept = {t.name: set(result.frames[t.name][t.person_key].dropna()) for t in tables}
    dropped = {t.name: set(t.frame[t.person_key].dropna()) - kept[t.name] for t in tables}
    assert not (kept["residents"] & dropped["social_insurance"])
    assert not (kept["social_insurance"] & dropped["residents"])
    assert report["persons_suppressed"] == len(dropped["residents"] | dropped["social_insurance"])
    utility = report["utility"]
    for column in utility["columns"]:
        assert column["distinct_after"] <= column["distinct_before"]
        assert 0.0 <= column["non_uniform_entropy"] <= 1.0
    for name, line in utility["tables"].items():
        assert line["rows_out"] == len(result.frames[name])
        assert line["within_budget"] is True
    assert report["l_diversity"]["social_insurance"]["column"] == "月缴费基数"
    assert report["l_diversity"]["social_insurance"]["l"] >= 1


def test_the_same_tables_under_two_licences_do_not_join() -> None:
    one, two = _group(1), _group(2)
    keys_one = {t.name: set(t.frame[t.person_key]) for t in one}
    keys_two = {t.name: set(t.frame[t.person_key]) for t in two}
    # Within a licence, the group joins fully: every insured person is a resident.
    assert keys_one["social_insurance"] <= keys_one["residents"]
    assert keys_two["social_insurance"] <= keys_two["residents"]
    # Across licences, nothing joins.
    assert not (keys_one["residents"] | keys_one["social_insurance"]) & (
        keys_two["residents"] | keys_two["social_insurance"]
    )
    # A table of licence 1 linked with one of licence 2 shares no person.
    crossed = link_tables([one[0], two[1]])
    persons = len(one[0].frame) + two[1].frame[two[1].person_key].nunique()
    assert crossed.report["persons"] == persons
    assert crossed.report["rows_joined"] == len(one[0].frame) + len(two[1].frame)
    # The group key depends on the licence and on the group, not on the order of its datasets.
    assert licence_key(PEPPER, 1, GROUP) == licence_key(PEPPER, 1, GROUP[::-1])
    assert licence_key(PEPPER, 1, GROUP) != licence_key(PEPPER, 1, ["residents"])
    assert group_name(GROUP[::-1]) == "residents+social_insurance"


def _small(keys_a: Sequence[str | None], keys_b: Sequence[str | None], k: int = 2) -> list[LinkedTable]:
    a = pd.DataFrame({"id": list(keys_a), "性别": ["男"] * len(keys_a), "区": ["甲区"] * len(keys_a)})
    b = pd.DataFrame({"id": list(keys_b), "单位": ["乙公司"] * len(keys_b)})
    return [
        LinkedTable("a", a, "id", {"性别": "gender", "区": None}, None, k, 0.5, None),
        LinkedTable("b", b, "id", {"单位": None}, None, k, 0.5, None),
    ]


def test_null_person_keys_never_join() -> None:
    keys_a: list[str | None] = ["p1", "p2", None, None, None, " "]
    keys_b: list[str | None] = ["p1", "p2", None, None, None, ""]
    tables = _small(keys_a, keys_b)
    naive = tables[0].frame.merge(tables[1].frame, on="id", how="outer")
    assert len(naive) > 12  # pandas joins NaN to NaN (and "" to ""): the trap
    report = link_tables(tables).report
    assert report["rows_joined"] == 2 + 4 + 4  # two joined persons, eight keyless rows on their own
    assert report["persons"] == 10
    assert report["rows_without_person_key"] == {"a": 4, "b": 4}


def test_a_person_with_many_rows_counts_once() -> None:
    # p0 has five identical enrolment rows: five rows, one person, in a joined class of its own,
    # while each table alone is 5-anonymous in rows (so only counting persons on the join finds p0).
    persons = [f"p{i}" for i in range(30)]
    a = pd.DataFrame({"id": persons, "区": ["甲区"] * 10 + ["乙区"] * 20})
    b = pd.DataFrame({"id": ["p0"] * 5 + persons[1:], "单位": ["丙公司"] * 5 + ["丁公司"] * 29})
    tables = [
        LinkedTable("a", a, "id", {"区": None}, None, 5, 0.2, None),
        LinkedTable("b", b, "id", {"单位": None}, None, 5, 0.2, None),
    ]
    assert _rows_per_class(b, ["单位"]).min() == 5  # counted in rows, b alone looks 5-anonymous
    assert _rows_per_class(a, ["区"]).min() == 10
    result = link_tables(tables)
    report = result.report
    assert report["before"]["k"] == 1  # counted in persons, p0 is alone
    assert report["met"] is True
    assert _persons_per_class(result.frames, tables).min() >= 5
    assert "p0" not in set(result.frames["b"]["id"]) and "p0" not in set(result.frames["a"]["id"])
    assert report["persons_suppressed"] == 1 and report["rows_suppressed"] == {"a": 1, "b": 5}


def test_a_table_alone_meets_its_own_stricter_k() -> None:
    tables = _group(risk=None, k=3)
    tables[1].k = 12  # the stricter table sets the group's k, and its own
    result = link_tables(tables)
    assert result.report["met"] is True, result.report["reason"]
    assert result.report["k_required"] == 12
    assert _persons_per_class(result.frames, tables).min() >= 12
    own = _rows_per_class(result.frames["social_insurance"], list(INSURANCE_QI))
    assert own.min() >= 12
    assert result.report["tables"]["social_insurance"]["risk"]["k"] >= 12


def test_presence_in_a_table_is_an_attribute_of_the_joined_view() -> None:
    """A table without quasi-identifiers still tells who is in it: its persons form a class of their own."""
    people = pd.DataFrame({"id": [f"p{i}" for i in range(20)], "区": ["甲区"] * 20})
    few = pd.DataFrame({"id": ["p1", "p2", "p3"], "金额": [1, 2, 3]})
    enough = pd.DataFrame({"id": [f"p{i}" for i in range(6)], "金额": range(6)})
    refused = link_tables([LinkedTable("a", people, "id", {"区": None}), LinkedTable("b", few, "id", {})])
    assert refused.report["met"] is False  # three persons known to be in b: below k = 5
    assert len(refused.frames["b"]) == 0 and len(refused.frames["a"]) == 17
    kept = link_tables([LinkedTable("a", people, "id", {"区": None}), LinkedTable("b", enough, "id", {})])
    assert kept.report["met"] is True, kept.report["reason"]
    assert kept.report["persons_suppressed"] == 0
    assert kept.frames["b"]["金额"].tolist() == list(range(6))  # numbers stay numbers


def test_hostile_groups_are_refused_with_a_clear_error() -> None:
    good = _small(["p1", "p2"], ["p1", "p2"])
    with pytest.raises(ValueError, match="two or more"):
        link_tables(good[:1])
    with pytest.raises(ValueError, match="empty"):
        link_tables([good[0], LinkedTable("b", good[1].frame.iloc[:0], "id", {"单位": None})])
    with pytest.raises(ValueError, match="every person key is null"):
        link_tables([good[0], LinkedTable("b", good[1].frame.assign(id=[None, "  "]), "id", {"单位": None})])
    with pytest.raises(ValueError, match="not linkable"):
        link_tables([good[0], LinkedTable("b", good[1].frame, None, {"单位": None})])
    with pytest.raises(ValueError, match="not linkable"):
        link_tables([good[0], LinkedTable("b", good[1].frame, "身份证号", {"单位": None})])
    with pytest.raises(ValueError, match="columns not in the table"):
        link_tables([good[0], LinkedTable("b", good[1].frame, "id", {"参保日期": "date"})])
    with pytest.raises(ValueError, match="once"):
        link_tables([good[0], good[0]])
    with pytest.raises(ValueError, match="quasi-identifier"):
        link_tables([good[0], LinkedTable("b", good[1].frame, "id", {"id": None})])
    dotted = good[1].frame.rename(columns={"单位": "x.y"})
    with pytest.raises(ValueError, match="clash"):  # "a.x" + "y" and "a" + "x.y" would both read "a.x.y"
        link_tables([LinkedTable("a.x", dotted.rename(columns={"x.y": "y"}), "id", {"y": None}),
                     LinkedTable("a", dotted, "id", {"x.y": None})])  # fmt: skip


def test_a_huge_fan_out_is_refused_before_joining() -> None:
    # One person with 2,500 rows in each table: 6.25 million joined rows.
    a = pd.DataFrame({"id": ["p"] * 2500, "x": np.arange(2500).astype(str)})
    b = pd.DataFrame({"id": ["p"] * 2500, "y": np.arange(2500).astype(str)})
    tables = [LinkedTable("a", a, "id", {"x": None}), LinkedTable("b", b, "id", {"y": None})]
    with pytest.raises(ValueError, match="6,250,000 rows"):
        link_tables(tables)
    with pytest.raises(ValueError, match="more than the bound of 100"):
        link_tables(_small([f"p{i}" for i in range(30)] * 2, [f"p{i}" for i in range(30)] * 2), max_joined_rows=100)


def test_a_group_that_cannot_reach_k_is_not_met() -> None:
    # Three persons cannot form a class of five: everyone is suppressed, the copies are refused.
    result = link_tables(_small(["p1", "p2", "p3"], ["p1", "p2", "p3"], k=5))
    assert result.report["met"] is False
    assert "suppressed" in result.report["reason"]
    assert all(len(frame) == 0 for frame in result.frames.values())


@pytest.mark.parametrize("seed", range(8))
def test_random_groups_hold_whatever_the_fan_out(seed: int) -> None:
    """Random persons, fan-out, null keys, attributes (one never generalized), k and budgets: when
    met, the pandas check agrees; a person kept in one table is kept in all."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 500))
    ids = np.array([f"k{i}" for i in range(n)], dtype=object)

    def table(column: str) -> pd.DataFrame:
        rows = int(rng.integers(20, 600))
        keys = ids[rng.integers(0, n, rows)].astype(object)
        keys[rng.random(rows) < 0.05] = None
        return pd.DataFrame(
            {
                "id": keys,
                column: rng.integers(0, int(rng.integers(2, 15)), rows).astype(str),
                "性别": rng.choice(["男", "女"], rows),
                "s": rng.integers(0, 3, rows),
            }
        )

    def k() -> int:
        return int(rng.integers(2, 7))

    def budget() -> float:
        return float(rng.choice([0.0, 0.02, 0.1, 0.3]))

    tables = [
        LinkedTable("a", table("x"), "id", {"x": None, "性别": "gender"}, None, k(), budget(), None),
        LinkedTable("b", table("y"), "id", {"y": None}, "s", k(), budget(), AVERAGE_ONLY),
        LinkedTable("c", table("z"), "id", {"z": None, "s": None}, None, k(), budget(), None),
    ]
    result = link_tables(tables)
    report = result.report
    if report["met"]:
        persons = _persons_per_class(result.frames, tables)
        assert persons.min() >= max(t.k for t in tables)
        assert len(persons) / persons.sum() <= 0.2 + 1e-9
        for t in tables:
            assert _rows_per_class(result.frames[t.name], list(t.quasi_identifiers)).min() >= t.k
    else:
        assert report["reason"]
    kept = set().union(*(set(result.frames[t.name]["id"].dropna()) for t in tables))
    for t in tables:  # a person kept anywhere is kept everywhere
        assert set(t.frame["id"].dropna()) & kept == set(result.frames[t.name]["id"].dropna())


@pytest.mark.slow
def test_the_demo_copies_linked_as_the_registry_makes_them() -> None:
    """Residents and social insurance desensitized with their shipped L4 policy, re-keyed, linked."""
    from desensitize import desensitize_table, profile_columns

    tables = synthetic.generate_all(20000, seed=20261123)
    key = licence_key(PEPPER, 7, GROUP)
    linked = []
    policy = load_policy("L4")
    for name in GROUP:
        frame = tables[name]
        types = {p.name: p.pii_type for p in profile_columns(frame)}
        copy = desensitize_table(frame, types, policy, pepper=PEPPER)
        qi = {q["column"]: q.get("ladder_type") or q["type"] for q in copy.report["k_anonymity"]["quasi_identifiers"]}
        if name == "social_insurance":  # issue 23: employer and enrolment date are quasi-identifiers by default
            assert {"参保单位", "参保日期"} <= set(qi)
        person = next(c["name"] for c in copy.report["columns"] if c["type"] == "cn_resident_id")
        out = copy.frame.copy()
        out[person] = rekey(out[person], key)
        linked.append(LinkedTable(name, out, person, qi, None, policy.k, policy.max_suppression, policy.risk))
    result = link_tables(linked)
    # Each copy is k-anonymous on its own; joined as they are, they are not (the union's risk, issue 23).
    assert result.report["before"]["k"] < 10 and result.report["before"]["sample_uniques_share"] > 0.0
    assert result.report["met"] is True, result.report["reason"]
    persons = _persons_per_class(result.frames, linked)
    assert persons.min() >= 10 and len(persons) / persons.sum() <= 0.05
