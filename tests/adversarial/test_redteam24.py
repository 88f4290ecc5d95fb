"""Red team of issue 24 (redteam24): requests with statutory deadlines on the Chinese working-day calendar.

Each test PASSES while the defence holds and FAILS where it is broken (a found bug is a failing test; none
is marked xfail). Findings are listed with severity, reproduction and suggested fix in ``FINDINGS24.md``.

Attacked: who acts for a providing department (黑龙江 第二十二条 / 双鸭山 第二十七条: the *provider* reviews),
refusals without visible reasons (应说明具体原因), the override file (contradictory notices), receipt
parsing at the edges of time, overdue detection (raised once, never lost), the state machine, the
ledger, the HTTP bounds, and the console (escaping, CSRF, other roles' pages).

Written without reading the feature's own tests (tests/test_requests*.py, tests/browser/…requests…).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import Instance, Settings, create_app
from core import Actor, PermissionDeniedError, RegistryError
from registry import Registry, RegistryConfig
from registry.calendar import CalendarError, WorkCalendar, parse_override, parse_received
from registry.models import FindingRow
from tests.conftest import FakeClock, bearer
from tests.console_support import console_client, csrf_of
from tests.test_registry_catalog import PROVIDER_CODE, plain_entry

TRANSPORT = "双鸭山市交通运输局"  # plain_entry's 提供方名称
POLICE = "双鸭山市公安局"
CUST_A = Actor("cust-a", "custodian")  # publishes bus_lines: answers for 交通运输局
CUST_B = Actor("cust-b", "custodian")  # a custodian of 公安局: nothing to do with transport
OPERATOR = Actor("demo-operator", "operator")
AGENCY = Actor("demo-agency", "agency")
REGULATOR = Actor("demo-regulator", "regulator")


@dataclass
class World:
    instance: Instance
    registry: Registry
    clock: FakeClock
    custodians: dict[str, str | None]
    tokens: dict[str, str]

    def findings(self) -> int:
        with Session(self.instance.engine) as session:
            return int(
                session.scalar(select(func.count()).select_from(FindingRow).where(FindingRow.kind == "request_overdue"))
                or 0
            )

    def ledger(self, prefix: str = "request.") -> list[Any]:
        return [e for e in self.instance.ledger.entries(after=0, limit=5000) if e.action.startswith(prefix)]


def _world(tmp_path: Path, profile: str = "shuangyashan") -> Iterator[World]:
    instance, result = Instance.init(Settings(home=tmp_path / "home"))
    clock = FakeClock()
    clock.now = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)  # 10:00 in China, the day before National Day
    custodians: dict[str, str | None] = {"cust-a": None, "cust-b": POLICE}
    config = RegistryConfig(home=instance.home, clock=clock, vault_key=instance.keys.vault_key, request_profile=profile)
    registry = Registry(instance.engine, instance.ledger, config, custodians=lambda: dict(custodians))
    registry.catalog.publish(plain_entry("bus_lines"), by=CUST_A)
    try:
        yield World(instance, registry, clock, custodians, dict(result.tokens))
    finally:
        instance.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path)


# ----------------------------------------------------------------------------------------------------------
# Roles: who acts for the providing department
# ----------------------------------------------------------------------------------------------------------


def test_finding_custodian_of_another_department_answers_its_requests_after_publishing_a_decoy_entry(
    world: World,
) -> None:
    """BROKEN (high): cust-b (公安局) publishes a throw-away catalog entry naming 交通运输局 as 提供方 and
    thereby becomes, for ``Requests.departments``, a custodian of *every* 交通运输局 request — it refuses the
    operator's application on bus_lines, a dataset it never published. ``registry.egress.is_custodian``
    (the reading the contract claims to share) is per dataset and would not let cust-b near bus_lines."""
    reg = world.registry
    request = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    reg.catalog.publish(plain_entry("decoy", provider_name=TRANSPORT, provider_code=PROVIDER_CODE), by=CUST_B)
    with pytest.raises(PermissionDeniedError):
        reg.requests.decide(request.row.id, "refused", by=CUST_B, reason="不予共享")


def test_holds_custodian_of_another_department_cannot_act_without_a_decoy(world: World) -> None:
    """HOLDS: without publishing anything for 交通运输局, cust-b can neither review nor decide nor see it."""
    reg = world.registry
    request = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    with pytest.raises(PermissionDeniedError):
        reg.requests.review(request.row.id, by=CUST_B)
    with pytest.raises(PermissionDeniedError):
        reg.requests.decide(request.row.id, "answered", by=CUST_B, reason="已更正")
    assert [r.row.id for r in reg.requests.list(viewer=CUST_B)] == []
    with pytest.raises(RegistryError):
        reg.requests.get(request.row.id, viewer=CUST_B)


def test_finding_custodian_grants_its_own_application(world: World) -> None:
    """BROKEN (medium): cust-a submits a data-use application for its own department's dataset and grants
    it itself. The requester and the deciding official must differ (the provider *reviews* an application
    from someone else; a self-granted application has had no review)."""
    reg = world.registry
    mine = reg.requests.submit("data_application", by=CUST_A, subject="bus_lines")
    with pytest.raises(PermissionDeniedError):
        reg.requests.decide(mine.row.id, "granted", by=CUST_A, reason="同意")


def test_finding_operator_raises_the_authoritys_catalog_update_obligation(tmp_path: Path) -> None:
    """BROKEN (low/medium): under Heilongjiang, ``catalog_update`` variant ``comments`` is the clock that runs
    from *the authority's* comments (第十二条). An operator raises one against any department it names —
    a due date, a queue entry and, once late, a monitoring finding against that department."""
    for w in _world(tmp_path, "heilongjiang"):
        with pytest.raises(PermissionDeniedError):
            w.registry.requests.submit(
                "catalog_update",
                by=OPERATOR,
                subject="anything",
                subject_kind="catalog_entry",
                provider=POLICE,
                variant="comments",
            )


def test_holds_regulator_and_operator_change_nothing(world: World) -> None:
    """HOLDS: a regulator submits nothing; an operator neither reviews nor decides; nobody but the
    requester withdraws."""
    reg = world.registry
    request = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    with pytest.raises(PermissionDeniedError):
        reg.requests.submit("correction", by=REGULATOR, subject="bus_lines")
    for who in (OPERATOR, REGULATOR, AGENCY):
        with pytest.raises(PermissionDeniedError):
            reg.requests.review(request.row.id, by=who)
        with pytest.raises(PermissionDeniedError):
            reg.requests.decide(request.row.id, "answered", by=who, reason="x")
    for who in (CUST_A, REGULATOR, AGENCY):
        with pytest.raises(PermissionDeniedError):
            reg.requests.withdraw(request.row.id, by=who)


def test_holds_suspended_custodian_loses_its_queue(world: World) -> None:
    """HOLDS: the custodian registry is asked at each act; a suspended custodian decides nothing."""
    reg = world.registry
    request = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    del world.custodians["cust-a"]
    with pytest.raises(PermissionDeniedError):
        reg.requests.decide(request.row.id, "answered", by=CUST_A, reason="已更正")


# ----------------------------------------------------------------------------------------------------------
# Reasons
# ----------------------------------------------------------------------------------------------------------

INVISIBLE = ["\u200b", "\ufeff", "\u2060", "\u202e", "\u00ad", "\u3164", "\x7f", "\x9b", "\u200c\u200d"]


@pytest.mark.parametrize("reason", INVISIBLE, ids=[f"U+{ord(c[0]):04X}" for c in INVISIBLE])
def test_finding_refusal_with_only_invisible_characters_is_accepted_by_the_registry(world: World, reason: str) -> None:
    """BROKEN (medium): "a refusal without reasons is refused" — but ``_text`` only strips whitespace and
    refuses C0 controls, so a zero-width space, a BOM, a word joiner, a bidi override, a soft hyphen, a
    Hangul filler or DEL is a "reason". The API refuses these (``VisibleText``); the console's refuse form
    and ``keyong request refuse --reason`` go straight to the registry and record an empty-looking refusal."""
    reg = world.registry
    request = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    with pytest.raises(RegistryError):
        reg.requests.decide(request.row.id, "refused", by=CUST_A, reason=reason)


def test_finding_console_refuse_form_accepts_an_invisible_reason(tmp_path: Path) -> None:
    """BROKEN (medium): the same through the custodian console's 拒绝 form (CSRF token and all)."""
    instance, result = Instance.init(Settings(home=tmp_path / "home"))
    try:
        instance.registry.catalog.publish(plain_entry("bus_lines"), by=Actor("demo-custodian", "custodian"))
        request = instance.registry.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
        client = console_client(instance, result.tokens["custodian"])
        token = csrf_of(client, "/console/custodian/requests")
        client.post(
            f"/console/custodian/requests/{request.row.id}/refuse",
            data={"csrf": token, "reason": "\u200b"},
            follow_redirects=False,
        )
        assert instance.registry.requests.get(request.row.id, viewer=AGENCY).row.state == "submitted"
    finally:
        instance.close()


