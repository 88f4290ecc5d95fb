"""Red team 23: linked copies (issue 23), attacked from outside.

Each ``BREAK`` test fails on the code as merged (commit 5c3cfe5) and passes once the finding is fixed;
each ``HOLDS`` test pins a defence that held. FINDINGS23.md says what each break is, how severe, and
a suggested fix. Written without reading the issue's own tests (tests/test_linkage*.py,
tests/test_licence_copies.py, tests/test_default_quasi.py, tests/linkage_support.py).

The copies attacked are made as the registry makes them: ``desensitize_table`` for the base copy
(``registry.copies``), then ``registry.linkage.LicenceCopies._make``'s steps: each pseudonym column of
the base report (``registry.linkage_rules.pseudonym_columns``) re-keyed with
``licence_key(pepper, licence, group)`` and, for a joint group, ``link_tables`` over the base report's
quasi-identifiers (``registry.linkage_rules.quasi_identifiers``). Rows keep their order at every step
(as ``_make`` reads, re-keys and writes the frame).

Amended by fixreg23 (the fix of F4 and F5; CONTRACT23_fixreg.md): the registry now writes every copy in a
fresh random row order (``registry.row_order.shuffled``, in ``registry.copies`` and
``LicenceCopies._write``) and re-keys the kept keys its base copy marks (``kept_keys`` in the report,
decided by ``registry.linkage_rules.kept_key_decision`` when ``registry.copies`` records it; re-keyed by
``licence_keyed_columns``). The fixtures below make the copies as the registry now does; the attacks and
their thresholds are unchanged.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from desensitize.linkage import LinkedTable, group_name, licence_key, link_tables, rekey
from desensitize.pipeline import desensitize_table
from desensitize.policy import load_policy
from desensitize.quasi import check_not_quasi
from registry.linkage_rules import kept_key_decision, licence_keyed_columns, pseudonym_columns, quasi_identifiers
from registry.row_order import shuffled
from samples import synthetic
from tests.test_pipeline import INSURANCE_TYPES, RESIDENT_TYPES

pytestmark = pytest.mark.attack

PEPPER = b"redteam23-pepper-0123456789abcdef"
ROWS = 2000


# --- fixtures: base copies and licence copies, as the registry makes them ------------------------------


@functools.cache
def _raw() -> dict[str, pd.DataFrame]:
    return synthetic.generate_all(ROWS, seed=7)


def _written(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy as the registry writes it: its rows in a fresh random order (``registry.row_order``)."""
    return shuffled(pa.Table.from_pandas(frame, preserve_index=False)).to_pandas()


@functools.cache
def _base(name: str) -> tuple[pd.DataFrame, dict]:
    """(frame, report) of the L4 base copy of a demo table, as ``registry.copies`` writes it."""
    types = {"residents": RESIDENT_TYPES, "social_insurance": INSURANCE_TYPES}[name]
    result = desensitize_table(_raw()[name], types, load_policy("L4"), pepper=PEPPER)
    return _written(result.frame), result.report


def _licence_copy(name: str, licence: int, group: list[str]) -> pd.DataFrame:
    """A dataset's licence copy, re-keyed for ``licence`` and its link group (``LicenceCopies._make``)."""
    frame, report = _base(name)
    out = frame.copy()
    key = licence_key(PEPPER, licence, group)
    for column in pseudonym_columns(report):
        out[column] = rekey(out[column], key)
    return _written(out)


@functools.cache
def _joint(licence: int = 1) -> tuple[dict[str, pd.DataFrame], dict]:
    """The joint copies of residents + social_insurance under ``licence`` (``LicenceCopies._link``)."""
    policy = load_policy("L4")
    group = ["residents", "social_insurance"]
    tables = []
    for name, key in (("residents", "公民身份号码"), ("social_insurance", "身份证号")):
        tables.append(
            LinkedTable(
                name=name,
                frame=_licence_copy(name, licence, group),
                person_key=key,
                quasi_identifiers=quasi_identifiers(_base(name)[1]),
                k=policy.k,
                max_suppression=policy.max_suppression,
                risk=policy.risk,
            )
        )
    result = link_tables(tables)
    return result.frames, result.report


