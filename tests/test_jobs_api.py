"""Operators' jobs over HTTP: submit within scope, 409 with the reason outside it, see only their own
jobs, never a host path or log content (原始数据不出域, 双鸭山 第三十五条); agency and regulators read all;
regulators cancel nothing. Both databases.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from core import Actor
from sandbox.guard import operator_findings
from tests.conftest import bearer_headers
from tests.consent_support import consent_to_access
from tests.job_worker_proc import AGENCY, MARKERS_ENV, SCENARIO, fast_runner, licensed

OPERATOR = "demo-operator"  # the principal behind the operator API key of `keyong init`


@pytest.fixture
def client(
    initialised: tuple[Instance, dict[str, str]], tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> tuple[Instance, TestClient, dict[str, dict[str, str]]]:
    instance, tokens = initialised
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))  # where the fast stand-in runner leaves its markers
    licensed(instance.registry, instance.home, operator=OPERATOR)
    client = TestClient(create_app(instance=instance))
    return instance, client, bearer_headers(client, tokens)


def _job(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"datasets": ["traffic"], "kind": "python", "code": "print(1)", "scenario": SCENARIO}
    body.update(overrides)
    return body


def test_an_operator_submits_and_reads_its_job_without_paths(
    client: tuple[Instance, TestClient, dict[str, dict[str, str]]],
) -> None:
    instance, http, headers = client
    made = http.post("/jobs", json=_job(), headers=headers["operator"])
    assert made.status_code == 201, made.text
    job = made.json()["job"]
    assert made.json()["state"] == "queued"
    instance.worker(runner=fast_runner, worker_id="api-test").run_pending()
    shown = http.get(f"/jobs/{job}", headers=headers["operator"])
    assert shown.status_code == 200
    data = shown.json()
    assert data["state"] == "done" and data["verdict"] == "review"
    # a text document always goes to review; the hand-made copy has no fingerprints to probe
    assert {f["rule"] for f in data["findings"]} == {"sdc.free_text", "guard.no_fingerprints"}
    assert data["outputs"] and all(set(o) == {"name", "bytes", "sha256"} for o in data["outputs"])
    assert str(instance.home) not in shown.text and "path" not in shown.text
    assert [j["job"] for j in http.get("/jobs", headers=headers["operator"]).json()] == [job]
    assert http.get(f"/jobs/{job}", headers=headers["regulator"]).status_code == 200
    assert http.get(f"/jobs/{job}", headers=headers["custodian"]).status_code == 403


def test_out_of_scope_jobs_are_refused_with_the_reason_and_recorded(
    client: tuple[Instance, TestClient, dict[str, dict[str, str]]],
) -> None:
    instance, http, headers = client
    # Names the platform does not know (no licence or catalog entry names 金融风控; no dataset residents)
    # are usage errors (422, issue 17): refused and recorded, never counted as violations.
    wrong_scenario = http.post("/jobs", json=_job(scenario="金融风控"), headers=headers["operator"])
    assert wrong_scenario.status_code == 422 and "金融风控" in wrong_scenario.json()["detail"]
    unknown = http.post("/jobs", json=_job(datasets=["residents"]), headers=headers["operator"])
    assert unknown.status_code == 422
    assert instance.registry.monitoring.list_violations(viewer=Actor.host()) == []
    later = http.post("/jobs", json=_job(kind="dp-query"), headers=headers["operator"])
    assert later.status_code == 409 and "spec" in later.json()["detail"]  # print(1) is no DP spec
    assert http.post("/jobs", json=_job(), headers=headers["agency"]).status_code == 403
    assert http.post("/jobs", json=_job(code=""), headers=headers["operator"]).status_code == 422
    assert len(instance.ledger.entries(action="scope.refused")) == 2


def test_cancel_by_the_owner_or_the_agency_never_by_a_regulator(
    client: tuple[Instance, TestClient, dict[str, dict[str, str]]],
) -> None:
    _, http, headers = client
    first = http.post("/jobs", json=_job(), headers=headers["operator"]).json()["job"]
    assert http.post(f"/jobs/{first}/cancel", headers=headers["regulator"]).status_code == 403
    cancelled = http.post(f"/jobs/{first}/cancel", headers=headers["operator"])
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    second = http.post("/jobs", json=_job(), headers=headers["operator"]).json()["job"]
    assert http.post(f"/jobs/{second}/cancel", headers=headers["agency"]).json()["state"] == "cancelled"
    assert http.get("/jobs/99999", headers=headers["operator"]).status_code == 404


def test_dp_cost_and_budgets_over_http(client: tuple[Instance, TestClient, dict[str, dict[str, str]]]) -> None:
    """An operator asks what a DP spec costs and reads its own budgets; the agency raises one with a reason."""
    import json

    from tests.dp_support import DATASET, DP_SCENARIO, dp_dataset

    instance, http, headers = client
    dp_dataset(instance.registry, instance.home)
    consent_to_access(instance.registry, DATASET)
    instance.registry.licences.grant(
        OPERATOR,
        datasets=[DATASET],
        scenarios=[DP_SCENARIO],
        valid_until=instance.registry.config.now().date().replace(year=2099),
        publicity_days=0,
        epsilon=1.0,
        by=AGENCY,
        reason="授权运营协议 DP",
    )
    spec = json.dumps({"aggregate": "count", "epsilon": 0.4, "group_by": ["参保状态"]})
    cost = http.post("/jobs/cost", json={"spec": spec, "dataset": DATASET}, headers=headers["operator"])
    assert cost.status_code == 200, cost.text
    assert cost.json()["epsilon"] == 0.4 and cost.json()["fits"] is True
    bad = http.post("/jobs/cost", json={"spec": "{}", "dataset": DATASET}, headers=headers["operator"])
    assert bad.status_code == 409 and "not a DP spec" in bad.json()["detail"]
    made = http.post(
        "/jobs",
        json={"datasets": [DATASET], "kind": "dp-query", "code": spec, "scenario": DP_SCENARIO},
        headers=headers["operator"],
    )
    assert made.status_code == 201, made.text
    budgets = http.get(f"/budgets/{OPERATOR}", headers=headers["operator"]).json()["budgets"]
    mine = next(b for b in budgets if b["dataset"] == DATASET)
    assert mine["epsilon_spent"] == 0.4 and mine["epsilon_remaining"] == pytest.approx(0.6)
    assert http.get("/budgets/someone-else", headers=headers["operator"]).status_code == 403
    body = {"licence": mine["licence"], "dataset": DATASET, "epsilon": 2.0, "reason": "第二期"}
    assert http.post(f"/budgets/{OPERATOR}/raise", json=body, headers=headers["operator"]).status_code == 403
    raised = http.post(f"/budgets/{OPERATOR}/raise", json=body, headers=headers["agency"])
    assert raised.status_code == 200, raised.text
    assert raised.json()["epsilon_budget"] == 2.0
    assert instance.ledger.entries(action="budget.raised")[0].payload["reason"] == "第二期"


def _finish(instance: Instance, job: int, **end: object) -> None:
    """End ``job`` as a worker would, with the export guard's verdict given by the test."""
    claimed = instance.jobs.queue.claim("api-test")
    assert claimed is not None and claimed.job.id == job
    assert instance.jobs.queue.finish(job, "api-test", claimed.attempt, **end) is not None  # type: ignore[arg-type]


