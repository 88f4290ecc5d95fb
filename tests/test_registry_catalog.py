"""The catalog (资源目录): fields, sharing and opening types, restrictions, revocation, consent,
classification and grading, versions, on SQLite and PostgreSQL.

Each test is one rule, named by its scenario and citing the article it comes from; each change is
checked to leave exactly the ledger entries it should, and each refusal to leave none.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app import Instance
from core import Actor, NotFoundError, PermissionDeniedError, RegistryError
from registry import Registry, RegistryConfig
from registry.catalog_views import CatalogEntry, ColumnClass, RequestView, ResourceView
from registry.eligibility import is_served
from registry.models import LicenceDatasetRow, LicenceRow, OperatorRow, ResourceRow
from tests.conftest import FakeClock
from tests.test_registry_licences import make_registry

CUSTODIAN = Actor("demo-custodian", "custodian")
AGENCY = Actor("demo-agency", "agency")
OPERATOR = Actor("demo-operator", "operator")
REGULATOR = Actor("demo-regulator", "regulator")
PROVIDER_CODE = "91230500MA1C2D3E4Q"  # a checksum-valid 统一社会信用代码
OPERATOR_CODE = "12230500MB1F7G8H93"
SHA_A = "a" * 64
SHA_B = "b" * 64

CATALOG_KEYS = {
    "数据资源名称",
    "数据资源摘要",
    "数据格式",
    "行业分类",
    "数据覆盖时间",
    "数据覆盖地域",
    "更新频率",
    "提供方名称",
    "提供方代码",
    "共享类型",
    "共享条件",
    "共享方式",
    "是否向社会开放",
    "开放类型",
    "开放条件",
    "授权运营状态",
    "授权运营应用场景",
    "数据项",
}


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    """A registry on the fake clock with nothing in it yet (no dataset, no licence)."""
    return make_registry(instance, clock)


def residents_form(**overrides: Any) -> dict[str, Any]:
    """A 资源目录 form as a custodian fills it in, with the rules' Chinese field names."""
    form: dict[str, Any] = {
        "name": "residents",
        "数据资源名称": "常住人口基本信息",
        "数据资源摘要": "常住人口的户籍与居住信息",
        "数据格式": "CSV",
        "行业分类": "公共管理",
        "数据覆盖时间": "2020-01 至 2025-12",
        "数据覆盖地域": "双鸭山市",
        "更新频率": "每月",
        "提供方名称": "双鸭山市公安局",
        "提供方代码": PROVIDER_CODE,
        "共享方式": "接口",
        "授权运营应用场景": ["交通出行", "城市治理"],
        "数据项": [
            {"数据项名称": "姓名", "数据项格式": "string", "PII类型": "姓名", "分级": "L3"},
            {"数据项名称": "身份证号", "数据项格式": "string", "PII类型": "身份证号", "敏感个人信息": True},
            {"数据项名称": "区县", "数据项格式": "string"},
        ],
    }
    form.update(overrides)
    return form


def plain_entry(name: str = "bus_lines", **overrides: Any) -> CatalogEntry:
    """A non-personal L2 entry, written with English attribute names."""
    data: dict[str, Any] = {
        "name": name,
        "title": "公交线路",
        "data_format": "CSV",
        "industry": "交通运输",
        "provider_name": "双鸭山市交通运输局",
        "provider_code": PROVIDER_CODE,
        "items": [{"name": "line", "format": "string"}, {"name": "stops", "format": "int64"}],
    }
    data.update(overrides)
    return CatalogEntry.model_validate(data)


def ledger_since(instance: Instance, seq: int) -> list[tuple[str, str]]:
    return [(e.action, e.subject) for e in instance.ledger.entries(after=seq, limit=1000)]


def payloads_since(instance: Instance, seq: int, action: str) -> list[dict[str, Any]]:
    return [e.payload for e in instance.ledger.entries(after=seq, limit=1000) if e.action == action]


