"""The worker's side of the storage (issue 19), without a database: the copy cache by digest, the check
before a mount, the upload of an attempt, objects read back for the guard; and which opening
``keyong worker`` chooses."""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import pytest

from core import LocalStorage, ObjectExistsError, StoredObject
from registry import private_dir
from sandbox import CopyStager, CopyUnreadableError
from sandbox.attempt_files import plain_files, upload_attempt
from sandbox.copy_cache import private_dir as worker_private_dir

BODY = b"PAR1 not really a parquet PAR1"
DIGEST = hashlib.sha256(BODY).hexdigest()


class Remote(LocalStorage):
    """A directory behaving as an object store: no local paths; counts the objects staged."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.staged = 0
        self.put_keys: list[str] = []

    def local_path(self, key: str) -> Path | None:
        return None

    def stage(self, key: str, target: Path, *, sha256: str | None) -> Path:
        self.staged += 1
        return super().stage(key, target, sha256=sha256)

    def put(self, key: str, data: bytes | Path | BinaryIO) -> StoredObject:
        self.put_keys.append(key)
        return super().put(key, data)


def spec(path: str = "copies/a/v1.parquet") -> dict[str, object]:
    return {"version": 1, "path": path}


def test_a_copy_is_staged_once_by_digest_and_checked_at_every_use(tmp_path: Path) -> None:
    storage = Remote(tmp_path / "bucket")
    storage.put("copies/a/v1.parquet", BODY)
    stager = CopyStager(storage, None, tmp_path / "cache", lambda name, s: DIGEST)
    for _ in range(3):
        with ExitStack() as stack:
            opened = stager.open(stack, {"a": spec()})
            assert opened["a"].read_bytes() == BODY and oct(opened["a"].stat().st_mode & 0o777) == "0o644"
        assert not opened["a"].exists()  # the plaintext lives as long as the run
    assert storage.staged == 1
    assert [p.name for p in (tmp_path / "cache" / "copies").iterdir()] == [f"{DIGEST}.sealed"]


@pytest.mark.attack
def test_a_copy_whose_digest_differs_is_refused_and_not_cached(tmp_path: Path) -> None:
    storage = Remote(tmp_path / "bucket")
    storage.put("copies/a/v1.parquet", b"another version's bytes")
    stager = CopyStager(storage, None, tmp_path / "cache", lambda name, s: DIGEST)
    with ExitStack() as stack, pytest.raises(CopyUnreadableError, match="altered or swapped"):
        stager.open(stack, {"a": spec()})
    assert not list((tmp_path / "cache" / "copies").glob("*.sealed"))


@pytest.mark.attack
def test_no_record_or_an_unreadable_record_refuses_the_mount(tmp_path: Path) -> None:
    storage = Remote(tmp_path / "bucket")
    storage.put("copies/a/v1.parquet", BODY)

    def broken(name: str, s: object) -> str:
        raise RuntimeError("database away")

    for digests, reason in ((lambda n, s: None, "no SHA-256 is recorded"), (broken, "could not be read")):
        with ExitStack() as stack, pytest.raises(CopyUnreadableError, match=reason):
            CopyStager(storage, None, tmp_path / "cache", digests).open(stack, {"a": spec()})
    assert storage.staged == 0  # refused before anything was fetched


def test_a_keyless_worker_stages_plaintext_where_the_at_rest_layer_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker without keys and ``registry.AtRest`` share one private-directory rule (``TMPDIR``, 0700,
    removed with what it holds): plaintext lies nowhere an operator's deployment notes do not say."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmpfs"))
    (tmp_path / "tmpfs").mkdir()
    for opened in (worker_private_dir(None, "keyong-release-"), private_dir("keyong-release-")):
        with opened as directory:
            assert directory.parent == tmp_path / "tmpfs" and directory.name.startswith("keyong-release-")
            assert oct(directory.stat().st_mode & 0o777) == "0o700"
            (directory / "plain").write_bytes(BODY)
        assert not directory.exists()


def test_a_missing_object_names_the_dataset(tmp_path: Path) -> None:
    stager = CopyStager(Remote(tmp_path / "bucket"), None, tmp_path / "cache", lambda n, s: DIGEST)
    with ExitStack() as stack, pytest.raises(CopyUnreadableError, match="desensitized copy missing for a"):
        stager.open(stack, {"a": spec()})


def test_a_local_storage_is_read_in_place_and_checked_when_asked(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "home")
    storage.put("copies/a/v1.parquet", BODY)
    with ExitStack() as stack:  # worker mode: checked even on local files
        assert CopyStager(storage, None, None, lambda n, s: DIGEST).open(stack, {"a": spec()})["a"].read_bytes() == BODY
    (tmp_path / "home" / "copies" / "a" / "v1.parquet").write_bytes(b"swapped")
    with ExitStack() as stack, pytest.raises(CopyUnreadableError):
        CopyStager(storage, None, None, lambda n, s: DIGEST).open(stack, {"a": spec()})
    assert not list((tmp_path / "cache").glob("*"))  # nothing cached from a local storage


def test_an_attempt_is_uploaded_create_only_and_read_back(tmp_path: Path) -> None:
    storage = Remote(tmp_path / "bucket")
    scratch = tmp_path / "scratch"
    (scratch / "out").mkdir(parents=True)
    (scratch / "out" / "t.csv").write_text("a,n\nx,12\n", encoding="utf-8")
    (scratch / "stdout.txt").write_text("ok\n", encoding="utf-8")
    prefix = "work/acme/licence-1/jobs/7/1"
    assert upload_attempt(storage, scratch, prefix) == 2
    assert sorted(storage.put_keys) == [f"{prefix}/out/t.csv", f"{prefix}/stdout.txt"]
    with pytest.raises(ObjectExistsError):  # a second writer of the same attempt loses; the first stays
        upload_attempt(storage, scratch, prefix)
    with ExitStack() as stack:
        (plain,) = plain_files(stack, storage, None, [f"{prefix}/out/t.csv", f"{prefix}/out/gone.csv"])
        assert plain.name == "t.csv" and plain.read_text(encoding="utf-8") == "a,n\nx,12\n"
    home = LocalStorage(tmp_path / "home")
    where = tmp_path / "home" / prefix
    where.mkdir(parents=True)
    assert upload_attempt(home, where, prefix) == 0  # the embedded home: already where it belongs


def test_keyong_worker_opens_in_worker_mode_without_an_instance_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A home holding no instance (a worker's host) is opened in worker mode: it needs a database URL and
    a data master key, never a vault key."""
    from typer.testing import CliRunner

    from app.cli import cli

    monkeypatch.delenv("KEYONG_DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["worker", "--once", "--home", str(tmp_path / "worker"), "--json"])
    assert result.exit_code == 1 and "KEYONG_DATABASE_URL" in result.output
