"""People's standing (issue 22; SATRE 3.2.02, 1.5.01, 1.5.02, 1.6.04): identity checks, terms of use and training
per person, checked when a licence activates and when a job is submitted, refused with the reason when lapsed.

Both databases. The rules are ``registry.people`` (what counts) and ``operators.people`` (who records what).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from app import Instance, create_app
from app.cli import cli
from core import Actor, PermissionDeniedError, RegistryError
from desensitize import id_check_char
from operators import JobRefusedError, Jobs, Quotas
from registry import Registry
from registry.people_models import PersonRecordRow
from tests.conftest import FakeClock, bearer_headers
from tests.consent_support import consent_to_access
from tests.job_worker_proc import AGENCY, SCENARIO, licensed
from tests.people_support import stand
from tests.test_registry_licences import add_dataset, make_registry, uscc

SQL = "SELECT 区县, count(*) AS n FROM traffic GROUP BY 区县"
OPERATOR = "demo-operator"  # the principal behind the operator key of `keyong init`
COURSE = "数据安全培训"  # the course tests.people_support records


def _lapse_training(registry: Registry, person: str) -> None:
    """The same course recorded again, completed long ago and expired yesterday: it replaces the valid record."""
    today = registry.config.now().date()
    from registry import Person, record_training

    with registry.recorder.change(Actor.host()) as change:
        record_training(
            change, Person(person, "operator", person), course=COURSE, completed_on=today - timedelta(days=400),
            expires_on=today - timedelta(days=1), today=today,
        )  # fmt: skip


# --- job submission -------------------------------------------------------------------------------


@pytest.fixture
def job_quotas() -> Quotas:
    return Quotas(concurrent=4, per_day=100)


def test_a_lapsed_training_refuses_a_job_with_the_reason(registry: Registry, jobs: Jobs) -> None:
    """SATRE 1.6.04 (issue 22's must-show): the job is refused, kept with the reason, and is a security event,
    not a violation (nobody did a deliberate act)."""
    assert jobs.submit("acme-ops", ["traffic"], "sql", SQL, SCENARIO) > 0  # standing: admitted
    _lapse_training(registry, "acme-ops")
    with pytest.raises(JobRefusedError) as refused:
        jobs.submit("acme-ops", ["traffic"], "sql", SQL, SCENARIO)
    assert refused.value.refusal == "standing:training"
    assert f"training {COURSE!r} of 'acme-ops' expired on" in refused.value.reason
    kept = jobs.show(refused.value.job or 0)
    assert kept.state == "refused" and "expired on" in (kept.reason or "")
    assert registry.monitoring.list_findings(viewer=AGENCY) == []  # no finding: not a violation
    events = registry.security.events(viewer=Actor("demo-regulator", "regulator"), kind="standing_refused")
    assert [(e["principal"], e["detail"]) for e in events] == [("acme-ops", "standing:training")]


def test_a_new_training_restores_the_person(registry: Registry, jobs: Jobs, clock: FakeClock) -> None:
    _lapse_training(registry, "acme-ops")
    with pytest.raises(JobRefusedError):
        jobs.submit("acme-ops", ["traffic"], "sql", SQL, SCENARIO)
    stand(registry, "acme-ops")
    assert jobs.submit("acme-ops", ["traffic"], "sql", SQL, SCENARIO) > 0


def test_training_expires_with_time(registry: Registry, jobs: Jobs, clock: FakeClock) -> None:
    """Valid ``days`` days from its completion (tests.people_support records 1000), then lapsed."""
    clock.advance(days=1001)
    with pytest.raises(JobRefusedError) as refused:
        jobs.submit("acme-ops", ["traffic"], "sql", SQL, SCENARIO)
    assert refused.value.refusal == "standing:training"


def test_terms_of_an_older_version_stop_counting(registry: Registry, jobs: Jobs) -> None:
    """SATRE 1.5.02: once a new version is published, only its acceptance counts."""
    from registry import Person, publish_terms, record_terms

    with registry.recorder.change(AGENCY) as change:
        publish_terms(change, version="test-2", title="新版条款", text="第二版")
    with pytest.raises(JobRefusedError) as refused:
        jobs.submit("acme-ops", ["traffic"], "sql", SQL, SCENARIO)
    assert refused.value.refusal == "standing:terms" and "version 'test-2'" in refused.value.reason
    assert "accepted 'test-1'" in refused.value.reason
    today = registry.config.now().date()
    with (
        registry.recorder.change(Actor("acme-ops", "operator")) as change,
        pytest.raises(RegistryError, match="not the"),
    ):
        record_terms(change, Person("acme-ops", "operator", "acme-ops"), version="test-1", today=today)
    with registry.recorder.change(Actor("acme-ops", "operator")) as change:
        record_terms(change, Person("acme-ops", "operator", "acme-ops"), version="test-2", today=today)
    assert jobs.submit("acme-ops", ["traffic"], "sql", SQL, SCENARIO) > 0


# --- licence activation ---------------------------------------------------------------------------


@pytest.fixture
def bare(instance: Instance, clock: FakeClock) -> Registry:
    """An operator registered, a licensable dataset, and nobody's standing recorded."""
    reg = make_registry(instance, clock)
    add_dataset(reg, "traffic", industry="交通出行")
    consent_to_access(reg, "traffic")
    reg.licences.add_operator("new-ops", uscc(5), by=AGENCY)
    return reg


def _grant(reg: Registry, publicity_days: int) -> Any:
    return reg.licences.grant(
        "new-ops", datasets=["traffic"], scenarios=[SCENARIO], valid_until=reg.config.now().date() + timedelta(days=90),
        publicity_days=publicity_days, by=AGENCY, reason="授权运营协议",
    )  # fmt: skip


def test_a_missing_identity_check_refuses_licence_activation(bare: Registry, clock: FakeClock) -> None:
    """SATRE 3.2.02: an operator's licence opens data only to people whose identity was checked."""
    with pytest.raises(RegistryError, match="no person acting for operator 'new-ops'"):
        _grant(bare, 0)
    assert bare.licences.list(viewer=AGENCY, operator="new-ops") == []  # nothing half-granted
    # Everything but the identity check: still refused, naming it.
    from registry import Person, publish_terms, record_terms, record_training

    today = bare.config.now().date()
    person = Person("new-ops", "operator", "new-ops")
    with bare.recorder.change(Actor.host()) as change:
        publish_terms(change, version="v1", title="条款", text="正文")
        record_terms(change, person, version="v1", today=today)
        record_training(
            change, person, course=COURSE, completed_on=today, expires_on=today + timedelta(days=30), today=today
        )
    with pytest.raises(RegistryError, match="no identity check is recorded for 'new-ops'"):
        _grant(bare, 0)
    # With 公示: granted into publicity, but it does not activate when 公示 ends, and says why.
    view = _grant(bare, 7)
    clock.advance(days=8)
    assert bare.licences.activate_due(by=AGENCY) == []
    with pytest.raises(RegistryError, match="cannot become active: no identity check"):
        bare.licences.transition(view.id, "active", by=AGENCY, reason="公示期满")
    stand(bare, "new-ops")
    assert [v.id for v in bare.licences.activate_due(by=AGENCY)] == [view.id]


def test_a_lapsed_person_of_the_operator_blocks_restoring_its_licence(bare: Registry, clock: FakeClock) -> None:
    stand(bare, "new-ops", days=30)
    view = _grant(bare, 0)
    bare.licences.transition(view.id, "suspended", by=AGENCY, reason="整改")
    clock.advance(days=31)
    with pytest.raises(RegistryError, match=r"training .* expired"):
        bare.licences.transition(view.id, "active", by=AGENCY, reason="整改完成")


# --- recording: who, what, and the ledger ----------------------------------------------------------


@pytest.fixture
def api(initialised: tuple[Instance, dict[str, str]]) -> tuple[Instance, TestClient, dict[str, dict[str, str]]]:
    instance, tokens = initialised
    client = TestClient(create_app(instance=instance))
    headers = bearer_headers(client, tokens)
    published = client.post(
        "/terms",
        json={"version": "2026-12", "title": "平台使用条款", "text": "仅在授权范围内使用"},
        headers=headers["agency"],
    )
    assert published.status_code == 201, published.text
    return instance, client, headers


def _resident_id() -> str:
    first17 = "23050219900307123"
    return first17 + id_check_char(first17)


def test_records_are_ledgered_and_no_identity_number_is_kept(
    api: tuple[Instance, TestClient, dict[str, dict[str, str]]],
) -> None:
    instance, client, headers = api
    agency, operator = headers["agency"], headers["operator"]
    before = instance.ledger.size()
    number = _resident_id()
    checked = client.post(
        f"/people/{OPERATOR}/identity-checks",
        json={"evidence_kind": "resident_id_in_person", "evidence_ref": "HR-2026-0142", "id_number": number},
        headers=agency,
    )
    assert checked.status_code == 201, checked.text
    assert checked.json()["evidence_masked"] == "*" * 14 + number[-4:] and number not in checked.text
    today = date.today()
    trained = client.post(
        f"/people/{OPERATOR}/trainings",
        json={"course": COURSE, "completed_on": str(today), "expires_on": str(today + timedelta(days=20))},
        headers=agency,
    )
    assert trained.status_code == 201, trained.text
    accepted = client.post("/me/terms", json={"version": "2026-12"}, headers=operator)
    assert accepted.status_code == 201, accepted.text
    # Only the people records: the service's own background work (sweeps, security flushes) may ledger too.
    entries = [e for e in instance.ledger.entries(after=before, limit=50) if e.action.startswith("person.")]
    assert [(e.action, e.subject, e.actor) for e in entries] == [
        ("person.identity_check_recorded", f"principal:{OPERATOR}", "demo-agency"),
        ("person.training_recorded", f"principal:{OPERATOR}", "demo-agency"),
        ("person.terms_recorded", f"principal:{OPERATOR}", OPERATOR),
    ]
    assert entries[0].payload["evidence_number_given"] is True and "evidence_ref" not in entries[0].payload
    dumped = "".join(str(e.as_json()) for e in entries)
    # The tail must not be kept either; read around hex digests, where 4 digits occur by chance (1 run in ~40).
    readable = re.sub(r"[0-9a-f]{32,}", "", dumped)
    assert number not in dumped and number[-4:] not in readable
    with instance.engine.connect() as connection:
        cells = [str(v) for row in connection.execute(text("SELECT * FROM person_records")) for v in row]
    assert not any(number in cell for cell in cells)
    me = client.get("/me/standing", headers=operator).json()
    assert me["ok"] is True and me["current_terms"] == "2026-12" and len(me["records"]) == 3
    expiring = client.get("/people/expiring", headers=agency).json()
    assert [(e["person"], e["kind"], e["days_left"]) for e in expiring] == [(OPERATOR, "training", 20)]
    assert client.get("/people/expiring", params={"within_days": 10}, headers=agency).json() == []


def test_who_may_record_what(api: tuple[Instance, TestClient, dict[str, dict[str, str]]]) -> None:
    """An operator records nothing about itself; nobody certifies themselves; a regulator reads but never writes;
    a custodian certifies its own department's staff only."""
    instance, client, headers = api
    today = str(date.today())
    training = {"course": COURSE, "completed_on": today, "expires_on": str(date.today() + timedelta(days=300))}
    check = {"evidence_kind": "resident_id_in_person", "evidence_ref": "HR-1"}
    own = client.post(f"/people/{OPERATOR}/trainings", json=training, headers=headers["operator"])
    assert own.status_code == 403
    with pytest.raises(PermissionDeniedError, match="nobody records their own"):
        instance.people.record_training(
            "demo-agency", course=COURSE, completed_on=date.today(), expires_on=date.today() + timedelta(days=9),
            by=Actor("demo-agency", "agency"),
        )  # fmt: skip
    regulator = headers["regulator"]
    for path, body in [
        (f"/people/{OPERATOR}/trainings", training),
        (f"/people/{OPERATOR}/identity-checks", check),
        (f"/people/{OPERATOR}/terms", {"version": "2026-12"}),
        ("/terms", {"version": "2027-01", "title": "t", "text": "x"}),
    ]:
        assert client.post(path, json=body, headers=regulator).status_code == 403, path
    assert client.get("/people/standing", headers=regulator).status_code == 200
    assert client.get(f"/people/{OPERATOR}/standing", headers=regulator).json()["ok"] is False
    assert client.get("/people/standing", headers=headers["operator"]).status_code == 403
    assert client.get("/people/demo-agency/standing", headers=headers["operator"]).status_code == 403
    # The demo custodian has no department on record: it certifies no one, not even another custodian.
    assert (
        client.post("/people/demo-operator/trainings", json=training, headers=headers["custodian"]).status_code == 403
    )
    assert client.post("/people/no-such-person/trainings", json=training, headers=headers["agency"]).status_code == 404
    # A custodian with a department certifies that department's staff, and nobody else's.
    from operators import Role

    for name, org in [("cust-a", "双鸭山市数据局"), ("cust-b", "双鸭山市数据局"), ("cust-c", "双鸭山市公安局")]:
        instance.identity.create_principal(name, Role.CUSTODIAN, org=org)
    day, until = date.today(), date.today() + timedelta(days=90)
    made = instance.people.record_training(
        "cust-b", course=COURSE, completed_on=day, expires_on=until, by=Actor("cust-a", "custodian")
    )
    assert made["recorded_by"] == "cust-a" and made["org"] == "双鸭山市数据局"
    with pytest.raises(PermissionDeniedError, match="its own department"):
        instance.people.record_training(
            "cust-c", course=COURSE, completed_on=day, expires_on=until, by=Actor("cust-a", "custodian")
        )


def test_bad_records_are_refused_with_422(api: tuple[Instance, TestClient, dict[str, dict[str, str]]]) -> None:
    instance, client, headers = api
    agency = headers["agency"]
    today = date.today()
    before = instance.ledger.size()
    for body in [
        {"course": COURSE, "completed_on": str(today), "expires_on": str(today - timedelta(days=1))},  # before
        {"course": COURSE, "completed_on": str(today), "expires_on": str(today)},  # not after
        {"course": COURSE, "completed_on": str(today), "expires_on": "2199-01-01"},  # far future
        {"course": COURSE, "completed_on": str(today + timedelta(days=3)), "expires_on": "2030-01-01"},  # future
        {"course": COURSE, "completed_on": "1970-01-01", "expires_on": "1971-01-01"},  # a typo's year
        {"course": COURSE, "completed_on": "2026-02-30", "expires_on": "2027-01-01"},  # no such day
        {"course": " ", "completed_on": str(today), "expires_on": str(today + timedelta(days=9))},
    ]:
        refused = client.post(f"/people/{OPERATOR}/trainings", json=body, headers=agency)
        assert refused.status_code == 422, (body, refused.text)
    number = _resident_id()
    for body in [
        {"evidence_kind": "resident_id_in_person", "evidence_ref": f"card {number}"},  # the number as a reference
        {"evidence_kind": "resident_id_in_person", "evidence_ref": "HR-1", "id_number": number[:-1] + "0"},
        {"evidence_kind": "fingerprint", "evidence_ref": "HR-1"},
        {"evidence_kind": "resident_id_in_person", "evidence_ref": "HR-1", "checked_on": str(today + timedelta(1))},
        {"evidence_kind": "resident_id_in_person", "evidence_ref": "HR-1", "expires_on": "2199-12-31"},
    ]:
        refused = client.post(f"/people/{OPERATOR}/identity-checks", json=body, headers=agency)
        assert refused.status_code == 422, (body, refused.text)
        assert number not in refused.text
    stale = client.post("/me/terms", json={"version": "2025-01"}, headers=headers["operator"])
    assert stale.status_code == 422 and "accept version '2026-12'" in stale.json()["detail"]
    again = client.post("/terms", json={"version": "2026-12", "title": "t", "text": "x"}, headers=agency)
    assert again.status_code == 422
    nul = client.post("/terms", json={"version": "2027-01", "title": "t", "text": "a\u0000b"}, headers=agency)
    assert nul.status_code == 422
    assert instance.ledger.size() == before  # nothing refused was recorded


def test_a_job_over_http_and_the_cli_is_refused_with_the_reason(
    api: tuple[Instance, TestClient, dict[str, dict[str, str]]], tmp_path: Any
) -> None:
    """A 409 with the reason over HTTP, exit 1 with it on the CLI: the login has no identity check."""
    instance, client, headers = api
    add_dataset(instance.registry, "traffic", industry="交通出行")
    instance.registry.licences.add_operator(OPERATOR, uscc(1), by=AGENCY)
    with pytest.raises(RegistryError, match="no person acting for operator 'demo-operator'"):
        instance.registry.licences.grant(
            OPERATOR, datasets=["traffic"], scenarios=[SCENARIO], valid_until=date.today() + timedelta(days=30),
            publicity_days=0, by=AGENCY, reason="r",
        )  # fmt: skip
    refused = client.post(
        "/jobs", json={"datasets": ["traffic"], "kind": "sql", "code": SQL, "scenario": SCENARIO},
        headers=headers["operator"],
    )  # fmt: skip
    assert refused.status_code == 409 and "no identity check is recorded for 'demo-operator'" in refused.text
    code = tmp_path / "q.sql"
    code.write_text(SQL, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["job", "submit", "--operator", OPERATOR, "--dataset", "traffic", "--kind", "sql", "--file", str(code),
              "--scenario", SCENARIO, "--home", str(instance.home)],
    )  # fmt: skip
    assert result.exit_code == 1 and "no identity check is recorded" in result.stderr


def test_the_cli_records_and_shows_standing(instance: Instance) -> None:
    home = ["--home", str(instance.home)]
    terms = instance.home / "terms.txt"
    terms.write_text("仅在授权范围内使用公共数据。", encoding="utf-8")
    run = CliRunner().invoke
    assert run(cli, ["people", "publish-terms", "v1", "--title", "条款", "--file", str(terms), *home]).exit_code == 0
    assert run(cli, ["people", "accept-terms", OPERATOR, "--version", "v1", *home]).exit_code == 0
    checked = run(cli, ["people", "identity-check", OPERATOR, "--evidence", "employer_letter", "--ref", "HR-7", *home])
    assert checked.exit_code == 0, checked.output
    today = date.today()
    bad = run(cli, ["people", "training", OPERATOR, "--course", COURSE, "--completed-on", str(today),
                    "--expires-on", str(today - timedelta(days=2)), *home])  # fmt: skip
    assert bad.exit_code == 1 and "must come after" in bad.stderr
    assert run(cli, ["people", "training", OPERATOR, "--course", COURSE, "--completed-on", "soon",
                     "--expires-on", "2027-01-01", *home]).exit_code == 2  # fmt: skip
    assert run(cli, ["people", "identity-check", OPERATOR, "--evidence", "dna", "--ref", "x", *home]).exit_code == 2
    ok = run(cli, ["people", "training", OPERATOR, "--course", COURSE, "--completed-on", str(today),
                   "--expires-on", str(today + timedelta(days=10)), *home, "--json"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    import json

    shown = json.loads(run(cli, ["people", "show", OPERATOR, *home, "--json"]).stdout)
    assert shown["ok"] is True and [r["kind"] for r in shown["records"]] == ["terms", "identity_check", "training"]
    soon = json.loads(run(cli, ["people", "expiring", *home, "--json"]).stdout)
    assert [(e["person"], e["days_left"]) for e in soon["expiring"]] == [(OPERATOR, 10)]
    with instance.engine.connect() as connection:
        rows = connection.execute(select(PersonRecordRow.recorded_by)).scalars().all()
    assert rows and all(r.startswith("host:") for r in rows)


# --- the console ------------------------------------------------------------------------------------


def test_the_console_records_standing_and_shows_a_lapsed_job_refusal(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """The agency records on the standing page (a bad date is the page's message, not a 500); the regulator reads
    it and posts nothing; an operator whose training lapsed sees the reason its job was refused."""
    from tests.console_support import console_client, csrf_of, flash

    instance, keys = initialised
    licensed(instance.registry, instance.home, operator=OPERATOR)
    agency = console_client(instance, keys["agency"])
    page = agency.get("/console/agency/standing")
    assert page.status_code == 200 and 'data-person="demo-operator"' in page.text
    csrf = csrf_of(agency, "/console/agency/standing")
    today = date.today()
    bad = agency.post(
        f"/console/agency/standing/{OPERATOR}/training",
        data={"csrf": csrf, "course": COURSE, "completed_on": str(today), "expires_on": str(today - timedelta(1))},
        follow_redirects=False,
    )
    assert bad.status_code == 303 and "must come after" in flash(bad)
    lapsed = agency.post(
        f"/console/agency/standing/{OPERATOR}/training",
        data={"csrf": csrf, "course": COURSE, "completed_on": str(today - timedelta(days=400)),
              "expires_on": str(today - timedelta(days=2))},
        follow_redirects=False,
    )  # fmt: skip
    assert lapsed.status_code == 303 and "recorded for demo-operator" in flash(lapsed)
    assert agency.get("/console/agency/standing").text.count("expired on") >= 1
    regulator = console_client(instance, keys["regulator"])
    assert 'data-person="demo-operator"' in regulator.get("/console/regulator/standing").text
    refused = regulator.post(
        f"/console/agency/standing/{OPERATOR}/training",
        data={"csrf": csrf_of(regulator, "/console/regulator/incidents"), "course": COURSE},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    operator = console_client(instance, keys["operator"])
    assert "expired on" in operator.get("/console/operator").text  # the operator sees why before it submits
    submitted = operator.post(
        "/console/operator/jobs",
        data={"csrf": csrf_of(operator, "/console/operator/jobs"), "datasets": "traffic", "kind": "sql",
              "code": SQL, "scenario": SCENARIO},
        follow_redirects=False,
    )  # fmt: skip
    assert submitted.status_code == 303 and f"training {COURSE!r} of 'demo-operator' expired on" in flash(submitted)
