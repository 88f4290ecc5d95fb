"""The registry's artifacts through ``core.Storage`` (issue 19): objects sealed at rest, written once,
staged with the plaintext's SHA-256 checked, and nothing of the data written into the home when the
storage is elsewhere (SATRE 2.8.01 encryption at rest; 黑龙江省政务数据管理暂行办法 第三十八条 加密;
双鸭山市公共数据管理暂行办法 第三十五条 原始数据不出域). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from app import Instance
from core import Actor, LocalStorage, ObjectExistsError, StagedObjectMismatchError, Storage
from registry import AtRest, DataKeys, VaultError, dataset_scope, stored_bytes
from tests.linkage_support import AGENCY, CUSTODIAN, Linked, linked

HOST = Actor("host:test", "host")

#: Storages the tests run on: a directory with local paths (beside the home, never the home itself), and a
#: real S3 API (``tests/s3_support``: SeaweedFS on loopback, else moto) under a prefix of its own per test.
STORAGES: dict[str, Callable[[pytest.FixtureRequest, Path], Storage]] = {
    "bucket": lambda request, tmp: LocalStorage(tmp / "bucket"),
    "s3": lambda request, tmp: request.getfixturevalue("s3_server").storage(f"reg-{uuid.uuid4().hex[:12]}"),
}


@pytest.fixture(params=sorted(STORAGES))
def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return STORAGES[request.param](request, tmp_path)


@pytest.fixture
def at_rest(initialised: tuple[Instance, dict[str, str]], bucket: Storage) -> AtRest:
    instance = initialised[0]
    return AtRest(DataKeys(instance.registry.recorder, instance.registry.config), instance.home, bucket)


def test_put_object_seals_and_reads_back_the_plaintext(at_rest: AtRest, bucket: Storage, tmp_path: Path) -> None:
    data = b"PAR1" + bytes(range(256)) * 40_000  # several frames
    stored = at_rest.put_object("copies/demo/v2.parquet.kyv", data, dataset_scope("demo"), by=HOST)
    assert (stored.key, stored.sha256, stored.size) == (
        "copies/demo/v2.parquet.kyv",
        hashlib.sha256(data).hexdigest(),
        len(data),
    )
    sealed = bucket.read(stored.key)
    assert sealed.startswith(b"KYVAULT\x00") and data[:64] not in sealed  # never in clear in the bucket
    assert at_rest.read_object(stored.key) == data
    assert b"".join(at_rest.object_chunks(stored.key)) == data
    staged = at_rest.stage_plain(stored.key, tmp_path / "cache" / "v2.parquet", sha256=stored.sha256)
    assert staged.read_bytes() == data and (staged.stat().st_mode & 0o777) == 0o600


def test_put_object_from_a_file(at_rest: AtRest, tmp_path: Path) -> None:
    source = tmp_path / "plain.bin"
    source.write_bytes(b"fingerprints" * 1000)
    stored = at_rest.put_object("fingerprints/demo/v2/a.npy", source, dataset_scope("demo"), by=HOST)
    assert at_rest.read_object(stored.key) == source.read_bytes()


def test_a_second_put_to_the_same_key_loses_and_the_first_object_stays(at_rest: AtRest) -> None:
    first = at_rest.put_object("copies/demo/v2.parquet.kyv", b"first", dataset_scope("demo"), by=HOST)
    with pytest.raises(ObjectExistsError):
        at_rest.put_object("copies/demo/v2.parquet.kyv", b"second", dataset_scope("demo"), by=HOST)
    assert at_rest.read_object(first.key) == b"first"


def test_a_swapped_object_is_refused_by_stage_plain(at_rest: AtRest, bucket: Storage, tmp_path: Path) -> None:
    """Attack: another sealed copy (same data key, so it authenticates) put where the row's copy was."""
    real = at_rest.put_object("copies/demo/v2.parquet.kyv", b"the real copy", dataset_scope("demo"), by=HOST)
    other = at_rest.put_object("copies/demo/v3.parquet.kyv", b"another copy", dataset_scope("demo"), by=HOST)
    bucket.delete(real.key)
    bucket.put(real.key, bucket.read(other.key))
    target = tmp_path / "cache" / "v2.parquet"
    with pytest.raises(StagedObjectMismatchError):
        at_rest.stage_plain(real.key, target, sha256=real.sha256)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_tampered_or_planted_object_is_refused(at_rest: AtRest, bucket: Storage, tmp_path: Path) -> None:
    """Attacks: one flipped ciphertext byte; a plaintext planted under a sealed (``.kyv``) key."""
    real = at_rest.put_object("copies/demo/v2.parquet.kyv", b"x" * 1000, dataset_scope("demo"), by=HOST)
    sealed = bytearray(bucket.read(real.key))
    sealed[-20] ^= 1
    bucket.delete(real.key)
    bucket.put(real.key, bytes(sealed))
    target = tmp_path / "cache" / "v2.parquet"
    with pytest.raises(VaultError):
        at_rest.stage_plain(real.key, target, sha256=real.sha256)
    assert not target.exists()
    bucket.put("copies/demo/v9.parquet.kyv", b"PAR1 planted in clear")
    with pytest.raises(VaultError):
        at_rest.read_object("copies/demo/v9.parquet.kyv")


# --- the registry's flow on a storage that is not the home ----------------------------------------------

ARTIFACT_TREES = ("vault", "copies", "fingerprints", "licence-copies", "products")


def _home_files(home: Path) -> set[str]:
    return {p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()}


