"""The raw-data vault: the ingested copy, encrypted at rest, never mounted into a sandbox.

Why: the raw copy holds every personal identifier of a dataset. The rules ask that it be
protected by encryption and access control (黑龙江省政务数据管理暂行办法 第三十八条: 政务数据
安全管理, 分类分级; issue 4) and that it never leave the domain (双鸭山市公共数据管理暂行办法
第三十五条: 原始数据不出域、数据可用不可见). Sandboxes only ever mount desensitized copies; the
vault is read by the desensitizer in the platform's own process.

File format, all integers big-endian::

    header  = MAGIC (8 bytes "KYVAULT\\0") | format version (1 byte) | [key id (16 bytes), version 2]
              | file id (16 random bytes) | key check (16 bytes)
    frame*  = ciphertext length (4 bytes) | final flag (1 byte) | nonce (12 bytes)
              | AES-256-GCM ciphertext + tag

Each file has its own data key, derived with HKDF-SHA256 from the vault key and the file id, so
the random 96-bit nonces are drawn per file and never approach GCM's collision bound. The key
check (also HKDF output) tells a wrong vault key apart from tampering. Every frame's associated
data is the whole header, the frame's index and a final-frame flag, so frames can be neither
reordered, dropped, truncated after the last one nor swapped in from another file: any such
change fails authentication and :class:`VaultError` says so. Plaintext is at most
``FRAME_SIZE`` bytes per frame; the last frame carries the final flag (an empty file is one
empty final frame).

Version 1 is the raw vault's (sealed directly under the instance's ``vault.key``). Version 2 names
the data key it was sealed under (:mod:`registry.datakeys`: one key per dataset for its desensitized
copies and fingerprints, one per licence for its outputs and products; issue 22, SATRE 2.8.01), so a
reader finds the key from the file alone and a destroyed key (crypto-shredding) is told apart from
tampering. This module is the one owner of the format: the data keys' files use the same
:class:`Sealer` and :func:`unseal`.

Files are written to a temporary name with mode 0600 and renamed into place, so a reader never
sees half a file and a failed write leaves nothing behind.

The raw vault's files are objects of a :class:`core.Storage` (issue 19): sealed into an anonymous
temporary file, then put create-only under ``vault/NAME/vN-<file id>.parquet.kyv`` (the key the
version row records), read back as a stream. On the embedded home (:class:`core.LocalStorage`) that
is the same file in the same place as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core import LocalStorage, ObjectMissingError, RegistryError, Storage, StorageError, check_key

if TYPE_CHECKING:  # pyarrow loads where a table is read, not where the registry is built (issue 21)
    import pyarrow as pa

MAGIC = b"KYVAULT\x00"
FORMAT_VERSION = 1  # sealed under the vault key itself (raw copies, ingest scratch)
KEYED_FORMAT_VERSION = 2  # sealed under a named data key (registry.datakeys)
FILE_ID_BYTES = 16
KEY_ID_BYTES = 16
KEY_CHECK_BYTES = 16
HEADER_BYTES = len(MAGIC) + 1 + FILE_ID_BYTES + KEY_CHECK_BYTES
NONCE_BYTES = 12
TAG_BYTES = 16
FRAME_SIZE = 4 * 1024 * 1024  # plaintext bytes per frame
MAX_FRAME = 64 * 1024 * 1024  # larger frame lengths are refused before reading them
PREFIX_BYTES = 4 + 1 + NONCE_BYTES
SUFFIX = ".parquet.kyv"
DIRECTORY = "vault"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class VaultError(RegistryError):
    """A vault file could not be written or read back intact; the message says which and why."""


#: What unseals a file: the key itself, or a function from the key id in a version-2 header (``None``
#: for a version-1 file) to the key, which raises :class:`VaultError` when it has no such key.
KeySource = bytes | Callable[[bytes | None], bytes]


@dataclass(frozen=True, slots=True)
class VaultObject:
    """A stored raw copy: where it lies (relative to the instance home), its plaintext hash and size."""

    path: str
    sha256: str  # SHA-256 of the plaintext (the canonical Parquet bytes)
    bytes: int  # plaintext bytes


def _derive(key: bytes, file_id: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=file_id, info=b"keyong vault v1 " + purpose).derive(key)


def _frame_aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">QB", index, 1 if final else 0)


class Vault:
    """Encrypted raw copies under ``root/vault/NAME/``; ``root`` is the instance home.

    Paths handed out and accepted are relative to ``root`` (``vault/NAME/v3-<id>.parquet.kyv``),
    which is what the catalog stores in a version's ``path``.
    """

    def __init__(self, root: Path, key: bytes, *, frame_size: int = FRAME_SIZE, storage: Storage | None = None) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) != 32:
            raise VaultError("the vault key must be 32 bytes (AES-256); check the instance's vault.key")
        if frame_size < 1:
            raise VaultError("frame size must be positive")
        self.root = Path(root)
        self._key = bytes(key)
        self.frame_size = frame_size
        self.storage: Storage = storage if storage is not None else LocalStorage(self.root)

    @property
    def directory(self) -> Path:
        return self.root / DIRECTORY

    # --- writing -------------------------------------------------------------------------------

    def put(
        self, name: str, version: int, data: bytes | Path | BinaryIO, *, file_id: bytes | None = None
    ) -> VaultObject:
        """Encrypt ``data`` (bytes, a file path or a binary stream) as version ``version`` of ``name``.

        ``file_id`` (random unless given: a replay or a test of a race) names the object; a key already
        taken is refused (:class:`VaultError`, create-only) and the object there stays whole.
        """
        if not _NAME_RE.match(name) or ".." in name:
            raise VaultError(f"dataset name {name!r} cannot name a vault directory (letters, digits, _ . - only)")
        if version < 1:
            raise VaultError(f"version must be at least 1, got {version}")
        if file_id is None:
            file_id = secrets.token_bytes(FILE_ID_BYTES)
        elif len(file_id) != FILE_ID_BYTES:
            raise VaultError(f"a vault file id is {FILE_ID_BYTES} bytes")
        relative = f"{DIRECTORY}/{name}/v{version}-{file_id.hex()}{SUFFIX}"
        local = self.storage.local_path(relative)
        if local is not None:
            self._make_dirs(local.parent)  # owner-only directories, as the home always had them
        with tempfile.TemporaryFile() as sealed:  # ciphertext only; the object is put whole, create-only
            digest, size = self._encrypt(file_id, self._chunks(data), sealed)
            sealed.flush()
            sealed.seek(0)
            try:
                self.storage.put(relative, sealed)
            except StorageError as exc:
                raise VaultError(f"cannot store the vault object {relative}: {exc}") from None
        return VaultObject(relative, digest, size)

    def _make_dirs(self, directory: Path) -> None:
        # Owner-only directories: the vault holds every identifier of every raw dataset.
        for path in (directory.parent, directory):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _chunks(self, data: bytes | Path | BinaryIO) -> Iterator[bytes]:
        if isinstance(data, bytes | bytearray | memoryview):
            view = memoryview(data)
            for start in range(0, len(view), self.frame_size):
                yield bytes(view[start : start + self.frame_size])
            return
        if isinstance(data, str | os.PathLike):
            with open(data, "rb") as stream:
                yield from self._stream_chunks(stream)
            return
        yield from self._stream_chunks(data)

    def _stream_chunks(self, stream: BinaryIO) -> Iterator[bytes]:
        while True:
            chunk = stream.read(self.frame_size)
            if not chunk:
                return
            while len(chunk) < self.frame_size:  # short reads from pipes: fill the frame
                more = stream.read(self.frame_size - len(chunk))
                if not more:
                    break
                chunk += more
            yield chunk

    def _encrypt(self, file_id: bytes, chunks: Iterator[bytes], out: BinaryIO) -> tuple[str, int]:
        sealer = Sealer(self._key, out, frame_size=self.frame_size, file_id=file_id)
        for chunk in chunks:
            sealer.write(chunk)
        return sealer.finish()

    # --- reading -------------------------------------------------------------------------------

    def iter_plaintext(self, path: str) -> Iterator[bytes]:
        """Decrypted frames of a vault file, in order, each authenticated before it is yielded.

        Raises :class:`VaultError` on a wrong key, a foreign or altered header, a frame that fails
        authentication (altered, reordered or from another file), a truncated file or trailing bytes.
        """
        key = self.key_of(path)
        try:
            stream = self.storage.open(key)
        except ObjectMissingError:
            raise VaultError(f"vault file {path} does not exist") from None
        try:
            yield from unseal_stream(stream, self._key, label=path)
        finally:
            stream.close()

    def key_of(self, path: str) -> str:
        """The storage key of a vault path (the row's ``path``); refuses one outside ``vault/…{SUFFIX}``."""
        try:
            key = check_key(path)
        except StorageError:
            key = ""
        if not key.startswith(f"{DIRECTORY}/") or not key.endswith(SUFFIX) or key.count("/") != 2:
            raise VaultError(f"{path!r} is not a vault file path (expected {DIRECTORY}/NAME/…{SUFFIX})")
        return key

    def open(self, path: str) -> bytes:
        """The whole plaintext of a vault file (authenticated frame by frame)."""
        buffer = io.BytesIO()
        for chunk in self.iter_plaintext(path):
            buffer.write(chunk)
        return buffer.getvalue()

    def read_table(self, path: str) -> pa.Table:
        """The raw copy as an Arrow table (the desensitizer's input)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = self.open(path)
        try:
            return pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as exc:
            raise VaultError(f"{path} decrypted but is not a readable Parquet file: {exc}") from None

    def delete(self, path: str) -> None:
        """Remove a vault file (undoing an ingest whose catalog change was refused)."""
        key = self.key_of(path)
        self.storage.delete(key)
        local = self.storage.local_path(key)
        if local is not None:
            with contextlib.suppress(OSError):
                local.parent.rmdir()  # only when it was the dataset's last file


class Sealer:
    """Encrypts bytes pushed to it into the vault file format, one frame per ``frame_size`` bytes.

    What :meth:`Vault.put` writes with the vault key, and what an ingest's scratch copy is written with
    under a key that lives only in the ingesting process (:mod:`registry.scratch`).
    """

    def __init__(
        self,
        key: bytes,
        out: BinaryIO,
        *,
        frame_size: int = FRAME_SIZE,
        file_id: bytes | None = None,
        key_id: bytes | None = None,
    ):
        file_id = file_id or secrets.token_bytes(FILE_ID_BYTES)
        if key_id is not None and len(key_id) != KEY_ID_BYTES:
            raise VaultError(f"a data key id is {KEY_ID_BYTES} bytes")
        named = b"" if key_id is None else key_id
        version = FORMAT_VERSION if key_id is None else KEYED_FORMAT_VERSION
        check = _derive(key, file_id, b"key check")[:KEY_CHECK_BYTES]
        self._header = MAGIC + bytes([version]) + named + file_id + check
        self._aead = AESGCM(_derive(key, file_id, b"data"))
        self._out = out
        self._frame_size = frame_size
        self._pending = bytearray()
        self._index = 0
        self._digest = hashlib.sha256()
        self.size = 0
        out.write(self._header)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        self._digest.update(view)
        self.size += len(view)
        for start in range(0, len(view), self._frame_size):
            self._pending += view[start : start + self._frame_size]
            # Keep the last full frame back: only finish() knows whether it is the final one.
            while len(self._pending) > self._frame_size:
                self._frame(bytes(self._pending[: self._frame_size]), final=False)
                del self._pending[: self._frame_size]

    def finish(self) -> tuple[str, int]:
        """Write the final frame; the plaintext's SHA-256 and size."""
        self._frame(bytes(self._pending), final=True)
        self._pending.clear()
        return self._digest.hexdigest(), self.size

    def _frame(self, plain: bytes, *, final: bool) -> None:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain, _frame_aad(self._header, self._index, final))
        self._out.write(struct.pack(">IB", len(sealed), 1 if final else 0) + nonce + sealed)
        self._index += 1


