"""Operators, licences and scope checks, each rule a scenario, on SQLite and PostgreSQL.

Catalog rows are inserted directly through the ORM (:func:`add_dataset`) so these tests do not
depend on the catalog's own methods.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import Instance
from core import Actor, NotFoundError, PermissionDeniedError, RegistryError
from desensitize.identifiers import uscc_check_char
from registry import FeeClass, LicenceMode, LicenceState, Registry, RegistryConfig
from registry.licences import TRANSITIONS, LicenceView, ScopeRefusedError
from registry.models import (
    DestructionRow,
    FindingRow,
    ItemRow,
    LicenceDatasetRow,
    ObjectionRow,
    ResourceRow,
    UsageRow,
    VersionRow,
    ViolationRow,
)
from tests.conftest import FakeClock
from tests.consent_support import consent_to_access
from tests.people_support import stand

AGENCY = Actor("demo-agency", "agency")
REGULATOR = Actor("demo-regulator", "regulator")
CUSTODIAN = Actor("demo-custodian", "custodian")


# --- helpers shared by the monitoring and API tests -----------------------------------------------


def uscc(n: int) -> str:
    """A valid 统一社会信用代码 (GB 32100 check character computed)."""
    first17 = f"91230500MA{n:07d}"
    return first17 + uscc_check_char(first17)


def add_dataset(
    registry: Registry,
    name: str,
    *,
    industry: str = "交通出行",
    level: str = "L3",
    desensitized: bool = True,
    operation_status: str = "可授权运营",
    content_sha256: str = "0" * 64,
) -> int:
    """A published catalog entry with one item and (by default) a desensitized version; its id.

    ``content_sha256`` is the copy's recorded plaintext digest: every worker checks a copy against it
    before a mount (issue 19), so a fixture that runs jobs passes the real one (``job_worker_proc.licensed``);
    the placeholder only suits tests that never mount the copy."""
    with registry.recorder.change(Actor.host()) as change:
        row = ResourceRow(
            name=name,
            title=f"{name} 数据",
            data_format="parquet",
            industry=industry,
            provider_name="双鸭山市交通运输局",
            provider_code=uscc(9999),
            sharing_type="有条件共享",
            opening_type="有条件开放",
            operation_status=operation_status,
            level=level,
            created_by="test",
            items=[ItemRow(position=0, name="trips", format="int", level=level)],
        )
        change.session.add(row)
        change.session.flush()
        if desensitized:
            change.session.add(
                VersionRow(
                    resource_id=row.id,
                    version=1,
                    kind="desensitized",
                    rows=10,
                    columns=[{"name": "trips", "type": "int64"}],
                    content_sha256=content_sha256,
                    path=f"datasets/{name}/v1.parquet",
                    created_by="test",
                )
            )
        return row.id


def make_registry(instance: Instance, clock: FakeClock, **config: Any) -> Registry:
    return Registry(
        instance.engine,
        instance.ledger,
        RegistryConfig(home=instance.home, clock=clock, vault_key=instance.keys.vault_key, **config),
    )


class LedgerWatch:
    """What each change appended: ``mark()`` then ``since()`` gives (action, subject) pairs."""

    def __init__(self, instance: Instance) -> None:
        self.ledger = instance.ledger
        self.seq = 0
        self.mark()

    def mark(self) -> None:
        self.seq = self.ledger.size()

    def since(self, *, full: bool = False) -> list[Any]:
        found = self.ledger.entries(after=self.seq, limit=1000)
        self.mark()
        return found if full else [(e.action, e.subject) for e in found]


def grant(registry: Registry, operator: str = "acme-ops", **overrides: Any) -> LicenceView:
    args: dict[str, Any] = {
        "datasets": ["traffic"],
        "scenarios": ["交通出行"],
        "valid_until": registry.config.now().date() + timedelta(days=365),
        "publicity_days": 0,
        "by": AGENCY,
        "reason": "授权运营协议 2026-01",
    }
    args.update(overrides)
    return registry.licences.grant(operator, **args)


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    reg = make_registry(instance, clock)
    add_dataset(reg, "traffic", industry="交通出行")
    add_dataset(reg, "buses", industry="交通出行")
    add_dataset(reg, "loans", industry="金融")
    reg.licences.add_operator("acme-ops", uscc(1), by=AGENCY)
    reg.licences.add_operator("other-ops", uscc(2), by=AGENCY)
    stand(reg, "acme-ops", "other-ops")  # their logins stand: identity checked, terms accepted, trained (issue 22)
    consent_to_access(reg)  # their custodians agreed to access (SATRE 1.5.04; tests/test_access_consent.py)
    return reg


@pytest.fixture
def ledger(instance: Instance, registry: Registry) -> LedgerWatch:
    return LedgerWatch(instance)


# --- operators ------------------------------------------------------------------------------------


def test_an_operator_needs_a_valid_uscc_and_is_ledgered(registry: Registry, ledger: LedgerWatch) -> None:
    """第四十八条: an operator is a company identified by a checked 统一社会信用代码."""
    view = registry.licences.add_operator("new-ops", uscc(3), by=AGENCY)
    assert view.qualification == "qualified" and view.uscc == uscc(3)
    entries = ledger.since(full=True)
    assert [(e.action, e.subject, e.payload) for e in entries] == [
        ("operator.added", "operator:new-ops", {"uscc": uscc(3)})
    ]
    assert entries[0].actor == "demo-agency"

    bad = uscc(4)[:-1] + ("0" if uscc(4)[-1] != "0" else "1")
    for name, code, message in [
        ("bad-ops", bad, "not a valid 统一社会信用代码"),
        ("bad-ops", uscc(4).lower(), "not a valid"),
        ("new-ops", uscc(5), "already exists"),
        ("dup-ops", uscc(3), "already exists"),
        ("Bad Name", uscc(6), "principal's name"),
    ]:
        with pytest.raises(RegistryError, match=message):
            registry.licences.add_operator(name, code, by=AGENCY)
    with pytest.raises(PermissionDeniedError):
        registry.licences.add_operator("rogue-ops", uscc(7), by=Actor("acme-ops", "operator"))
    assert ledger.since() == []


def test_suspending_and_restoring_an_operator(registry: Registry, ledger: LedgerWatch) -> None:
    suspended = registry.licences.suspend_operator("acme-ops", by=AGENCY, reason="安全检查未通过")
    assert suspended.qualification == "suspended" and suspended.suspended_reason == "安全检查未通过"
    with pytest.raises(RegistryError, match="already suspended"):
        registry.licences.suspend_operator("acme-ops", by=AGENCY, reason="again")
    with pytest.raises(RegistryError, match="restore it before granting"):
        grant(registry)
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.licences.restore_operator("acme-ops", by=AGENCY, reason=" ")
    restored = registry.licences.restore_operator("acme-ops", by=AGENCY, reason="整改完成")
    assert restored.qualification == "qualified" and restored.suspended_reason == ""
    with pytest.raises(RegistryError, match="not suspended"):
        registry.licences.restore_operator("acme-ops", by=AGENCY, reason="again")
    assert ledger.since() == [
        ("operator.suspended", "operator:acme-ops"),
        ("operator.restored", "operator:acme-ops"),
    ]
    assert [o.name for o in registry.licences.list_operators(viewer=REGULATOR)] == ["acme-ops", "other-ops"]
    with pytest.raises(NotFoundError):
        registry.licences.get_operator("other-ops", viewer=Actor("acme-ops", "operator"))


# --- granting -------------------------------------------------------------------------------------


def test_a_licence_is_publicised_before_it_becomes_active(
    registry: Registry, ledger: LedgerWatch, clock: FakeClock
) -> None:
    """第四十八条: 公示 first; activation before the period ends is refused, afterwards it activates."""
    view = grant(registry, publicity_days=7)
    assert view.state == "publicity"
    assert view.publicity_ends_at == clock.now + timedelta(days=7)
    assert [(e.from_state, e.to_state) for e in view.events] == [(None, "draft"), ("draft", "publicity")]
    assert ledger.since() == [
        ("licence.granted", f"licence:{view.id}"),
        ("licence.publicity_started", f"licence:{view.id}"),
    ]

    with pytest.raises(RegistryError, match="in publicity"):
        registry.licences.transition(view.id, "active", by=AGENCY, reason="too early")
    assert registry.licences.activate_due(by=AGENCY) == []
    clock.advance(days=7)
    activated = registry.licences.activate_due(by=AGENCY)
    assert [v.id for v in activated] == [view.id] and activated[0].state == "active"
    assert ledger.since() == [("licence.activated", f"licence:{view.id}")]


def test_publicity_days_default_from_settings_and_zero_activates_at_once(
    instance: Instance, clock: FakeClock, ledger: LedgerWatch
) -> None:
    registry = make_registry(instance, clock, publicity_days=5)
    at_once = grant(registry)  # publicity_days=0
    assert at_once.state == "active" and at_once.publicity_ends_at is None
    assert ledger.since() == [
        ("licence.granted", f"licence:{at_once.id}"),
        ("licence.activated", f"licence:{at_once.id}"),
    ]
    default = grant(registry, publicity_days=None)
    assert default.state == "publicity" and default.publicity_ends_at == clock.now + timedelta(days=5)


def test_the_granted_licence_reads_as_the_contract_says(registry: Registry, ledger: LedgerWatch) -> None:
    view = grant(
        registry,
        datasets=["traffic", "buses"],
        epsilon={"traffic": 1.5},
        fee_class=FeeClass.COMMERCIAL,
        price_cents=990_00,
        scenarios=["交通出行", "城市规划"],
    )
    data = view.as_json()
    assert set(data) == {
        "id", "operator", "mode", "domains", "scenarios", "datasets", "valid_from", "valid_until",
        "fee_class", "price_cents", "state", "publicity_ends_at", "events", "linkage",
    }  # fmt: skip
    assert data["operator"] == "acme-ops" and data["mode"] == "依场景授权"
    assert sorted((d["name"], d["epsilon_budget"], d["epsilon_spent"]) for d in data["datasets"]) == [
        ("buses", 3.0, 0.0),
        ("traffic", 1.5, 0.0),
    ]
    assert data["fee_class"] == "经营性" and data["price_cents"] == 99000
    assert data["valid_from"] == "2026-12-01" and data["valid_until"] == "2027-12-01"
    granted = ledger.since(full=True)[0]
    assert granted.payload["datasets"] == {"traffic": 1.5, "buses": 3.0}
    assert granted.payload["fee_class"] == "经营性" and granted.payload["publicity_days"] == 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"fee_class": "经营性"}, "needs a positive price"),
        ({"fee_class": "经营性", "price_cents": 0}, "needs a positive price"),
        ({"fee_class": "公益", "price_cents": 100}, "takes no price"),
        ({"fee_class": "免费"}, "unknown fee class"),
        ({"mode": "随便授权"}, "unknown licence mode"),
        ({"scenarios": [" "]}, "application scenarios"),
        ({"datasets": ["nowhere"]}, "no dataset named 'nowhere'"),
        ({"valid_until": date(2026, 11, 30)}, "already passed"),
        ({"valid_from": date(2027, 2, 1), "valid_until": date(2027, 1, 1)}, "before valid_from"),
        ({"epsilon": 0.0}, "must be a positive number"),
        ({"epsilon": {"loans": 1.0}}, "outside the licence"),
        ({"publicity_days": -1}, "cannot be negative"),
        ({"reason": ""}, "needs a reason"),
        ({"domains": ["金融"]}, "依场景授权 names datasets"),
        ({"datasets": []}, "needs the datasets"),
    ],
)
def test_a_grant_is_refused_when_its_terms_do_not_hold(
    instance: Instance, clock: FakeClock, overrides: dict[str, Any], message: str
) -> None:
    """Fee class (第四十四条), mode (第四十六条), dates, budgets and reasons are checked before anything is written."""
    registry = make_registry(instance, clock)
    add_dataset(registry, "traffic")
    add_dataset(registry, "loans", industry="金融")
    registry.licences.add_operator("acme-ops", uscc(1), by=AGENCY)
    before = instance.ledger.size()
    with pytest.raises(RegistryError, match=message):
        grant(registry, **overrides)
    assert instance.ledger.size() == before
    assert registry.licences.list(viewer=AGENCY) == []


def test_only_licensable_datasets_can_be_granted(registry: Registry) -> None:
    """eligibility.licensing_refusal: no desensitized copy of L3 data, or not admitted to 授权运营."""
    add_dataset(registry, "raw-census", desensitized=False)
    add_dataset(registry, "internal", operation_status="未纳入授权运营")
    with pytest.raises(RegistryError, match="only through a desensitized version"):
        grant(registry, datasets=["traffic", "raw-census"])
    with pytest.raises(RegistryError, match="not admitted to authorized operation"):
        grant(registry, datasets=["internal"])
    with pytest.raises(PermissionDeniedError):
        grant(registry, by=Actor("acme-ops", "operator"))
    with pytest.raises(PermissionDeniedError):
        grant(registry, by=REGULATOR)


def test_whole_and_domain_modes_choose_their_datasets(registry: Registry) -> None:
    """第四十六条: 整体授权 covers every licensable dataset, 分领域授权 those of its 行业分类."""
    add_dataset(registry, "raw-census", desensitized=False)  # not licensable: left out of 整体授权
    whole = grant(registry, mode=LicenceMode.WHOLE, datasets=[])
    assert sorted(d.name for d in whole.datasets) == ["buses", "loans", "traffic"]
    domain = grant(registry, mode="分领域授权", datasets=[], domains=["交通出行"])
    assert sorted(d.name for d in domain.datasets) == ["buses", "traffic"] and domain.domains == ["交通出行"]
    with pytest.raises(RegistryError, match="outside the licence's domains"):
        grant(registry, mode="分领域授权", datasets=["loans"], domains=["交通出行"])
    with pytest.raises(RegistryError, match="needs the domains"):
        grant(registry, mode="分领域授权", datasets=[])
    with pytest.raises(RegistryError, match="name no datasets"):
        grant(registry, mode="整体授权", datasets=["traffic"])
    with pytest.raises(RegistryError, match="no licensable dataset in the domains"):
        grant(registry, mode="分领域授权", datasets=[], domains=["教育"])


# --- the state machine ----------------------------------------------------------------------------


def _licence_in(registry: Registry, clock: FakeClock, state: LicenceState) -> int:
    """A fresh licence in ``state`` (its publicity not ended, its validity not passed)."""
    if state == LicenceState.DRAFT:
        return grant(registry, publicity_days=7, draft=True).id
    if state == LicenceState.PUBLICITY:
        return grant(registry, publicity_days=7).id
    view = grant(registry)
    if state == LicenceState.SUSPENDED:
        registry.licences.transition(view.id, "suspended", by=AGENCY, reason="整改")
    elif state == LicenceState.REVOKED:
        registry.licences.transition(view.id, "revoked", by=AGENCY, reason="违约")
    elif state == LicenceState.EXPIRED:
        short = grant(registry, valid_until=clock.now.date())
        clock.advance(days=1)
        registry.licences.expire_due(by=AGENCY)
        clock.advance(days=-1)
        return short.id
    return view.id


LEGAL = {
    LicenceState.DRAFT: {LicenceState.PUBLICITY, LicenceState.REVOKED},
    LicenceState.PUBLICITY: {LicenceState.REVOKED},
    LicenceState.ACTIVE: {LicenceState.SUSPENDED, LicenceState.REVOKED},
    LicenceState.SUSPENDED: {LicenceState.ACTIVE, LicenceState.REVOKED},
    LicenceState.REVOKED: set(),
    LicenceState.EXPIRED: set(),
}
"""What is legal while publicity runs and the licence is within its dates (the usual case)."""


def test_every_transition_is_checked_table_driven(registry: Registry, clock: FakeClock, instance: Instance) -> None:
    """Each (from, to) pair: the legal ones succeed with one event and one ledger entry (plus the
    destruction entry when the licence ends); every other one is refused and leaves no trace."""
    for source in LicenceState:
        for target in LicenceState:
            licence_id = _licence_in(registry, clock, source)
            before_events = len(registry.licences.get(licence_id, viewer=AGENCY).events)
            before = instance.ledger.size()
            if target in LEGAL[source]:
                view = registry.licences.transition(licence_id, target, by=AGENCY, reason="表驱动")
                assert view.state == target, (source, target)
                assert len(view.events) == before_events + 1
                actions = [e.action for e in instance.ledger.entries(after=before)]
                expected = {
                    LicenceState.PUBLICITY: ["licence.publicity_started"],
                    LicenceState.SUSPENDED: ["licence.suspended"],
                    LicenceState.REVOKED: ["licence.revoked", "licence.destroyed"],
                    LicenceState.ACTIVE: ["licence.restored"],
                }[target]
                assert actions == expected, (source, target)
            else:
                with pytest.raises(RegistryError):
                    registry.licences.transition(licence_id, target, by=AGENCY, reason="表驱动")
                after = registry.licences.get(licence_id, viewer=AGENCY)
                assert after.state == source and len(after.events) == before_events, (source, target)
                assert instance.ledger.size() == before, (source, target)
    assert TRANSITIONS[LicenceState.REVOKED] == frozenset() == TRANSITIONS[LicenceState.EXPIRED]


def test_conditional_transitions(registry: Registry, clock: FakeClock, ledger: LedgerWatch) -> None:
    """draft→active only with 0 publicity days; →expired only after valid_until; restore needs a reason."""
    zero = grant(registry, draft=True)
    assert zero.state == "draft"
    with pytest.raises(RegistryError, match="publicity period of 0 days"):
        registry.licences.transition(zero.id, "publicity", by=AGENCY, reason="公示")
    assert registry.licences.transition(zero.id, "active", by=AGENCY, reason="无需公示").state == "active"

    seven = grant(registry, draft=True, publicity_days=7)
    with pytest.raises(RegistryError, match="must be publicised"):
        registry.licences.transition(seven.id, "active", by=AGENCY, reason="skip")
    with pytest.raises(RegistryError, match="revoke it to end it earlier"):
        registry.licences.transition(zero.id, "expired", by=AGENCY, reason="early")
    registry.licences.transition(zero.id, "suspended", by=AGENCY, reason="整改")
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.licences.transition(zero.id, "active", by=AGENCY, reason="")
    with pytest.raises(RegistryError, match="unknown licence state"):
        registry.licences.transition(zero.id, "paused", by=AGENCY, reason="x")
    with pytest.raises(PermissionDeniedError):
        registry.licences.transition(zero.id, "active", by=Actor("acme-ops", "operator"), reason="let me in")
    ledger.mark()
    restored = registry.licences.transition(zero.id, "active", by=AGENCY, reason="整改完成")
    assert restored.events[-1].from_state == "suspended" and restored.events[-1].reason == "整改完成"
    assert ledger.since() == [("licence.restored", f"licence:{zero.id}")]


def test_an_open_objection_holds_a_licence_in_publicity(
    registry: Registry, clock: FakeClock, instance: Instance
) -> None:
    """第四十八条: 公示无异议的 — an open objection against the licence blocks activation."""
    view = grant(registry, publicity_days=3)
    with registry.recorder.change(AGENCY) as change:
        objection = ObjectionRow(
            target_kind="licence", target_id=view.id, filed_by="citizen", filed_role="custodian", reason="不公平遴选"
        )
        change.session.add(objection)
    clock.advance(days=4)
    assert registry.licences.activate_due(by=AGENCY) == []
    with pytest.raises(RegistryError, match=r"objection \d+ against licence \d+ is open"):
        registry.licences.transition(view.id, "active", by=AGENCY, reason="ignore it")
    with registry.recorder.change(AGENCY) as change:
        change.session.get(ObjectionRow, objection.id).state = "resolved"  # type: ignore[union-attr]
    assert [v.id for v in registry.licences.activate_due(by=AGENCY)] == [view.id]


def test_suspend_every_active_licence_of_an_operator(registry: Registry, ledger: LedgerWatch) -> None:
    a = grant(registry)
    b = grant(registry, datasets=["buses"])
    pending = grant(registry, publicity_days=7)
    ledger.mark()
    suspended = registry.licences.suspend("acme-ops", by=AGENCY, reason="超范围调用整改")
    assert [v.id for v in suspended] == [a.id, b.id] and {v.state for v in suspended} == {"suspended"}
    assert registry.licences.get(pending.id, viewer=AGENCY).state == "publicity"
    assert ledger.since() == [("licence.suspended", f"licence:{a.id}"), ("licence.suspended", f"licence:{b.id}")]
    with pytest.raises(RegistryError, match="no active licence"):
        registry.licences.suspend("acme-ops", by=AGENCY, reason="again")


def test_licences_expire_after_their_last_day(registry: Registry, clock: FakeClock, ledger: LedgerWatch) -> None:
    view = grant(registry, valid_until=clock.now.date() + timedelta(days=10))
    clock.advance(days=10)
    assert registry.licences.expire_due(by=AGENCY) == []  # the last day is still valid
    clock.advance(days=1)
    ledger.mark()
    expired = registry.licences.expire_due(by=AGENCY)
    assert [(v.id, v.state) for v in expired] == [(view.id, "expired")]
    assert ledger.since() == [("licence.expired", f"licence:{view.id}"), ("licence.destroyed", f"licence:{view.id}")]
    with pytest.raises(RegistryError, match="nothing follows"):
        registry.licences.transition(view.id, "active", by=AGENCY, reason="revive")


# --- visibility -----------------------------------------------------------------------------------


def test_an_operator_reads_only_its_own_licences(registry: Registry) -> None:
    mine = grant(registry, "acme-ops")
    theirs = grant(registry, "other-ops")
    acme = Actor("acme-ops", "operator")
    assert registry.licences.get(mine.id, viewer=acme).id == mine.id
    with pytest.raises(NotFoundError, match=f"no licence {theirs.id}"):
        registry.licences.get(theirs.id, viewer=acme)
    assert [v.id for v in registry.licences.list(viewer=acme)] == [mine.id]
    assert registry.licences.list(viewer=acme, operator="other-ops") == []
    assert [v.id for v in registry.licences.list(viewer=REGULATOR)] == [mine.id, theirs.id]
    assert [v.id for v in registry.licences.list(viewer=AGENCY, operator="other-ops")] == [theirs.id]
    assert registry.licences.list(viewer=AGENCY, state="suspended") == []
    with pytest.raises(PermissionDeniedError):
        registry.licences.list(viewer=CUSTODIAN)


# --- destruction ----------------------------------------------------------------------------------


def test_revoking_destroys_the_operators_copies_and_logs_it(
    registry: Registry, instance: Instance, ledger: LedgerWatch, tmp_path: Path
) -> None:
    """第六十二条: working copies and outputs are deleted irreversibly, and the deletion is logged."""
    view = grant(registry, datasets=["traffic", "buses"])
    work = registry.licences.workdir("acme-ops", view.id)
    assert work == instance.home / "work" / "acme-ops" / f"licence-{view.id}"
    (work / "out").mkdir(parents=True)
    (work / "copy.parquet").write_bytes(b"PAR1" * 100)
    csv = "district,trips\n尖山区,120\n".encode()
    (work / "out" / "result.csv").write_bytes(csv)
    outside = tmp_path / "outside.txt"
    outside.write_text("not the licence's", encoding="utf-8")
    (work / "out" / "link").symlink_to(outside)
    other = registry.licences.workdir("acme-ops", view.id + 1000)
    other.mkdir(parents=True)
    (other / "keep.txt").write_text("another licence", encoding="utf-8")

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    lines = sorted(
        [
            f"copy.parquet {sha(b'PAR1' * 100)}",
            f"out/result.csv {sha(csv)}",
            f"out/link {sha(b'symlink:' + str(outside).encode())}",
        ]
    )
    manifest = sha("".join(line + "\n" for line in lines).encode())
    ledger.mark()
    registry.licences.transition(view.id, "revoked", by=AGENCY, reason="严重违约")

    assert not work.exists()
    assert outside.read_text(encoding="utf-8") == "not the licence's"  # links are never followed
    assert (other / "keep.txt").exists()  # only this licence's tree
    entries = ledger.since(full=True)
    assert [(e.action, e.subject) for e in entries] == [
        ("licence.revoked", f"licence:{view.id}"),
        ("licence.destroyed", f"licence:{view.id}"),
    ]
    assert entries[1].payload["files"] == 3 and entries[1].payload["manifest_sha256"] == manifest
    assert entries[1].payload["bytes"] == 400 + len(csv)
    with registry.recorder.read() as session:
        (record,) = session.scalars(select(DestructionRow)).all()
        assert (record.licence_id, record.files, record.manifest_sha256, record.by) == (
            view.id,
            3,
            manifest,
            "demo-agency",
        )
        usage = session.scalars(select(UsageRow).where(UsageRow.event == "copy.destroyed")).all()
        assert sorted(u.resource_id for u in usage) == sorted(d.resource_id for d in _datasets(session, view.id))
    assert registry.licences.destructions(view.id, viewer=REGULATOR)[0].manifest_sha256 == manifest


def _datasets(session: Any, licence_id: int) -> list[LicenceDatasetRow]:
    return list(session.scalars(select(LicenceDatasetRow).where(LicenceDatasetRow.licence_id == licence_id)))


def test_a_licence_without_files_still_records_its_destruction(registry: Registry) -> None:
    view = grant(registry)
    registry.licences.transition(view.id, "revoked", by=AGENCY, reason="主动退出")
    (record,) = registry.licences.destructions(view.id, viewer=AGENCY)
    assert (record.files, record.bytes) == (0, 0)
    assert record.manifest_sha256 == hashlib.sha256(b"").hexdigest()


# --- scope checks ---------------------------------------------------------------------------------


def test_a_licence_stays_within_the_scenarios_the_catalog_names(registry: Registry, ledger: LedgerWatch) -> None:
    """A dataset catalogued for 交通出行 only (授权运营应用场景) cannot be licensed for 金融风控."""
    with registry.recorder.change(Actor.host()) as change:
        row = change.session.scalar(select(ResourceRow).where(ResourceRow.name == "traffic"))
        assert row is not None
        row.operation_scenarios = ["交通出行", "城市规划"]
    ledger.mark()
    with pytest.raises(RegistryError, match="金融风控 would go beyond them"):
        grant(registry, scenarios=["交通出行", "金融风控"])
    assert ledger.since() == []
    assert grant(registry, scenarios=["城市规划"]).state == "active"


def test_an_operator_licensed_for_traffic_cannot_run_a_job_declared_as_credit_risk(
    registry: Registry, ledger: LedgerWatch
) -> None:
    """An operator licensed for 交通出行 cannot run a job declared as 金融风控 (超目的调用, 第三十一条)."""
    view = grant(registry, scenarios=["交通出行"])
    grant(registry, "other-ops", datasets=["loans"], scenarios=["金融风控"])  # a purpose that exists, not acme's
    ledger.mark()
    with pytest.raises(ScopeRefusedError) as refused:
        registry.licences.check_scope("acme-ops", ["traffic"], "金融风控", subject="job:7")
    assert refused.value.kind == "scenario_not_licensed"
    assert "金融风控" in refused.value.reason and "交通出行" in refused.value.reason
    entries = ledger.since(full=True)
    assert [(e.action, e.subject) for e in entries] == [
        ("scope.refused", "operator:acme-ops"),
        ("finding.raised", entries[1].subject),
    ]
    assert (
        entries[0].payload["kind"] == "scenario_not_licensed" and entries[0].payload["reason"] == refused.value.reason
    )
    assert entries[0].actor == "acme-ops" and entries[1].actor == "keyong:monitor"
    with registry.recorder.read() as session:
        (violation,) = session.scalars(select(ViolationRow)).all()
        assert (violation.operator_name, violation.kind, violation.licence_id, violation.subject) == (
            "acme-ops",
            "scenario_not_licensed",
            view.id,
            "job:7",
        )
        (finding,) = session.scalars(select(FindingRow)).all()
        assert finding.kind == "out_of_purpose" and finding.state == "open"


def test_a_dataset_outside_the_licence_is_refused_as_out_of_scope(registry: Registry, ledger: LedgerWatch) -> None:
    """超范围调用: a job over a dataset the licence does not hold."""
    grant(registry, datasets=["traffic"])
    grant(registry, datasets=["buses"])
    ledger.mark()
    for datasets, reason in [(["loans"], "loans are outside"), (["traffic", "buses"], "no single licence")]:
        with pytest.raises(ScopeRefusedError, match=reason) as refused:
            registry.licences.check_scope("acme-ops", datasets, "交通出行")
        assert refused.value.kind == "dataset_out_of_scope"
    assert [a for a, _ in ledger.since()] == ["scope.refused", "finding.raised"] * 2
    with registry.recorder.read() as session:
        assert {f.kind for f in session.scalars(select(FindingRow))} == {"out_of_scope"}


def test_jobs_without_an_active_licence_are_refused(registry: Registry, ledger: LedgerWatch) -> None:
    with pytest.raises(ScopeRefusedError, match="has no active licence") as refused:
        registry.licences.check_scope("acme-ops", ["traffic"], "交通出行")
    assert refused.value.kind == "no_active_licence"
    pending = grant(registry, publicity_days=7)
    with pytest.raises(ScopeRefusedError, match=rf"{pending.id} \(publicity\)"):
        registry.licences.check_scope("acme-ops", ["traffic"], "交通出行")
    future = grant(registry, valid_from=date(2027, 1, 1))
    assert future.state == "active"
    with pytest.raises(ScopeRefusedError, match=rf"{future.id} \(active, valid from 2027-01-01\)"):
        registry.licences.check_scope("acme-ops", ["traffic"], "交通出行")
    with pytest.raises(ScopeRefusedError, match="no operator named"):
        registry.licences.check_scope("ghost-ops", ["traffic"], "交通出行", by=AGENCY)
    assert [a for a, _ in ledger.since()][-1] == "scope.refused"


def test_an_expired_licence_refuses_jobs_and_is_moved_to_expired(
    registry: Registry, clock: FakeClock, ledger: LedgerWatch
) -> None:
    view = grant(registry, valid_until=clock.now.date() + timedelta(days=30))
    clock.advance(days=31)
    ledger.mark()
    with pytest.raises(ScopeRefusedError, match="expired now") as refused:
        registry.licences.check_scope("acme-ops", ["traffic"], "交通出行")
    assert refused.value.kind == "licence_expired"
    entries = ledger.since(full=True)
    assert [(e.action, e.subject, e.actor) for e in entries] == [
        ("licence.expired", f"licence:{view.id}", "keyong:monitor"),
        ("licence.destroyed", f"licence:{view.id}", "keyong:monitor"),
        ("scope.refused", "operator:acme-ops", "acme-ops"),
    ]
    assert registry.licences.get(view.id, viewer=AGENCY).state == "expired"
    with pytest.raises(ScopeRefusedError) as again:  # still "expired", no second expiry
        registry.licences.check_scope("acme-ops", ["traffic"], "交通出行")
    assert again.value.kind == "licence_expired"
    assert [a for a, _ in ledger.since()] == ["scope.refused"]


def test_withdrawn_or_contested_datasets_are_not_served(
    registry: Registry, clock: FakeClock, ledger: LedgerWatch
) -> None:
    """黑龙江 第十六条 (grace ended) and 双鸭山 第四十条 (open objection): refused and logged, but no
    finding: it is not the operator's fault."""
    grant(registry, datasets=["traffic", "buses"])
    ledger.mark()
    with registry.recorder.change(AGENCY) as change:
        buses = change.session.scalar(select(ResourceRow).where(ResourceRow.name == "buses"))
        assert buses is not None
        buses.state = "revoking"
        buses.available_until = clock.now + timedelta(days=183)
        traffic = change.session.scalar(select(ResourceRow).where(ResourceRow.name == "traffic"))
        assert traffic is not None
        change.session.add(
            ObjectionRow(
                target_kind="resource", target_id=traffic.id, filed_by="x", filed_role="custodian", reason="错"
            )
        )
    with pytest.raises(ScopeRefusedError, match="under objection") as contested:
        registry.licences.check_scope("acme-ops", ["traffic"], "交通出行")
    assert contested.value.kind == "dataset_under_objection"
    registry.licences.check_scope("acme-ops", ["buses"], "交通出行")  # within the six-month grace: served
    clock.advance(days=184)
    with pytest.raises(ScopeRefusedError, match="no longer served") as withdrawn:
        registry.licences.check_scope("acme-ops", ["buses"], "交通出行")
    assert withdrawn.value.kind == "dataset_not_served"
    assert [a for a, _ in ledger.since()] == ["scope.refused", "scope.admitted", "scope.refused"]  # no findings
    with registry.recorder.read() as session:
        assert session.scalars(select(FindingRow)).all() == []


