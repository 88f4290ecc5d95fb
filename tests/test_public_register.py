"""The public register, without authentication (SATRE 1.7.02*; 公示: 双鸭山市公共数据管理暂行办法 第四十八条).

A world is planted through the ORM (as ``tests/test_registry_licences.add_dataset`` does): a published
dataset and hidden ones (being revoked, revoked), licences in every state, products available, suspended
and withdrawn, usage records, an objection, people with recognisable names as creators, reviewers and
filers. The page and every JSON route answer without a token; what is hidden and every person's name are
searched for in every response body and never found; bad query parameters are 4xx; a frozen platform
still serves the page (it reads only) and says it is frozen, not why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from core import Actor
from operators import Role
from registry.models import (
    ItemRow,
    LicenceDatasetRow,
    LicenceRow,
    ObjectionRow,
    OperatorRow,
    ProductRow,
    ResourceRow,
    UsageRow,
    VersionRow,
)
from tests.test_registry_licences import uscc
from tests.totp_support import token_body

PERSON = "wang-jianguo"  # a person (principal) who creates, reviews and objects: never on the public page
PERSON_ORG_MEMBER = "li-xiaohong"
ROUTES = [
    "/public",
    "/api/public",
    *(f"/api/public/{p}" for p in ("catalog", "licences", "products", "usage", "operations")),
]
HIDDEN = [
    "revoked-ds",
    "revoking-ds",
    "HIDDEN-TITLE",
    "DRAFT-SCENARIO",
    "SUSPENDED-SCENARIO",
    "REVOKED-SCENARIO",
    "EXPIRED-SCENARIO",
    "withdrawn-product",
    "suspended-product",
    "deleted-product",
    "datasets/traffic",
    ".parquet",
    "products/",
    "job:4",
    "OBJECTION-REASON",
    "SUSPEND-REASON",
    "FREEZE-REASON",
    "c0ffee" * 10,
]


@dataclass
class World:
    client: TestClient
    instance: Instance
    licences: dict[str, int]
    keys: dict[str, str]


def _resource(name: str, state: str, title: str, summary: str = "") -> ResourceRow:
    return ResourceRow(
        name=name,
        title=title,
        summary=summary,
        data_format="parquet",
        industry="交通出行",
        provider_name="双鸭山市交通运输局",
        provider_code=uscc(9999),
        sharing_type="有条件共享",
        opening_type="有条件开放",
        operation_status="可授权运营",
        level="L3",
        state=state,
        created_by=PERSON,
        items=[ItemRow(position=0, name="trips", format="int", level="L3")],
    )


def plant(instance: Instance) -> dict[str, int]:
    """The world above, in one ledgered change; the licences' ids by state."""
    instance.identity.create_principal(PERSON, Role.AGENCY)
    instance.identity.create_principal(PERSON_ORG_MEMBER, Role.OPERATOR, org=None)
    now = instance.registry.config.now()
    today = now.date()
    with instance.registry.recorder.change(Actor.host()) as change:
        session = change.session
        traffic = _resource("traffic", "published", "交通出行数据", "<script>alert('x')</script> 出行汇总")
        resources = [
            traffic,
            _resource("revoked-ds", "revoked", "HIDDEN-TITLE 1"),
            _resource("revoking-ds", "revoking", "HIDDEN-TITLE 2"),
        ]
        session.add_all(resources)
        session.flush()
        session.add(
            VersionRow(resource_id=traffic.id, version=1, kind="desensitized", rows=10,
                       columns=[{"name": "trips", "type": "int64"}], content_sha256="c0ffee" * 10 + "abcd",
                       path="datasets/traffic/v1.parquet", created_by=PERSON)
        )  # fmt: skip
        operator = OperatorRow(name="acme-ops", uscc=uscc(2201))
        session.add(operator)
        session.flush()
        ids: dict[str, int] = {}
        for state, scenario, start, end in [
            ("draft", "DRAFT-SCENARIO", today, today + timedelta(days=300)),
            ("publicity", "城市治理", today + timedelta(days=7), today + timedelta(days=300)),
            ("active", "交通出行", today - timedelta(days=10), today + timedelta(days=300)),
            ("suspended", "SUSPENDED-SCENARIO", today - timedelta(days=10), today + timedelta(days=300)),
            ("revoked", "REVOKED-SCENARIO", today - timedelta(days=10), today + timedelta(days=300)),
            ("expired", "EXPIRED-SCENARIO", today - timedelta(days=400), today - timedelta(days=40)),
        ]:
            licence = LicenceRow(
                operator_id=operator.id, mode="依场景授权", domains=[], scenarios=[scenario], valid_from=start,
                valid_until=end, fee_class="公益", state=state, publicity_days=7,
                publicity_ends_at=now + timedelta(days=7) if state == "publicity" else None, created_by=PERSON,
            )  # fmt: skip
            session.add(licence)
            session.flush()
            ids[state] = licence.id
            for resource in resources:
                session.add(LicenceDatasetRow(licence_id=licence.id, resource_id=resource.id, epsilon_budget=3.0))
        for state, name in [("available", "good-product"), ("suspended", "suspended-product"),
                            ("withdrawn", "withdrawn-product"), ("deleted", "deleted-product")]:  # fmt: skip
            session.add(
                ProductRow(
                    name=name, operator_id=operator.id, licence_id=ids["active"], job="4", scenario="交通出行",
                    lineage={"datasets": [{"name": "traffic", "version": 1, "content_sha256": "c0ffee" * 10},
                                          {"name": "revoked-ds", "version": 1}],
                             "reviews": [{"reviewer": PERSON, "decision": "approve"}]},
                    attribution={"source": "双鸭山市交通运输局"}, fee_class="公益",
                    artifacts=[{"name": "t.parquet", "bytes": 10, "sha256": "c0ffee" * 10,
                                "path": "products/1/t.parquet"}],
                    state=state, registered_by=PERSON,
                )
            )  # fmt: skip
        for n in range(3):
            usage = UsageRow(
                resource_id=traffic.id, licence_id=ids["active"], operator_id=operator.id, event="job.admitted",
                scenario="交通出行", subject=f"job:4{n}", detail={"by": PERSON},
            )  # fmt: skip
            session.add(usage)
        objection = ObjectionRow(target_kind="licence", target_id=ids["publicity"], filed_by=PERSON,
                                 filed_role="agency", reason="OBJECTION-REASON")  # fmt: skip
        session.add(objection)
    instance.ledger.checkpoint()
    return ids


