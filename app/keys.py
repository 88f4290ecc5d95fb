"""The instance's secrets: created once by ``keyong init``, kept as 0600 files in the home.

黑龙江省政务数据管理暂行办法 第三十八条 asks for encryption and account security;
双鸭山市公共数据管理暂行办法 第六十条 for 加密认证 measures. Each secret has one purpose:

- ``jwt_signing.key``: HMAC key of the API's JWTs;
- ``pseudonym_pepper.key``: HMAC key of keyed pseudonyms, so pseudonyms cannot be recomputed
  from a guessed identifier without the instance;
- ``vault.key``: AES-256-GCM key of raw copies at rest;
- ``data_master.key``: AES key-wrap key of the data keys that seal desensitized copies, fingerprints,
  job outputs and products at rest (``registry.datakeys``; issue 22, SATRE 2.8.01). Made at the first
  open of a home that predates it; rotated by ``keyong keys rotate --vault`` (:mod:`app.key_rotation`);
- ``ledger_ed25519.pem``: Ed25519 key that signs ledger checkpoints;
- ``totp.key``: AES-256-GCM key of the principals' TOTP secrets (the second factor, SATRE 3.2.04), so a
  copy of the database alone gives nobody a second factor. A home made before it existed gets it on
  its next opening (:func:`load_keys`): no TOTP secret was ever stored there, so nothing is lost.

Rotation (SATRE 2.4.05; ``keyong keys rotate``): ``jwt_previous.key`` keeps the JWT key a rotation
retired, with the time it retired, for one token lifetime of grace (``operators.JwtKeyring``); a
second rotation overwrites it, so a key two generations old is gone. A new ledger key is written as
``ledger_ed25519.next.pem`` first and renamed over the current one only after the ledger recorded the
handover (``ledger.Ledger.rotate_key``); :func:`finish_ledger_rotation` completes a rotation a crash
interrupted. Retired ledger private keys are destroyed; their public halves live in the ledger.

Files are created with ``O_EXCL`` and mode 0600 in a 0700 directory, and loading refuses a
secret that others can read, the way ssh refuses a world-readable private key.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SECRETS_DIR = "secrets"
JWT_KEY = "jwt_signing.key"
PEPPER = "pseudonym_pepper.key"
VAULT_KEY = "vault.key"
LEDGER_KEY = "ledger_ed25519.pem"
JWT_PREVIOUS = "jwt_previous.key"
LEDGER_NEXT = "ledger_ed25519.next.pem"
DATA_MASTER_KEY = "data_master.key"
DATA_MASTER_NEXT = "data_master.key.next"  # a rotation's new master until its re-wrap has committed
TOTP_KEY = "totp.key"


class SecretsError(Exception):
    """A secret is missing, unreadable, malformed or exposed."""


@dataclass(frozen=True, slots=True)
class InstanceKeys:
    jwt_key: bytes
    pseudonym_pepper: bytes
    vault_key: bytes
    ledger_key: Ed25519PrivateKey
    totp_key: bytes
    data_master: bytes = b""
    data_master_next: bytes | None = None  # only while a rotation is unfinished (app.key_rotation)

    @property
    def ledger_public_key(self) -> Ed25519PublicKey:
        return self.ledger_key.public_key()


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _read_secret(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SecretsError(f"secret {path} is missing") from None
    if not stat.S_ISREG(mode):  # a FIFO blocked the read forever, /dev/zero never ended (red team 21d)
        raise SecretsError(f"secret {path} is not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(f"secret {path} is readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 it")
    return path.read_bytes()


def create_keys(home: Path) -> InstanceKeys:
    """Generate every secret into ``home/secrets``; fails if any already exists."""
    directory = home / SECRETS_DIR
    directory.mkdir(mode=0o700)
    keys = InstanceKeys(
        jwt_key=secrets.token_bytes(64),
        pseudonym_pepper=secrets.token_bytes(32),
        vault_key=secrets.token_bytes(32),
        ledger_key=Ed25519PrivateKey.generate(),
        data_master=secrets.token_bytes(32),
        totp_key=secrets.token_bytes(32),
    )
    _write_secret(directory / JWT_KEY, keys.jwt_key.hex().encode())
    _write_secret(directory / PEPPER, keys.pseudonym_pepper.hex().encode())
    _write_secret(directory / VAULT_KEY, keys.vault_key.hex().encode())
    _write_secret(directory / DATA_MASTER_KEY, keys.data_master.hex().encode())
    _write_secret(directory / TOTP_KEY, keys.totp_key.hex().encode())
    pem = keys.ledger_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_secret(directory / LEDGER_KEY, pem)
    return keys


def _hex_secret(path: Path, length: int) -> bytes:
    try:
        value = bytes.fromhex(_read_secret(path).decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise SecretsError(f"secret {path} is not hex") from None
    if len(value) != length:
        raise SecretsError(f"secret {path} holds {len(value)} bytes, expected {length}")
    return value


def _totp_key(directory: Path) -> bytes:
    """The TOTP secrets' key; created (0600, ``O_EXCL``) in a home made before the second factor existed."""
    path = directory / TOTP_KEY
    if not path.exists() and directory.is_dir():
        staged = directory / f".{TOTP_KEY}.{secrets.token_hex(8)}"
        _write_secret(staged, secrets.token_bytes(32).hex().encode())
        try:
            os.link(staged, path)  # whole or not at all: a reader never sees a half-written key
        except FileExistsError:  # another process made it first: read theirs
            pass
        finally:
            staged.unlink()
    return _hex_secret(path, 32)


