"""A remote worker's jobs are judged like an embedded worker's (issue 19), and every worker checks a copy
against its recorded digest before a mount.

Why: the export guard probes outputs against the datasets' identifier fingerprints (数据可用不可见,
双鸭山市公共数据管理暂行办法 第三十五条). A worker on another host has no home in common with the server: it
must read the fingerprint sets through the storage (``AtRest.stage_set`` with the recorded
``fingerprint_files``), or it would judge with none and a leak would only be "reviewed". Here the server
ingests and desensitizes into a bucket (a directory with no local paths, as S3 behaves), and the same
jobs run on an embedded worker and on a remote one (its own home: data master key and pepper only; worker
credentials that cannot reach ``vault/``): an honest aggregate passes on both, person-level rows are
blocked on both by the fingerprint rule.

Fail closed on the copy itself: an embedded worker (whose storage is the home) refuses a copy swapped in
the home, and a row that records no digest (a legacy or hand-made row) is refused, never mounted
unchecked. Decision: refuse rather than compute-and-record the digest at migration — a digest computed
from whatever bytes lie there now would bless a copy swapped before the migration.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app import Instance
from app.database import sqlite_url
from app.settings import Settings
from app.worker_instance import WorkerInstance, WorkerSettings
from core import LocalStorage, Storage
from tests.job_worker_proc import OPERATOR, SCENARIO, FakeResult, delegated
from tests.linkage_support import JOINT, Linked, joined, linked, table_runner
from tests.linkage_support import SCENARIO as POPULATION
from tests.remote_worker_support import COPY, Bucket, Runs, licensed_with_markers, record, worker_home

JOIN_SQL = "SELECT p.性别, e.参保状态, count(*) AS 人数 FROM people p JOIN enrol e ON p.公民身份号码 = e.身份证号"


class ServerBucket(LocalStorage):
    """The server's view of the same bucket (its own credentials reach ``vault/``): no local paths either."""

    def local_path(self, key: str) -> Path | None:
        return None


