"""The catalog over HTTP: every role reads, the custodian changes, the agency decides, the
regulator reads everything and changes nothing; refusals carry the rule's message. Both databases.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from core import Actor
from tests.test_registry_catalog import CATALOG_KEYS, PROVIDER_CODE, SHA_A, residents_form
from tests.totp_support import token_body


@pytest.fixture
def client(initialised: tuple[Instance, dict[str, str]]) -> TestClient:
    instance, _ = initialised
    return TestClient(create_app(instance=instance))


@pytest.fixture
def headers(client: TestClient, initialised: tuple[Instance, dict[str, str]]) -> dict[str, dict[str, str]]:
    """A bearer header per role, from the demo principals' API keys (POST /auth/token)."""
    _, tokens = initialised
    result = {}
    for role, api_key in tokens.items():
        response = client.post("/auth/token", json=token_body(api_key, client))
        assert response.status_code == 200, response.text
        result[role] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return result


def bus_lines(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "bus_lines",
        "数据资源名称": "公交线路",
        "数据格式": "CSV",
        "行业分类": "交通运输",
        "提供方名称": "双鸭山市交通运输局",
        "提供方代码": PROVIDER_CODE,
        "数据项": [{"数据项名称": "line"}, {"数据项名称": "driver_phone"}],
    }
    body.update(overrides)
    return body