@pytest.mark.parametrize("reason", ["", "   ", "\n\t", "\u3000\u3000"])
def test_holds_refusal_and_answer_need_reasons(world: World, reason: str) -> None:
    """HOLDS: empty or whitespace (ASCII or ideographic) reasons refuse a refusal and an answer."""
    reg = world.registry
    app = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    fix = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    with pytest.raises(RegistryError):
        reg.requests.decide(app.row.id, "refused", by=CUST_A, reason=reason)
    with pytest.raises(RegistryError):
        reg.requests.decide(fix.row.id, "answered", by=CUST_A, reason=reason)


def test_holds_ten_megabyte_reason_is_refused(world: World) -> None:
    reg = world.registry
    request = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    with pytest.raises(RegistryError):
        reg.requests.decide(request.row.id, "refused", by=CUST_A, reason="理" * (10 * 1024 * 1024))
    assert reg.requests.get(request.row.id, viewer=AGENCY).row.state == "submitted"


# ----------------------------------------------------------------------------------------------------------
# The calendar
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "days", "due"),
    [
        ("2025-09-30", 5, "2025-10-14"),  # National Day 1–8 Oct, 11 Oct (Sat) worked
        ("2025-09-30", 1, "2025-10-09"),
        ("2025-09-27", 1, "2025-09-28"),  # 28 Sep is a Sunday worked (调休)
        ("2025-10-10", 1, "2025-10-11"),  # 11 Oct is a Saturday worked
        ("2025-01-24", 3, "2025-02-05"),  # 26 Jan (Sun) worked, Spring Festival 28 Jan–4 Feb
    ],
)
def test_holds_deadlines_across_holidays_and_make_up_days(received: str, days: int, due: str) -> None:
    result = WorkCalendar().due(date.fromisoformat(received), days)
    assert result.due.isoformat() == due and not result.provisional


