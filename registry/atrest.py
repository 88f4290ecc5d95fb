"""Files at rest: seal a copy, fingerprints, an output or a product under its scope's data key; open them.

Why one module: every writer and reader of those files goes through :class:`AtRest`, so nothing
writes them in clear and nothing reads them without authenticating every frame (issue 22, SATRE
2.8.01; 黑龙江 第三十八条 加密). Plaintext exists only in memory, in a job's private staging
directory (``plaintext``: a fresh 0700 ``keyong-plain-`` directory removed on exit), or in a
download stream.

A file written in clear by an earlier Keyong is still read (``is_sealed`` tells them apart) until
``keyong keys encrypt-home`` seals it (:func:`registry.atrest_home.seal_home`); new files are
always sealed, and one whose name says it was written sealed (``.kyv``) is never read in clear.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core import Actor, Change
from registry.datakeys import DataKeys
from registry.vault import FRAME_SIZE, VaultError, is_sealed, unseal, write_sealed

__all__ = ["SEALED_SUFFIX", "AtRest", "dataset_scope", "licence_scope", "products_scope"]

#: The name every file written sealed ends with (copies): one in clear by that name is refused, never read
#: as plaintext (a flipped magic byte, or a Parquet planted in clear in its place; red team of issue 22).
SEALED_SUFFIX = ".kyv"


def dataset_scope(name: str) -> str:
    return f"dataset:{name}"


def licence_scope(licence_id: int) -> str:
    return f"licence:{int(licence_id)}"


def products_scope(licence_id: int) -> str:
    return f"products:{int(licence_id)}"


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        while chunk := stream.read(FRAME_SIZE):
            yield chunk


def _byte_chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, max(len(view), 1), FRAME_SIZE):
        yield bytes(view[start : start + FRAME_SIZE])


class AtRest:
    """Seals and opens the instance's files at rest under their scopes' data keys."""

    def __init__(self, keys: DataKeys, home: Path) -> None:
        self.keys = keys
        self.home = Path(home)

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

    def write(
        self, target: Path, data: bytes, scope: str, *, by: Actor, change: Change | None = None, mode: int = 0o600
    ) -> tuple[str, int]:
        """Seal ``data`` into ``target`` (atomically); the plaintext's SHA-256 and size."""
        key_id, key = self._key(scope, by, change)
        return write_sealed(Path(target), key, _byte_chunks(data), key_id=key_id, mode=mode)

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
        target = Path(target)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.chunks(path):
                    out.write(chunk)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        os.chmod(target, mode)
        return target

    @contextmanager
    def private_dir(self, prefix: str = "keyong-plain-") -> Iterator[Path]:
        """A fresh 0700 directory under the temporary directory, removed (with what it holds) on exit.

        Put ``TMPDIR`` on a tmpfs and plaintext never reaches a disk (docs/operations.md).
        """
        directory = Path(tempfile.mkdtemp(prefix=prefix))
        try:
            directory.chmod(0o700)
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    @contextmanager
    def plaintext(self, path: Path, *, name: str | None = None, mode: int = 0o600) -> Iterator[Path]:
        """``path`` decrypted into a private directory for the ``with`` block (then removed)."""
        with self.private_dir() as directory:
            yield self.decrypt_to(path, directory / (name or Path(path).name), mode=mode)

    @contextmanager
    def plaintext_tree(self, directory: Path) -> Iterator[Path]:
        """Every file of ``directory`` (one level: a fingerprint set) decrypted into a private directory."""
        with self.private_dir() as private:
            for entry in sorted(Path(directory).iterdir()):
                if entry.is_file() and not entry.is_symlink():
                    self.decrypt_to(entry, private / entry.name)
            yield private

    def seal_tree(self, directory: Path, scope: str, *, by: Actor) -> int:
        """Seal every plaintext regular file under ``directory`` in place; how many were sealed."""
        sealed = 0
        for entry in sorted(Path(directory).rglob("*")):
            if entry.is_file() and not entry.is_symlink() and not is_sealed(entry):
                self.seal_file(entry, scope, by=by)
                sealed += 1
        return sealed