def honest(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    counts = joined(frames).groupby(["性别", "参保状态"]).size().rename("人数").reset_index()
    return counts[counts["人数"] >= 10]


def leaking(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return joined(frames)[["公民身份号码", "性别", "参保状态"]]


@pytest.fixture
def database_url() -> None:
    """SQLite only: the guard's sources are the subject (test_worker_remote runs both databases)."""
    return None


@pytest.fixture(params=["directory", "s3"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Storage, Storage]:
    """The bucket as the server and as the worker see it: a directory with no local paths (the worker's
    view refuses ``vault/`` and ``secrets/``), or a prefix of a real S3 API (tests/s3_support)."""
    if request.param == "directory":
        return ServerBucket(tmp_path / "bucket"), Bucket(tmp_path / "bucket")
    server = request.getfixturevalue("s3_server")
    prefix = f"w-{uuid.uuid4().hex[:12]}"
    return server.storage(prefix), server.storage(prefix)


@pytest.fixture
def env(initialised: tuple[Instance, dict[str, str]], shared: tuple[Storage, Storage], tmp_path: Path) -> Linked:
    """people + enrol ingested and desensitized into the bucket (nothing of them in the home)."""
    instance = initialised[0]
    instance._storage = shared[0]  # as KEYONG_STORAGE_URL would
    instance._registry = None  # rebuilt over the storage when next asked
    made = linked(instance, tmp_path)
    for name in ("people", "enrol"):
        delegated(made.registry, name)
    assert not (instance.home / "fingerprints").exists() and not (instance.home / "copies").exists()
    return made


@pytest.fixture
def remote(env: Linked, shared: tuple[Storage, Storage], settings: Settings, tmp_path: Path) -> Any:
    home = worker_home(env.instance, tmp_path)
    url = settings.database_url or sqlite_url(env.instance.home)
    opened = WorkerInstance.open(
        Settings(home=home, database_url=url), storage=shared[1], worker=WorkerSettings(worker_cache=tmp_path / "cache")
    )
    yield opened
    opened.close()


def _judged(env: Linked, worker: Any, compute: Any) -> Any:
    job = env.instance.jobs.submit(JOINT, ["people", "enrol"], "sql", JOIN_SQL, POPULATION)
    (view,) = worker.run_pending()
    assert view.id == job and view.state == "done", view.reason
    return view


def test_a_remote_worker_reads_the_fingerprints_through_the_storage(env: Linked, remote: WorkerInstance) -> None:
    prints, own = remote.registry.copies.fingerprints("people"), env.registry.copies.fingerprints("people")
    assert prints is not None and own is not None and set(prints.arrays) == set(own.arrays)
    assert all((prints.arrays[k] == own.arrays[k]).all() for k in own.arrays)  # the same set, via the storage


@pytest.mark.attack
def test_a_remote_worker_judges_jobs_as_an_embedded_worker_does(env: Linked, remote: WorkerInstance) -> None:
    embedded = {
        "honest": _judged(env, env.instance.worker(runner=table_runner(honest), worker_id="embedded"), honest),
        "leaking": _judged(env, env.instance.worker(runner=table_runner(leaking), worker_id="embedded-2"), leaking),
    }
    remotely = {
        "honest": _judged(env, remote.worker(runner=table_runner(honest), worker_id="remote-1"), honest),
        "leaking": _judged(env, remote.worker(runner=table_runner(leaking), worker_id="remote-2"), leaking),
    }
    assert embedded["honest"].verdict == remotely["honest"].verdict == "pass", remotely["honest"].findings
    assert embedded["leaking"].verdict == remotely["leaking"].verdict == "block"
    assert "identifier.fingerprint" in {f["rule"] for f in remotely["leaking"].findings}, remotely["leaking"].findings


@pytest.fixture
def embedded(initialised: tuple[Instance, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Instance:
    return licensed_with_markers(initialised[0], tmp_path, monkeypatch)


@pytest.mark.attack
@pytest.mark.parametrize("attack", ["copy swapped in the home", "row with no digest", "row with a malformed digest"])
def test_an_embedded_worker_refuses_a_copy_its_row_does_not_vouch_for(embedded: Instance, attack: str) -> None:
    if attack == "copy swapped in the home":
        (embedded.home / COPY).write_bytes((embedded.home / COPY).read_bytes() + b"\0")
    else:
        record(embedded, COPY, "" if attack == "row with no digest" else "not-a-digest")
    runs = Runs()
    job = embedded.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    (view,) = embedded.worker(runner=runs, fingerprints=None).run_pending()
    assert view.id == job and view.state == "failed", view
    assert runs.seen == []  # the runner never started
    expected = "no SHA-256 is recorded" if attack == "row with no digest" else "altered or swapped"
    assert expected in (view.reason or ""), view.reason


@pytest.mark.attack
def test_a_remote_worker_signs_no_dp_result_so_none_passes_unsigned(remote: WorkerInstance, tmp_path: Path) -> None:
    """A remote worker holds no instance key (docs/operations.md §12.8): it signs no DP answer and certifies no
    model, and its guard trusts no certificate. An answer with a small cell goes to review (SDC applies, as to
    any table), a model is blocked: never an unsigned pass."""
    from sandbox.guard import judge
    from tests.test_dp_certificates import JOB, query_out, trained

    worker = remote.worker(runner=table_runner(honest), worker_id="remote-dp")
    assert worker.signer is None
    (tmp_path / "answer").mkdir()
    out, outputs = query_out(tmp_path / "answer", [1210, 3, 0])  # signed by a key no remote guard trusts
    assert judge(out, outputs, certificate_key=None, job=JOB).verdict == "review"
    model_out, model_outputs = trained(tmp_path / "model")
    assert judge(model_out, model_outputs, certificate_key=None, job=JOB).verdict == "block"


@pytest.mark.attack
def test_a_remote_worker_refuses_a_copy_swapped_in_the_bucket(
    env: Linked, remote: WorkerInstance, shared: tuple[Storage, Storage]
) -> None:
    """The people copy the job mounts replaced by the enrol one (a valid seal, another content): refused before
    the sandbox starts, on the directory and on real S3 (create-only: the attacker deletes, then puts)."""
    store = shared[0]
    job = env.instance.jobs.submit(JOINT, ["people", "enrol"], "sql", JOIN_SQL, POPULATION)
    mounts = {name: str(spec["path"]) for name, spec in env.instance.jobs.show(job).datasets.items()}
    store.delete(mounts["people"])
    store.put(mounts["people"], store.read(mounts["enrol"]))
    seen: list[str] = []

    def run(kind: str, code: str, *, datasets: Any, out_dir: Path, limits: Any = None) -> FakeResult:
        seen.append(kind)
        made: FakeResult = table_runner(honest)(kind, code, datasets=datasets, out_dir=out_dir)
        return made

    (view,) = remote.worker(runner=run, worker_id="remote-swap").run_pending()
    assert view.id == job and view.state == "failed" and seen == []
    assert "altered or swapped" in (view.reason or ""), view.reason