def test_holds_receipt_late_at_night_utc_is_the_next_day_in_china() -> None:
    assert parse_received("2025-09-29T23:30:00Z") == date(2025, 9, 30)
    assert parse_received("2025-09-29T15:59:59Z") == date(2025, 9, 29)
    assert parse_received("2025-09-29T16:00:00Z") == date(2025, 9, 30)
    with pytest.raises(CalendarError):
        parse_received("2025-09-29T23:30:00")  # naive: no instant


def test_holds_unknown_year_is_provisional_never_silent() -> None:
    result = WorkCalendar().due(date(2026, 12, 31), 1)
    assert result.provisional and "2027" in (result.provisional_reason or "")


@pytest.mark.parametrize("text", ["9999-12-31T23:30:00-01:00", "0001-01-01T00:00:00+14:00"])
def test_finding_receipt_at_the_edge_of_time_crashes_instead_of_being_refused(text: str) -> None:
    """BROKEN (low): ``parse_received`` catches ValueError only; converting an instant at the end (or start)
    of datetime's range to UTC+8 raises OverflowError, so ``keyong calendar due 9999-12-31T23:30:00-01:00
    --working-days 1`` ends in a traceback instead of exit 1 with a reason."""
    with pytest.raises(CalendarError):
        parse_received(text)


