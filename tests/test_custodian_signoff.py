"""Custodians have a say on egress (issue 22; SATRE 3.1.06 egress only by the asset owners or their
delegates, 1.5.04 nobody reaches a dataset without its controller's or delegate's agreement;
双鸭山市公共数据管理暂行办法 第四十四条 三权分置: the custodian holds the data, the agency reviews).

A release of a dataset without a live delegation is registered only when the agency's reviewers approved
AND the dataset's custodian signed off; each test is an attack that must fail or the one way that works.
Both databases.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from core import Actor, PermissionDeniedError, RegistryError
from operators import Role
from registry import PlatformFrozenError
from sandbox.release import ReleaseError
from tests.conftest import bearer
from tests.job_worker_proc import MARKERS_ENV, OPERATOR, licensed
from tests.recovery_support import confirm, issue_key
from tests.test_release import R1, R2, R3, done_job
from tests.totp_support import code_by_name, create_enrolled

ACME = Actor(OPERATOR, "operator")
TRAFFIC_ORG = "双鸭山市交通运输局"  # the provider of tests.test_registry_licences.add_dataset's entries
TRAFFIC = Actor("traffic-custodian", "custodian")
POLICE = Actor("police-custodian", "custodian")  # a custodian of another organisation
REGULATOR = Actor("demo-regulator", "regulator")
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYONG_API_KEY", raising=False)


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Instance:
    """Licensed for ``traffic`` with no delegation: its releases need the custodian's sign-off."""
    instance = initialised[0]
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(MARKERS_ENV, str(markers))
    licensed(instance.registry, instance.home, delegate=False)
    for reviewer in (R2, R3):
        create_enrolled(instance.identity, reviewer.name, Role.AGENCY)
    create_enrolled(instance.identity, TRAFFIC.name, Role.CUSTODIAN, org=TRAFFIC_ORG)
    create_enrolled(instance.identity, POLICE.name, Role.CUSTODIAN, org="双鸭山市公安局")
    for made in (R2, R3, TRAFFIC, POLICE):  # made by the host: they count once an agency person confirmed them
        confirm(instance.identity, made.name)
    return instance


def _requested(instance: Instance, product: str) -> int:
    return instance.releases.request(done_job(instance, "pass", code=str(len(product))), product=product, by=ACME).id


def _approved_by_reviewers(instance: Instance, release: int) -> None:
    for reviewer in (R1, R2):
        instance.releases.vote(release, "approve", by=reviewer, reason="聚合结果")


def test_without_signoff_a_release_stays_pending_after_the_reviewers_approve(instance: Instance) -> None:
    release = _requested(instance, "needs-signoff")
    made = instance.releases.get(release, viewer=R1)
    assert made.signoff_required == ["traffic"] and made.delegated == {} and made.signoffs_pending == ["traffic"]
    _approved_by_reviewers(instance, release)
    waiting = instance.releases.get(release, viewer=R1)
    assert waiting.state == "under_review" and waiting.product_id is None and waiting.votes_needed == 0
    assert waiting.signoffs_pending == ["traffic"]
    for viewer in (TRAFFIC, REGULATOR):  # the reviewers' votes stay sealed until the release is decided
        assert instance.releases.get(release, viewer=viewer).votes == []
    assert instance.ledger.entries(action="release.decided") == []
    with pytest.raises(ReleaseError, match="custodians' sign-off"):  # no further reviewer reopens the round
        instance.releases.vote(release, "reject", by=R3, reason="late")
    assert [r.id for r in instance.releases.awaiting_signoff(viewer=TRAFFIC)] == [release]
    assert instance.releases.awaiting_signoff(viewer=POLICE) == []
    done = instance.releases.sign_off(release, "approve", by=TRAFFIC, reason="同意对外提供")
    assert done.state == "approved" and done.product_id is not None and done.signoffs_pending == []
    assert [(s["dataset"], s["custodian"], s["decision"]) for s in done.signoffs] == [
        ("traffic", TRAFFIC.name, "approve")
    ]
    (signed,) = instance.ledger.entries(action="release.signed_off")
    assert (signed.actor, signed.role) == (TRAFFIC.name, "custodian")
    assert signed.payload["dataset"] == "traffic" and signed.payload["org"] == TRAFFIC_ORG
    (decided,) = instance.ledger.entries(action="release.decided")
    assert decided.actor == TRAFFIC.name and decided.payload["outcome"] == "approved"
    assert [s["custodian"] for s in decided.payload["signoffs"]] == [TRAFFIC.name]
    assert instance.registry.products.get("needs-signoff", viewer=R1).state == "available"