SECRET_NAME = "110101199001011234.csv"  # an output name built from a key: a channel out by itself
SECRET_LOG = "Binder Error: 110101199001011234 not found"  # a DuckDB error echoing a cell


def test_a_blocked_job_shows_the_operator_its_findings_only_and_the_agency_everything(
    client: tuple[Instance, TestClient, dict[str, dict[str, str]]],
) -> None:
    """Issue 15, principle 5: on ``block`` no log, no output names, sizes or hashes, no exit code."""
    instance, http, headers = client
    job = http.post("/jobs", json=_job(), headers=headers["operator"]).json()["job"]
    finding = {"rule": "identifier.fingerprint", "severity": "hard", "file": "*", "location": "c1", "detail": "d"}
    _finish(
        instance,
        job,
        state="done",
        exit_code=0,
        reason="ok",
        resources={"wall": 1.0, "cpu": 1.0, "max_rss": 1},
        outputs=[{"name": SECRET_NAME, "bytes": 77, "sha256": "ef" * 32, "path": "work/x"}],
        verdict="block",
        findings=[finding],
        log_excerpt=SECRET_LOG,
    )
    shown = http.get(f"/jobs/{job}", headers=headers["operator"])
    assert shown.status_code == 200
    data = shown.json()
    assert (data["state"], data["verdict"], data["findings"]) == ("done", "block", operator_findings([finding]))
    assert (data["outputs"], data["log"], data["exit_code"], data["resources"]) == ([], None, None, None)
    assert data["reason"] == "blocked by the export guard; see the findings"
    assert "110101199001011234" not in shown.text and "ef" * 32 not in shown.text
    (listed,) = http.get("/jobs", headers=headers["operator"]).json()
    assert listed == data

    for role in ("agency", "regulator"):  # they see every job, in full (never a host path)
        full = http.get(f"/jobs/{job}", headers=headers[role])
        assert full.status_code == 200
        seen = full.json()
        assert seen["outputs"] == [{"name": SECRET_NAME, "bytes": 77, "sha256": "ef" * 32}]
        assert (seen["log"], seen["exit_code"], seen["reason"]) == (SECRET_LOG, 0, "ok")
        assert "work/x" not in full.text
        (all_listed,) = [j for j in http.get("/jobs", headers=headers[role]).json() if j["job"] == job]
        assert all_listed["outputs"] == seen["outputs"] and all_listed["log"] == SECRET_LOG


def test_a_failed_job_shows_no_exit_code_and_never_pass_over_http(
    client: tuple[Instance, TestClient, dict[str, dict[str, str]]],
) -> None:
    instance, http, headers = client
    job = http.post("/jobs", json=_job(), headers=headers["operator"]).json()["job"]
    _finish(instance, job, state="failed", exit_code=42, reason="exit status 42", verdict="pass", log_excerpt="judged")
    data = http.get(f"/jobs/{job}", headers=headers["operator"]).json()
    assert (data["state"], data["verdict"], data["exit_code"], data["log"]) == ("failed", None, None, "judged")
    assert "42" not in (data["reason"] or "")
    agency = http.get(f"/jobs/{job}", headers=headers["agency"]).json()
    assert agency["verdict"] is None and agency["exit_code"] == 42  # a failed job passes nothing, for anyone