@pytest.fixture
def world(initialised: tuple[Instance, dict[str, str]]) -> World:
    instance = initialised[0]
    ids = plant(instance)
    return World(TestClient(create_app(instance=instance)), instance, ids, initialised[1])


def test_the_register_needs_no_token_and_lists_what_is_public(world: World) -> None:
    for route in ROUTES:
        response = world.client.get(route)  # no Authorization header, no cookie
        assert response.status_code == 200, (route, response.text[:300])
    body = world.client.get("/api/public").json()
    assert [d["name"] for d in body["catalog"]] == ["traffic"]
    assert body["catalog"][0]["provider"] == "双鸭山市交通运输局" and body["catalog"][0]["level"] == "L3"
    listed = {lic["licence"]: lic for lic in body["licences"]}
    assert set(listed) == {world.licences["publicity"], world.licences["active"]}
    publicity = listed[world.licences["publicity"]]
    assert publicity["state"] == "publicity" and publicity["publicity_ends_at"] and "第四十八条" in publicity["rule"]
    assert publicity["operator"] == "acme-ops" and publicity["datasets"] == ["traffic"]  # hidden datasets left out
    assert [p["product"] for p in body["products"]] == ["good-product"]
    assert body["products"][0]["datasets"] == ["traffic"]
    # Granted licences are those past draft (5); one is active; 3 jobs; one available product.
    assert body["usage"] == [{"dataset": "traffic", "licences": 5, "licences_active": 1, "jobs": 3, "products": 1}]
    assert body["operations"]["objections"]["route"] == "POST /objections"
    assert body["operations"]["frozen"] is False
    page = world.client.get("/public").text
    assert "交通出行数据" in page and "good-product" in page and "acme-ops" in page


def test_hidden_items_paths_and_people_never_appear(world: World) -> None:
    people = [str(p["name"]) for p in world.instance.identity.list_principals()]
    assert PERSON in people and "demo-agency" in people
    for route in ROUTES:
        text = world.client.get(route).text
        for secret in [*HIDDEN, *people]:
            assert secret not in text, (route, secret)


def test_the_checkpoint_is_the_ledgers_latest(world: World) -> None:
    latest = world.instance.ledger.latest_checkpoint()
    assert latest is not None
    shown = world.client.get("/api/public/operations").json()["checkpoint"]
    assert (shown["tree_size"], shown["root"], shown["signature"]) == (latest.tree_size, latest.root, latest.signature)
    assert shown["public_key"] == world.instance.ledger.public_key_hex
    assert latest.root in world.client.get("/public").text


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/api/public?operator=acme-ops", 400),
        ("GET", "/api/public/licences?state=draft", 400),
        ("GET", "/public?x=1", 400),
        ("GET", "/api/public/catalog?%00=1", 422),
        ("GET", "/api/public/nothing", 404),
        ("POST", "/api/public", 405),
        ("DELETE", "/api/public/catalog", 405),
        ("POST", "/public", 405),
    ],
)
def test_bad_requests_are_4xx(world: World, method: str, path: str, code: int) -> None:
    response = world.client.request(method, path)
    assert response.status_code == code, response.text[:300]
    assert "acme-ops" not in response.text  # a refusal shows nothing of the register


def test_a_frozen_platform_still_serves_the_register_and_says_so(world: World) -> None:
    world.instance.registry.freeze.freeze(reason="FREEZE-REASON incident 7", by=Actor.host())
    body = world.client.get("/api/public").json()
    assert body["operations"]["frozen"] is True and [d["name"] for d in body["catalog"]] == ["traffic"]
    page = world.client.get("/public")
    assert page.status_code == 200 and 'id="platform-frozen"' in page.text
    assert "FREEZE-REASON" not in page.text and "FREEZE-REASON" not in world.client.get("/api/public").text


def test_the_page_escapes_markup_and_carries_the_consoles_headers(world: World) -> None:
    page = world.client.get("/public")
    assert "<script>alert" not in page.text and "&lt;script&gt;alert" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    assert "cdn" not in page.text.lower() and 'href="/static/console.css"' in page.text


def test_a_token_does_not_widen_the_register(world: World) -> None:
    """The register is the same for everyone: an agency's token shows no more on it than no token."""
    token = world.client.post("/auth/token", json=token_body(world.keys["agency"], world.client)).json()["access_token"]
    for route in ROUTES[1:-1]:
        anonymous = world.client.get(route).json()
        with_token = world.client.get(route, headers={"Authorization": f"Bearer {token}"}).json()
        if isinstance(anonymous, dict):  # the operations part carries the time of the answer
            anonymous.pop("operations"), with_token.pop("operations")
        assert with_token == anonymous, route