def _read_header(stream: BinaryIO, label: str) -> tuple[bytes, bytes | None, bytes]:
    """The whole header, the key id it names (version 2) or ``None`` (version 1), and the file id."""
    head = stream.read(len(MAGIC) + 1)
    if len(head) < len(MAGIC) + 1 or not head.startswith(MAGIC):
        raise VaultError(f"{label} is not a Keyong vault file (bad or missing header)")
    version = head[len(MAGIC)]
    if version not in (FORMAT_VERSION, KEYED_FORMAT_VERSION):
        raise VaultError(
            f"{label} has vault format {version}, this Keyong reads {FORMAT_VERSION} and {KEYED_FORMAT_VERSION}"
        )
    named = KEY_ID_BYTES if version == KEYED_FORMAT_VERSION else 0
    rest = stream.read(named + FILE_ID_BYTES + KEY_CHECK_BYTES)
    if len(rest) < named + FILE_ID_BYTES + KEY_CHECK_BYTES:
        raise VaultError(f"{label} is not a Keyong vault file (bad or missing header)")
    key_id = rest[:named] if named else None
    return head + rest, key_id, rest[named : named + FILE_ID_BYTES]


def unseal(file: Path, key: KeySource, *, label: str) -> Iterator[bytes]:
    """Decrypted frames of a sealed file, in order, each authenticated before it is yielded.

    ``key`` is the key, or a :data:`KeySource` function asked with the key id the header names.
    """
    try:
        stream = open(file, "rb")  # noqa: SIM115 - closed in finally, generator
    except FileNotFoundError:
        raise VaultError(f"vault file {label} does not exist") from None
    try:
        yield from unseal_stream(stream, key, label=label)
    finally:
        stream.close()