def _k(frame: pd.DataFrame, columns: list[str]) -> int:
    """Smallest equivalence class over ``columns`` (nulls are a value, as a reader sees them)."""
    return int(frame.groupby(columns, dropna=False)[columns[0]].transform("size").min())


def _unique_share(frame: pd.DataFrame, columns: list[str]) -> float:
    return float((frame.groupby(columns, dropna=False)[columns[0]].transform("size") == 1).mean())


def _required_k() -> int:
    from desensitize.risk import required_k

    policy = load_policy("L4")
    return required_k(policy.k, policy.risk.highest if policy.risk else None)


# --- F1: the surname a masked name keeps is a quasi-identifier nobody counts ---------------------------


def test_break_f1_surname_kept_by_the_name_mask_splits_the_k_classes_of_a_base_copy() -> None:
    """BREAK (high): L4 masks 姓名 to its surname (段**) and keeps it, but the surname is not a
    quasi-identifier (action mask_name, not keep, so not even "high cardinality"). A neighbour knows a
    person's surname: over the reported quasi-identifiers plus 姓名, 22 % of the residents copy's rows
    are unique (k = 1) while the report says k >= 11."""
    frame, report = _base("residents")
    qi = list(quasi_identifiers(report))
    assert _k(frame, qi) >= _required_k()  # what the report claims
    assert "姓名" in frame.columns and frame["姓名"].str.endswith("**").all()
    assert _k(frame, [*qi, "姓名"]) >= _required_k(), (
        f"{_unique_share(frame, [*qi, '姓名']):.0%} of rows unique once the kept surname is counted"
    )


def test_break_f1_surname_splits_the_joined_view_of_linked_copies() -> None:
    """BREAK (high): the joint copies meet k on the joined view's quasi-identifiers, but both tables keep
    the surname; on the joined view plus 姓名, a third of the persons are unique."""
    frames, report = _joint()
    assert report["met"] is True
    residents, insurance = frames["residents"], frames["social_insurance"]
    joined = residents.merge(insurance, left_on="公民身份号码", right_on="身份证号", how="left", suffixes=("", "_si"))
    qi = [c for c in quasi_identifiers(_base("residents")[1])]
    qi += [f"{c}_si" if c in residents.columns else c for c in quasi_identifiers(_base("social_insurance")[1])]
    assert _k(joined, qi) >= report["k_required"]  # what the joint report claims
    assert _k(joined, [*qi, "姓名"]) >= report["k_required"], (
        f"{_unique_share(joined, [*qi, '姓名']):.0%} of joined rows unique with the surname"
    )


# --- F2: attributes under 20 values are never quasi-identifiers, alone or combined ---------------------


def _with_categories(spec: dict[str, list[str] | np.ndarray]) -> tuple[pd.DataFrame, dict]:
    raw = _raw()["residents"][["公民身份号码", "性别", "出生日期"]].copy()
    for column, values in spec.items():
        raw[column] = values
    types = {"公民身份号码": "cn_resident_id", "性别": "gender", "出生日期": "birth_date"}
    result = desensitize_table(raw, types, load_policy("L4"), pepper=PEPPER)
    return result.frame, result.report


def test_break_f2_three_attributes_of_19_values_make_most_rows_unique() -> None:
    """BREAK (high): occupation, education and community (19 values each, what a neighbour knows) are
    each under ``HIGH_CARDINALITY`` = 20, so none is a quasi-identifier; the copy keeps them verbatim
    and claims k-anonymity, yet 73 % of its rows are unique on the three alone (99 % with the reported
    quasi-identifiers)."""
    rng = np.random.default_rng(3)
    spec = {c: rng.choice([f"{c}{i}" for i in range(19)], ROWS) for c in ("职业", "学历", "社区")}
    frame, report = _with_categories(spec)
    qi = list(quasi_identifiers(report))
    assert _k(frame, qi) >= _required_k()
    columns = [*qi, "职业", "学历", "社区"]
    assert _k(frame, columns) >= _required_k(), f"{_unique_share(frame, columns):.0%} of rows unique"