def put_in_use(instance: Instance, dataset: str, state: str = "active") -> None:
    """A licence in ``state`` covering ``dataset`` (what the licences part will create)."""
    with Session(instance.engine) as session, session.begin():
        operator = OperatorRow(name="acme", uscc=OPERATOR_CODE)
        session.add(operator)
        session.flush()
        resource = session.query(ResourceRow).filter_by(name=dataset).one()
        licence = LicenceRow(
            operator_id=operator.id,
            mode="依场景授权",
            scenarios=["交通出行"],
            valid_from=date(2026, 1, 1),
            valid_until=date(2028, 1, 1),
            fee_class="公益",
            state=state,
            created_by="demo-agency",
        )
        session.add(licence)
        session.flush()
        session.add(LicenceDatasetRow(licence_id=licence.id, resource_id=resource.id, epsilon_budget=3.0))


# --- publishing: the fields and defaults of a 资源目录 entry -------------------------------------


def test_a_form_with_chinese_field_names_publishes_with_every_catalog_field(
    registry: Registry, instance: Instance
) -> None:
    """双鸭山 第十二条 lists the fields; 黑龙江 第二十一条(二): an unstated 共享类型 is 无条件共享;
    黑龙江 第三十三条: personal data is 不予开放 unless stated otherwise."""
    seq = instance.ledger.size()
    view = registry.catalog.publish(CatalogEntry.model_validate(residents_form()), by=CUSTODIAN)
    data = view.as_json()
    assert set(data["catalog"]) >= CATALOG_KEYS
    catalog = data["catalog"]
    assert catalog["数据资源名称"] == "常住人口基本信息"
    assert catalog["提供方代码"] == PROVIDER_CODE
    assert catalog["共享类型"] == "无条件共享"
    assert catalog["开放类型"] == "不予开放"
    assert "第三十三条" in catalog["开放依据"]
    assert catalog["是否向社会开放"] is False
    assert catalog["授权运营状态"] == "可授权运营"
    assert catalog["授权运营应用场景"] == ["交通出行", "城市治理"]
    assert catalog["数据项"] == [
        {"数据项名称": "姓名", "数据项格式": "string", "PII类型": "姓名", "分级": "L3"},
        {"数据项名称": "身份证号", "数据项格式": "string", "PII类型": "身份证号", "分级": "L4"},
        {"数据项名称": "区县", "数据项格式": "string", "PII类型": None, "分级": "L2"},
    ]
    # The resource is graded as its most sensitive column and carries its columns' flags.
    assert (data["level"], data["personal_info"], data["sensitive_personal_info"]) == ("L4", True, True)
    assert data["state"] == "published" and data["available_until"] is None and data["versions"] == []
    assert data["licensable"] is False and "desensitized" in data["licensing_refusal"]
    assert ledger_since(instance, seq) == [("catalog.published", "dataset:residents")]
    payload = payloads_since(instance, seq, "catalog.published")[0]
    assert payload["level"] == "L4" and payload["sharing_type"] == "无条件共享" and payload["items"] == 3
    assert registry.catalog.get("residents").as_json() == data
    assert [v.name for v in registry.catalog.list()] == ["residents"]


def test_short_type_names_are_read_as_the_rules_words(registry: Registry) -> None:
    entry = plain_entry(
        sharing_type="有条件",
        sharing_conditions="限交通管理部门用于线网优化",
        sharing_legal_basis="《数据安全法》第三十八条",
        opening_type="unconditional",
    )
    view = registry.catalog.publish(entry, by=CUSTODIAN)
    assert (view.sharing_type, view.opening_type) == ("有条件共享", "无条件开放")


