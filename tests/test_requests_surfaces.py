"""Requests with statutory deadlines over the CLI and the API (issue 24): exit codes, role checks, 4xx on
bad input, a custodian's queue by due time, and ``request list --overdue`` raising each finding once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from operators import Role
from registry.request_models import RequestRow
from tests.conftest import bearer
from tests.recovery_support import confirm
from tests.test_registry_products import POPULATION_ACQUIRED, POPULATION_PROVIDER, make_resource
from tests.totp_support import create_enrolled

POLICE = POPULATION_PROVIDER[0]


def keyong(instance: Instance, *args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(cli, [*args, "--home", str(instance.home)])
    out: Any = result.stdout
    if "--json" in args and result.exit_code == 0:
        out = json.loads(result.stdout)
    return result.exit_code, out, result.stderr


def make_overdue(instance: Instance, request_id: int) -> None:
    """Move a request's due time into the past (as if its time limit ran out)."""
    with instance.engine.begin() as connection:
        connection.execute(
            update(RequestRow).where(RequestRow.id == request_id).values(due_at=datetime.now(UTC) - timedelta(days=1))
        )


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    instance = initialised[0]
    make_resource(instance, "population", POPULATION_PROVIDER, POPULATION_ACQUIRED)
    return instance


# --- CLI ----------------------------------------------------------------------------------------


def test_calendar_due_on_the_command_line(instance: Instance) -> None:
    code, data, _ = keyong(instance, "calendar", "due", "2025-09-30", "--working-days", "5", "--json")
    assert code == 0 and (data["received"], data["working_days"], data["due"]) == ("2025-09-30", 5, "2025-10-14")
    code, data, _ = keyong(instance, "calendar", "due", "2025-09-29T23:30:00Z", "--working-days", "1", "--json")
    assert code == 0 and (data["received"], data["due"]) == ("2025-09-30", "2025-10-09")
    code, data, _ = keyong(instance, "calendar", "due", "2026-12-30", "--working-days", "5", "--json")
    assert code == 0 and data["provisional"] is True and "2027" in data["provisional_reason"]
    assert keyong(instance, "calendar", "due", "2025-02-30", "--working-days", "5")[0] == 1
    assert keyong(instance, "calendar", "due", "2025-09-30", "--working-days", "0")[0] == 1
    assert keyong(instance, "calendar", "due", "2025-09-30")[0] == 2  # usage: the count is required
    (instance.home / "calendar.json").write_text('{"notices": [{"title": "x", "year": 2027}]}', encoding="utf-8")
    code, _, err = keyong(instance, "calendar", "due", "2025-09-30", "--working-days", "5")
    assert code == 1 and "calendar.json" in err
    code, data, _ = keyong(instance, "calendar", "rules", "--profile", "heilongjiang", "--json")
    assert code == 0 and {r["article"] for r in data["rules"]} >= {"第三十四条", "第十五条"}


def test_the_request_commands_and_their_exit_codes(instance: Instance) -> None:
    code, made, _ = keyong(
        instance, "request", "submit", "correction", "--subject", "population", "--requester", "demo-operator",
        "--detail", "户籍地址有误", "--json",
    )  # fmt: skip
    assert code == 0 and made["provider"] == POLICE and made["legal_basis"].endswith("第二十八条")
    rid = str(made["id"])
    assert keyong(instance, "request", "submit", "complaint", "--subject", "population", "--requester", "x")[0] == 1
    assert keyong(instance, "request", "submit", "correction", "--subject", "nothing", "--requester", "x")[0] == 1
    assert keyong(instance, "request", "refuse", rid)[0] == 2  # --reason is required
    code, _, err = keyong(instance, "request", "refuse", rid, "--reason", "  ")
    assert code == 1 and "具体原因" in err
    assert keyong(instance, "request", "grant", rid)[0] == 1  # a correction is answered or refused
    assert keyong(instance, "request", "review", rid, "--json")[1]["state"] == "in_review"
    code, answered, _ = keyong(instance, "request", "answer", rid, "--reason", "已更正并反馈", "--json")
    assert code == 0 and answered["state"] == "answered" and answered["reason"] == "已更正并反馈"
    assert keyong(instance, "request", "withdraw", rid)[0] == 1  # already answered
    assert keyong(instance, "request", "show", "99999")[0] == 1
    shown = keyong(instance, "request", "show", rid, "--json")[1]
    assert [h["action"] for h in shown["history"]] == ["submitted", "in_review", "answered"]


def test_request_list_overdue_raises_each_finding_once(instance: Instance) -> None:
    made = [
        keyong(instance, "request", "submit", kind, "--subject", "population", "--requester", "demo-operator",
               "--json")[1]["id"]
        for kind in ("data_application", "open_data_application", "correction")
    ]  # fmt: skip
    make_overdue(instance, made[1])
    code, listed, _ = keyong(instance, "request", "list", "--overdue", "--json")
    assert code == 0 and [r["id"] for r in listed["requests"]] == [made[1]]
    assert listed["findings_raised_for"] == [made[1]] and listed["requests"][0]["overdue"]
    again = keyong(instance, "request", "list", "--overdue", "--json")[1]
    assert again["findings_raised_for"] == [] and again["requests"][0]["finding"] is not None
    findings = instance.registry.monitoring.list_findings(viewer=instance_agency(), kind="request_overdue")
    assert len(findings) == 1
    every = keyong(instance, "request", "list", "--json")[1]["requests"]
    assert every[0]["id"] == made[1]  # soonest due first


def instance_agency() -> Any:
    from core import Actor

    return Actor("demo-agency", "agency")


# --- API ----------------------------------------------------------------------------------------