def test_break_f2_a_rare_value_of_a_low_cardinality_column_is_unique() -> None:
    """BREAK (high): an employer column named unlike an employer (工作去处), 19 values, one of them held
    by a single person (a small firm): not a quasi-identifier (too few values, name not recognised),
    kept verbatim; that person is unique on the column alone."""
    values = np.array(["某某煤矿"] * (ROWS - 1) + ["宝清县小河村卫生室"], dtype=object)
    values[: 17 * 100] = np.repeat([f"单位甲{i}" for i in range(17)], 100)
    frame, report = _with_categories({"工作去处": values})
    # fixqi23: the raw column has 19 values; the copy's cannot keep all 19 and meet k (one is a single
    # person's, and pooling it alone is the same partition), so the fix is seen in the report instead.
    assert "工作去处" in frame.columns and "工作去处" in quasi_identifiers(report)
    assert _k(frame, [*quasi_identifiers(report), "工作去处"]) >= _required_k()


# --- F3: a date split into year / month / day columns --------------------------------------------------


def test_break_f3_a_birth_month_column_survives_an_l4_copy_at_month_precision() -> None:
    """BREAK (medium): L4 allows dates to the year only (Policy.dates), but a birth date written as three
    integer columns is not a date: 出生月 (12 values) is neither a date nor high-cardinality and is kept
    verbatim, so the copy holds every person's birth month (and k over the QIs plus 出生月 drops)."""
    born = pd.to_datetime(_raw()["residents"]["出生日期"])
    frame, report = _with_categories({"出生年": born.dt.year, "出生月": born.dt.month, "出生日": born.dt.day})
    qi = quasi_identifiers(report)
    assert "出生月" in qi or frame["出生月"].nunique(dropna=True) <= 1, (
        f"birth month kept verbatim ({frame['出生月'].nunique()} values); quasi-identifiers: {sorted(qi)}"
    )


# --- F4: row order joins datasets a licence did not grant jointly ---------------------------------------


def _align_by_order(left: pd.Series, right: pd.Series, window: int = 8) -> dict[int, int]:
    """Greedy alignment of two tables in the same source order on one shared column (the surname)."""
    a, b = left.tolist(), right.tolist()
    links: dict[int, int] = {}
    at = 0
    for i, value in enumerate(b):
        j = at
        while j < len(a) and j - at < window and a[j] != value:
            j += 1
        if j < len(a) and j - at < window:
            links[i] = j
            at = j + 1
    return links


def _base_keys(keys: pd.Series, name: str, column: str, licence: int) -> np.ndarray:
    """Each licence key's base pseudonym, row by row (the truth of who is who; fixreg23: the licence copy's
    rows are no longer in the base copy's order, so the truth is looked up, not zipped)."""
    base = _base(name)[0][column]
    back = dict(zip(rekey(base, licence_key(PEPPER, licence, [name])), base, strict=True))
    return np.array([back.get(k) for k in keys], dtype=object)


