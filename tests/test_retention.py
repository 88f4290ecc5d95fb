"""Retention per dataset version and the recorded deletion path (issue 22, SATRE 3.1.09, 2.2.06).

A purge deletes the raw copy, the desensitized copy, its fingerprints and the products derived only
from the purged versions; it is refused while a live licence serves the version or a job reads it
(naming them); every file deleted is a ledger entry (what, why, by whom, its hash: never contents);
the catalog keeps the version's metadata, marked deleted. Runs on SQLite (the embedded default).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from app import Instance, Settings
from app.cli import cli
from core import Actor, PermissionDeniedError, RegistryError
from registry import Registry
from registry.models import ProductRow
from samples import synthetic
from tests.conftest import FakeClock
from tests.people_support import stand
from tests.test_registry_copies import CUSTODIAN, PROVIDER, PROVIDER_CODE
from tests.test_registry_licences import AGENCY, add_dataset, grant, make_registry, uscc
from tests.totp_support import token_body

OPERATOR = Actor("demo-operator", "operator")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Instance]:
    instance, _ = Instance.init(Settings(home=tmp_path / "home"))
    try:
        yield instance
    finally:
        instance.close()


def deletions(instance: Instance) -> list[dict[str, object]]:
    return [dict(e.payload, subject=e.subject, actor=e.actor) for e in instance.ledger.entries(action="data.deleted")]


def test_a_purge_deletes_raw_copy_and_fingerprints_and_records_each(home: Instance, tmp_path: Path) -> None:
    raw = synthetic.generate_all(300, seed=1)["residents"]
    source = tmp_path / "residents.csv"
    synthetic.write_csv(raw, source)
    registry = home.registry
    registry.ingestor.ingest(source, name="residents", provider=PROVIDER, provider_code=PROVIDER_CODE, by=CUSTODIAN)
    made = registry.copies.make("residents", by=CUSTODIAN)
    files = [home.home / v.path for v in registry.catalog.get("residents").versions]
    files.append(made.fingerprints if made.fingerprints.is_absolute() else home.home / made.fingerprints)
    assert all(f.exists() for f in files)
    with pytest.raises(RegistryError, match="reason"):
        registry.retention.purge("residents", version=1, reason="  ", by=CUSTODIAN)
    with pytest.raises(PermissionDeniedError):
        registry.retention.purge("residents", version=1, reason="x", by=OPERATOR)

    result = registry.retention.purge("residents", version=1, reason="提供方撤回数据", by=CUSTODIAN)

    assert result.versions == [1, 2]  # the raw version and the copy derived from it
    assert not any(f.exists() for f in files)
    recorded = deletions(home)
    assert sorted(str(d["what"]) for d in recorded) == ["copy", "fingerprints", "raw"]
    assert all(d["reason"] == "提供方撤回数据" and d["actor"] == CUSTODIAN.name and d["present"] for d in recorded)
    assert all(isinstance(d["sha256"], str) and len(str(d["sha256"])) == 64 for d in recorded)
    text = json.dumps([e.payload for e in home.ledger.entries(limit=10_000)], ensure_ascii=False)
    assert str(raw.iloc[0, 0]) not in text  # never contents
    view = registry.catalog.get("residents")
    assert view.versions == [] and [d["version"] for d in view.deleted_versions] == [1, 2]
    assert view.deleted_versions[0]["reason"] == "提供方撤回数据"
    with pytest.raises(RegistryError, match="already deleted"):
        registry.retention.purge("residents", version=2, reason="again", by=CUSTODIAN)
    with pytest.raises(RegistryError):  # nothing left to desensitize from
        registry.copies.make("residents", by=CUSTODIAN)
    # no version left: the dataset's data key is destroyed with them (crypto-shredding, issue 22)
    shredded = [e for e in home.ledger.entries(limit=10_000) if e.action == "datakey.destroyed"]
    assert [e.payload["scope"] for e in shredded] == ["dataset:residents"]
    assert shredded[0].payload["reason"] == "提供方撤回数据"
    assert home.ledger.verify().ok


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(home: Instance, clock: FakeClock) -> Registry:
    reg = make_registry(home, clock)
    reg.retention.jobs_using = lambda dataset: []
    # demo-custodian works for the bureau that provides add_dataset's datasets: only a dataset's own
    # custodian purges it or sets its retention (red team of issue 22).
    reg.retention.custodians = lambda: {"demo-custodian": "双鸭山市交通运输局"}
    reg.retention.releases_using = lambda dataset: []
    add_dataset(reg, "traffic")
    reg.licences.add_operator("acme-ops", uscc(1), by=AGENCY)
    stand(reg, "acme-ops")  # its login stands: identity checked, terms accepted, trained (issue 22)
    return reg


def product(registry: Registry, licence: int, name: str, sources: list[tuple[str, int]], file: Path) -> None:
    with registry.recorder.change(Actor.host()) as change:
        change.session.add(
            ProductRow(
                name=name,
                operator_id=1,
                licence_id=licence,
                job="1",
                scenario="交通出行",
                lineage={"datasets": [{"name": n, "version": v} for n, v in sources]},
                attribution={},
                fee_class="free",
                artifacts=[{"name": file.name, "bytes": file.stat().st_size, "sha256": "a" * 64, "path": str(file)}],
                registered_by="test",
            )
        )


def test_a_purge_is_refused_while_a_licence_or_a_job_holds_it(registry: Registry, home: Instance) -> None:
    licence = grant(registry, datasets=["traffic"])
    copy = home.home / "datasets" / "traffic" / "v1.parquet"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"PAR1" * 10)
    add_dataset(registry, "buses")
    only = home.home / "products" / "only.csv"
    only.parent.mkdir(parents=True)
    only.write_text("district,trips\n", encoding="utf-8")
    mixed = home.home / "products" / "mixed.csv"
    mixed.write_text("district,trips\n", encoding="utf-8")
    product(registry, licence.id, "only-traffic", [("traffic", 1)], only)
    product(registry, licence.id, "traffic-and-buses", [("traffic", 1), ("buses", 1)], mixed)

    with pytest.raises(RegistryError, match=f"licence {licence.id} is live"):
        registry.retention.purge("traffic", reason="到期", by=CUSTODIAN)
    registry.licences.transition(licence.id, "revoked", by=AGENCY, reason="期满")
    registry.retention.jobs_using = lambda dataset: [(7, 1)] if dataset == "traffic" else []
    with pytest.raises(RegistryError, match="job 7 is queued or running"):
        registry.retention.purge("traffic", version=1, reason="到期", by=CUSTODIAN)
    registry.retention.jobs_using = None  # not wired: fails closed
    with pytest.raises(RegistryError, match="no job check"):
        registry.retention.purge("traffic", version=1, reason="到期", by=CUSTODIAN)
    registry.retention.jobs_using = lambda dataset: []
    registry.retention.releases_using = None  # not wired either: fails closed as well
    with pytest.raises(RegistryError, match="no release check"):
        registry.retention.purge("traffic", version=1, reason="到期", by=CUSTODIAN)
    registry.retention.releases_using = lambda dataset: [(4, 1)] if dataset == "traffic" else []
    with pytest.raises(RegistryError, match="release request 4 is pending over version 1"):
        registry.retention.purge("traffic", version=1, reason="到期", by=CUSTODIAN)
    registry.retention.releases_using = lambda dataset: []
    assert copy.exists() and only.exists()

    result = registry.retention.purge("traffic", version=1, reason="到期", by=CUSTODIAN)

    assert result.products == ["only-traffic"]  # the mixed product also derives from buses: kept
    assert not copy.exists() and not only.exists() and mixed.exists()
    with registry.recorder.read() as session:
        states = dict(session.execute(select(ProductRow.name, ProductRow.state)).all())
    assert states == {"only-traffic": "deleted", "traffic-and-buses": "available"}
    actions = [(e.action, e.subject) for e in home.ledger.entries(limit=10_000)][-4:]
    assert actions == [
        ("data.deleted", "dataset:traffic"),
        ("dataset.version_deleted", "dataset:traffic"),
        ("data.deleted", "product:only-traffic"),
        ("product.deleted", "product:only-traffic"),
    ]


def test_retention_makes_versions_due_and_the_sweep_purges_what_nothing_holds(
    registry: Registry, home: Instance, clock: FakeClock
) -> None:
    add_dataset(registry, "buses")
    licence = grant(registry, datasets=["buses"])
    with pytest.raises(RegistryError, match="whole number of days"):
        registry.retention.set_retention("traffic", 0, by=CUSTODIAN)
    with pytest.raises(PermissionDeniedError):
        registry.retention.set_retention("traffic", 30, by=OPERATOR)
    registry.retention.set_retention("traffic", 30, by=CUSTODIAN)
    registry.retention.set_retention("buses", 30, by=CUSTODIAN)
    assert registry.catalog.get("traffic").retention_days == 30
    assert registry.retention.schedule(due_only=True) == []
    clock.advance(days=400)
    due = {(d.dataset, d.version): d for d in registry.retention.schedule(due_only=True)}
    assert set(due) == {("traffic", 1), ("buses", 1)} and due["traffic", 1].why == "retention"
    assert due["buses", 1].blocked == [f"licence {licence.id} is live and serves version 1"]

    swept = registry.retention.sweep(by=Actor.host())

    assert [p["dataset"] for p in swept["purged"]] == ["traffic"]
    assert [h["dataset"] for h in swept["held"]] == ["buses"]
    assert registry.catalog.get("traffic").deleted_versions[0]["reason"] == "retention of 30 days ended"
    assert registry.catalog.get("buses").versions  # held, not deleted
    assert registry.retention.sweep(by=Actor.host())["purged"] == []


def test_a_revoked_entry_is_due_once_its_grace_has_ended(registry: Registry, clock: FakeClock) -> None:
    request = registry.catalog.request_revocation("traffic", by=CUSTODIAN, reason="数据停止更新")
    registry.catalog.decide(request.id, True, by=AGENCY, reason="同意")
    clock.advance(days=200)
    registry.catalog.finalize_revocations(by=Actor.host())
    due = registry.retention.schedule(due_only=True)
    assert [(d.dataset, d.why) for d in due] == [("traffic", "revoked")]


def test_the_cli_sets_retention_shows_what_is_due_and_purges(home: Instance) -> None:
    add_dataset(home.registry, "traffic")
    runner = CliRunner()
    base = ["--home", str(home.home)]
    assert runner.invoke(cli, ["dataset", "purge", "traffic", *base]).exit_code == 2  # no --reason
    assert runner.invoke(cli, ["retention", "set", "traffic", *base]).exit_code == 2  # neither --days nor --clear
    set_ = runner.invoke(cli, ["retention", "set", "traffic", "--days", "90", *base, "--json"])
    assert set_.exit_code == 0 and json.loads(set_.stdout)["retention_days"] == 90
    listed = json.loads(runner.invoke(cli, ["retention", "due", "--all", *base, "--json"]).stdout)
    assert [(v["dataset"], v["due"]) for v in listed["versions"]] == [("traffic", False)]
    missing = runner.invoke(cli, ["dataset", "purge", "nope", "--reason", "x", *base])
    assert missing.exit_code == 1
    purged = runner.invoke(cli, ["dataset", "purge", "traffic", "--reason", "测试", *base, "--json"])
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.stdout)["versions"] == [1]
    shown = json.loads(runner.invoke(cli, ["dataset", "show", "traffic", *base, "--json"]).stdout)
    assert shown["versions"] == [] and shown["deleted_versions"][0]["deleted_by"].startswith("host:")
    assert shown["retention_days"] == 90
    swept = runner.invoke(cli, ["retention", "sweep", *base, "--json"])
    assert swept.exit_code == 0 and json.loads(swept.stdout) == {"purged": [], "held": []}


def test_files_of_a_purge_interrupted_after_its_commit_are_deleted_at_the_next_start(
    registry: Registry, home: Instance
) -> None:
    copy = home.home / "datasets" / "traffic" / "v1.parquet"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"PAR1")
    from registry import retention as module

    real = module.delete_stored  # objects are deleted through core.Storage once the purge commits (issue 19)
    module.delete_stored = lambda storage, key: None  # type: ignore[assignment]  # killed before the files went
    try:
        registry.retention.purge("traffic", reason="到期", by=CUSTODIAN)
    finally:
        module.delete_stored = real  # type: ignore[assignment]
    assert copy.exists()
    reopened = Instance.open(Settings(home=home.home))
    reopened.close()
    assert not copy.exists()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Instance, dict[str, str]]]:
    instance, result = Instance.init(Settings(home=tmp_path / "served"))
    add_dataset(instance.registry, "traffic")
    with instance.engine.begin() as connection:  # published by demo-custodian: its own dataset to purge
        connection.execute(text("UPDATE resources SET created_by = 'demo-custodian' WHERE name = 'traffic'"))
    try:
        yield instance, result.tokens
    finally:
        instance.close()


def test_retention_and_purge_over_http_by_role(served: tuple[Instance, dict[str, str]]) -> None:
    from fastapi.testclient import TestClient

    from app import create_app

    instance, keys = served
    client = TestClient(create_app(instance=instance))

    def bearer(role: str) -> dict[str, str]:
        token = client.post("/auth/token", json=token_body(keys[role])).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    custodian, operator, regulator = bearer("custodian"), bearer("operator"), bearer("regulator")
    assert client.put("/datasets/traffic/retention", json={"days": 0}, headers=custodian).status_code == 422
    assert client.put("/datasets/traffic/retention", json={"days": 30}, headers=operator).status_code == 403
    assert client.put("/datasets/traffic/retention", json={"days": 30}, headers=regulator).status_code == 403
    put = client.put("/datasets/traffic/retention", json={"days": 30}, headers=custodian)
    assert put.status_code == 200 and put.json()["retention_days"] == 30
    assert client.get("/retention", headers=operator).status_code == 403
    listed = client.get("/retention", params={"all": "true"}, headers=regulator)
    assert listed.status_code == 200 and [v["dataset"] for v in listed.json()["versions"]] == ["traffic"]
    assert client.get("/retention", params={"dataset": "nope"}, headers=regulator).status_code == 404
    assert client.post("/datasets/traffic/purge", json={"reason": ""}, headers=custodian).status_code == 422
    assert client.post("/datasets/traffic/purge", json={"reason": "x"}, headers=regulator).status_code == 403
    assert (
        client.post("/datasets/traffic/purge", json={"reason": "x", "version": 9}, headers=custodian).status_code == 404
    )
    purged = client.post("/datasets/traffic/purge", json={"reason": "到期", "version": 1}, headers=custodian)
    assert purged.status_code == 200 and purged.json()["versions"] == [1]
    again = client.post("/datasets/traffic/purge", json={"reason": "到期", "version": 1}, headers=custodian)
    assert again.status_code == 409 and "already deleted" in again.text


def test_the_custodian_sets_retention_and_sees_what_is_due_in_the_console(
    served: tuple[Instance, dict[str, str]],
) -> None:
    from tests.console_support import console_client, csrf_of, flash

    instance, keys = served
    custodian = console_client(instance, keys["custodian"])
    assert 'id="due-versions"' in custodian.get("/console/custodian").text
    csrf = csrf_of(custodian, "/console/custodian/datasets/traffic")
    refused = custodian.post(
        "/console/custodian/datasets/traffic/retention", data={"csrf": csrf, "days": "-3"}, follow_redirects=False
    )
    assert refused.status_code == 303 and "refused" in flash(refused)
    made = custodian.post(
        "/console/custodian/datasets/traffic/retention", data={"csrf": csrf, "days": "365"}, follow_redirects=False
    )
    assert made.status_code == 303 and "retention set" in flash(made)
    assert instance.registry.catalog.get("traffic").retention_days == 365
    page = custodian.get("/console/custodian/datasets/traffic").text
    assert 'id="retention-schedule"' in page and "365 天" in page
    operator = console_client(instance, keys["operator"])
    assert operator.post("/console/custodian/datasets/traffic/retention", data={"days": "1"}).status_code == 403


def test_the_instance_asks_the_job_queue_which_jobs_hold_a_version(served: tuple[Instance, dict[str, str]]) -> None:
    from sqlalchemy.orm import Session

    from sandbox.models import JobRow

    instance, _ = served
    with Session(instance.engine) as session, session.begin():
        job = JobRow(
            operator="acme-ops",
            kind="sql",
            datasets={"traffic": {"version": 1, "path": "datasets/traffic/v1.parquet"}},
            scenario="交通出行",
            code="select 1",
            code_sha256="0" * 64,
            spec_sha256="0" * 64,
        )
        session.add(job)
        session.flush()
        job_id = job.id
    with pytest.raises(RegistryError, match=f"job {job_id} is queued or running over version 1"):
        instance.registry.retention.purge("traffic", version=1, reason="到期", by=CUSTODIAN)
    with Session(instance.engine) as session, session.begin():
        session.get_one(JobRow, job_id).state = "done"
    assert instance.registry.retention.purge("traffic", version=1, reason="到期", by=CUSTODIAN).versions == [1]


def test_a_purge_waits_for_a_pending_release_request_that_read_the_version(
    served: tuple[Instance, dict[str, str]],
) -> None:
    """A release request still open (submitted, under review) over a job that read ``traffic`` v1 holds the
    purge, named in the refusal; one over another dataset does not; once the request is decided the purge goes
    through (SATRE 3.1.09: the product must not name deleted data as its source; issue 22)."""
    from sqlalchemy.orm import Session

    from sandbox.models import JobRow
    from sandbox.release_models import ReleaseRow

    instance, _ = served
    registry = instance.registry
    add_dataset(registry, "buses")
    with instance.engine.begin() as connection:  # demo-custodian's own, as traffic: only its custodian purges it
        connection.execute(text("UPDATE resources SET created_by = 'demo-custodian' WHERE name = 'buses'"))
    registry.licences.add_operator("acme-ops", uscc(1), by=AGENCY)
    stand(registry, "acme-ops")
    licence = grant(registry, datasets=["traffic", "buses"])
    registry.licences.transition(licence.id, "revoked", by=AGENCY, reason="期满")  # no live licence holds it

    def release_over(dataset: str) -> int:
        with Session(instance.engine) as session, session.begin():
            job = JobRow(
                operator="acme-ops", kind="sql", state="done", scenario="交通出行", code="select 1",
                datasets={dataset: {"version": 1, "path": f"datasets/{dataset}/v1.parquet"}},
                code_sha256="0" * 64, spec_sha256="0" * 64,
            )  # fmt: skip
            session.add(job)
            session.flush()
            release = ReleaseRow(
                job_id=job.id, operator="acme-ops", licence_id=licence.id, product=f"p-{dataset}",
                fee_class="free", state="submitted", verdict="pass",
            )  # fmt: skip
            session.add(release)
            session.flush()
            return int(release.id)

    pending = release_over("traffic")
    other = release_over("buses")
    with pytest.raises(RegistryError, match=f"release request {pending} is pending over version 1") as refused:
        registry.retention.purge("traffic", version=1, reason="到期", by=CUSTODIAN)
    assert f"release request {other}" not in str(refused.value)
    with Session(instance.engine) as session, session.begin():
        session.get_one(ReleaseRow, pending).state = "under_review"
    with pytest.raises(RegistryError, match=f"release request {pending}"):
        registry.retention.purge("traffic", reason="到期", by=CUSTODIAN)  # every version: the same hold
    assert not [e for e in instance.ledger.entries(limit=10_000) if e.action == "data.deleted"]
    with Session(instance.engine) as session, session.begin():
        session.get_one(ReleaseRow, pending).state = "rejected"  # decided
    assert registry.retention.purge("traffic", version=1, reason="到期", by=CUSTODIAN).versions == [1]
    with pytest.raises(RegistryError, match=f"release request {other}"):
        registry.retention.purge("buses", version=1, reason="到期", by=CUSTODIAN)