def _bucket_keys(storage: Storage) -> set[str]:
    return {info.key for tree in ARTIFACT_TREES for info in storage.list(tree)}


@pytest.fixture
def flow(initialised: tuple[Instance, dict[str, str]], bucket: Storage, tmp_path: Path) -> tuple[Linked, set[str]]:
    """ingest -> desensitize -> licence copies (linkage_support's two datasets, two licences) on ``bucket``;
    and the home's files that appeared meanwhile."""
    instance = initialised[0]
    instance._storage = bucket  # as KEYONG_STORAGE_URL would (Instance.storage is built once from it)
    instance._registry = None  # rebuilt over the storage when next asked (as use_data_master does)
    before = _home_files(instance.home)
    env = linked(instance, tmp_path)
    for licence in env.licences.values():
        env.registry.licence_copies.ensure(licence, by=AGENCY)
    return env, _home_files(instance.home) - before


def test_the_flow_writes_every_artifact_to_the_storage_and_none_into_the_home(
    flow: tuple[Linked, set[str]], bucket: Storage
) -> None:
    env, appeared = flow
    assert env.registry.config.artifacts() is bucket
    leaked = sorted(f for f in appeared if f.split("/", 1)[0] in ARTIFACT_TREES)
    assert leaked == [], f"artifacts written into the home: {leaked}"
    for relative in appeared:  # nothing else that looks like data either (secrets, the database, scratch only)
        head = (env.instance.home / relative).read_bytes()[:8]
        assert not head.startswith((b"PAR1", b"KYVAULT\x00", b"\x93NUMPY")), relative
    keys = _bucket_keys(bucket)
    for tree in ("vault", "copies", "fingerprints", "licence-copies"):
        assert any(k.startswith(f"{tree}/") for k in keys), f"nothing under {tree}/ in the storage"
    for key in keys:  # every object sealed at rest
        assert bucket.read(key).startswith(b"KYVAULT\x00"), key


def test_storage_keys_name_exactly_the_objects_the_rows_refer_to(
    flow: tuple[Linked, set[str]], bucket: Storage
) -> None:
    env, _ = flow
    referenced = set(env.registry.storage_keys())
    assert referenced == _bucket_keys(bucket)
    orphan = "copies/people/orphan.parquet.kyv"  # a writer that died before its row committed
    bucket.put(orphan, b"KYVAULT\x00 left behind")
    assert orphan not in set(env.registry.storage_keys())


def test_copies_stage_with_their_recorded_digest_and_a_swapped_copy_is_refused(
    flow: tuple[Linked, set[str]], bucket: Storage, tmp_path: Path
) -> None:
    env, _ = flow
    registry = env.registry
    people, enrol = registry.copies.newest("people"), registry.copies.newest("enrol")
    staged = registry.at_rest.stage_plain(people.path, tmp_path / "cache" / "p.parquet", sha256=people.content_sha256)
    assert pq.read_table(staged).num_rows == people.rows
    assert registry.copies.fingerprints("people") is not None  # staged from the storage, each file checked
    # Attack: the people copy's object replaced by the enrol copy (same kind of object, another content).
    bucket.delete(people.path)
    bucket.put(people.path, bucket.read(enrol.path))
    with pytest.raises(StagedObjectMismatchError):
        registry.at_rest.stage_plain(people.path, tmp_path / "cache" / "p2.parquet", sha256=people.content_sha256)
    assert not (tmp_path / "cache" / "p2.parquet").exists()


def test_a_second_ingest_to_the_same_version_key_loses_cleanly(flow: tuple[Linked, set[str]], bucket: Storage) -> None:
    env, _ = flow
    raw = next(v for v in env.registry.catalog.get("people").versions if v.kind == "raw")
    file_id = bytes.fromhex(raw.path.rsplit("/", 1)[-1].split("-", 1)[1].removesuffix(".parquet.kyv"))
    before = bucket.read(raw.path)
    with pytest.raises(VaultError, match="already exists"):
        env.registry.ingestor.vault.put("people", raw.version, b"another writer's bytes", file_id=file_id)
    assert bucket.read(raw.path) == before  # the first object stays whole
    # A raw version records its source file's digest as content_sha256; the vault object's plaintext is the Parquet.
    assert hashlib.sha256(env.registry.ingestor.vault.open(raw.path)).hexdigest() == raw.report["parquet_sha256"]


def test_a_purge_deletes_the_versions_objects_through_the_storage(
    flow: tuple[Linked, set[str]], bucket: Storage
) -> None:
    env, _ = flow
    registry = env.registry
    for licence in env.licences.values():
        registry.licences.transition(licence, "revoked", by=AGENCY, reason="测试结束")
    registry.retention.purge("people", reason="到期", by=CUSTODIAN)
    left = {k for k in _bucket_keys(bucket) if "/people" in k or k.startswith(("vault/people/", "copies/people/"))}
    assert left == set()
    assert set(registry.storage_keys()) == _bucket_keys(bucket)


def test_the_start_sweep_neither_misses_nor_removes_objects_kept_elsewhere(
    flow: tuple[Linked, set[str]], bucket: Storage
) -> None:
    """On a bucket the rows' objects are not "missing from the home", and the home sweep touches no object."""
    env, _ = flow
    keys = _bucket_keys(bucket)
    swept = env.registry.sweep()
    assert swept.missing == [] and swept.removed == []
    assert _bucket_keys(bucket) == keys
    counted = stored_bytes(env.instance.home, env.registry.config.artifacts())
    assert counted["copies"]["files"] == len([k for k in keys if k.startswith("copies/")]) > 0