def test_break_f4_row_order_links_two_datasets_not_granted_jointly() -> None:
    """BREAK (high): one licence grants residents and social_insurance separately: their pseudonyms are
    keyed per dataset and never join (held below), and a job may mount both (one licence covers them).
    But both copies keep their source's row order (the pipeline and the licence copy never shuffle), and
    the sources list people in the same order (as any two exports sorted by ID number do): aligning the
    two copies on the kept surname in row order links 95 % of the insured to their resident row."""
    residents = _licence_copy("residents", 1, ["residents"])
    insurance = _licence_copy("social_insurance", 1, ["social_insurance"])
    assert not set(residents["公民身份号码"]) & set(insurance["身份证号"])
    truth_r = _base_keys(residents["公民身份号码"], "residents", "公民身份号码", 1)
    truth_s = _base_keys(insurance["身份证号"], "social_insurance", "身份证号", 1)
    links = _align_by_order(residents["姓名"], insurance["姓名"])
    right = sum(truth_s[i] == truth_r[j] for i, j in links.items())
    assert right / len(insurance) < 0.05, f"{right} of {len(insurance)} insured linked by row order"


def test_break_f4_row_order_maps_one_licences_keys_onto_anothers() -> None:
    """BREAK (low): two licences' copies of one dataset are the same rows in the same order; only the keys
    differ, so row i under licence 1 is row i under licence 2 and the key mapping is a zip. Anyone holding
    both copies' key lists (two operators comparing notes, one operator with two licences) joins them."""
    one = _licence_copy("residents", 1, ["residents"])
    two = _licence_copy("residents", 2, ["residents"])
    assert not set(one["公民身份号码"]) & set(two["公民身份号码"])  # the keys do not join (held)
    rest = [c for c in one.columns if c != "公民身份号码"]
    same_rows = bool(one[rest].astype(str).equals(two[rest].astype(str)))
    assert not same_rows, "row i of licence 1's copy is row i of licence 2's: order joins the keys"


# --- F5: a key the custodian kept is the same under every licence ---------------------------------------


def test_break_f5_a_kept_key_joins_two_licences_copies() -> None:
    """BREAK (medium): a near-unique column the custodian keeps with a reason (社保卡号, "business
    reconciliation") is verbatim in every licence copy: two licences (two operators) join on it 1:1 though
    their pseudonyms never join. The licence page says nothing of it."""
    raw = _raw()["social_insurance"].copy()
    raw["社保卡号"] = [f"{i * 7919 % 1000003:09d}" for i in range(len(raw))]
    result = desensitize_table(
        raw, INSURANCE_TYPES, load_policy("L4"), pepper=PEPPER, keep_columns={"社保卡号": "业务核对需要原卡号"}
    )
    report = {**result.report, "kept_keys": kept_key_decision(result.report, INSURANCE_TYPES, result.frame)}
    copies = []
    for licence in (1, 2):  # as LicenceCopies._make re-keys (fixreg23: pseudonyms and kept text keys)
        out = result.frame.copy()
        for column in licence_keyed_columns(report):
            out[column] = rekey(out[column], licence_key(PEPPER, licence, ["social_insurance"]))
        copies.append(out)
    joined = copies[0].merge(copies[1], on="社保卡号")
    assert (joined["身份证号_x"] != joined["身份证号_y"]).all()
    assert len(joined) < 0.05 * len(copies[0]), f"{len(joined)} of {len(copies[0])} rows join across licences"


# --- F6: reasons that render as nothing ----------------------------------------------------------------


@pytest.mark.parametrize("blank", ["\u3164", "\u2800", "\u115f", "\u034f", "\u3164\u2800 \u115f"])
def test_break_f6_a_not_quasi_ruling_with_a_blank_looking_reason_is_refused(blank: str) -> None:
    """BREAK (low): Hangul fillers, the braille blank and the combining grapheme joiner are letters or
    marks to ``visible_reason`` but print as nothing: a date or an employer is ruled out of the
    quasi-identifiers with a reason no reader of the ledger can see."""
    with pytest.raises(ValueError):
        check_not_quasi({"参保日期": blank}, ["参保日期"])


@pytest.mark.parametrize("blank", ["", "   ", "\u200b", "\u3000", "\ufeff", "\u2060\u2061", "\u00ad"])
def test_holds_f6_zero_width_and_space_reasons_are_refused(blank: str) -> None:
    """HOLDS: empty, spaces, zero-width and format characters are refused."""
    with pytest.raises(ValueError):
        check_not_quasi({"参保日期": blank}, ["参保日期"])


