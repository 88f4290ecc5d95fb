"""A worker's granted copies: staged from the storage into its own cache, checked against the database.

Why (issue 19; DESIGN.md, Scale-out): a worker on another host shares nothing with the server but
PostgreSQL and the object store. It stages each granted copy (the *sealed* object, as the storage keeps
it) into its local cache (``KEYONG_WORKER_CACHE``, never shared), and decrypts it into the run's private
directory while hashing the plaintext. The plaintext's SHA-256 must be the one the database recorded for
that copy (``licence_copies.content_sha256``, or the version's) *before* the copy is bound into the
sandbox: a swapped object (another version's, or another dataset's sealed under a valid key) or a
corrupted cache entry is refused and the job fails closed with the reason; it never runs on it
(原始数据不出域 / 数据可用不可见, 双鸭山 第三十五条; integrity of processing, 黑龙江 第三十八条).

Cache entries are named by the recorded digest, so a later job re-uses a staged object only when its
own row records the same digest, and every use is checked again while decrypting (a cache entry altered
on the worker's disk is dropped and staged afresh once, then refused). On the embedded instance the
storage is the home (:meth:`core.Storage.local_path`): the copy is read where it lies, never duplicated,
and checked the same way (every worker, embedded or remote: no switch turns the check off). A row that
records no digest (none should: the column is NOT NULL, but a legacy or hand-made row may hold an empty
or malformed one) is refused, never mounted unchecked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

from core import ObjectMissingError, RegistryError, StagedObjectMismatchError, Storage, StorageError
from registry import is_sealed, write_checked
from registry import private_dir as registry_private_dir
from sandbox.ports import AtRestPort

__all__ = ["CopyStager", "CopyUnreadableError", "Digests", "no_record", "private_dir"]

log = logging.getLogger("keyong.worker")

BLOCK = 1 << 20
#: ``digests(dataset, spec) -> plaintext SHA-256`` the database recorded for the copy a job spec names.
Digests = Callable[[str, Mapping[str, Any]], str | None]


def no_record(dataset: str, spec: Mapping[str, Any]) -> str | None:
    """The digests of a worker with no registry to ask: none, so its copies are refused (fail closed)."""
    return None


class CopyUnreadableError(Exception):
    """A granted copy could not be opened (missing, altered, swapped, its key destroyed, or no keys):
    the job fails closed with this reason."""


def private_dir(at_rest: AtRestPort | None, prefix: str = "keyong-plain-") -> AbstractContextManager[Path]:
    """A fresh 0700 directory removed on exit: the at-rest port's, else the one :func:`registry.private_dir`
    makes (a worker without keys still stages and checks its copies somewhere nobody else reads)."""
    return at_rest.private_dir(prefix) if at_rest is not None else registry_private_dir(prefix)


class CopyStager:
    """Stages, checks and decrypts a job's granted copies (see the module docstring)."""

    def __init__(
        self,
        storage: Storage,
        at_rest: AtRestPort | None,
        cache: Path | None,
        digests: Digests | None,
    ) -> None:
        self.storage = storage
        self.at_rest = at_rest
        self.cache = cache  # None: no cache (objects staged into the run's private directory)
        # None: a bare stager with no database behind it (the guard's own sources in unit tests); a
        # ``Worker`` always has one, and refuses every copy when it cannot read a record.
        self.digests = digests

    def digest(self, name: str, spec: Mapping[str, Any]) -> str | None:
        """The plaintext SHA-256 recorded for ``name``'s copy; refused when it cannot be read or is absent."""
        if self.digests is None:
            return None
        try:
            recorded = self.digests(name, spec)
        except Exception as exc:  # fail closed: no record, no mount
            raise CopyUnreadableError(f"the recorded SHA-256 of the copy of {name} could not be read: {exc}") from None
        if not recorded:
            raise CopyUnreadableError(
                f"no SHA-256 is recorded for the copy of {name} at {spec.get('path')}: not mounted"
            )
        return recorded

    def open(self, stack: ExitStack, datasets: Mapping[str, Mapping[str, Any]]) -> dict[str, Path]:
        """Name -> the copy's checked plaintext in one private directory held open by ``stack``.

        The files are 0644 in a 0700 directory: the runner's stager hard-links them and binds them
        read-only for the sandbox uid; nobody else reaches them."""
        directory = stack.enter_context(private_dir(self.at_rest))
        opened: dict[str, Path] = {}
        for index, (name, spec) in enumerate(sorted(datasets.items())):
            key, digest = str(spec.get("path")), self.digest(name, spec)
            target = directory / f"{index}.parquet"
            try:
                opened[name] = self._open_one(key, digest, target, directory)
            except ObjectMissingError:
                raise CopyUnreadableError(f"desensitized copy missing for {name}") from None
            except CopyUnreadableError as exc:
                raise CopyUnreadableError(f"the copy of {name}: {exc}") from None
            except StagedObjectMismatchError as exc:
                raise CopyUnreadableError(f"the desensitized copy of {name} was refused: {exc}") from None
            except (StorageError, RegistryError, OSError) as exc:  # altered, its key destroyed, no master key
                raise CopyUnreadableError(f"the desensitized copy of {name} could not be opened: {exc}") from None
        return opened

    def _open_one(self, key: str, digest: str | None, target: Path, directory: Path) -> Path:
        local = self.storage.local_path(key)
        if local is not None:
            if not local.is_file():
                raise ObjectMissingError(f"no object {key} in {self.storage.url}")
            return self._plain(local, target, key, digest)
        if self.cache is None or digest is None:
            staged = self.storage.stage(key, directory / f"{target.stem}.sealed", sha256=None)
            try:
                return self._plain(staged, target, key, digest)
            finally:
                staged.unlink(missing_ok=True)
        entry = self._cached(key, digest)
        try:
            return self._plain(entry, target, key, digest)
        except (StagedObjectMismatchError, RegistryError):  # the entry (or the object) is not what the row records
            log.warning("cache entry %s for %s did not match its digest; staged afresh", entry.name, key)
            entry.unlink(missing_ok=True)
            entry = self._cached(key, digest)
            try:
                return self._plain(entry, target, key, digest)
            except (StagedObjectMismatchError, RegistryError):  # the object itself: refused, never kept for reuse
                entry.unlink(missing_ok=True)
                raise

    def _cached(self, key: str, digest: str) -> Path:
        """The sealed object in the cache under its recorded digest, staged now if absent."""
        assert self.cache is not None
        directory = self.cache / "copies"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        entry = directory / f"{digest}.sealed"
        try:
            mode = entry.lstat().st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and stat.S_ISREG(mode):
            return entry
        if mode is not None:  # a directory, symlink, FIFO... left or planted: removed, never followed (red team 19, B6)
            if stat.S_ISDIR(mode):
                shutil.rmtree(entry)
            else:
                entry.unlink()
        part = directory / f".{digest}.{secrets.token_hex(6)}.part"
        try:
            self.storage.stage(key, part, sha256=None)  # the sealed bytes; the plaintext is checked below
            with contextlib.suppress(FileExistsError):  # another job of this host staged it first: keep that one
                os.link(part, entry)
        finally:
            part.unlink(missing_ok=True)
        return entry

    def _plain(self, sealed: Path, target: Path, key: str, digest: str | None) -> Path:
        """``sealed`` decrypted to ``target`` (0644) while its plaintext is hashed; refused on a mismatch."""
        if self.at_rest is None and is_sealed(sealed):
            raise CopyUnreadableError("it is encrypted and this worker has no keys")
        chunks = self.at_rest.chunks(sealed) if self.at_rest is not None else _file_chunks(sealed)
        return write_checked(chunks, target, sha256=digest, label=f"{key} in {self.storage.url}", mode=0o644)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        while chunk := stream.read(BLOCK):
            yield chunk
