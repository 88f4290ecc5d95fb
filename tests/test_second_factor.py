"""Every person's second factor (issue 22; SATRE 3.2.04, 1.5.05, 3.2.01; 黑龙江 第三十八条 身份认证, 双鸭山 第六十条).

Must show: a person without a second factor cannot obtain a token — over the API, in the console, or by
key from the CLI. Attacks: no code, a wrong code, a replayed code, a code of another principal's secret,
an expired code, a pending (unconfirmed) factor, a factor swapped by its holder, a reset by someone who
may not, a database read for the secret. Each refused code is a failed login in the security events
(never the code), and counts toward the failed-logins alert. Both databases.
"""

from __future__ import annotations

import html
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from app.console.qr import qr_svg
from app.keys import SECRETS_DIR, TOTP_KEY, load_keys
from operators import IdentityPermissionError, Principal, Role
from operators.second_factor import STEP_SECONDS
from tests.conftest import bearer
from tests.console_support import ORIGIN, console_client, csrf_in, flash
from tests.totp_support import (
    CLOCK,
    SECRETS,
    code_for,
    code_of,
    decode,
    enrol_over_api,
    remember,
    token_body,
    totp_code,
)

Initialised = tuple[Instance, dict[str, str]]
runner = CliRunner()


@pytest.fixture
def api(initialised: Initialised) -> Iterator[tuple[Instance, dict[str, str], TestClient]]:
    instance, keys = initialised
    yield instance, keys, TestClient(create_app(instance=instance), raise_server_exceptions=False)


def _login_failures(client: TestClient, keys: dict[str, str]) -> list[dict[str, object]]:
    client.app.state.security_buffer.flush()  # type: ignore[attr-defined]
    regulator = bearer(client, keys["regulator"])
    answer = client.get("/security/events", headers=regulator, params={"kind": "login_failed"})
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def _new_person(instance: Instance, name: str = "acme-analyst", role: Role = Role.CUSTODIAN) -> str:
    return instance.identity.create_principal(name, role).api_key


