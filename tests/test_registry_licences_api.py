"""Operators, licences, findings and scope checks over HTTP (roles enforced) and through the CLI."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from app.cli.licence import finding_cli
from operators import Role
from tests.conftest import bearer
from tests.consent_support import consent_to_access
from tests.people_support import stand
from tests.test_registry_licences import add_dataset, uscc

UNTIL = (date.today() + timedelta(days=365)).isoformat()


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    instance = initialised[0]
    add_dataset(instance.registry, "traffic", industry="交通出行")
    add_dataset(instance.registry, "loans", industry="金融")
    stand(instance, "demo-operator", "rival-ops", "acme-ops")  # the operators' logins stand (issue 22)
    consent_to_access(instance.registry)  # the custodians agreed to access (SATRE 1.5.04)
    return instance


@pytest.fixture
def client(instance: Instance) -> TestClient:
    return TestClient(create_app(instance=instance))


@pytest.fixture
def headers(client: TestClient, instance: Instance, initialised: tuple[Instance, dict[str, str]]) -> dict[str, dict]:
    """Bearer headers by role, plus ``rival``: a second operator principal."""
    _, tokens = initialised
    rival = instance.identity.create_principal("rival-ops", Role.OPERATOR)
    found = {role: bearer(client, key) for role, key in tokens.items()}
    found["rival"] = bearer(client, rival.api_key)
    return found


def _grant_body(operator: str, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "operator": operator,
        "datasets": ["traffic"],
        "scenarios": ["交通出行"],
        "valid_until": UNTIL,
        "publicity_days": 0,
        "reason": "授权运营协议",
    }
    body.update(overrides)
    return body


def _setup(client: TestClient, headers: dict[str, dict]) -> tuple[int, int]:
    agency = headers["agency"]
    for n, name in enumerate(["demo-operator", "rival-ops"], start=1):
        response = client.post("/operators", json={"name": name, "uscc": uscc(n)}, headers=agency)
        assert response.status_code == 201, response.text
    mine = client.post("/licences", json=_grant_body("demo-operator"), headers=agency)
    theirs = client.post("/licences", json=_grant_body("rival-ops"), headers=agency)
    assert mine.status_code == theirs.status_code == 201, mine.text
    return mine.json()["id"], theirs.json()["id"]


def test_an_operator_cannot_read_another_operators_licences(client: TestClient, headers: dict[str, dict]) -> None:
    mine, theirs = _setup(client, headers)
    me = headers["operator"]
    assert [item["id"] for item in client.get("/licences", headers=me).json()] == [mine]
    assert client.get("/licences", params={"operator": "rival-ops"}, headers=me).json() == []
    assert client.get(f"/licences/{mine}", headers=me).json()["operator"] == "demo-operator"
    response = client.get(f"/licences/{theirs}", headers=me)
    assert response.status_code == 404 and response.json()["detail"] == f"no licence {theirs}"
    assert client.get("/operators", headers=me).status_code == 403
    assert client.get("/operators/rival-ops", headers=me).status_code == 404
    assert client.get("/operators/demo-operator", headers=me).json()["qualification"] == "qualified"
    assert client.get("/findings", headers=me).status_code == 403
    assert client.get("/licences", headers=headers["custodian"]).status_code == 403


def test_a_regulator_reads_everything_and_changes_nothing(
    client: TestClient, headers: dict[str, dict], instance: Instance
) -> None:
    mine, theirs = _setup(client, headers)
    regulator = headers["regulator"]
    assert [item["id"] for item in client.get("/licences", headers=regulator).json()] == [mine, theirs]
    shown = client.get(f"/licences/{theirs}", headers=regulator).json()
    assert shown["operator"] == "rival-ops" and shown["state"] == "active"
    assert [e["to_state"] for e in shown["events"]] == ["draft", "active"]
    assert [o["name"] for o in client.get("/operators", headers=regulator).json()] == ["demo-operator", "rival-ops"]
    assert client.get("/findings", headers=regulator).json() == []
    before = instance.ledger.size()
    for method, path, body in [
        ("post", "/operators", {"name": "x-ops", "uscc": uscc(9)}),
        ("post", "/operators/rival-ops/restore", {"reason": "x"}),
        ("post", "/operators/rival-ops/suspend", {"reason": "x"}),
        ("post", "/licences", _grant_body("rival-ops")),
        ("post", f"/licences/{mine}/transition", {"to_state": "revoked", "reason": "x"}),
        ("post", "/findings/1/resolve", {"resolution": "x"}),
        ("post", "/scope-check", {"datasets": ["traffic"], "scenario": "交通出行"}),
    ]:
        response = getattr(client, method)(path, json=body, headers=regulator)
        assert response.status_code == 403, (path, response.text)
    assert instance.ledger.size() == before


def test_the_agency_moves_licences_and_refusals_are_409(client: TestClient, headers: dict[str, dict]) -> None:
    mine, _ = _setup(client, headers)
    agency = headers["agency"]
    bad = client.post("/operators", json={"name": "bad-ops", "uscc": "91230500MA0000000X"}, headers=agency)
    assert bad.status_code == 409 and "统一社会信用代码" in bad.json()["detail"]
    priced = client.post("/licences", json=_grant_body("demo-operator", fee_class="经营性"), headers=agency)
    assert priced.status_code == 409 and "positive price" in priced.json()["detail"]
    moved = client.post(
        f"/licences/{mine}/transition", json={"to_state": "suspended", "reason": "整改"}, headers=agency
    )
    assert moved.status_code == 200 and moved.json()["state"] == "suspended"
    illegal = client.post(f"/licences/{mine}/transition", json={"to_state": "publicity", "reason": "x"}, headers=agency)
    assert illegal.status_code == 409 and "cannot go from suspended to publicity" in illegal.json()["detail"]
    missing = client.get("/licences/999", headers=agency)
    assert missing.status_code == 404
    suspended = client.post("/operators/demo-operator/suspend", json={"reason": "安全检查"}, headers=agency)
    assert suspended.json()["qualification"] == "suspended"
    restored = client.post("/operators/demo-operator/restore", json={"reason": "整改完成"}, headers=agency)
    assert restored.status_code == 200 and restored.json()["qualification"] == "qualified"


def test_scope_check_is_for_the_operators_own_jobs(client: TestClient, headers: dict[str, dict]) -> None:
    """The operator principal's name is the operator name; a refusal carries its kind; no paths leak."""
    mine, _ = _setup(client, headers)
    me, agency = headers["operator"], headers["agency"]
    admitted = client.post("/scope-check", json={"datasets": ["traffic"], "scenario": "交通出行"}, headers=me)
    assert admitted.status_code == 200, admitted.text
    body = admitted.json()
    assert body["licence_id"] == mine and body["operator"] == "demo-operator"
    assert [d["name"] for d in body["datasets"]] == ["traffic"] and "path" not in body["datasets"][0]

    # 金融风控 is a real purpose (rival-ops is licensed for it), not one licensed to this operator.
    assert (
        client.post("/licences", json=_grant_body("rival-ops", scenarios=["金融风控"]), headers=agency).status_code
        == 201
    )
    refused = client.post("/scope-check", json={"datasets": ["traffic"], "scenario": "金融风控"}, headers=me)
    assert refused.status_code == 409
    assert refused.json()["kind"] == "scenario_not_licensed" and "金融风控" in refused.json()["detail"]
    assert (
        client.post("/scope-check", json={"datasets": ["t"], "scenario": "s"}, headers=headers["agency"]).status_code
        == 403
    )
    assert client.get("/findings", headers=agency).json() == []  # a scope check is a dry run: nothing counted
    job = {"datasets": ["traffic"], "kind": "sql", "code": "SELECT 1", "scenario": "金融风控"}
    assert client.post("/jobs", json=job, headers=me).status_code == 409  # the act itself is a violation

    findings = client.get("/findings", headers=headers["agency"]).json()
    assert [f["kind"] for f in findings] == ["out_of_purpose"]
    resolved = client.post(
        f"/findings/{findings[0]['id']}/resolve", json={"resolution": "已约谈"}, headers=headers["agency"]
    )
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    assert client.get("/findings", params={"state": "open"}, headers=headers["regulator"]).json() == []


