"""The agency administrator's console pages without a browser (issue 18): operators, licences through 公示,
budgets, findings linked to their jobs; who may open them, CSRF, and refusals as messages, never a 500.

Rules checked: an operator is registered with a valid 统一社会信用代码 (双鸭山 第四十八条); access is suspended
and restored with a reason (第三十一条); a licence goes draft → 公示 → active only once 公示 has ended
(第四十八条); every change is ledgered by the same registry call the API makes.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import Instance
from core import Actor
from registry import ScopeRefusedError
from tests.consent_support import consent_to_access
from tests.console_support import console_client as _client
from tests.console_support import csrf_in as _csrf
from tests.console_support import flash as _flash
from tests.people_support import stand
from tests.test_registry_licences import add_dataset, uscc

NEW = "acme-ops"


@pytest.fixture
def admin(initialised: tuple[Instance, dict[str, str]]) -> tuple[Instance, dict[str, str], TestClient]:
    instance, tokens = initialised
    add_dataset(instance.registry, "traffic")
    consent_to_access(instance.registry, "traffic")
    return instance, tokens, _client(instance, tokens["agency"])


def _post(client: TestClient, page: str, path: str, **data: Any) -> Any:
    csrf = _csrf(client.get(page).text)
    return client.post(path, data={"csrf": csrf, **data}, follow_redirects=False)


def _actions(instance: Instance, subject: str) -> list[str]:
    return [e.action for e in instance.ledger.entries(subject=subject, limit=100)]


def test_operator_added_suspended_and_restored_with_reasons(
    admin: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, _, agency = admin
    page = "/console/agency/operators"
    assert agency.get(page).status_code == 200
    bad = _post(agency, page, page, name=NEW, uscc="91230500MA0000001X")
    assert bad.status_code == 303 and "refused" in _flash(bad)  # the check character is verified
    assert "operator_incomplete" not in _flash(_post(agency, page, page, name="", uscc=""))
    added = _post(agency, page, page, name=NEW, uscc=uscc(41))
    assert "operator acme-ops added" in _flash(added)
    assert f'data-operator="{NEW}"' in agency.get(page).text
    no_reason = _post(agency, page, f"{page}/{NEW}/suspend", reason="  ")
    assert "refused" in _flash(no_reason)
    assert instance.registry.licences.get_operator(NEW).qualification == "qualified"
    suspended = _post(agency, page, f"{page}/{NEW}/suspend", reason="超范围调用，限期整改（第三十一条）")
    assert "suspended" in _flash(suspended)
    assert instance.registry.licences.get_operator(NEW).qualification == "suspended"
    restored = _post(agency, page, f"{page}/{NEW}/restore", reason="已整改")
    assert "restored" in _flash(restored)
    assert {"operator.added", "operator.suspended", "operator.restored"} <= set(_actions(instance, f"operator:{NEW}"))
    assert "unknown action" in _flash(_post(agency, page, f"{page}/{NEW}/delete", reason="x"))
    assert "refused" in _flash(_post(agency, page, f"{page}/nobody/suspend", reason="x"))


def test_licence_granted_through_publicity_to_active_then_suspended_and_revoked(
    admin: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, _, agency = admin
    instance.registry.licences.add_operator(NEW, uscc(42), by=Actor("demo-agency", "agency"))
    page = "/console/agency/licences"
    form = {"operator": NEW, "datasets": "traffic", "scenarios": "交通出行", "valid_until": "2099-12-31",
            "epsilon": "2", "publicity_days": "7", "reason": "授权运营协议"}  # fmt: skip
    assert "not a date" in _flash(_post(agency, page, page, **{**form, "valid_until": "31/12/2099"}))
    assert "whole number" in _flash(_post(agency, page, page, **{**form, "publicity_days": "-1"}))
    assert "scenario" in _flash(_post(agency, page, page, **{**form, "scenarios": " "}))
    granted = _post(agency, page, page, **form)
    assert granted.status_code == 303 and "granted (publicity)" in _flash(granted)
    licence = int(granted.headers["location"].split("/agency/licences/")[1].split("?")[0])
    detail = f"/console/agency/licences/{licence}"
    shown = agency.get(detail)
    assert shown.status_code == 200 and "公示中 publicity" in shown.text and 'data-step="active"' in shown.text
    step = f"{detail}/transition"
    early = _post(agency, detail, step, to_state="active", reason="公示期满")
    assert "in publicity" in _flash(early)  # 第四十八条: not before 公示 has ended
    with instance.engine.begin() as connection:  # seven days pass (the server's clock is the wall clock)
        connection.execute(
            text("UPDATE licences SET publicity_ends_at = publicity_ends_at - INTERVAL '8 days' WHERE id = :id")
            if instance.engine.dialect.name == "postgresql"
            else text("UPDATE licences SET publicity_ends_at = datetime(publicity_ends_at, '-8 days') WHERE id = :id"),
            {"id": licence},
        )
    unstanding = _post(agency, detail, step, to_state="active", reason="公示期满无异议")
    assert "cannot become active" in _flash(unstanding)  # its people do not stand yet (SATRE 3.2.02)
    stand(instance, NEW)
    active = _post(agency, detail, step, to_state="active", reason="公示期满无异议")
    assert "is now active" in _flash(active)
    assert "no reason" not in _flash(_post(agency, detail, step, to_state="suspended", reason=""))
    assert instance.registry.licences.get(licence, viewer=Actor("demo-agency", "agency")).state == "active"
    assert "is now suspended" in _flash(_post(agency, detail, step, to_state="suspended", reason="整改"))
    assert "is now revoked" in _flash(_post(agency, detail, step, to_state="revoked", reason="协议终止"))
    assert "refused" in _flash(_post(agency, detail, step, to_state="active", reason="x"))  # nothing follows revoked
    actions = _actions(instance, f"licence:{licence}")
    for action in ("licence.granted", "licence.publicity_started", "licence.activated", "licence.suspended",
                   "licence.revoked"):  # fmt: skip
        assert action in actions
    assert "unknown action" in _flash(_post(agency, detail, step, to_state="flying", reason="x"))
    assert "refused" in _flash(_post(agency, page, "/console/agency/licences/99999/transition", to_state="revoked",
                                     reason="x"))  # fmt: skip
    assert agency.get("/console/agency/licences/99999", follow_redirects=False).status_code == 303
    assert agency.get("/console/agency/licences/1" + "0" * 30).status_code == 422


def test_budget_form_refuses_what_it_cannot_read(admin: tuple[Instance, dict[str, str], TestClient]) -> None:
    _, _, agency = admin
    page = "/console/agency/licences"
    for licence, epsilon in (("x", "1"), ("1.5", "1"), ("1", "nan"), ("", "")):
        got = _post(agency, page, "/console/agency/budgets/raise", licence=licence, dataset="traffic", epsilon=epsilon)
        assert got.status_code == 303 and "give licence" in _flash(got)
    refused = _post(agency, page, "/console/agency/budgets/raise", licence="4242", dataset="traffic", epsilon="9",
                    reason="x")  # fmt: skip
    assert "not raised" in _flash(refused)


def test_findings_link_their_jobs_licence_and_operator(admin: tuple[Instance, dict[str, str], TestClient]) -> None:
    instance, _, agency = admin
    from tests.job_worker_proc import licensed

    licence = licensed(instance.registry, instance.home, operator=NEW, datasets=("roads",))
    with pytest.raises(ScopeRefusedError):  # a job over a dataset its licence does not cover: a finding
        instance.registry.licences.check_scope(
            NEW, ["traffic"], "交通出行", subject="job:77", by=Actor(NEW, "operator")
        )
    page = agency.get("/console/agency/findings")
    assert page.status_code == 200
    assert 'href="/console/agency/jobs/77"' in page.text and f'href="/console/agency/licences/{licence}"' in page.text
    assert "超出授权范围" in page.text or "out_of_scope" in page.text
    with pytest.raises(Exception, match="outside"):  # a refused submission: kept as a refused job row
        instance.jobs.submit(NEW, ["traffic"], "python", "print(1)", "交通出行", by=Actor(NEW, "operator"))
    kept = instance.jobs.list(viewer=Actor("demo-agency", "agency"), state="refused")[0]
    page = agency.get("/console/agency/findings")
    assert f'href="/console/agency/jobs/{kept.id}"' in page.text  # linked through its spec hash
    job_page = agency.get(f"/console/agency/jobs/{kept.id}")
    assert job_page.status_code == 200 and "已拒绝 refused" in job_page.text and "outside" in job_page.text
    missing = agency.get("/console/agency/jobs/77", follow_redirects=False)
    assert missing.status_code == 303 and "cannot open job 77" in _flash(missing)
    assert agency.get("/console/agency/jobs/abc").status_code == 422
    finding = instance.registry.monitoring.list_findings(viewer=Actor("demo-agency", "agency"))[-1]
    resolved = _post(agency, "/console/agency/findings", f"/console/agency/findings/{finding.id}/resolve",
                     resolution="已约谈，限期整改")  # fmt: skip
    assert "resolved" in _flash(resolved)


@pytest.mark.parametrize("role", ["operator", "regulator", "custodian"])
def test_other_roles_cannot_open_or_post(admin: tuple[Instance, dict[str, str], TestClient], role: str) -> None:
    instance, tokens, _ = admin
    client = _client(instance, tokens[role])
    for path in ("/console/agency/operators", "/console/agency/licences", "/console/agency/licences/1",
                 "/console/agency/findings", "/console/agency/jobs/1"):  # fmt: skip
        assert client.get(path, follow_redirects=False).status_code == 403, path
    posted = client.post("/console/agency/operators", data={"name": NEW, "uscc": uscc(43)}, follow_redirects=False)
    assert posted.status_code == 403
    with pytest.raises(Exception):  # noqa: B017 — nothing was registered
        instance.registry.licences.get_operator(NEW)


def test_forms_without_csrf_change_nothing(admin: tuple[Instance, dict[str, str], TestClient]) -> None:
    instance, _, agency = admin
    got = agency.post("/console/agency/operators", data={"name": NEW, "uscc": uscc(44)}, follow_redirects=False)
    assert got.status_code == 403
    assert NEW not in {o.name for o in instance.registry.licences.list_operators()}