ENTRY_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"提供方代码": "91230500MA1C2D3E4A"}, "统一社会信用代码"),
    ({"name": "Residents"}, "machine name"),
    ({"name": "select"}, "SQL keyword"),
    # 黑龙江 第二十一条(三): 不予共享 rests on a law or administrative regulation.
    ({"共享类型": "不予共享"}, "legal basis"),
    # 黑龙江 第二十一条(二): conditions left unstated would make it 无条件共享.
    ({"共享类型": "有条件共享", "共享依据": "《个人信息保护法》第十三条"}, "共享条件"),
    ({"共享类型": "有条件共享", "共享条件": "仅限公安机关"}, "legal basis"),
    # 黑龙江 第三十三条: 有条件开放 states conditions and its reason; 不予开放 is not opened.
    ({"开放类型": "有条件开放", "开放条件": "实名申请"}, "legal basis"),
    ({"开放类型": "有条件开放", "开放依据": "第三十三条"}, "开放条件"),
    ({"是否向社会开放": True}, "不予开放"),
    # A catalog describes data; it never carries a 公民身份号码.
    ({"数据资源摘要": "例如 110101199003077774 的记录"}, "公民身份号码"),
]


def test_an_entry_breaking_a_catalog_rule_is_refused_and_leaves_no_trace(
    registry: Registry, instance: Instance
) -> None:
    seq = instance.ledger.size()
    for overrides, why in ENTRY_REFUSALS:
        with pytest.raises(RegistryError, match=why):
            registry.catalog.publish(CatalogEntry.model_validate(residents_form(**overrides)), by=CUSTODIAN)
    assert ledger_since(instance, seq) == []
    assert registry.catalog.list() == []


GRADING_REFUSALS: list[tuple[list[dict[str, Any]], str | None, str]] = [
    # 双鸭山 第十一条: a resource is graded at least as high as its most sensitive column.
    ([{"name": "phone", "pii_type": "手机号", "level": "L3"}], "L2", "at least as high"),
    # Sensitive personal information is L4; personal information is at least L3.
    ([{"name": "id_no", "pii_type": "身份证号", "sensitive_personal_info": True, "level": "L3"}], None, "L4"),
    ([{"name": "phone", "pii_type": "手机号", "level": "L2"}], None, "L3 or L4"),
]


def test_grading_that_contradicts_the_columns_is_refused(registry: Registry) -> None:
    for items, level, why in GRADING_REFUSALS:
        with pytest.raises(RegistryError, match=why):
            registry.catalog.publish(plain_entry(items=items, level=level), by=CUSTODIAN)
    assert registry.catalog.list() == []


def test_only_a_custodian_publishes(registry: Registry) -> None:
    for who in (OPERATOR, REGULATOR, AGENCY):
        with pytest.raises(PermissionDeniedError):
            registry.catalog.publish(plain_entry(), by=who)
    registry.catalog.publish(plain_entry(), by=CUSTODIAN)
    with pytest.raises(RegistryError, match="already in the catalog"):
        registry.catalog.publish(plain_entry(), by=CUSTODIAN)


# --- changes: restrictions wait for the agency -------------------------------------------------


def test_a_less_restrictive_or_neutral_change_applies_at_once(registry: Registry, instance: Instance) -> None:
    """黑龙江 第二十一条: sharing is the rule; loosening needs no approval."""
    registry.catalog.publish(plain_entry(sharing_type="不予共享", sharing_legal_basis="《某条例》第十条"), by=CUSTODIAN)
    seq = instance.ledger.size()
    view = registry.catalog.update(
        "bus_lines", {"共享类型": "无条件共享", "summary": "全市公交线路"}, by=CUSTODIAN, reason="依据已废止"
    )
    assert isinstance(view, ResourceView)
    assert view.sharing_type == "无条件共享" and view.summary == "全市公交线路"
    assert ledger_since(instance, seq) == [("catalog.updated", "dataset:bus_lines")]
    assert payloads_since(instance, seq, "catalog.updated")[0]["fields"] == ["sharing_type", "summary"]
    assert registry.catalog.requests() == []