def test_a_signoff_before_the_reviewers_waits_for_them(instance: Instance) -> None:
    release = _requested(instance, "early-signoff")
    first = instance.releases.sign_off(release, "approve", by=TRAFFIC)
    assert first.state == "under_review" and first.product_id is None and first.signoffs_pending == []
    with pytest.raises(ReleaseError, match="already signed off"):
        instance.releases.sign_off(release, "approve", by=TRAFFIC)
    instance.releases.vote(release, "approve", by=R1)
    assert instance.releases.vote(release, "approve", by=R2).state == "approved"


def test_only_a_custodian_of_the_datasets_organisation_signs_off(instance: Instance) -> None:
    release = _requested(instance, "other-org")
    _approved_by_reviewers(instance, release)
    with pytest.raises(PermissionDeniedError, match="custodian of none"):
        instance.releases.sign_off(release, "approve", by=POLICE)
    with pytest.raises(PermissionDeniedError, match="not an active custodian"):
        instance.releases.sign_off(release, "approve", by=POLICE, datasets=["traffic"])
    with pytest.raises(PermissionDeniedError, match="custodian of none"):  # a custodian without organisation
        instance.releases.sign_off(release, "approve", by=Actor("demo-custodian", "custodian"))
    with pytest.raises(PermissionDeniedError):  # a name that is no principal at all
        instance.releases.sign_off(release, "approve", by=Actor("forged-custodian", "custodian"))
    for other in (R1, ACME, REGULATOR):
        with pytest.raises(PermissionDeniedError):
            instance.releases.sign_off(release, "approve", by=other)
    instance.identity.set_active(TRAFFIC.name, False, reason="离职")
    with pytest.raises(PermissionDeniedError):  # a suspended custodian speaks for no one
        instance.releases.sign_off(release, "approve", by=TRAFFIC)
    with pytest.raises(PermissionDeniedError):
        instance.registry.egress.delegate("traffic", by=POLICE, reason="不是我的数据")
    assert instance.releases.get(release, viewer=R1).signoffs == []
    assert instance.ledger.entries(action="release.signed_off") == []
    assert instance.ledger.entries(action="dataset.egress_delegated") == []


def _home(instance: Instance) -> list[str]:
    return ["--home", str(instance.home)]


def test_a_host_cast_signoff_does_not_count(instance: Instance, tmp_path: Path) -> None:
    release = _requested(instance, "host-cast")
    _approved_by_reviewers(instance, release)
    with pytest.raises(PermissionDeniedError, match="host administrator"):
        instance.releases.sign_off(release, "approve", by=Actor.host())
    refused = runner.invoke(cli, ["release", "sign-off", str(release), *_home(instance)])
    assert refused.exit_code == 1 and "own API key" in refused.output
    agency_key = tmp_path / "agency.key"
    agency_key.write_text(issue_key(instance.identity, R1.name), encoding="utf-8")
    agency_key.chmod(0o600)  # a key file others can read is refused (app.cli.credentials)
    wrong = runner.invoke(
        cli,
        [
            "release",
            "sign-off",
            str(release),
            "--key-file",
            str(agency_key),
            "--totp",
            code_by_name(R1.name),
            *_home(instance),
        ],
    )
    assert wrong.exit_code == 1 and "custodian" in wrong.output
    delegated = runner.invoke(cli, ["dataset", "delegate", "traffic", "--reason", "host", *_home(instance)])
    assert delegated.exit_code == 1
    assert instance.releases.get(release, viewer=R1).state == "under_review"
    assert instance.ledger.entries(action="release.signed_off") == []
    own_key = tmp_path / "traffic.key"
    own_key.write_text(issue_key(instance.identity, TRAFFIC.name), encoding="utf-8")
    own_key.chmod(0o600)
    awaiting = runner.invoke(
        cli,
        [
            "release",
            "awaiting",
            "--json",
            "--key-file",
            str(own_key),
            "--totp",
            code_by_name(TRAFFIC.name),
            *_home(instance),
        ],
    )
    assert awaiting.exit_code == 0 and [r["release"] for r in json.loads(awaiting.stdout)["releases"]] == [release]
    signed = runner.invoke(
        cli,
        [
            "release",
            "sign-off",
            str(release),
            "--key-file",
            str(own_key),
            "--json",
            "--totp",
            code_by_name(TRAFFIC.name),
            *_home(instance),
        ],
    )
    assert signed.exit_code == 0, signed.output
    assert json.loads(signed.stdout)["state"] == "approved"
    (entry,) = instance.ledger.entries(action="release.signed_off")
    assert (entry.actor, entry.role) == (TRAFFIC.name, "custodian")


