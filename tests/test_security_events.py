"""Security events (issue 22; SATRE 2.5.03; 黑龙江 第三十八条 用户权限、访问控制和日志管理).

Attacks, over the API and the console: a wrong API key, a forged token, a revoked key's token, a role
reaching beyond itself, an out-of-scope job — each leaves a security event (time, kind, principal or
claimed name, source, route), never the key or token. A flood is aggregated into bounded rows; a
threshold raises an alert, ledgered; the regulator alone acknowledges it, ledgered. Both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from app import Instance, create_app
from core import Actor, PermissionDeniedError, RegistryError
from registry import RegistryConfig, SecurityEventKind, SecurityEvents, SecurityPolicy
from registry.security_models import SecurityAlertRow, SecurityEventRow
from tests.conftest import FakeClock, bearer
from tests.console_support import ORIGIN, console_client, csrf_of, flash
from tests.job_worker_proc import OPERATOR, SCENARIO, licensed
from tests.test_registry_licences import add_dataset

REGULATOR = Actor("demo-regulator", "regulator")
AGENCY = Actor("demo-agency", "agency")


@pytest.fixture
def api(initialised: tuple[Instance, dict[str, str]]) -> Iterator[tuple[Instance, dict[str, str], TestClient]]:
    instance, keys = initialised
    yield instance, keys, TestClient(create_app(instance=instance), raise_server_exceptions=False)


def _wrong_secret(api_key: str) -> str:
    """The same key id with another secret: a guess at a known person's key."""
    prefix, key_id, secret = api_key.split("_", 2)
    return f"{prefix}_{key_id}_{'A' * len(secret) if secret[0] != 'A' else 'B' * len(secret)}"


def _events(client: TestClient, regulator: dict[str, str], **params: str) -> list[dict[str, object]]:
    response = client.get("/security/events", headers=regulator, params=params)
    assert response.status_code == 200, response.text
    return list(response.json())


def _stored(instance: Instance) -> str:
    """Everything the security tables and the ledger hold, as one text to search for secrets."""
    with instance.engine.connect() as connection:
        rows = [
            *connection.execute(text("SELECT * FROM security_events")).all(),
            *connection.execute(text("SELECT * FROM security_alerts")).all(),
        ]
    return repr(rows) + repr([e.payload for e in instance.ledger.entries()])


