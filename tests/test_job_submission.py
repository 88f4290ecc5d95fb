"""Job submission on SQLite and PostgreSQL: the licence scope first (双鸭山 第三十一条, 黑龙江 第二十七条:
超范围 / 超目的调用 refused at once and recorded as violations), then the operator's quotas, then the
queue; a refused job is kept with its reason; code and spec are hashed into the ledger, never stored there.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import Instance
from core import Actor, NotFoundError, RegistryError
from operators.jobs import JobRefusedError, Jobs, Quotas, sha256_hex
from registry import Registry
from registry.models import ViolationRow
from sandbox.models import JobState
from tests.conftest import FakeClock
from tests.consent_support import consent_to_access
from tests.job_worker_proc import OPERATOR, SCENARIO, licensed
from tests.people_support import stand
from tests.test_registry_licences import LedgerWatch, add_dataset, make_registry, uscc

SQL = "SELECT 区县, count(*) AS n FROM traffic GROUP BY 区县"


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    reg = make_registry(instance, clock)
    licensed(reg, instance.home)
    add_dataset(reg, "loans", industry="金融")
    reg.licences.add_operator("other-ops", uscc(2), by=Actor("demo-agency", "agency"))
    # 金融风控 is a purpose the platform knows (another operator holds it): declaring it is 超目的调用, not a typo.
    reg.licences.add_operator("bank-ops", uscc(3), by=Actor("demo-agency", "agency"))
    stand(reg, "other-ops", "bank-ops")
    consent_to_access(reg, "loans")
    reg.licences.grant(
        "bank-ops",
        datasets=["loans"],
        scenarios=["金融风控"],
        valid_until=reg.config.now().date() + timedelta(days=365),
        publicity_days=0,
        by=Actor("demo-agency", "agency"),
        reason="授权运营协议 2026-02",
    )
    return reg


@pytest.fixture
def job_quotas() -> Quotas:
    return Quotas(concurrent=2, per_day=3, cpu_seconds_per_day=10)


def _violations(registry: Registry) -> list[str]:
    with registry.recorder.read() as session:
        return list(session.scalars(select(ViolationRow.kind).order_by(ViolationRow.id)).all())


def test_an_admitted_job_is_queued_with_its_granted_copies_and_hashes(
    jobs: Jobs, instance: Instance, registry: Registry
) -> None:
    watch = LedgerWatch(instance)
    job = jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    view = jobs.show(job)
    assert view.state == "queued" and view.verdict is None and view.attempts == 0
    # The licence's copy (issue 23): nothing in this one is keyed, so its row names the base file.
    copy = view.datasets["traffic"].pop("licence_copy")
    assert isinstance(copy, int)
    assert view.datasets == {"traffic": {"version": 1, "path": "datasets/traffic/v1.parquet"}}
    assert view.licence_id is not None and view.code_sha256 == sha256_hex(SQL)
    assert jobs.queue.code(job) == SQL
    entries = watch.since(full=True)
    assert [(e.action, e.subject) for e in entries][-1] == ("job.queued", f"job:{job}")
    # The scope check ran first and names the job's spec, which the queued job carries.
    admitted = [e for e in entries if e.action == "scope.admitted"]
    assert len(admitted) == 1 and view.spec_sha256 in json.dumps(admitted[0].payload) + admitted[0].subject
    queued = entries[-1].payload
    assert queued["code_sha256"] == sha256_hex(SQL) and queued["spec_sha256"] == view.spec_sha256
    assert queued["datasets"] == {"traffic": 1} and queued["scenario"] == SCENARIO
    # The code itself never reaches the ledger.
    assert all("GROUP BY" not in json.dumps(e.payload, ensure_ascii=False) for e in entries)


@pytest.mark.parametrize(
    ("operator", "datasets", "scenario", "kind", "match"),
    [
        (OPERATOR, ["traffic", "loans"], SCENARIO, "dataset_out_of_scope", "loans"),  # 超范围调用
        (OPERATOR, ["traffic"], "金融风控", "scenario_not_licensed", "金融风控"),  # 超目的调用
        ("other-ops", ["traffic"], SCENARIO, "no_active_licence", "licence"),
    ],
)
def test_out_of_scope_jobs_are_refused_recorded_and_explained(
    jobs: Jobs, registry: Registry, operator: str, datasets: list[str], scenario: str, kind: str, match: str
) -> None:
    with pytest.raises(JobRefusedError, match=match) as caught:
        jobs.submit(operator, datasets, "sql", SQL, scenario)
    assert caught.value.refusal == f"scope:{kind}" and caught.value.job is not None
    refused = jobs.show(caught.value.job)
    assert refused.state == "refused" and match in (refused.reason or "")
    assert refused.as_json()["verdict"] is None and refused.licence_id is None
    assert _violations(registry) == [kind]  # the registry recorded the violation itself
    assert jobs.queue.list(state="queued") == []


def test_a_suspended_operator_is_refused(jobs: Jobs, registry: Registry, instance: Instance) -> None:
    registry.licences.suspend_operator(OPERATOR, by=Actor("demo-agency", "agency"), reason="安全检查未通过")
    watch = LedgerWatch(instance)
    with pytest.raises(JobRefusedError, match="suspended"):
        jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    actions = [a for a, _ in watch.since()]
    assert "scope.refused" in actions and actions[-1] == "job.refused"
    assert "job.queued" not in actions


@pytest.mark.parametrize("kind", ["dp-query", "dp-train"])
def test_malformed_dp_specs_are_refused_before_the_scope_check(jobs: Jobs, instance: Instance, kind: str) -> None:
    watch = LedgerWatch(instance)
    with pytest.raises(JobRefusedError, match="spec is invalid") as caught:
        jobs.submit(OPERATOR, ["traffic"], kind, '{"query": "mean"}', SCENARIO)
    assert caught.value.refusal == "dp-spec"
    # Refused before the scope check: no usage is recorded for a job that can never run.
    assert [a for a, _ in watch.since()] == ["job.refused"]


@pytest.mark.parametrize(
    ("kind", "code", "datasets", "scenario", "match"),
    [
        ("rust", "fn main() {}", ["traffic"], SCENARIO, "unknown job kind"),
        ("sql", "   ", ["traffic"], SCENARIO, "empty"),
        ("sql", SQL, [], SCENARIO, "name the datasets"),
        ("sql", SQL, ["traffic"], " ", "scenario"),
    ],
)
def test_malformed_submissions_are_usage_errors_without_a_row(
    jobs: Jobs, kind: str, code: str, datasets: list[str], scenario: str, match: str
) -> None:
    with pytest.raises(RegistryError, match=match) as caught:
        jobs.submit(OPERATOR, datasets, kind, code, scenario)
    assert not isinstance(caught.value, JobRefusedError)
    assert jobs.queue.list() == []


def test_concurrent_jobs_quota(jobs: Jobs) -> None:
    first = jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    with pytest.raises(JobRefusedError, match=r"2 jobs queued or running \(limit 2\)") as caught:
        jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    assert caught.value.refusal == "quota" and jobs.show(caught.value.job or 0).state == "refused"
    jobs.cancel(first, by=Actor(OPERATOR, "operator"))
    assert jobs.show(jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)).state == "queued"


def test_jobs_per_day_quota_counts_a_rolling_24_hours(jobs: Jobs, clock: FakeClock) -> None:
    for _ in range(3):
        job = jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
        jobs.cancel(job, by=Actor.host())  # frees the concurrency slot, still counts for the day
    with pytest.raises(JobRefusedError, match=r"3 jobs in the last 24 hours \(limit 3\)"):
        jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    clock.advance(hours=24, seconds=1)
    assert jobs.show(jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)).state == "queued"


def test_cpu_seconds_quota(jobs: Jobs, clock: FakeClock) -> None:
    job = jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    claimed = jobs.queue.claim("w1")
    assert claimed is not None and claimed.job.id == job
    jobs.queue.finish(job, "w1", 1, state=JobState.DONE, exit_code=0, resources={"wall": 9, "cpu": 10.5, "max_rss": 1})
    with pytest.raises(JobRefusedError, match=r"used 10 CPU seconds .* \(limit 10\)"):
        jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    clock.advance(hours=25)
    assert jobs.show(jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)).state == "queued"


def test_an_operator_sees_only_its_own_jobs(jobs: Jobs) -> None:
    job = jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    other = Actor("other-ops", "operator")
    with pytest.raises(NotFoundError):
        jobs.show(job, viewer=other)
    with pytest.raises(NotFoundError):
        jobs.cancel(job, by=other)
    assert jobs.list(viewer=other) == []
    assert [v.id for v in jobs.list(viewer=Actor(OPERATOR, "operator"))] == [job]
    with pytest.raises(NotFoundError):
        jobs.list(viewer=other, operator=OPERATOR)
    assert jobs.show(job, viewer=Actor("demo-regulator", "regulator")).id == job


def test_the_instance_wires_jobs_with_quotas(instance: Instance) -> None:
    assert instance.jobs is instance.jobs
    assert instance.jobs.quotas == Quotas()
    licensed(instance.registry, instance.home)
    job = instance.jobs.submit(OPERATOR, ["traffic"], "sql", SQL, SCENARIO)
    assert instance.jobs.queue.get(job).state == "queued"
    assert instance.jobs.queue.clock() - instance.jobs.show(job).created_at < timedelta(minutes=1)
