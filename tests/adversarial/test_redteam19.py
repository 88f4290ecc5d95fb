"""Red team 19: the several-machines defences of issue 19 (object storage, workers, sweeper, published
ledger), attacked from the code, docs/operations.md and DESIGN.md (without reading the builders' tests).

A test that fails on the merged code is a finding (FINDINGS_redteam19.md: severity, where, fix); one that
passes is a defence that held. S3 attacks run against the session's real S3 server (SeaweedFS with the
role identities of core.storage_roles) and skip, saying why, where none is installed.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core import LocalStorage
from core.storage import ObjectExistsError, StorageError
from core.storage_sweep import SweepRefusedError, referenced_keys, sweep

pytestmark = pytest.mark.attack

LATER = datetime.now(UTC) + timedelta(days=30)


# --- local storage: symlinks placed in the home -------------------------------------------------------------


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_bytes(b"not keyong's to delete")
    return outside


def _linked_home(tmp_path: Path, link: str) -> tuple[Path, LocalStorage]:
    """A directory outside the home holding ``precious.txt``, and a home whose ``link`` is a symlink to it."""
    outside = _outside(tmp_path)
    home = tmp_path / "home"
    (home / link).parent.mkdir(parents=True, exist_ok=True)
    (home / link).symlink_to(outside, target_is_directory=True)
    return outside, LocalStorage(home)


def test_sweeper_does_not_delete_outside_the_home_through_a_symlinked_prefix(tmp_path: Path) -> None:
    """A symlink placed in the home (``copies`` -> a directory elsewhere) must not let the sweeper list and
    delete files outside the storage root: the listing follows it and the delete removes the real file."""
    outside, storage = _linked_home(tmp_path, "copies")
    sweep(storage, prefixes=["copies"], referenced=[], now=LATER)
    assert (outside / "precious.txt").exists(), "the sweeper deleted a file outside the storage root"


def test_sweeper_does_not_delete_outside_the_home_through_a_symlinked_subdirectory(tmp_path: Path) -> None:
    outside, storage = _linked_home(tmp_path, "work/op")
    with contextlib.suppress(StorageError):
        sweep(storage, prefixes=["work"], referenced=[], now=LATER)
    assert (outside / "precious.txt").exists(), "the sweeper deleted a file outside the storage root"


def test_forged_key_cannot_read_outside_the_home_through_a_symlink(tmp_path: Path) -> None:
    """A forged row naming ``copies/ds/precious.txt`` where ``copies/ds`` is a symlink placed in the home
    must not read a file outside the root (the brief's 'symlinks placed in the home')."""
    _, storage = _linked_home(tmp_path, "copies/ds")
    with pytest.raises(StorageError):
        storage.read("copies/ds/precious.txt")


def test_forged_key_cannot_delete_outside_the_home_through_a_symlink(tmp_path: Path) -> None:
    outside, storage = _linked_home(tmp_path, "copies/ds")
    with contextlib.suppress(StorageError):
        storage.delete("copies/ds/precious.txt")
    assert (outside / "precious.txt").exists(), "delete() removed a file outside the storage root"


def test_put_cannot_write_outside_the_home_through_a_symlink(tmp_path: Path) -> None:
    outside, storage = _linked_home(tmp_path, "work/op")
    with contextlib.suppress(StorageError):
        storage.put("work/op/planted.txt", b"x")
    assert not (outside / "planted.txt").exists(), "put() wrote a file outside the storage root"


def test_local_stage_does_not_write_through_a_symlink_left_at_the_target(tmp_path: Path) -> None:
    """A poisoned cache: an earlier run left a symlink where ``stage`` writes. S3Storage.stage unlinks the
    target and creates it O_EXCL; LocalStorage.stage opens it with ``open(target, 'wb')``, following the
    link, overwriting (and chmod-ing) the file it points to."""
    outside = _outside(tmp_path)
    storage = LocalStorage(tmp_path / "home")
    obj = storage.put("copies/ds/v1.parquet", b"copy bytes")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "entry").symlink_to(outside / "precious.txt")
    with contextlib.suppress(StorageError, OSError):
        storage.stage("copies/ds/v1.parquet", cache / "entry", sha256=obj.sha256)
    assert (outside / "precious.txt").read_bytes() == b"not keyong's to delete", "stage wrote through a symlink"


# --- create-only: keys spelled differently, long keys ---------------------------------------------------------