def test_a_more_restrictive_type_waits_for_the_agency_and_applies_on_approval(
    registry: Registry, instance: Instance
) -> None:
    """A move to 不予共享 or 不予开放 takes effect only when the agency approves it."""
    registry.catalog.publish(plain_entry(), by=CUSTODIAN)
    seq = instance.ledger.size()
    request = registry.catalog.update(
        "bus_lines",
        {"开放类型": "不予开放", "开放依据": "涉及商业秘密 (黑龙江 第三十三条)"},
        by=CUSTODIAN,
        reason="线路数据含承运企业商业秘密",
    )
    assert isinstance(request, RequestView)
    assert request.kind == "restrict" and request.state == "pending"
    assert registry.catalog.get("bus_lines").opening_type == "无条件开放"
    assert ledger_since(instance, seq) == [("catalog.change_requested", "dataset:bus_lines")]
    assert [r.id for r in registry.catalog.requests("pending")] == [request.id]

    with pytest.raises(PermissionDeniedError):
        registry.catalog.decide(request.id, True, by=CUSTODIAN, reason="self-approval")
    seq = instance.ledger.size()
    decided = registry.catalog.decide(request.id, True, by=AGENCY, reason="理由充分")
    assert decided.state == "approved" and decided.decided_by == "demo-agency"
    assert registry.catalog.get("bus_lines").opening_type == "不予开放"
    assert ledger_since(instance, seq) == [
        ("catalog.change_approved", "dataset:bus_lines"),
        ("catalog.updated", "dataset:bus_lines"),
    ]
    with pytest.raises(RegistryError, match="already approved"):
        registry.catalog.decide(request.id, False, by=AGENCY, reason="changed my mind")


def test_a_rejected_restriction_leaves_the_entry_as_it_was(registry: Registry, instance: Instance) -> None:
    registry.catalog.publish(plain_entry(), by=CUSTODIAN)
    request = registry.catalog.update(
        "bus_lines",
        {"sharing_type": "不予共享", "sharing_legal_basis": "无"},
        by=CUSTODIAN,
        reason="收紧",
    )
    assert isinstance(request, RequestView)
    seq = instance.ledger.size()
    decided = registry.catalog.decide(request.id, False, by=AGENCY, reason="无法律依据")
    assert decided.state == "rejected" and decided.decision_reason == "无法律依据"
    assert registry.catalog.get("bus_lines").sharing_type == "无条件共享"
    assert ledger_since(instance, seq) == [("catalog.change_rejected", "dataset:bus_lines")]


UPDATE_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"name": "buses"}, "identity"),
    ({"数据项": []}, "new version"),
    ({"分级": "L1"}, "classif"),
    ({"no_such_field": 1}, "unknown catalog field"),
    ({"共享类型": "有条件共享"}, "共享条件"),
    ({"提供方代码": "not-a-code-00000000"}, "统一社会信用代码"),
    ({"summary": ""}, "as it is"),
]


def test_updates_that_break_a_rule_are_refused(registry: Registry, instance: Instance) -> None:
    registry.catalog.publish(plain_entry(), by=CUSTODIAN)
    seq = instance.ledger.size()
    for changes, why in UPDATE_REFUSALS:
        with pytest.raises(RegistryError, match=why):
            registry.catalog.update("bus_lines", changes, by=CUSTODIAN, reason="试试")
    assert ledger_since(instance, seq) == []
    assert registry.catalog.requests() == []


def test_a_change_needs_a_reason(registry: Registry) -> None:
    registry.catalog.publish(plain_entry(), by=CUSTODIAN)
    with pytest.raises(RegistryError, match="reason is required"):
        registry.catalog.update("bus_lines", {"summary": "x"}, by=CUSTODIAN, reason="  ")
    with pytest.raises(NotFoundError):
        registry.catalog.update("no_such", {"summary": "x"}, by=CUSTODIAN, reason="why")


# --- eligibility for authorized operation --------------------------------------------------------


