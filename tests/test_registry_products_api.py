"""The products, objections and usage routes with real JWTs, on SQLite and PostgreSQL.

An operator reads only its own products (another's is a 404, indistinguishable from a missing
one); regulators read everything and change nothing; usage records are for the providing custodian
and regulators (黑龙江 第二十八条).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from core import Actor
from operators import Role
from tests.recovery_support import confirm
from tests.test_registry_products import World, registration, seed_world
from tests.totp_support import token_body

MINE = "traffic-heatmap"
THEIRS = "district-counts"


@pytest.fixture
def api(initialised: tuple[Instance, dict[str, str]]) -> tuple[Instance, TestClient, dict[str, dict[str, str]], World]:
    """Two operators with a product each; headers by role, plus ``operator-two``."""
    instance, keys = initialised
    world = seed_world(instance)
    products = instance.registry.products
    products.register(MINE, **registration(world, by=Actor.host()))
    products.register(
        THEIRS,
        **registration(
            world,
            operator="operator-two",
            licence_id=world.licences["two"],
            scenario="城市治理",
            datasets=[{"name": "population", "version": 2}],
            by=Actor.host(),
        ),
    )
    keys = {**keys, "operator-two": instance.identity.create_principal("operator-two", Role.OPERATOR).api_key}
    client = TestClient(create_app(instance=instance))
    headers = {}
    for who, key in keys.items():
        response = client.post("/auth/token", json=token_body(key, client))
        assert response.status_code == 200, response.text
        headers[who] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return instance, client, headers, world


API = tuple[Instance, TestClient, dict[str, dict[str, str]], World]


def test_an_operator_reads_only_its_own_products(api: API) -> None:
    """DESIGN.md: an operator never sees another operator's products; the 404 for another's product
    says the same as for a product that does not exist."""
    _, client, headers, _ = api
    listed = client.get("/products", headers=headers["operator"])
    assert listed.status_code == 200
    assert [p["name"] for p in listed.json()] == [MINE]
    assert [p["name"] for p in client.get("/products", headers=headers["operator-two"]).json()] == [THEIRS]

    own = client.get(f"/products/{MINE}", headers=headers["operator"])
    assert own.status_code == 200
    body = own.json()
    assert body["attribution"]["acquisition_date"] == "2026-11-12"
    assert body["artifacts"] == [{"name": "result.parquet", "bytes": 2048, "sha256": "ab" * 32}]  # never a path

    hidden = client.get(f"/products/{THEIRS}", headers=headers["operator"])
    missing = client.get("/products/no-such-product", headers=headers["operator"])
    assert (hidden.status_code, missing.status_code) == (404, 404)
    assert hidden.json()["detail"].replace(THEIRS, "X") == missing.json()["detail"].replace("no-such-product", "X")


@pytest.mark.parametrize("role", ["regulator", "agency", "custodian"])
def test_regulator_agency_and_custodian_read_every_product(api: API, role: str) -> None:
    _, client, headers, _ = api
    assert [p["name"] for p in client.get("/products", headers=headers[role]).json()] == [MINE, THEIRS]
    assert client.get(f"/products/{THEIRS}", headers=headers[role]).json()["operator"] == "operator-two"


def test_products_need_a_token(api: API) -> None:
    _, client, _, _ = api
    assert client.get("/products").status_code == 401


def test_an_objection_over_the_api_stops_delivery_and_the_objector_reads_the_resolution(api: API) -> None:
    """双鸭山 第四十条 over the API: filing suspends the product at once; the agency resolves; the
    objector reads the outcome and reason; another operator sees none of it."""
    instance, client, headers, _ = api
    before = instance.ledger.size()
    filed = client.post(
        "/objections",
        json={"target_kind": "product", "target": MINE, "reason": "来源标注缺少获取日期"},
        headers=headers["operator"],
    )
    assert filed.status_code == 201, filed.text
    objection = filed.json()
    assert (objection["filed_by"], objection["filed_role"], objection["state"]) == ("demo-operator", "operator", "open")
    assert client.get(f"/products/{MINE}", headers=headers["operator"]).json()["state"] == "suspended"
    assert [(e.action, e.subject, e.actor) for e in instance.ledger.entries(after=before)] == [
        ("objection.filed", f"objection:{objection['id']}", "demo-operator"),
        ("product.suspended", f"product:{MINE}", "demo-operator"),
    ]

    assert client.get("/objections", headers=headers["operator-two"]).json() == []
    assert client.get(f"/objections/{objection['id']}", headers=headers["operator-two"]).status_code == 404

    resolved = client.post(
        f"/objections/{objection['id']}/resolution",
        json={"outcome": "restore_after_correction", "reason": "已补充获取日期"},
        headers=headers["agency"],
    )
    assert resolved.status_code == 200, resolved.text
    mine = client.get("/objections", headers=headers["operator"]).json()
    assert [(o["id"], o["outcome"], o["resolution"], o["resolved_by"]) for o in mine] == [
        (objection["id"], "restore_after_correction", "已补充获取日期", "demo-agency")
    ]
    assert client.get(f"/products/{MINE}", headers=headers["operator"]).json()["state"] == "available"


def test_a_regulator_reads_everything_and_changes_nothing(api: API) -> None:
    instance, client, headers, _ = api
    filed = client.post(
        "/objections",
        json={"target_kind": "product", "target": THEIRS, "reason": "可能含有可识别个体的小单元格"},
        headers=headers["custodian"],
    )
    assert filed.status_code == 201, filed.text
    objection_id = filed.json()["id"]
    assert [o["id"] for o in client.get("/objections", headers=headers["regulator"]).json()] == [objection_id]
    assert client.get(f"/objections/{objection_id}", headers=headers["regulator"]).status_code == 200

    before = instance.ledger.size()
    refused = client.post(
        f"/objections/{objection_id}/resolution",
        json={"outcome": "restore", "reason": "regulator tries"},
        headers=headers["regulator"],
    )
    assert refused.status_code == 403
    assert instance.ledger.size() == before
    assert client.get(f"/products/{THEIRS}", headers=headers["regulator"]).json()["state"] == "suspended"


@pytest.mark.parametrize("role", ["operator", "custodian"])
def test_product_objections_are_resolved_by_the_agency_only(api: API, role: str) -> None:
    _, client, headers, _ = api
    filed = client.post(
        "/objections",
        json={"target_kind": "product", "target": MINE, "reason": "数据错误"},
        headers=headers["regulator"],
    )
    response = client.post(
        f"/objections/{filed.json()['id']}/resolution",
        json={"outcome": "restore", "reason": "无误"},
        headers=headers[role],
    )
    assert response.status_code == 403


def test_objection_requests_are_validated(api: API) -> None:
    _, client, headers, world = api
    bad_kind = client.post(
        "/objections", json={"target_kind": "catalog", "target": "population", "reason": "x"}, headers=headers["agency"]
    )
    assert bad_kind.status_code == 422
    body = {"target_kind": "licence", "target": str(world.licences["main"]), "reason": "不应授权"}
    active_licence = client.post("/objections", json=body, headers=headers["agency"])
    assert active_licence.status_code == 409
    assert "publicity" in active_licence.json()["detail"]
    # Another operator learns neither that the licence exists nor its state (issue 17 red team).
    foreign = client.post("/objections", json=body, headers=headers["operator-two"])
    assert foreign.status_code == 404 and "active" not in foreign.json()["detail"]
    assert client.get("/objections/999", headers=headers["agency"]).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"), [("custodian", 200), ("regulator", 200), ("operator", 403), ("agency", 403)]
)
def test_usage_records_are_for_the_providing_custodian_and_regulators(api: API, role: str, status: int) -> None:
    """黑龙江 第二十八条: the provider (demo-custodian made these entries) and regulators read them."""
    _, client, headers, world = api
    response = client.get("/usage/population", headers=headers[role])
    assert response.status_code == status
    if status == 200:
        body = response.json()
        assert [r["subject"] for r in body["records"]] == [f"product:{MINE}", f"product:{THEIRS}"]
        released = {e["licence_id"]: e["products_released"] for e in body["summary"]["licences"]}
        assert released[world.licences["main"]] == [MINE]
        assert released[world.licences["two"]] == [THEIRS]


def test_usage_of_another_custodians_dataset_is_refused(api: API) -> None:
    instance, client, _, _ = api
    key = instance.identity.create_principal("custodian-two", Role.CUSTODIAN).api_key
    confirm(instance.identity, "custodian-two")  # made by the host: acts once an agency person confirmed it
    token = client.post("/auth/token", json=token_body(key, client)).json()["access_token"]
    response = client.get("/usage/population", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert "only the custodian that provided it" in response.json()["detail"]