def test_create_only_second_writer_loses_and_first_object_stays(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "home")
    storage.put("copies/ds/v1.parquet", b"first")
    with pytest.raises(ObjectExistsError):
        storage.put("copies/ds/v1.parquet", b"second")
    assert storage.read("copies/ds/v1.parquet") == b"first"


@pytest.mark.parametrize(
    "spelling",
    [
        "./copies/ds/v1.parquet",
        "copies/ds/v1.parquet/",
        "copies//ds/v1.parquet",
        "copies/ds/./v1.parquet",
        "copies/x/../ds/v1.parquet",
        "/copies/ds/v1.parquet",
        "copies\\ds\\v1.parquet",
        "copies/ds/v1.parquet\x00",
    ],
)
def test_a_key_spelled_differently_is_refused_not_aliased(tmp_path: Path, spelling: str) -> None:
    storage = LocalStorage(tmp_path / "home")
    storage.put("copies/ds/v1.parquet", b"first")
    with pytest.raises(StorageError):
        storage.put(spelling, b"second")
    assert storage.read("copies/ds/v1.parquet") == b"first"


def test_a_very_long_key_is_a_storage_error_not_an_os_error(tmp_path: Path) -> None:
    """A segment longer than the file system allows (or one that fits but whose temporary ``.name.hex.part``
    does not) must be refused as a StorageError (the callers catch those), not leak an OSError."""
    storage = LocalStorage(tmp_path / "home")
    for length in (240, 300):
        with pytest.raises(StorageError):
            storage.put(f"work/{'a' * length}", b"x")


def test_a_part_suffixed_key_is_not_invisible_to_the_listing(tmp_path: Path) -> None:
    """An object whose key ends in ``.part`` can be written but is skipped by ``list``: the sweeper never
    sees it (and a regulator's DirectoryStore never reports it as unexpected)."""
    storage = LocalStorage(tmp_path / "home")
    try:
        storage.put("work/op/hidden.part", b"x" * 10)
    except StorageError:
        return  # refused: fine
    assert [i.key for i in storage.list("work")] == ["work/op/hidden.part"]


# --- the sweeper: fail closed ---------------------------------------------------------------------------------


class _Failing:
    def storage_keys(self) -> Any:
        yield "copies/ds/v1.parquet"
        raise RuntimeError("database went away")


def test_sweeper_deletes_nothing_when_a_provider_fails_midway(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "home")
    storage.put("copies/ds/v1.parquet", b"a")
    storage.put("copies/ds/v2.parquet", b"b")
    with pytest.raises(SweepRefusedError):
        sweep(storage, prefixes=["copies"], referenced=referenced_keys([_Failing()]), now=LATER)
    assert storage.exists("copies/ds/v2.parquet")


def test_sweeper_refuses_prefix_tricks(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "home")
    for prefix in ("..", "", "/", "copies/..", "."):
        with pytest.raises(StorageError):
            sweep(storage, prefixes=[prefix], referenced=[], now=LATER)


# --- S3: the role credentials against the object store itself -------------------------------------------------


@pytest.fixture
def roles(s3_server: Any) -> Any:
    """The roles bucket on SeaweedFS (role identities from core.storage_roles), and a fresh job key."""
    if s3_server.kind != "seaweedfs" or not s3_server.roles:
        pytest.skip("role identities need SeaweedFS")
    from tests.s3_support import ROLES_BUCKET, ROLES_PREFIX

    admin = s3_server.storage(ROLES_PREFIX, s3_server.admin, bucket=ROLES_BUCKET)
    return s3_server, admin, ROLES_BUCKET, ROLES_PREFIX, f"work/op/1/jobs/{uuid.uuid4().hex[:8]}/1/out/result.csv"


@pytest.mark.xfail(
    strict=True,
    reason="fix19: SeaweedFS 4.48 cannot refuse an overwrite to a key that may create objects (identity actions are "
    "Read/Write/List/Tagging/Admin, Write = put+delete; its bucket-policy engine does not evaluate s3:if-none-match). "
    "AWS refuses it (core.storage_roles.aws_policies: Deny PutObject without If-None-Match); on SeaweedFS the "
    "overwrite is caught by the SHA-256 checks at release/fetch/read (docs/operations.md 12.3)",
)
def test_worker_credentials_cannot_overwrite_another_jobs_output(roles: Any) -> None:
    """Create-only is a header the *client* sends (If-None-Match: *): a worker credential (a stolen one, or
    a compromised worker host) that simply omits it replaces another job's committed output in place."""
    server, admin, bucket, prefix, key = roles
    admin.put(key, b"the job's judged output")
    worker = server.role_storage("worker")
    with contextlib.suppress(Exception):
        worker._fs.call_s3("put_object", Bucket=bucket, Key=f"{prefix}/{key}", Body=b"forged")
    assert admin.read(key) == b"the job's judged output", "a worker credential overwrote a committed object"


