"""The backup archive's format: a plain tar of home files, a database snapshot, sealed secrets, a manifest.

双鸭山市公共数据管理暂行办法 第十八条 (统一存储、备份保护) and 第六十条 (数据备份、加密认证 against 丢失、毁损、
篡改、泄露) ask for backups that are protected and whose alteration shows. So:

- every member's SHA-256 and size are in ``manifest.json``; the manifest is authenticated by
  ``manifest.mac`` (HMAC-SHA256 under a key derived from the passphrase), so whoever alters a member
  must also forge the MAC, which needs the passphrase;
- the secrets (and the home's marker, which may hold a database URL with a password) are only in
  ``secrets.enc``: AES-256-GCM under a key derived from the passphrase with scrypt; every other
  member (database, home files) is sealed as a chunked stream under a third key (:mod:`app.backup_seal`),
  so the archive shows nothing of the home without the passphrase;
- member names are checked before anything is read as a path: relative, normalised, no ``..``,
  regular files only. What the reader does not recognise is refused (fail closed).

This module holds the format only; :mod:`app.backup` creates and restores homes with it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import secrets
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from app.backup_seal import SealingReader, sealed_size

ARCHIVE_FORMAT = 1
MANIFEST = "manifest.json"
MANIFEST_MAC = "manifest.mac"
SECRETS_MEMBER = "secrets.enc"
DATABASE_MEMBER = "database/keyong.db"
FILES_PREFIX = "home/"
PASSPHRASE_ENV = "KEYONG_BACKUP_PASSPHRASE"
MIN_PASSPHRASE = 12
# scrypt cost: 2**15 * 8 * 128 bytes = 32 MiB and about a tenth of a second per try.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
# The costs a reader accepts: they are read from the manifest before its MAC can be checked (the MAC's key
# is derived with them), so a tampered archive chose them; n=2**20, r=32, p=16 was 4 GiB for each of 16
# passes, minutes of a restore before "not authentic" (the red team, issue 22). At most 4x the writer's
# memory and 2 passes: 128 MiB, under a second.
MAX_SCRYPT_N, MAX_SCRYPT_R, MAX_SCRYPT_P = 2**17, SCRYPT_R, 2
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class BackupError(Exception):
    """A backup cannot be made or restored; nothing was written."""


def check_passphrase(passphrase: str | None) -> str:
    """Refuse a missing or short passphrase: secrets are never written in clear (第六十条 加密)."""
    if passphrase is None:
        raise BackupError(
            f"a backup passphrase is required (--passphrase-file FILE or ${PASSPHRASE_ENV}); "
            "secrets are never written in clear"
        )
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"the backup passphrase must be at least {MIN_PASSPHRASE} characters")
    return passphrase


@dataclass(frozen=True, slots=True)
class SealKeys:
    """The keys one passphrase and salt give: the secrets', the manifest's MAC, the file members'."""

    encrypt: bytes
    mac: bytes
    files: bytes

    @classmethod
    def derive(cls, passphrase: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> SealKeys:
        if not (2**14 <= n <= MAX_SCRYPT_N and 1 <= r <= MAX_SCRYPT_R and 1 <= p <= MAX_SCRYPT_P and len(salt) >= 16):
            raise BackupError("the archive's key-derivation parameters are out of bounds")
        from cryptography.hazmat.primitives import hashes  # only a backup pays for cryptography (issue 21)
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        master = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))
        keys = HKDF(algorithm=hashes.SHA256(), length=96, salt=None, info=b"keyong-backup-v1").derive(master)
        return cls(encrypt=keys[:32], mac=keys[32:64], files=keys[64:])

    def seal(self, plaintext: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(12)
        return nonce + AESGCM(self.encrypt).encrypt(nonce, plaintext, SECRETS_MEMBER.encode())

    def open(self, sealed: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(self.encrypt).decrypt(sealed[:12], sealed[12:], SECRETS_MEMBER.encode())
        except (InvalidTag, ValueError):
            raise BackupError(f"{SECRETS_MEMBER} does not decrypt: wrong passphrase or altered member") from None

    def sign(self, manifest: bytes) -> bytes:
        return hmac.new(self.mac, manifest, hashlib.sha256).hexdigest().encode()

    def check(self, manifest: bytes, mac: bytes) -> None:
        if not hmac.compare_digest(self.sign(manifest), mac.strip()):
            raise BackupError(f"{MANIFEST} is not authentic: wrong passphrase or the manifest was altered")


def new_kdf() -> dict[str, Any]:
    return {"name": "scrypt", "salt": secrets.token_hex(16), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}


def keys_for(manifest: dict[str, Any], passphrase: str) -> SealKeys:
    kdf = manifest.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise BackupError(f"{MANIFEST} names no scrypt key derivation")
    try:
        return SealKeys.derive(passphrase, bytes.fromhex(str(kdf["salt"])), int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
    except (KeyError, TypeError, ValueError):
        raise BackupError(f"{MANIFEST} has malformed key-derivation parameters") from None


def safe_member_name(name: str) -> str:
    """``name`` if it is a plain relative path inside the archive's tree, else refuse (no ``..``, no ``/x``)."""
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or any(part in ("..", ".", "") for part in name.split("/"))
        or str(path) != name
    ):
        raise BackupError(f"archive member {name!r} has an unsafe name; nothing was written")
    return name


def home_member(relative: str) -> str:
    return FILES_PREFIX + relative


def home_path_of(member: str) -> str | None:
    """The home-relative path a ``home/…`` member restores to, or None for the archive's own members."""
    return member[len(FILES_PREFIX) :] if member.startswith(FILES_PREFIX) else None


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")


def parse_manifest(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{MANIFEST} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != ARCHIVE_FORMAT or not isinstance(data.get("files"), list):
        raise BackupError(f"{MANIFEST} is not a Keyong backup manifest of format {ARCHIVE_FORMAT}")
    return data


def expected_files(manifest: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Member name -> (sha256, size), every name checked for safety."""
    out: dict[str, tuple[str, int]] = {}
    for item in manifest["files"]:
        try:
            name, digest, size = safe_member_name(str(item["path"])), str(item["sha256"]), int(item["size"])
        except (KeyError, TypeError, ValueError):
            raise BackupError(f"{MANIFEST} has a malformed file entry: {item!r}") from None
        if name in out or name in (MANIFEST, MANIFEST_MAC):
            raise BackupError(f"{MANIFEST} lists {name!r} twice or lists itself")
        out[name] = (digest, size)
    return out


def passphrase_from(file: os.PathLike[str] | None) -> str | None:
    """The passphrase: the first line of ``file`` if given, else ``$KEYONG_BACKUP_PASSPHRASE``."""
    if file is not None:
        try:
            with open(file, encoding="utf-8") as handle:
                return handle.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise BackupError(f"cannot read the passphrase file: {exc}") from None
    return os.environ.get(PASSPHRASE_ENV) or None


# --- tar members ----------------------------------------------------------------------------------


class _Hashing:
    """A reader that hashes what passes through it (tarfile copies exactly the member's size)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.digest, self.count = raw, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


def add_stream(
    archive: tarfile.TarFile, member: str, handle: IO[bytes], size: int, mode: int, listing: list[dict[str, Any]]
) -> None:
    tarinfo = tarfile.TarInfo(safe_member_name(member))
    tarinfo.size, tarinfo.mode, tarinfo.mtime = size, 0o600, int(datetime.now(UTC).timestamp())
    reader = _Hashing(handle)
    try:
        archive.addfile(tarinfo, reader)  # tarfile reads through .read only
    except OSError as exc:
        raise BackupError(f"{member} changed while it was copied ({exc}); run the backup again") from None
    listing.append({"path": member, "sha256": reader.digest.hexdigest(), "size": size, "mode": mode & 0o700})


def add_sealed(
    archive: tarfile.TarFile,
    member: str,
    handle: IO[bytes],
    size: int,
    mode: int,
    key: bytes,
    listing: list[dict[str, Any]],
) -> None:
    """``size`` bytes of ``handle`` sealed into ``member``; listed with the sealed and the plain hash."""
    sealing = SealingReader(handle, size, member, key)
    add_stream(archive, member, sealing, sealed_size(size), mode, listing)  # type: ignore[arg-type]
    listing[-1].update({"plain_sha256": sealing.plain.hexdigest(), "plain_size": size})


def add_bytes(archive: tarfile.TarFile, member: str, data: bytes, listing: list[dict[str, Any]]) -> None:
    add_stream(archive, member, io.BytesIO(data), len(data), 0o600, listing)


def members(archive: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """Every member, refused unless it is a regular file with a safe name (links, devices, dirs: refused)."""
    seen: set[str] = set()
    try:
        for member in archive:
            name = safe_member_name(member.name)
            if not member.isreg():
                raise BackupError(
                    f"archive member {name!r} is not a regular file (link or special); nothing was written"
                )
            if name in seen:
                raise BackupError(f"archive member {name!r} appears twice; nothing was written")
            seen.add(name)
            handle = archive.extractfile(member)
            if handle is None:
                raise BackupError(f"archive member {name!r} cannot be read")
            yield member, handle
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"the archive is not a readable tar: {exc}") from None


@contextmanager
def open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """An uncompressed tar, opened for reading; anything else is refused."""
    try:
        archive = tarfile.open(path, "r:")  # noqa: SIM115  (closed below; open errors become refusals)
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{path} is not a readable tar archive: {exc}") from None
    with archive:
        yield archive
