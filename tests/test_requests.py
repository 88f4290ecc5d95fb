"""Requests with statutory deadlines (issue 24): the working-day calendar, each rule's clock across a
holiday with make-up days, the state machine with its reasons, the ledger, and overdue findings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from app import Instance
from core import Actor, NotFoundError, PermissionDeniedError, RegistryError
from registry import Registry, RegistryConfig
from registry.calendar import CalendarError, WorkCalendar, load_override, parse_received
from registry.request_rules import KINDS, RULES, rule_for
from tests.conftest import FakeClock
from tests.test_registry_products import POPULATION_ACQUIRED, POPULATION_PROVIDER, make_resource

# 30 September 2025, 10:00 in China: the day before the National Day holiday (1–8 October; 28 September and
# 11 October worked).
BEFORE_NATIONAL_DAY = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
POLICE = POPULATION_PROVIDER[0]
CLERK = Actor("clerk-police", "custodian")
OTHER_CLERK = Actor("clerk-traffic", "custodian")
OPERATOR = Actor("demo-operator", "operator")
AGENCY = Actor("demo-agency", "agency")
REGULATOR = Actor("demo-regulator", "regulator")
ORGS: dict[str, str | None] = {"clerk-police": POLICE, "clerk-traffic": "双鸭山市交通运输局", "demo-custodian": None}


# --- the calendar -------------------------------------------------------------------------------


def test_five_working_days_from_30_september_2025_end_on_14_october() -> None:
    """1–8 October off, Saturday 11 October worked: 9, 10, 11, 13, 14."""
    due = WorkCalendar().due(date(2025, 9, 30), 5)
    assert due.as_json() == {
        "received": "2025-09-30",
        "working_days": 5,
        "due": "2025-10-14",
        "provisional": False,
        "provisional_reason": None,
    }
    calendar = WorkCalendar()
    assert calendar.is_workday(date(2025, 9, 28)) and calendar.is_workday(date(2025, 10, 11))
    assert not calendar.is_workday(date(2025, 10, 8))


def test_receipt_is_chinas_date() -> None:
    """23:30 UTC is 07:30 the next day in China: received then, counted from the day after."""
    assert parse_received("2025-09-29T23:30:00Z") == date(2025, 9, 30)
    assert parse_received("2025-09-30") == date(2025, 9, 30)
    for bad in ("2025-13-01", "yesterday", "2025-09-29T23:30:00", ""):
        with pytest.raises(CalendarError):
            parse_received(bad)


def test_a_year_no_source_knows_is_provisional_and_says_why(tmp_path: Path) -> None:
    due = WorkCalendar().due(date(2026, 12, 30), 5)
    assert due.provisional and "2027" in (due.provisional_reason or "")
    assert due.due == date(2027, 1, 6)  # Monday to Friday, flagged: 31 Dec, 1, 4, 5, 6 January
    inside = WorkCalendar().due(date(2026, 9, 30), 5)
    assert not inside.provisional


def test_the_override_files_notice_makes_a_year_known_and_moves_days(tmp_path: Path) -> None:
    notice = {
        "title": "国务院办公厅关于2027年部分节假日安排的通知",
        "year": 2027,
        "holidays": ["2027-01-01", "2027-01-04"],
    }
    (tmp_path / "calendar.json").write_text(json.dumps({"notices": [notice]}), encoding="utf-8")
    calendar = WorkCalendar.for_home(tmp_path)
    due = calendar.due(date(2026, 12, 30), 3)
    assert not due.provisional and due.due == date(2027, 1, 6)  # 31 Dec, 5, 6 (1 and 4 January off)
    local = {"title": "本地调休", "year": 2025, "workdays": ["2025-10-12"], "holidays": ["2025-10-13"]}
    (tmp_path / "calendar.json").write_text(json.dumps({"notices": [local]}), encoding="utf-8")
    assert WorkCalendar.for_home(tmp_path).due(date(2025, 9, 30), 5).due == date(2025, 10, 14)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("not json", "not readable JSON"),
        ('{"notices": [], "extra": 1}', "the calendar override is"),
        ('{"notices": [{"title": "x", "year": 2027, "holidays": ["2027-02-30"]}]}', "not a date"),
        ('{"notices": [{"title": "x", "year": 2027, "holidays": ["2028-01-01"]}]}', "not in the notice's year"),
        ('{"notices": [{"title": "x", "year": 2027, "holidays": ["2027-01-01"], "workdays": ["2027-01-01"]}]}', "both"),
        ('{"notices": [{"title": "", "year": 2027, "holidays": ["2027-01-01"]}]}', "title"),
        ('{"notices": [{"title": "x", "year": "2027", "holidays": ["2027-01-01"]}]}', "year must be"),
        ('{"notices": [{"title": "x", "year": 2027, "holiday": ["2027-01-01"]}]}', "unknown keys"),
        ('{"notices": [{"title": "x", "year": 2027}]}', "at least one"),
    ],
)
def test_the_override_file_is_validated_strictly(tmp_path: Path, content: str, complaint: str) -> None:
    (tmp_path / "calendar.json").write_text(content, encoding="utf-8")
    with pytest.raises(CalendarError, match=complaint):
        load_override(tmp_path)


def test_working_days_are_bounded() -> None:
    for bad in (0, -1, 251):
        with pytest.raises(CalendarError):
            WorkCalendar().due(date(2025, 9, 30), bad)


# --- rules --------------------------------------------------------------------------------------

# Received 30 September 2025: each profile's rules, across National Day and its two make-up days.
EXPECTED = {
    ("heilongjiang", "data_application", ""): ("第二十二条", 1, "2025-10-09"),
    ("heilongjiang", "data_demand", ""): ("第二十九条", 3, "2025-10-11"),  # a make-up Saturday
    ("heilongjiang", "correction", ""): ("第二十四条", 5, "2025-10-14"),
    ("heilongjiang", "open_data_application", ""): ("第三十四条", 5, "2025-10-14"),
    ("heilongjiang", "catalog_update", ""): ("第十五条", 3, "2025-10-11"),
    ("heilongjiang", "catalog_update", "comments"): ("第十二条", 5, "2025-10-14"),
    ("shuangyashan", "data_application", ""): ("第二十七条", 1, "2025-10-09"),
    ("shuangyashan", "data_demand", ""): ("第三十二条", 3, "2025-10-11"),
    ("shuangyashan", "correction", ""): ("第二十八条", 5, "2025-10-14"),
    ("shuangyashan", "open_data_application", ""): ("第三十九条", 5, "2025-10-14"),
    ("shuangyashan", "catalog_update", ""): ("第十三条", 10, "2025-10-21"),
    ("jiyuan", "correction", ""): ("第四十条", 10, "2025-10-21"),
    ("jiyuan", "correction", "problem_data"): ("第二十四条", 5, "2025-10-14"),
    ("jiyuan", "open_data_application", ""): ("第四十一条", 10, "2025-10-21"),
    ("jiyuan", "catalog_update", ""): ("第十九条", 5, "2025-10-14"),
}


def test_every_rule_is_tested_and_cites_an_article_in_the_regulation_text() -> None:
    listed = {(p, r.kind, r.variant) for p, rules in RULES.items() for r in rules}
    assert listed == set(EXPECTED)
    for rules in RULES.values():
        for rule in rules:
            assert rule.article.startswith("第") and rule.article.endswith("条")
            assert f"{rule.working_days}个工作日" in rule.text.replace(" ", "")


@pytest.mark.parametrize(("profile", "kind", "variant"), sorted(EXPECTED))
def test_each_rules_deadline_across_national_day(profile: str, kind: str, variant: str) -> None:
    rule = rule_for(profile, kind, variant)
    article, days, due = EXPECTED[(profile, kind, variant)]
    assert (rule.article, rule.working_days) == (article, days)
    assert WorkCalendar().due(date(2025, 9, 30), rule.working_days).due.isoformat() == due


def test_a_clock_the_regions_text_does_not_set_is_refused() -> None:
    with pytest.raises(RegistryError, match="sets no time limit"):
        rule_for("jiyuan", "data_application")
    with pytest.raises(RegistryError, match="unknown request profile"):
        rule_for("beijing", "correction")
    with pytest.raises(RegistryError, match="unknown request kind"):
        rule_for("shuangyashan", "complaint")
    assert set(KINDS) == {r.kind for r in RULES["shuangyashan"]}


# --- requests -----------------------------------------------------------------------------------


@pytest.fixture
def world(initialised: tuple[Instance, dict[str, str]], clock: FakeClock) -> tuple[Instance, Registry]:
    instance = initialised[0]
    make_resource(instance, "population", POPULATION_PROVIDER, POPULATION_ACQUIRED)
    clock.now = BEFORE_NATIONAL_DAY
    registry = Registry(
        instance.engine,
        instance.ledger,
        RegistryConfig(home=instance.home, clock=clock, request_profile="heilongjiang"),
        custodians=lambda: ORGS,
    )
    return instance, registry


def test_a_data_application_is_due_after_the_holiday_and_granting_records_what_it_leads_to(
    world: tuple[Instance, Registry], clock: FakeClock
) -> None:
    instance, registry = world
    before = instance.ledger.size()
    submitted = registry.requests.submit(
        "data_application", by=OPERATOR, subject="population", detail="交通出行 场景, 有条件共享"
    ).as_json()
    assert submitted["provider"] == POLICE  # the dataset's 提供方 answers
    assert (submitted["state"], submitted["received"], submitted["due"]) == ("submitted", "2025-09-30", "2025-10-09")
    assert submitted["legal_basis"].endswith("第二十二条") and submitted["working_days"] == 1
    reviewed = registry.requests.review(submitted["id"], by=CLERK).as_json()
    assert reviewed["state"] == "in_review"
    with pytest.raises(NotFoundError):
        registry.requests.decide(submitted["id"], "granted", by=CLERK, leads_to="licence:999")
    granted = registry.requests.decide(
        submitted["id"], "granted", by=CLERK, reason="同意", leads_to="sharing:接口 population-api"
    ).as_json()
    assert (granted["state"], granted["leads_to"], granted["late"]) == ("granted", "sharing:接口 population-api", False)
    actions = [(e.action, e.subject, e.payload["to"]) for e in instance.ledger.entries(after=before)]
    subject = f"request:{submitted['id']}"
    assert actions == [
        ("request.submitted", subject, "submitted"),
        ("request.in_review", subject, "in_review"),
        ("request.granted", subject, "granted"),
    ]
    history = registry.requests.get(submitted["id"], viewer=REGULATOR).as_json()["history"]
    assert [(h["action"], h["actor"], h["reason"]) for h in history] == [
        ("submitted", "demo-operator", "交通出行 场景, 有条件共享"),
        ("in_review", "clerk-police", ""),
        ("granted", "clerk-police", "同意"),
    ]
    with pytest.raises(RegistryError, match="already granted"):
        registry.requests.withdraw(submitted["id"], by=OPERATOR)


def test_a_refusal_needs_reasons_and_only_the_providing_department_decides(
    world: tuple[Instance, Registry],
) -> None:
    instance, registry = world
    item = registry.requests.submit("open_data_application", by=OPERATOR, subject="population").as_json()
    before = instance.ledger.size()
    for empty in ("", "   "):
        with pytest.raises(RegistryError, match="具体原因"):
            registry.requests.decide(item["id"], "refused", by=CLERK, reason=empty)
    with pytest.raises(PermissionDeniedError):
        registry.requests.decide(item["id"], "refused", by=OTHER_CLERK, reason="不属于本部门")
    for outsider in (AGENCY, REGULATOR, OPERATOR):
        with pytest.raises(PermissionDeniedError):
            registry.requests.decide(item["id"], "refused", by=outsider, reason="x")
    assert instance.ledger.size() == before  # nothing of a refused step is recorded
    refused = registry.requests.decide(item["id"], "refused", by=CLERK, reason="含个人信息, 未脱敏").as_json()
    assert (refused["state"], refused["reason"]) == ("refused", "含个人信息, 未脱敏")
    entry = list(instance.ledger.entries(after=before))[-1]
    assert entry.action == "request.refused" and entry.payload["reason_sha256"]
    with pytest.raises(RegistryError, match="ends answered"):
        catalog = registry.requests.submit("catalog_update", by=AGENCY, subject="population").as_json()
        registry.requests.decide(catalog["id"], "granted", by=CLERK)


def test_who_sees_which_requests(world: tuple[Instance, Registry]) -> None:
    _, registry = world
    mine = registry.requests.submit("correction", by=OPERATOR, subject="population", detail="户籍地址有误")
    other = registry.requests.submit(
        "data_demand", by=AGENCY, subject="公交刷卡数据", subject_kind="catalog_entry", provider=ORGS["clerk-traffic"]
    )
    ids = lambda viewer: [r.row.id for r in registry.requests.list(viewer=viewer)]  # noqa: E731
    assert ids(CLERK) == [mine.row.id]
    assert ids(OTHER_CLERK) == [other.row.id]
    assert ids(Actor("other-operator", "operator")) == []
    # A custodian with no organisation on record answers for the providers of the entries it published.
    assert ids(Actor("demo-custodian", "custodian")) == [mine.row.id]
    assert ids(Actor("custodian-gone", "custodian")) == []  # not an active custodian: nothing
    ORGS["clerk-by-code"] = POPULATION_PROVIDER[1].lower()  # its organisation recorded by 统一社会信用代码
    try:
        assert ids(Actor("clerk-by-code", "custodian")) == [mine.row.id]
    finally:
        del ORGS["clerk-by-code"]
    assert sorted(ids(REGULATOR)) == sorted([mine.row.id, other.row.id])
    with pytest.raises(NotFoundError):
        registry.requests.get(other.row.id, viewer=CLERK)
    with pytest.raises(PermissionDeniedError):
        registry.requests.submit("correction", by=REGULATOR, subject="population")
    with pytest.raises(NotFoundError):
        registry.requests.submit("correction", by=OPERATOR, subject="no-such-dataset")
    with pytest.raises(RegistryError, match="provided by"):
        registry.requests.submit("correction", by=OPERATOR, subject="population", provider="别的部门")
    with pytest.raises(PermissionDeniedError):
        registry.requests.withdraw(mine.row.id, by=Actor("other-operator", "operator"))
    assert registry.requests.withdraw(mine.row.id, by=OPERATOR, reason="已自行核实").row.state == "withdrawn"


def test_an_overdue_request_raises_one_finding(world: tuple[Instance, Registry], clock: FakeClock) -> None:
    instance, registry = world
    item = registry.requests.submit("data_application", by=OPERATOR, subject="population").as_json()
    clock.now = datetime(2025, 10, 9, 15, 59, tzinfo=UTC)  # 23:59 on the due day in China: not yet late
    assert registry.requests.sweep_overdue() == []
    assert registry.requests.list(viewer=CLERK, due_soon=True)[0].due_soon
    clock.now = datetime(2025, 10, 9, 16, 1, tzinfo=UTC)  # 00:01 on 10 October in China
    assert [r.row.id for r in registry.requests.list(viewer=REGULATOR, overdue=True)] == [item["id"]]
    assert registry.requests.sweep_overdue() == [item["id"]]
    assert registry.requests.sweep_overdue() == []  # once
    findings = registry.monitoring.list_findings(viewer=AGENCY, kind="request_overdue")
    assert len(findings) == 1 and f"request {item['id']}" in findings[0].detail
    shown = registry.requests.get(item["id"], viewer=CLERK).as_json()
    assert shown["overdue"] and shown["finding"] == findings[0].id
    assert shown["history"][-1]["action"] == "overdue" and shown["history"][-1]["actor"] == "keyong:monitor"
    late = registry.requests.decide(item["id"], "granted", by=CLERK).as_json()
    assert late["late"] and not late["overdue"]
    entry = list(instance.ledger.entries(after=0))[-1]
    assert entry.action == "request.granted" and entry.payload["late"] is True


def test_a_request_due_in_an_unknown_year_is_provisional(world: tuple[Instance, Registry], clock: FakeClock) -> None:
    _, registry = world
    clock.now = datetime(2026, 12, 29, 2, 0, tzinfo=UTC)
    item = registry.requests.submit("correction", by=OPERATOR, subject="population").as_json()
    assert item["provisional"] and "2027" in item["provisional_reason"]


def test_a_request_received_at_2330_utc_is_received_the_next_day_in_china(
    world: tuple[Instance, Registry], clock: FakeClock
) -> None:
    _, registry = world
    clock.now = datetime(2025, 9, 29, 23, 30, tzinfo=UTC)  # 07:30 on 30 September in China
    item = registry.requests.submit("data_application", by=OPERATOR, subject="population").as_json()
    assert (item["received"], item["due"]) == ("2025-09-30", "2025-10-09")
