"""The platform freeze and the incident register (issue 22; SATRE 2.6.04; 双鸭山 第六十一条 应急处置).

A freeze stops at once: a queued job is not started by a worker, a submission is refused, a release
request and a review vote are refused, a product fetch is refused — over the domain, the CLI, the API
and the console — and unfreezing restores each. Both are ledgered with the actor and the reason;
``/healthz`` and every console page say the platform is frozen. Incidents round-trip (record with
linked ledger entries, close with a note) through the CLI, the API and the console. Both databases.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from core import Actor, PermissionDeniedError, RegistryError
from operators import Role
from registry import PlatformFrozenError
from tests.conftest import bearer
from tests.console_support import console_client, csrf_of, flash
from tests.recovery_support import issue_key
from tests.test_release import ACME, R1, R2, done_job
from tests.test_release import instance as instance  # the licensed instance fixture

REGULATOR = Actor("demo-regulator", "regulator")


def _approved(instance: Instance, product: str, code: str = "1") -> int:
    release = instance.releases.request(done_job(instance, "pass", code=code), product=product, by=ACME).id
    instance.releases.vote(release, "approve", by=R1)
    instance.releases.vote(release, "approve", by=R2)
    return release


def test_freeze_holds_queued_jobs_and_refuses_intake_until_unfrozen(instance: Instance) -> None:
    from tests.job_worker_proc import OPERATOR, SCENARIO, fast_runner

    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    instance.registry.freeze.freeze(reason="疑似密钥泄露 key leak suspected", by=R1)
    worker = instance.worker(runner=fast_runner, worker_id="freeze-test")
    assert worker.run_pending() == []
    assert instance.jobs.show(job).state == "queued"  # held, not failed
    with pytest.raises(PlatformFrozenError, match="frozen"):
        instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(2)", SCENARIO)
    assert [v.id for v in instance.jobs.list(viewer=Actor.host())] == [job]  # the refusal left no row
    instance.registry.freeze.unfreeze(reason="keys rotated", by=R1)
    (ran,) = worker.run_pending()
    assert ran.id == job and instance.jobs.show(job).state == "done"
    frozen, unfrozen = (
        instance.ledger.entries(action="platform.frozen"),
        instance.ledger.entries(action="platform.unfrozen"),
    )
    assert frozen[0].actor == R1.name and frozen[0].payload["reason"] == "疑似密钥泄露 key leak suspected"
    assert unfrozen[0].payload["reason"] == "keys rotated" and unfrozen[0].payload["frozen_since"]


def test_freeze_refuses_release_requests_votes_and_fetches(instance: Instance, tmp_path: Path) -> None:
    job = done_job(instance, "pass", code="7")
    instance.registry.freeze.freeze(reason="incident 1", by=REGULATOR)
    with pytest.raises(PlatformFrozenError):
        instance.releases.request(job, product="held", by=ACME)
    instance.registry.freeze.unfreeze(reason="contained", by=R1)
    release = instance.releases.request(job, product="held", by=ACME).id
    instance.registry.freeze.freeze(reason="incident 2", by=R1)
    with pytest.raises(PlatformFrozenError):
        instance.releases.vote(release, "approve", by=R1)
    instance.registry.freeze.unfreeze(reason="contained", by=R1)
    instance.releases.vote(release, "approve", by=R1)
    instance.releases.vote(release, "approve", by=R2)
    instance.registry.freeze.freeze(reason="incident 3", by=R1)
    with pytest.raises(PlatformFrozenError):
        instance.releases.fetch("held", tmp_path / "out", by=ACME)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    instance.registry.freeze.unfreeze(reason="contained", by=R1)
    assert instance.releases.fetch("held", tmp_path / "out", by=ACME)["files"]
    assert instance.ledger.verify().ok


def test_who_may_freeze_and_unfreeze(instance: Instance) -> None:
    with pytest.raises(PermissionDeniedError):
        instance.registry.freeze.freeze(reason="x", by=ACME)
    with pytest.raises(RegistryError, match="reason"):
        instance.registry.freeze.freeze(reason="   ", by=R1)
    with pytest.raises(RegistryError, match="reason was refused"):  # the ledger never holds personal data
        instance.registry.freeze.freeze(reason="call 13800138000", by=R1)
    assert not instance.registry.freeze.state().frozen
    instance.registry.freeze.freeze(reason="incident", by=REGULATOR)  # the supervisor may stop the platform
    with pytest.raises(RegistryError, match="already frozen"):
        instance.registry.freeze.freeze(reason="again", by=R1)
    with pytest.raises(PermissionDeniedError):  # but not restart it
        instance.registry.freeze.unfreeze(reason="ok", by=REGULATOR)
    assert instance.registry.freeze.unfreeze(reason="ok", by=R1).frozen is False


def test_freeze_over_the_api_healthz_and_console(instance: Instance, tmp_path: Path) -> None:
    _approved(instance, "api-p")
    acme_key = instance.identity.create_principal(ACME.name, Role.OPERATOR).api_key
    agency_key = issue_key(instance.identity, R1.name)
    client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    operator, agency = bearer(client, acme_key), bearer(client, agency_key)
    assert client.post("/platform/freeze", headers=operator, json={"reason": "x"}).status_code == 403
    assert "frozen" not in client.get("/healthz").json()
    frozen = client.post("/platform/freeze", headers=agency, json={"reason": "数据泄露 leak"})
    assert frozen.status_code == 200 and frozen.json()["frozen"] is True
    health = client.get("/healthz").json()
    assert health["frozen"]["since"] and "leak" not in json.dumps(health)  # no reason for the unauthenticated
    assert client.get("/platform/freeze", headers=operator).json()["reason"] == "数据泄露 leak"
    submitted = client.post(
        "/jobs",
        headers=operator,
        json={"datasets": ["traffic"], "kind": "sql", "code": "select 1", "scenario": "交通出行"},
    )
    assert submitted.status_code == 423 and "frozen" in submitted.json()["detail"]
    fetched = client.get("/products/api-p/artifacts/result.txt", headers=operator)
    assert fetched.status_code == 423
    browser = console_client(instance, agency_key)
    page = browser.get("/console/agency/incidents")
    assert page.status_code == 200 and 'id="platform-frozen"' in page.text
    thawed = browser.post(
        "/console/agency/incidents/unfreeze",
        data={"csrf": csrf_of(browser, "/console/agency/incidents"), "reason": "已处置 contained"},
        follow_redirects=False,
    )
    assert thawed.status_code == 303 and "unfrozen" in flash(thawed)
    assert 'id="platform-frozen"' not in browser.get("/console/agency/incidents").text
    assert client.post("/platform/unfreeze", headers=agency, json={"reason": "again"}).status_code == 409
    assert client.get("/products/api-p/artifacts/result.txt", headers=operator).status_code == 200


def test_freeze_and_unfreeze_from_the_cli(instance: Instance) -> None:
    home = ["--home", str(instance.home)]
    runner = CliRunner()
    assert runner.invoke(cli, ["freeze", *home]).exit_code == 2  # --reason is required
    assert runner.invoke(cli, ["freeze", "--reason", " ", *home]).exit_code == 1
    done = runner.invoke(cli, ["freeze", "--reason", "drill", "--json", *home])
    assert done.exit_code == 0 and json.loads(done.stdout)["frozen"] is True
    again = runner.invoke(cli, ["freeze", "--reason", "drill", *home])
    assert again.exit_code == 1 and "already frozen" in again.stderr
    (entry,) = instance.ledger.entries(action="platform.frozen")
    assert entry.actor.startswith("host:") and entry.payload["reason"] == "drill"
    thawed = runner.invoke(cli, ["unfreeze", "--reason", "drill over", "--json", *home])
    assert thawed.exit_code == 0 and json.loads(thawed.stdout)["frozen"] is False


def test_incidents_round_trip_over_the_cli_api_and_console(instance: Instance) -> None:
    home = ["--home", str(instance.home)]
    runner = CliRunner()
    seqs = [instance.ledger.size() - 1, instance.ledger.size()]
    made = runner.invoke(
        cli,
        ["incident", "record", "--title", "key leak", "--severity", "high", "--ledger", f"{seqs[0]},{seqs[1]}",
         "--description", "an operator's key was posted publicly", "--json", *home],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    first = json.loads(made.stdout)
    assert first["state"] == "open" and first["ledger_entries"] == seqs
    assert runner.invoke(cli, ["incident", "record", "--title", "x", "--severity", "dire", *home]).exit_code == 1
    assert (
        runner.invoke(
            cli, ["incident", "record", "--title", "x", "--severity", "low", "--ledger", "99999", *home]
        ).exit_code
        == 1
    )
    assert (
        runner.invoke(
            cli, ["incident", "record", "--title", "x", "--severity", "low", "--ledger", "1;2", *home]
        ).exit_code
        == 1
    )

    regulator_key = issue_key(instance.identity, "demo-regulator")
    client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    regulator = bearer(client, regulator_key)
    listed = client.get("/incidents", headers=regulator).json()
    assert [i["id"] for i in listed] == [first["id"]]
    body = {"title": "probe from 10.0.0.9", "severity": "medium", "ledger_entries": [1]}
    second = client.post("/incidents", headers=regulator, json=body)
    assert second.status_code == 201, second.text
    assert client.post("/incidents", headers=regulator, json={**body, "ledger_entries": [10**6]}).status_code == 409
    assert client.post("/incidents", headers=regulator, json={**body, "severity": "dire"}).status_code == 422
    closed = client.post(f"/incidents/{first['id']}/close", headers=regulator, json={"note": "key revoked"})
    assert (
        closed.status_code == 200
        and closed.json()["state"] == "closed"
        and closed.json()["closed_by"] == "demo-regulator"
    )
    assert client.post(f"/incidents/{first['id']}/close", headers=regulator, json={"note": "x"}).status_code == 409
    assert client.get("/incidents/999", headers=regulator).status_code == 404

    browser = console_client(instance, regulator_key)
    csrf = csrf_of(browser, "/console/regulator/incidents")
    recorded = browser.post(
        "/console/regulator/incidents/record",
        data={"csrf": csrf, "title": "console incident", "severity": "low", "ledger_entries": "1, 2"},
        follow_redirects=False,
    )
    assert recorded.status_code == 303 and "recorded" in flash(recorded)
    third = client.get("/incidents", headers=regulator, params={"state": "open"}).json()[0]
    assert third["title"] == "console incident" and third["ledger_entries"] == [1, 2]
    bad = browser.post(
        "/console/regulator/incidents/record",
        data={"csrf": csrf, "title": "t", "severity": "low", "ledger_entries": "1, ²"},
        follow_redirects=False,
    )
    assert bad.status_code == 303 and "refused" in flash(bad)
    shut = browser.post(
        f"/console/regulator/incidents/{third['id']}/close",
        data={"csrf": csrf, "note": "resolved"},
        follow_redirects=False,
    )
    assert shut.status_code == 303 and "closed" in flash(shut)
    shown = json.loads(runner.invoke(cli, ["incident", "show", str(third["id"]), "--json", *home]).stdout)
    assert shown["state"] == "closed" and shown["close_note"] == "resolved"
    actions = [e.action for e in instance.ledger.entries() if e.action.startswith("incident.")]
    assert actions.count("incident.recorded") == 3 and actions.count("incident.closed") == 2
    assert all("key was posted" not in json.dumps(e.payload) for e in instance.ledger.entries())  # texts hashed
    operator = bearer(client, instance.identity.create_principal("nosy-ops", Role.OPERATOR).api_key)
    assert client.get("/incidents", headers=operator).status_code == 403