def test_worker_credentials_cannot_delete_another_jobs_output(roles: Any) -> None:
    """core/storage_roles.py says workers never delete (the AWS policy omits s3:DeleteObject) but the
    SeaweedFS identities it renders give ``Write`` on work/, which includes DELETE."""
    server, admin, _bucket, _prefix, key = roles
    admin.put(key, b"the job's judged output")
    worker = server.role_storage("worker")
    with contextlib.suppress(StorageError):
        worker.delete(key)
    assert admin.exists(key), "a worker credential deleted a committed job output"


def test_worker_credentials_cannot_read_or_list_the_vault_or_secrets(roles: Any) -> None:
    server, admin, bucket, prefix, _ = roles
    admin.put(f"vault/ds{uuid.uuid4().hex[:6]}/v1.parquet", b"RAW")
    admin.put(f"secrets/k{uuid.uuid4().hex[:6]}", b"KEY")
    worker = server.role_storage("worker")
    for top in ("vault", "secrets", "ledger"):
        with pytest.raises(StorageError):
            list(worker.list(top))
    fs = worker._fs
    for raw in (f"{prefix}/", "", f"{prefix}/v", f"{prefix}/s"):
        with pytest.raises(OSError):
            fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=raw)


@pytest.mark.parametrize(
    "spelling",
    [
        "{p}/copies/../vault/{k}",
        "{p}/work/../vault/{k}",
        "{p}//vault/{k}",
        "{p}/./vault/{k}",
        "{p}/copies/%2e%2e/vault/{k}",
    ],
)
def test_worker_credentials_cannot_reach_the_vault_by_a_dotted_key(roles: Any, spelling: str) -> None:
    """Path tricks in the raw S3 key (the server normalises some): the policy check and the object looked up
    must agree."""
    server, admin, bucket, prefix, _ = roles
    name = f"ds{uuid.uuid4().hex[:6]}/v1.parquet"
    admin.put(f"vault/{name}", b"RAW")
    fs = server.role_storage("worker")._fs
    try:
        got = fs.call_s3("get_object", Bucket=bucket, Key=spelling.format(p=prefix, k=name))["Body"].read()
    except Exception:
        got = None
    assert got != b"RAW"
    with contextlib.suppress(Exception):
        fs.call_s3("put_object", Bucket=bucket, Key=spelling.format(p=prefix, k=name), Body=b"EVIL")
    assert admin.read(f"vault/{name}") == b"RAW"


def test_worker_credentials_cannot_copy_the_vault_into_work(roles: Any) -> None:
    server, admin, bucket, prefix, _ = roles
    name = f"ds{uuid.uuid4().hex[:6]}/v1.parquet"
    admin.put(f"vault/{name}", b"RAW")
    fs = server.role_storage("worker")._fs
    stolen = f"work/stolen-{uuid.uuid4().hex[:6]}"
    with contextlib.suppress(Exception):
        fs.call_s3(
            "copy_object",
            Bucket=bucket,
            Key=f"{prefix}/{stolen}",
            CopySource={"Bucket": bucket, "Key": f"{prefix}/vault/{name}"},
        )
    assert not admin.exists(stolen)


def test_server_credentials_cannot_overwrite_a_published_checkpoint(roles: Any) -> None:
    """docs/operations.md 12.5: objects under ledger/ are written create-only. The server role's ``Write``
    on ledger/ lets any API node (not only the signer) replace a published checkpoint in place."""
    server, admin, bucket, prefix, _ = roles
    key = f"ledger/checkpoints/{uuid.uuid4().int % 10**9}"
    admin.put(key, b"the signed note")
    fs = server.role_storage("server")._fs
    with contextlib.suppress(Exception):
        fs.call_s3("put_object", Bucket=bucket, Key=f"{prefix}/{key}", Body=b"a rewritten note")
    assert admin.read(key) == b"the signed note", "server credentials replaced a published checkpoint"