def test_a_custodian_publishes_and_every_role_reads_the_catalog(
    client: TestClient, headers: dict[str, dict[str, str]], initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, _ = initialised
    response = client.post("/datasets", json=residents_form(), headers=headers["custodian"])
    assert response.status_code == 201, response.text
    assert set(response.json()["catalog"]) >= CATALOG_KEYS
    published = instance.ledger.entries(action="catalog.published")
    assert [(e.actor, e.role, e.subject) for e in published] == [("demo-custodian", "custodian", "dataset:residents")]

    instance.registry.catalog.add_version(
        "residents",
        kind="raw",
        rows=10,
        columns=[{"name": "姓名", "type": "string"}],
        content_sha256=SHA_A,
        path="vault/residents/1",
        by=Actor.host(),
    )
    for role in ("custodian", "agency", "operator", "regulator"):
        listed = client.get("/datasets", headers=headers[role])
        assert listed.status_code == 200
        assert [d["name"] for d in listed.json()] == ["residents"]
        shown = client.get("/datasets/residents", headers=headers[role]).json()
        assert shown["catalog"]["数据资源名称"] == "常住人口基本信息"
        assert shown["licensable"] is False and shown["licensing_refusal"]
        # An operator never learns where files lie in the platform.
        assert ("path" in shown["versions"][0]) is (role != "operator")
    assert client.get("/datasets").status_code == 401
    assert client.get("/datasets/nothing", headers=headers["operator"]).status_code == 404


def test_the_regulator_reads_everything_and_changes_nothing(
    client: TestClient, headers: dict[str, dict[str, str]], initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, _ = initialised
    assert client.post("/datasets", json=bus_lines(), headers=headers["custodian"]).status_code == 201
    seq = instance.ledger.size()
    regulator = headers["regulator"]
    writes = [
        ("post", "/datasets", bus_lines(name="other")),
        ("patch", "/datasets/bus_lines", {"changes": {"数据资源摘要": "x"}, "reason": "r"}),
        ("put", "/datasets/bus_lines/classification", {"level": "L3"}),
        ("post", "/datasets/bus_lines/consent", {"provider": "p", "reference": "r"}),
        ("post", "/datasets/bus_lines/revocation", {"reason": "r"}),
        ("post", "/catalog-requests/1/decision", {"approve": True, "reason": "r"}),
    ]
    for method, path, body in writes:
        assert client.request(method, path, json=body, headers=regulator).status_code == 403, path
    assert client.get("/catalog-requests", headers=regulator).status_code == 200
    assert client.get("/catalog-requests", headers=headers["operator"]).status_code == 403
    assert instance.ledger.size() == seq


def test_a_refused_entry_comes_back_409_with_the_rule(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    """黑龙江 第二十一条(三): 不予共享 must cite its legal basis."""
    response = client.post("/datasets", json=bus_lines(共享类型="不予共享"), headers=headers["custodian"])
    assert response.status_code == 409
    assert "legal basis" in response.json()["detail"]
    malformed = client.post("/datasets", json={"name": "x"}, headers=headers["custodian"])
    assert malformed.status_code == 422


def test_a_restriction_waits_for_the_agencys_decision(
    client: TestClient, headers: dict[str, dict[str, str]], initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, _ = initialised
    client.post("/datasets", json=bus_lines(), headers=headers["custodian"])
    neutral = client.patch(
        "/datasets/bus_lines",
        json={"changes": {"更新频率": "每日"}, "reason": "实时采集"},
        headers=headers["custodian"],
    )
    assert neutral.status_code == 200 and neutral.json()["applied"] is True
    assert neutral.json()["dataset"]["catalog"]["更新频率"] == "每日"

    restricted = client.patch(
        "/datasets/bus_lines",
        json={"changes": {"开放类型": "不予开放", "开放依据": "涉及商业秘密"}, "reason": "含承运企业商业秘密"},
        headers=headers["custodian"],
    )
    assert restricted.status_code == 202 and restricted.json()["applied"] is False
    request_id = restricted.json()["request"]["id"]
    pending = client.get("/catalog-requests", params={"state": "pending"}, headers=headers["agency"]).json()
    assert [r["id"] for r in pending] == [request_id]
    decision = {"approve": True, "reason": "同意"}
    path = f"/catalog-requests/{request_id}/decision"
    assert client.post(path, json=decision, headers=headers["custodian"]).status_code == 403
    decided = client.post(path, json=decision, headers=headers["agency"])
    assert decided.status_code == 200 and decided.json()["state"] == "approved"
    shown = client.get("/datasets/bus_lines", headers=headers["operator"]).json()
    assert shown["catalog"]["开放类型"] == "不予开放"
    assert client.post(path, json=decision, headers=headers["agency"]).status_code == 409
    assert [e.actor for e in instance.ledger.entries(action="catalog.change_approved")] == ["demo-agency"]


def test_classification_consent_and_revocation_through_the_api(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    custodian = headers["custodian"]
    client.post("/datasets", json=bus_lines(obtained_via_sharing=True, 来源地区="佳木斯市"), headers=custodian)
    graded = client.put(
        "/datasets/bus_lines/classification",
        json={"分级": "L3", "columns": {"driver_phone": {"分级": "L3", "PII类型": "手机号"}}},
        headers=custodian,
    )
    assert graded.status_code == 200, graded.text
    assert graded.json()["level"] == "L3" and graded.json()["personal_info"] is True
    too_low = client.put("/datasets/bus_lines/classification", json={"level": "L2"}, headers=custodian)
    assert too_low.status_code == 409 and "at least as high" in too_low.json()["detail"]

    consent = client.post(
        "/datasets/bus_lines/consent", json={"provider": "佳木斯市数据局", "reference": "佳数函7号"}, headers=custodian
    )
    assert consent.status_code == 200
    assert consent.json()["provider_consent"]["provider"] == "佳木斯市数据局"

    revocation = client.post("/datasets/bus_lines/revocation", json={"reason": "职责划转"}, headers=custodian)
    assert revocation.status_code == 202 and revocation.json()["kind"] == "revoke"
    decided = client.post(
        f"/catalog-requests/{revocation.json()['id']}/decision",
        json={"approve": True, "reason": "同意"},
        headers=headers["agency"],
    )
    assert decided.status_code == 200
    # Not in use by any licence: revoked at once (黑龙江 第十六条 grants grace only to data in use).
    assert client.get("/datasets/bus_lines", headers=custodian).json()["state"] == "revoked"