def test_a_delegation_spares_the_signoff_and_its_withdrawal_binds_new_requests(instance: Instance) -> None:
    assert instance.registry.egress.get("traffic").mode == "signoff"  # the default: sign-off required
    with pytest.raises(RegistryError, match="reason"):
        instance.registry.egress.delegate("traffic", by=TRAFFIC, reason=" ")
    with pytest.raises(RegistryError, match="future"):
        instance.registry.egress.delegate("traffic", by=TRAFFIC, reason="x", expires=instance.registry.config.now())
    with pytest.raises(PermissionDeniedError):
        instance.registry.egress.delegate("traffic", by=Actor.host(), reason="host")
    view = instance.registry.egress.delegate(
        "traffic",
        by=TRAFFIC,
        reason="汇总统计委托实施机构审核",
        expires=instance.registry.config.now() + timedelta(days=30),
    )
    assert view.mode == "delegated" and view.delegation and view.delegation["granted_by"] == TRAFFIC.name
    with pytest.raises(RegistryError, match="already has a live delegation"):
        instance.registry.egress.delegate("traffic", by=TRAFFIC, reason="again")
    spared = _requested(instance, "spared")
    made = instance.releases.get(spared, viewer=R1)
    assert made.signoff_required == [] and made.delegated == {"traffic": view.delegation["id"]}
    with pytest.raises(PermissionDeniedError):  # nothing to sign: this custodian has no pending dataset
        instance.releases.sign_off(spared, "approve", by=TRAFFIC)

    with pytest.raises(PermissionDeniedError):
        instance.registry.egress.withdraw("traffic", by=POLICE, reason="不是我的")
    withdrawn = instance.registry.egress.withdraw("traffic", by=TRAFFIC, reason="恢复逐项签核")
    assert withdrawn.mode == "signoff" and withdrawn.history[0]["withdrawn_by"] == TRAFFIC.name
    with pytest.raises(RegistryError, match="no live delegation"):
        instance.registry.egress.withdraw("traffic", by=TRAFFIC, reason="twice")
    # Requested under the delegation, decided after its withdrawal: the custodian has its say back on it too
    # (red team of issue 22: egress by the owner or its delegate when it happens, SATRE 3.1.06).
    _approved_by_reviewers(instance, spared)
    assert instance.releases.get(spared, viewer=R1).state == "under_review"
    assert instance.releases.get(spared, viewer=R1).signoff_required == ["traffic"]
    assert instance.releases.sign_off(spared, "approve", by=TRAFFIC).state == "approved"
    bound = _requested(instance, "bound-again")
    _approved_by_reviewers(instance, bound)
    assert instance.releases.get(bound, viewer=R1).state == "under_review"  # new request: sign-off again

    # An expired delegation spares nothing either.
    again = instance.registry.egress.delegate("traffic", by=TRAFFIC, reason="短期委托")
    assert again.delegation is not None
    with instance.engine.begin() as connection:
        connection.execute(
            text("UPDATE egress_delegations SET expires_at = :t WHERE id = :id"),
            {"t": instance.registry.config.now() - timedelta(days=1), "id": again.delegation["id"]},
        )
    assert instance.registry.egress.get("traffic").mode == "signoff"
    assert instance.releases.get(_requested(instance, "expired"), viewer=R1).signoff_required == ["traffic"]
    actions = [e.action for e in instance.ledger.entries(subject="dataset:traffic")]
    assert actions.count("dataset.egress_delegated") == 2 and actions.count("dataset.egress_withdrawn") == 1