# --- F7: per-licence pseudonyms leave on stdout when shortened -----------------------------------------


def _judge_on_licence_copy(code: str, tmp: Path) -> str:
    from desensitize.fingerprints import FingerprintSet
    from sandbox.guard import SourceCopy, judge
    from sandbox.kinds import run_job
    from tests.conftest import require_sandbox

    require_sandbox()
    frame = _licence_copy("residents", 3, ["residents"])
    report = _base("residents")[1]
    prints = FingerprintSet.build(  # as LicenceCopies._write builds them
        frame,
        frame,
        {},
        pepper=PEPPER,
        pseudonym_columns=pseudonym_columns(report),
        quasi_identifier_columns=[c for c in quasi_identifiers(report) if c in frame.columns],
        workers=1,
    )
    copy = tmp / "residents.parquet"
    frame.to_parquet(copy, index=False)
    result = run_job("python", code, datasets={"residents": copy}, out_dir=tmp / "out")
    judgement = judge(
        tmp / "out",
        result.outputs,
        stdout=result.stdout,
        stderr=result.stderr,
        removed=result.removed,
        fingerprints={"residents": prints},
        sources={"residents": SourceCopy.load("residents", copy)},
        code=code,
    )
    return str(judgement.verdict)


_READ = "import pandas as pd\nk = pd.read_parquet('/data/residents.parquet')['公民身份号码'].head(200)\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("prefix16_stdout", _READ + "print('\\n'.join(k.str[:16]))"),
        ("prefix12_stdout", _READ + "print('\\n'.join(k.str[:12]))"),
        ("prefix16_dashed_stdout", _READ + "print('\\n'.join(x[:8].upper() + '-' + x[8:16].upper() for x in k))"),
        ("int48_csv", _READ + "pd.DataFrame({'k': k.map(lambda h: int(h[:12], 16))}).to_csv('/out/a.csv', index=0)"),
    ],
)
def test_break_f7_shortened_licence_pseudonyms_leave_past_the_guard(name: str, code: str, tmp_path: Path) -> None:
    """BREAK (medium): 200 per-licence pseudonyms cut to 12 or 16 hex digits (48/64 bits: still unique
    keys) printed one per line pass the guard (the same prefixes written as hex to a CSV are blocked);
    so do 200 of them as 48-bit integers in a CSV column."""
    assert _judge_on_licence_copy(code, tmp_path) == "block", name


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("full_stdout", _READ + "print('\\n'.join(k))"),
        ("as_int_stdout", _READ + "print('\\n'.join(str(int(x, 16)) for x in k))"),
        ("reversed_stdout", _READ + "print('\\n'.join(x[::-1] for x in k))"),
        ("prefix12_csv", _READ + "pd.DataFrame({'k': k.str[:12]}).to_csv('/out/a.csv', index=False)"),
        ("prefix10_csv", _READ + "pd.DataFrame({'k': k.str[:10]}).to_csv('/out/a.csv', index=False)"),
    ],
)
def test_holds_f7_licence_pseudonyms_are_blocked(name: str, code: str, tmp_path: Path) -> None:
    """HOLDS: the guard's prints cover the per-licence pseudonyms: whole, as numbers, reversed, and
    shortened in a file."""
    assert _judge_on_licence_copy(code, tmp_path) == "block", name


# --- defences that held ----------------------------------------------------------------------------------


