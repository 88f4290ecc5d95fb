"""The multi-host rehearsal (issue 19): one server and two workers as separate processes with separate
homes that share nothing but PostgreSQL and the bucket.

Why: the scale-out promise is that a province adds machines by pointing them at the same database and
bucket. This rehearses it on one machine with the real pieces: a dedicated PostgreSQL database,
SeaweedFS on loopback with the per-role credentials (``core.storage_roles``), ``keyong serve --workers
0`` (the vault key, the ingest credentials, the single checkpoint signer) and two ``keyong worker
--remote`` processes (their own home and cache, worker credentials, the data master key, no vault key).
Everything the operator does goes through the server's API; the checks read the database and the
bucket directly, as an auditor would.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.keys import SECRETS_DIR, VAULT_KEY
from core import StorageAccessDeniedError
from tests.conftest import _pg_unavailable_reason, require_sandbox
from tests.multihost_support import (
    STORAGE_URL,
    Cluster,
    dedicated_database,
    job_programs,
    keyong,
    role_env,
    wait_for,
)
from tests.s3_support import S3Server, s3_server

pytestmark = pytest.mark.slow

JOBS = 20  # ten SQL on residents, ten Python on social insurance
RESIDENTS = 300
DP_QUERY = json.dumps({"aggregate": "count", "epsilon": 0.5, "group_by": ["参保状态"]}, ensure_ascii=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, S3Server]]:
    """The database, the bucket, the set-up as the server host, the server and two workers; all stopped after."""
    require_sandbox()
    reason = _pg_unavailable_reason()
    if reason:
        pytest.skip(f"SKIPPING the multi-host rehearsal: {reason}")
    root = tmp_path_factory.mktemp("multihost")
    (root / "s3").mkdir()
    with s3_server(root / "s3") as s3:
        if isinstance(s3, str) or not s3.roles:
            pytest.skip(f"SKIPPING the multi-host rehearsal: no S3 server with role credentials ({s3})")
        with dedicated_database() as database:
            made = Cluster(
                root,
                database,
                role_env(s3, "ingest", database),
                role_env(s3, "worker", database),
                signer_env=role_env(s3, "signer", database),
            )
            try:
                made.setup(RESIDENTS)
                made.start_server()
                made.start_worker("w1")
                made.start_worker("w2")
                made.wait_workers(2)
                yield made, s3
            finally:
                made.stop_all()


@pytest.fixture(scope="module")
def judged(cluster: tuple[Cluster, S3Server]) -> dict[int, dict[str, Any]]:
    """``JOBS`` small jobs and one dp-query submitted through the API, with their verdicts."""
    made, _ = cluster
    jobs = [made.submit(*program) for program in job_programs(JOBS)]
    jobs.append(made.submit(["social_insurance"], "dp-query", DP_QUERY, "社会保障分析"))
    try:
        return made.judged(jobs, timeout=600)
    except AssertionError:
        raise AssertionError(f"{made.log('w1')}\n---\n{made.log('w2')}\n---\n{made.log('server')}") from None


def _rows(database: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params))
    finally:
        engine.dispose()


def _ledgered(database: str, action: str) -> Counter[str]:
    rows = _rows(database, "SELECT subject FROM ledger_entries WHERE action = :action", action=action)
    return Counter(subject for (subject,) in rows)


def _worker_instance(made: Cluster, s3: S3Server, name: str) -> Any:
    """A worker's own view (its home, worker credentials): reads objects as that worker uploaded them."""
    from app import Settings
    from app.worker_instance import WorkerInstance

    home = made.root / f"{name}-home"
    return WorkerInstance.open(Settings(home=home, database_url=made.database_url), storage=s3.role_storage("worker"))


