"""A worker on another host (issue 19): its own home holds no copy and no vault key; it shares only the
database and the storage; copies are checked against the database before the sandbox; outputs and products
live in the storage, and the server delivers them with the worker's home gone. Both databases.

The storage here is a directory standing in for a bucket (``Bucket``: no local paths, so every object is
staged and uploaded as on S3), holding only what the worker's credentials reach: a read or write under
``vault/`` or ``secrets/`` is refused, as the worker role's bucket policy refuses it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app import Instance
from app.database import sqlite_url
from app.keys import DATA_MASTER_KEY, SECRETS_DIR, VAULT_KEY
from app.settings import Settings
from app.worker_instance import WorkerInstance, WorkerSettings
from core import Actor, ObjectExistsError
from operators import Role
from operators.job_outputs import read_output
from registry import dataset_scope
from sandbox import SandboxKeys
from tests.job_worker_proc import OPERATOR, SCENARIO
from tests.remote_worker_support import COPY, Bucket, Runs, licensed_with_markers, record, worker_home

ACME = Actor(OPERATOR, "operator")
AGENCY = Actor("demo-agency", "agency")
R2 = Actor("reviewer-2", "agency")
HOST = Actor("host:test", "host")


def is_sealed_bytes(data: bytes) -> bool:
    from registry.vault import MAGIC

    return data.startswith(MAGIC)


def seal_into(instance: Instance, bucket: Bucket, key: str, source: Path) -> str:
    """``source`` sealed under the dataset's key and put into the bucket at ``key``; its plaintext digest."""
    assert instance.registry.at_rest.storage is bucket  # the registry was built over the bucket
    return instance.registry.at_rest.put_object(key, source, dataset_scope("traffic"), by=HOST).sha256


