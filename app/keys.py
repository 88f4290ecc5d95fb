"""The instance's secrets: created once by ``keyong init``, kept as 0600 files in the home.

黑龙江省政务数据管理暂行办法 第三十八条 asks for encryption and account security;
双鸭山市公共数据管理暂行办法 第六十条 for 加密认证 measures. Each secret has one purpose:

- ``jwt_signing.key``: HMAC key of the API's JWTs;
- ``pseudonym_pepper.key``: HMAC key of keyed pseudonyms, so pseudonyms cannot be recomputed
  from a guessed identifier without the instance;
- ``vault.key``: AES-256-GCM key of raw copies at rest;
- ``ledger_ed25519.pem``: Ed25519 key that signs ledger checkpoints;
- ``totp.key``: AES-256-GCM key of the principals' TOTP secrets (the second factor, SATRE 3.2.04), so a
  copy of the database alone gives nobody a second factor. A home made before it existed gets it on
  its next opening (:func:`load_keys`): no TOTP secret was ever stored there, so nothing is lost.

Files are created with ``O_EXCL`` and mode 0600 in a 0700 directory, and loading refuses a
secret that others can read, the way ssh refuses a world-readable private key.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SECRETS_DIR = "secrets"
JWT_KEY = "jwt_signing.key"
PEPPER = "pseudonym_pepper.key"
VAULT_KEY = "vault.key"
LEDGER_KEY = "ledger_ed25519.pem"
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
        totp_key=secrets.token_bytes(32),
    )
    _write_secret(directory / JWT_KEY, keys.jwt_key.hex().encode())
    _write_secret(directory / PEPPER, keys.pseudonym_pepper.hex().encode())
    _write_secret(directory / VAULT_KEY, keys.vault_key.hex().encode())
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
    try:
        ledger_key = serialization.load_pem_private_key(_read_secret(directory / LEDGER_KEY), password=None)
    except ValueError:
        raise SecretsError(f"secret {directory / LEDGER_KEY} is not a PEM private key") from None
    if not isinstance(ledger_key, Ed25519PrivateKey):
        raise SecretsError(f"secret {directory / LEDGER_KEY} is not an Ed25519 key")
    return InstanceKeys(
        jwt_key=_hex_secret(directory / JWT_KEY, 64),
        pseudonym_pepper=_hex_secret(directory / PEPPER, 32),
        vault_key=_hex_secret(directory / VAULT_KEY, 32),
        ledger_key=ledger_key,
        totp_key=_totp_key(directory),
    )