def test_a_person_without_a_second_factor_cannot_obtain_a_token(
    api: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, keys, client = api
    key = _new_person(instance)
    for body in ({"api_key": key}, {"api_key": key, "totp": "123456"}, {"api_key": key, "totp": ""}):
        refused = client.post("/auth/token", json=body)
        assert refused.status_code == 401 and "access_token" not in refused.json()
        assert "no second factor enrolled" in refused.json()["detail"]
    assert not instance.ledger.entries(action="auth.token_issued", subject="principal:acme-analyst")
    (event,) = [e for e in _login_failures(client, keys) if e["principal"] == "acme-analyst"]
    assert event["count"] == 3 and event["route"] == "POST /auth/token"


def test_enrolment_counts_only_once_a_first_code_confirmed_it(api: tuple[Instance, dict[str, str], TestClient]) -> None:
    instance, _keys, client = api
    key = _new_person(instance)
    enrolled = client.post("/auth/totp/enrol", json={"api_key": key})
    assert enrolled.status_code == 201 and enrolled.headers["cache-control"] == "no-store"
    secret = enrolled.json()["secret"]
    assert enrolled.json()["uri"].startswith("otpauth://totp/Keyong:acme-analyst?") and secret in enrolled.json()["uri"]
    pending = client.post("/auth/token", json={"api_key": key, "totp": code_of(secret)})
    assert pending.status_code == 401 and "not confirmed" in pending.json()["detail"]
    wrong = client.post("/auth/totp/confirm", json={"api_key": key, "totp": "000000"})
    assert wrong.status_code == 401
    assert client.post("/auth/totp/confirm", json={"api_key": key, "totp": code_of(secret)}).status_code == 200
    remember(key, secret)
    assert client.post("/auth/token", json=token_body(key)).status_code == 200
    # A confirmed factor is not replaced with the key alone: whoever stole the key would swap it.
    again = client.post("/auth/totp/enrol", json={"api_key": key})
    assert again.status_code == 409 and "reset by the agency" in again.json()["detail"]
    assert client.post("/auth/totp/confirm", json={"api_key": key, "totp": code_of(secret)}).status_code == 409
    actions = [e.action for e in instance.ledger.entries(subject="principal:acme-analyst")]
    assert actions.count("principal.totp_enrolled") == 1 and actions.count("principal.totp_confirmed") == 1
    ledgered = repr([e.payload for e in instance.ledger.entries(limit=10_000)])
    assert secret not in ledgered  # never the secret in the ledger
    assert client.post("/auth/totp/enrol", json={"api_key": key[:-4] + "AAAA"}).status_code == 401


def test_wrong_replayed_foreign_and_expired_codes_are_refused_and_recorded(
    api: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, keys, client = api
    operator, agency = keys["operator"], keys["agency"]
    now = CLOCK[0].step()
    good = totp_code(decode(SECRETS[operator]), now)
    details = {}
    details["wrong"] = client.post("/auth/token", json={"api_key": operator, "totp": f"{(int(good) + 1) % 10**6:06d}"})
    foreign = totp_code(decode(SECRETS[agency]), now)  # another principal's secret, the right time
    details["foreign"] = client.post("/auth/token", json={"api_key": operator, "totp": foreign})
    expired = totp_code(decode(SECRETS[operator]), now - 3 * STEP_SECONDS)  # two steps past the skew
    details["expired"] = client.post("/auth/token", json={"api_key": operator, "totp": expired})
    details["malformed"] = client.post("/auth/token", json={"api_key": operator, "totp": "12ab56"})
    details["missing"] = client.post("/auth/token", json={"api_key": operator})
    ok = client.post("/auth/token", json={"api_key": operator, "totp": good})
    assert ok.status_code == 200, ok.text
    details["replayed"] = client.post("/auth/token", json={"api_key": operator, "totp": good})
    # A code of the previous step after a later one was used: older than the last accepted, refused too.
    older = totp_code(decode(SECRETS[operator]), now - STEP_SECONDS)
    details["older"] = client.post("/auth/token", json={"api_key": operator, "totp": older})
    for what, answer in details.items():
        assert answer.status_code == 401 and "access_token" not in answer.json(), what
    assert "wrong" in details["wrong"].json()["detail"] and "wrong" in details["foreign"].json()["detail"]
    assert "expired" in details["expired"].json()["detail"]
    assert "malformed" in details["malformed"].json()["detail"]
    assert "required" in details["missing"].json()["detail"]
    assert "already used" in details["replayed"].json()["detail"]
    assert "already used" in details["older"].json()["detail"]
    issued = instance.ledger.entries(action="auth.token_issued", subject="principal:demo-operator")
    assert len(issued) == 1
    failures = [e for e in _login_failures(client, keys) if e["principal"] == "demo-operator"]
    assert sum(int(str(e["count"])) for e in failures) == len(details)
    stored = repr(failures) + repr([e.payload for e in instance.ledger.entries(limit=10_000)])
    assert good not in stored and foreign not in stored  # never a code


def test_one_step_of_clock_skew_either_way_is_accepted(api: tuple[Instance, dict[str, str], TestClient]) -> None:
    _, keys, client = api
    secret = decode(SECRETS[keys["custodian"]])
    now = CLOCK[0].step(3)
    behind = client.post("/auth/token", json={"api_key": keys["custodian"], "totp": totp_code(secret, now - 30)})
    assert behind.status_code == 200, behind.text
    ahead = client.post("/auth/token", json={"api_key": keys["custodian"], "totp": totp_code(secret, now + 30)})
    assert ahead.status_code == 200, ahead.text
    CLOCK[0].step(2)  # past the step just used ahead


def test_failed_codes_count_toward_the_failed_logins_alert(api: tuple[Instance, dict[str, str], TestClient]) -> None:
    _, keys, client = api
    for _ in range(5):
        assert client.post("/auth/token", json={"api_key": keys["operator"], "totp": "000000"}).status_code == 401
    regulator = bearer(client, keys["regulator"])
    client.app.state.security_buffer.flush()  # type: ignore[attr-defined]
    alerts = client.get("/security/alerts", headers=regulator, params={"state": "open"}).json()
    assert [(a["rule"], a["key"]) for a in alerts] == [("failed_logins_principal", "demo-operator")]


def test_reset_by_the_agency_is_ledgered_and_forces_re_enrolment(
    api: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, keys, client = api
    key = _new_person(instance, "field-custodian")
    enrol_over_api(client, key)
    assert client.post("/auth/token", json=token_body(key)).status_code == 200
    agency = bearer(client, keys["agency"])
    no_reason = client.post("/principals/field-custodian/totp/reset", json={"reason": ""}, headers=agency)
    assert no_reason.status_code == 422
    reset = client.post(
        "/principals/field-custodian/totp/reset", json={"reason": "手机丢失 lost phone"}, headers=agency
    )
    assert reset.status_code == 200 and reset.json()["second_factor"] is None
    (entry,) = instance.ledger.entries(action="principal.totp_reset")
    assert (entry.actor, entry.subject) == ("demo-agency", "principal:field-custodian")
    assert entry.payload == {"reason": "手机丢失 lost phone", "state": "confirmed"}
    refused = client.post("/auth/token", json=token_body(key))  # the old secret's codes are dead
    assert refused.status_code == 401 and "no second factor enrolled" in refused.json()["detail"]
    again = client.post("/principals/field-custodian/totp/reset", json={"reason": "again"}, headers=agency)
    assert again.status_code == 409
    SECRETS.pop(key)
    enrol_over_api(client, key)  # re-enrolment: a new secret, confirmed by its first code
    assert client.post("/auth/token", json=token_body(key)).status_code == 200
    listed = client.get("/principals/field-custodian", headers=agency).json()
    assert listed["second_factor"] == "confirmed"


def test_who_may_not_reset_a_second_factor(api: tuple[Instance, dict[str, str], TestClient]) -> None:
    instance, keys, client = api
    operator, agency = bearer(client, keys["operator"]), bearer(client, keys["agency"])
    reason = {"reason": "x"}
    assert client.post("/principals/demo-custodian/totp/reset", json=reason, headers=operator).status_code == 403
    assert client.post("/principals/demo-operator/totp/reset", json=reason, headers=operator).status_code == 403
    own = client.post("/principals/demo-agency/totp/reset", json=reason, headers=agency)
    assert own.status_code == 403 and "its own second factor" in own.json()["detail"]
    assert client.post("/principals/demo-regulator/totp/reset", json=reason, headers=agency).status_code == 403
    assert client.post("/principals/nobody-here/totp/reset", json=reason, headers=agency).status_code == 404
    with pytest.raises(IdentityPermissionError):
        instance.identity.reset_totp("demo-custodian", by=Principal("demo-operator", Role.OPERATOR), reason="x")
    assert instance.ledger.entries(action="principal.totp_reset") == []
    assert client.post("/auth/token", json=token_body(keys["custodian"])).status_code == 200  # still enrolled


def test_the_secret_is_not_in_the_database_in_clear_and_opens_only_for_its_principal(
    api: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, keys, client = api
    key = _new_person(instance, "clear-check")
    secret = enrol_over_api(client, key)
    raw = decode(secret)
    with instance.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM principal_totp")).all()
        everything = repr(rows)
        sealed = [bytes(r.sealed_secret) for r in rows]
    assert len(rows) == 5  # the four demo principals and this one
    assert secret not in everything and raw.hex() not in everything
    assert all(raw not in blob for blob in sealed)
    if instance.settings.database_url is None:
        database = (instance.home / "keyong.db").read_bytes()
        assert raw not in database and secret.encode() not in database
    # A sealed secret copied onto another principal's row does not open there (its name is bound in).
    with instance.engine.begin() as connection:
        mine = connection.execute(
            text("SELECT t.sealed_secret FROM principal_totp t JOIN principals p ON p.id = t.principal_id "
                 "WHERE p.name = 'clear-check'")
        ).scalar_one()  # fmt: skip
        connection.execute(
            text("UPDATE principal_totp SET sealed_secret = :s WHERE principal_id = "
                 "(SELECT id FROM principals WHERE name = 'demo-operator')"),
            {"s": mine},
        )  # fmt: skip
    moved = client.post("/auth/token", json={"api_key": keys["operator"], "totp": code_of(secret)})
    assert moved.status_code == 401 and "does not open" in moved.json()["detail"]


def test_the_console_offers_enrolment_and_never_a_session_without_a_code(initialised: Initialised) -> None:
    instance, keys = initialised
    key = _new_person(instance, "console-person")
    browser = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    page = browser.post("/console/login", data={"api_key": key}, follow_redirects=False)
    assert page.status_code == 200 and 'id="totp-enrol"' in page.text
    assert "set-cookie" not in page.headers and page.headers["cache-control"] == "no-store"
    secret = page.text.split('id="totp-secret">')[1].split("<")[0]
    assert "otpauth://totp/Keyong:console-person" in page.text
    uri = html.unescape(page.text.split('id="totp-uri" class="wrap">')[1].split("<")[0])
    assert str(qr_svg(uri)).startswith("<svg ") and str(qr_svg(uri)) in page.text  # the code drawn from that URI
    wrong = browser.post("/console/login/enrol", data={"api_key": key, "totp": "000000"}, follow_redirects=False)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    done = browser.post("/console/login/enrol", data={"api_key": key, "totp": code_of(secret)}, follow_redirects=False)
    assert done.status_code == 303 and "keyong_console=" in done.headers["set-cookie"]
    actions = [e.action for e in instance.ledger.entries(subject="principal:console-person")]
    assert actions[-3:] == ["principal.totp_enrolled", "principal.totp_confirmed", "auth.token_issued"]
    # An enrolled principal: the key alone is a failed login, not an enrolment.
    other = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    alone = other.post("/console/login", data={"api_key": keys["operator"]}, follow_redirects=False)
    assert alone.status_code == 401 and "set-cookie" not in alone.headers and "required" in alone.text
    fresh = other.post("/console/login", data={"api_key": key, "totp": code_of(secret)}, follow_redirects=False)
    assert fresh.status_code == 303  # the enrolled factor's next code logs in
    used = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    form = {"api_key": keys["agency"], "totp": code_for(keys["agency"])}
    assert used.post("/console/login", data=form, follow_redirects=False).status_code == 303
    assert used.post("/console/login", data=form, follow_redirects=False).status_code == 401  # the same code again


def test_host_reset_from_the_cli_is_ledgered(initialised: Initialised) -> None:
    instance, keys = initialised
    home = ["--home", str(instance.home)]
    missing = runner.invoke(cli, ["principal", "totp-reset", "demo-operator", *home])
    assert missing.exit_code == 2  # --reason is required
    blank = runner.invoke(cli, ["principal", "totp-reset", "demo-operator", "--reason", " ", *home])
    assert blank.exit_code == 1 and "reason" in blank.output
    done = runner.invoke(cli, ["principal", "totp-reset", "demo-operator", "--reason", "新手机", "--json", *home])
    assert done.exit_code == 0, done.output
    (entry,) = instance.ledger.entries(action="principal.totp_reset")
    assert entry.role == "host" and entry.payload["reason"] == "新手机"
    unknown = runner.invoke(cli, ["principal", "totp-reset", "nobody-here", "--reason", "x", *home])
    assert unknown.exit_code == 1
    with pytest.raises(Exception, match="no second factor enrolled"):
        instance.identity.exchange(keys["operator"], code_for(keys["operator"]))


def test_init_shows_each_demo_principals_secret_once_and_an_older_home_gets_its_key(initialised: Initialised) -> None:
    instance, _keys = initialised
    listed = {p["name"]: p["second_factor"] for p in instance.identity.list_principals()}
    assert set(listed.values()) == {"confirmed"}
    path = instance.home / SECRETS_DIR / TOTP_KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (instance.home / "demo.json").exists()
    # A home made before the second factor existed has no totp.key: opening it makes one (0600), once.
    os.unlink(path)
    made = load_keys(instance.home).totp_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and load_keys(instance.home).totp_key == made
    assert not [p for p in (instance.home / SECRETS_DIR).iterdir() if p.name.startswith(".")]
    assert Path(path).read_text().strip() == made.hex()


def test_the_agency_resets_a_second_factor_from_the_console(initialised: Initialised) -> None:
    instance, keys = initialised
    agency = console_client(instance, keys["agency"])
    page = agency.get("/console/agency/people")
    assert 'action="/console/agency/people/demo-operator/totp-reset"' in page.text
    assert 'action="/console/agency/people/demo-agency/totp-reset"' not in page.text  # never one's own
    csrf = csrf_in(page.text)
    blank = agency.post("/console/agency/people/demo-operator/totp-reset", data={"csrf": csrf, "reason": " "},
                        follow_redirects=False)  # fmt: skip
    assert "reason" in flash(blank) and instance.ledger.entries(action="principal.totp_reset") == []
    done = agency.post("/console/agency/people/demo-operator/totp-reset", data={"csrf": csrf, "reason": "换手机"},
                       follow_redirects=False)  # fmt: skip
    assert "second factor reset" in flash(done)
    (entry,) = instance.ledger.entries(action="principal.totp_reset")
    assert (entry.actor, entry.subject, entry.payload["reason"]) == ("demo-agency", "principal:demo-operator", "换手机")
    regulator = agency.post("/console/agency/people/demo-regulator/totp-reset", data={"csrf": csrf, "reason": "x"},
                            follow_redirects=False)  # fmt: skip
    assert "host administrator" in flash(regulator)
    assert len(instance.ledger.entries(action="principal.totp_reset")) == 1