def test_holds_keys_never_join_across_licences_or_link_groups() -> None:
    """HOLDS: the same person has different keys under two licences, and under one licence in two link
    groups; a joint group shares one key; keys are 128-bit hex, not the base pseudonym."""
    base = _base("residents")[0]["公民身份号码"]
    one = _licence_copy("residents", 1, ["residents"])["公民身份号码"]
    two = _licence_copy("residents", 2, ["residents"])["公民身份号码"]
    other_group = _licence_copy("social_insurance", 1, ["social_insurance"])["身份证号"]
    assert not set(one) & set(two)
    assert not set(one) & set(other_group)
    assert not set(one) & set(base)
    joint_r = _licence_copy("residents", 1, ["residents", "social_insurance"])["公民身份号码"]
    joint_s = _licence_copy("social_insurance", 1, ["social_insurance", "residents"])["身份证号"]
    assert len(set(joint_r) & set(joint_s)) > 0.5 * len(joint_s)
    assert not set(joint_r) & set(one)
    assert licence_key(PEPPER, 1, ["a", "b"]) == licence_key(PEPPER, 1, ["b", "a"])


def test_holds_a_near_unique_number_column_is_re_keyed_per_licence() -> None:
    """HOLDS: a near-unique card number the custodian did not keep is pseudonymized, listed as a pseudonym
    column of the base report, and so re-keyed per licence: two licences do not join on it."""
    raw = _raw()["social_insurance"].copy()
    raw["社保卡号"] = [f"{i * 7919 % 1000003:09d}" for i in range(len(raw))]
    result = desensitize_table(raw, INSURANCE_TYPES, load_policy("L4"), pepper=PEPPER)
    assert "社保卡号" in pseudonym_columns(result.report)
    a = rekey(result.frame["社保卡号"], licence_key(PEPPER, 1, ["social_insurance"]))
    b = rekey(result.frame["社保卡号"], licence_key(PEPPER, 2, ["social_insurance"]))
    assert not set(a) & set(b)


def test_holds_the_joined_view_meets_k_on_its_quasi_identifiers_and_each_table_alone() -> None:
    """HOLDS: measured independently, the joint copies' joined view (persons, both tables' quasi-identifiers
    and presence in social_insurance) meets the required k, and so does each table alone."""
    frames, report = _joint()
    residents, insurance = frames["residents"], frames["social_insurance"]
    people, insured = residents.drop_duplicates("公民身份号码"), insurance.drop_duplicates("身份证号")
    persons = people.merge(insured, left_on="公民身份号码", right_on="身份证号", how="outer", suffixes=("", "_si"))
    persons["在社保"] = persons["身份证号"].notna()
    persons["在户籍"] = persons["公民身份号码"].notna()
    qi_r = list(quasi_identifiers(_base("residents")[1]))
    qi_s = [f"{c}_si" if c in residents.columns else c for c in quasi_identifiers(_base("social_insurance")[1])]
    need = report["k_required"]
    assert _k(persons, [*qi_r, *qi_s, "在社保", "在户籍"]) >= need
    assert _k(residents, qi_r) >= need
    assert _k(insurance, list(quasi_identifiers(_base("social_insurance")[1]))) >= need


