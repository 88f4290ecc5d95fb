"""Only trusted people change desensitization policies (SATRE 1.2.01; issue 22; 双鸭山 第六十条 数据安全管理
制度 and 分类分级保护措施 set by the 主管部门, 第十一条 分级保护).

A policy file other than the shipped one (``HOME/policies/LEVEL.json`` or ``--policy FILE``) makes a copy
only when its canonical digest was proposed (a custodian or agency person) and approved for that level by
an agency person other than the proposer. Each test is an attack that must fail or the one way that works.
Both databases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from core import Actor, PermissionDeniedError, RegistryError
from desensitize.policy import shipped_policy_path
from operators import Role
from registry import parse_policy, read_policy_file
from samples import synthetic
from tests.conftest import bearer
from tests.recovery_support import confirm, issue_key
from tests.test_registry_copies import PROVIDER, PROVIDER_CODE
from tests.totp_support import code_by_name, code_for, create_enrolled

CUSTODIAN = Actor("demo-custodian", "custodian")
AGENCY = Actor("demo-agency", "agency")
SECOND = Actor("second-agency", "agency")  # another agency person: the four eyes
DATASET = "market_entities"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYONG_API_KEY", raising=False)


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]], tmp_path: Path) -> Instance:
    """A small catalogued dataset whose custodian may desensitize it; a second agency person."""
    instance = initialised[0]
    path = tmp_path / f"{DATASET}.csv"
    synthetic.write_csv(synthetic.generate_all(300, seed=0)[DATASET], path)
    instance.registry.ingestor.ingest(path, name=DATASET, provider=PROVIDER, provider_code=PROVIDER_CODE, by=CUSTODIAN)
    create_enrolled(instance.identity, SECOND.name, Role.AGENCY)
    confirm(instance.identity, SECOND.name)  # made by the host after init: a second person confirms (3.2.01)
    return instance


def _level(instance: Instance) -> str:
    return str(instance.registry.catalog.get(DATASET).level.value)


def _changed(level: str, action: str = "drop") -> dict[str, Any]:
    """The shipped policy of ``level`` with one rule changed (a custodian's own policy)."""
    data: dict[str, Any] = json.loads(shipped_policy_path(level).read_text(encoding="utf-8"))
    data["rules"]["cn_phone"] = {"action": action}
    return data


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_home_policy_applies_only_once_another_agency_person_approved_its_digest(instance: Instance) -> None:
    registry, level = instance.registry, _level(instance)
    own = _write(instance.home / "policies" / f"{level}.json", _changed(level))
    digest = read_policy_file(level, own).sha256()
    before = instance.ledger.size()
    with pytest.raises(RegistryError, match=f"sha256 {digest}.*not approved.*keyong policy propose"):
        registry.copies.make(DATASET, by=CUSTODIAN)
    assert instance.ledger.size() == before and not (instance.home / "copies").exists()  # nothing made
    policy = read_policy_file(level, own)
    for nobody in (Actor.host(), Actor("acme-ops", "operator"), Actor("demo-regulator", "regulator")):
        with pytest.raises(PermissionDeniedError):
            registry.policies.propose(level, policy, by=nobody, reason="改")
    proposal = registry.policies.propose(level, policy, by=CUSTODIAN, reason="手机号码整列删除")
    assert (proposal.state, proposal.sha256) == ("proposed", digest)
    assert proposal.policy["rules"]["cn_phone"]["action"] == "drop"  # the approver reads what it approves
    with pytest.raises(RegistryError, match="not approved"):  # proposed is not approved
        registry.copies.make(DATASET, by=CUSTODIAN)
    with pytest.raises(RegistryError, match="already proposed"):
        registry.policies.propose(level, policy, by=AGENCY, reason="again")
    for nobody in (Actor.host(), CUSTODIAN):
        with pytest.raises(PermissionDeniedError):
            registry.policies.decide(proposal.id, True, by=nobody, reason="ok")
    approved = registry.policies.decide(proposal.id, True, by=AGENCY, reason="符合分级保护要求")
    assert (approved.state, approved.decided_by) == ("approved", AGENCY.name)
    with pytest.raises(RegistryError, match="already approved"):
        registry.policies.decide(proposal.id, False, by=SECOND, reason="late")
    made = registry.copies.make(DATASET, by=CUSTODIAN)
    (desensitized,) = instance.ledger.entries(action="dataset.desensitized")
    assert desensitized.payload["policy_sha256"] == digest and made.version == 2
    actions = [(e.action, e.actor) for e in instance.ledger.entries(after=before) if e.action.startswith("policy.")]
    assert actions == [("policy.proposed", CUSTODIAN.name), ("policy.approved", AGENCY.name)]
    # Edited after approval: a new digest, refused again (fail closed), naming it.
    _write(own, _changed(level, action="pseudonymize"))
    edited = read_policy_file(level, own).sha256()
    with pytest.raises(RegistryError, match=f"sha256 {edited}"):
        registry.copies.make(DATASET, by=CUSTODIAN)


def test_four_eyes_a_given_file_and_the_shipped_policy(instance: Instance, tmp_path: Path) -> None:
    registry, level = instance.registry, _level(instance)
    given = _write(tmp_path / "mine.json", _changed(level))
    policy = read_policy_file(level, given)
    proposal = registry.policies.propose(level, policy, by=AGENCY, reason="agency's own proposal")
    with pytest.raises(PermissionDeniedError, match="four eyes"):
        registry.policies.decide(proposal.id, True, by=AGENCY, reason="self-approval")
    assert registry.policies.decide(proposal.id, False, by=SECOND, reason="不必要").state == "refused"
    with pytest.raises(RegistryError, match="not approved"):  # refused admits nothing
        registry.copies.make(DATASET, by=CUSTODIAN, policy_path=given)
    again = registry.policies.propose(
        level, policy, by=AGENCY, reason="再次提出"
    )  # a refused one may be proposed again
    registry.policies.decide(again.id, True, by=SECOND, reason="同意")
    assert registry.copies.make(DATASET, by=CUSTODIAN, policy_path=given).version == 2
    shipped = read_policy_file(level, shipped_policy_path(level))
    with pytest.raises(RegistryError, match="needs no approval"):
        registry.policies.propose(level, shipped, by=CUSTODIAN, reason="shipped")
    assert registry.copies.make(DATASET, by=CUSTODIAN, policy_path=shipped_policy_path(level)).version == 3
    other = "L4" if level != "L4" else "L3"
    with pytest.raises(RegistryError, match="declares level"):
        registry.policies.propose(other, policy, by=CUSTODIAN, reason="wrong level")
    with pytest.raises(RegistryError, match="declares level"):
        parse_policy(other, _changed(level))
    assert [p.state for p in registry.policies.list(level=level)] == ["refused", "approved"]


def test_policies_over_http_and_the_cli_act_with_the_persons_own_credentials(
    instance: Instance, initialised: tuple[Instance, dict[str, str]], tmp_path: Path
) -> None:
    _, keys = initialised
    level = _level(instance)
    client = TestClient(create_app(instance=instance))
    custodian, agency, operator = (bearer(client, keys[r]) for r in ("custodian", "agency", "operator"))
    body = {"level": level, "policy": _changed(level), "reason": "手机号码删除"}
    assert client.post("/policies", json=body, headers=operator).status_code == 403
    assert client.post("/policies", json=body).status_code == 401
    assert client.post("/policies", json={**body, "level": "L9"}, headers=custodian).status_code == 422
    bad = {**body, "policy": {**_changed(level), "rules": {"cn_phone": {"action": "reveal"}}}}
    assert client.post("/policies", json=bad, headers=custodian).status_code == 409
    made = client.post("/policies", json=body, headers=custodian)
    assert made.status_code == 201, made.text
    proposal = made.json()["id"]
    assert client.post(f"/policies/{proposal}/approve", json={"reason": "ok"}, headers=custodian).status_code == 403
    assert client.post("/policies/999/approve", json={"reason": "ok"}, headers=agency).status_code == 404
    approved = client.post(f"/policies/{proposal}/approve", json={"reason": "同意"}, headers=agency)
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert [p["id"] for p in client.get("/policies", headers=operator).json()] == [proposal]
    # The CLI: the host alone proposes nothing; a person's own key and code do.
    home = ["--home", str(instance.home)]
    file = _write(tmp_path / "cli.json", _changed(level, action="pseudonymize"))
    refused = runner.invoke(cli, ["policy", "propose", level, str(file), "--reason", "host", *home])
    assert refused.exit_code == 1 and "own API key" in refused.output
    key = tmp_path / "custodian.key"
    key.write_text(keys["custodian"], encoding="utf-8")
    key.chmod(0o600)
    proposed = runner.invoke(
        cli,
        ["policy", "propose", level, str(file), "--reason", "假名化", "--json", "--key-file", str(key),
         "--totp", code_for(keys["custodian"]), *home],
    )  # fmt: skip
    assert proposed.exit_code == 0, proposed.output
    second = issue_key(instance.identity, SECOND.name)
    key.write_text(second, encoding="utf-8")
    approve = ["policy", "approve", str(json.loads(proposed.stdout)["id"]), "--json", "--key-file", str(key)]
    done = runner.invoke(cli, [*approve, "--totp", code_by_name(SECOND.name), *home])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["decided_by"] == SECOND.name
    listed = runner.invoke(cli, ["policy", "list", "--json", *home])
    assert [p["state"] for p in json.loads(listed.stdout)["policies"]] == ["approved", "approved"]
