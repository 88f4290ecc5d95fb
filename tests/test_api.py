"""The API: health, docs, the API-key exchange and per-route role enforcement, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from app import Instance, create_app
from operators import Principal, Role
from tests.totp_support import token_body


@pytest.fixture
def client(initialised: tuple[Instance, dict[str, str]]) -> TestClient:
    instance, _ = initialised
    return TestClient(create_app(instance=instance))


def bearer(client: TestClient, api_key: str) -> dict[str, str]:
    response = client.post("/auth/token", json=token_body(api_key, client))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_healthz_and_docs(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/auth/token", "/me", "/principals", "/healthz"} <= set(paths)


def test_api_key_exchange_gives_a_working_token(
    client: TestClient, initialised: tuple[Instance, dict[str, str]]
) -> None:
    _, tokens = initialised
    for role, api_key in tokens.items():
        response = client.post("/auth/token", json=token_body(api_key))
        assert response.status_code == 200
        body = response.json()
        assert body["role"] == role
        assert body["token_type"] == "bearer"
        me = client.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.json() == {"name": f"demo-{role}", "role": role}


@pytest.mark.parametrize(
    "api_key",
    ["", "nonsense", "ky_0123456789abcdef_" + "A" * 43, "ky_zz_short"],
)
def test_bad_api_keys_are_refused(client: TestClient, api_key: str) -> None:
    response = client.post("/auth/token", json={"api_key": api_key})
    assert response.status_code in (401, 422)


def test_api_key_with_right_id_but_wrong_secret_is_refused(
    client: TestClient, initialised: tuple[Instance, dict[str, str]]
) -> None:
    _, tokens = initialised
    key_id = tokens["agency"].split("_")[1]
    response = client.post("/auth/token", json={"api_key": f"ky_{key_id}_{'B' * 43}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown API key"


@pytest.mark.parametrize(
    "role, allowed", [("agency", True), ("regulator", True), ("operator", False), ("custodian", False)]
)
def test_principals_route_enforces_roles(
    client: TestClient, initialised: tuple[Instance, dict[str, str]], role: str, allowed: bool
) -> None:
    _, tokens = initialised
    response = client.get("/principals", headers=bearer(client, tokens[role]))
    if allowed:
        assert response.status_code == 200
        assert {p["role"] for p in response.json()} == {r.value for r in Role}
    else:
        assert response.status_code == 403
        assert "may not" in response.json()["detail"]


def test_routes_refuse_without_or_with_bad_token(
    client: TestClient, initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, _ = initialised
    assert client.get("/me").status_code == 401
    assert client.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401
    now = datetime.now(UTC)
    forged = jwt.encode(
        {
            "sub": "demo-agency",
            "role": "agency",
            "iss": "keyong",
            "aud": "keyong-api",
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=5)).timestamp()),
            "jti": "x",
        },
        b"not-the-instance-key-but-long-enough-for-hs256!!",
        algorithm="HS256",
    )
    response = client.get("/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    expired = instance.identity.tokens.issue("demo-agency", Role.AGENCY, now=now - timedelta(hours=2)).token
    assert client.get("/me", headers={"Authorization": f"Bearer {expired}"}).json()["detail"] == "token expired"


def test_token_for_a_principal_that_does_not_exist_is_refused(
    client: TestClient, initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, _ = initialised
    token = instance.identity.tokens.issue("ghost", Role.REGULATOR).token
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_token_claiming_another_role_than_the_principal_is_refused(
    client: TestClient, initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, _ = initialised
    token = instance.identity.tokens.issue("demo-operator", Role.REGULATOR).token
    response = client.get("/principals", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_suspension_takes_effect_before_the_token_expires(
    client: TestClient, initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, tokens = initialised
    headers = bearer(client, tokens["operator"])
    assert client.get("/me", headers=headers).status_code == 200
    instance.identity.set_active("demo-operator", False)
    assert client.get("/me", headers=headers).json()["detail"] == "principal is suspended"
    assert client.post("/auth/token", json={"api_key": tokens["operator"]}).status_code == 401


def test_revoked_api_key_is_refused(client: TestClient, initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    assert instance.identity.revoke_api_keys("demo-custodian") == 1
    response = client.post("/auth/token", json={"api_key": tokens["custodian"]})
    assert response.status_code == 401
    assert response.json()["detail"] == "API key revoked"


def test_role_guard_is_injectable_into_other_routers(initialised: tuple[Instance, dict[str, str]]) -> None:
    """Other packages receive ``require`` from the app instead of importing operators."""
    from app.api import role_guard

    instance, tokens = initialised
    require = role_guard(instance.identity)
    app = FastAPI()

    @app.post("/custodian-only")
    def custodian_only(principal: Principal = Depends(require(Role.CUSTODIAN))) -> dict[str, str]:  # noqa: B008
        return {"actor": principal.name}

    base = create_app(instance=instance)
    with TestClient(base) as token_client:
        custodian = bearer(token_client, tokens["custodian"])
        regulator = bearer(token_client, tokens["regulator"])
    test_client = TestClient(app)
    assert test_client.post("/custodian-only", headers=custodian).json() == {"actor": "demo-custodian"}
    assert test_client.post("/custodian-only", headers=regulator).status_code == 403


def test_api_docs_load_nothing_from_another_host(client: TestClient) -> None:
    """/docs and /redoc work on an intranet (issue 17): every script, style and icon is served by us."""
    import re

    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200
        html = response.text
        assert not re.search(r"(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), f"{page} names another host"
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert any(a.endswith(".js") for a in assets), f"{page} loads no script"
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
            served = client.get(asset)
            assert served.status_code == 200, asset
            assert len(served.content) > 1000, asset
    # Swagger UI would otherwise send the schema to an outside validator for its badge.
    assert '"validatorUrl": null' in client.get("/docs").text


def test_every_operation_says_what_it_does_and_who_may_call_it(client: TestClient) -> None:
    roles = {r.value for r in Role}
    operations = [
        (f"{method.upper()} {path}", op)
        for path, item in client.get("/openapi.json").json()["paths"].items()
        for method, op in item.items()
    ]
    assert len(operations) > 40
    for label, op in operations:
        assert op.get("description", "").strip(), f"{label} has no description"
        assert "**Roles allowed:**" in op["description"], label
        assert set(op["x-roles"]) <= roles, label
        for role in op["x-roles"]:
            assert role in op["description"], (label, role)
    by_label = dict(operations)
    assert by_label["GET /ledger/entries"]["x-roles"] == ["regulator"]
    assert by_label["POST /licences"]["x-roles"] == ["agency"]
    assert by_label["POST /auth/token"]["x-roles"] == []
    assert by_label["GET /me"]["x-roles"] == sorted(roles)