def test_storage_errors_never_print_an_endpoint_secret() -> None:
    """Credentials in the endpoint URL (``http://id:secret@host``) are refused in the storage URL but not in
    the endpoint: every error message and the repr name the endpoint verbatim."""
    from core.storage_s3 import S3Storage

    storage = S3Storage("s3://keyong-x/p", endpoint_url="http://AKIDEXAMPLE:TOPSECRETVALUE@127.0.0.1:9", retries=1)
    assert "TOPSECRETVALUE" not in repr(storage)
    try:
        storage.exists("copies/a")
    except Exception as exc:
        assert "TOPSECRETVALUE" not in str(exc)


def test_file_storage_url_errors_never_print_user_info(tmp_path: Path) -> None:
    from core.storage_urls import open_storage

    with pytest.raises(StorageError) as caught:
        open_storage("file://user:TOPSECRETVALUE@localhost/elsewhere", home=tmp_path)
    assert "TOPSECRETVALUE" not in str(caught.value)


# --- staging: a worker's copies against the database's record --------------------------------------------------


class _Remote(LocalStorage):
    """A LocalStorage that says it is not on this file system (as S3Storage): the worker must stage."""

    def local_path(self, key: str) -> Path | None:
        return None


def _stager(tmp_path: Path, recorded: dict[str, str]) -> Any:
    from sandbox.copy_cache import CopyStager

    storage = _Remote(tmp_path / "bucket")
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    return storage, CopyStager(storage, None, cache, lambda name, spec: recorded.get(str(spec["path"])))


def _open(stager: Any, key: str) -> bytes:
    from contextlib import ExitStack

    with ExitStack() as stack:
        opened = stager.open(stack, {"ds": {"path": key, "version": 1}})
        return opened["ds"].read_bytes()


def test_worker_refuses_a_swapped_object(tmp_path: Path) -> None:
    import hashlib

    from sandbox.copy_cache import CopyUnreadableError

    recorded = {"copies/ds/v1.parquet": hashlib.sha256(b"version one").hexdigest()}
    storage, stager = _stager(tmp_path, recorded)
    storage.put("copies/ds/v1.parquet", b"version two")  # another version's bytes under v1's key
    with pytest.raises(CopyUnreadableError):
        _open(stager, "copies/ds/v1.parquet")


def test_worker_drops_a_poisoned_cache_file_and_restages(tmp_path: Path) -> None:
    import hashlib

    digest = hashlib.sha256(b"version one").hexdigest()
    storage, stager = _stager(tmp_path, {"copies/ds/v1.parquet": digest})
    storage.put("copies/ds/v1.parquet", b"version one")
    (tmp_path / "cache" / "copies").mkdir(parents=True)
    (tmp_path / "cache" / "copies" / f"{digest}.sealed").write_bytes(b"poison left by an earlier run")
    assert _open(stager, "copies/ds/v1.parquet") == b"version one"


def test_worker_survives_a_poisoned_cache_entry_that_is_not_a_file(tmp_path: Path) -> None:
    """A directory (or a dangling symlink) left under the digest's name: ``_cached`` sees no file, stages,
    its link fails with EEXIST (suppressed) and it returns the directory; every job on that copy then fails
    on this host until someone cleans the cache by hand (a persistent denial of service)."""
    import hashlib

    digest = hashlib.sha256(b"version one").hexdigest()
    storage, stager = _stager(tmp_path, {"copies/ds/v1.parquet": digest})
    storage.put("copies/ds/v1.parquet", b"version one")
    (tmp_path / "cache" / "copies" / f"{digest}.sealed").mkdir(parents=True)
    assert _open(stager, "copies/ds/v1.parquet") == b"version one"


def test_worker_does_not_follow_a_cache_symlink_out_of_its_cache(tmp_path: Path) -> None:
    """A symlink left under the digest's name pointing at a file elsewhere with the right bytes is read (the
    bytes check out) -- but one pointing at a file with other bytes must not get that file deleted."""
    import hashlib

    digest = hashlib.sha256(b"version one").hexdigest()
    storage, stager = _stager(tmp_path, {"copies/ds/v1.parquet": digest})
    storage.put("copies/ds/v1.parquet", b"version one")
    outside = _outside(tmp_path)
    (tmp_path / "cache" / "copies").mkdir(parents=True)
    (tmp_path / "cache" / "copies" / f"{digest}.sealed").symlink_to(outside / "precious.txt")
    assert _open(stager, "copies/ds/v1.parquet") == b"version one"
    assert (outside / "precious.txt").exists()


def test_worker_with_no_recorded_digest_refuses(tmp_path: Path) -> None:
    from sandbox.copy_cache import CopyUnreadableError

    storage, stager = _stager(tmp_path, {})
    storage.put("copies/ds/v1.parquet", b"anything")
    with pytest.raises(CopyUnreadableError):
        _open(stager, "copies/ds/v1.parquet")