def test_every_job_runs_exactly_once_and_both_workers_take_jobs(
    cluster: tuple[Cluster, S3Server], judged: dict[int, dict[str, Any]]
) -> None:
    made, _ = cluster
    assert all(view["state"] == "done" for view in judged.values()), {j: v.get("reason") for j, v in judged.items()}
    subjects = {f"job:{job}" for job in judged}
    for action in ("job.started", "job.finished"):
        counted = _ledgered(made.database_url, action)
        assert {s: counted[s] for s in subjects} == dict.fromkeys(subjects, 1), action
    assert not subjects & set(_ledgered(made.database_url, "job.requeued"))
    rows = _rows(
        made.database_url, "SELECT id, attempts, worker, state FROM jobs WHERE id = ANY(:ids)", ids=list(judged)
    )
    assert {row.id for row in rows} == set(judged) and all(row.attempts == 1 for row in rows)
    by_worker = Counter(row.worker for row in rows)
    pids = {made.workers[name].pid for name in ("w1", "w2")}
    assert {int(worker.split("-")[-2]) for worker in by_worker} == pids, by_worker  # both workers took jobs


def test_outputs_come_through_the_server_with_the_bytes_the_worker_uploaded(
    cluster: tuple[Cluster, S3Server], judged: dict[int, dict[str, Any]]
) -> None:
    made, s3 = cluster
    bucket = s3.role_storage("server")
    outputs = _rows(made.database_url, "SELECT id, outputs FROM jobs WHERE id = ANY(:ids)", ids=list(judged))
    stored = {
        row.id: {o["name"]: o for o in (row.outputs if isinstance(row.outputs, list) else json.loads(row.outputs))}
        for row in outputs
    }
    worker = _worker_instance(made, s3, "w1")
    try:
        fetched = 0
        for job, view in judged.items():
            if view["verdict"] != "pass":
                continue
            for name, output in stored[job].items():
                assert output["path"].startswith("work/") and bucket.exists(output["path"])
                assert not (made.server_home / output["path"]).exists()  # in the bucket, nowhere else
                sealed = bucket.read(output["path"])
                answer = httpx.get(
                    f"{made.base}/jobs/{job}/outputs/{name}", headers=made.headers("operator"), timeout=30
                )
                assert answer.status_code == 200, answer.text
                assert sealed != answer.content  # sealed at rest
                assert answer.content == worker.registry.at_rest.read_object(output["path"])
                assert (
                    hashlib.sha256(answer.content).hexdigest() == output["sha256"] == answer.headers["x-content-sha256"]
                )
                fetched += 1
        assert fetched >= JOBS // 2
    finally:
        worker.close()


def test_a_released_product_is_fetched_through_the_server(
    cluster: tuple[Cluster, S3Server], judged: dict[int, dict[str, Any]]
) -> None:
    made, s3 = cluster
    job = next(j for j, v in sorted(judged.items()) if v["kind"] == "sql" and v["verdict"] == "pass")
    output = next(o for o in judged[job]["outputs"] if o["name"].endswith(".csv"))
    wanted = httpx.get(f"{made.base}/jobs/{job}/outputs/{output['name']}", headers=made.headers("operator"), timeout=30)
    body = {"job": job, "product": "multihost-gender-counts"}
    asked = httpx.post(f"{made.base}/releases", json=body, headers=made.headers("operator"), timeout=30)
    assert asked.status_code == 201, asked.text
    vote = {"decision": "approve", "reason": "符合发布前合规审核要求"}
    voted = httpx.post(
        f"{made.base}/releases/{asked.json()['release']}/votes", json=vote, headers=made.headers("agency"), timeout=60
    )
    assert voted.status_code == 200, voted.text
    assert voted.json()["product_id"] is not None, voted.json()
    url = f"{made.base}/products/multihost-gender-counts/artifacts/{output['name']}"
    delivered = httpx.get(url, headers=made.headers("operator"), timeout=60)
    assert delivered.status_code == 200, delivered.text
    assert delivered.content == wanted.content
    keys = s3.role_storage("server").list("products/multihost-gender-counts")
    assert keys and not (made.server_home / "products" / "multihost-gender-counts").exists()


