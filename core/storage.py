"""One storage interface for every artifact: the vault, copies, fingerprints, job outputs, products, ledger exports.

Why (issue 19; DESIGN.md, Storage and Scale-out): a province that outgrows one machine adds workers
on other hosts that share nothing but PostgreSQL and an object store. So no module opens a home path
for an artifact directly: it asks a :class:`Storage` for an object by *key*, the same relative POSIX
path the database already records (``copies/citizens/v2.parquet``). The embedded default,
:class:`LocalStorage`, keeps objects under the instance home, where they have always been; the
S3 backend (``KEYONG_STORAGE_URL=s3://bucket/prefix``) keeps them in a bucket.

Object-store semantics on both backends, so code written against the local one holds on S3:

* an object is written once, with a *create-only* put (``If-None-Match: *`` on S3, ``link(2)`` of a
  finished temporary file here): a second writer to the same key gets :class:`ObjectExistsError` and
  the first object stays whole. Keys are unique or content-addressed; nothing is renamed or
  rewritten in place;
* the object is written *before* the database row that refers to it is committed, so a row never
  names a missing object; an object no row names (its writer died before the commit) is removed by
  the sweeper after a grace period (:func:`core.storage_sweep.sweep`);
* a reader that needs a local file (a sandbox mount, DuckDB, pyarrow) *stages* the object into a
  local directory and checks its SHA-256 against what the database recorded before using it
  (:meth:`Storage.stage`): a swapped or corrupted object is refused, never mounted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, runtime_checkable

from core.errors import RegistryError

__all__ = [
    "KEY_PATTERN",
    "LocalStorage",
    "ObjectExistsError",
    "ObjectInfo",
    "ObjectMissingError",
    "StagedObjectMismatchError",
    "Storage",
    "StorageError",
    "StoredObject",
    "check_key",
    "verify_staged",
]

BLOCK = 1 << 20
#: One key segment: letters, digits and ``._-=+@`` (no spaces, no ``..``); Chinese dataset names are
#: allowed too, as the home has always held them. Segments are joined by ``/``.
KEY_PATTERN = re.compile(r"^[\w.=+@-]+$")


class StorageError(RegistryError):
    """An object could not be written or read; the message names the key and the backend."""


class ObjectExistsError(StorageError):
    """A create-only put found the key taken: the other writer's object stays, this write is refused."""


class ObjectMissingError(StorageError):
    """No object under the key (never written, or swept/destroyed)."""


class StagedObjectMismatchError(StorageError):
    """A staged object's SHA-256 differs from the database's record: it is not used (fail closed)."""


@dataclass(frozen=True)
class StoredObject:
    """What a put wrote: the key, the SHA-256 of the bytes and their size (the row records these)."""

    key: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: the sweeper judges age by ``modified``."""

    key: str
    size: int
    modified: datetime


def check_key(key: str) -> str:
    """The key itself, or :class:`StorageError`: relative, ``/``-separated, no empty, ``.`` or ``..`` segment.

    Keys come from database rows and from code, never straight from a request; the check still
    stands so that a forged row cannot make a backend read or write outside its root or prefix.
    """
    if not isinstance(key, str) or not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise StorageError(f"not a storage key: {key!r}")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not KEY_PATTERN.match(part):
            raise StorageError(f"not a storage key: {key!r} (segment {part!r})")
    return key


@runtime_checkable
class Storage(Protocol):
    """Where artifacts lie. Keys are relative POSIX paths (:func:`check_key`)."""

    @property
    def url(self) -> str:
        """Where this storage points, for messages and ``keyong status`` (no credentials in it)."""
        ...

    def put(self, key: str, data: bytes | Path | BinaryIO) -> StoredObject:
        """Write a new object, create-only; :class:`ObjectExistsError` when the key is taken."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A binary stream of the object's bytes (close it); :class:`ObjectMissingError` when absent."""
        ...

    def read(self, key: str) -> bytes:
        """The object's bytes, whole (small objects: reports, notes, checkpoints)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove an object (the sweeper, retention, crypto-shredding's clean-up); absent is not an error."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` + ``/`` (recursive)."""
        ...

    def stage(self, key: str, target: Path, *, sha256: str | None) -> Path:
        """The object as a local file at ``target`` (mode 0600), its SHA-256 checked against ``sha256``.

        ``sha256=None`` skips the check only where no digest was ever recorded (legacy rows); callers
        that have one must pass it. A mismatch removes the staged file and raises
        :class:`StagedObjectMismatchError`.
        """
        ...

    def local_path(self, key: str) -> Path | None:
        """The object's own file when this backend keeps objects on the local file system, else ``None``.

        Lets the embedded instance mount a copy without staging it; the caller must still treat the
        file as read-only (never write through it: that would be an in-place update).
        """
        ...


def _digest_stream(stream: BinaryIO, out: BinaryIO | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(BLOCK):
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    return digest.hexdigest(), size


@contextlib.contextmanager
def _source(data: bytes | Path | BinaryIO) -> Iterator[BinaryIO]:
    if isinstance(data, bytes | bytearray | memoryview):
        import io

        yield io.BytesIO(bytes(data))
    elif isinstance(data, Path):
        with open(data, "rb") as stream:
            yield stream
    else:
        yield data


def verify_staged(path: Path, key: str, sha256: str | None, url: str) -> Path:
    """``path`` when its SHA-256 is ``sha256`` (or none was recorded); else removed and refused."""
    if sha256 is None:
        return path
    with open(path, "rb") as stream:
        got, _ = _digest_stream(stream, None)
    if got != sha256:
        path.unlink(missing_ok=True)
        raise StagedObjectMismatchError(
            f"{key} in {url} has SHA-256 {got}, but the database recorded {sha256}: "
            "the object was altered or swapped; it is not used"
        )
    return path


class LocalStorage:
    """Objects as files under a root directory (the instance home): the embedded default."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def url(self) -> str:
        return self.root.resolve().as_uri()

    def _path(self, key: str) -> Path:
        return self.root / PurePosixPath(check_key(key))

    def put(self, key: str, data: bytes | Path | BinaryIO) -> StoredObject:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if final.exists():
            raise ObjectExistsError(f"{key} already exists in {self.url}: objects are written once")
        temporary = final.with_name(f".{final.name}.{secrets.token_hex(6)}.part")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out, _source(data) as stream:
                sha256, size = _digest_stream(stream, out)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, final)  # atomic and create-only: never replaces another writer's object
            except FileExistsError:
                raise ObjectExistsError(f"{key} already exists in {self.url}: objects are written once") from None
        finally:
            temporary.unlink(missing_ok=True)
        return StoredObject(key, sha256, size)

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise ObjectMissingError(f"no object {key} in {self.url}") from None

    def read(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self._path(prefix)
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.name.endswith(".part"):
                continue
            stat = path.stat()
            key = path.relative_to(self.root).as_posix()
            yield ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def stage(self, key: str, target: Path, *, sha256: str | None) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self.open(key) as stream, open(target, "wb") as out:
            os.chmod(target, 0o600)
            shutil.copyfileobj(stream, out, BLOCK)
        return verify_staged(target, key, sha256, self.url)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)
