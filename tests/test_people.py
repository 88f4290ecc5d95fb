"""People and keys (issue 17): tokens end the moment their key, their principal or their session does.

Over the API on both databases: issue → use → rotate (the old key and its JWT 401 at once, the new
key works) → revoke (401 at once for the key exchange and an already-issued JWT); a suspended
principal's token 401s; forged, expired, key-less and borrowed-key tokens 401; a logged-out JWT and
console cookie no longer work. Who may manage whom, attacked: non-agency roles get 403 on every people
route, and an agency principal can neither mint a further reviewer nor take over another's keys.
The console's people page adds a person and issues a key (CSRF-checked); the CLI does the same,
prints the secret once and keeps it nowhere in clear; every act is in the ledger.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import Instance, Settings, create_app
from app.console.session import COOKIE
from app.demo.scenario import demo_uscc
from operators import Role
from tests.console_support import console_client, csrf_in, flash
from tests.recovery_support import confirm
from tests.totp_support import SECRETS, code_for, remember, token_body

KEY_RE = re.compile(r"ky_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
Initialised = tuple[Instance, dict[str, str]]


@pytest.fixture
def client(initialised: Initialised) -> TestClient:
    return TestClient(create_app(instance=initialised[0]))


def token_of(client: TestClient, api_key: str) -> str:
    response = client.post("/auth/token", json=token_body(api_key, client))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_issue_use_rotate_revoke_ends_keys_and_tokens_at_once(client: TestClient, initialised: Initialised) -> None:
    instance, keys = initialised
    agency = auth(token_of(client, keys["agency"]))
    acme = demo_uscc("MA1D2E3F7")
    operator = client.post("/operators", json={"name": "acme-analyst", "uscc": acme}, headers=agency)
    assert operator.status_code == 201, operator.text
    # The organisation of an operator principal is its registered operator, named by 统一社会信用代码 here.
    added = client.post("/principals", json={"name": "acme-analyst", "role": "operator", "org": acme}, headers=agency)
    assert added.status_code == 201, added.text
    assert added.headers["cache-control"] == "no-store"
    first = added.json()
    assert KEY_RE.fullmatch(first["api_key"]) and first["api_key"].split("_")[1] == first["key_id"]
    old_jwt = token_of(client, first["api_key"])
    assert client.get("/me", headers=auth(old_jwt)).json() == {"name": "acme-analyst", "role": "operator"}
    assert jwt.decode(old_jwt, options={"verify_signature": False})["kid"] == first["key_id"]

    rotated = client.post(f"/keys/{first['key_id']}/rotate", headers=agency)
    assert rotated.status_code == 201, rotated.text
    second = rotated.json()
    assert second["replaced"] == first["key_id"] and second["key_id"] != first["key_id"]
    assert client.post("/auth/token", json={"api_key": first["api_key"]}).status_code == 401
    refused = client.get("/me", headers=auth(old_jwt))
    assert refused.status_code == 401 and refused.json()["detail"] == "API key revoked"
    remember(second["api_key"], SECRETS[first["api_key"]])  # a rotated key: the same person, the same factor
    new_jwt = token_of(client, second["api_key"])
    held = client.get("/me", headers=auth(new_jwt))  # rotated by the agency: held until a second person confirms
    assert held.status_code == 403 and "second person" in held.json()["detail"], held.text
    confirm(instance.identity, "acme-analyst")  # SATRE 3.2.01 (tests/test_recovery.py)
    assert client.get("/me", headers=auth(new_jwt)).status_code == 200

    revoked = client.post(f"/keys/{second['key_id']}/revoke", headers=agency)
    assert revoked.status_code == 200 and revoked.json()["principal"] == "acme-analyst"
    assert revoked.json()["live"] is False
    assert client.post("/auth/token", json={"api_key": second["api_key"]}).status_code == 401
    assert client.get("/me", headers=auth(new_jwt)).status_code == 401
    assert client.post(f"/keys/{second['key_id']}/revoke", headers=agency).status_code == 409  # already revoked
    assert client.post(f"/keys/{second['key_id']}/rotate", headers=agency).status_code == 409

    issued = client.post("/principals/acme-analyst/keys", headers=agency)
    assert issued.status_code == 201
    remember(issued.json()["api_key"], SECRETS[first["api_key"]])
    assert client.post("/auth/token", json=token_body(issued.json()["api_key"])).status_code == 200
    listed = client.get("/principals/acme-analyst", headers=agency).json()
    assert listed["org"] == "acme-analyst"  # stored as the operator's name
    assert [(k["key_id"], k["live"]) for k in listed["keys"]] == [
        (first["key_id"], False),
        (second["key_id"], False),
        (issued.json()["key_id"], True),
    ]
    actions = [e.action for e in instance.ledger.entries(subject="principal:acme-analyst")]
    for action in ("principal.created", "principal.key_rotated", "principal.key_revoked", "principal.key_issued"):
        assert action in actions
    secrets = [first["api_key"], second["api_key"], issued.json()["api_key"]]
    dumped = json.dumps([e.as_json() for e in instance.ledger.entries(limit=10_000)])
    assert not any(s.split("_", 2)[2] in dumped for s in secrets)  # no secret in the ledger


def test_suspended_principal_is_out_at_once_and_back_when_restored(
    client: TestClient, initialised: Initialised
) -> None:
    _, keys = initialised
    agency = auth(token_of(client, keys["agency"]))
    operator = auth(token_of(client, keys["operator"]))
    suspended = client.post("/principals/demo-operator/suspend", json={"reason": "left the company"}, headers=agency)
    assert suspended.status_code == 200 and suspended.json()["active"] is False
    assert client.get("/me", headers=operator).json()["detail"] == "principal is suspended"
    assert client.post("/auth/token", json={"api_key": keys["operator"]}).status_code == 401
    assert client.post("/principals/demo-operator/suspend", json={"reason": "x"}, headers=agency).status_code == 409
    assert client.post("/principals/demo-operator/restore", json={"reason": "back"}, headers=agency).status_code == 200
    ended = client.get("/me", headers=operator)  # the suspension ended its session for good (issue 22)
    assert ended.status_code == 401 and "session ended" in ended.json()["detail"]
    assert client.get("/me", headers=auth(token_of(client, keys["operator"]))).status_code == 200  # a new login
    assert client.post("/principals/demo-operator/suspend", json={}, headers=agency).status_code == 422


def test_forged_expired_keyless_and_borrowed_key_tokens_are_refused(
    client: TestClient, initialised: Initialised
) -> None:
    instance, keys = initialised
    now = datetime.now(UTC)
    genuine = token_of(client, keys["operator"])
    claims = jwt.decode(genuine, options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "agency"}, b"x" * 64, algorithm="HS256")
    assert client.get("/principals", headers=auth(forged)).status_code == 401
    header, payload, signature = genuine.split(".")
    assert client.get("/me", headers=auth(f"{header}.{payload}.{signature[:-2]}AA")).status_code == 401
    tokens = instance.identity.tokens
    agency_kid = keys["agency"].split("_")[1]
    expired = tokens.issue("demo-agency", Role.AGENCY, key_id=agency_kid, now=now - timedelta(hours=2)).token
    assert client.get("/me", headers=auth(expired)).json()["detail"] == "token expired"
    keyless = tokens.issue("demo-agency", Role.AGENCY).token  # signed right, but names no key
    assert client.get("/me", headers=auth(keyless)).status_code == 401
    # Even with the signing key, a token naming another principal's key speaks for nobody.
    borrowed = tokens.issue("demo-operator", Role.OPERATOR, key_id=agency_kid).token
    assert client.get("/me", headers=auth(borrowed)).status_code == 401
    unknown = tokens.issue("demo-agency", Role.AGENCY, key_id="0" * 16).token
    assert client.get("/me", headers=auth(unknown)).status_code == 401


def test_api_logout_ends_that_token_only(client: TestClient, initialised: Initialised) -> None:
    instance, keys = initialised
    first, second = token_of(client, keys["regulator"]), token_of(client, keys["regulator"])
    out = client.post("/auth/logout", headers=auth(first))
    assert out.status_code == 200 and out.json() == {"revoked": True}
    assert client.get("/me", headers=auth(first)).json()["detail"] == "token revoked (logged out)"
    assert client.post("/auth/logout", headers=auth(first)).status_code == 401
    assert client.get("/me", headers=auth(second)).status_code == 200
    assert instance.ledger.entries(subject="principal:demo-regulator")[-1].action == "auth.token_revoked"
    assert instance.identity.revoke_token("not.a.token") is False


@pytest.mark.parametrize("role", ["operator", "custodian", "regulator"])
def test_non_agency_roles_get_403_on_people_routes(client: TestClient, initialised: Initialised, role: str) -> None:
    instance, keys = initialised
    headers = auth(token_of(client, keys[role]))
    operator_kid = keys["operator"].split("_")[1]
    calls = [
        ("post", "/principals", {"name": "sock-puppet", "role": "operator"}),
        ("post", "/principals/demo-operator/keys", None),
        ("post", f"/keys/{operator_kid}/rotate", None),
        ("post", f"/keys/{operator_kid}/revoke", None),
        ("post", "/principals/demo-operator/suspend", {"reason": "x"}),
        ("post", "/principals/demo-operator/restore", {"reason": "x"}),
    ]
    if role != "regulator":  # the regulator reads who may act (supervision); the others do not
        calls += [("get", "/principals", None), ("get", "/principals/demo-agency", None)]
    for method, path, body in calls:
        response = client.request(method.upper(), path, json=body, headers=headers)
        assert response.status_code == 403, (role, path, response.text)
    assert "sock-puppet" not in {p["name"] for p in instance.identity.list_principals()}
    assert client.post("/auth/token", json=token_body(keys["operator"])).status_code == 200


def test_an_agency_principal_cannot_mint_reviewers_or_take_over_their_keys(
    client: TestClient, initialised: Initialised
) -> None:
    """The attack: a reviewer adds a second agency principal (or takes another reviewer's key) and casts
    both votes of an independent review alone."""
    instance, keys = initialised
    other = instance.identity.create_principal("reviewer-2", Role.AGENCY)  # by the host: allowed
    agency = auth(token_of(client, keys["agency"]))
    for role in ("agency", "regulator"):
        response = client.post("/principals", json={"name": f"my-{role}", "role": role}, headers=agency)
        assert response.status_code == 403 and "host administrator" in response.json()["detail"]
    assert client.post("/principals/reviewer-2/keys", headers=agency).status_code == 403
    assert client.post(f"/keys/{other.key_id}/rotate", headers=agency).status_code == 403
    assert client.post(f"/keys/{other.key_id}/revoke", headers=agency).status_code == 403
    assert client.post("/principals/reviewer-2/suspend", json={"reason": "x"}, headers=agency).status_code == 403
    assert client.post("/principals/demo-regulator/keys", headers=agency).status_code == 403
    assert instance.identity.authenticate_api_key(other.api_key).name == "reviewer-2"
    assert {p["name"] for p in instance.identity.list_principals()} == {
        "demo-custodian",
        "demo-agency",
        "demo-operator",
        "demo-regulator",
        "reviewer-2",
    }
    # Its own key it may rotate: the session of the old key ends with it.
    own = client.post(f"/keys/{keys['agency'].split('_')[1]}/rotate", headers=agency)
    assert own.status_code == 201
    assert client.get("/me", headers=agency).status_code == 401
    remember(own.json()["api_key"], SECRETS[keys["agency"]])
    assert client.get("/me", headers=auth(token_of(client, own.json()["api_key"]))).status_code == 200


def test_bad_input_is_a_clear_4xx(client: TestClient, initialised: Initialised) -> None:
    _, keys = initialised
    agency = auth(token_of(client, keys["agency"]))
    for body in (
        {"name": "Bad Name!", "role": "operator"},
        {"name": "ok-name", "role": "admin"},
        {"name": "ok-name", "role": "operator", "org": "x" * 129},
        {"name": "x" * 200, "role": "operator"},
    ):
        assert client.post("/principals", json=body, headers=agency).status_code == 422, body
    assert (
        client.post("/principals", json={"name": "demo-operator", "role": "operator"}, headers=agency).status_code
        == 409
    )
    assert client.post("/keys/not-a-key-id/rotate", headers=agency).status_code == 422
    assert client.post(f"/keys/{'a' * 16}/revoke", headers=agency).status_code == 404
    assert client.post("/principals/nobody-here/keys", headers=agency).status_code == 404
    assert client.get("/principals/nobody-here", headers=agency).status_code == 404


def test_logged_out_tokens_are_swept_once_they_would_have_expired(initialised: Initialised) -> None:
    instance, keys = initialised
    identity = instance.identity
    kid = keys["regulator"].split("_")[1]
    old = identity.tokens.issue(
        "demo-regulator", Role.REGULATOR, key_id=kid, now=datetime.now(UTC) - timedelta(minutes=14)
    )
    assert identity.revoke_token(old.token) is True
    with instance.engine.begin() as connection:  # as if it had expired long ago
        connection.execute(
            text("UPDATE revoked_tokens SET expires_at = :t"), {"t": datetime.now(UTC) - timedelta(hours=1)}
        )
    fresh = identity.exchange(keys["regulator"], code_for(keys["regulator"]))
    assert identity.revoke_token(fresh.token) is True
    with instance.engine.connect() as connection:
        rows = connection.execute(text("SELECT jti FROM revoked_tokens")).scalars().all()
    assert rows == [fresh.claims.jti]


# --- the console ------------------------------------------------------------------------------


def test_console_logout_ends_the_cookie_on_the_server(initialised: Initialised) -> None:
    instance, keys = initialised
    browser = console_client(instance, keys["custodian"])
    cookie = browser.cookies.get(COOKIE)
    assert cookie and browser.get("/console/custodian").status_code == 200
    assert browser.post("/console/logout", follow_redirects=False).status_code == 303
    replay = TestClient(create_app(instance=instance))  # a copy of the cookie, replayed after logout
    replay.cookies.set(COOKIE, cookie, path="/console")
    answer = replay.get("/console/custodian", follow_redirects=False)
    assert answer.status_code == 303 and "/console/login" in answer.headers["location"]
    assert client_token_refused(instance, cookie)


def client_token_refused(instance: Instance, token: str) -> bool:
    """The console's JWT is the API's JWT: logged out there, it is refused here too."""
    return TestClient(create_app(instance=instance)).get("/me", headers=auth(token)).status_code == 401


def test_console_page_adds_a_person_and_issues_rotates_revokes_keys(initialised: Initialised) -> None:
    instance, keys = initialised
    browser = console_client(instance, keys["agency"])
    page = browser.get("/console/agency/people")
    assert page.status_code == 200 and 'data-principal="demo-operator"' in page.text
    csrf = csrf_in(page.text)

    refused = browser.post("/console/agency/people", data={"name": "no-csrf", "role": "operator"})
    assert refused.status_code == 403
    assert "no-csrf" not in {p["name"] for p in instance.identity.list_principals()}

    added = browser.post(
        "/console/agency/people", data={"csrf": csrf, "name": "field-analyst", "role": "custodian", "org": "统计局"}
    )
    assert added.status_code == 200 and added.headers["cache-control"] == "no-store"
    shown = KEY_RE.findall(added.text)
    assert len(shown) == 1 and instance.identity.authenticate_api_key(shown[0]).name == "field-analyst"
    assert KEY_RE.findall(browser.get("/console/agency/people").text) == []  # shown once, never again
    assert instance.identity.get_principal("field-analyst")["org"] == "统计局"

    issued = browser.post("/console/agency/people/field-analyst/keys", data={"csrf": csrf})
    second = KEY_RE.findall(issued.text)
    assert len(second) == 1 and second != shown
    rotated = browser.post(f"/console/agency/keys/{second[0].split('_')[1]}/rotate", data={"csrf": csrf})
    third = KEY_RE.findall(rotated.text)
    assert len(third) == 1 and instance.identity.authenticate_api_key(third[0]).name == "field-analyst"
    with pytest.raises(Exception, match="revoked"):
        instance.identity.authenticate_api_key(second[0])
    gone = browser.post(
        f"/console/agency/keys/{third[0].split('_')[1]}/revoke", data={"csrf": csrf}, follow_redirects=False
    )
    assert gone.status_code == 303 and "revoked" in flash(gone)
    again = browser.post(
        f"/console/agency/keys/{third[0].split('_')[1]}/revoke", data={"csrf": csrf}, follow_redirects=False
    )
    assert "already revoked" in flash(again)
    stop = browser.post(
        "/console/agency/people/field-analyst/suspend", data={"csrf": csrf, "reason": "moved"}, follow_redirects=False
    )
    assert "suspended" in flash(stop) and instance.identity.get_principal("field-analyst")["active"] is False

    puppet = browser.post(
        "/console/agency/people", data={"csrf": csrf, "name": "my-agency", "role": "agency"}, follow_redirects=False
    )
    assert puppet.status_code == 303 and "host administrator" in flash(puppet)
    operator = console_client(instance, keys["operator"])
    assert operator.get("/console/agency/people").status_code == 403


# --- the CLI ----------------------------------------------------------------------------------


def keyong(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KEYONG_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_principals_and_keys(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert keyong("init", "--home", home, "--json").returncode == 0
    added = keyong("principal", "add", "reviewer-3", "--role", "agency", "--org", "实施机构", "--home", home, "--json")
    assert added.returncode == 0, added.stderr
    first = json.loads(added.stdout)
    assert first["role"] == "agency" and first["org"] == "实施机构" and KEY_RE.fullmatch(first["api_key"])
    assert keyong("principal", "add", "reviewer-3", "--role", "agency", "--home", home).returncode == 1
    assert keyong("principal", "add", "x", "--role", "admin", "--home", home).returncode == 2
    bad = keyong("principal", "add", "Bad Name", "--role", "operator", "--home", home)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr

    rotated = json.loads(keyong("key", "rotate", first["key_id"], "--home", home, "--json").stdout)
    assert rotated["replaced"] == first["key_id"] and rotated["api_key"] != first["api_key"]
    issued = json.loads(keyong("key", "issue", "reviewer-3", "--home", home, "--json").stdout)
    ambiguous = keyong("key", "rotate", "reviewer-3", "--home", home)
    assert ambiguous.returncode == 1 and "name the key id" in ambiguous.stderr
    one = json.loads(keyong("key", "revoke", issued["key_id"], "--home", home, "--json").stdout)
    assert one == {"principal": "reviewer-3", "revoked": [issued["key_id"]]}
    every = json.loads(keyong("key", "revoke", "reviewer-3", "--home", home, "--json").stdout)
    assert every == {"principal": "reviewer-3", "revoked": [rotated["key_id"]]}
    assert keyong("key", "revoke", "reviewer-3", "--home", home).returncode == 1
    suspended = json.loads(
        keyong("principal", "suspend", "demo-agency", "--reason", "left", "--home", home, "--json").stdout
    )
    assert suspended["active"] is False
    assert keyong("principal", "suspend", "demo-agency", "--reason", "again", "--home", home).returncode == 1
    assert keyong("key", "revoke", "f" * 16, "--home", home).returncode == 1

    listed = json.loads(keyong("principal", "list", "--home", home, "--json").stdout)["principals"]
    mine = next(p for p in listed if p["name"] == "reviewer-3")
    assert {k["key_id"] for k in mine["keys"]} == {first["key_id"], rotated["key_id"], issued["key_id"]}
    assert not any(k["live"] for k in mine["keys"])
    stored = b"".join(p.read_bytes() for p in Path(home).rglob("*") if p.is_file())
    for secret in (first["api_key"], rotated["api_key"], issued["api_key"]):
        assert secret.split("_", 2)[2].encode() not in stored  # never stored in clear


def test_cli_operator_add_with_its_first_login(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert keyong("init", "--home", home, "--json").returncode == 0
    refused = keyong("operator", "add", "acme-ops", "--uscc", "91230500MA1D2E3F4X", "--login", "--home", home)
    assert refused.returncode == 1 and "统一社会信用代码" in refused.stderr
    names = [p["name"] for p in json.loads(keyong("principal", "list", "--home", home, "--json").stdout)["principals"]]
    assert "acme-ops" not in names  # nothing half-written: no login without its operator
    made = keyong("operator", "add", "acme-ops", "--uscc", demo_uscc("MA1D2E3F9"), "--login", "--home", home, "--json")
    assert made.returncode == 0, made.stderr
    data = json.loads(made.stdout)
    assert data["name"] == "acme-ops" and data["login"]["role"] == "operator"
    instance = Instance.open(Settings(home=Path(home)))
    try:
        assert instance.identity.authenticate_api_key(data["login"]["api_key"]).name == "acme-ops"
        assert instance.registry.licences.get_operator("acme-ops").name == "acme-ops"
    finally:
        instance.close()
    twice = keyong("operator", "add", "demo-operator", "--uscc", demo_uscc("MA1D2E3F8"), "--login", "--home", home)
    assert twice.returncode == 1 and "already exists" in twice.stderr
