"""core.Storage on both backends, local files and a real S3 API (issue 19): create-only writes, large
objects, staging with a hash check, keys confined to the prefix, listing, deleting, and the sweeper."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core import (
    ObjectExistsError,
    ObjectMissingError,
    S3Storage,
    StagedObjectMismatchError,
    Storage,
    StorageError,
    SweepRefusedError,
    open_storage,
    parse_s3_url,
    referenced_keys,
    storage_for_url,
    sweep,
)
from core.storage_s3 import PART_SIZE


def _race(storage: Storage, key: str, bodies: list[bytes]) -> list[str]:
    results: list[str] = []
    barrier = threading.Barrier(len(bodies))

    def write(body: bytes) -> None:
        barrier.wait()
        try:
            storage.put(key, body)
            results.append("won")
        except ObjectExistsError:
            results.append("lost")

    threads = [threading.Thread(target=write, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_second_writer_loses_and_the_first_object_stays(storage: Storage) -> None:
    first = storage.put("copies/人口/v1.parquet", b"first")
    with pytest.raises(ObjectExistsError, match="written once"):
        storage.put("copies/人口/v1.parquet", b"second")
    assert storage.read("copies/人口/v1.parquet") == b"first"
    assert first.sha256 == hashlib.sha256(b"first").hexdigest() and first.size == 5


def test_racing_writers_exactly_one_wins_whole(storage: Storage) -> None:
    bodies = [bytes([65 + i]) * 200_000 for i in range(6)]
    results = _race(storage, "work/job-1/out.csv", bodies)
    assert sorted(results) == ["lost"] * 5 + ["won"]
    body = storage.read("work/job-1/out.csv")
    assert len(body) == 200_000 and len(set(body)) == 1


@pytest.mark.slow
def test_racing_multipart_writers_one_wins_whole(storage: Storage, request: pytest.FixtureRequest) -> None:
    """Objects above a part stream as multipart uploads; the complete is create-only, so still one winner."""
    if isinstance(storage, S3Storage) and request.getfixturevalue("s3_server").kind == "moto":
        pytest.skip(
            "SKIPPING on moto: its CompleteMultipartUpload checks If-None-Match without a lock (two racing "
            "completes both succeed; one after the other is refused). SeaweedFS runs this test."
        )
    size = PART_SIZE + 3 * (1 << 20)
    results = _race(storage, "work/job-2/big.bin", [b"x" * size, b"y" * size])
    # SeaweedFS checks If-None-Match on CompleteMultipartUpload without a lock (both racing completes were
    # seen to succeed); S3Storage reads the completed object's ETag back, so the writer whose object was
    # replaced is told it lost: exactly one winner on every backend.
    assert sorted(results) == ["lost", "won"]
    body = storage.read("work/job-2/big.bin")
    assert len(body) == size and len(set(body)) == 1


@pytest.mark.slow
def test_a_60_mb_object_puts_streaming_and_stages_checked(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "big.parquet"
    with open(source, "wb") as out:
        for _ in range(60):
            out.write(os.urandom(1 << 20))
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    started = time.monotonic()
    stored = storage.put("copies/big/v1.parquet", source)
    put_seconds = time.monotonic() - started
    assert stored.sha256 == expected and stored.size == 60 << 20
    started = time.monotonic()
    staged = storage.stage("copies/big/v1.parquet", tmp_path / "cache" / "v1.parquet", sha256=expected)
    get_seconds = time.monotonic() - started
    assert hashlib.sha256(staged.read_bytes()).hexdigest() == expected
    assert staged.stat().st_mode & 0o777 == 0o600
    print(f"\n{storage.url}: 60 MB put {60 / put_seconds:.0f} MB/s, stage {60 / get_seconds:.0f} MB/s")


def test_stage_refuses_a_swapped_object(storage: Storage, tmp_path: Path) -> None:
    recorded = storage.put("copies/a/v1.parquet", b"the real copy").sha256
    storage.delete("copies/a/v1.parquet")  # someone with write access swaps the object
    storage.put("copies/a/v1.parquet", b"a forged copy")
    target = tmp_path / "cache" / "a.parquet"
    with pytest.raises(StagedObjectMismatchError, match="not used"):
        storage.stage("copies/a/v1.parquet", target, sha256=recorded)
    assert not target.exists()


def test_stage_of_a_missing_object(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(ObjectMissingError):
        storage.stage("copies/none/v1.parquet", tmp_path / "x", sha256=None)
    with pytest.raises(ObjectMissingError):
        storage.read("copies/none/v1.parquet")
    assert not storage.exists("copies/none/v1.parquet")


@pytest.mark.attack
@pytest.mark.parametrize("key", ["", "/etc/passwd", "a/../../b", "../x", "a//b", "a/./b", "a\\b", "a/b c", "x\x00"])
def test_keys_escaping_the_prefix_are_refused(storage: Storage, tmp_path: Path, key: str) -> None:
    for attempt in (
        lambda: storage.put(key, b"x"),
        lambda: storage.read(key),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
        lambda: list(storage.list(key)),
        lambda: storage.stage(key, tmp_path / "t", sha256=None),
    ):
        with pytest.raises(StorageError, match="not a storage key"):
            attempt()


def test_list_and_delete(storage: Storage) -> None:
    for key in ("copies/a/v1.parquet", "copies/a/v2.parquet", "copies/b/v1.parquet", "copiesX/c", "work/j/o.csv"):
        storage.put(key, key.encode())
    listed = {info.key: info for info in storage.list("copies")}
    assert set(listed) == {"copies/a/v1.parquet", "copies/a/v2.parquet", "copies/b/v1.parquet"}
    assert listed["copies/a/v1.parquet"].size == len(b"copies/a/v1.parquet")
    assert all(info.modified.tzinfo is not None for info in listed.values())
    assert [info.key for info in storage.list("copies/a")] == ["copies/a/v1.parquet", "copies/a/v2.parquet"]
    storage.delete("copies/a/v1.parquet")
    storage.delete("copies/a/v1.parquet")  # absent is not an error
    assert not storage.exists("copies/a/v1.parquet")
    assert [info.key for info in storage.list("copies/a")] == ["copies/a/v2.parquet"]
    assert list(storage.list("nothing")) == []


def test_open_streams(storage: Storage) -> None:
    storage.put("products/p/report.csv", io.BytesIO(b"a,b\n1,2\n"))
    with storage.open("products/p/report.csv") as stream:
        assert stream.read(4) == b"a,b\n"
        assert stream.read() == b"1,2\n"


def test_an_empty_object_is_create_only_too(storage: Storage) -> None:
    storage.put("work/j/empty.txt", b"")
    with pytest.raises(ObjectExistsError):
        storage.put("work/j/empty.txt", b"")
    assert storage.read("work/j/empty.txt") == b""


# --- the sweeper -------------------------------------------------------------------------------------------


class Provider:
    def __init__(self, keys: Iterable[str], fail: bool = False) -> None:
        self.keys, self.fail = list(keys), fail

    def storage_keys(self) -> Iterator[str]:
        yield from self.keys
        if self.fail:
            raise RuntimeError("database went away")


def _modified(storage: Storage, prefix: str) -> dict[str, datetime]:
    return {info.key: info.modified for info in storage.list(prefix)}


def test_sweeper_removes_old_orphans_and_keeps_young_and_referenced(storage: Storage) -> None:
    storage.put("copies/d/old-orphan.parquet", b"orphan" * 10)
    storage.put("copies/d/referenced.parquet", b"kept")
    time.sleep(1.2)  # S3 times objects to the second: the young orphan is strictly younger
    storage.put("copies/d/young-orphan.parquet", b"young")
    storage.put("vault/d/raw.kyv", b"not a swept prefix here")
    when = _modified(storage, "copies")
    grace = timedelta(hours=24)
    now = when["copies/d/young-orphan.parquet"] + grace - timedelta(milliseconds=500)
    referenced = referenced_keys([Provider(["copies/d/referenced.parquet"])])

    dry = sweep(storage, prefixes=["copies"], referenced=referenced, grace=grace, now=now, dry_run=True)
    assert dry.deleted == ("copies/d/old-orphan.parquet",) and storage.exists("copies/d/old-orphan.parquet")

    report = sweep(storage, prefixes=["copies"], referenced=referenced, grace=grace, now=now)
    assert report.deleted == ("copies/d/old-orphan.parquet",)
    assert report.bytes == 60 and report.kept_young == 1 and report.kept_referenced == 1
    assert sorted(_modified(storage, "copies")) == ["copies/d/referenced.parquet", "copies/d/young-orphan.parquet"]
    assert storage.exists("vault/d/raw.kyv")

    later = sweep(storage, prefixes=["copies"], referenced=referenced, now=datetime.now(UTC) + timedelta(days=2))
    assert later.deleted == ("copies/d/young-orphan.parquet",)
    assert storage.exists("copies/d/referenced.parquet")


@pytest.mark.attack
def test_a_failing_reference_provider_deletes_nothing(storage: Storage) -> None:
    storage.put("copies/d/a.parquet", b"a")
    storage.put("copies/d/b.parquet", b"b")
    future = datetime.now(UTC) + timedelta(days=30)
    with pytest.raises(SweepRefusedError, match="deleted nothing"):
        referenced_keys([Provider(["copies/d/a.parquet"]), Provider(["copies/d/b.parquet"], fail=True)])

    def half_read() -> Iterator[str]:
        yield "copies/d/a.parquet"
        raise RuntimeError("connection reset")

    with pytest.raises(SweepRefusedError, match="deleted nothing"):
        sweep(storage, prefixes=["copies"], referenced=half_read(), now=future)
    assert storage.exists("copies/d/a.parquet") and storage.exists("copies/d/b.parquet")


def test_sweeper_refuses_a_negative_grace_and_bad_prefixes(storage: Storage) -> None:
    with pytest.raises(StorageError):
        sweep(storage, prefixes=["copies"], referenced=[], grace=timedelta(hours=-1))
    with pytest.raises(StorageError, match="not a storage key"):
        sweep(storage, prefixes=["../copies"], referenced=[])


# --- the factory and the URL ---------------------------------------------------------------------------------


def test_open_storage_defaults_to_the_home(tmp_path: Path) -> None:
    from core import LocalStorage

    assert isinstance(open_storage(None, home=tmp_path), LocalStorage)
    assert isinstance(open_storage(tmp_path.as_uri(), home=tmp_path), LocalStorage)
    with pytest.raises(StorageError, match="must name the home"):
        open_storage((tmp_path / "elsewhere").as_uri(), home=tmp_path)
    with pytest.raises(StorageError, match="unsupported"):
        open_storage("gs://bucket/x", home=tmp_path)
    s3 = open_storage("s3://keyong-data/prov/a", home=tmp_path, endpoint_url="http://127.0.0.1:9")
    assert isinstance(s3, S3Storage) and s3.url == "s3://keyong-data/prov/a" and s3.local_path("copies/x") is None


@pytest.mark.attack
@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIA:secret@bucket/p",
        "s3://b/p",
        "s3://bucket/../x",
        "s3://bucket/p?x=1",
        "s3://bucket/p?X-Amz-Signature=secret",
        "s3://bucket/p#secret",
        "s3://[secret/p",
        "http://bucket/p",
        "s3:///p",
    ],
)
def test_bad_storage_urls_are_refused_without_echoing_credentials(url: str) -> None:
    """A refusal is a :class:`StorageError` (the CLI's clear message, never a traceback) that repeats no
    user-info, query or fragment: a URL pasted with a signature or a secret in it stays out of logs."""
    with pytest.raises(StorageError) as caught:
        parse_s3_url(url)
    assert "secret" not in str(caught.value)


@pytest.mark.attack
@pytest.mark.parametrize("endpoint", ["http://[::1", "http://127.0.0.1:9/?X-Amz-Credential=secret"])
def test_bad_endpoint_urls_are_refused_without_echoing_them(tmp_path: Path, endpoint: str) -> None:
    """An endpoint that does not parse, or carries a query, is refused as the storage URL is (fail closed)."""
    with pytest.raises(StorageError) as caught:
        open_storage("s3://bucket/p", home=tmp_path, endpoint_url=endpoint)
    assert "secret" not in str(caught.value)


def test_a_storage_named_by_its_url_alone(tmp_path: Path) -> None:
    """What a regulator names with ``--storage-url``: a directory (as a path, ``local:`` or ``file://``) or a
    bucket; no home is involved, so unlike :func:`open_storage` any directory may be named."""
    from core import LocalStorage

    for url in (str(tmp_path), f"local:{tmp_path}", tmp_path.as_uri(), f"file://localhost{tmp_path}"):
        found = storage_for_url(url)
        assert isinstance(found, LocalStorage) and found.local_path("x") == tmp_path / "x"
    s3 = storage_for_url("s3://keyong-data/ledger", endpoint_url="http://127.0.0.1:9")
    assert isinstance(s3, S3Storage) and s3.url == "s3://keyong-data/ledger"
    with pytest.raises(StorageError, match="no directory"):
        storage_for_url(str(tmp_path / "absent"))


@pytest.mark.attack
@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("file://[S3CR3TVALUE/ledger", None),
        ("file:///srv/ledger?X-Amz-Signature=S3CR3TVALUE", None),
        ("file:///srv/ledger#S3CR3TVALUE", None),
        ("file://admin:S3CR3TVALUE@host/srv/ledger", None),
        ("ftp://admin:S3CR3TVALUE@example.org/ledger?token=S3CR3TVALUE", None),
        ("gs://bucket/ledger?sig=S3CR3TVALUE", None),
        ("s3://bucket/ledger?X-Amz-Signature=S3CR3TVALUE", None),
        ("s3://AKIA:S3CR3TVALUE@bucket/ledger", None),
        ("s3://[S3CR3TVALUE/ledger", None),
        ("s3://bucket/ledger", "http://[::1"),
        ("s3://bucket/ledger", "http://admin:S3CR3TVALUE@127.0.0.1:9"),
        ("s3://bucket/ledger", "http://127.0.0.1:9/?X-Amz-Credential=S3CR3TVALUE"),
    ],
)
def test_a_bad_storage_url_alone_is_refused_without_echoing_it(url: str, endpoint: str | None) -> None:
    """Malformed, foreign or credential-carrying URLs are a :class:`StorageError` (a CLI's one-line
    refusal, never a traceback) that repeats no user-info, query or fragment (red team 19, B7)."""
    with pytest.raises(StorageError) as caught:
        storage_for_url(url, endpoint_url=endpoint)
    assert "S3CR3TVALUE" not in str(caught.value)


# --- reads failing mid-object ------------------------------------------------------------------------------


class _FailingBody:
    """An object body that yields a first block, then fails as s3fs, aiobotocore or urllib3 fail mid-read."""

    def __init__(self, error: BaseException) -> None:
        self.error, self.served, self.closed = error, False, False

    def read(self, size: int = -1) -> bytes:
        if not self.served and size > 0:  # a first block; reading it all (``size=-1``) meets the failure
            self.served = True
            return b"PAR1"
        raise self.error

    def close(self) -> None:
        self.closed = True


class _FakeS3:
    """Stands in for the s3fs client: every opened body fails after its first block."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.bodies: list[_FailingBody] = []

    def open(self, path: str, mode: str, **options: object) -> _FailingBody:
        self.bodies.append(_FailingBody(self.error))
        return self.bodies[-1]


def _mid_read_errors() -> list[BaseException]:
    import aiohttp
    from botocore.exceptions import ClientError, ResponseStreamingError
    from urllib3.exceptions import ProtocolError

    leak = "https://s3.example/keyong/copies/a?X-Amz-Signature=S3CR3TVALUE"  # what a raw message may carry
    return [
        ConnectionResetError(104, f"Connection reset by peer ({leak})"),
        ProtocolError(f"Connection broken: IncompleteRead ({leak})"),
        ResponseStreamingError(error=f"reset ({leak})"),
        aiohttp.ClientPayloadError(f"Response payload is not completed ({leak})"),
        ClientError(
            {"Error": {"Code": "InternalError", "Message": leak}, "ResponseMetadata": {"HTTPStatusCode": 500}},
            "GetObject",
        ),
        ClientError(
            {"Error": {"Code": "SlowDown", "Message": leak}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject"
        ),
        TimeoutError(f"read timed out ({leak})"),
    ]


@pytest.mark.parametrize("error", _mid_read_errors(), ids=lambda e: type(e).__name__)
def test_an_s3_read_failing_mid_object_is_a_storage_error(error: BaseException) -> None:
    """A connection reset or a 5xx while an object's body streams is :class:`StorageError` (callers refuse
    the copy, the output, the verification with a reason, never a traceback), naming the key and the
    bucket, never a credential or a signed URL's query."""
    storage = S3Storage("s3://keyong-data/inst", endpoint_url="http://127.0.0.1:9", key_id="AKID", secret="S3CR3TVALUE")
    fake = _FakeS3(error)
    storage._client, storage._pid = fake, os.getpid()
    with storage.open("copies/a/v1.parquet") as stream:
        assert stream.read(4) == b"PAR1"  # the first block arrives
        with pytest.raises(StorageError) as caught:
            stream.read()
    message = str(caught.value)
    assert "copies/a/v1.parquet" in message and "s3://keyong-data/inst" in message
    assert "S3CR3TVALUE" not in message and "AKID" not in message and caught.value.__cause__ is None
    assert fake.bodies[0].closed  # the body is released
    with pytest.raises(StorageError):
        storage.read("copies/a/v1.parquet")


@pytest.mark.slow
def test_an_object_replaced_or_removed_while_it_is_read_is_a_storage_error(s3_server: Any) -> None:
    """On a real S3 API: the body is fetched range by range, so a second range meets another object (its ETag
    changed) or none; both are refused as :class:`StorageError` (a removed one as ObjectMissingError)."""
    storage = s3_server.storage(f"mid-{uuid.uuid4().hex[:12]}")
    size = PART_SIZE + 3 * (1 << 20)  # more than one range
    for change, expected in (("replaced", "replaced while it was being read"), ("removed", "no object")):
        storage.put("copies/a/v1.parquet", b"a" * size)
        with storage.open("copies/a/v1.parquet") as stream:
            assert stream.read(1 << 20) == b"a" * (1 << 20)
            storage.delete("copies/a/v1.parquet")
            if change == "replaced":
                storage.put("copies/a/v1.parquet", b"b" * size)
            with pytest.raises(StorageError, match=expected):
                while stream.read(1 << 20):
                    pass
        storage.delete("copies/a/v1.parquet")


def test_a_forked_process_uses_the_same_storage(storage: Storage) -> None:
    """The sandbox forks job processes; the S3 client (an event loop in a thread) is rebuilt in the child."""
    storage.put("copies/f/parent.txt", b"from the parent")
    pid = os.fork()
    if pid == 0:  # the child: read what the parent wrote, write its own object, report by exit code
        code = 1
        try:
            ok = storage.read("copies/f/parent.txt") == b"from the parent"
            storage.put("work/f/child.txt", b"from the child")
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert storage.read("work/f/child.txt") == b"from the child"


class _RacedS3:
    """Stands in for the s3fs client of a multipart writer whose complete was accepted by a store that
    checks ``If-None-Match`` without a lock, and then replaced by a racing writer's complete."""

    def __init__(self, completed_etag: str | None, stored_etag: str) -> None:
        self.completed_etag, self.stored_etag = completed_etag, stored_etag
        self.calls: list[str] = []

    def call_s3(self, method: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(method)
        if method == "create_multipart_upload":
            return {"UploadId": "u1"}
        if method == "upload_part":
            return {"ETag": f'"p{kwargs["PartNumber"]}"'}
        if method == "complete_multipart_upload":
            assert kwargs["IfNoneMatch"] == "*"
            return {"ETag": self.completed_etag} if self.completed_etag else {}
        if method == "head_object":
            return {"ETag": self.stored_etag}
        return {}


@pytest.mark.parametrize(
    ("completed", "stored", "outcome"),
    [('"ours-2"', '"ours-2"', None), ('"ours-2"', '"theirs-2"', ObjectExistsError), (None, '"x"', StorageError)],
    ids=["still-ours", "replaced-by-a-racer", "no-etag"],
)
def test_a_multipart_writer_whose_object_was_replaced_is_told_it_lost(
    monkeypatch: pytest.MonkeyPatch, completed: str | None, stored: str, outcome: type[Exception] | None
) -> None:
    """Red team 19's racing multipart writers (CI of 9c2a16d: both told they created the key on SeaweedFS):
    the writer reads the completed object's ETag back, and a writer that finds another writer's object is
    refused as the loser of the race, never told it created the key."""
    import core.storage_s3

    monkeypatch.setattr(core.storage_s3, "COMPLETE_SETTLE_SECONDS", 0.0)
    storage = S3Storage("s3://keyong-data/inst", endpoint_url="http://127.0.0.1:9", key_id="AKID", secret="S3CR3T")
    fake = _RacedS3(completed, stored)
    storage._client, storage._pid = fake, os.getpid()
    body = b"z" * (PART_SIZE + 10)
    if outcome is None:
        assert storage.put("work/op/big", body).size == len(body)
    else:
        with pytest.raises(outcome, match="work/op/big"):
            storage.put("work/op/big", body)
    assert ("head_object" in fake.calls) == (completed is not None), "read back after a complete that named its ETag"