def test_a_custodians_refusal_rejects_with_its_reason(instance: Instance) -> None:
    release = _requested(instance, "refused")
    instance.releases.vote(release, "approve", by=R1)
    with pytest.raises(ReleaseError, match="reason"):
        instance.releases.sign_off(release, "refuse", by=TRAFFIC)
    with pytest.raises(ReleaseError, match="one of"):
        instance.releases.sign_off(release, "maybe", by=TRAFFIC)
    rejected = instance.releases.sign_off(release, "refuse", by=TRAFFIC, reason="含未公开的线路数据")
    assert rejected.state == "rejected" and rejected.product_id is None
    assert rejected.reason and "含未公开的线路数据" in rejected.reason and TRAFFIC.name in rejected.reason
    with pytest.raises(ReleaseError, match="not awaiting review"):
        instance.releases.vote(release, "approve", by=R2)
    (decided,) = instance.ledger.entries(action="release.decided")
    assert decided.payload["outcome"] == "rejected" and decided.payload["refused_by"] == TRAFFIC.name
    assert [v["reviewer"] for v in decided.payload["votes"]] == [R1.name]  # revealed once decided
    with pytest.raises(RegistryError):
        instance.registry.products.get("refused", viewer=R1)


def test_a_frozen_platform_refuses_signoff_with_423(instance: Instance) -> None:
    release = _requested(instance, "frozen")
    _approved_by_reviewers(instance, release)
    instance.registry.freeze.freeze(reason="疑似泄露 suspected leak", by=R1)
    with pytest.raises(PlatformFrozenError):
        instance.releases.sign_off(release, "approve", by=TRAFFIC)
    with pytest.raises(PlatformFrozenError):
        instance.registry.egress.delegate("traffic", by=TRAFFIC, reason="during an incident")
    client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    custodian = bearer(client, issue_key(instance.identity, TRAFFIC.name))
    answered = client.post(f"/releases/{release}/signoffs", json={"decision": "approve"}, headers=custodian)
    assert answered.status_code == 423 and "frozen" in answered.json()["detail"]
    assert instance.releases.get(release, viewer=R1).state == "under_review"
    instance.registry.freeze.unfreeze(reason="已处置", by=R1)
    after = client.post(f"/releases/{release}/signoffs", json={"decision": "approve"}, headers=custodian)
    assert after.status_code == 200 and after.json()["state"] == "approved"


def test_over_the_api_by_role_and_the_regulator_reads_it_all_in_the_ledger(instance: Instance) -> None:
    client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    traffic = bearer(client, issue_key(instance.identity, TRAFFIC.name))
    police = bearer(client, issue_key(instance.identity, POLICE.name))
    agency = bearer(client, issue_key(instance.identity, R1.name))
    regulator = bearer(client, issue_key(instance.identity, REGULATOR.name))
    assert client.get("/datasets/traffic/egress", headers=agency).json()["mode"] == "signoff"
    body = {"reason": "委托", "expires": "2099-12-31"}
    assert client.post("/datasets/traffic/egress/delegation", json=body, headers=police).status_code == 403
    assert client.post("/datasets/traffic/egress/delegation", json=body, headers=agency).status_code == 403
    assert client.post("/datasets/nowhere/egress/delegation", json=body, headers=traffic).status_code == 404
    assert client.post("/datasets/traffic/egress/delegation", json={"reason": ""}, headers=traffic).status_code == 422
    made = client.post("/datasets/traffic/egress/delegation", json=body, headers=traffic)
    assert made.status_code == 200 and made.json()["mode"] == "delegated", made.text
    back = client.post("/datasets/traffic/egress/delegation/withdraw", json={"reason": "收回"}, headers=traffic)
    assert back.status_code == 200 and back.json()["mode"] == "signoff"

    release = _requested(instance, "over-http")
    _approved_by_reviewers(instance, release)
    shown = client.get(f"/releases/{release}", headers=agency).json()
    assert shown["signoffs_pending"] == ["traffic"] and shown["state"] == "under_review"
    assert client.get("/releases/awaiting-signoff", headers=police).json() == []
    assert client.get("/releases/awaiting-signoff", headers=agency).status_code == 403
    queue = client.get("/releases/awaiting-signoff", headers=traffic).json()
    assert [r["release"] for r in queue] == [release]
    assert client.post(f"/releases/{release}/signoffs", json={"decision": "approve"}, headers=police).status_code == 403
    assert client.post(f"/releases/{release}/signoffs", json={"decision": "approve"}, headers=agency).status_code == 403
    bad = client.post(f"/releases/{release}/signoffs", json={"decision": "yes"}, headers=traffic)
    assert bad.status_code == 422
    signed = client.post(f"/releases/{release}/signoffs", json={"decision": "approve"}, headers=traffic)
    assert signed.status_code == 200 and signed.json()["state"] == "approved"

    page = client.get("/ledger/entries", headers=regulator, params={"limit": 500})
    assert page.status_code == 200, page.text
    seen = {e["action"] for e in page.json()["entries"]}
    assert {"dataset.egress_delegated", "dataset.egress_withdrawn", "release.signed_off", "release.decided"} <= seen