def test_data_obtained_by_sharing_needs_the_providers_consent_before_licensing(
    registry: Registry, instance: Instance, clock: FakeClock
) -> None:
    """双鸭山 第四十三条: 以共享方式获取的其他地区或部门的公共数据, 用于授权运营的应征得共享数据提供部门同意."""
    registry.catalog.publish(plain_entry(obtained_via_sharing=True, source_region="佳木斯市"), by=CUSTODIAN)
    view = registry.catalog.get("bus_lines")
    assert not view.licensable and "第四十三条" in (view.licensing_refusal or "")
    with pytest.raises(RegistryError, match="stays marked"):
        registry.catalog.update("bus_lines", {"obtained_via_sharing": False}, by=CUSTODIAN, reason="oops")
    with pytest.raises(RegistryError, match="future"):
        registry.catalog.record_consent(
            "bus_lines", provider="佳木斯市数据局", reference="佳数函〔2026〕7号", on=date(2027, 1, 1), by=CUSTODIAN
        )
    seq = instance.ledger.size()
    view = registry.catalog.record_consent(
        "bus_lines", provider="佳木斯市数据局", reference="佳数函〔2026〕7号", by=CUSTODIAN
    )
    assert view.provider_consent == {
        "provider": "佳木斯市数据局",
        "reference": "佳数函〔2026〕7号",
        "date": "2026-12-01",
        "recorded_by": "demo-custodian",
    }
    assert view.licensable and view.as_json()["licensing_refusal"] is None
    assert ledger_since(instance, seq) == [("catalog.consent_recorded", "dataset:bus_lines")]


def test_consent_is_refused_for_data_not_obtained_by_sharing(registry: Registry) -> None:
    registry.catalog.publish(plain_entry(), by=CUSTODIAN)
    with pytest.raises(RegistryError, match="not marked as obtained by sharing"):
        registry.catalog.record_consent("bus_lines", provider="x", reference="y", by=CUSTODIAN)


def test_closed_data_enters_authorized_operation_only_through_a_desensitized_version(
    registry: Registry, instance: Instance
) -> None:
    """不予开放 data is licensable only through a desensitized version (双鸭山 第四十三条, 第三十五条);
    every ingest or desensitization is a numbered version with its row count, schema and hash."""
    registry.catalog.publish(plain_entry(opening_type="不予开放", opening_legal_basis="涉及商业秘密"), by=CUSTODIAN)
    schema = [{"name": "line", "type": "string"}, {"name": "stops", "type": "int64"}]
    seq = instance.ledger.size()
    raw = registry.catalog.add_version(
        "bus_lines", kind="raw", rows=120, columns=schema, content_sha256=SHA_A, path="vault/bus_lines/1", by=CUSTODIAN
    )
    assert raw.version == 1 and not registry.catalog.get("bus_lines").licensable
    copy = registry.catalog.add_version(
        "bus_lines",
        kind="desensitized",
        rows=120,
        columns=schema,
        content_sha256=SHA_B,
        path="data/bus_lines.parquet",
        report={"k_anonymity": 5},
        parent=1,
        by=CUSTODIAN,
    )
    assert (copy.version, copy.parent) == (2, 1)
    view = registry.catalog.get("bus_lines")
    assert view.licensable
    assert [(v.version, v.kind, v.rows) for v in registry.catalog.versions("bus_lines")] == [
        (1, "raw", 120),
        (2, "desensitized", 120),
    ]
    assert ledger_since(instance, seq) == [("dataset.version_added", "dataset:bus_lines")] * 2
    assert payloads_since(instance, seq, "dataset.version_added")[1] == {
        "version": 2,
        "kind": "desensitized",
        "rows": 120,
        "columns": 2,
        "content_sha256": SHA_B,
        "parent": 1,
    }
    # An operator's view of the catalog carries neither storage paths nor reports.
    assert "path" not in view.as_json(internals=False)["versions"][0]


VERSION_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"kind": "copy"}, "unknown version kind"),
    ({"content_sha256": "xyz"}, "SHA-256"),
    ({"rows": -1}, "non-negative"),
    ({"parent": 7}, "no version 7"),
    ({"columns": [{"type": "int"}]}, "name"),
]