def test_finding_cli_calendar_due_traceback_at_the_edge_of_time(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    result = CliRunner().invoke(
        cli, ["calendar", "due", "9999-12-31T23:30:00-01:00", "--working-days", "1", "--home", str(tmp_path / "h")]
    )
    assert result.exit_code == 1
    assert not isinstance(result.exception, OverflowError), result.exception


def test_finding_override_contradiction_passes_when_the_working_day_comes_first() -> None:
    """BROKEN (medium): the contract says no day is both a holiday and a working day "also across notices".
    The check only looks backwards from a working day to earlier holidays: a make-up day in notice 1 and
    the same day a holiday in notice 2 is accepted, and the holiday silently wins (deadline pushed out)."""
    data = {
        "notices": [
            {"title": "调休通知", "year": 2025, "workdays": ["2025-10-02"]},
            {"title": "放假通知", "year": 2025, "holidays": ["2025-10-02"]},
        ]
    }
    with pytest.raises(CalendarError):
        parse_override(data)


def test_holds_override_contradiction_refused_when_the_holiday_comes_first() -> None:
    data = {
        "notices": [
            {"title": "放假通知", "year": 2025, "holidays": ["2025-10-02"]},
            {"title": "调休通知", "year": 2025, "workdays": ["2025-10-02"]},
        ]
    }
    with pytest.raises(CalendarError):
        parse_override(data)


def test_finding_override_takes_iso_week_dates_for_yyyy_mm_dd() -> None:
    """BROKEN (low): the format is YYYY-MM-DD, but any 10-character string ``date.fromisoformat`` accepts
    passes — ``2025-W40-4`` (ISO week date, Python ≥ 3.11) is read as 2025-10-02. The same in a request's
    receipt date (``parse_received``). A clerk's typo in a notice should be refused, not reinterpreted."""
    with pytest.raises(CalendarError):
        parse_override({"notices": [{"title": "t", "year": 2025, "holidays": ["2025-W40-4"]}]})
    with pytest.raises(CalendarError):
        parse_received("2025-W40-1")


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe{\x00}\x00",  # UTF-16
        b"{not json",
        b'{"notices": [], "extra": 1}',
        b'{"notices": [{"title": "t", "year": 2025.0, "holidays": ["2025-10-02"]}]}',
        b'{"notices": [{"title": "t", "year": 2025, "holidays": ["2026-10-02"]}]}',
        b'{"notices": [{"title": "t", "year": 2025, "holidays": ["2025-10-02", "2025-10-02"]}]}',
        b'{"notices": [{"title": "t", "year": 2025}]}',
        b'{"notices": [{"title": "t", "year": 2025, "holidays": "2025-10-02"}]}',
    ],
)
def test_holds_malformed_override_fails_closed(world: World, content: bytes) -> None:
    """HOLDS: a broken calendar.json refuses new requests (no deadline guessed)."""
    (world.instance.home / "calendar.json").write_bytes(content)
    with pytest.raises(CalendarError):
        world.registry.requests.submit("correction", by=OPERATOR, subject="bus_lines")


def test_finding_broken_override_stops_overdue_detection(world: World) -> None:
    """BROKEN (medium): refusing *new* requests on a broken calendar.json is right, but the due dates of
    requests already received are fixed on their rows. Yet ``sweep_overdue`` re-reads the file for each
    finding (to count days late), so while the file is broken no overdue finding is raised at all (the
    server loop logs and retries; ``keyong request list --overdue`` fails) — lateness goes unseen."""
    reg = world.registry
    request = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    (world.instance.home / "calendar.json").write_text("{broken", encoding="utf-8")
    world.clock.now = datetime(2025, 10, 20, 2, 0, tzinfo=UTC)
    try:
        raised = reg.requests.sweep_overdue()
    except RegistryError:
        raised = []
    assert raised == [request.row.id]
    assert world.findings() == 1


def test_holds_override_makes_an_unknown_year_known(world: World) -> None:
    (world.instance.home / "calendar.json").write_text(
        json.dumps({"notices": [{"title": "国办发明电〔2026〕X号", "year": 2027, "holidays": ["2027-01-01"]}]}),
        encoding="utf-8",
    )
    result = WorkCalendar.for_home(world.instance.home).due(date(2026, 12, 31), 1)
    assert result.due == date(2027, 1, 4) and not result.provisional


# ----------------------------------------------------------------------------------------------------------
# State machine, overdue, ledger
# ----------------------------------------------------------------------------------------------------------


def test_holds_no_double_decision_and_no_withdrawal_after_grant(world: World) -> None:
    reg = world.registry
    request = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    reg.requests.decide(request.row.id, "granted", by=CUST_A, reason="同意", leads_to="sharing:共享交换平台")
    with pytest.raises(RegistryError):
        reg.requests.decide(request.row.id, "granted", by=CUST_A)
    with pytest.raises(RegistryError):
        reg.requests.decide(request.row.id, "refused", by=CUST_A, reason="改变主意")
    with pytest.raises(RegistryError):
        reg.requests.withdraw(request.row.id, by=OPERATOR, reason="不要了")
    with pytest.raises(RegistryError):
        reg.requests.review(request.row.id, by=CUST_A)


def test_holds_outcome_must_fit_the_kind(world: World) -> None:
    reg = world.registry
    request = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    with pytest.raises(RegistryError):
        reg.requests.decide(request.row.id, "granted", by=CUST_A)
    with pytest.raises(RegistryError):
        reg.requests.decide(request.row.id, "answered", by=CUST_A, reason="ok", leads_to="sharing:x")