def test_the_console_custodian_signs_off_and_delegates_and_the_agency_sees_it_pending(instance: Instance) -> None:
    from tests.console_support import console_client, csrf_of, flash

    release = _requested(instance, "console-signoff")
    _approved_by_reviewers(instance, release)
    agency = console_client(instance, issue_key(instance.identity, R1.name))
    listed = agency.get("/console/agency")
    assert 'data-signoff="pending"' in listed.text
    page = agency.get(f"/console/agency/releases/{release}")
    assert 'id="signoff-pending"' in page.text and 'id="awaiting-custodian"' in page.text
    assert 'id="vote-form"' not in page.text

    police = console_client(instance, issue_key(instance.identity, POLICE.name))
    assert 'id="none-awaiting"' in police.get("/console/custodian/releases").text
    assert 'id="signoff-form"' not in police.get(f"/console/custodian/releases/{release}").text
    assert 'id="delegate-form"' not in police.get("/console/custodian/datasets/traffic").text

    browser = console_client(instance, issue_key(instance.identity, TRAFFIC.name))
    queue = browser.get("/console/custodian/releases")
    assert f'data-release="{release}"' in queue.text
    shown = browser.get(f"/console/custodian/releases/{release}")
    assert shown.status_code == 200 and 'id="outputs"' in shown.text and 'id="findings"' in shown.text
    assert 'id="lineage"' in shown.text and 'id="signoff-form"' in shown.text
    assert str(instance.home) not in shown.text  # home paths are the administrator's
    refused = browser.post(
        f"/console/custodian/releases/{release}/signoff",
        data={"csrf": csrf_in_page(browser, release), "decision": "refuse", "reason": ""},
        follow_redirects=False,
    )
    assert refused.status_code == 303 and "reason" in flash(refused)
    signed = browser.post(
        f"/console/custodian/releases/{release}/signoff",
        data={"csrf": csrf_in_page(browser, release), "decision": "approve", "dataset": "traffic"},
        follow_redirects=False,
    )
    assert signed.status_code == 303 and "approved" in flash(signed)
    assert instance.releases.get(release, viewer=R1).state == "approved"

    dataset = browser.get("/console/custodian/datasets/traffic")
    assert 'data-mode="signoff"' in dataset.text and 'id="delegate-form"' in dataset.text
    csrf = csrf_of(browser, "/console/custodian/datasets/traffic")
    bad = browser.post(
        "/console/custodian/datasets/traffic/delegation",
        data={"csrf": csrf, "reason": "委托", "expires": "soon"},
        follow_redirects=False,
    )
    assert "YYYY-MM-DD" in flash(bad)
    made = browser.post(
        "/console/custodian/datasets/traffic/delegation",
        data={"csrf": csrf, "reason": "汇总产品委托审核", "expires": ""},
        follow_redirects=False,
    )
    assert made.status_code == 303 and "delegated" in flash(made)
    assert 'data-mode="delegated"' in browser.get("/console/custodian/datasets/traffic").text
    back = browser.post(
        "/console/custodian/datasets/traffic/delegation/withdraw",
        data={"csrf": csrf, "reason": "恢复签核"},
        follow_redirects=False,
    )
    assert "withdrawn" in flash(back) and instance.registry.egress.get("traffic").mode == "signoff"


def csrf_in_page(client: TestClient, release: int) -> str:
    from tests.console_support import csrf_of

    return csrf_of(client, f"/console/custodian/releases/{release}")
