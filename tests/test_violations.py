"""Violations are for deliberate acts (issue 17), and a suspended operator is really suspended.

双鸭山 第三十一条 counts data used otherwise than licensed (超范围调用, 超目的调用): a dataset not in the
catalog or a scenario no one names is a typo, refused as a usage error with a suggestion and never
counted; a scope check is a dry run and never counts; the refusal that leaves one violation to the
limit warns. While suspended (第三十一条: 关停或中断调用服务; 第七十五条: 暂时关闭其获取相关公共数据的权限)
an operator gets no deliveries and opens no release requests; the agency's restoration brings both
back. Domain tests on SQLite and PostgreSQL; the refusals also over HTTP and the CLI.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from core import Actor, UsageError
from operators import Role
from operators.jobs import JobRefusedError, Jobs, JobUsageError, Quotas
from registry import Registry, ScopeRefusedError, UnknownNameError
from registry.models import FindingRow, UsageRow, ViolationRow
from tests.conftest import FakeClock, bearer_headers
from tests.consent_support import consent_to_access
from tests.console_support import console_client, csrf_of, flash
from tests.job_worker_proc import MARKERS_ENV, OPERATOR, SCENARIO, fast_runner, licensed
from tests.people_support import stand
from tests.recovery_support import confirm
from tests.test_registry_licences import AGENCY, LedgerWatch, add_dataset, make_registry, uscc

SQL = "SELECT 区县, count(*) AS n FROM traffic GROUP BY 区县"
SOCIAL = "社会保障分析"  # a purpose another operator holds, and the catalog names


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    reg = make_registry(instance, clock, violation_limit=3, violation_window_hours=24)
    licensed(reg, instance.home)  # OPERATOR holds traffic for 交通出行
    add_dataset(reg, "loans", industry="金融")
    add_dataset(reg, "pensions", industry="社会保障")
    reg.licences.add_operator("bank-ops", uscc(3), by=AGENCY)
    stand(reg, "bank-ops")
    consent_to_access(reg, "loans", "pensions")
    until = reg.config.now().date() + timedelta(days=365)
    common: dict[str, Any] = {"valid_until": until, "by": AGENCY, "reason": "授权运营协议 2026-03"}
    reg.licences.grant("bank-ops", datasets=["pensions"], scenarios=[SOCIAL], publicity_days=0, **common)
    # A draft is not yet public (公示, 第四十八条): its scenario is known to no one but the agency.
    reg.licences.grant("bank-ops", datasets=["loans"], scenarios=["信贷审批草案"], draft=True, **common)
    return reg


@pytest.fixture
def job_quotas() -> Quotas:
    return Quotas(concurrent=4, per_day=100)


def _violations(registry: Registry) -> list[str]:
    with registry.recorder.read() as session:
        return list(session.scalars(select(ViolationRow.kind).order_by(ViolationRow.id)))


def _qualification(registry: Registry, operator: str = OPERATOR) -> str:
    return registry.licences.get_operator(operator).qualification


# --- typos are usage errors -----------------------------------------------------------------------


def test_a_misspelt_dataset_is_refused_with_a_suggestion_and_never_counted(
    jobs: Jobs, registry: Registry, instance: Instance
) -> None:
    watch = LedgerWatch(instance)
    for _ in range(5):  # more than the limit: none of them counts
        with pytest.raises(JobUsageError, match="did you mean traffic") as caught:
            jobs.submit(OPERATOR, ["trafic"], "sql", SQL, SCENARIO)
    error = caught.value
    assert isinstance(error, UsageError) and isinstance(error, JobRefusedError)
    assert error.refusal == "usage:unknown_dataset" and error.suggestions == ("traffic",)
    assert "not counted as a violation" in str(error)
    refused = jobs.show(error.job or 0)  # recorded as a refusal: kept, and explained
    assert refused.state == "refused" and "trafic" in (refused.reason or "")
    assert [a for a, _ in watch.since()][-2:] == ["scope.refused", "job.refused"]
    assert _violations(registry) == []
    assert registry.monitoring.list_findings(viewer=AGENCY) == []
    assert _qualification(registry) == "qualified"
    assert jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)  # and the operator works on


def test_a_misspelt_scenario_is_refused_with_a_suggestion_and_never_counted(jobs: Jobs, registry: Registry) -> None:
    for _ in range(4):
        with pytest.raises(JobUsageError, match=f"did you mean {SCENARIO}") as caught:
            jobs.submit(OPERATOR, ["traffic"], "sql", SQL, "交通出形")
    assert caught.value.refusal == "usage:unknown_scenario" and caught.value.suggestions == (SCENARIO,)
    assert _violations(registry) == [] and _qualification(registry) == "qualified"


def test_suggestions_never_reveal_another_operators_names(jobs: Jobs, registry: Registry) -> None:
    """Only the catalog's public names and the operator's own licences are ever suggested."""
    with pytest.raises(JobUsageError) as caught:
        jobs.submit(OPERATOR, ["traffic"], "sql", SQL, "社会保障分柝")  # one stroke from bank-ops' purpose
    assert SOCIAL not in str(caught.value) and caught.value.suggestions == ()
    assert SCENARIO in str(caught.value)  # its own licence's scenarios are offered instead
    # A draft licence's scenario is not public: declaring it is an unknown name, not a probe that confirms it.
    with pytest.raises(JobUsageError, match="named by no licence"):
        jobs.submit(OPERATOR, ["traffic"], "sql", SQL, "信贷审批草案")
    assert _violations(registry) == []
    # The catalog is public to every role: a misspelt catalog entry is suggested even if not granted.
    with pytest.raises(JobUsageError, match="did you mean loans"):
        jobs.submit(OPERATOR, ["loan"], "sql", SQL, SCENARIO)


def test_an_unknown_job_kind_is_a_usage_error_with_a_suggestion(jobs: Jobs, registry: Registry) -> None:
    with pytest.raises(UsageError, match="did you mean python") as caught:
        jobs.submit(OPERATOR, ["traffic"], "pyhton", "print(1)", SCENARIO)
    assert not isinstance(caught.value, JobRefusedError)
    assert jobs.queue.list() == [] and _violations(registry) == []


# --- deliberate acts count, with a warning before the last -----------------------------------------


def test_deliberate_refusals_warn_before_the_last_and_three_suspend(
    jobs: Jobs, registry: Registry, clock: FakeClock
) -> None:
    """超范围调用 (loans exists, not granted) and 超目的调用 (社会保障分析 exists, not granted) count."""
    attempts = [(["loans"], SCENARIO), (["traffic"], SOCIAL), (["traffic", "pensions"], SCENARIO)]
    reasons: list[str] = []
    for datasets, scenario in attempts:
        with pytest.raises(JobRefusedError) as caught:
            jobs.submit(OPERATOR, datasets, "sql", SQL, scenario)
        assert not isinstance(caught.value, UsageError)
        reasons.append(caught.value.reason)
        clock.advance(minutes=5)
    assert "one more violation suspends this operator" not in reasons[0]
    assert "one more violation suspends this operator" in reasons[1] and "2 of 3" in reasons[1]
    assert "now suspended" in reasons[2]
    assert _violations(registry) == ["dataset_out_of_scope", "scenario_not_licensed", "dataset_out_of_scope"]
    assert _qualification(registry) == "suspended"
    with pytest.raises(JobRefusedError, match="suspended"):
        jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)


def test_typos_between_violations_neither_count_nor_trigger_the_warning(jobs: Jobs, registry: Registry) -> None:
    with pytest.raises(JobRefusedError) as first:
        jobs.submit(OPERATOR, ["loans"], "sql", SQL, SCENARIO)
    assert "one more" not in first.value.reason
    for typo in (["trafic"], ["trffic"]):
        with pytest.raises(JobUsageError):
            jobs.submit(OPERATOR, typo, "sql", SQL, SCENARIO)
    with pytest.raises(JobRefusedError, match="one more violation suspends this operator"):
        jobs.submit(OPERATOR, ["loans"], "sql", SQL, SCENARIO)
    assert _qualification(registry) == "qualified"


# --- dry runs --------------------------------------------------------------------------------------


def test_scope_check_dry_runs_never_count_and_record_no_use(registry: Registry, instance: Instance) -> None:
    watch = LedgerWatch(instance)
    for _ in range(5):
        with pytest.raises(ScopeRefusedError) as refused:
            registry.licences.check_scope(OPERATOR, ["loans"], SCENARIO, dry_run=True)
        assert refused.value.kind == "dataset_out_of_scope" and not refused.value.counted
        assert refused.value.warning is None
    with pytest.raises(UnknownNameError, match="did you mean traffic"):
        registry.licences.check_scope(OPERATOR, ["trafic"], SCENARIO, dry_run=True)
    grant = registry.licences.check_scope(OPERATOR, ["traffic"], SCENARIO, dry_run=True)
    assert grant.datasets[0].name == "traffic"
    assert {a for a, _ in watch.since()} == {"scope.checked"}  # on record, and nothing more
    assert _violations(registry) == [] and _qualification(registry) == "qualified"
    with registry.recorder.read() as session:
        assert session.scalar(select(func.count(UsageRow.id))) == 0  # a question is not a use (idle clock intact)
        assert session.scalar(select(func.count(FindingRow.id))) == 0


# --- over HTTP and the CLI -------------------------------------------------------------------------


Client = tuple[Instance, TestClient, dict[str, dict[str, str]]]


@pytest.fixture
def client(
    initialised: tuple[Instance, dict[str, str]], tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Client:
    instance, tokens = initialised
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))
    licensed(instance.registry, instance.home, operator="demo-operator")
    add_dataset(instance.registry, "loans", industry="金融")
    keys = dict(tokens)
    keys["agency2"] = instance.identity.create_principal("reviewer-2", Role.AGENCY).api_key
    confirm(instance.identity, "reviewer-2")  # made by the host: counts once an agency person confirmed it
    http = TestClient(create_app(instance=instance))
    return instance, http, bearer_headers(http, keys)


def _done_job(instance: Instance, http: TestClient, headers: dict[str, str]) -> int:
    body = {"datasets": ["traffic"], "kind": "python", "code": "print(1)", "scenario": SCENARIO}
    made = http.post("/jobs", json=body, headers=headers)
    assert made.status_code == 201, made.text
    job = int(made.json()["job"])
    instance.worker(runner=fast_runner, worker_id="api-violations").run_pending()
    with instance.engine.begin() as connection:
        connection.execute(text("UPDATE jobs SET verdict = 'pass', findings = '[]' WHERE id = :id"), {"id": job})
    return job


def _released(http: TestClient, headers: dict[str, dict[str, str]], job: int, product: str) -> int:
    made = http.post("/releases", json={"job": job, "product": product}, headers=headers["operator"])
    assert made.status_code == 201, made.text
    return int(made.json()["release"])


def test_api_typos_are_422_with_suggestions_and_scope_checks_never_suspend(client: Client) -> None:
    instance, http, headers = client
    me = headers["operator"]
    typo = http.post(
        "/jobs", json={"datasets": ["trafic"], "kind": "sql", "code": SQL, "scenario": SCENARIO}, headers=me
    )
    assert typo.status_code == 422 and "did you mean traffic" in typo.json()["detail"]
    kind = http.post(
        "/jobs", json={"datasets": ["traffic"], "kind": "sqll", "code": SQL, "scenario": SCENARIO}, headers=me
    )
    assert kind.status_code == 422 and "did you mean sql" in kind.json()["detail"]
    checked = http.post("/scope-check", json={"datasets": ["trafic"], "scenario": SCENARIO}, headers=me)
    assert checked.status_code == 422 and checked.json()["suggestions"] == ["traffic"]
    for _ in range(4):
        out = http.post("/scope-check", json={"datasets": ["loans"], "scenario": SCENARIO}, headers=me)
        assert out.status_code == 409 and out.json()["kind"] == "dataset_out_of_scope"
    me_now = http.get("/operators/demo-operator", headers=me).json()
    assert me_now["qualification"] == "qualified"
    assert http.get("/findings", headers=headers["agency"]).json() == []
    # The act itself counts, and the second warns.
    body = {"datasets": ["loans"], "kind": "sql", "code": SQL, "scenario": SCENARIO}
    assert "one more" not in http.post("/jobs", json=body, headers=me).json()["detail"]
    second = http.post("/jobs", json=body, headers=me)
    assert second.status_code == 409 and "one more violation suspends this operator" in second.json()["detail"]
    assert instance.registry.licences.get_operator("demo-operator").qualification == "qualified"


def test_a_suspended_operator_gets_no_delivery_and_opens_no_release_until_restored(client: Client) -> None:
    """第三十一条 / 第七十五条: suspension closes every way data leaves; restoration reopens them."""
    instance, http, headers = client
    me, agency = headers["operator"], headers["agency"]
    delivered = _released(http, headers, _done_job(instance, http, me), "p")
    for reviewer in ("agency", "agency2"):
        voted = http.post(f"/releases/{delivered}/votes", json={"decision": "approve"}, headers=headers[reviewer])
        assert voted.status_code == 200, voted.text
    pending = _released(http, headers, _done_job(instance, http, me), "q")
    later = _done_job(instance, http, me)
    assert http.get("/products/p/artifacts/result.txt", headers=me).status_code == 200
    body = {"datasets": ["traffic"], "kind": "python", "code": "print(2)", "scenario": SCENARIO}
    waiting = int(http.post("/jobs", json=body, headers=me).json()["job"])  # queued, no worker yet

    suspended = http.post("/operators/demo-operator/suspend", json={"reason": "安全检查未通过"}, headers=agency)
    assert suspended.json()["qualification"] == "suspended"
    download = http.get("/products/p/artifacts/result.txt", headers=me)
    assert download.status_code == 403 and "suspended" in download.json()["detail"]
    assert "第三十一条" in download.json()["detail"]
    request = http.post("/releases", json={"job": later, "product": "r"}, headers=me)
    assert request.status_code == 403 and "suspended" in request.json()["detail"]
    approve = http.post(f"/releases/{pending}/votes", json={"decision": "approve"}, headers=agency)
    assert approve.status_code == 409 and "suspended" in approve.json()["detail"]
    job = {"datasets": ["traffic"], "kind": "sql", "code": SQL, "scenario": SCENARIO}
    assert http.post("/jobs", json=job, headers=me).status_code == 409
    # A finished job's outputs and log are held too while access is closed; the agency still reads them.
    held = http.get(f"/jobs/{later}", headers=me).json()
    assert held["outputs"] == [] and held["log"] is None and "第三十一条" in held["reason"]
    assert http.get(f"/jobs/{later}", headers=agency).json()["outputs"]
    # The refused download left no delivery on record.
    assert len(instance.ledger.entries(action="product.fetched")) == 1
    instance.worker(runner=fast_runner, worker_id="api-violations").run_pending()
    assert http.get(f"/jobs/{waiting}", headers=me).json()["state"] == "queued"  # held, neither run nor failed

    restored = http.post("/operators/demo-operator/restore", json={"reason": "整改完成"}, headers=agency)
    assert restored.json()["qualification"] == "qualified"
    assert http.get("/products/p/artifacts/result.txt", headers=me).status_code == 200
    assert http.get(f"/jobs/{later}", headers=me).json()["outputs"]  # delivered again once restored
    assert http.post("/releases", json={"job": later, "product": "r"}, headers=me).status_code == 201
    instance.worker(runner=fast_runner, worker_id="api-violations").run_pending()
    assert http.get(f"/jobs/{waiting}", headers=me).json()["state"] == "done"  # the held job ran once restored
    for reviewer in ("agency", "agency2"):
        voted = http.post(f"/releases/{pending}/votes", json={"decision": "approve"}, headers=headers[reviewer])
        assert voted.status_code == 200, voted.text
    assert voted.json()["state"] == "approved"


def test_cli_refuses_a_suspended_operators_fetch_and_a_typo_with_exit_1(client: Client, tmp_path: Any) -> None:
    instance, http, headers = client
    release = _released(http, headers, _done_job(instance, http, headers["operator"]), "p")
    for reviewer in ("agency", "agency2"):
        http.post(f"/releases/{release}/votes", json={"decision": "approve"}, headers=headers[reviewer])
    instance.registry.licences.suspend_operator("demo-operator", by=AGENCY, reason="安全检查未通过")
    home = ["--home", str(instance.home)]
    runner = CliRunner()
    fetch = ["product", "fetch", "p", "--operator", "demo-operator", "--to", str(tmp_path / "out"), *home]
    refused = runner.invoke(cli, fetch)
    assert refused.exit_code == 1 and "suspended" in refused.stderr and "Traceback" not in refused.output
    instance.registry.licences.restore_operator("demo-operator", by=AGENCY, reason="整改完成")
    assert runner.invoke(cli, fetch).exit_code == 0
    check = ["licence", "check", "demo-operator", "--datasets", "trafic", "--scenario", SCENARIO, *home]
    typo = runner.invoke(cli, check)
    assert typo.exit_code == 1 and "did you mean traffic" in typo.stderr
    data = json.loads(runner.invoke(cli, ["finding", "list", "--json", *home]).stdout)
    assert data["findings"] == []


def test_the_console_refuses_a_suspended_operators_download_and_release_with_the_reason(
    client: Client, initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, http, headers = client
    release = _released(http, headers, _done_job(instance, http, headers["operator"]), "p")
    for reviewer in ("agency", "agency2"):
        http.post(f"/releases/{release}/votes", json={"decision": "approve"}, headers=headers[reviewer])
    later = _done_job(instance, http, headers["operator"])
    instance.registry.licences.suspend_operator("demo-operator", by=AGENCY, reason="安全检查未通过")
    operator = console_client(instance, initialised[1]["operator"])
    fetched = operator.get("/console/operator/products/p/artifacts/result.txt", follow_redirects=False)
    assert fetched.status_code == 303 and "suspended" in flash(fetched)
    csrf = csrf_of(operator, "/console/operator/jobs")
    asked = operator.post(
        f"/console/operator/jobs/{later}/release", data={"csrf": csrf, "product": "r"}, follow_redirects=False
    )
    assert asked.status_code == 303 and "suspended" in flash(asked)
    assert instance.releases.list(viewer=Actor("demo-operator", "operator"))[-1].product == "p"
    instance.registry.licences.restore_operator("demo-operator", by=AGENCY, reason="整改完成")
    assert operator.get("/console/operator/products/p/artifacts/result.txt").status_code == 200