def test_holds_text_dates_and_oddly_named_employers_do_not_stay_verbatim() -> None:
    """HOLDS: a text date in 年/月 form is a date (coarsened to the L4 year); a date with 上旬 or an
    employer column named unlike one, with 20+ values, is high-cardinality and generalized or suppressed
    rather than kept verbatim."""
    rng = np.random.default_rng(5)
    years, months = rng.integers(1990, 2024, ROWS), rng.integers(1, 13, ROWS)
    frame, report = _with_categories(
        {
            "入职年月": [f"{y}年{m}月" for y, m in zip(years, months, strict=True)],
            "入职时间": [f"{y}年{m}月上旬" for y, m in zip(years[::-1], months, strict=True)],
            "就职于": rng.choice([f"双鸭山{i}号矿业有限公司" for i in range(60)], ROWS),
        }
    )
    qi = quasi_identifiers(report)
    assert {"入职年月", "入职时间", "就职于"} <= set(qi)
    assert not frame["入职年月"].astype(str).str.contains("月").any()
    assert frame["就职于"].nunique() < 60 and frame["入职时间"].nunique() < 400


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ("one", "two or more"),
        ("plus", r"\+"),
        ("key_as_qi", "person key"),
        ("no_key", "no person key"),
    ],
)
def test_holds_link_tables_refuses_odd_groups(tables: str, message: str) -> None:
    """HOLDS: a group of one, a '+' in a name, the person key as a quasi-identifier, a table without a
    person key: refused, naming why."""
    frame = _licence_copy("residents", 1, ["residents", "social_insurance"]).head(200)
    qi = quasi_identifiers(_base("residents")[1])

    def table(name: str, **kw: object) -> LinkedTable:
        args = {"name": name, "frame": frame, "person_key": "公民身份号码", "quasi_identifiers": qi, **kw}
        return LinkedTable(**args)  # type: ignore[arg-type]

    groups = {
        "one": [table("a")],
        "plus": [table("a+b"), table("c")],
        "key_as_qi": [table("a", quasi_identifiers={**qi, "公民身份号码": None}), table("b")],
        "no_key": [table("a", person_key=None), table("b")],
    }
    with pytest.raises(ValueError, match=message):
        link_tables(groups[tables])
    with pytest.raises(ValueError):
        group_name(["a+b", "c"])


# --- the registry's own licence copies (the demo) --------------------------------------------------------


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home where ``keyong demo`` ran (800 residents): its licence 1 grants residents + social_insurance jointly."""
    from rich.console import Console

    from app.demo import run_demo
    from app.settings import Settings

    home = tmp_path_factory.mktemp("redteam23") / "home"
    run_demo(Settings(home=home), residents=800, seed=7, console=Console(quiet=True))
    return home


@pytest.fixture(scope="module")
def demo_copies(demo_home: Path) -> dict[str, pd.DataFrame]:
    """The demo's licence copies (residents + social_insurance granted jointly), read as a job mounts them."""
    import io

    import pyarrow.parquet as pq
    from sqlalchemy import select

    from app.instance import Instance
    from app.settings import Settings
    from registry.models import LicenceCopyRow

    instance = Instance.open(Settings(home=demo_home))
    try:
        copies = instance.registry.licence_copies
        with copies.recorder.read() as session:
            rows = [(r.resource_id, r.path) for r in session.scalars(select(LicenceCopyRow))]
            names = {r.resource_id: r.resource.name for r in session.scalars(select(LicenceCopyRow))}
        return {
            names[rid]: pq.read_table(io.BytesIO(copies.at_rest.read(copies.config.home / path))).to_pandas()
            for rid, path in rows
        }
    finally:
        instance.close()


@pytest.mark.slow
def test_break_f1_f4_on_the_demos_own_licence_copies(demo_copies: dict[str, pd.DataFrame]) -> None:
    """BREAK (high): on the demo's own joint licence copies, a quarter of joined persons (25-27 %) are
    unique once the kept surname is counted; and social_insurance's rows come in residents' order (the
    premise of F4: were the two granted separately, row order would join them)."""
    residents, insurance = demo_copies["residents"], demo_copies["social_insurance"]
    position = {key: i for i, key in enumerate(residents["公民身份号码"])}
    order = [position[k] for k in insurance["身份证号"] if k in position]
    in_order = bool(np.all(np.diff(order) > 0))
    joined = residents.merge(insurance, left_on="公民身份号码", right_on="身份证号", how="left", suffixes=("", "_si"))
    qi = ["性别", "民族", "出生日期", "住址", "户籍地", "出生日期_si", "参保单位", "参保日期"]
    unique = _unique_share(joined, [*qi, "姓名"])
    assert unique == 0.0 and not in_order, f"{unique:.0%} unique with the surname; rows in the same order: {in_order}"


