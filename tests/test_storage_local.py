"""The storage interface on local files: create-only puts, staging with a hash check, key checks (issue 19)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core import LocalStorage, ObjectExistsError, ObjectMissingError, StagedObjectMismatchError, StorageError


def test_put_is_create_only_and_the_first_object_stays(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    first = storage.put("copies/人口/v1.parquet", b"first")
    with pytest.raises(ObjectExistsError):
        storage.put("copies/人口/v1.parquet", b"second")
    assert storage.read("copies/人口/v1.parquet") == b"first"
    assert first.size == 5 and len(first.sha256) == 64
    assert [o.key for o in storage.list("copies")] == ["copies/人口/v1.parquet"]


def test_racing_writers_one_wins_whole(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    results: list[str] = []

    def write(body: bytes) -> None:
        try:
            storage.put("outputs/x.csv", body * 100_000)
            results.append("won")
        except ObjectExistsError:
            results.append("lost")

    threads = [threading.Thread(target=write, args=(bytes([65 + i]),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["lost"] * 7 + ["won"]
    body = storage.read("outputs/x.csv")
    assert len(body) == 100_000 and len(set(body)) == 1
    assert not [p for p in tmp_path.rglob("*.part")]


def test_stage_refuses_a_swapped_object(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    stored = storage.put("copies/a.parquet", b"real")
    staged = storage.stage("copies/a.parquet", tmp_path / "cache" / "a.parquet", sha256=stored.sha256)
    assert staged.read_bytes() == b"real"
    (tmp_path / "store" / "copies" / "a.parquet").write_bytes(b"forged")
    with pytest.raises(StagedObjectMismatchError):
        storage.stage("copies/a.parquet", tmp_path / "cache" / "b.parquet", sha256=stored.sha256)
    assert not (tmp_path / "cache" / "b.parquet").exists()


@pytest.mark.parametrize("key", ["", "/etc/passwd", "a/../../b", "a//b", "a/./b", "a\\b", "a/b c", "x\x00"])
def test_keys_outside_the_root_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(StorageError):
        LocalStorage(tmp_path).put(key, b"x")


def test_missing_object(tmp_path: Path) -> None:
    with pytest.raises(ObjectMissingError):
        LocalStorage(tmp_path).read("nothing/here")


def test_stream_sha256_hashes_and_copies_every_block(tmp_path: Path) -> None:
    """The one digest loop of core (puts, staging checks, file and object digests): past a block, into a sink."""
    import hashlib
    import io

    from core import file_sha256, stream_sha256

    data = bytes(range(256)) * 8193  # just over two 1 MiB blocks
    sink = io.BytesIO()
    assert stream_sha256(io.BytesIO(data), sink) == (hashlib.sha256(data).hexdigest(), len(data))
    assert sink.getvalue() == data
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == (hashlib.sha256(data).hexdigest(), len(data))
    assert stream_sha256(io.BytesIO(b"")) == (hashlib.sha256(b"").hexdigest(), 0)