def load_keys(home: Path) -> InstanceKeys:
    directory = home / SECRETS_DIR
    ledger_key = _load_ledger_key(directory / LEDGER_KEY)
    return InstanceKeys(
        jwt_key=_hex_secret(directory / JWT_KEY, 64),
        pseudonym_pepper=_hex_secret(directory / PEPPER, 32),
        vault_key=_hex_secret(directory / VAULT_KEY, 32),
        ledger_key=ledger_key,
        data_master=_data_master(directory),
        data_master_next=_hex_secret(directory / DATA_MASTER_NEXT, 32)
        if (directory / DATA_MASTER_NEXT).exists()
        else None,
        totp_key=_totp_key(directory),
    )


# --- rotation -----------------------------------------------------------------------------------


def _replace_secret(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a 0600 temporary file renamed over it)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    _write_secret(temporary, data)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class JwtRing:
    """The JWT keys on disk: the current secret and, after a rotation, the previous one and when it retired."""

    current: bytes
    previous: bytes | None = None
    retired_at: datetime | None = None


def load_jwt_ring(home: Path) -> JwtRing:
    directory = home / SECRETS_DIR
    current = _hex_secret(directory / JWT_KEY, 64)
    path = directory / JWT_PREVIOUS
    if not path.exists():
        return JwtRing(current)
    try:
        data = json.loads(_read_secret(path))
        previous = bytes.fromhex(data["key"])
        retired_at = datetime.fromisoformat(data["retired_at"])
    except (ValueError, KeyError, TypeError):
        raise SecretsError(f"secret {path} is not a retired JWT key record") from None
    if len(previous) != 64 or retired_at.tzinfo is None:
        raise SecretsError(f"secret {path} is not a retired JWT key record")
    return JwtRing(current, previous, retired_at)


def rotate_jwt_secret(home: Path, now: datetime) -> tuple[JwtRing, JwtRing]:
    """Retire the current JWT key (kept as the previous one, retired ``now``) and make a new one.

    The previous key is written before the current one is replaced, so a crash between the two
    leaves the old key current (and also "previous", which changes nothing). Returns (before, after).
    """
    before = load_jwt_ring(home)
    directory = home / SECRETS_DIR
    record = json.dumps({"key": before.current.hex(), "retired_at": now.isoformat()}).encode()
    _replace_secret(directory / JWT_PREVIOUS, record)
    fresh = secrets.token_bytes(64)
    _replace_secret(directory / JWT_KEY, fresh.hex().encode())
    return before, JwtRing(fresh, before.current, now)


class JwtRingFiles:
    """The JWT keys of a home, re-read when their files change: a rotation reaches running servers.

    Reading costs two ``stat`` calls per token; the files are parsed again only when their
    modification time or size changed.
    """

    def __init__(self, home: Path) -> None:
        self._home = home
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[int, int], ...] | None = None
        self._ring: JwtRing | None = None

    def _stamp_now(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for name in (JWT_KEY, JWT_PREVIOUS):
            try:
                info = (self._home / SECRETS_DIR / name).stat()
                stamps.append((info.st_mtime_ns, info.st_size))
            except FileNotFoundError:
                stamps.append((0, -1))
        return tuple(stamps)

    def __call__(self) -> JwtRing:
        with self._lock:
            stamp = self._stamp_now()
            if self._ring is None or stamp != self._stamp:
                self._ring, self._stamp = load_jwt_ring(self._home), stamp
            return self._ring


def new_ledger_key(home: Path) -> Ed25519PrivateKey:
    """The next ledger key, written beside the current one (reused if a crashed rotation left one)."""
    path = home / SECRETS_DIR / LEDGER_NEXT
    if path.exists():
        key = _load_ledger_key(path)
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_secret(path, pem)
    return key


def finish_ledger_rotation(home: Path, ledger_key_hex: str | None) -> bool:
    """Complete or abandon a ledger key rotation left half-done; true when the next key became current.

    ``ledger_key_hex`` is the key the ledger itself names as current (its last rotation entry):
    when the next key is that one, the handover was recorded and the file is renamed into place (the
    old private key is destroyed by the rename); otherwise the ledger never recorded it and the
    unused next key is deleted.
    """
    directory = home / SECRETS_DIR
    path = directory / LEDGER_NEXT
    if not path.exists():
        return False
    from ledger import public_key_hex

    if ledger_key_hex is not None and public_key_hex(_load_ledger_key(path).public_key()) == ledger_key_hex:
        os.replace(path, directory / LEDGER_KEY)
        return True
    path.unlink()
    return False


def load_ledger_key(home: Path) -> Ed25519PrivateKey:
    """The home's current ledger key alone: what ``keyong ledger verify`` needs (its public half).

    Why not :func:`load_keys`: that one makes a missing ``totp.key`` or ``data_master.key`` anew, so a
    command that only reads would write secrets, and a lost data master would be replaced by a key that
    opens none of the home's sealed files (red team 21d)."""
    return _load_ledger_key(home / SECRETS_DIR / LEDGER_KEY)


def _load_ledger_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read_secret(path), password=None)
    except ValueError:
        raise SecretsError(f"secret {path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SecretsError(f"secret {path} is not an Ed25519 key")
    return key


def _data_master(directory: Path) -> bytes:
    """The data master key; made now in a home written before it existed (its files are still in clear
    until ``keyong keys encrypt-home``)."""
    path = directory / DATA_MASTER_KEY
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process made it first
            _write_secret(path, secrets.token_bytes(32).hex().encode())
    return _hex_secret(path, 32)


def write_secret(directory: Path, name: str, value: bytes) -> Path:
    """Write a new secret file (hex, 0600, must not exist): a rotation's next key."""
    path = directory / name
    _write_secret(path, value.hex().encode())
    return path