def test_holds_overdue_finding_raised_once_and_history_kept_after_a_late_answer(world: World) -> None:
    reg = world.registry
    request = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    assert request.row.due_on == date(2025, 10, 14)
    world.clock.now = datetime(2025, 10, 14, 15, 59, tzinfo=UTC)  # 23:59 in China on the due day
    assert reg.requests.sweep_overdue() == []
    world.clock.now = datetime(2025, 10, 14, 16, 1, tzinfo=UTC)  # 00:01 the next day in China
    assert reg.requests.sweep_overdue() == [request.row.id]
    assert reg.requests.sweep_overdue() == []
    assert world.findings() == 1
    reg.requests.decide(request.row.id, "answered", by=CUST_A, reason="已核实更正")
    shown = reg.requests.get(request.row.id, viewer=REGULATOR).as_json()
    assert shown["late"] is True and shown["overdue"] is False and shown["finding"]
    assert [h["action"] for h in shown["history"]] == ["submitted", "overdue", "answered"]
    assert reg.requests.sweep_overdue() == [] and world.findings() == 1


def test_finding_request_decided_late_between_sweeps_never_raises_a_finding(world: World) -> None:
    """BROKEN (medium): overdue detection is a periodic sweep (every 300 s in ``keyong serve``; otherwise
    only when someone runs ``keyong request list --overdue``). A request decided after its due day but before
    the next sweep is never a finding: ``late`` is recorded on the decision, but no ``request_overdue``
    finding reaches the agency — a CLI-only instance, or a server restarted across the due day, loses all
    lateness that was cured before anyone looked. A late decision should raise the finding itself."""
    reg = world.registry
    request = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    world.clock.now = datetime(2025, 10, 20, 2, 0, tzinfo=UTC)  # due 2025-10-09: 7 working days late
    done = reg.requests.decide(request.row.id, "refused", by=CUST_A, reason="不符合共享条件").as_json()
    assert done["late"] is True
    reg.requests.sweep_overdue()
    assert world.findings() == 1


def test_holds_every_transition_is_ledgered_with_its_reason_digest(world: World) -> None:
    from core import text_sha256

    reg = world.registry
    first = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines", detail="用于公交优化")
    reg.requests.review(first.row.id, by=CUST_A, note="已受理")
    reg.requests.decide(first.row.id, "refused", by=CUST_A, reason="含敏感字段")
    second = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    reg.requests.withdraw(second.row.id, by=OPERATOR, reason="已自行核实")
    entries = [(e.action, e.subject, e.payload) for e in world.ledger()]
    assert [(a, s) for a, s, _ in entries] == [
        ("request.submitted", f"request:{first.row.id}"),
        ("request.in_review", f"request:{first.row.id}"),
        ("request.refused", f"request:{first.row.id}"),
        ("request.submitted", f"request:{second.row.id}"),
        ("request.withdrawn", f"request:{second.row.id}"),
    ]
    digests = [p["reason_sha256"] for _, _, p in entries]
    assert digests == [text_sha256(t) for t in ("用于公交优化", "已受理", "含敏感字段", "", "已自行核实")]
    history = reg.requests.get(first.row.id, viewer=REGULATOR).history
    assert [h["reason"] for h in history] == ["用于公交优化", "已受理", "含敏感字段"]


# ----------------------------------------------------------------------------------------------------------
# HTTP API and console
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Instance, TestClient, dict[str, dict[str, str]], int]]:
    instance, result = Instance.init(Settings(home=tmp_path / "home"))
    try:
        instance.registry.catalog.publish(plain_entry("bus_lines"), by=Actor("demo-custodian", "custodian"))
        client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
        headers = {role: bearer(client, key) for role, key in result.tokens.items()}
        made = client.post(
            "/requests", json={"kind": "data_application", "subject": "bus_lines"}, headers=headers["operator"]
        )
        assert made.status_code == 201, made.text
        yield instance, client, headers, int(made.json()["id"])
    finally:
        instance.close()


