"""Files at rest: seal a copy, fingerprints, an output or a product under its scope's data key; open them.

Why one module: every writer and reader of those files goes through :class:`AtRest`, so nothing
writes them in clear and nothing reads them without authenticating every frame (issue 22, SATRE
2.8.01; 黑龙江 第三十八条 加密). Plaintext exists only in memory, in a job's private staging
directory (``plaintext``: a fresh 0700 ``keyong-plain-`` directory removed on exit), or in a
download stream.

A file written in clear by an earlier Keyong is still read (``is_sealed`` tells them apart) until
``keyong keys encrypt-home`` seals it (:func:`registry.atrest_home.seal_home`); new files are
always sealed, and one whose name says it was written sealed (``.kyv``) is never read in clear.

Objects (issue 19): the key-based methods (:meth:`AtRest.put_object`, :meth:`AtRest.read_object`,
:meth:`AtRest.object_chunks`, :meth:`AtRest.stage_plain`) go through a :class:`core.Storage`, so a
worker on another host reads the same sealed copy from a bucket. The SHA-256 a row records, and the
one :meth:`AtRest.stage_plain` checks, is always the *plaintext's* (what rows recorded before issue
19, and what a job, a release and a product quote); the sealed bytes differ on every sealing (fresh
file id and nonces), so their digest would say nothing about the content. A swapped object is still
caught twice: it fails authentication under the data key, or its plaintext digest differs.
The Path methods serve what is a file on this host, not an object: a job's attempt directory on the
worker running it (``sandbox.attempt_files``: seal the outputs, open the logs), a worker's cache of sealed
copies (``sandbox.copy_cache``), the embedded product store's staged-and-renamed directory
(``sandbox.release_review``), ``keyong keys encrypt-home`` sealing an earlier Keyong's files in place
(:func:`registry.atrest_home.seal_home`), and a row's legacy absolute path (:meth:`artifact_chunks`).
:meth:`read` has no caller outside the tests, which read sealed home files with it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from core import Actor, Change, LocalStorage, StagedObjectMismatchError, Storage, StorageError, StoredObject, check_key
from registry.datakeys import DataKeys
from registry.vault import FRAME_SIZE, MAGIC, Sealer, VaultError, is_sealed, unseal, unseal_stream, write_sealed

#: The home directories whose files a legacy (absolute) artifact path in a row may name (red team 19, B1).
ARTIFACT_TREES = ("work", "products")

#: At most this many fsyncs issued at once by :meth:`AtRest.seal_tree` (an attempt keeps a handful of files).
_SYNC_THREADS = 8

__all__ = [
    "ARTIFACT_TREES",
    "SEALED_SUFFIX",
    "AtRest",
    "dataset_scope",
    "legacy_artifact_path",
    "licence_scope",
    "private_dir",
    "products_scope",
    "write_checked",
]


def legacy_artifact_path(home: Path, value: str) -> Path:
    """The real path of a legacy absolute artifact path (a row from before the home layout), when it is a
    file inside ``home``'s ``work/`` or ``products/``; else :class:`core.StorageError` (red team 19, B1:
    a forged row must never make a Keyong process read ``secrets/``, ``vault/`` or a file elsewhere)."""
    try:
        real = Path(value).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise StorageError("an artifact path in a row is not a storage key and names no file: refused") from None
    root = Path(home).resolve()
    if not real.is_file() or not any(real.is_relative_to(root / tree) for tree in ARTIFACT_TREES):
        raise StorageError(
            "an artifact path in a row is not a storage key and lies outside the home's work/ and products/: "
            "refused (a forged row must not make Keyong read its own files)"
        )
    return real


#: The name every file written sealed ends with (copies): one in clear by that name is refused, never read
#: as plaintext (a flipped magic byte, or a Parquet planted in clear in its place; red team of issue 22).
SEALED_SUFFIX = ".kyv"


def dataset_scope(name: str) -> str:
    return f"dataset:{name}"


def licence_scope(licence_id: int) -> str:
    return f"licence:{int(licence_id)}"


def products_scope(licence_id: int) -> str:
    return f"products:{int(licence_id)}"


@contextmanager
def private_dir(prefix: str = "keyong-plain-") -> Iterator[Path]:
    """A fresh 0700 directory under the temporary directory, removed (with what it holds) on exit.

    The one place plaintext of a sealed file may lie on a disk for a while (a job's staged copies, a
    release's re-sealing, a worker without keys alike). Put ``TMPDIR`` on a tmpfs and plaintext never
    reaches a disk (docs/operations.md).
    """
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        directory.chmod(0o700)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        while chunk := stream.read(FRAME_SIZE):
            yield chunk


def _byte_chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, max(len(view), 1), FRAME_SIZE):
        yield bytes(view[start : start + FRAME_SIZE])


def _source_chunks(data: bytes | Path) -> Iterator[bytes]:
    return _file_chunks(data) if isinstance(data, Path) else _byte_chunks(bytes(data))


def _stream_chunks(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    if head:
        yield head
    while chunk := stream.read(FRAME_SIZE):
        yield chunk


def _write_new(chunks: Iterator[bytes], target: Path, mode: int) -> Path:
    """``chunks`` written to ``target``, created new with ``mode``; removed again on any failure (a failed
    authentication half-way leaves no partial plaintext behind)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    os.chmod(target, mode)
    return target


def write_checked(chunks: Iterable[bytes], target: Path, *, sha256: str | None, label: str, mode: int = 0o600) -> Path:
    """``chunks`` written in clear at ``target`` (``mode``) while hashed; refused unless the SHA-256 is ``sha256``.

    The one check of a plaintext against the digest its row recorded, wherever plaintext is staged (an
    object for a job or the guard, a worker's cached copy, a release's artifact). The file appears at
    ``target`` whole and checked or not at all: a temporary sibling, removed on any failure (a digest that
    differs, a frame that fails authentication, a storage error), renamed into place only once it matched.
    ``sha256=None`` (a legacy row that recorded none) writes unchecked. A mismatch is
    :class:`core.StagedObjectMismatchError` naming ``label``: the object was altered or swapped.
    """
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    digest = hashlib.sha256()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if sha256 is not None and not secrets.compare_digest(got.encode(), sha256.encode("utf-8", "replace")):
            raise StagedObjectMismatchError(
                f"{label} holds plaintext with SHA-256 {got}, but the database recorded {sha256}: the object "
                "was altered or swapped; it is not used"
            )
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


class _Prefixed:
    """A stream whose first bytes were already read (the magic peek): serves them again, then the rest."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if size < 0:
            data, self._head = self._head + self._stream.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        if len(data) < size:
            data += self._stream.read(size - len(data))
        return data


class AtRest:
    """Seals and opens the instance's files at rest under their scopes' data keys.

    ``storage`` holds the objects the key-based methods write and read; ``None`` is the home itself
    (:class:`core.LocalStorage`), the embedded default, so ``AtRest(keys, home)`` works as before.
    """

    def __init__(self, keys: DataKeys, home: Path, storage: Storage | None = None) -> None:
        self.keys = keys
        self.home = Path(home)
        self.storage: Storage = storage if storage is not None else LocalStorage(self.home)

    def _label(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.home))
        except ValueError:
            return Path(path).name

    # --- writing ------------------------------------------------------------------------------

    def _key(self, scope: str, by: Actor, change: Change | None) -> tuple[bytes, bytes]:
        # Inside an open change the key is made in that transaction: a second writer transaction
        # beside it would wait on the first (SQLite's one writer, the ledger's lock).
        return self.keys.live_in(change, scope) if change is not None else self.keys.for_writing(scope, by=by)

    def reseal(
        self, source: Path, target: Path, scope: str, *, by: Actor, change: Change | None = None
    ) -> tuple[str, int]:
        """``source`` (sealed under any live key, or in clear) sealed anew into ``target`` under ``scope``'s key."""
        key_id, key = self._key(scope, by, change)
        return write_sealed(Path(target), key, self.chunks(source), key_id=key_id, mode=0o600)

    def seal_file(self, path: Path, scope: str, *, by: Actor) -> tuple[str, int]:
        """Seal a plaintext file in place (a sealed twin renamed over it); a sealed one is left as it is."""
        path = Path(path)
        if is_sealed(path):
            return self.sha256(path)
        key_id, key = self.keys.for_writing(scope, by=by)
        return write_sealed(path, key, _file_chunks(path), key_id=key_id, mode=0o600)

    def put_object(
        self, key: str, data: bytes | Path, scope: str, *, by: Actor, change: Change | None = None
    ) -> StoredObject:
        """Seal ``data`` under ``scope``'s key and put it as a new object at ``key`` (create-only).

        Returns the key with the *plaintext's* SHA-256 and size: what the row that refers to the
        object records and what :meth:`stage_plain` checks. :class:`core.ObjectExistsError` when the
        key is taken (the other writer's object stays whole). The sealed bytes pass through an
        anonymous temporary file (ciphertext only) so a large copy never sits whole in memory.
        """
        return self._put_chunks(key, _source_chunks(data), scope, by=by, change=change)

    def _put_chunks(
        self, key: str, chunks: Iterator[bytes], scope: str, *, by: Actor, change: Change | None
    ) -> StoredObject:
        key_id, data_key = self._key(scope, by, change)
        with tempfile.TemporaryFile() as sealed:
            sealer = Sealer(data_key, sealed, key_id=key_id)
            for chunk in chunks:
                sealer.write(chunk)
            sha256, size = sealer.finish()
            sealed.flush()
            sealed.seek(0)
            self.storage.put(key, sealed)
        return StoredObject(key, sha256, size)

    def artifact_chunks(self, value: str) -> Iterator[bytes]:
        """The plaintext of the artifact a row names (``jobs.outputs[].path``, ``products.artifacts[].path``).

        Why (red team 19, B1): a row is a storage *key*; anyone who can write the database (a worker host
        holds its URL) could otherwise name ``<home>/secrets/vault.key`` and have the server hand it out.
        So a key must pass :func:`core.check_key`, and an absolute path (a row from before the home
        layout) is read only when its real path is a file inside the home's ``work/`` or ``products/``
        trees; anything else raises :class:`core.StorageError` (fail closed).
        """
        if not isinstance(value, str) or value.startswith("/") or Path(value).is_absolute():
            return self.chunks(self.legacy_artifact(str(value)))
        return self.object_chunks(check_key(value))

    def legacy_artifact(self, value: str) -> Path:
        """The real path of a legacy absolute artifact path, when it lies in the home's artifact trees; else refused."""
        return legacy_artifact_path(self.home, value)

    def object_chunks(self, key: str) -> Iterator[bytes]:
        """The plaintext of object ``key``, frame by frame, each authenticated before it is yielded.

        As :meth:`chunks`: an object in clear (an earlier Keyong's file in the home) is read as is,
        unless its key says it was written sealed (``.kyv``): then it is refused, never read in clear.
        Raises :class:`registry.VaultError` for a tampered object or a destroyed key, and
        :class:`core.ObjectMissingError` when there is no such object.
        """
        stream = self.storage.open(key)
        try:
            head = stream.read(len(MAGIC))
            if head == MAGIC:
                yield from unseal_stream(_Prefixed(head, stream), self.keys.resolve, label=key)  # type: ignore[arg-type]
                return
            if key.endswith(SEALED_SUFFIX):
                raise VaultError(
                    f"{key} was written sealed but is not a vault file now (its header was altered, "
                    "or an object in clear was put in its place)"
                )
            yield from _stream_chunks(head, stream)
        finally:
            stream.close()

    def read_object(self, key: str) -> bytes:
        """The whole plaintext of object ``key`` (small objects: fingerprints, reports, outputs)."""
        return b"".join(self.object_chunks(key))

    def stage_plain(self, key: str, target: Path, *, sha256: str | None) -> Path:
        """Object ``key`` fetched, unsealed and written in clear at ``target`` (0600); its plaintext checked.

        ``sha256`` is the plaintext digest the database recorded (module docstring); ``None`` only
        for legacy rows that never recorded one. A mismatch, a failed authentication or any other
        failure removes what was written (:func:`write_checked`): :class:`core.StagedObjectMismatchError`
        for a digest that differs (a swapped or altered object is never bound into a sandbox; fail closed).
        """
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return write_checked(self.object_chunks(key), target, sha256=sha256, label=f"{key} in {self.storage.url}")

    def stage_artifact(self, value: str, target: Path, *, sha256: str) -> Path:
        """The artifact a row names (:meth:`artifact_chunks`: a key, or a legacy path in the home's artifact
        trees) written in clear at ``target`` (0600), checked against ``sha256`` as :meth:`stage_plain` checks
        an object: what a release re-seals is exactly what the guard judged."""
        return write_checked(self.artifact_chunks(value), Path(target), sha256=sha256, label=str(value))

    def stage_set(self, prefix: str, digests: Mapping[str, str] | None, target: Path) -> Path:
        """A fingerprint set's objects under ``prefix`` staged in clear into ``target``, each checked.

        ``digests`` (file name -> plaintext SHA-256) is what the row recorded since issue 19; a set
        recorded before then (``None``) is listed from the storage and staged unchecked, as it was read.
        """
        names: Mapping[str, str | None] = (
            digests if digests is not None else {i.key.rsplit("/", 1)[-1]: None for i in self.storage.list(prefix)}
        )
        for file_name, sha256 in sorted(names.items()):
            self.stage_plain(f"{prefix}/{file_name}", Path(target) / file_name, sha256=sha256)
        return Path(target)

    # --- reading ------------------------------------------------------------------------------

    def chunks(self, path: Path) -> Iterator[bytes]:
        """The plaintext of ``path``, frame by frame, each authenticated before it is yielded.

        A file in clear (written by an earlier Keyong, before ``keyong keys encrypt-home``) is read as is.
        Raises :class:`registry.VaultError` for a tampered file or a destroyed key.
        """
        path = Path(path)
        if not path.is_file():
            raise VaultError(f"{self._label(path)} does not exist")
        if not is_sealed(path):
            if path.name.endswith(SEALED_SUFFIX):  # written sealed: in clear now only if altered or planted
                raise VaultError(
                    f"{self._label(path)} was written sealed but is not a vault file now (its header was altered, "
                    "or a file in clear was put in its place)"
                )
            yield from _file_chunks(path)
            return
        yield from unseal(path, self.keys.resolve, label=self._label(path))

    def read(self, path: Path) -> bytes:
        return b"".join(self.chunks(path))

    def sha256(self, path: Path) -> tuple[str, int]:
        """The SHA-256 and size of the plaintext (what jobs, releases and products record)."""
        import hashlib

        digest, size = hashlib.sha256(), 0
        for chunk in self.chunks(path):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def decrypt_to(self, path: Path, target: Path, *, mode: int = 0o600) -> Path:
        """The plaintext of ``path`` written to ``target`` (created new, ``mode``); removed again on failure."""
        return _write_new(self.chunks(path), Path(target), mode)

    def artifact_to(self, value: str, target: Path, *, mode: int = 0o600) -> Path:
        """The plaintext of the artifact a row names (:meth:`artifact_chunks`) written to ``target`` as
        :meth:`decrypt_to` writes: a delivery's file, whole or removed."""
        return _write_new(self.artifact_chunks(value), Path(target), mode)

    def private_dir(self, prefix: str = "keyong-plain-") -> AbstractContextManager[Path]:
        """Where this instance's plaintext may lie for a while: :func:`private_dir`."""
        return private_dir(prefix)

    def seal_tree(self, directory: Path, scope: str, *, by: Actor) -> int:
        """Seal every plaintext regular file under ``directory`` in place; how many were sealed.

        Batched, because a worker seals every attempt's outputs and logs (issue 21, throughput): the
        scope's key is looked up once, not once a file; every sealed twin is written first, then made
        durable together (:func:`_sync_all`: their fsyncs issued at once join one journal commit
        instead of one commit each), then renamed over its plaintext, and each directory that changed
        is fsynced once, so the renames are durable too. Crash safety as before or better: every
        sealed file is on disk under its name before this returns, hence before the row that records
        it (the job's end) commits; a crash midway leaves plaintext files and ``.tmp`` twins in the
        attempt's private directory, never a half-written file under an output's name.
        """
        plain = [
            entry
            for entry in sorted(Path(directory).rglob("*"))
            if entry.is_file() and not entry.is_symlink() and not is_sealed(entry)
        ]
        if not plain:
            return 0
        key_id, key = self.keys.for_writing(scope, by=by)
        twins: list[tuple[Path, Path]] = []
        try:
            for entry in plain:
                twins.append((_write_twin(entry, key, key_id), entry))
            _sync_all([twin for twin, _ in twins])
            while twins:
                twin, entry = twins.pop(0)
                os.replace(twin, entry)
        finally:
            for twin, _ in twins:
                twin.unlink(missing_ok=True)
        for parent in sorted({entry.parent for entry in plain}):
            _sync_path(parent)
        return len(plain)


def _write_twin(path: Path, key: bytes, key_id: bytes) -> Path:
    """``path`` sealed into a new temporary beside it (not yet synced: :func:`_sync_all` does that)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise VaultError(f"cannot create a sealed file under {path.parent}: {exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            sealer = Sealer(key, out, key_id=key_id)
            for chunk in _file_chunks(path):
                sealer.write(chunk)
            sealer.finish()
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _sync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_all(paths: list[Path]) -> None:
    """fsync every one of ``paths``; issued together so that the file system's journal commits them at
    once (ext4's jbd2 joins concurrent fsyncs in one transaction commit) rather than one after another."""
    if len(paths) == 1:
        _sync_path(paths[0])
        return
    with ThreadPoolExecutor(max_workers=min(len(paths), _SYNC_THREADS), thread_name_prefix="keyong-fsync") as pool:
        list(pool.map(_sync_path, paths))  # list(): an fsync's error is raised here