def test_a_malformed_version_is_refused(registry: Registry, instance: Instance) -> None:
    registry.catalog.publish(plain_entry(), by=CUSTODIAN)
    seq = instance.ledger.size()
    args: dict[str, Any] = {
        "kind": "raw",
        "rows": 1,
        "columns": [{"name": "line", "type": "string"}],
        "content_sha256": SHA_A,
        "path": "vault/x",
    }
    for kwargs, why in VERSION_REFUSALS:
        with pytest.raises(RegistryError, match=why):
            registry.catalog.add_version("bus_lines", **{**args, **kwargs}, by=CUSTODIAN)
    assert registry.catalog.versions("bus_lines") == []
    assert ledger_since(instance, seq) == []


# --- revocation: six months of grace for data in use (黑龙江 第十六条) ----------------------------


def test_an_entry_in_use_stays_available_six_months_after_its_revocation_is_approved(
    registry: Registry, instance: Instance, clock: FakeClock
) -> None:
    """黑龙江 第十六条: 待撤销的政务数据已被使用的, 数据提供部门应继续提供6个月后再撤销."""
    registry.catalog.publish(plain_entry(), by=CUSTODIAN)
    put_in_use(instance, "bus_lines")
    seq = instance.ledger.size()
    request = registry.catalog.request_revocation("bus_lines", by=CUSTODIAN, reason="线路管理职责划转")
    assert request.kind == "revoke" and registry.catalog.get("bus_lines").state == "published"
    with pytest.raises(RegistryError, match="pending revocation"):
        registry.catalog.request_revocation("bus_lines", by=CUSTODIAN, reason="again")
    registry.catalog.decide(request.id, True, by=AGENCY, reason="同意撤销")
    view = registry.catalog.get("bus_lines")
    assert view.state == "revoking"
    assert view.available_until == clock.now + timedelta(days=183)
    assert not view.licensable  # keeps serving current licences, takes no new ones
    assert ledger_since(instance, seq) == [
        ("catalog.revocation_requested", "dataset:bus_lines"),
        ("catalog.change_approved", "dataset:bus_lines"),
        ("catalog.revoked", "dataset:bus_lines"),
    ]
    revoked = payloads_since(instance, seq, "catalog.revoked")[0]
    assert revoked["grace_days"] == 183 and revoked["state"] == "revoking" and revoked["in_use"] is True

    clock.advance(days=182)
    with Session(instance.engine) as session:
        assert is_served(session.query(ResourceRow).filter_by(name="bus_lines").one(), clock.now)
    assert registry.catalog.finalize_revocations(by=AGENCY) == []

    clock.advance(days=2)
    seq = instance.ledger.size()
    assert registry.catalog.finalize_revocations(by=AGENCY) == ["bus_lines"]
    assert registry.catalog.get("bus_lines").state == "revoked"
    assert ledger_since(instance, seq) == [("catalog.revoked", "dataset:bus_lines")]
    with pytest.raises(RegistryError, match="revoked and cannot be changed"):
        registry.catalog.update("bus_lines", {"summary": "x"}, by=CUSTODIAN, reason="late edit")


def test_an_entry_not_in_use_is_revoked_at_once_on_approval(registry: Registry, instance: Instance) -> None:
    """An ended (expired) licence does not count as use."""
    registry.catalog.publish(plain_entry(), by=CUSTODIAN)
    put_in_use(instance, "bus_lines", state="expired")
    request = registry.catalog.request_revocation("bus_lines", by=CUSTODIAN, reason="数据停止采集")
    registry.catalog.decide(request.id, True, by=AGENCY, reason="同意")
    view = registry.catalog.get("bus_lines")
    assert view.state == "revoked"
    assert view.as_json()["state"] == "revoked"
    with pytest.raises(RegistryError, match="already revoked"):
        registry.catalog.request_revocation("bus_lines", by=CUSTODIAN, reason="again")


# --- classification and grading (双鸭山 第十一条) ------------------------------------------------