# --- CLI ------------------------------------------------------------------------------------------


def invoke(*args: str, app: typer.Typer = cli) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_cli_operator_and_licence_lifecycle(instance: Instance) -> None:
    home = ["--home", str(instance.home), "--json"]
    added = invoke("operator", "add", "acme-ops", "--uscc", uscc(1), *home)
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["uscc"] == uscc(1)
    bad = invoke("operator", "add", "bad-ops", "--uscc", "123", *home)
    assert bad.exit_code == 1 and "统一社会信用代码" in bad.stderr

    granted = invoke(
        "licence", "grant", "acme-ops", "--datasets", "traffic", "--scenarios", "交通出行,城市规划",
        "--until", UNTIL, "--epsilon", "traffic=1.5", "--publicity-days", "0", *home,
    )  # fmt: skip
    assert granted.exit_code == 0, granted.output
    licence = json.loads(granted.stdout)
    assert licence["state"] == "active" and licence["scenarios"] == ["交通出行", "城市规划"]
    assert licence["datasets"] == [
        {"name": "traffic", "epsilon_budget": 1.5, "epsilon_spent": 0.0, "link_group": None}  # issue 23: alone
    ]
    assert licence["fee_class"] == "公益" and licence["price_cents"] is None

    publicised = invoke(
        "licence", "grant", "acme-ops", "--datasets", "loans", "--scenarios", "金融风控", "--until", UNTIL,
        "--fee-class", "经营性", "--price-cents", "50000", *home,
    )  # fmt: skip
    assert publicised.exit_code == 0, publicised.output
    pending = json.loads(publicised.stdout)
    assert pending["state"] == "publicity" and pending["publicity_ends_at"]  # default 7 days from the settings
    early = invoke("licence", "activate", str(pending["id"]), "--reason", "早", *home)
    assert early.exit_code == 1 and "公示" in early.stderr

    check = invoke("licence", "check", "acme-ops", "--datasets", "traffic", "--scenario", "交通出行", *home)
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)["datasets"][0]["path"] == "datasets/traffic/v1.parquet"
    out = invoke("licence", "check", "acme-ops", "--datasets", "traffic", "--scenario", "金融风控", *home)
    assert out.exit_code == 1 and "金融风控" in out.stderr and out.stdout == ""
    # A check is a dry run: nothing counted. Submitting the job is the act (超目的调用), and is recorded.
    assert json.loads(invoke("list", *home, app=finding_cli).stdout)["findings"] == []
    code = instance.home / "job.sql"
    code.write_text("SELECT 1", encoding="utf-8")
    submitted = invoke(
        "job", "submit", "--operator", "acme-ops", "--dataset", "traffic", "--kind", "sql", "--file", str(code),
        "--scenario", "金融风控", *home,
    )  # fmt: skip
    assert submitted.exit_code == 1 and "金融风控" in submitted.stderr

    suspended = invoke("licence", "suspend", "acme-ops", "--reason", "超目的调用", *home)
    assert [item["id"] for item in json.loads(suspended.stdout)["suspended"]] == [licence["id"]]
    wrong = invoke("licence", "activate", str(licence["id"]), "--reason", "x", *home)
    assert wrong.exit_code == 1 and "licence restore" in wrong.stderr
    restored = invoke("licence", "restore", str(licence["id"]), "--reason", "整改完成", *home)
    assert json.loads(restored.stdout)["state"] == "active"
    revoked = invoke("licence", "revoke", str(licence["id"]), "--reason", "协议终止", *home)
    assert json.loads(revoked.stdout)["state"] == "revoked"

    shown = invoke("licence", "show", str(licence["id"]), *home)
    events = [(e["from_state"], e["to_state"]) for e in json.loads(shown.stdout)["events"]]
    assert events == [(None, "draft"), ("draft", "active"), ("active", "suspended"), ("suspended", "active"),
                      ("active", "revoked")]  # fmt: skip
    listed = invoke("licence", "list", "--state", "publicity", *home)
    assert [item["id"] for item in json.loads(listed.stdout)["licences"]] == [pending["id"]]
    swept = invoke("licence", "sweep", *home)
    assert json.loads(swept.stdout) == {"activated": [], "expired": [], "idle_findings": []}

    findings = invoke("list", *home, app=finding_cli)
    (finding,) = json.loads(findings.stdout)["findings"]
    assert finding["kind"] == "out_of_purpose" and finding["operator"] == "acme-ops"
    resolved = invoke("resolve", str(finding["id"]), "--resolution", "已整改", *home, app=finding_cli)
    assert json.loads(resolved.stdout)["state"] == "resolved"

    operators = invoke("operator", "list", *home)
    assert [o["name"] for o in json.loads(operators.stdout)["operators"]] == ["acme-ops"]
    bad_date = invoke("licence", "grant", "acme-ops", "--datasets", "traffic", "--scenarios", "s", "--until", "soon")
    assert bad_date.exit_code == 2