def unseal_stream(stream: BinaryIO, key: KeySource, *, label: str) -> Iterator[bytes]:
    """:func:`unseal` of an open stream (an object from :class:`core.Storage`); the caller closes it.

    Why a stream: on object storage there is no file to open, only the bytes the backend streams;
    the format and every check are the same.
    """
    header, key_id, file_id = _read_header(stream, label)
    if callable(key):
        key = key(key_id)
    elif key_id is not None:
        raise VaultError(f"{label} is sealed under data key {key_id.hex()}, not under the vault key")
    check = header[-KEY_CHECK_BYTES:]
    if not secrets.compare_digest(check, _derive(key, file_id, b"key check")[:KEY_CHECK_BYTES]):
        raise VaultError(
            f"{label} was not encrypted with this instance's vault key (wrong key, or its header was altered)"
        )
    aead = AESGCM(_derive(key, file_id, b"data"))
    yield from _frames(stream, aead, header, label)


def _frames(stream: BinaryIO, aead: AESGCM, header: bytes, label: str) -> Iterator[bytes]:
    index = 0
    while True:
        prefix = stream.read(PREFIX_BYTES)
        if not prefix:
            raise VaultError(f"{label} is truncated: it ends after {index} frame(s) without a final frame")
        if len(prefix) < PREFIX_BYTES:
            raise VaultError(f"{label} is truncated inside frame {index}")
        length, flag = struct.unpack(">IB", prefix[:5])
        if length < TAG_BYTES or length > MAX_FRAME + TAG_BYTES or flag > 1:
            raise VaultError(f"{label}: frame {index} has an impossible length or flag (altered file)")
        sealed = stream.read(length)
        if len(sealed) < length:
            raise VaultError(f"{label} is truncated inside frame {index}")
        final = flag == 1
        try:
            plain = aead.decrypt(prefix[5:], sealed, _frame_aad(header, index, final))
        except InvalidTag:
            raise VaultError(
                f"{label}: frame {index} failed authentication (the file was altered, its frames "
                "reordered, cut short or taken from another file); its content cannot be trusted"
            ) from None
        yield plain
        if final:
            if stream.read(1):
                raise VaultError(f"{label} has bytes after its final frame (altered or appended to)")
            return
        index += 1


def is_sealed(file: Path) -> bool:
    """Whether ``file`` begins with the vault format's magic (sealed), as opposed to a file in clear."""
    try:
        with open(file, "rb") as stream:
            return stream.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def write_sealed(
    target: Path,
    key: bytes,
    chunks: Iterator[bytes],
    *,
    key_id: bytes | None = None,
    frame_size: int = FRAME_SIZE,
    mode: int = 0o600,
) -> tuple[str, int]:
    """Seal ``chunks`` into ``target`` atomically (a temporary name renamed into place); plaintext SHA-256, size."""
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise VaultError(f"cannot create a sealed file under {target.parent}: {exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            sealer = Sealer(key, out, frame_size=frame_size, key_id=key_id)
            for chunk in chunks:
                sealer.write(chunk)
            result = sealer.finish()
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return result