def test_holds_api_bad_input_is_4xx_never_500(
    served: tuple[Instance, TestClient, dict[str, dict[str, str]], int],
) -> None:
    _, client, h, rid = served
    op, cu = h["operator"], h["custodian"]
    cases = [
        client.get("/calendar/due", params={"received": "0000-01-01", "working_days": 5}, headers=op),
        client.get("/calendar/due", params={"received": "9999-12-31", "working_days": 5}, headers=op),
        client.get("/calendar/due", params={"received": "2025-09-30", "working_days": -5}, headers=op),
        client.get("/calendar/due", params={"received": "2025-09-30", "working_days": 0}, headers=op),
        client.get("/calendar/due", params={"received": "2025-09-30", "working_days": 10**30}, headers=op),
        client.get("/calendar/due", params={"received": "2025-09-30", "working_days": "5.5"}, headers=op),
        client.get("/calendar/due", params={"received": "2025-09-29T23:30:00Z", "working_days": 5}, headers=op),
        client.get(f"/requests/{2**63}", headers=op),
        client.get("/requests/0", headers=op),
        client.get("/requests/-1", headers=op),
        client.get("/requests", params={"kind": "nope"}, headers=op),
        client.get("/requests", params={"overdue": "maybe"}, headers=op),
        client.post(f"/requests/{2**40}/grant", json={}, headers=cu),
        client.post(f"/requests/{rid}/refuse", json={"reason": 123}, headers=cu),
        client.post(f"/requests/{rid}/refuse", json={"reason": ["a"]}, headers=cu),
        client.post(f"/requests/{rid}/refuse", json={"reason": "\u200b"}, headers=cu),
        client.post(f"/requests/{rid}/refuse", json={"reason": "理" * (10 * 1024 * 1024)}, headers=cu),
        client.post(f"/requests/{rid}/grant", json={"leads_to": "licence:99999999999999999999"}, headers=cu),
        client.post(f"/requests/{rid}/grant", json={"leads_to": "licence:-1"}, headers=cu),
        client.post("/requests", json={"kind": "correction", "subject": "bus_lines", "detail": None}, headers=op),
        client.post("/requests", json={"kind": "correction", "subject": ""}, headers=op),
        client.post("/requests", json={"kind": "correction", "subject": "x" * 100000}, headers=op),
        client.post("/requests", json={"kind": "correction", "subject": "bus_lines", "variant": "x"}, headers=op),
    ]
    statuses = [r.status_code for r in cases]
    assert all(400 <= s < 500 for s in statuses), statuses
    assert statuses[-4] == 422