@pytest.fixture
def server(initialised: tuple[Instance, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Instance:
    instance = licensed_with_markers(initialised[0], tmp_path, monkeypatch)
    instance.identity.create_principal(R2.name, Role.AGENCY)
    return instance


@pytest.fixture
def bucket(server: Instance, tmp_path: Path) -> Bucket:
    """The shared storage: the server's copy in it, its rows recording the copy's digest; the server reads it too."""
    bucket = Bucket(tmp_path / "bucket")
    server._storage = bucket  # as KEYONG_STORAGE_URL would (Instance.storage is built once)
    server._registry = None  # rebuilt over the bucket when next asked: its config and its sealer name it
    digest = seal_into(server, bucket, COPY, server.home / COPY)
    assert digest == hashlib.sha256((server.home / COPY).read_bytes()).hexdigest()
    record(server, COPY, digest)
    return bucket


@pytest.fixture
def remote(server: Instance, bucket: Bucket, settings: Settings, tmp_path: Path) -> Iterator[WorkerInstance]:
    home = worker_home(server, tmp_path)
    url = settings.database_url or sqlite_url(server.home)
    opened = WorkerInstance.open(
        Settings(home=home, database_url=url), storage=bucket, worker=WorkerSettings(worker_cache=tmp_path / "cache")
    )
    yield opened
    opened.close()


def test_a_remote_worker_runs_a_job_from_the_storage_and_its_outputs_land_there(
    server: Instance, bucket: Bucket, remote: WorkerInstance, tmp_path: Path
) -> None:
    assert not (remote.home / SECRETS_DIR / VAULT_KEY).exists() and remote.registry.config.vault_key is None
    runs = Runs()
    job = server.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    (view,) = remote.worker(runner=runs, worker_id="remote-1", fingerprints=None).run_pending()
    assert view.id == job and view.state == "done", view.reason
    assert runs.seen[0]["traffic"] == (server.home / COPY).read_bytes()  # the checked plaintext, mounted
    (output,) = view.outputs
    assert output["path"].startswith(f"work/{OPERATOR}/licence-") and f"/jobs/{job}/1/out/result.csv" in output["path"]
    assert bucket.exists(output["path"])  # in the storage, sealed
    assert is_sealed_bytes(bucket.read(output["path"]))
    assert not (remote.home / "work").exists()  # nothing of the job in the worker's home
    assert not (server.home / output["path"]).exists()  # nor in the server's: only in the storage
    assert not any(k.split("/")[0] in ("vault", "secrets") for k in bucket.asked)  # worker creds sufficed
    staged = list((tmp_path / "cache" / "copies").iterdir())
    assert [p.name for p in staged] == [f"{hashlib.sha256((server.home / COPY).read_bytes()).hexdigest()}.sealed"]
    assert not list((tmp_path / "cache" / "scratch").rglob("*.csv"))  # the scratch is gone once uploaded
    keys = set(SandboxKeys(server.engine, server.home, server.registry.licences.workdir).storage_keys())
    prefix = output["path"].rsplit("/out/", 1)[0]
    assert {output["path"], f"{prefix}/stdout.txt", f"{prefix}/stderr.txt", f"{prefix}/run.json"} <= keys
    assert all(bucket.exists(k) for k in keys)
    report = server.ledger.verify()
    assert report.ok, report


def test_the_server_delivers_outputs_and_products_with_the_worker_home_deleted(
    server: Instance, bucket: Bucket, remote: WorkerInstance, tmp_path: Path
) -> None:
    job = server.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    (view,) = remote.worker(runner=Runs(), worker_id="remote-1", fingerprints=None).run_pending()
    assert view.state == "done", view.reason
    remote.close()
    shutil.rmtree(remote.home)
    shutil.rmtree(tmp_path / "cache")
    if view.verdict != "pass":  # this runner's table goes to review; a pass stands in, to read it as one
        with server.engine.begin() as connection:
            connection.execute(text("UPDATE jobs SET verdict = 'pass' WHERE id = :id"), {"id": job})
    read = read_output(server.registry, server.jobs.queue, job, "result.csv", by=ACME)  # from the bucket
    assert read.data.startswith("区县".encode())
    release = server.releases.request(job, product="trips", by=ACME).id
    server.releases.vote(release, "approve", by=AGENCY)
    server.releases.vote(release, "approve", by=R2)
    product = server.registry.products.get("trips", viewer=ACME)
    (artifact,) = product.artifacts
    assert artifact["path"] == "products/trips/result.csv" and bucket.exists(artifact["path"])
    assert not (server.home / "products" / "trips").exists()  # in the storage, not the server's home
    assert artifact["path"] in set(
        SandboxKeys(server.engine, server.home, server.registry.licences.workdir).storage_keys()
    )
    fetched = server.releases.fetch("trips", tmp_path / "mine", by=ACME)
    assert Path(fetched["files"][0]["path"]).read_bytes().startswith("区县".encode())


@pytest.mark.attack
@pytest.mark.parametrize("damage", ["swapped", "missing"])
def test_an_output_altered_after_the_guard_judged_it_is_not_released(
    server: Instance, bucket: Bucket, remote: WorkerInstance, damage: str
) -> None:
    """The product is what the guard judged and the agency reviewed (双鸭山市公共数据管理暂行办法 第五十二条,
    第五十四条 不得篡改): an output object replaced by another sealed under the same licence key (it
    authenticates, its plaintext differs) or gone is refused at the deciding vote; nothing is stored."""
    from sandbox.release import ReleaseError

    job = server.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    (view,) = remote.worker(runner=Runs(), worker_id="remote-1", fingerprints=None).run_pending()
    assert view.state == "done", view.reason
    if view.verdict != "pass":  # this runner's table goes to review; a pass stands in, to request it as one
        with server.engine.begin() as connection:
            connection.execute(text("UPDATE jobs SET verdict = 'pass' WHERE id = :id"), {"id": job})
    release = server.releases.request(job, product="trips", by=ACME).id
    server.releases.vote(release, "approve", by=AGENCY)
    key = view.outputs[0]["path"]
    stdout = bucket.read(f"{key.rsplit('/out/', 1)[0]}/stdout.txt")
    bucket.delete(key)
    if damage == "swapped":
        bucket.put(key, stdout)
    with pytest.raises(ReleaseError, match="missing or changed since the guard judged it"):
        server.releases.vote(release, "approve", by=R2)
    assert list(bucket.list("products")) == []
    assert server.ledger.verify().ok


@pytest.mark.attack
@pytest.mark.parametrize("swap", ["other content", "another version's object"])
def test_a_swapped_copy_is_refused_before_the_sandbox_starts(
    server: Instance, bucket: Bucket, remote: WorkerInstance, tmp_path: Path, swap: str
) -> None:
    """A validly sealed object with other content (or another version's copy) in place of the granted one:
    it authenticates under the dataset's key, but its plaintext digest is not the row's: refused, never run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    other = tmp_path / "other.parquet"
    rows = {"trips": [999] * 10, "区县": ["尖山区"] * 10} if swap == "other content" else {"trips": list(range(20))}
    pq.write_table(pa.table(rows), other)
    bucket.delete(COPY)
    seal_into(server, bucket, COPY, other)
    runs = Runs()
    job = server.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    (view,) = remote.worker(runner=runs, worker_id="remote-1", fingerprints=None).run_pending()
    assert view.id == job and view.state == "failed" and runs.seen == []  # the sandbox never started
    assert "refused" in (view.reason or "") and "altered or swapped" in (view.reason or "")
    assert view.outputs == []
    assert not list((tmp_path / "cache" / "copies").glob("*.sealed"))  # the bad object is not kept for reuse
    ended = [e for e in server.ledger.entries(action="job.finished") if e.subject == f"job:{job}"] or [
        e for e in server.ledger.entries() if e.subject == f"job:{job}" and "fail" in e.action
    ]
    assert ended, "the refusal is ledgered like any failed job"
    assert server.ledger.verify().ok


@pytest.mark.attack
def test_a_tampered_cache_entry_is_staged_afresh_and_a_spec_pointing_elsewhere_is_refused(
    server: Instance, bucket: Bucket, remote: WorkerInstance, tmp_path: Path
) -> None:
    runs = Runs()
    worker = remote.worker(runner=runs, worker_id="remote-1", fingerprints=None)
    server.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    (first,) = worker.run_pending()
    assert first.state == "done", first.reason
    (entry,) = (tmp_path / "cache" / "copies").glob("*.sealed")
    entry.write_bytes(entry.read_bytes()[:-64] + b"\x00" * 64)  # the worker's own disk altered
    server.jobs.submit(OPERATOR, ["traffic"], "python", "print(2)", SCENARIO)
    (second,) = worker.run_pending()
    assert second.state == "done", second.reason  # dropped, staged afresh from the storage, checked
    assert runs.seen[-1]["traffic"] == (server.home / COPY).read_bytes()
    server.jobs.submit(OPERATOR, ["traffic"], "python", "print(3)", SCENARIO)
    with server.engine.begin() as connection:  # the job's spec now names another object than the copy's row
        connection.execute(text("UPDATE licence_copies SET path = 'datasets/traffic/v0.parquet'"))
    (third,) = worker.run_pending()
    assert third.state == "failed" and len(runs.seen) == 2, third.reason
    assert "no SHA-256 is recorded" in (third.reason or "")


def test_a_worker_home_without_a_data_master_is_refused_and_one_readable_by_others_too(
    server: Instance, bucket: Bucket, settings: Settings, tmp_path: Path
) -> None:
    from app.instance import InstanceError

    home = worker_home(server, tmp_path)
    url = settings.database_url or sqlite_url(server.home)
    os.chmod(home / SECRETS_DIR / DATA_MASTER_KEY, 0o644)
    with pytest.raises(InstanceError, match="readable by others"):
        WorkerInstance.open(Settings(home=home, database_url=url), storage=bucket)
    (home / SECRETS_DIR / DATA_MASTER_KEY).unlink()
    with pytest.raises(InstanceError, match="cannot be read"):
        WorkerInstance.open(Settings(home=home, database_url=url), storage=bucket)
    with pytest.raises(InstanceError, match="KEYONG_DATABASE_URL"):
        WorkerInstance.open(Settings(home=home), storage=bucket)


@pytest.mark.attack
def test_a_worker_opens_the_storage_with_its_own_credentials_file(
    server: Instance, settings: Settings, tmp_path: Path
) -> None:
    """A worker reaches the bucket with its role's key from ``KEYONG_STORAGE_CREDENTIALS_FILE``, as the server
    does (one way from the settings to the storage): never the ambient AWS chain instead, whose key may be a
    broader role's (credential separation, ``keyong storage policy``); a file others can read is refused."""
    import json

    from core import S3Storage, StorageError

    creds = tmp_path / "worker.json"
    creds.write_text(json.dumps({"access_key_id": "WORKERKEY", "secret_access_key": "worker-secret"}))
    os.chmod(creds, 0o644)
    opening = Settings(
        home=worker_home(server, tmp_path),
        database_url=settings.database_url or sqlite_url(server.home),
        storage_url="s3://keyong-data/inst",
        storage_endpoint_url="http://127.0.0.1:9",
        storage_credentials_file=creds,
    )
    with pytest.raises(StorageError, match="readable by others"):
        WorkerInstance.open(opening, worker=WorkerSettings(worker_cache=tmp_path / "cache"))
    os.chmod(creds, 0o600)
    with WorkerInstance.open(opening, worker=WorkerSettings(worker_cache=tmp_path / "cache")) as opened:
        assert isinstance(opened.storage, S3Storage) and opened.storage.url == "s3://keyong-data/inst"
        assert opened.storage._fs.key == "WORKERKEY"  # the client signs with the worker role's key
        assert opened.registry.config.storage is opened.storage


def test_outputs_are_put_create_only(server: Instance, bucket: Bucket, remote: WorkerInstance) -> None:
    """A second writer of an attempt's key loses cleanly: the first object stays (issue 19)."""
    server.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    (view,) = remote.worker(runner=Runs(), worker_id="remote-1", fingerprints=None).run_pending()
    key = view.outputs[0]["path"]
    before = bucket.read(key)
    with pytest.raises(ObjectExistsError):
        bucket.put(key, b"forged")
    assert bucket.read(key) == before


def test_a_worker_signs_no_checkpoint_and_its_entries_verify(
    server: Instance, bucket: Bucket, settings: Settings, tmp_path: Path
) -> None:
    """Even where a checkpoint falls due at every entry, the worker signs none (the server is the single
    signer); its entries stand in the chain and the server's next checkpoint covers them."""
    from ledger import LedgerError

    home = worker_home(server, tmp_path)
    url = settings.database_url or sqlite_url(server.home)
    before = server.ledger.latest_checkpoint()
    with WorkerInstance.open(
        Settings(home=home, database_url=url, ledger_checkpoint_every=1), storage=bucket,
        worker=WorkerSettings(worker_cache=tmp_path / "cache"),
    ) as remote:  # fmt: skip
        server.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
        (view,) = remote.worker(runner=Runs(), worker_id="remote-1", fingerprints=None).run_pending()
        assert view.state == "done", view.reason
        with pytest.raises(LedgerError):
            remote.ledger.checkpoint()
    assert server.ledger.latest_checkpoint() == before  # nothing signed by the worker
    signed = server.ledger.checkpoint()
    assert signed.public_key == server.ledger.public_key_hex
    assert server.ledger.verify().ok