def test_an_admitted_job_is_recorded_as_usage(registry: Registry, clock: FakeClock, ledger: LedgerWatch) -> None:
    view = grant(registry, datasets=["traffic", "buses"], epsilon={"traffic": 2.0})
    clock.advance(days=3)
    ledger.mark()
    scope = registry.licences.check_scope("acme-ops", ["traffic"], "交通出行", subject="job:42")
    assert scope.licence_id == view.id and scope.operator == "acme-ops" and scope.scenario == "交通出行"
    (mount,) = scope.datasets
    assert (mount.name, mount.path, mount.version, mount.epsilon_budget) == (
        "traffic",
        "datasets/traffic/v1.parquet",
        1,
        2.0,
    )
    entries = ledger.since(full=True)
    assert [(e.action, e.subject) for e in entries] == [("scope.admitted", f"licence:{view.id}")]
    assert entries[0].payload == {
        "operator": "acme-ops",
        "datasets": {"traffic": mount.version_id},
        "licence_copies": {"traffic": mount.licence_copy},  # issue 23: the licence's own copy is mounted
        "scenario": "交通出行",
        "subject": "job:42",
    }
    with registry.recorder.read() as session:
        (usage,) = session.scalars(select(UsageRow)).all()
        assert (usage.event, usage.resource_id, usage.licence_id, usage.scenario, usage.subject, usage.at) == (
            "job.admitted",
            mount.resource_id,
            view.id,
            "交通出行",
            "job:42",
            clock.now,
        )
        used = {d.resource.name: d.last_used_at for d in _datasets(session, view.id)}
        assert used == {"traffic": clock.now, "buses": None}


def test_an_operator_checks_only_its_own_jobs(registry: Registry) -> None:
    grant(registry, "other-ops")
    with pytest.raises(PermissionDeniedError):
        registry.licences.check_scope("other-ops", ["traffic"], "交通出行", by=Actor("acme-ops", "operator"))
    with pytest.raises(PermissionDeniedError):
        registry.licences.check_scope("other-ops", ["traffic"], "交通出行", by=REGULATOR)
    with pytest.raises(RegistryError, match="declare its application scenario"):
        registry.licences.check_scope("other-ops", ["traffic"], " ")