def test_holds_api_roles_and_tokens(served: tuple[Instance, TestClient, dict[str, dict[str, str]], int]) -> None:
    instance, client, h, rid = served
    for role in ("operator", "regulator", "agency"):
        assert client.post(f"/requests/{rid}/grant", json={}, headers=h[role]).status_code == 403
    assert (
        client.post(
            "/requests", json={"kind": "correction", "subject": "bus_lines"}, headers=h["regulator"]
        ).status_code
        == 403
    )
    assert client.post(f"/requests/{rid}/withdraw", json={}, headers=h["regulator"]).status_code == 403
    assert client.post(f"/requests/{rid}/withdraw", json={}, headers=h["agency"]).status_code == 403
    forged = {"Authorization": "Bearer " + h["custodian"]["Authorization"].split()[1][:-4] + "AAAA"}
    assert client.post(f"/requests/{rid}/grant", json={}, headers=forged).status_code == 401
    assert client.get("/requests", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert instance.registry.requests.get(rid, viewer=AGENCY).row.state == "submitted"
    assert client.post(f"/requests/{rid}/grant", json={"reason": "同意"}, headers=h["custodian"]).status_code == 200
    assert client.post(f"/requests/{rid}/grant", json={}, headers=h["custodian"]).status_code == 409
    assert client.post(f"/requests/{rid}/withdraw", json={}, headers=h["operator"]).status_code == 409


def test_holds_console_escapes_html_and_needs_csrf(tmp_path: Path) -> None:
    instance, result = Instance.init(Settings(home=tmp_path / "home"))
    try:
        instance.registry.catalog.publish(plain_entry("bus_lines"), by=Actor("demo-custodian", "custodian"))
        attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
        request = instance.registry.requests.submit("correction", by=OPERATOR, subject="bus_lines", detail=attack)
        custodian = console_client(instance, result.tokens["custodian"])
        # No CSRF token: nothing changes.
        custodian.post(
            f"/console/custodian/requests/{request.row.id}/answer", data={"reason": attack}, follow_redirects=False
        )
        assert instance.registry.requests.get(request.row.id, viewer=AGENCY).row.state == "submitted"
        token = csrf_of(custodian, "/console/custodian/requests")
        custodian.post(
            f"/console/custodian/requests/{request.row.id}/answer",
            data={"csrf": token, "reason": attack},
            follow_redirects=False,
        )
        assert instance.registry.requests.get(request.row.id, viewer=AGENCY).row.state == "answered"
        for page in (f"/console/requests/{request.row.id}", "/console/custodian/requests"):
            html = custodian.get(page).text
            assert "<script>alert" not in html and "<img src=x" not in html
        regulator = console_client(instance, result.tokens["regulator"])
        html = regulator.get(f"/console/requests/{request.row.id}").text
        assert "<script>alert" not in html and "&lt;script&gt;" in html
        # reqfix24: a named provider must be a known department (finding 11), so the catalog knows this one.
        instance.registry.catalog.publish(
            plain_entry("xss_provider", provider_name=attack), by=Actor("demo-custodian", "custodian")
        )
        instance.registry.requests.submit(
            "data_demand", by=OPERATOR, subject=attack, subject_kind="catalog_entry", provider=attack
        )
        for page in ("/console/regulator/requests", "/console/operator/requests"):
            viewer = regulator if "regulator" in page else console_client(instance, result.tokens["operator"])
            html = viewer.get(page).text
            assert "<script>alert" not in html and "<img src=x" not in html
        # Another role's page.
        assert regulator.get("/console/custodian/requests", follow_redirects=False).status_code in (303, 403)
        operator = console_client(instance, result.tokens["operator"])
        assert operator.get("/console/regulator/requests", follow_redirects=False).status_code in (303, 403)
    finally:
        instance.close()


def test_finding_broken_override_turns_the_overseers_pages_into_errors(tmp_path: Path) -> None:
    """BROKEN (medium, same root as the sweep finding): with a broken calendar.json the regulator's 逾期 page,
    the agency's 时限 page, the custodian's queue, one request's page and ``GET /requests`` all fail —
    every list re-reads the file only to compute ``due_soon``. Overdue requests (whose due dates are fixed on
    their rows) become invisible exactly when the calendar is being edited. They must stay readable (at
    most ``due_soon`` unknown)."""
    from tests.totp_support import login_form

    instance, result = Instance.init(Settings(home=tmp_path / "home"))
    try:
        instance.registry.catalog.publish(plain_entry("bus_lines"), by=Actor("demo-custodian", "custodian"))
        request = instance.registry.requests.submit("correction", by=OPERATOR, subject="bus_lines")
        (instance.home / "calendar.json").write_text("{broken", encoding="utf-8")
        app = create_app(instance=instance)
        statuses = {}
        for role, page in [
            ("regulator", "/console/regulator/requests"),
            ("agency", "/console/agency/requests"),
            ("custodian", "/console/custodian/requests"),
            ("regulator", f"/console/requests/{request.row.id}"),
        ]:
            client = TestClient(app, headers={"origin": "http://testserver"}, raise_server_exceptions=False)
            login = client.post("/console/login", data=login_form(result.tokens[role], client), follow_redirects=False)
            assert login.status_code == 303
            statuses[page] = client.get(page).status_code
        api = TestClient(app, raise_server_exceptions=False)
        headers = bearer(api, result.tokens["regulator"])
        statuses["GET /requests"] = api.get("/requests", headers=headers).status_code
        assert all(s == 200 for s in statuses.values()), sorted(statuses.items())
    finally:
        instance.close()


def test_finding_request_to_a_department_that_does_not_exist_is_accepted(world: World) -> None:
    """BROKEN (low): a ``catalog_entry`` demand (or a catalog update) names its provider in free text; any
    string is taken — a department no custodian or catalog entry knows, or a near-copy of a real one
    (``双鸭山市交通运输局 `` with a full-width space, a homoglyph). Nobody can answer it; after its due day it
    raises a ``request_overdue`` finding against a department that does not exist (an operator can fill the
    agency's monitoring queue at will). The provider should be a known department (a 提供方 of the catalog or
    a custodian's organisation)."""
    with pytest.raises(RegistryError):
        world.registry.requests.submit(
            "data_demand", by=OPERATOR, subject="新数据", subject_kind="catalog_entry", provider="不存在的部门"
        )


def test_holds_an_edited_calendar_does_not_move_a_received_requests_due_date(world: World) -> None:
    """HOLDS: the due date is fixed on receipt; a later notice (everything a holiday) moves only new ones."""
    reg = world.registry
    before = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    days = [(date(2025, 10, 9) + timedelta(days=i)).isoformat() for i in range(80)]
    (world.instance.home / "calendar.json").write_text(
        json.dumps({"notices": [{"title": "全部放假", "year": 2025, "holidays": days}]}), encoding="utf-8"
    )
    assert reg.requests.get(before.row.id, viewer=AGENCY).row.due_on == date(2025, 10, 14)
    after = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    assert after.row.due_on > date(2025, 12, 27)


def test_finding_grant_leads_to_any_licence_even_one_for_other_data_and_revoked(world: World) -> None:
    """BROKEN (low/medium): ``leads_to=licence:ID`` only checks that licence ID exists. cust-a grants an
    application on bus_lines "leading to" a *revoked* licence of another operator covering only a 公安局
    dataset — the request's record (and the ledger's ``leads_to``) now claims a licence that neither covers
    its subject nor was ever in force. The licence should cover the request's dataset and be live."""
    from tests.test_registry_catalog import put_in_use

    reg = world.registry
    reg.catalog.publish(plain_entry("police_points", provider_name=POLICE, provider_code=PROVIDER_CODE), by=CUST_B)
    put_in_use(world.instance, "police_points", state="revoked")
    request = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    with pytest.raises(RegistryError):
        reg.requests.decide(request.row.id, "granted", by=CUST_A, reason="同意", leads_to="licence:1")


def test_holds_queue_by_due_time_and_regulator_sees_overdue_across_departments(world: World) -> None:
    reg = world.registry
    reg.catalog.publish(plain_entry("police_points", provider_name=POLICE, provider_code=PROVIDER_CODE), by=CUST_B)
    slow = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")  # 5 days: 10-14
    fast = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")  # 1 day: 10-09
    police = reg.requests.submit("correction", by=OPERATOR, subject="police_points")
    assert [r.row.id for r in reg.requests.list(viewer=CUST_A, open_only=True)] == [fast.row.id, slow.row.id]
    assert [r.row.id for r in reg.requests.list(viewer=CUST_B, open_only=True)] == [police.row.id]
    world.clock.now = datetime(2025, 10, 20, 2, 0, tzinfo=UTC)
    overdue = reg.requests.list(viewer=REGULATOR, overdue=True)
    assert {r.row.provider for r in overdue} == {TRANSPORT, POLICE}
    assert reg.requests.list(viewer=OPERATOR, overdue=True) and all(
        r.row.requester == OPERATOR.name for r in reg.requests.list(viewer=OPERATOR)
    )


def test_finding_provisional_due_date_is_never_recounted_and_raises_a_false_overdue(world: World) -> None:
    """BROKEN (medium): a request received on 2026-12-31 has a *provisional* due date (2027 unknown: Monday
    to Friday counted, 2027-01-07 for 5 days) and its reason says "recount once the State Council's notice
    is … listed in the override file". The host lists it (New Year's Day 2027-01-01 a holiday): the real
    due date is 2027-01-08. Nothing recounts — the row keeps 2027-01-07, still ``provisional``, so on
    2027-01-08 the request is shown overdue and a ``request_overdue`` finding is raised against a department
    that is on time."""
    reg = world.registry
    world.clock.now = datetime(2026, 12, 31, 2, 0, tzinfo=UTC)
    request = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    assert request.row.provisional and request.row.due_on == date(2027, 1, 7)
    (world.instance.home / "calendar.json").write_text(
        json.dumps(
            {
                "notices": [
                    {"title": "国务院办公厅关于2027年部分节假日安排的通知", "year": 2027, "holidays": ["2027-01-01"]}
                ]
            }
        ),
        encoding="utf-8",
    )
    world.clock.now = datetime(2027, 1, 8, 2, 0, tzinfo=UTC)  # 10:00 in China on the real due day
    shown = reg.requests.get(request.row.id, viewer=REGULATOR).as_json()
    assert shown["due"] == "2027-01-08" and shown["overdue"] is False and shown["provisional"] is False
    assert reg.requests.sweep_overdue() == []


def test_holds_concurrent_sweeps_raise_each_finding_once(world: World) -> None:
    """HOLDS: two sweeps at once (the server's loop and ``keyong request list --overdue``) never raise twice."""
    from concurrent.futures import ThreadPoolExecutor

    reg = world.registry
    ids = [reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines").row.id for _ in range(6)]
    world.clock.now = datetime(2025, 10, 20, 2, 0, tzinfo=UTC)

    def sweep() -> list[int]:
        try:
            return reg.requests.sweep_overdue()
        except Exception:  # a lock timeout is a retry next round, not a duplicate
            return []

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: sweep(), range(4)))
    raised = sorted(i for r in results for i in r)
    assert raised == sorted(set(raised))
    reg.requests.sweep_overdue()
    assert world.findings() == len(ids)