def test_worker_refuses_a_truncated_object(tmp_path: Path) -> None:
    import hashlib

    from sandbox.copy_cache import CopyUnreadableError

    storage, stager = _stager(tmp_path, {"copies/ds/v1.parquet": hashlib.sha256(b"version one").hexdigest()})
    storage.put("copies/ds/v1.parquet", b"version")
    with pytest.raises(CopyUnreadableError):
        _open(stager, "copies/ds/v1.parquet")


# --- the published ledger: a regulator verifying from the bucket alone --------------------------------------


def _published(tmp_path: Path, *, sizes: int = 2) -> tuple[Any, Any, Any, Path]:
    """A ledger on SQLite with ``sizes`` checkpoints (3 entries each), published to a local bucket."""
    import shutil

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sqlalchemy import create_engine

    from ledger import Ledger, metadata
    from ledger.published import LedgerPublisher

    db = tmp_path / "ledger.db"
    engine = create_engine(f"sqlite:///{db}")
    metadata.create_all(engine)
    key = Ed25519PrivateKey.generate()
    ledger = Ledger(engine, key, origin="keyong.test/redteam19", checkpoint_every=10_000)
    bucket = LocalStorage(tmp_path / "bucket")
    for round_ in range(sizes):
        for i in range(3):
            ledger.append(actor="a", role="host", action="test.event", subject=f"s{round_}-{i}")
        ledger.checkpoint()
        LedgerPublisher(engine, bucket).publish()
        if round_ == 0:
            shutil.copy(db, tmp_path / "first.db")
    shutil.copy(db, tmp_path / "copy.db")
    return ledger, key, bucket, tmp_path / "copy.db"


def _verify(bucket: Any, key: Any, **kw: Any) -> Any:
    from ledger import verify_published

    return verify_published(bucket, [key.public_key()], **kw)


def test_published_ledger_baseline_verifies(tmp_path: Path) -> None:
    _, key, bucket, _ = _published(tmp_path)
    report = _verify(bucket, key)
    assert report.ok, report.problems