def test_a_failed_api_login_is_recorded_with_the_claimed_principal_never_the_key(
    api: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, keys, client = api
    guess = _wrong_secret(keys["operator"])
    assert client.post("/auth/token", json={"api_key": guess}).status_code == 401
    regulator = bearer(client, keys["regulator"])
    (event,) = _events(client, regulator, kind="login_failed")
    assert event["principal"] == "demo-operator" and event["source"] == "testclient"
    assert event["route"] == "POST /auth/token" and event["count"] == 1 and event["detail"] == "unknown API key"
    stored = _stored(instance)
    for secret in (guess, guess.split("_", 2)[2], keys["operator"].split("_", 2)[2]):
        assert secret not in stored


def test_a_failed_console_login_is_recorded(api: tuple[Instance, dict[str, str], TestClient]) -> None:
    instance, keys, client = api
    browser = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    page = browser.post("/console/login", data={"api_key": _wrong_secret(keys["agency"])}, follow_redirects=False)
    assert page.status_code == 401
    browser.app.state.security_buffer.flush()  # another app than ``client``'s: its own pending counts  # type: ignore[attr-defined]
    (event,) = _events(client, bearer(client, keys["regulator"]), kind="login_failed")
    assert event["principal"] == "demo-agency" and event["route"] == "POST /console/login"


def test_forged_expired_revoked_and_missing_tokens_are_recorded(
    api: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, keys, client = api
    now = datetime.now(UTC)
    claims = {"sub": "demo-agency", "role": "agency", "iss": "keyong", "aud": "keyong-api", "jti": "x" * 32}
    forged = jwt.encode({**claims, "iat": now, "exp": now + timedelta(minutes=5)}, "k" * 64, algorithm="HS256")
    assert client.get("/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    operator = bearer(client, keys["operator"])
    instance.identity.revoke_api_key(keys["operator"].split("_")[1])
    assert client.get("/me", headers=operator).status_code == 401
    assert client.get("/me").status_code == 401
    events = _events(client, bearer(client, keys["regulator"]), kind="token_rejected")
    seen = {(e["principal"], e["detail"]) for e in events}
    assert ("demo-agency", "token signature does not verify") in seen  # the name a forgery claimed
    assert ("demo-operator", "API key revoked") in seen
    assert ("-", "missing bearer token") in seen
    assert forged not in _stored(instance) and operator["Authorization"][7:] not in _stored(instance)


def test_authorization_refusals_are_recorded_against_the_principal(
    api: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, keys, client = api
    operator = bearer(client, keys["operator"])
    assert client.get("/security/events", headers=operator).status_code == 403
    assert client.post("/platform/unfreeze", headers=operator, json={"reason": "x"}).status_code == 403
    browser = console_client(instance, keys["operator"])
    assert browser.get("/console/regulator/security").status_code == 403
    browser.app.state.security_buffer.flush()  # type: ignore[attr-defined]
    events = _events(client, bearer(client, keys["regulator"]), kind="forbidden", principal="demo-operator")
    # one row per window counts the three refusals; it names the route of the latest written
    assert sum(int(e["count"]) for e in events) == 3
    routes = {"GET /security/events", "POST /platform/unfreeze", "GET /console/regulator/security"}
    assert events[0]["route"] in routes and events[0]["source"] == "testclient"


def test_an_out_of_scope_job_is_a_security_event(instance: Instance) -> None:
    licensed(instance.registry, instance.home)
    add_dataset(instance.registry, "buses", industry="交通出行")  # published, but not licensed to the operator
    with pytest.raises(RegistryError, match="refused"):
        instance.jobs.submit(OPERATOR, ["buses"], "sql", "select 1", SCENARIO)
    (event,) = instance.registry.security.events(viewer=REGULATOR, kind="scope_refused")
    assert event["principal"] == OPERATOR and str(event["detail"]).startswith("scope:")


def test_a_flood_of_failed_logins_is_one_row_with_its_count(api: tuple[Instance, dict[str, str], TestClient]) -> None:
    instance, keys, client = api
    guess = _wrong_secret(keys["custodian"])
    for _ in range(40):
        assert client.post("/auth/token", json={"api_key": guess}).status_code == 401
    client.app.state.security_buffer.flush()  # type: ignore[attr-defined]
    with instance.engine.connect() as connection:
        rows = connection.execute(select(func.count(), func.sum(SecurityEventRow.count))).one()
    assert rows[0] <= 2 and rows[1] == 40  # two rows only if a window boundary fell inside


def test_names_and_sources_a_flood_invents_cannot_grow_the_table(instance: Instance) -> None:
    """Claimed names and addresses are the attacker's: each window keeps at most its row cap (+1 per kind)."""
    clock = FakeClock()
    policy = SecurityPolicy(max_rows_per_window=30, max_rows_per_source=5, max_alerts_per_window=4)
    events = SecurityEvents(instance.registry.recorder, RegistryConfig(home=instance.home, clock=clock), policy)
    for i in range(300):
        events.record("login_failed", source="10.0.0.1", principal=f"nobody-{i}", route="POST /auth/token")
    for i in range(300):
        events.record("token_rejected", source=f"10.1.{i // 250}.{i % 250}", principal=f"x{i}", route="GET /me")
    with instance.engine.connect() as connection:
        rows, total = connection.execute(select(func.count(), func.sum(SecurityEventRow.count))).one()
        overflow = connection.execute(select(SecurityEventRow).where(SecurityEventRow.principal == "*")).all()
    assert rows <= policy.max_rows_per_window + len(SecurityEventKind) and total == 600
    assert overflow  # folded, counted, not dropped
    clock.advance(minutes=10)  # a new window: the cap is per window
    events.record("login_failed", source="10.0.0.1", principal="nobody-1", route="POST /auth/token")
    with instance.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(SecurityEventRow)) == rows + 1
        alerts = connection.scalar(select(func.count()).select_from(SecurityAlertRow))
    assert alerts <= policy.max_alerts_per_window + 1


def test_failed_logins_past_the_threshold_raise_an_alert_the_regulator_acknowledges(
    api: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, keys, client = api
    guess = _wrong_secret(keys["operator"])
    for _ in range(4):
        client.post("/auth/token", json={"api_key": guess})
    regulator, agency = bearer(client, keys["regulator"]), bearer(client, keys["agency"])
    assert client.get("/security/alerts", headers=regulator).json() == []
    client.post("/auth/token", json={"api_key": guess})  # the fifth within 15 minutes
    (alert,) = client.get("/security/alerts", headers=regulator, params={"state": "open"}).json()
    assert alert["rule"] == "failed_logins_principal" and alert["key"] == "demo-operator" and alert["count"] == 5
    (raised,) = instance.ledger.entries(action="security.alert_raised")
    assert "demo-operator" not in repr(raised.payload)  # a claimed name is an attacker's text: hashed
    path = f"/security/alerts/{alert['id']}/acknowledge"
    assert client.post(path, headers=agency, json={"note": "mine"}).status_code == 403
    done = client.post(path, headers=regulator, json={"note": "用户输错密钥,已核实"})
    assert done.status_code == 200 and done.json()["state"] == "acknowledged"
    assert done.json()["acknowledged_by"] == "demo-regulator"
    assert client.post(path, headers=regulator, json={"note": "again"}).status_code == 409
    (acked,) = instance.ledger.entries(action="security.alert_acknowledged")
    assert acked.actor == "demo-regulator" and acked.subject == f"security-alert:{alert['id']}"
    client.post("/auth/token", json={"api_key": guess})  # counted after the acknowledgement only
    assert client.get("/security/alerts", headers=regulator, params={"state": "open"}).json() == []
    assert instance.ledger.verify().ok


def test_only_the_regulator_acknowledges_and_only_with_a_note(instance: Instance) -> None:
    instance.registry.security.record("login_failed", source="10.0.0.9", principal="demo-custodian", route="x")
    (event,) = instance.registry.security.events(viewer=AGENCY)
    with pytest.raises(PermissionDeniedError):
        instance.registry.security.acknowledge_event(int(event["id"]), note="ok", by=AGENCY)
    with pytest.raises(RegistryError, match="note"):
        instance.registry.security.acknowledge_event(int(event["id"]), note="  ", by=REGULATOR)
    with pytest.raises(PermissionDeniedError):
        instance.registry.security.events(viewer=Actor("acme", "operator"))
    done = instance.registry.security.acknowledge_event(int(event["id"]), note="checked", by=REGULATOR)
    assert done["acknowledged_by"] == "demo-regulator"
    assert instance.registry.security.events(viewer=REGULATOR, acknowledged=False) == []


def test_the_regulator_reviews_and_acknowledges_in_the_console(
    api: tuple[Instance, dict[str, str], TestClient], tmp_path: Path
) -> None:
    instance, keys, client = api
    guess = _wrong_secret(keys["operator"])
    for _ in range(5):
        client.post("/auth/token", json={"api_key": guess})
    # The console below is a second app (as a second server process would be): a reader flushes only its own
    # process's buffer, so the refusals counted by the API's app are written by its timer, here at once.
    client.app.state.security_buffer.flush()  # type: ignore[attr-defined]
    browser = console_client(instance, keys["regulator"])
    page = browser.get("/console/regulator/security", params={"kind": "login_failed"})
    assert page.status_code == 200 and "demo-operator" in page.text and "failed_logins_principal" in page.text
    (alert,) = instance.registry.security.alerts(viewer=REGULATOR)
    done = browser.post(
        f"/console/regulator/security/alerts/{alert['id']}/acknowledge",
        data={"csrf": csrf_of(browser, "/console/regulator/security"), "note": "已核实"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "acknowledged" in flash(done)
    assert instance.registry.security.alerts(viewer=REGULATOR)[0]["state"] == "acknowledged"
    agency = console_client(instance, keys["agency"])
    seen = agency.get("/console/agency/security")
    assert seen.status_code == 200 and "/acknowledge" not in seen.text  # the agency reads, it does not acknowledge


def test_after_an_acknowledgement_a_new_alert_needs_new_events(instance: Instance) -> None:
    clock = FakeClock()
    events = SecurityEvents(instance.registry.recorder, RegistryConfig(home=instance.home, clock=clock))

    def fail(times: int) -> None:
        for _ in range(times):
            events.record("login_failed", source="10.0.0.2", principal="demo-agency", route="POST /auth/token")

    fail(5)
    (alert,) = events.alerts(viewer=REGULATOR, state="open")
    events.acknowledge_alert(int(alert["id"]), note="checked", by=REGULATOR)
    clock.advance(minutes=1)
    fail(4)
    assert events.alerts(viewer=REGULATOR, state="open") == []
    fail(1)
    (again,) = events.alerts(viewer=REGULATOR, state="open")
    assert again["id"] != alert["id"] and again["count"] == 5
    events.acknowledge_alert(int(again["id"]), note="checked again", by=REGULATOR)
    clock.advance(minutes=20)  # all of it out of the 15 minutes
    fail(4)
    assert events.alerts(viewer=REGULATOR, state="open") == []
    fail(1)
    assert len(events.alerts(viewer=REGULATOR, state="open")) == 1


def test_concurrent_recorders_lose_no_count(instance: Instance) -> None:
    """A flood arrives on many connections at once: every event is counted, into one row."""
    from concurrent.futures import ThreadPoolExecutor

    def flood(_: int) -> None:
        for _ in range(15):
            instance.registry.security.record("token_rejected", source="10.9.9.9", principal="-", route="GET /me")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(flood, range(4)))
    with instance.engine.connect() as connection:
        rows, total = connection.execute(select(func.count(), func.sum(SecurityEventRow.count))).one()
    assert total == 60 and rows <= 2  # two rows only if a window boundary fell inside


def test_the_servers_buffer_is_bounded_and_loses_no_count(instance: Instance) -> None:
    """Between writes a server holds counters, not requests; invented names past the bound fold into '*'."""
    from app.api.security import MAX_PENDING, SecurityBuffer

    buffer = SecurityBuffer(instance.registry.security)
    for i in range(MAX_PENDING + 500):
        buffer.add(SecurityEventKind.LOGIN_FAILED, "10.2.0.1", f"made-up-{i}", "POST /auth/token", "unknown API key")
    assert len(buffer._pending) <= MAX_PENDING + 1
    buffer.flush()
    assert buffer._pending == {}
    with instance.engine.connect() as connection:
        rows, total = connection.execute(select(func.count(), func.sum(SecurityEventRow.count))).one()
    assert total == MAX_PENDING + 500 and rows <= SecurityPolicy().max_rows_per_window + len(SecurityEventKind)
