"""Compute quotas allocated by the agency per operator and per licence (SATRE 2.3.03), and the operator's own
view of them before it starts (SATRE 2.3.01). Both databases.

The agency (授权运营实施机构) decides the terms of a 授权运营协议 (双鸭山 第四十六条); an allocation is one of them and
is ledgered with its reason (第五十二条: usage logs a regulator can trace). Each test either shows the one way
that must work or is an attack that must fail: an operator raising its own quota, another operator reading
it, a licence given more than its operator, absurd values, the host allocating in the agency's name.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from core import Actor, NotFoundError, PermissionDeniedError, RegistryError
from operators import JobRefusedError
from tests.conftest import bearer_headers
from tests.consent_support import consent_to_access
from tests.console_support import console_client
from tests.job_worker_proc import SCENARIO, licensed
from tests.test_registry_licences import add_dataset
from tests.totp_support import code_by_name

OPERATOR = "demo-operator"  # the principal behind the operator API key of `keyong init`
OTHER = "other-ops"
AGENCY = Actor("demo-agency", "agency")
SQL = "SELECT 区县, count(*) AS n FROM traffic GROUP BY 区县"
runner = CliRunner()


@pytest.fixture
def setup(initialised: tuple[Instance, dict[str, str]]) -> tuple[Instance, dict[str, str], int, int]:
    """demo-operator with licence A (traffic) and licence B (loans), other-ops with its own (roads)."""
    instance, tokens = initialised
    registry = instance.registry
    first = licensed(registry, instance.home, operator=OPERATOR)
    add_dataset(registry, "loans", industry="交通出行")
    consent_to_access(registry, "loans")  # its custodian's standing agreement (SATRE 1.5.04)
    second = registry.licences.grant(
        OPERATOR,
        datasets=["loans"],
        scenarios=[SCENARIO],
        valid_until=registry.config.now().date() + timedelta(days=365),
        publicity_days=0,
        by=AGENCY,
        reason="授权运营协议 2026-03",
    ).id
    licensed(registry, instance.home, operator=OTHER, datasets=("roads",))
    return instance, tokens, first, second


def _submit(instance: Instance, dataset: str = "traffic", operator: str = OPERATOR) -> int:
    return instance.jobs.submit(operator, [dataset], "sql", SQL.replace("traffic", dataset), SCENARIO)


def test_the_agency_allocates_an_operator_quota_that_submission_enforces_and_the_ledger_records(
    setup: tuple[Instance, dict[str, str], int, int],
) -> None:
    instance, _, _, _ = setup
    book = instance.jobs.book
    view = book.allocate(OPERATOR, concurrent=1, reason="年度算力分配: 小型项目", by=AGENCY)
    assert (view.concurrent, view.per_day, view.cpu_seconds_per_day) == (1, 200, 3600.0)  # the rest kept
    _submit(instance)
    with pytest.raises(JobRefusedError) as caught:
        _submit(instance)
    # The refusal names the quota, the use and the limit.
    assert caught.value.refusal == "quota"
    assert "quota concurrent" in caught.value.reason and "1 jobs queued or running (limit 1)" in caught.value.reason
    # Other operators keep the instance default.
    _submit(instance, "roads", OTHER)
    _submit(instance, "roads", OTHER)
    [entry] = instance.ledger.entries(action="quota.allocated")
    assert (entry.actor, entry.role, entry.subject) == ("demo-agency", "agency", f"operator:{OPERATOR}")
    assert entry.payload["before"]["concurrent"] == 4 and entry.payload["after"]["concurrent"] == 1
    assert entry.payload["reason"] == "年度算力分配: 小型项目"
    # A second allocation starts from the first: raising it back admits the job.
    book.allocate(OPERATOR, concurrent=2, reason="追加", by=AGENCY)
    assert instance.jobs.show(_submit(instance)).state == "queued"


def test_a_licence_quota_is_tighter_than_its_operators_and_counted_from_its_own_jobs(
    setup: tuple[Instance, dict[str, str], int, int],
) -> None:
    instance, _, first, second = setup
    book = instance.jobs.book
    book.allocate(OPERATOR, licence=second, per_day=1, reason="试点许可只给少量作业", by=AGENCY)
    _submit(instance, "loans")
    with pytest.raises(JobRefusedError) as caught:
        _submit(instance, "loans")
    assert f"quota per_day: licence {second} of operator '{OPERATOR}' submitted 1 jobs" in caught.value.reason
    assert "(limit 1)" in caught.value.reason
    _submit(instance, "traffic")  # licence A has no allocation: only the operator's limits apply
    # Never wider than the operator's: refused, nothing ledgered.
    with pytest.raises(RegistryError, match="may not exceed its operator's: concurrent"):
        book.allocate(OPERATOR, licence=first, concurrent=5, reason="more", by=AGENCY)
    # Another operator's licence is not this operator's to divide.
    other_licence = instance.registry.quotas.licences_of(OTHER)[0][0]
    with pytest.raises(NotFoundError, match="holds no licence"):
        book.allocate(OPERATOR, licence=other_licence, concurrent=1, reason="x", by=AGENCY)
    # Lowering the operator's later still binds the licence (both are checked).
    book.allocate(OPERATOR, per_day=2, reason="收紧", by=AGENCY)
    with pytest.raises(JobRefusedError, match="quota per_day: operator 'demo-operator' submitted 2 jobs"):
        _submit(instance, "traffic")
    assert [e.subject for e in instance.ledger.entries(action="quota.allocated")] == [
        f"licence:{second}",
        f"operator:{OPERATOR}",
    ]


@pytest.mark.attack
def test_only_the_agency_allocates_and_absurd_values_are_refused(
    setup: tuple[Instance, dict[str, str], int, int],
) -> None:
    instance, _, _, _ = setup
    book = instance.jobs.book
    for who in (
        Actor(OPERATOR, "operator"),
        Actor("demo-regulator", "regulator"),
        Actor("demo-custodian", "custodian"),
    ):
        with pytest.raises(PermissionDeniedError):
            book.allocate(OPERATOR, concurrent=1000, reason="I want more", by=who)
    bad: list[dict[str, Any]] = [
        {"concurrent": -1},
        {"per_day": -5},
        {"cpu_seconds_per_day": math.nan},
        {"cpu_seconds_per_day": math.inf},
        {"cpu_seconds_per_day": -0.5},
        {"concurrent": 10**9},
        {"per_day": 10**12},
        {"concurrent": 1.5},
        {"concurrent": True},
        {"concurrent": "4"},
    ]
    for values in bad:
        with pytest.raises(RegistryError, match="quota"):
            book.allocate(OPERATOR, reason="typo", by=AGENCY, **values)
    with pytest.raises(RegistryError, match="reason"):
        book.allocate(OPERATOR, concurrent=2, reason="  ", by=AGENCY)
    with pytest.raises(RegistryError, match="at least one quota"):
        book.allocate(OPERATOR, reason="nothing", by=AGENCY)
    with pytest.raises(NotFoundError):
        book.allocate("nobody-ops", concurrent=2, reason="x", by=AGENCY)
    with pytest.raises(NotFoundError):
        book.allocate(OPERATOR, licence=2**40, concurrent=2, reason="x", by=AGENCY)
    assert instance.ledger.entries(action="quota.allocated") == []
    assert instance.registry.quotas.list(OPERATOR, viewer=AGENCY) == []


def test_the_operator_sees_its_quotas_use_and_remainder_and_never_anothers(
    setup: tuple[Instance, dict[str, str], int, int],
) -> None:
    instance, tokens, _, second = setup
    instance.jobs.book.allocate(OPERATOR, licence=second, concurrent=1, reason="试点", by=AGENCY)
    _submit(instance, "loans")
    http = TestClient(create_app(instance=instance))
    headers = bearer_headers(http, tokens)
    mine = http.get("/quotas", headers=headers["operator"])
    assert mine.status_code == 200, mine.text
    data = mine.json()
    assert data["operator"] == OPERATOR and data["window_hours"] == 24
    lines = {q["quota"]: q for q in data["quotas"]}
    assert lines["concurrent"] == {**lines["concurrent"], "limit": 4, "used": 1, "remaining": 3, "source": "default"}
    assert lines["per_day"]["used"] == 1 and lines["cpu_seconds_per_day"]["remaining"] == 3600
    [licence] = data["licences"]
    assert licence["licence"] == second and licence["allocation"]["reason"] == "试点"
    assert {q["quota"]: q["remaining"] for q in licence["quotas"]}["concurrent"] == 0
    assert {b["dataset"] for b in data["budgets"]} == {"traffic", "loans"}  # the DP budgets beside them
    assert http.get(f"/quotas/{OPERATOR}", headers=headers["operator"]).json()["operator"] == OPERATOR
    # Another operator's quotas are not found, exactly as an operator that does not exist.
    theirs = http.get(f"/quotas/{OTHER}", headers=headers["operator"])
    nobody = http.get("/quotas/nobody-ops", headers=headers["operator"])
    assert theirs.status_code == nobody.status_code == 404 and OTHER not in nobody.text
    assert http.get(f"/quotas/{OTHER}", headers=headers["agency"]).status_code == 200
    assert http.get(f"/quotas/{OTHER}", headers=headers["regulator"]).status_code == 200
    assert http.get(f"/quotas/{OTHER}", headers=headers["custodian"]).status_code == 403
    assert http.get("/quotas", headers=headers["agency"]).status_code == 403  # /quotas is the caller's own
    assert http.get("/quotas").status_code == 401


@pytest.mark.attack
def test_allocation_over_http_is_the_agencys_and_bad_values_are_4xx(
    setup: tuple[Instance, dict[str, str], int, int],
) -> None:
    instance, tokens, first, _ = setup
    http = TestClient(create_app(instance=instance))
    headers = bearer_headers(http, tokens)
    path = f"/quotas/{OPERATOR}"
    raise_own = http.put(path, json={"concurrent": 1000, "reason": "mine"}, headers=headers["operator"])
    assert raise_own.status_code == 403
    assert http.put(path, json={"concurrent": 9, "reason": "r"}, headers=headers["regulator"]).status_code == 403
    for body in (
        {"concurrent": -1, "reason": "r"},
        {"per_day": 10**12, "reason": "r"},
        {"cpu_seconds_per_day": 1e300, "reason": "r"},
        {"concurrent": 2},  # no reason
        {"concurrent": 2, "reason": "r", "extra": 1},
        {"concurrent": "lots", "reason": "r"},
    ):
        answer = http.put(path, json=body, headers=headers["agency"])
        assert answer.status_code == 422, (body, answer.text)
    nan = http.put(
        path,
        content=b'{"cpu_seconds_per_day": NaN, "reason": "r"}',
        headers={**headers["agency"], "content-type": "application/json"},
    )
    assert nan.status_code == 422
    no_values = http.put(path, json={"reason": "nothing"}, headers=headers["agency"])
    assert no_values.status_code == 409 and "at least one quota" in no_values.json()["detail"]
    too_wide = http.put(path, json={"licence": first, "concurrent": 50, "reason": "r"}, headers=headers["agency"])
    assert too_wide.status_code == 409 and "may not exceed" in too_wide.json()["detail"]
    assert (
        http.put("/quotas/nobody-ops", json={"concurrent": 1, "reason": "r"}, headers=headers["agency"]).status_code
        == 404
    )
    assert instance.ledger.entries(action="quota.allocated") == []
    done = http.put(
        path, json={"concurrent": 8, "cpu_seconds_per_day": 7200, "reason": "年度分配"}, headers=headers["agency"]
    )
    assert done.status_code == 200, done.text
    assert done.json()["concurrent"] == 8 and done.json()["allocated_by"] == "demo-agency"
    lines = {q["quota"]: q for q in http.get("/quotas", headers=headers["operator"]).json()["quotas"]}
    assert lines["concurrent"]["limit"] == 8 and lines["concurrent"]["source"] == "allocated"
    assert lines["cpu_seconds_per_day"]["limit"] == 7200


def _key_file(tmp_path: Path, name: str, secret: str) -> Path:
    path = tmp_path / f"{name}.key"
    path.write_text(secret + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.mark.attack
def test_the_cli_allocates_only_with_an_agency_persons_own_key_and_second_factor(
    setup: tuple[Instance, dict[str, str], int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYONG_API_KEY", raising=False)
    instance, tokens, _, _ = setup
    home = ["--home", str(instance.home)]
    base = ["quota", "set", OPERATOR, "--concurrent", "2", "--reason", "年度分配", *home]
    host = runner.invoke(cli, base)
    assert host.exit_code == 1 and "credential" in host.output  # the host cannot allocate in the agency's name
    operator_key = _key_file(tmp_path, "op", tokens["operator"])
    own = runner.invoke(cli, [*base, "--key-file", str(operator_key), "--totp", code_by_name(OPERATOR)])
    assert own.exit_code == 1 and "role 'agency'" in own.output  # an operator cannot raise its own
    agency_key = _key_file(tmp_path, "agency", tokens["agency"])
    no_code = runner.invoke(cli, [*base, "--key-file", str(agency_key)])
    assert no_code.exit_code == 1 and "second factor" in no_code.output
    absurd = runner.invoke(
        cli,
        ["quota", "set", OPERATOR, "--cpu-seconds", "nan", "--reason", "x", *home, "--key-file", str(agency_key),
         "--totp", code_by_name("demo-agency")],
    )  # fmt: skip
    assert absurd.exit_code == 1 and "cpu_seconds_per_day" in absurd.output
    assert runner.invoke(cli, [*base[:3], "--concurrent", "lots", "--reason", "x", *home]).exit_code == 2
    assert instance.ledger.entries(action="quota.allocated") == []
    done = runner.invoke(cli, [*base, "--json", "--key-file", str(agency_key), "--totp", code_by_name("demo-agency")])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["concurrent"] == 2
    [entry] = instance.ledger.entries(action="quota.allocated")
    assert entry.actor == "demo-agency" and entry.role == "agency"
    shown = runner.invoke(cli, ["quota", "show", OPERATOR, "--json", *home])
    assert shown.exit_code == 0, shown.output
    assert {q["quota"]: q["limit"] for q in json.loads(shown.stdout)["quotas"]}["concurrent"] == 2
    assert runner.invoke(cli, ["quota", "show", "nobody-ops", *home]).exit_code == 1


def test_the_operator_console_shows_its_quotas_panel(setup: tuple[Instance, dict[str, str], int, int]) -> None:
    instance, tokens, _, second = setup
    instance.jobs.book.allocate(OPERATOR, licence=second, per_day=3, reason="试点", by=AGENCY)
    instance.jobs.book.allocate(OTHER, concurrent=1, reason="another's secret share", by=AGENCY)
    _submit(instance)
    page = console_client(instance, tokens["operator"]).get("/console/operator")
    assert page.status_code == 200
    text = page.text
    assert 'id="quotas"' in text
    assert 'data-scope="operator" data-quota="concurrent"' in text and f'data-scope="licence-{second}"' in text
    assert "another&#39;s secret share" not in text and "another's secret share" not in text


def test_a_freeze_stops_intake_but_the_agency_may_still_lower_a_quota(
    setup: tuple[Instance, dict[str, str], int, int],
) -> None:
    """An allocation is an agency decision like a licence or budget change, not intake, egress or delivery
    (``registry.freeze``): during an incident (双鸭山 第六十一条) the agency may tighten shares at once, while
    submission stays refused until it unfreezes."""
    instance, _, _, _ = setup
    instance.registry.freeze.freeze(reason="疑似泄露 suspected leak", by=AGENCY)
    with pytest.raises(RegistryError, match="frozen"):
        _submit(instance)
    lowered = instance.jobs.book.allocate(OPERATOR, concurrent=0, reason="事件处置期间暂停算力", by=AGENCY)
    assert lowered.concurrent == 0
    instance.registry.freeze.unfreeze(reason="处置完毕", by=AGENCY)
    with pytest.raises(JobRefusedError, match=r"quota concurrent: .* 0 jobs queued or running \(limit 0\)"):
        _submit(instance)
