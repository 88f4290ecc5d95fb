"""Usage monitoring (双鸭山 第三十一条, 黑龙江 第二十七条): findings, idle datasets, blocked exports and
automatic suspension, with the clock fixture moving time, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import Instance
from core import Actor, NotFoundError, PermissionDeniedError, RegistryError
from registry import Registry
from registry.licences import ScopeRefusedError
from registry.models import FindingRow, ObjectionRow, ResourceRow
from tests.conftest import FakeClock
from tests.consent_support import consent_to_access
from tests.people_support import stand
from tests.test_registry_licences import AGENCY, REGULATOR, LedgerWatch, add_dataset, grant, make_registry, uscc

ACME = Actor("acme-ops", "operator")


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    reg = make_registry(instance, clock, violation_limit=3, violation_window_hours=24)
    add_dataset(reg, "traffic", industry="交通出行")
    add_dataset(reg, "buses", industry="交通出行")
    add_dataset(reg, "loans", industry="金融")
    reg.licences.add_operator("acme-ops", uscc(1), by=AGENCY)
    stand(reg, "acme-ops")
    consent_to_access(reg)  # their custodians agreed to access (SATRE 1.5.04; tests/test_access_consent.py)
    return reg


@pytest.fixture
def ledger(instance: Instance, registry: Registry) -> LedgerWatch:
    return LedgerWatch(instance)


def _refuse(registry: Registry, dataset: str = "loans", scenario: str = "交通出行") -> str:
    with pytest.raises(ScopeRefusedError) as refused:
        registry.licences.check_scope("acme-ops", [dataset], scenario, subject="job:x")
    return refused.value.kind


def _qualification(registry: Registry) -> str:
    return registry.licences.get_operator("acme-ops").qualification


# --- automatic suspension -------------------------------------------------------------------------


def test_three_violations_in_a_day_suspend_the_operator_until_the_agency_restores_it(
    registry: Registry, clock: FakeClock, ledger: LedgerWatch
) -> None:
    """第三十一条: repeated 超范围/超目的调用 close access (关停或中断调用服务) until rectified."""
    grant(registry)
    registry.licences.add_operator("bank-ops", uscc(2), by=AGENCY)
    stand(registry, "bank-ops")
    grant(registry, "bank-ops", datasets=["loans"], scenarios=["金融风控"])  # 金融风控: a real purpose, not acme's
    ledger.mark()
    assert _refuse(registry) == "dataset_out_of_scope"
    clock.advance(hours=1)
    assert _refuse(registry, "traffic", "金融风控") == "scenario_not_licensed"
    assert _qualification(registry) == "qualified"
    clock.advance(hours=1)
    _refuse(registry)
    assert _qualification(registry) == "suspended"
    entries = ledger.since(full=True)
    assert [(e.action, e.subject, e.actor) for e in entries[-4:]] == [
        ("scope.refused", "operator:acme-ops", "acme-ops"),
        ("finding.raised", entries[-3].subject, "keyong:monitor"),
        ("operator.auto_suspended", "operator:acme-ops", "keyong:monitor"),
        ("finding.raised", entries[-1].subject, "keyong:monitor"),
    ]
    assert entries[-2].payload == {"violations": 3, "limit": 3, "window_hours": 24.0}
    kinds = [f.kind for f in registry.monitoring.list_findings(viewer=AGENCY)]
    assert kinds == ["out_of_scope", "out_of_purpose", "out_of_scope", "operator_auto_suspended"]

    # Access is closed, even for a job inside the licence; these attempts no longer count.
    assert _refuse(registry, "traffic") == "operator_suspended"
    assert [a for a, _ in ledger.since()] == ["scope.refused"]

    registry.licences.restore_operator("acme-ops", by=AGENCY, reason="整改完成")
    clock.advance(minutes=1)
    assert registry.licences.check_scope("acme-ops", ["traffic"], "交通出行").licence_id
    _refuse(registry)
    _refuse(registry)
    assert _qualification(registry) == "qualified"  # the violations before the suspension were consumed by it
    _refuse(registry)
    assert _qualification(registry) == "suspended"


def test_violations_spread_beyond_the_window_do_not_suspend(registry: Registry, clock: FakeClock) -> None:
    grant(registry)
    for _ in range(5):
        _refuse(registry)
        clock.advance(hours=13)  # never three within 24 hours
    assert _qualification(registry) == "qualified"
    assert len(registry.monitoring.list_violations(viewer=REGULATOR, operator="acme-ops")) == 5


def test_objections_and_withdrawn_data_do_not_count_towards_suspension(registry: Registry, clock: FakeClock) -> None:
    """A refusal that is not the operator's doing is logged but neither raises a finding nor suspends."""
    grant(registry)
    with registry.recorder.change(AGENCY) as change:
        resource = change.session.scalar(select(ResourceRow).where(ResourceRow.name == "traffic"))
        assert resource is not None
        change.session.add(
            ObjectionRow(
                target_kind="resource", target_id=resource.id, filed_by="x", filed_role="custodian", reason="r"
            )
        )
    for _ in range(4):
        assert _refuse(registry, "traffic") == "dataset_under_objection"
    assert _qualification(registry) == "qualified"
    assert registry.monitoring.list_findings(viewer=AGENCY) == []


