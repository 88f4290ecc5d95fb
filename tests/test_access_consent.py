"""Nobody reaches a dataset without its custodian's agreement (SATRE 1.5.04; issue 22; 双鸭山 第三十三条
提供给第三方的应当经数据提供部门同意, 第四十四条 三权分置).

A licence becomes active only when, for every dataset in its scope, the dataset's custodian agreed to it
(its own act) or recorded a standing access delegation to the agency. Each test is an attack that must
fail or the one way that works. Both databases.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from core import Actor, PermissionDeniedError, RegistryError
from operators import Role
from registry import PlatformFrozenError, Registry, RegistryConfig, ScopeRefusedError
from tests.conftest import FakeClock, bearer
from tests.people_support import stand
from tests.recovery_support import confirm, issue_key
from tests.test_registry_licences import add_dataset, uscc
from tests.totp_support import code_by_name, create_enrolled

AGENCY = Actor("demo-agency", "agency")
OPERATOR = "acme-ops"
SCENARIO = "交通出行"
TRAFFIC_ORG = "双鸭山市交通运输局"  # add_dataset's provider
TRAFFIC = Actor("traffic-custodian", "custodian")
POLICE = Actor("police-custodian", "custodian")  # a custodian of another organisation
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYONG_API_KEY", raising=False)


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    """Two datasets of the traffic bureau, a qualified operator whose people stand, no agreement yet."""
    instance = initialised[0]
    add_dataset(instance.registry, "traffic")
    add_dataset(instance.registry, "buses")
    instance.registry.licences.add_operator(OPERATOR, uscc(1), by=AGENCY)
    stand(instance, OPERATOR)
    create_enrolled(instance.identity, TRAFFIC.name, Role.CUSTODIAN, org=TRAFFIC_ORG)
    create_enrolled(instance.identity, POLICE.name, Role.CUSTODIAN, org="双鸭山市公安局")
    for name in (TRAFFIC.name, POLICE.name):  # made by the host after init: a second person confirms (3.2.01)
        confirm(instance.identity, name)
    return instance


def _grant(instance: Instance, *datasets: str, publicity_days: int = 0) -> int:
    return instance.registry.licences.grant(
        OPERATOR, datasets=list(datasets), scenarios=[SCENARIO], publicity_days=publicity_days,
        valid_until=instance.registry.config.now().date() + timedelta(days=365), by=AGENCY, reason="授权运营协议",
    ).id  # fmt: skip


def test_a_licence_waits_for_every_custodians_agreement_and_jobs_are_refused_with_the_reason(
    instance: Instance,
) -> None:
    registry = instance.registry
    licence = _grant(instance, "traffic", "buses")
    assert registry.licences.get(licence, viewer=AGENCY).state == "draft"  # absent agreement: not active
    (waiting,) = instance.ledger.entries(action="licence.awaiting_consent")
    assert "traffic, buses" in waiting.payload["refusal"] or "buses, traffic" in waiting.payload["refusal"]
    with pytest.raises(ScopeRefusedError, match="await their custodian's agreement"):
        registry.licences.check_scope(OPERATOR, ["traffic"], SCENARIO)
    with pytest.raises(RegistryError, match="await their custodian's agreement"):
        registry.licences.transition(licence, "active", by=AGENCY, reason="try")
    consent = registry.licence_consent
    # Nobody but the dataset's own custodian decides: not the host, the agency, the operator, another org.
    for other in (Actor.host(), AGENCY, Actor(OPERATOR, "operator"), POLICE, Actor("forged", "custodian")):
        with pytest.raises(PermissionDeniedError):
            consent.decide(licence, "traffic", "agree", by=other, reason="我同意")
    assert instance.ledger.entries(action="licence.access_agreed") == []
    with pytest.raises(RegistryError, match="reason"):
        consent.decide(licence, "traffic", "agree", by=TRAFFIC, reason="  ")
    with pytest.raises(RegistryError, match="one of"):
        consent.decide(licence, "traffic", "maybe", by=TRAFFIC, reason="r")
    agreed = consent.decide(licence, "traffic", "agree", by=TRAFFIC, reason="同意用于交通分析")
    assert agreed.datasets["traffic"]["status"] == "agreed" and not agreed.complete
    with pytest.raises(RegistryError, match="buses"):  # one of two is not enough
        registry.licences.transition(licence, "active", by=AGENCY, reason="try")
    with pytest.raises(RegistryError, match="already decided"):
        consent.decide(licence, "traffic", "refuse", by=TRAFFIC, reason="改主意")
    assert [v.licence for v in consent.awaiting(by=TRAFFIC)] == [licence]
    assert consent.awaiting(by=POLICE) == []
    assert consent.decide(licence, "buses", "agree", by=TRAFFIC, reason="同意").complete
    assert registry.licences.transition(licence, "active", by=AGENCY, reason="同意齐备").state == "active"
    assert registry.licences.check_scope(OPERATOR, ["traffic"], SCENARIO).licence_id == licence
    (entry,) = instance.ledger.entries(action="licence.activated")
    assert entry.payload["consent"] == {"traffic": f"agreed:{TRAFFIC.name}", "buses": f"agreed:{TRAFFIC.name}"}
    first = instance.ledger.entries(action="licence.access_agreed")[0]
    assert (first.actor, first.role, first.subject) == (TRAFFIC.name, "custodian", f"licence:{licence}")
    with pytest.raises(RegistryError, match="is active"):  # decisions are made before activation
        consent.decide(licence, "traffic", "refuse", by=TRAFFIC, reason="太迟")


def test_a_refusal_keeps_the_licence_inactive_also_after_its_publicity(instance: Instance, clock: FakeClock) -> None:
    config = RegistryConfig(home=instance.home, clock=clock, vault_key=instance.keys.vault_key)
    registry = Registry(instance.engine, instance.ledger, config, custodians=instance.active_custodians)
    clock.now = instance.registry.config.now()
    licence = registry.licences.grant(
        OPERATOR, datasets=["traffic"], scenarios=[SCENARIO], publicity_days=1,
        valid_until=clock.now.date() + timedelta(days=365), by=AGENCY, reason="授权运营协议",
    ).id  # fmt: skip
    assert registry.licences.get(licence, viewer=AGENCY).state == "publicity"
    refused = registry.licence_consent.decide(licence, "traffic", "refuse", by=TRAFFIC, reason="涉及在途案件数据")
    assert refused.datasets["traffic"]["status"] == "refused" and not refused.complete
    (entry,) = instance.ledger.entries(action="licence.access_refused")
    assert entry.actor == TRAFFIC.name and "reason_sha256" in entry.payload and "reason" not in entry.payload
    clock.advance(days=2)  # 公示 over, no objection: only the refusal stands in the way
    assert registry.licences.activate_due(by=AGENCY) == []
    with pytest.raises(RegistryError, match="refused access to traffic"):
        registry.licences.transition(licence, "active", by=AGENCY, reason="try")
    assert registry.licences.transition(licence, "revoked", by=AGENCY, reason="托管方不同意").state == "revoked"


def test_a_standing_access_delegation_activates_at_grant_and_its_withdrawal_binds_new_licences(
    instance: Instance,
) -> None:
    registry = instance.registry
    for other in (Actor.host(), AGENCY, POLICE):
        with pytest.raises(PermissionDeniedError):
            registry.access.delegate("traffic", by=other, reason="不是我的数据")
    view = registry.access.delegate("traffic", by=TRAFFIC, reason="交通汇总类授权委托实施机构决定")
    assert view.mode == "delegated" and registry.egress.get("traffic").mode == "signoff"  # two separate says
    (delegated,) = instance.ledger.entries(action="dataset.access_delegated")
    assert delegated.actor == TRAFFIC.name and instance.ledger.entries(action="dataset.egress_delegated") == []
    first = _grant(instance, "traffic")
    assert registry.licences.get(first, viewer=AGENCY).state == "active"
    (activated,) = instance.ledger.entries(action="licence.activated")
    assert activated.payload["consent"] == {"traffic": f"delegated:{view.delegation['id']}"}  # type: ignore[index]
    assert registry.access.withdraw("traffic", by=TRAFFIC, reason="恢复逐项同意").mode == "agreement"
    second = _grant(instance, "traffic")
    assert registry.licences.get(second, viewer=AGENCY).state == "draft"  # the withdrawal binds new licences
    assert registry.licences.get(first, viewer=AGENCY).state == "active"  # and not those already active
    registry.freeze.freeze(by=AGENCY, reason="安全事件")
    with pytest.raises(PlatformFrozenError):  # no data opened while an incident froze the platform
        registry.licence_consent.decide(second, "traffic", "agree", by=TRAFFIC, reason="同意")
    with pytest.raises(PlatformFrozenError):
        registry.access.delegate("traffic", by=TRAFFIC, reason="委托")


def test_custodians_agree_over_http_and_nobody_else_can(
    instance: Instance, initialised: tuple[Instance, dict[str, str]]
) -> None:
    _, keys = initialised
    licence = _grant(instance, "traffic")
    client = TestClient(create_app(instance=instance))
    traffic_key = issue_key(instance.identity, TRAFFIC.name)
    traffic = bearer(client, traffic_key)
    agency, operator = bearer(client, keys["agency"]), bearer(client, keys["operator"])
    body = {"dataset": "traffic", "decision": "agree", "reason": "同意"}
    for headers in (agency, operator, bearer(client, keys["custodian"])):  # demo-custodian: no organisation
        assert client.post(f"/licences/{licence}/consent", json=body, headers=headers).status_code == 403
    assert client.post(f"/licences/{licence}/consent", json=body).status_code == 401
    bad = client.post(f"/licences/{licence}/consent", json={**body, "decision": "yes"}, headers=traffic)
    assert bad.status_code == 422
    assert client.post("/licences/999/consent", json=body, headers=traffic).status_code == 404
    assert client.get(f"/licences/{licence}/consent", headers=operator).status_code == 404  # not its licence
    inbox = client.get("/licences/awaiting-agreement", headers=traffic)
    assert inbox.status_code == 200 and [v["licence"] for v in inbox.json()] == [licence]
    assert client.get("/licences/awaiting-agreement", headers=agency).status_code == 403
    done = client.post(f"/licences/{licence}/consent", json=body, headers=traffic)
    assert done.status_code == 200 and done.json()["complete"] is True
    shown = client.get(f"/licences/{licence}/consent", headers=agency).json()
    assert shown["datasets"]["traffic"]["by"] == TRAFFIC.name
    activated = client.post(
        f"/licences/{licence}/transition", json={"to_state": "active", "reason": "齐备"}, headers=agency
    )
    assert activated.status_code == 200 and activated.json()["state"] == "active"
    delegation = client.post("/datasets/buses/access/delegation", json={"reason": "委托"}, headers=traffic)
    assert delegation.status_code == 200 and delegation.json()["mode"] == "delegated"
    assert client.post("/datasets/buses/access/delegation", json={"reason": "x"}, headers=agency).status_code == 403
    assert client.get("/datasets/buses/access", headers=operator).json()["mode"] == "delegated"


def test_the_cli_agrees_only_with_the_custodians_own_key(instance: Instance, tmp_path: Path) -> None:
    home = ["--home", str(instance.home)]
    until = (instance.registry.config.now().date() + timedelta(days=30)).isoformat()
    grant = ["licence", "grant", OPERATOR, "--datasets", "traffic", "--scenarios", SCENARIO, "--until", until]
    granted = runner.invoke(cli, [*grant, "--publicity-days", "0", "--json", *home])
    assert granted.exit_code == 0, granted.output
    licence = json.loads(granted.stdout)["id"]
    assert json.loads(granted.stdout)["state"] == "draft" and "stays a draft" in granted.stderr
    refused = runner.invoke(cli, ["licence", "agree", str(licence), "--dataset", "traffic", *home])
    assert refused.exit_code == 1 and "own API key" in refused.output
    delegated = runner.invoke(cli, ["dataset", "delegate", "traffic", "--access", "--reason", "host", *home])
    assert delegated.exit_code == 1
    own_key = tmp_path / "traffic.key"
    own_key.write_text(issue_key(instance.identity, TRAFFIC.name), encoding="utf-8")
    own_key.chmod(0o600)
    own = ["--key-file", str(own_key), "--totp"]
    agreed = runner.invoke(
        cli,
        ["licence", "agree", str(licence), "--dataset", "traffic", "--json", *own, code_by_name(TRAFFIC.name), *home],
    )
    assert agreed.exit_code == 0, agreed.output
    assert json.loads(agreed.stdout)["datasets"]["traffic"]["status"] == "agreed"
    shown = runner.invoke(cli, ["licence", "consent", str(licence), "--json", *home])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["complete"] is True
    activated = runner.invoke(cli, ["licence", "activate", str(licence), "--reason", "同意齐备", "--json", *home])
    assert activated.exit_code == 0 and json.loads(activated.stdout)["state"] == "active"
    access = runner.invoke(
        cli,
        [
            "dataset",
            "delegate",
            "buses",
            "--access",
            "--reason",
            "委托",
            "--json",
            *own,
            code_by_name(TRAFFIC.name),
            *home,
        ],
    )
    assert access.exit_code == 0, access.output
    assert json.loads(access.stdout)["mode"] == "delegated"
    assert json.loads(runner.invoke(cli, ["dataset", "egress", "buses", "--json", *home]).stdout)["mode"] == "signoff"
    assert instance.registry.access.get("buses").mode == "delegated"


def test_the_console_shows_the_custodian_its_licences_and_records_its_own_decision(instance: Instance) -> None:
    from tests.console_support import console_client, csrf_of, flash

    licence = _grant(instance, "traffic", "buses")
    browser = console_client(instance, issue_key(instance.identity, TRAFFIC.name))
    page = browser.get("/console/custodian/licences")
    assert page.status_code == 200 and f'data-licence="{licence}"' in page.text
    csrf = csrf_of(browser, "/console/custodian/licences")
    form = {"csrf": csrf, "dataset": "traffic", "decision": "agree", "reason": "同意"}
    answer = browser.post(f"/console/custodian/licences/{licence}/consent", data=form, follow_redirects=False)
    assert answer.status_code == 303 and "decision recorded" in flash(answer)
    again = browser.post(f"/console/custodian/licences/{licence}/consent", data=form, follow_redirects=False)
    assert "already decided" in flash(again)
    delegated = browser.post(
        "/console/custodian/licences/access/buses/delegation",
        data={"csrf": csrf, "reason": "委托"},
        follow_redirects=False,
    )
    assert "delegated to the agency" in flash(delegated)
    assert instance.registry.licence_consent.get(licence, viewer=AGENCY).complete
    police = console_client(instance, issue_key(instance.identity, POLICE.name))
    foreign = {"csrf": csrf_of(police, "/console/custodian/datasets/buses"), "reason": "撤回"}  # its session's token
    refused = police.post("/console/custodian/licences/access/buses/withdraw", data=foreign, follow_redirects=False)
    assert "not an active custodian" in flash(refused)
    assert instance.registry.access.get("buses").mode == "delegated"