def test_cli_human_output(instance: Instance) -> None:
    home = ["--home", str(instance.home)]
    assert invoke("operator", "add", "acme-ops", "--uscc", uscc(1), *home).exit_code == 0
    granted = invoke(
        "licence", "grant", "acme-ops", "--datasets", "traffic", "--scenarios", "交通出行", "--until", UNTIL, *home
    )
    assert granted.exit_code == 0 and "公示 until" in granted.stdout
    listed = invoke("licence", "list", *home)
    assert "acme-ops" in listed.stdout and "publicity" in listed.stdout


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--publicity-days", "366", "publicity days"),
        ("--publicity-days", "99999999999999999999", "publicity days"),
        ("--publicity-days", "-1", "publicity days"),
        ("--until", "9999-12-31", "valid_until"),
        ("--epsilon", "1e300", "privacy budget"),
    ],
)
def test_cli_refuses_out_of_range_licence_knobs_with_exit_1(
    instance: Instance, option: str, value: str, message: str
) -> None:
    """The bounds live in the domain (registry.licence_terms), so the CLI path refuses what the API refuses:
    exit 1 with the bound named, no traceback, and no licence written (issue 17)."""
    home = ["--home", str(instance.home), "--json"]
    assert invoke("operator", "add", "acme-ops", "--uscc", uscc(1), *home).exit_code == 0
    args = {"--until": UNTIL, "--publicity-days": "0", "--epsilon": "1.0", option: value}
    refused = invoke(
        "licence", "grant", "acme-ops", "--datasets", "traffic", "--scenarios", "交通出行",
        *[part for pair in args.items() for part in pair], *home,
    )  # fmt: skip
    assert refused.exit_code == 1, refused.output
    assert message in refused.stderr and "Traceback" not in refused.output and refused.stdout == ""
    assert json.loads(invoke("licence", "list", *home).stdout)["licences"] == []


def test_price_bounds_hold_in_the_domain(instance: Instance) -> None:
    """A price past the INTEGER column is refused by the registry itself, whoever calls it."""
    from core import Actor, RegistryError

    instance.registry.licences.add_operator("acme-ops", uscc(1), by=Actor.host())
    with pytest.raises(RegistryError, match="price_cents"):
        instance.registry.licences.grant(
            "acme-ops", datasets=["traffic"], scenarios=["交通出行"], valid_until=date.fromisoformat(UNTIL),
            fee_class="经营性", price_cents=2**31, publicity_days=0, by=Actor.host(), reason="r",
        )  # fmt: skip
