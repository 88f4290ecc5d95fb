"""The instance-wide usage report (SATRE 2.2.13: record usage data — users, projects, data stored). Both databases.

Read-only counts for the agency and regulators (双鸭山 第五十二条: usage logs a regulator reads): principals by
role and state, organisations, licences, datasets and versions, bytes stored by kind measured on the files,
jobs by state in the window, CPU seconds, releases and products. No person is named; an operator gets 403.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from core import Actor, PermissionDeniedError, UsageError
from operators import JobRefusedError, usage_report
from sandbox.models import JobState
from tests.conftest import bearer_headers
from tests.job_worker_proc import SCENARIO, licensed

OPERATOR = "demo-operator"
SQL = "SELECT 区县, count(*) AS n FROM traffic GROUP BY 区县"
runner = CliRunner()


@pytest.fixture
def busy(initialised: tuple[Instance, dict[str, str]]) -> tuple[Instance, dict[str, str]]:
    """A licensed operator with one job done (2.5 CPU seconds), one queued, one refused, and files of each kind."""
    instance, tokens = initialised
    licensed(instance.registry, instance.home, operator=OPERATOR)
    jobs = instance.jobs
    done = jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    claimed = jobs.queue.claim("w1")
    assert claimed is not None and claimed.job.id == done
    jobs.queue.finish(done, "w1", 1, state=JobState.DONE, exit_code=0, resources={"wall": 3, "cpu": 2.5, "max_rss": 1})
    jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    with pytest.raises(JobRefusedError):  # an unknown scenario: kept as a refused row
        jobs.submit(OPERATOR, ["traffic"], "sql", SQL, "金融风控")
    for kind, size in (("vault", 100), ("copies", 200), ("work", 300), ("products", 400)):
        extra = instance.home / kind / "report-test" / "blob.bin"
        extra.parent.mkdir(parents=True, exist_ok=True)
        extra.write_bytes(b"x" * size)
    return instance, tokens


def test_the_report_counts_people_licences_data_bytes_and_jobs_without_naming_anyone(
    busy: tuple[Instance, dict[str, str]],
) -> None:
    instance, _ = busy
    report = usage_report(instance.registry, instance.home, since=None, viewer=Actor("demo-regulator", "regulator"))
    assert report["window"]["since"] is None and report["window"]["until"]
    roles = report["principals_by_role"]
    assert {"agency", "custodian", "operator", "regulator"} <= set(roles)
    assert roles["operator"]["active"] >= 1 and report["principals_total"] >= 4
    assert report["operators"]["total"] == 1
    assert report["licences_by_state"] == {"active": 1}
    assert report["datasets_by_state"].get("published", 0) >= 1
    assert sum(report["versions_by_kind"].values()) >= 1
    assert report["jobs_by_state"] == {"done": 1, "queued": 1, "refused": 1}
    assert report["jobs_active_now"] == 1 and report["cpu_seconds"] == 2.5
    stored = report["stored"]
    # Measured on the files: at least what this test wrote, per kind.
    for kind, size in (("vault_raw", 100), ("copies", 200), ("outputs", 300), ("products", 400)):
        assert stored[kind]["bytes"] >= size and stored[kind]["files"] >= 1, kind
    assert stored["other"]["bytes"] > 0  # the database, secrets
    assert stored["total"]["bytes"] == sum(v["bytes"] for k, v in stored.items() if k != "total")
    text = json.dumps(report, ensure_ascii=False)
    for name in (OPERATOR, "demo-agency", "demo-regulator", "demo-custodian", str(instance.home)):
        assert name not in text  # counts only: no principal, and no host path


def test_the_window_limits_jobs_and_a_future_start_is_refused(busy: tuple[Instance, dict[str, str]]) -> None:
    instance, _ = busy
    host = Actor.host()
    now = instance.registry.config.now()
    later = usage_report(instance.registry, instance.home, since=now + timedelta(seconds=-0.001), viewer=host)
    assert later["jobs_by_state"] == {} and later["cpu_seconds"] == 0
    assert later["jobs_active_now"] == 1  # what runs now is not a matter of the window
    assert later["licences_by_state"] == {"active": 1}  # what is held is counted whatever the window
    with pytest.raises(UsageError, match="future"):
        usage_report(instance.registry, instance.home, since=now + timedelta(days=1), viewer=host)


@pytest.mark.attack
def test_only_the_agency_and_regulators_read_it_over_http(busy: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = busy
    with pytest.raises(PermissionDeniedError):
        usage_report(instance.registry, instance.home, since=None, viewer=Actor(OPERATOR, "operator"))
    http = TestClient(create_app(instance=instance))
    headers = bearer_headers(http, tokens)
    for role in ("agency", "regulator"):
        answer = http.get("/usage-report", params={"all": "true"}, headers=headers[role])
        assert answer.status_code == 200, answer.text
        assert answer.json()["jobs_by_state"]["done"] == 1
    assert http.get("/usage-report", headers=headers["operator"]).status_code == 403
    assert http.get("/usage-report", headers=headers["custodian"]).status_code == 403
    assert http.get("/usage-report").status_code == 401
    default = http.get("/usage-report", headers=headers["agency"]).json()
    assert default["window"]["since"] is not None  # 30 days by default
    assert http.get("/usage-report", params={"since": "yesterday"}, headers=headers["agency"]).status_code == 422
    assert http.get("/usage-report", params={"since": "2999-01-01"}, headers=headers["agency"]).status_code == 422
    both = http.get("/usage-report", params={"since": "2026-01-01", "all": "true"}, headers=headers["agency"])
    assert both.status_code == 422
    # Read-only: nothing was ledgered by reading.
    assert instance.ledger.entries(action="usage.report") == []


def test_keyong_usage_report_json_and_since(busy: tuple[Instance, dict[str, str]]) -> None:
    instance, _ = busy
    home = ["--home", str(instance.home)]
    made = runner.invoke(cli, ["usage", "report", "--json", "--since", "all", *home])
    assert made.exit_code == 0, made.output
    data = json.loads(made.stdout)
    assert data["jobs_by_state"]["done"] == 1 and data["window"]["since"] is None
    assert set(data["stored"]) == {"vault_raw", "copies", "fingerprints", "outputs", "products", "other", "total"}
    dated = json.loads(runner.invoke(cli, ["usage", "report", "--json", "--since", "2000-01-01", *home]).stdout)
    assert dated["window"]["since"].startswith("2000-01-01") and dated["jobs_by_state"]["done"] == 1
    assert runner.invoke(cli, ["usage", "report", *home]).exit_code == 0  # the human tables render
    assert runner.invoke(cli, ["usage", "report", "--since", "soon", *home]).exit_code == 2
    future = runner.invoke(cli, ["usage", "report", "--since", "2999-01-01", *home])
    assert future.exit_code == 1 and "future" in future.output
