"""The registry's artifacts through ``core.Storage`` (issue 19): objects sealed at rest, written once,
staged with the plaintext's SHA-256 checked, and nothing of the data written into the home when the
storage is elsewhere (SATRE 2.8.01 encryption at rest; 黑龙江省政务数据管理暂行办法 第三十八条 加密;
双鸭山市公共数据管理暂行办法 第三十五条 原始数据不出域). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from app import Instance
from core import Actor, LocalStorage, ObjectExistsError, StagedObjectMismatchError, Storage
from registry import AtRest, DataKeys, VaultError, dataset_scope

HOST = Actor("host:test", "host")

#: Storages the tests run on; storage19's ``storage`` fixture (S3) slots in here as another maker.
STORAGES: dict[str, Callable[[Path], Storage]] = {"bucket": lambda tmp: LocalStorage(tmp / "bucket")}


@pytest.fixture(params=sorted(STORAGES))
def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return STORAGES[request.param](tmp_path)


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