# --- idle datasets --------------------------------------------------------------------------------


def test_a_dataset_unused_for_three_months_raises_one_finding(
    registry: Registry, clock: FakeClock, ledger: LedgerWatch
) -> None:
    """第三十一条: 数据3个月未调用 — counted from activation when never used, once per idle stretch."""
    view = grant(registry, datasets=["traffic", "buses"])
    clock.advance(days=60)
    registry.licences.check_scope("acme-ops", ["buses"], "交通出行")
    clock.advance(days=29)
    assert registry.monitoring.scan_idle(by=AGENCY) == []
    clock.advance(days=1)  # 90 days since activation; buses used 30 days ago
    ledger.mark()
    (finding,) = registry.monitoring.scan_idle(by=AGENCY)
    assert (finding.kind, finding.licence_id, finding.operator) == ("unused_3_months", view.id, "acme-ops")
    assert "'traffic'" in finding.detail and "90 days" in finding.detail
    assert ledger.since() == [("finding.raised", f"finding:{finding.id}")]
    clock.advance(days=10)
    assert registry.monitoring.scan_idle(by=AGENCY) == []  # not repeated
    clock.advance(days=50)  # buses now idle 90 days too
    (second,) = registry.monitoring.scan_idle(by=AGENCY)
    assert "'buses'" in second.detail

    registry.licences.check_scope("acme-ops", ["traffic"], "交通出行")  # used again: a new stretch begins
    clock.advance(days=90)
    idle = registry.monitoring.scan_idle(by=AGENCY)
    assert ["'traffic'" in f.detail for f in idle] == [True]


def test_idle_time_counts_only_while_the_licence_is_active(registry: Registry, clock: FakeClock) -> None:
    """A licence in 公示 or suspended is not idle; a restore starts the count again."""
    pending = grant(registry, publicity_days=30)
    clock.advance(days=100)
    assert registry.monitoring.scan_idle(by=AGENCY) == []
    registry.licences.activate_due(by=AGENCY)
    registry.licences.transition(pending.id, "suspended", by=AGENCY, reason="整改")
    clock.advance(days=100)
    assert registry.monitoring.scan_idle(by=AGENCY) == []
    registry.licences.transition(pending.id, "active", by=AGENCY, reason="整改完成")
    clock.advance(days=89)
    assert registry.monitoring.scan_idle(by=AGENCY) == []
    clock.advance(days=1)
    assert len(registry.monitoring.scan_idle(by=AGENCY)) == 1
    with pytest.raises(PermissionDeniedError):
        registry.monitoring.scan_idle(by=REGULATOR)


