"""Red team 24's fixes, beyond its own tests (reqfix24): what the fixes record and the cases around them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import Instance, Settings
from core import Actor, PermissionDeniedError, RegistryError
from registry import Registry, RegistryConfig
from registry.models import FindingRow
from tests.conftest import FakeClock
from tests.console_support import console_client
from tests.test_registry_catalog import OPERATOR_CODE, PROVIDER_CODE, plain_entry, put_in_use

TRANSPORT = "双鸭山市交通运输局"
POLICE = "双鸭山市公安局"
CUST_A = Actor("cust-a", "custodian")
CUST_CODE = Actor("cust-code", "custodian")  # its organisation recorded by 统一社会信用代码
OPERATOR = Actor("demo-operator", "operator")
AGENCY = Actor("demo-agency", "agency")


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.instance, self.result = Instance.init(Settings(home=tmp_path / "home"))
        self.clock = FakeClock()
        self.clock.now = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
        self.custodians: dict[str, str | None] = {"cust-a": None, "cust-code": PROVIDER_CODE}
        config = RegistryConfig(home=self.instance.home, clock=self.clock, vault_key=self.instance.keys.vault_key)
        self.registry = Registry(
            self.instance.engine, self.instance.ledger, config, custodians=lambda: dict(self.custodians)
        )
        self.registry.catalog.publish(plain_entry("bus_lines"), by=CUST_A)

    def findings(self, kind: str) -> list[str]:
        with Session(self.instance.engine) as session:
            return list(session.scalars(select(FindingRow.detail).where(FindingRow.kind == kind)))

    def actions(self) -> list[str]:
        return [e.action for e in self.instance.ledger.entries(after=0, limit=5000) if e.action.startswith("request.")]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.instance.close()


def test_a_decoy_entry_with_ones_own_code_makes_the_code_prove_nothing(world: World) -> None:
    reg = world.registry
    # bus_lines carries PROVIDER_CODE: cust-code answers for 交通运输局 while every entry naming it agrees.
    demand = reg.requests.submit(
        "data_demand", by=OPERATOR, subject="新数据", subject_kind="catalog_entry", provider=TRANSPORT
    )
    assert [r.row.id for r in reg.requests.list(viewer=CUST_CODE)] == [demand.row.id]
    # Another entry naming 交通运输局 with another code: the code no longer proves the department.
    reg.catalog.publish(plain_entry("decoy", provider_code=OPERATOR_CODE), by=CUST_A)
    with pytest.raises(PermissionDeniedError):
        reg.requests.decide(demand.row.id, "refused", by=CUST_CODE, reason="不符合条件")
    # A dataset request stays with the dataset's custodians (registry.egress.is_custodian).
    app = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    assert reg.requests.decide(app.row.id, "refused", by=CUST_CODE, reason="不符合条件").row.state == "refused"


def test_kinds_by_role_and_known_departments(world: World) -> None:
    reg = world.registry
    with pytest.raises(PermissionDeniedError):
        reg.requests.submit("catalog_update", by=CUST_A, subject="bus_lines")
    with pytest.raises(PermissionDeniedError):  # the host acts for a named operator: the operator's kinds
        reg.requests.submit(
            "catalog_update", by=Actor.host(), subject="bus_lines", requester="x", requester_role="operator"
        )
    assert reg.requests.submit("catalog_update", by=AGENCY, subject="bus_lines").row.provider == TRANSPORT
    with pytest.raises(RegistryError, match="no department"):
        reg.requests.submit(
            "data_demand", by=OPERATOR, subject="x", subject_kind="catalog_entry", provider="双鸭山市\u3000交通运输局"
        )
    with pytest.raises(RegistryError, match="invisible"):
        reg.requests.submit("correction", by=OPERATOR, subject="bus_lines", detail="a\u202eb")
    with pytest.raises(RegistryError, match="invisible"):
        reg.requests.submit(
            "data_demand", by=OPERATOR, subject="x\u200b", subject_kind="catalog_entry", provider=TRANSPORT
        )


def test_a_late_withdrawal_raises_the_finding_in_the_same_change(world: World) -> None:
    reg = world.registry
    request = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    world.clock.now = datetime(2025, 10, 20, 2, 0, tzinfo=UTC)
    done = reg.requests.withdraw(request.row.id, by=OPERATOR, reason="等不及了").as_json()
    assert done["finding"] and done["state"] == "withdrawn"
    assert world.actions()[-2:] == ["request.overdue", "request.withdrawn"]
    assert reg.requests.sweep_overdue() == [] and len(world.findings("request_overdue")) == 1


def test_a_provisional_due_date_is_recounted_and_ledgered(world: World) -> None:
    reg = world.registry
    world.clock.now = datetime(2026, 12, 31, 2, 0, tzinfo=UTC)
    request = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    assert reg.requests.recount() == []  # 2027 still unknown: nothing moves
    notice = {"title": "2027年节假日安排", "year": 2027, "holidays": ["2027-01-01"]}
    (world.instance.home / "calendar.json").write_text(json.dumps({"notices": [notice]}), encoding="utf-8")
    shown = reg.requests.get(request.row.id, viewer=AGENCY).as_json()
    assert (shown["due"], shown["provisional"], shown["provisional_reason"]) == ("2027-01-08", False, None)
    assert shown["history"][-1]["action"] == "recounted" and shown["history"][-1]["actor"] == "keyong:monitor"
    entry = [e for e in world.instance.ledger.entries(after=0, limit=5000) if e.action == "request.recounted"]
    assert len(entry) == 1 and entry[0].payload["old_due"] == "2027-01-07" and entry[0].payload["due"] == "2027-01-08"
    assert reg.requests.recount() == []  # once


def test_a_broken_calendar_is_one_finding_and_waits_for_provisional_rows(world: World) -> None:
    reg = world.registry
    world.clock.now = datetime(2026, 12, 31, 2, 0, tzinfo=UTC)
    provisional = reg.requests.submit("correction", by=OPERATOR, subject="bus_lines")
    (world.instance.home / "calendar.json").write_text("{broken", encoding="utf-8")
    world.clock.now = datetime(2027, 1, 20, 2, 0, tzinfo=UTC)
    assert reg.requests.sweep_overdue() == [] and reg.requests.sweep_overdue() == []
    assert len(world.findings("calendar_override_unreadable")) == 1
    shown = reg.requests.get(provisional.row.id, viewer=AGENCY).as_json()
    assert shown["overdue"] and "calendar_problem" in shown
    page = console_client(world.instance, world.result.tokens["regulator"]).get("/console/regulator/requests")
    assert page.status_code == 200 and 'id="calendar-problem"' in page.text


def test_a_grant_leads_to_the_requesters_live_licence_covering_its_dataset(world: World) -> None:
    reg = world.registry
    put_in_use(world.instance, "bus_lines")  # licence 1 of operator "acme", active, covering bus_lines
    theirs = reg.requests.submit("data_application", by=OPERATOR, subject="bus_lines")
    with pytest.raises(RegistryError, match="requester"):
        reg.requests.decide(theirs.row.id, "granted", by=CUST_A, leads_to="licence:1")
    acme = reg.requests.submit("data_application", by=Actor("acme", "operator"), subject="bus_lines")
    granted = reg.requests.decide(acme.row.id, "granted", by=CUST_A, leads_to="licence:1").as_json()
    assert granted["leads_to"] == "licence:1"
    assert date.fromisoformat(granted["due"]) == date(2025, 10, 9)