def test_the_custodian_grades_columns_beside_the_desensitizers_suggestions(
    registry: Registry, instance: Instance
) -> None:
    registry.catalog.publish(plain_entry(items=[{"name": "line"}, {"name": "driver_phone"}]), by=CUSTODIAN)
    seq = instance.ledger.size()
    registry.catalog.suggest(
        "bus_lines", {"driver_phone": {"pii_type": "手机号", "level": "L3", "confidence": 0.97}}, by=CUSTODIAN
    )
    view = registry.catalog.classify(
        "bus_lines",
        level="L3",
        columns={"driver_phone": ColumnClass(level="L3", pii_type="手机号")},
        by=CUSTODIAN,
    )
    phone = next(i for i in view.items if i.name == "driver_phone")
    assert (phone.level, phone.pii_type, phone.personal_info) == ("L3", "手机号", True)
    assert (phone.suggested_pii_type, phone.suggested_level, phone.confidence) == ("手机号", "L3", 0.97)
    assert (view.level, view.personal_info, view.sensitive_personal_info) == ("L3", True, False)
    assert ledger_since(instance, seq) == [
        ("catalog.suggested", "dataset:bus_lines"),
        ("catalog.classified", "dataset:bus_lines"),
    ]
    classified = payloads_since(instance, seq, "catalog.classified")[0]
    assert classified["columns"] == {
        "driver_phone": {"level": "L3", "pii_type": "手机号", "personal_info": True, "sensitive_personal_info": False}
    }


CLASSIFICATION_REFUSALS: list[tuple[str, dict[str, Any], dict[str, bool], str]] = [
    ("L2", {"driver_phone": {"level": "L3", "pii_type": "手机号"}}, {}, "at least as high"),
    ("L4", {"driver_phone": {"level": "L3", "sensitive_personal_info": True}}, {}, "must be graded L4"),
    ("L3", {"driver_phone": {"level": "L2", "pii_type": "手机号"}}, {}, "L3 or L4"),
    ("L3", {"driver_phone": {"level": "L3", "pii_type": "手机号"}}, {"personal_info": False}, "flags"),
    ("L3", {}, {"sensitive_personal_info": True}, "must be graded L4"),
    ("L3", {"nobody": {"level": "L3"}}, {}, "no column"),
    ("L9", {}, {}, "not valid"),
]


def test_a_grading_that_contradicts_itself_is_refused(registry: Registry, instance: Instance) -> None:
    """双鸭山 第十一条: sensitive personal information is L4, personal information at least L3, and a
    resource at least as high as its most sensitive column."""
    registry.catalog.publish(plain_entry(items=[{"name": "line"}, {"name": "driver_phone"}]), by=CUSTODIAN)
    seq = instance.ledger.size()
    for level, columns, flags, why in CLASSIFICATION_REFUSALS:
        with pytest.raises(RegistryError, match=why):
            registry.catalog.classify("bus_lines", level=level, columns=columns, **flags, by=CUSTODIAN)
    assert ledger_since(instance, seq) == []
    assert registry.catalog.get("bus_lines").level == "L2"


def test_public_bounds_and_domains_are_declared_never_for_personal_columns(
    registry: Registry, instance: Instance
) -> None:
    """DP jobs take bounds and domains from the catalog, never from the data."""
    registry.catalog.publish(
        plain_entry(items=[{"name": "stops", "format": "int64"}, {"name": "driver", "pii_type": "姓名"}], level="L3"),
        by=CUSTODIAN,
    )
    seq = instance.ledger.size()
    view = registry.catalog.set_public_bounds("bus_lines", "stops", bounds=[0, 80], by=CUSTODIAN)
    assert next(i for i in view.items if i.name == "stops").public_bounds == [0, 80]
    assert ledger_since(instance, seq) == [("catalog.bounds_set", "dataset:bus_lines")]
    with pytest.raises(RegistryError, match="personal information"):
        registry.catalog.set_public_bounds("bus_lines", "driver", domain=["张三", "李四"], by=CUSTODIAN)
    with pytest.raises(RegistryError, match="lo < hi"):
        registry.catalog.set_public_bounds("bus_lines", "stops", bounds=[5, 5], by=CUSTODIAN)
    with pytest.raises(NotFoundError):
        registry.catalog.set_public_bounds("bus_lines", "nope", bounds=[0, 1], by=CUSTODIAN)


