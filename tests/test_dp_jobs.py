"""DP jobs on the host side, on SQLite and PostgreSQL (issue 8): specs resolved from public facts only,
budgets charged before the run as a hard cap (also under concurrency), refunds only for jobs that
never ran, the agency raising a budget with a ledgered reason, and what ``keyong job cost`` shows.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from app import Instance
from core import Actor, PermissionDeniedError, RegistryError
from dp import DatasetFacts, DpSpecError, cost_of, parse_spec, plan_train
from operators.jobs import JobRefusedError, Jobs, Quotas
from registry import BudgetExhaustedError, Registry
from tests.conftest import FakeClock
from tests.dp_support import AGENCY, DATASET, DP_OPERATOR, DP_SCENARIO, STATUSES, dp_licensed
from tests.job_worker_proc import FakeResult
from tests.test_registry_licences import LedgerWatch, make_registry

MEAN = {"aggregate": "mean", "column": "月缴费基数", "epsilon": 0.5, "group_by": ["参保状态"]}
TRAIN = {
    "features": ["月缴费基数", "参保日期"],
    "label": "参保状态",
    "model": "logistic",
    "epochs": 2,
    "batch_size": 64,
    "epsilon": 1.0,
    "delta": 1e-5,
    "max_grad_norm": 1.0,
}


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    reg = make_registry(instance, clock)
    dp_licensed(reg, instance.home, epsilon=1.0)
    return reg


@pytest.fixture
def job_quotas() -> Quotas:
    return Quotas(concurrent=50, per_day=500)


def submit(jobs: Jobs, spec: dict[str, Any], kind: str = "dp-query") -> int:
    return jobs.submit(DP_OPERATOR, [DATASET], kind, json.dumps(spec, ensure_ascii=False), DP_SCENARIO)


def spent(registry: Registry) -> tuple[float, float]:
    (budget,) = registry.budgets.show(DP_OPERATOR, viewer=AGENCY)
    return budget.epsilon_spent, budget.delta_spent


# --- specs: bounds, groups and classes come from the spec or the catalog, never from the data ----------


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"aggregate": "sum", "column": "备注", "epsilon": 0.1}, "no bounds"),  # neither spec nor catalog
        ({"aggregate": "count", "epsilon": 0.1, "group_by": ["参保日期"]}, "no public domain"),  # groups: catalog only
        ({"aggregate": "histogram", "column": "月缴费基数", "epsilon": 0.1}, "no public domain"),  # no bins, no domain
        ({"aggregate": "mean", "column": "身份证号", "epsilon": 0.1, "bounds": [0, 1]}, "person key"),
        ({"aggregate": "mean", "column": "nope", "epsilon": 0.1, "bounds": [0, 1]}, "not a column"),
        ({"aggregate": "mean", "column": "月缴费基数", "epsilon": 0}, "epsilon"),
        ({"aggregate": "mean", "column": "月缴费基数", "epsilon": 0.1, "bounds": [5, 1]}, "lo < hi"),
        ({"aggregate": "quantile", "column": "月缴费基数", "epsilon": 0.1}, "quantile"),
        ({"aggregate": "mean", "epsilon": 0.1, "where": "1=1", "column": "月缴费基数"}, "Extra inputs"),
    ],
)
def test_specs_the_catalog_cannot_answer_are_refused_and_cost_nothing(
    jobs: Jobs, registry: Registry, spec: dict[str, Any], match: str
) -> None:
    with pytest.raises(JobRefusedError, match=match) as caught:
        submit(jobs, spec)
    assert caught.value.refusal == "dp-spec" and caught.value.job is not None
    assert jobs.show(caught.value.job).state == "refused"
    assert spent(registry) == (0.0, 0.0)


def test_spec_bounds_override_and_catalog_bounds_fill_in(jobs: Jobs) -> None:
    job = submit(jobs, {"aggregate": "sum", "column": "月缴费基数", "epsilon": 0.1, "bounds": [0, 9000]})
    assert json.loads(jobs.queue.code(job))["bounds"] == [0.0, 9000.0]
    job = submit(jobs, {"aggregate": "count", "epsilon": 0.1, "group_by": ["参保状态"]})
    resolved = json.loads(jobs.queue.code(job))
    # The groups are the catalog's list, in its order: an empty group still appears in the answer.
    assert resolved["group_by"] == [{"column": "参保状态", "values": STATUSES}]
    assert resolved["person_key"] == "身份证号" and resolved["max_rows_per_person"] == 1
    assert jobs.show(job).max_attempts == 1  # a retry would draw fresh noise without paying for it


def test_a_dataset_without_a_person_key_gets_no_dp_job() -> None:
    facts = DatasetFacts(name="bus", version=1, rows=5000, columns={})
    with pytest.raises(DpSpecError, match="person key"):
        plan_train(parse_spec("dp-train", json.dumps(TRAIN)), facts)  # type: ignore[arg-type]


def test_dp_train_plan_schedules_noise_for_the_charged_budget(jobs: Jobs) -> None:
    from opacus.accountants import RDPAccountant

    job = submit(jobs, TRAIN, "dp-train")
    resolved = json.loads(jobs.queue.code(job))
    assert resolved["features"][0] == {"column": "月缴费基数", "type": "numeric", "bounds": [3000.0, 40000.0]}
    assert resolved["label"] == {"column": "参保状态", "values": STATUSES}
    accountant = RDPAccountant()
    accountant.history = [(resolved["noise_multiplier"], resolved["sample_rate"], resolved["steps"])]
    assert accountant.get_epsilon(resolved["delta"]) <= TRAIN["epsilon"]


def test_dp_train_refuses_a_delta_not_below_one_over_n(jobs: Jobs) -> None:
    with pytest.raises(JobRefusedError, match="1/n"):
        submit(jobs, {**TRAIN, "delta": 0.01}, "dp-train")


# --- budgets: charged before the run, a hard cap, not refunded once data was seen ------------------------


def test_the_budget_is_charged_and_ledgered_when_queued_before_any_run(
    jobs: Jobs, registry: Registry, instance: Instance
) -> None:
    watch = LedgerWatch(instance)
    job = submit(jobs, MEAN)
    assert jobs.show(job).state == "queued"
    assert spent(registry) == (0.5, 0.0)
    actions = watch.since()
    assert ("budget.charged", f"licence:{jobs.show(job).licence_id}") in actions
    assert actions.index(("job.queued", f"job:{job}")) < [a for a, _ in actions].index("budget.charged")


def test_an_exhausted_budget_refuses_with_the_remaining_amount(jobs: Jobs, registry: Registry) -> None:
    submit(jobs, MEAN)
    submit(jobs, {**MEAN, "epsilon": 0.3})
    with pytest.raises(JobRefusedError, match=r"remaining ε = 0\.2 of 1") as caught:
        submit(jobs, {**MEAN, "epsilon": 0.3})
    assert caught.value.refusal == "budget"
    assert spent(registry)[0] == pytest.approx(0.8)
    submit(jobs, {**MEAN, "epsilon": 0.2})  # exactly what remains still fits
    assert spent(registry)[0] == pytest.approx(1.0)


def test_a_failed_run_keeps_its_charge_a_job_cancelled_while_queued_gets_it_back(
    jobs: Jobs, registry: Registry, instance: Instance, clock: FakeClock
) -> None:
    first = submit(jobs, MEAN)
    second = submit(jobs, {**MEAN, "epsilon": 0.25})
    assert spent(registry)[0] == pytest.approx(0.75)
    jobs.cancel(second, by=Actor(DP_OPERATOR, "operator"))
    assert spent(registry)[0] == pytest.approx(0.5)

    def failing(*_: object, **kw: object) -> FakeResult:  # saw the data, then failed
        return FakeResult(status="failed", exit_code=1, reason="boom")

    worker = instance.worker(runner=failing)
    worker.queue = jobs.queue
    view = worker.run_once()
    assert view is not None and view.id == first and view.state == "failed"
    assert spent(registry)[0] == pytest.approx(0.5)


def test_concurrent_submissions_cannot_overspend(jobs: Jobs, registry: Registry) -> None:
    """Ten threads ask for ε = 0.3 each against a budget of 1.0: exactly three are admitted."""
    admitted: list[int] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(10)

    def one() -> None:
        barrier.wait()
        try:
            admitted.append(submit(jobs, {**MEAN, "epsilon": 0.3}))
        except JobRefusedError as exc:
            refused.append(exc.refusal)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(admitted) == 3 and refused == ["budget"] * 7
    assert spent(registry)[0] == pytest.approx(0.9)


def test_the_agency_raises_a_budget_with_a_ledgered_reason(jobs: Jobs, registry: Registry, instance: Instance) -> None:
    submit(jobs, {**MEAN, "epsilon": 1.0})
    licence = jobs.list()[0].licence_id
    assert licence is not None
    with pytest.raises(PermissionDeniedError):
        registry.budgets.raise_budget(licence, DATASET, epsilon=5, reason="more", by=Actor(DP_OPERATOR, "operator"))
    with pytest.raises(RegistryError, match="reason"):
        registry.budgets.raise_budget(licence, DATASET, epsilon=5, reason=" ", by=AGENCY)
    with pytest.raises(RegistryError, match="exceed"):
        registry.budgets.raise_budget(licence, DATASET, epsilon=0.5, reason="lower", by=AGENCY)
    watch = LedgerWatch(instance)
    view = registry.budgets.raise_budget(licence, DATASET, epsilon=2.0, reason="第二期分析 (协议补充)", by=AGENCY)
    assert view.epsilon_remaining == pytest.approx(1.0)
    (entry,) = watch.since(full=True)
    assert entry.action == "budget.raised" and entry.payload["reason"] == "第二期分析 (协议补充)"
    assert entry.payload["epsilon_budget"] == [1.0, 2.0]
    submit(jobs, {**MEAN, "epsilon": 1.0})


def test_budgets_are_visible_to_their_operator_only(registry: Registry) -> None:
    with pytest.raises(PermissionDeniedError):
        registry.budgets.show(DP_OPERATOR, viewer=Actor("someone-else", "operator"))
    (mine,) = registry.budgets.show(DP_OPERATOR, viewer=Actor(DP_OPERATOR, "operator"))
    assert mine.epsilon_budget == 1.0 and mine.delta_budget == 1e-5


def test_a_charge_never_goes_negative_or_non_finite(registry: Registry) -> None:
    with registry.recorder.change(AGENCY) as change, pytest.raises(RegistryError):
        registry.budgets.charge(change, 1, DATASET, epsilon=float("nan"), delta=0, subject="x")
    with registry.recorder.change(AGENCY) as change, pytest.raises(BudgetExhaustedError):
        registry.budgets.charge(change, 1, DATASET, epsilon=1.5, delta=0, subject="x")


# --- cost before the run ----------------------------------------------------------------------------------


def test_cost_is_shown_before_running_and_charges_nothing(jobs: Jobs, registry: Registry) -> None:
    text = json.dumps(TRAIN)
    shown = jobs.cost(None, text, operator=DP_OPERATOR, dataset=DATASET)
    assert shown["kind"] == "dp-train" and shown["epsilon"] == 1.0 and shown["delta"] == 1e-5
    assert shown["fits"] is True and shown["epsilon_remaining"] == 1.0
    assert shown["noise_multiplier"] > 0 and shown["steps"] > 0
    assert jobs.cost(None, json.dumps({**MEAN, "epsilon": 2.0}), operator=DP_OPERATOR, dataset=DATASET)["fits"] is False
    assert spent(registry) == (0.0, 0.0)
    with pytest.raises(RegistryError, match="not a DP spec"):
        jobs.cost(None, json.dumps({"select": 1}))
    assert cost_of(parse_spec("dp-query", json.dumps(MEAN))).epsilon == 0.5


def test_cli_job_cost_and_budget_show(instance: Instance, registry: Registry, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    spec = tmp_path / "q.json"
    spec.write_text(json.dumps(MEAN, ensure_ascii=False), encoding="utf-8")
    home = ["--home", str(instance.home)]
    runner = CliRunner()
    shown = runner.invoke(
        cli, ["job", "cost", str(spec), "--operator", DP_OPERATOR, "--dataset", DATASET, *home, "--json"]
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["epsilon"] == 0.5
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    refused = runner.invoke(cli, ["job", "cost", str(bad), *home])
    assert refused.exit_code == 1 and "not JSON" in refused.stderr
    budgets = runner.invoke(cli, ["budget", "show", DP_OPERATOR, *home, "--json"])
    assert budgets.exit_code == 0, budgets.output
    assert json.loads(budgets.stdout)["budgets"][0]["epsilon_remaining"] == 1.0
