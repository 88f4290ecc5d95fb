"""An operator's first login over the API and the console, and what ``principal add --org`` means (issue 17).

First login: ``POST /operators/{name}/login`` and the agency console's people page create the registered
operator's login, as ``keyong operator add --login`` does; the key is in that one answer only
(``no-store``), never in a URL or a flash message, and only its digest is stored. Organisations
(``operators.organisations``): an operator principal's organisation is a registered operator (name or
统一社会信用代码) and the principal bears its name; a custodian, agency or regulator principal never
belongs to a registered operator (三权分置, 双鸭山 第四十四条); an unknown organisation is a usage error
with a suggestion, on the CLI (exit 1) and the API (422) alike, and nothing is written.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from app.demo.scenario import demo_uscc
from core import Actor
from tests.console_support import console_client, csrf_in, flash
from tests.totp_support import token_body

KEY_RE = re.compile(r"ky_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
ACME_USCC = demo_uscc("MA1D2E3F7")
Initialised = tuple[Instance, dict[str, str]]


@pytest.fixture
def acme(initialised: Initialised) -> Initialised:
    """The initialised instance with a registered operator ``acme-ops`` that has no login yet."""
    initialised[0].registry.licences.add_operator("acme-ops", ACME_USCC, by=Actor.host())
    return initialised


def token(client: TestClient, api_key: str) -> dict[str, str]:
    response = client.post("/auth/token", json=token_body(api_key, client))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def stored_text(instance: Instance) -> str:
    """Everything the database holds about principals, keys and the ledger, as one text to search."""
    with instance.engine.connect() as connection:
        rows: list[Any] = []
        for table in ("principals", "api_keys", "ledger_entries"):
            rows += connection.execute(text(f"SELECT * FROM {table}")).all()
    return "\n".join(map(str, rows))


# --- first login over the API ------------------------------------------------------------------------


def test_api_creates_an_operators_first_login_once(acme: Initialised) -> None:
    instance, keys = acme
    client = TestClient(create_app(instance=instance))
    agency = token(client, keys["agency"])
    made = client.post("/operators/acme-ops/login", headers=agency)
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    body = made.json()
    assert set(body) == {"principal", "role", "key_id", "api_key", "replaced"}
    assert body["principal"] == "acme-ops" and body["role"] == "operator" and KEY_RE.fullmatch(body["api_key"])
    # The login works, acts as the operator, and belongs to it.
    me = client.get("/me", headers=token(client, body["api_key"]))
    assert me.json() == {"name": "acme-ops", "role": "operator"}
    assert instance.identity.get_principal("acme-ops")["org"] == "acme-ops"
    # Never stored in clear: not the secret, not the whole key (only the digest is kept).
    assert body["api_key"].split("_", 2)[2] not in stored_text(instance)
    # A first login is made once; the key is never shown again.
    again = client.post("/operators/acme-ops/login", headers=agency)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    assert body["api_key"] not in client.get("/principals/acme-ops", headers=agency).text


def test_api_first_login_refusals(acme: Initialised) -> None:
    instance, keys = acme
    client = TestClient(create_app(instance=instance))
    agency = token(client, keys["agency"])
    unknown = client.post("/operators/acme-opz/login", headers=agency)
    assert unknown.status_code == 422
    assert "not a registered operator" in unknown.json()["detail"] and "acme-ops" in unknown.json()["detail"]
    assert "acme-opz" not in {p["name"] for p in instance.identity.list_principals()}
    for role in ("operator", "custodian", "regulator"):
        refused = client.post("/operators/acme-ops/login", headers=token(client, keys[role]))
        assert refused.status_code == 403, (role, refused.text)
    assert client.post("/operators/acme-ops/login").status_code == 401
    assert client.post("/operators/Not%20A%20Name/login", headers=agency).status_code == 422
    assert "acme-ops" not in {p["name"] for p in instance.identity.list_principals()}


# --- first login in the console ----------------------------------------------------------------------


def test_console_creates_an_operators_first_login_shown_once(acme: Initialised) -> None:
    instance, keys = acme
    browser = console_client(instance, keys["agency"])
    page = browser.get("/console/agency/people")
    assert page.status_code == 200 and '<option value="acme-ops">' in page.text
    assert '<option value="demo-operator">' not in page.text  # it has a login already
    csrf = csrf_in(page.text)

    forged = browser.post("/console/agency/people/first-login", data={"operator": "acme-ops"})
    assert forged.status_code == 403
    assert "acme-ops" not in {p["name"] for p in instance.identity.list_principals()}

    made = browser.post("/console/agency/people/first-login", data={"csrf": csrf, "operator": "acme-ops"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    assert str(made.url).endswith("/console/agency/people/first-login") and not made.history  # no redirect
    (shown,) = KEY_RE.findall(made.text)
    assert shown not in str(made.url)
    assert instance.identity.authenticate_api_key(shown).name == "acme-ops"
    assert shown.split("_", 2)[2] not in stored_text(instance)
    later = browser.get("/console/agency/people")
    assert KEY_RE.findall(later.text) == [] and '<option value="acme-ops">' not in later.text

    twice = browser.post(
        "/console/agency/people/first-login", data={"csrf": csrf, "operator": "acme-ops"}, follow_redirects=False
    )
    assert twice.status_code == 303 and "already exists" in flash(twice)
    assert not KEY_RE.search(twice.headers["location"]) and not KEY_RE.search(twice.text)
    unknown = browser.post(
        "/console/agency/people/first-login", data={"csrf": csrf, "operator": "nobody-ops"}, follow_redirects=False
    )
    assert unknown.status_code == 303 and "not a registered operator" in flash(unknown)


# --- principal add --org -----------------------------------------------------------------------------


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


def test_cli_operator_org_must_be_a_registered_operator(acme: Initialised) -> None:
    instance, _ = acme
    home = ["--home", str(instance.home), "--json"]
    before = instance.ledger.size()
    typo = invoke("principal", "add", "acme-ops", "--role", "operator", "--org", "acme-opz", *home)
    assert typo.exit_code == 1 and "not a registered operator" in typo.stderr
    assert "did you mean acme-ops" in typo.stderr and typo.stdout == "" and "Traceback" not in typo.output
    other = invoke("principal", "add", "acme-analyst", "--role", "operator", "--org", "acme-ops", *home)
    assert other.exit_code == 1 and "name it 'acme-ops'" in other.stderr
    assert instance.ledger.size() == before  # nothing written
    assert {"acme-ops", "acme-analyst"}.isdisjoint(p["name"] for p in instance.identity.list_principals())

    by_code = invoke("principal", "add", "acme-ops", "--role", "operator", "--org", ACME_USCC.lower(), *home)
    assert by_code.exit_code == 0, by_code.output
    assert json.loads(by_code.stdout)["org"] == "acme-ops"  # stored as the operator's name


@pytest.mark.parametrize("role", ["custodian", "agency", "regulator"])
def test_cli_other_roles_never_belong_to_an_operator(acme: Initialised, role: str) -> None:
    """三权分置 (双鸭山 第四十四条): an operating company's staff hold no custodian, agency or regulator role."""
    instance, _ = acme
    home = ["--home", str(instance.home), "--json"]
    for org in ("acme-ops", ACME_USCC):
        refused = invoke("principal", "add", "acme-insider", "--role", role, "--org", org, *home)
        assert refused.exit_code == 1 and "三权分置" in refused.stderr, refused.output
    body = invoke("principal", "add", "city-staff", "--role", role, "--org", "市数据局", *home)
    assert body.exit_code == 0, body.output
    assert json.loads(body.stdout)["org"] == "市数据局"


def test_api_applies_the_same_org_rule(acme: Initialised) -> None:
    instance, keys = acme
    client = TestClient(create_app(instance=instance))
    agency = token(client, keys["agency"])
    unknown = client.post(
        "/principals", json={"name": "acme-ops", "role": "operator", "org": "acme-opz"}, headers=agency
    )
    assert unknown.status_code == 422 and "did you mean acme-ops" in unknown.json()["detail"]
    insider = client.post(
        "/principals", json={"name": "acme-custodian", "role": "custodian", "org": ACME_USCC}, headers=agency
    )
    assert insider.status_code == 422 and "三权分置" in insider.json()["detail"]
    ok = client.post("/principals", json={"name": "acme-ops", "role": "operator", "org": "acme-ops"}, headers=agency)
    assert ok.status_code == 201, ok.text
