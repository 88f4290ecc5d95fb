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
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, runtime_checkable

from core.errors import RegistryError
from core.hashing import stream_sha256

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
#: Caps that hold on every backend (red team 19, B8): S3 allows 1024-byte keys; a file system 255-byte
#: names, and the local backend's temporary ``.{name}.{12 hex}.part`` must fit too.
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 200
#: The local backend's temporaries end so; no key may, so a listing can skip them without hiding an object.
TEMPORARY_SUFFIX = ".part"


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
    """The key itself, or :class:`StorageError`: relative, ``/``-separated, no empty, ``.`` or ``..`` segment,
    at most :data:`MAX_KEY_BYTES` (segments :data:`MAX_SEGMENT_BYTES`), not ending in ``.part``.

    Keys come from database rows and from code, never straight from a request; the check still
    stands so that a forged row cannot make a backend read or write outside its root or prefix.
    """
    if not isinstance(key, str) or not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise StorageError(f"not a storage key: {key!r}")
    if len(key.encode()) > MAX_KEY_BYTES or key.endswith(TEMPORARY_SUFFIX):
        raise StorageError(
            f"not a storage key: {key[:64]!r}… (over {MAX_KEY_BYTES} bytes, or ending in {TEMPORARY_SUFFIX!r})"
        )
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not KEY_PATTERN.match(part) or len(part.encode()) > MAX_SEGMENT_BYTES:
            raise StorageError(f"not a storage key: {key!r} (segment {part[:64]!r})")
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
        got, _ = stream_sha256(stream)
    if got != sha256:
        path.unlink(missing_ok=True)
        raise StagedObjectMismatchError(
            f"{key} in {url} has SHA-256 {got}, but the database recorded {sha256}: "
            "the object was altered or swapped; it is not used"
        )
    return path


class LocalStorage:
    """Objects as files under a root directory (the instance home): the embedded default.

    No symlink below the root is ever followed (red team 19, B4/B5): every key segment is opened with
    ``O_NOFOLLOW`` relative to its parent's descriptor (``openat``), so a link planted in the home (a
    restored backup, a job sandbox sharing the file system) cannot make a read, put, delete, listing or
    the sweeper reach outside the root; such a key raises :class:`StorageError`. The root itself is
    the operator's choice and may be reached through a link.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def url(self) -> str:
        return self.root.resolve().as_uri()

    def _path(self, key: str) -> Path:
        return self.root / PurePosixPath(check_key(key))

    @contextlib.contextmanager
    def _dir(self, parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the directory ``root/parts...``, every segment opened without following a link."""
        if create:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o700, dir_fd=fd)
                try:
                    child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    raise
                except OSError:  # ELOOP or ENOTDIR: a symlink or a file where a directory should be
                    raise StorageError(
                        f"{'/'.join(parts)} in {self.url} is not a plain directory (a symlink or a file): refused"
                    ) from None
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def put(self, key: str, data: bytes | Path | BinaryIO) -> StoredObject:
        *parents, name = check_key(key).split("/")
        temporary = f".{name}.{secrets.token_hex(6)}{TEMPORARY_SUFFIX}"
        with self._dir(parents, create=True) as parent:
            if _entry(parent, name) is not None:
                raise ObjectExistsError(f"{key} already exists in {self.url}: objects are written once")
            try:
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=parent)
                with os.fdopen(fd, "wb") as out, _source(data) as stream:
                    sha256, size = stream_sha256(stream, out)
                    out.flush()
                    os.fsync(out.fileno())
                try:  # atomic and create-only: never replaces another writer's object
                    os.link(temporary, name, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
                except FileExistsError:
                    raise ObjectExistsError(f"{key} already exists in {self.url}: objects are written once") from None
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary, dir_fd=parent)
        return StoredObject(key, sha256, size)

    def open(self, key: str) -> BinaryIO:
        *parents, name = check_key(key).split("/")
        try:
            with self._dir(parents) as parent:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
        except FileNotFoundError:
            raise ObjectMissingError(f"no object {key} in {self.url}") from None
        except OSError:  # ELOOP: the object itself is a symlink
            raise StorageError(f"{key} in {self.url} is not a plain file (a symlink): refused") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StorageError(f"{key} in {self.url} is not a plain file: refused")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def read(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def exists(self, key: str) -> bool:
        *parents, name = check_key(key).split("/")
        try:
            with self._dir(parents) as parent:
                found = _entry(parent, name)
        except FileNotFoundError:
            return False
        return found is not None and stat.S_ISREG(found.st_mode)

    def delete(self, key: str) -> None:
        *parents, name = check_key(key).split("/")
        try:
            with self._dir(parents) as parent:
                found = _entry(parent, name)
                if found is not None and not stat.S_ISDIR(found.st_mode):
                    os.unlink(name, dir_fd=parent)  # unlink never follows: a planted link goes, not its target
        except FileNotFoundError:
            return

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        parts = check_key(prefix).split("/")
        found: list[ObjectInfo] = []
        try:
            with self._dir(parts) as base:
                for where, _dirs, files, dir_fd in os.fwalk(".", dir_fd=base, follow_symlinks=False):
                    for name in files:
                        info = _entry(dir_fd, name)
                        if info is None or not stat.S_ISREG(info.st_mode) or name.endswith(TEMPORARY_SUFFIX):
                            continue  # symlinks, FIFOs, sockets and put's temporaries are never objects
                        rel = PurePosixPath(prefix, where, name).as_posix()
                        found.append(ObjectInfo(rel, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC)))
        except FileNotFoundError:
            return
        yield from sorted(found, key=lambda item: item.key)

    def stage(self, key: str, target: Path, *, sha256: str | None) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()  # a link or file left here is replaced, never written through (red team 19, B5)
        with self.open(key) as stream:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, BLOCK)
        return verify_staged(target, key, sha256, self.url)

    def local_path(self, key: str) -> Path | None:
        """The object's file; :class:`StorageError` when a segment on the way (or the file) is a symlink."""
        *parents, name = check_key(key).split("/")
        try:
            with self._dir(parents) as parent:
                found = _entry(parent, name)
        except FileNotFoundError:
            return self._path(key)
        if found is not None and stat.S_ISLNK(found.st_mode):
            raise StorageError(f"{key} in {self.url} is a symlink: refused")
        return self._path(key)


def _entry(dir_fd: int, name: str) -> os.stat_result | None:
    """``name``'s own status in the directory (a link is not followed), or ``None`` when absent."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