@pytest.mark.slow
def test_holds_the_demos_licence_copies_carry_keys_of_their_own(demo_copies: dict[str, pd.DataFrame]) -> None:
    """HOLDS: the demo's joint copies share one key per person (the grant), 32 hex digits, and k holds on
    the joined view's reported quasi-identifiers."""
    residents, insurance = demo_copies["residents"], demo_copies["social_insurance"]
    assert residents["公民身份号码"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert len(set(insurance["身份证号"]) & set(residents["公民身份号码"])) > 0.5 * insurance["身份证号"].nunique()
    joined = residents.merge(insurance, left_on="公民身份号码", right_on="身份证号", how="left", suffixes=("", "_si"))
    qi = ["性别", "民族", "出生日期", "住址", "户籍地", "出生日期_si", "参保单位", "参保日期"]
    assert _k(joined, qi) >= 5


@pytest.mark.parametrize(
    "groups",
    [
        [["residents", "social_insurance"], ["social_insurance", "market_entities"]],  # overlapping
        [["residents", "residents "]],  # the same dataset twice, once with a space
        [["residents"]],  # a group of one
        [["residents+social_insurance", "market_entities"]],  # a '+' in a name
        [["residents", ""]],  # an empty name
        ["residents,social_insurance"],  # a string, not a list
    ],
)
def test_holds_odd_joint_groups_are_refused_at_grant(groups: list) -> None:
    """HOLDS: overlapping groups, a name twice (whitespace folded), a group of one, '+' or empty names, a
    string for a group: refused at grant time (``registry.licence_terms.check_joint_groups``)."""
    from core import RegistryError
    from registry.licence_terms import check_joint_groups

    with pytest.raises(RegistryError):
        check_joint_groups(groups)


def _queued_then(demo_home: Path, tmp_path: Path, act: str) -> object:
    """On a copy of the demo home: the demo operator queues a job over residents, ``act`` happens, a worker
    runs once: what it ran (None when nothing was left to run)."""
    import shutil

    from app.instance import DEMO_PRINCIPALS, Instance
    from app.settings import Settings
    from core import Actor
    from operators import Role
    from tests.conftest import require_sandbox

    require_sandbox()
    home = tmp_path / "home"
    shutil.copytree(demo_home, home, symlinks=True)
    instance = Instance.open(Settings(home=home))
    try:
        operator = DEMO_PRINCIPALS[Role.OPERATOR]
        code = "import pandas as pd\nprint(len(pd.read_parquet('/data/residents.parquet')))"
        instance.jobs.submit(operator, ["residents"], "python", code, "人口结构分析")
        custodian = Actor(DEMO_PRINCIPALS[Role.CUSTODIAN], "custodian")
        agency = Actor(DEMO_PRINCIPALS[Role.AGENCY], "agency")
        if act == "supersede":
            instance.registry.copies.make("residents", by=custodian)
        else:
            instance.registry.licences.transition(1, act, by=agency, reason=f"red team 23: {act} while queued")
        return instance.worker().run_once()
    finally:
        instance.close()


@pytest.mark.slow
def test_break_f8_a_newer_base_copy_fails_the_jobs_queued_on_the_old_one(demo_home: Path, tmp_path: Path) -> None:
    """BREAK (low, availability): a newer base copy recorded while a job is queued deletes the licence copy
    the job was admitted with (``LicenceCopies._supersede``); the worker then fails the job with
    "desensitized copy missing", as if data had been lost. Fail closed, but the operator's job is lost and
    the reason misleads."""
    ran = _queued_then(demo_home, tmp_path, "supersede")
    assert ran is not None
    assert "copy missing" not in str(getattr(ran, "reason", "")), f"{ran.state}: {ran.reason}"  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize("act", ["revoked", "suspended"])
def test_holds_a_job_queued_under_a_licence_then_ended_or_suspended_never_runs(
    act: str, demo_home: Path, tmp_path: Path
) -> None:
    """HOLDS: revoke or suspend the licence while a job is queued: the worker finds nothing to run."""
    ran = _queued_then(demo_home, tmp_path, act)
    assert ran is None