@pytest.fixture
def api(instance: Instance, initialised: tuple[Instance, dict[str, str]]) -> tuple[TestClient, dict[str, dict]]:
    client = TestClient(create_app(instance=instance))
    headers = {role: bearer(client, key) for role, key in initialised[1].items()}
    for name, org in (("clerk-police", POLICE), ("clerk-traffic", "双鸭山市交通运输局")):
        key = create_enrolled(instance.identity, name, Role.CUSTODIAN, org=org)
        confirm(instance.identity, name)
        headers[name] = bearer(client, key)
    return client, headers


def test_api_roles_and_bad_input(api: tuple[TestClient, dict[str, dict]]) -> None:
    client, h = api
    body = {"kind": "open_data_application", "subject": "population", "detail": "交通研究"}
    assert client.post("/requests", json=body, headers=h["regulator"]).status_code == 403
    made = client.post("/requests", json=body, headers=h["operator"])
    assert made.status_code == 201, made.text
    item = made.json()
    assert item["provider"] == POLICE and item["requester"] == "demo-operator"
    rid = item["id"]
    for bad in (
        {**body, "kind": "complaint"},
        {**body, "subject": ""},
        {**body, "detail": "x" * 5000},
        {**body, "subject": "pop\u202eulation"},
    ):
        assert client.post("/requests", json=bad, headers=h["operator"]).status_code == 422, bad
    assert client.post("/requests", json={**body, "subject": "nothing"}, headers=h["operator"]).status_code == 404
    # Only the providing department's custodian decides; a refusal needs reasons.
    assert client.post(f"/requests/{rid}/refuse", json={"reason": "x"}, headers=h["agency"]).status_code == 403
    assert client.post(f"/requests/{rid}/refuse", json={"reason": "x"}, headers=h["clerk-traffic"]).status_code == 403
    assert client.post(f"/requests/{rid}/refuse", json={"reason": ""}, headers=h["clerk-police"]).status_code == 422
    assert client.post(f"/requests/{rid}/refuse", json={}, headers=h["clerk-police"]).status_code == 422
    assert client.get(f"/requests/{rid}", headers=h["clerk-traffic"]).status_code == 404
    assert client.get("/requests/0", headers=h["regulator"]).status_code == 422
    assert client.get("/requests/2147483648", headers=h["regulator"]).status_code == 422
    refused = client.post(f"/requests/{rid}/refuse", json={"reason": "含个人信息"}, headers=h["clerk-police"])
    assert refused.status_code == 200 and refused.json()["state"] == "refused"
    assert client.post(f"/requests/{rid}/grant", json={}, headers=h["clerk-police"]).status_code == 409
    shown = client.get(f"/requests/{rid}", headers=h["operator"]).json()
    assert [s["action"] for s in shown["history"]] == ["submitted", "refused"]
    assert client.get("/requests", headers=h["clerk-traffic"]).json() == []
    assert [r["id"] for r in client.get("/requests", headers=h["regulator"]).json()] == [rid]
    due = client.get("/calendar/due", params={"received": "2025-09-30", "working_days": 5}, headers=h["operator"])
    assert due.status_code == 200 and due.json()["due"] == "2025-10-14"
    for params in ({"received": "2025-09-30", "working_days": 0}, {"received": "someday", "working_days": 5}):
        assert client.get("/calendar/due", params=params, headers=h["operator"]).status_code == 422
    assert client.get("/calendar/due", params={"received": "2025-09-30", "working_days": 5}).status_code == 401
    rules = client.get("/calendar/rules", headers=h["regulator"]).json()
    assert rules["profile"] == "shuangyashan" and len(rules["rules"]) == 5


def test_api_custodian_queue_is_ordered_by_due_time(
    api: tuple[TestClient, dict[str, dict]], instance: Instance
) -> None:
    client, h = api
    ids = {}
    for kind in ("catalog_update", "correction", "data_application"):  # 10, 5 and 1 working days
        made = client.post("/requests", json={"kind": kind, "subject": "population"}, headers=h["agency"])
        assert made.status_code == 201, made.text
        ids[kind] = made.json()["id"]
    queue = client.get("/requests", headers=h["clerk-police"]).json()
    assert [r["id"] for r in queue] == [ids["data_application"], ids["correction"], ids["catalog_update"]]
    make_overdue(instance, ids["correction"])
    overdue = client.get("/requests", params={"overdue": True}, headers=h["regulator"]).json()
    assert [r["id"] for r in overdue] == [ids["correction"]]
    granted = client.post(
        f"/requests/{ids['data_application']}/grant", json={"leads_to": "licence:12345"}, headers=h["clerk-police"]
    )
    assert granted.status_code == 404  # no such licence: what a grant leads to is checked
    withdrawn = client.post(f"/requests/{ids['catalog_update']}/withdraw", json={}, headers=h["operator"])
    assert withdrawn.status_code == 403  # only its requester withdraws


def test_the_server_sweeps_overdue_requests_by_itself(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """``keyong serve``'s scheduler raises the finding without anyone listing (issue 24)."""
    import time

    import app.api.factory as factory
    from core import Actor

    monkeypatch.setattr(factory, "REQUEST_SWEEP_SECONDS", 0.05)
    made = instance.registry.requests.submit(
        "correction", by=Actor.host(), subject="population", requester="demo-operator", requester_role="operator"
    )
    make_overdue(instance, made.row.id)
    with TestClient(create_app(instance=instance)):  # the lifespan starts the loops
        deadline = time.monotonic() + 20
        while instance.registry.requests.get(made.row.id, viewer=Actor.host()).row.overdue_finding_id is None:
            assert time.monotonic() < deadline, "the server never swept"
            time.sleep(0.05)
    assert len(instance.registry.monitoring.list_findings(viewer=instance_agency(), kind="request_overdue")) == 1
