"""Credential recovery needs a second person; changed credentials end open sessions (issue 22; SATRE 3.2.01, 3.1.06;
黑龙江省政务数据管理暂行办法 第三十八条 身份认证、权限管理; 双鸭山市公共数据管理暂行办法 第五十二条 independent review).

On both databases: a key the host issues for a person, a key the agency rotates for one, a factor reset and an agency
principal the host creates after ``keyong init`` each hold that principal (its API and console sessions and its CLI
acts by key are refused with the reason) until an agency person other than the recoverer confirms it through their
own session. Attacked: the held person confirming itself, the recoverer confirming its own recovery, the host (the CLI
without a key), a suspended agency person, an agency person of another organisation, a held agency person, a forged
token. Then each of a factor reset, a key revocation, a key rotation and a suspension ends the JWTs and console
sessions issued before it, also after a reactivation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from operators import IdentityPermissionError, Principal, Role, TokenError
from tests.console_support import console_client
from tests.recovery_support import confirm
from tests.totp_support import SECRETS, code_by_name, code_for, create_enrolled, enrol, remember, token_body

Initialised = tuple[Instance, dict[str, str]]
AGENCY = Principal("demo-agency", Role.AGENCY)


def _bearer(client: TestClient, api_key: str) -> dict[str, str]:
    response = client.post("/auth/token", json=token_body(api_key, client))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _actions(instance: Instance, name: str) -> list[tuple[str, str]]:
    return [(e.action, e.actor) for e in instance.ledger.entries(subject=f"principal:{name}", limit=1000)]


def _key_file(tmp_path: Path, name: str, key: str) -> Path:
    path = tmp_path / f"{name}.key"
    path.write_text(key, encoding="utf-8")
    path.chmod(0o600)
    return path


def _cli(home: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--home", str(home), *args])


@pytest.fixture
def client(initialised: Initialised) -> TestClient:
    return TestClient(create_app(instance=initialised[0]))


def test_a_key_the_host_issues_holds_the_person_until_a_second_agency_person_confirms(
    initialised: Initialised, client: TestClient
) -> None:
    """The host issues demo-operator a key: the new key's token and the session it had before are refused (403,
    with the reason and who may clear it), on every route; the held person cannot confirm itself (its session is
    refused, and the service refuses its role); the agency confirms over the API, ledgered, and both work again."""
    instance, keys = initialised
    before = _bearer(client, keys["operator"])
    assert client.get("/me", headers=before).status_code == 200
    new = instance.identity.issue_api_key("demo-operator").api_key  # by the host (the CLI without a key)
    remember(new, SECRETS[keys["operator"]])  # the same person's factor
    after = _bearer(client, new)  # the exchange answers (a recovery completes with it), the token acts nothing
    for headers in (before, after):
        for route in ("/me", "/jobs", "/products"):
            refused = client.get(route, headers=headers)
            assert refused.status_code == 403, (route, refused.text)
            detail = refused.json()["detail"]
            assert "second person" in detail and "key_issued by host:" in detail and "confirm-recovery" in detail
    body = {"reason": "我自己确认"}
    assert client.post("/principals/demo-operator/recovery/confirm", json=body, headers=after).status_code == 403
    with pytest.raises(IdentityPermissionError, match="agency"):
        instance.identity.confirm_recovery("demo-operator", by=Principal("demo-operator", Role.OPERATOR), reason="x")
    listed = client.get("/principals/demo-operator", headers=_bearer(client, keys["agency"])).json()
    assert [h["kind"] for h in listed["recovery_hold"]] == ["key_issued"]

    agency = _bearer(client, keys["agency"])
    assert (
        client.post("/principals/demo-operator/recovery/confirm", json={"reason": ""}, headers=agency).status_code
        == 422
    )
    done = client.post("/principals/demo-operator/recovery/confirm", json={"reason": "本人到场核实"}, headers=agency)
    assert done.status_code == 200, done.text
    assert done.json()["confirmed"] == ["key_issued"] and done.json()["recovery_hold"] is None
    assert client.get("/me", headers=after).status_code == 200 and client.get("/me", headers=before).status_code == 200
    again = client.post("/principals/demo-operator/recovery/confirm", json={"reason": "again"}, headers=agency)
    assert again.status_code == 409  # nothing left to confirm
    trail = _actions(instance, "demo-operator")
    held = [i for i, (action, _) in enumerate(trail) if action == "principal.recovery_held"]
    assert len(held) == 1 and trail[held[0]][1].startswith("host:") and trail[held[0] - 1][0] == "principal.key_issued"
    assert trail[-1] == ("principal.recovery_confirmed", "demo-agency")
    recorded = [e for e in instance.ledger.entries(subject="principal:demo-operator") if "recovery" in e.action]
    assert recorded[-1].payload["reason"] == "本人到场核实" and recorded[-1].payload["recovered_by"][0].startswith(
        "host:"
    )


def test_the_recoverer_a_held_reviewer_a_suspended_or_other_org_agency_person_and_a_forged_token_do_not_confirm(
    initialised: Initialised, client: TestClient
) -> None:
    """demo-agency rotates an operator's key over the API: it may not confirm its own recovery; a reviewer the host
    minted is itself held (unconfirmed) and confirms nobody until demo-agency confirms it; a forged token, a
    suspended agency person and one of another organisation are refused; then the second reviewer confirms."""
    instance, keys = initialised
    agency = _bearer(client, keys["agency"])
    key_id = keys["operator"].split("_")[1]
    rotated = client.post(f"/keys/{key_id}/rotate", headers=agency)
    assert rotated.status_code == 201, rotated.text
    remember(rotated.json()["api_key"], SECRETS[keys["operator"]])
    body = {"reason": "换新密钥"}
    own = client.post("/principals/demo-operator/recovery/confirm", json=body, headers=agency)
    assert own.status_code == 403 and "performed this recovery" in own.json()["detail"]

    second = create_enrolled(instance.identity, "reviewer-2", Role.AGENCY, org="双鸭山市数据局")  # by the host
    second_session = _bearer(client, second)
    refused = client.post("/principals/demo-operator/recovery/confirm", json=body, headers=second_session)
    assert refused.status_code == 403 and "unconfirmed" in refused.json()["detail"]

    claims = jwt.decode(second_session["Authorization"].split()[1], options={"verify_signature": False})
    forged = jwt.encode({**claims, "sub": "demo-agency"}, b"k" * 64, algorithm="HS256")
    attempt = client.post(
        "/principals/demo-operator/recovery/confirm", json=body, headers={"Authorization": f"Bearer {forged}"}
    )
    assert attempt.status_code == 401

    other = create_enrolled(instance.identity, "reviewer-9", Role.AGENCY, org="另一个市数据局")
    confirm(instance.identity, "reviewer-9")
    with pytest.raises(IdentityPermissionError, match="does not confirm one of"):
        instance.identity.confirm_recovery("reviewer-2", by=Principal("reviewer-9", Role.AGENCY), reason="x")
    other_session = _bearer(client, other)
    instance.identity.set_active("reviewer-9", False, reason="离职")
    assert (
        client.post("/principals/demo-operator/recovery/confirm", json=body, headers=other_session).status_code == 401
    )
    with pytest.raises(IdentityPermissionError, match="suspended"):
        instance.identity.confirm_recovery("demo-operator", by=Principal("reviewer-9", Role.AGENCY), reason="x")
    with pytest.raises(IdentityPermissionError, match="host"):
        instance.identity.confirm_recovery("reviewer-2", by=None, reason="the host tries")
    assert client.get("/me", headers=_bearer(client, rotated.json()["api_key"])).status_code == 403  # still held

    made = client.post("/principals/reviewer-2/recovery/confirm", json={"reason": "新任审核员"}, headers=agency)
    assert made.status_code == 200 and made.json()["confirmed"] == ["unconfirmed"]
    second_session = _bearer(client, second)  # its earlier token still works too; a fresh one for clarity
    done = client.post("/principals/demo-operator/recovery/confirm", json=body, headers=second_session)
    assert done.status_code == 200, done.text
    assert client.get("/me", headers=_bearer(client, rotated.json()["api_key"])).status_code == 200
    assert ("principal.recovery_confirmed", "reviewer-2") in _actions(instance, "demo-operator")


def test_the_cli_confirms_only_with_an_agency_persons_own_key_and_code(
    initialised: Initialised, tmp_path: Path
) -> None:
    """``keyong principal confirm-recovery``: without a key (the host) it exits 1 and the hold stays; with the held
    person's key it is refused; with the agency's key but no code it is refused; with key and code it confirms."""
    instance, keys = initialised
    reset = _cli(instance.home, "principal", "totp-reset", "demo-custodian", "--reason", "lost phone")
    assert reset.exit_code == 0, reset.output
    held_key = _key_file(tmp_path, "custodian", keys["custodian"])
    enrol(instance.identity, keys["custodian"])  # the person enrols a new factor with its key: allowed while held
    args = ["principal", "confirm-recovery", "demo-custodian", "--reason", "身份已核实"]
    by_host = _cli(instance.home, *args)
    assert by_host.exit_code == 1 and "host" in by_host.output
    by_self = _cli(instance.home, *args, "--key-file", str(held_key), "--totp", code_for(keys["custodian"]))
    assert by_self.exit_code == 1 and "agency" in by_self.output
    agency_key = _key_file(tmp_path, "agency", keys["agency"])
    no_code = _cli(instance.home, *args, "--key-file", str(agency_key))
    assert no_code.exit_code == 1 and "second factor" in no_code.output
    custodian_act = _cli(
        instance.home, "release", "awaiting", "--key-file", str(held_key), "--totp", code_for(keys["custodian"])
    )
    assert custodian_act.exit_code == 1 and "second person" in custodian_act.output  # a held person's CLI act
    assert instance.identity.get_principal("demo-custodian")["recovery_hold"]
    done = _cli(instance.home, *args, "--key-file", str(agency_key), "--totp", code_by_name("demo-agency"), "--json")
    assert done.exit_code == 0, done.output
    out = json.loads(done.output)
    assert out["confirmed"] == ["totp_reset"] and out["confirmed_by"] == "demo-agency" and out["recovery_hold"] is None


@pytest.mark.parametrize("change", ["totp_reset", "revoke_other_key", "rotate_other_key", "suspend_and_restore"])
def test_a_credential_change_ends_the_api_and_console_sessions_opened_before(
    initialised: Initialised, client: TestClient, change: str
) -> None:
    """A JWT and a console session of demo-operator opened before each change are refused after it (401, and the
    console sends the browser to its login), even where the key they came from is still live; a new login works."""
    instance, keys = initialised
    identity = instance.identity
    spare = identity.issue_api_key("demo-operator").api_key  # a second key of the same person
    confirm(identity, "demo-operator")
    remember(spare, SECRETS[keys["operator"]])
    token = _bearer(client, keys["operator"])
    console = console_client(instance, keys["operator"])
    assert client.get("/me", headers=token).status_code == 200
    assert console.get("/console/operator", follow_redirects=False).status_code == 200
    if change == "totp_reset":
        identity.reset_totp("demo-operator", by=AGENCY, reason="手机丢失")
    elif change == "revoke_other_key":
        identity.revoke_api_key(spare.split("_")[1], by=AGENCY)
    elif change == "rotate_other_key":
        identity.rotate_api_key(spare.split("_")[1], by=AGENCY)
    else:
        identity.set_active("demo-operator", False, by=AGENCY, reason="调查")
        identity.set_active("demo-operator", True, by=AGENCY, reason="调查结束")
    ended = client.get("/me", headers=token)
    assert ended.status_code == 401 and "session ended" in ended.json()["detail"], ended.text
    page = console.get("/console/operator", follow_redirects=False)
    assert page.status_code == 303 and "/console/login" in page.headers["location"]
    if change == "totp_reset":
        enrol(identity, keys["operator"])
    if change in ("totp_reset", "rotate_other_key"):
        confirm(identity, "demo-operator")  # a reset and a rotation by the agency also held the person
    assert client.get("/me", headers=_bearer(client, keys["operator"])).status_code == 200


def test_a_token_without_or_with_a_malformed_epoch(initialised: Initialised, client: TestClient) -> None:
    """A token issued without ``cep`` (before epochs existed) holds only while the principal's epoch is 0: a
    suspension and reactivation end it; a ``cep`` that is not a whole number is malformed."""
    instance, keys = initialised
    identity = instance.identity
    key_id = keys["regulator"].split("_")[1]
    legacy = identity.tokens.issue("demo-regulator", Role.REGULATOR, key_id=key_id).token
    assert "cep" not in jwt.decode(legacy, options={"verify_signature": False})
    assert client.get("/me", headers={"Authorization": f"Bearer {legacy}"}).status_code == 200
    identity.set_active("demo-regulator", False, reason="调查")
    identity.set_active("demo-regulator", True, reason="调查结束")
    refused = client.get("/me", headers={"Authorization": f"Bearer {legacy}"})
    assert refused.status_code == 401 and "session ended" in refused.json()["detail"]
    assert client.get("/me", headers=_bearer(client, keys["regulator"])).status_code == 200
    with pytest.raises(TokenError, match="epoch"):
        identity.tokens.verify(identity.tokens.issue("demo-regulator", Role.REGULATOR, epoch=-1).token)


def test_the_console_shows_the_hold_to_the_held_person_and_lets_another_agency_person_confirm(
    initialised: Initialised,
) -> None:
    """The held operator's console answers 403 with the reason; the agency's people page lists the hold with a
    confirmation form (CSRF-checked); confirming there clears it and the operator's console opens again."""
    from tests.console_support import csrf_of, flash

    instance, keys = initialised
    instance.identity.reset_totp("demo-operator", reason="lost phone")  # by the host: held, and its session ended
    enrol(instance.identity, keys["operator"])
    operator = console_client(instance, keys["operator"])  # the login itself works (the factor is confirmed)
    page = operator.get("/console/operator", follow_redirects=False)
    assert page.status_code == 403 and "second person" in page.text
    agency = console_client(instance, keys["agency"])
    people = agency.get("/console/agency/people")
    assert 'data-held="demo-operator"' in people.text and "totp_reset" in people.text
    forged = agency.post("/console/agency/people/demo-operator/confirm-recovery", data={"reason": "核实"})
    assert forged.status_code == 403  # no CSRF token
    csrf = csrf_of(agency, "/console/agency/people")
    done = agency.post(
        "/console/agency/people/demo-operator/confirm-recovery",
        data={"csrf": csrf, "reason": "本人到场核实"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "confirmed" in flash(done)
    assert operator.get("/console/operator", follow_redirects=False).status_code == 200
    assert not instance.identity.get_principal("demo-operator")["recovery_hold"]


def test_which_principals_the_host_makes_start_unconfirmed(initialised: Initialised, client: TestClient) -> None:
    """Agency and custodian principals the host makes after init (a say on egress: votes, sign-offs) start held
    as unconfirmed, and so does one the agency makes over the API; an operator or regulator it makes does not; the
    principals of ``keyong init`` are the bootstrap exception (they act at once)."""
    instance, keys = initialised
    identity = instance.identity
    made = {
        role: create_enrolled(identity, f"made-{role.value}", role, org=None if role == Role.OPERATOR else "某局")
        for role in (Role.AGENCY, Role.CUSTODIAN, Role.REGULATOR)
    }
    held = {role: client.get("/me", headers=_bearer(client, key)).status_code for role, key in made.items()}
    assert held == {Role.AGENCY: 403, Role.CUSTODIAN: 403, Role.REGULATOR: 200}
    for role in Role:  # keyong init's principals
        assert client.get("/me", headers=_bearer(client, keys[role.value])).status_code == 200
    agency = _bearer(client, keys["agency"])
    added = client.post("/principals", json={"name": "field-custodian", "role": "custodian"}, headers=agency)
    # One the agency makes over the API is held too (its maker read its first key; red team 22c): another
    # agency person confirms it.
    assert added.status_code == 201
    hold = identity.get_principal("field-custodian")["recovery_hold"]
    assert isinstance(hold, list) and [(h["kind"], h["by"]) for h in hold] == [("unconfirmed", "demo-agency")]
    with pytest.raises(IdentityPermissionError):
        identity.create_principal("sneaky", Role.CUSTODIAN, by=AGENCY, bootstrap=True)  # nobody but init skips it