# --- blocked exports ------------------------------------------------------------------------------


def test_repeated_blocked_exports_raise_a_finding(registry: Registry, clock: FakeClock, ledger: LedgerWatch) -> None:
    """A security anomaly (第三十一条: 检测数据使用存在安全风险异常): 3 blocks within a week."""
    view = grant(registry)
    ledger.mark()
    assert registry.monitoring.record_blocked_export("acme-ops", subject="job:1", licence_id=view.id, by=AGENCY) is None
    clock.advance(days=3)
    assert registry.monitoring.record_blocked_export("acme-ops", subject="job:2", by=AGENCY) is None
    clock.advance(days=3)
    finding = registry.monitoring.record_blocked_export("acme-ops", subject="job:3", by=ACME)
    assert finding is not None and finding.kind == "repeated_blocked_exports" and "job:3" in finding.detail
    assert ledger.since() == [("finding.raised", f"finding:{finding.id}")]
    assert registry.monitoring.record_blocked_export("acme-ops", subject="job:4", by=AGENCY) is None  # still open
    assert _qualification(registry) == "qualified"  # blocked exports do not suspend by themselves

    registry.monitoring.resolve_finding(finding.id, by=AGENCY, resolution="约谈运营机构")
    clock.advance(days=8)  # the window has moved on: one block is not repeated
    assert registry.monitoring.record_blocked_export("acme-ops", subject="job:5", by=AGENCY) is None
    with pytest.raises(NotFoundError):
        registry.monitoring.record_blocked_export("acme-ops", subject="job:6", by=Actor("other-ops", "operator"))
    with pytest.raises(NotFoundError):
        registry.monitoring.record_blocked_export("ghost-ops", subject="job:6", by=AGENCY)


# --- findings -------------------------------------------------------------------------------------


def test_the_agency_resolves_findings_and_regulators_only_read_them(registry: Registry, ledger: LedgerWatch) -> None:
    grant(registry)
    _refuse(registry)
    (finding,) = registry.monitoring.list_findings(viewer=REGULATOR, state="open")
    with pytest.raises(PermissionDeniedError):
        registry.monitoring.resolve_finding(finding.id, by=REGULATOR, resolution="看过了")
    with pytest.raises(PermissionDeniedError):
        registry.monitoring.list_findings(viewer=ACME)
    with pytest.raises(RegistryError, match="needs a resolution"):
        registry.monitoring.resolve_finding(finding.id, by=AGENCY, resolution="")
    ledger.mark()
    resolved = registry.monitoring.resolve_finding(finding.id, by=AGENCY, resolution="已限期整改")
    assert (resolved.state, resolved.resolved_by, resolved.resolution) == ("resolved", "demo-agency", "已限期整改")
    assert ledger.since() == [("finding.resolved", f"finding:{finding.id}")]
    with pytest.raises(RegistryError, match="already resolved"):
        registry.monitoring.resolve_finding(finding.id, by=AGENCY, resolution="again")
    with pytest.raises(NotFoundError):
        registry.monitoring.resolve_finding(9999, by=AGENCY, resolution="x")
    assert registry.monitoring.list_findings(viewer=AGENCY, state="open") == []
    assert [f.id for f in registry.monitoring.list_findings(viewer=AGENCY, operator="acme-ops")] == [finding.id]
    assert registry.monitoring.get_finding(finding.id, viewer=REGULATOR).state == "resolved"
    with registry.recorder.read() as session:
        assert session.scalars(select(FindingRow)).one().resolved_at is not None


def test_idle_scan_runs_over_many_licences_quickly(registry: Registry, clock: FakeClock) -> None:
    """Every dataset of every active licence is looked at; each idle one once."""
    for _ in range(5):
        grant(registry, datasets=["traffic", "buses"])
    clock.advance(days=91)
    assert len(registry.monitoring.scan_idle(by=AGENCY)) == 10
    assert registry.monitoring.scan_idle(by=AGENCY) == []