def test_nothing_of_the_vault_reaches_the_workers(
    cluster: tuple[Cluster, S3Server], judged: dict[int, dict[str, Any]]
) -> None:
    made, s3 = cluster
    vault_key = (made.server_home / SECRETS_DIR / VAULT_KEY).read_bytes().strip()
    vault_objects = [entry.key for entry in s3.role_storage("ingest").list("vault")]
    assert vault_objects  # the raw copies are in the bucket, sealed under the vault key
    for name in ("w1", "w2"):
        home = made.root / f"{name}-home"
        files = [p for p in home.rglob("*") if p.is_file()]
        assert files and not any(p.name == VAULT_KEY or "vault" in p.relative_to(home).parts for p in files)
        assert not any(vault_key in p.read_bytes() for p in files)
    worker = s3.role_storage("worker")
    attempts = (
        lambda: list(worker.list("vault")),
        lambda: worker.read(vault_objects[0]),
        lambda: list(worker.list("secrets")),
    )
    for attempt in attempts:
        with pytest.raises(StorageAccessDeniedError):
            attempt()
    with pytest.raises(StorageAccessDeniedError):
        worker.stage(vault_objects[0], made.root / "stolen", sha256=None)
    assert not (made.root / "stolen").exists()


def test_a_worker_killed_mid_job_leaves_its_job_to_the_other_which_runs_it_once(
    cluster: tuple[Cluster, S3Server], judged: dict[int, dict[str, Any]]
) -> None:
    made, _ = cluster
    code = "import time\ntime.sleep(12)\nopen('/out/slept.txt', 'w').write('slept\\n')\n"
    job = made.submit(["social_insurance"], "python", code, "社会保障分析")
    query = "SELECT worker, state FROM jobs WHERE id = :job"
    holder = wait_for(
        lambda: (r := _rows(made.database_url, query, job=job)[0]).state == "running" and r.worker, 120, "the run"
    )
    victim = next(name for name, process in made.workers.items() if str(process.pid) in holder.split("-"))
    os.kill(made.workers[victim].pid, 9)
    made.workers[victim].wait(timeout=30)
    (view,) = made.judged([job], timeout=300).values()  # the survivor reaps the stale job and runs it
    assert view["state"] == "done", view.get("reason")
    assert _ledgered(made.database_url, "job.started")[f"job:{job}"] == 2  # the killed attempt, then the rerun
    assert _ledgered(made.database_url, "job.requeued")[f"job:{job}"] == 1
    assert _ledgered(made.database_url, "job.finished")[f"job:{job}"] == 1  # completed exactly once
    (row,) = _rows(made.database_url, "SELECT attempts, worker FROM jobs WHERE id = :job", job=job)
    assert row.attempts == 2 and row.worker != holder
    (output,) = view["outputs"]  # the rerun's only: the killed attempt recorded nothing
    (stored,) = _rows(made.database_url, "SELECT outputs FROM jobs WHERE id = :job", job=job)[0]
    assert [o["path"].split("/jobs/")[1] for o in stored] == [f"{job}/2/out/{output['name']}"]
    made.start_worker(victim)  # the host comes back: it joins the queue again with its own home


def test_the_ledger_verifies_and_its_published_checkpoints_verify_from_the_bucket_alone(
    cluster: tuple[Cluster, S3Server], judged: dict[int, dict[str, Any]], tmp_path: Path
) -> None:
    made, s3 = cluster
    home = ["--home", str(made.server_home)]

    def run(*args: str, env: dict[str, str] = made.signer_env or made.server_env) -> dict[str, Any]:
        done = subprocess.run(
            keyong(*args, "--json"), env=env, cwd=tmp_path, capture_output=True, timeout=600, check=False
        )
        assert done.returncode == 0, (args, done.stdout.decode()[-2000:], done.stderr.decode()[-2000:])
        return dict(json.loads(done.stdout))

    assert run(*home, "ledger", "verify")["ok"] is True
    run(*home, "ledger", "checkpoint")
    run(*home, "ledger", "publish")
    key = run(*home, "ledger", "public-key")["public_key"]
    regulator = {k: v for k, v in role_env(s3, "regulator", "").items() if k != "KEYONG_DATABASE_URL"}
    published = run(
        "ledger",
        "verify-published",
        "--storage-url",
        STORAGE_URL,
        "--endpoint",
        s3.endpoint,
        "--public-key",
        key,
        env=regulator,
    )
    assert published["ok"] is True and published["checkpoints"], published
    entries = _rows(made.database_url, "SELECT count(*) FROM ledger_entries")[0][0]
    assert published["entries"] <= entries and published["latest"]