# --- the command line ----------------------------------------------------------------------------

SHOW_KEYS = {
    "name",
    "catalog",
    "level",
    "personal_info",
    "sensitive_personal_info",
    "state",
    "available_until",
    "obtained_via_sharing",
    "provider_consent",
    "versions",
    "licensable",
    "licensing_refusal",
}


def keyong(*args: str) -> Any:
    from typer.testing import CliRunner

    from app.cli import cli

    return CliRunner().invoke(cli, list(args))


def test_the_cli_publishes_a_form_and_shows_it_with_the_rules_field_names(instance: Instance, tmp_path: Any) -> None:
    """``keyong dataset show NAME --json``: the ``catalog`` key with Chinese field names is a public contract."""
    form = tmp_path / "entry.json"
    form.write_text(json.dumps(residents_form(), ensure_ascii=False), encoding="utf-8")
    home = str(instance.home)
    published = keyong("dataset", "publish", "--file", str(form), "--home", home, "--json")
    assert published.exit_code == 0, published.output
    assert json.loads(published.stdout)["name"] == "residents"
    assert [e.actor.startswith("host:") for e in instance.ledger.entries(action="catalog.published")] == [True]

    shown = keyong("dataset", "show", "residents", "--home", home, "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert set(data) >= SHOW_KEYS
    assert set(data["catalog"]) >= CATALOG_KEYS
    assert set(data["catalog"]["数据项"][0]) == {"数据项名称", "数据项格式", "PII类型", "分级"}

    graded = keyong(
        "dataset", "classify", "residents", "--level", "L4", "--column", "区县=L1", "--column",
        "姓名=L4:姓名:sensitive", "--home", home, "--json",
    )  # fmt: skip
    assert graded.exit_code == 0, graded.output
    columns = {c["name"]: c for c in json.loads(graded.stdout)["columns"]}
    assert columns["区县"]["level"] == "L1"
    assert (columns["姓名"]["level"], columns["姓名"]["sensitive_personal_info"]) == ("L4", True)

    listed = keyong("dataset", "list", "--home", home, "--json")
    assert [d["name"] for d in json.loads(listed.stdout)["datasets"]] == ["residents"]


def test_the_cli_revokes_through_the_agencys_approval_and_refuses_clearly(instance: Instance) -> None:
    home = str(instance.home)
    Registry(instance.engine, instance.ledger, RegistryConfig(home=instance.home)).catalog.publish(
        plain_entry(), by=CUSTODIAN
    )
    asked = keyong("dataset", "revoke", "bus_lines", "--reason", "职责划转", "--home", home, "--json")
    assert asked.exit_code == 0, asked.output
    request = json.loads(asked.stdout)
    assert (request["kind"], request["state"]) == ("revoke", "pending")
    approved = keyong("dataset", "approve-request", str(request["id"]), "--reason", "同意", "--home", home, "--json")
    assert approved.exit_code == 0 and json.loads(approved.stdout)["state"] == "approved"
    again = keyong("dataset", "reject-request", str(request["id"]), "--reason", "晚了", "--home", home, "--json")
    assert again.exit_code == 1 and again.stdout == "" and "already approved" in again.stderr
    shown = keyong("dataset", "show", "bus_lines", "--home", home, "--json")
    assert json.loads(shown.stdout)["state"] == "revoked"

    missing = keyong("dataset", "show", "nothing", "--home", home, "--json")
    assert missing.exit_code == 1 and "no dataset 'nothing'" in missing.stderr
    bad = keyong("dataset", "classify", "bus_lines", "--level", "L3", "--column", "line", "--home", home)
    assert bad.exit_code == 1 and "COLUMN=LEVEL" in bad.stderr
    consent = keyong("dataset", "consent", "bus_lines", "--provider", "p", "--reference", "r", "--home", home)
    assert consent.exit_code == 1 and "revoked" in consent.stderr