def test_published_checkpoint_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    """The same entries checkpointed by a log with another key; its checkpoint objects replace ours."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sqlalchemy import create_engine

    from ledger import Ledger
    from ledger.published import LedgerPublisher, checkpoint_json_key, checkpoint_note_key

    _ledger, key, bucket, copy = _published(tmp_path)
    rogue_engine = create_engine(f"sqlite:///{copy}")
    rogue = Ledger(rogue_engine, Ed25519PrivateKey.generate(), origin="keyong.test/redteam19", checkpoint_every=10_000)
    rogue.append(actor="a", role="host", action="test.event", subject="forged")
    rogue.checkpoint()
    other = LocalStorage(tmp_path / "other")
    LedgerPublisher(rogue_engine, other).publish()
    size = max(int(i.key.rsplit("/", 1)[1]) for i in other.list("ledger/checkpoints") if i.key[-1].isdigit())
    for item in other.list("ledger"):
        if not bucket.exists(item.key):
            bucket.put(item.key, other.read(item.key))
    assert bucket.exists(checkpoint_note_key(size)) and bucket.exists(checkpoint_json_key(size))
    assert not _verify(bucket, key).ok


def test_rollback_behind_the_trusted_checkpoint_is_refused_by_the_cli(tmp_path: Path) -> None:
    """A regulator keeps --state; the bucket is then rolled back to the first checkpoint (the later one, its
    entries and tiles removed, the earlier tiles rebuilt): verify-published must exit 1."""
    from typer.testing import CliRunner

    from app.cli import cli
    from ledger.checkpoints import public_key_hex
    from ledger.published import LedgerPublisher

    _ledger, key, bucket, _copy = _published(tmp_path)
    state = tmp_path / "trusted.json"
    runner = CliRunner()
    args = [
        "ledger",
        "verify-published",
        "--storage-url",
        str(bucket.root),
        "--public-key",
        public_key_hex(key.public_key()),
        "--state",
        str(state),
        "--json",
    ]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    # the rollback: a bucket republished from the database as it stood at the first checkpoint
    from sqlalchemy import create_engine

    rolled = LocalStorage(tmp_path / "rolled")
    engine = create_engine(f"sqlite:///{tmp_path / 'first.db'}")
    LedgerPublisher(engine, rolled).publish()
    from ledger import verify_published

    alone = verify_published(rolled, [key.public_key()])
    assert alone.ok and alone.entries == 3, alone.problems  # a well-formed, shorter log: only --state sees it
    args[3] = str(rolled.root)
    second = runner.invoke(cli, args)
    assert second.exit_code != 0, second.output
    assert "trusted" in second.output, second.output


def test_cosignature_copied_from_another_checkpoint_does_not_count(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.note import KEY_TYPE_COSIGNATURE_V1, Verifier, WitnessPolicy, cosign, open_note
    from ledger.published import checkpoint_note_key, cosignature_key

    _ledger, key, bucket, _ = _published(tmp_path)
    witness = Ed25519PrivateKey.generate()
    verifier = Verifier.from_public_key("witness.example", witness.public_key(), KEY_TYPE_COSIGNATURE_V1)
    log = Verifier.from_public_key("keyong.test/redteam19", key.public_key())
    body3, _ = open_note(bucket.read(checkpoint_note_key(3)).decode(), [log])
    line = cosign(body3, "witness.example", witness, 1_700_000_000)
    bucket.put(cosignature_key(3, line), line.encode())
    bucket.put(cosignature_key(6, line), line.encode())  # the same line, filed under the later checkpoint
    policy = WitnessPolicy.parse(f"witness w {verifier.vkey}\nquorum 1\n")
    report = _verify(bucket, key, policy=policy)
    assert report.witnessed is None or report.witnessed["tree_size"] == 3
    assert not report.ok


# --- racing writers -------------------------------------------------------------------------------------------


def _race(storage: Any, key: str, payloads: list[bytes]) -> list[bytes]:
    """Every payload put to ``key`` at once; the payloads whose put succeeded."""
    import threading

    won: list[bytes] = []
    start = threading.Barrier(len(payloads))

    def write(data: bytes) -> None:
        start.wait()
        try:
            storage.put(key, data)
        except ObjectExistsError:
            return
        won.append(data)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return won


def test_racing_local_writers_one_wins_and_its_bytes_stay(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "home")
    for round_ in range(20):
        key = f"work/op/race-{round_}"
        won = _race(storage, key, [bytes([i]) * 4096 for i in range(8)])
        assert len(won) == 1 and storage.read(key) == won[0]


def test_racing_s3_writers_one_wins_and_its_bytes_stay(s3_server: Any) -> None:
    storage = s3_server.storage(f"rt19-{uuid.uuid4().hex[:10]}")
    for round_ in range(10):
        key = f"work/op/race-{round_}"
        won = _race(storage, key, [bytes([i]) * 4096 for i in range(6)])
        assert len(won) == 1, f"{len(won)} writers were told they created {key}"
        assert storage.read(key) == won[0]


def test_racing_s3_multipart_writers_one_wins_and_its_bytes_stay(s3_server: Any) -> None:
    from core.storage_s3 import PART_SIZE

    storage = s3_server.storage(f"rt19-{uuid.uuid4().hex[:10]}")
    key = "work/op/big"
    size = PART_SIZE + 1024
    won = _race(storage, key, [bytes([i]) * size for i in range(2)])
    assert len(won) == 1, f"{len(won)} multipart writers were told they created {key}"
    assert storage.read(key) == won[0]


# --- forged rows: an absolute path in a row is read as a local file of the server ----------------------------


def test_a_forged_artifact_path_cannot_make_the_server_read_its_own_vault_key(instance: Any, tmp_path: Path) -> None:
    """``products.artifacts[].path`` (and ``jobs.outputs[].path``) are storage keys, but
    ``sandbox/stored_files.plain_chunks`` (now ``AtRest.artifact_chunks``) read an *absolute* one as a local file,
    and ``AtRest.chunks`` passes an unsealed file through in clear. ``Releases._stamped`` (product fetch) calls
    ``write_plain`` on the row's path with no SHA-256 check, so a row rewritten by anyone with database access (a
    worker host holds the database URL) delivers the server's ``secrets/vault.key`` to the operator who fetches that
    product."""
    from sandbox.stored_files import stored_at_rest, write_plain

    vault_key = instance.home / "secrets" / "vault.key"
    assert vault_key.is_file()
    at_rest = stored_at_rest(instance.registry.recorder, instance.registry.config)
    target = tmp_path / "delivered.csv"
    try:
        write_plain(at_rest, str(vault_key), target)
    except Exception:
        return  # refused: the defence holds
    assert target.read_bytes() != vault_key.read_bytes(), "the server delivered its own vault key"
