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
- ``ledger_ed25519.pem``: Ed25519 key that signs ledger checkpoints.

Files are created with ``O_EXCL`` and mode 0600 in a 0700 directory, and loading refuses a
secret that others can read, the way ssh refuses a world-readable private key.
"""

from __future__ import annotations

import contextlib
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
DATA_MASTER_KEY = "data_master.key"
DATA_MASTER_NEXT = "data_master.key.next"  # a rotation's new master until its re-wrap has committed


class SecretsError(Exception):
    """A secret is missing, unreadable, malformed or exposed."""


@dataclass(frozen=True, slots=True)
class InstanceKeys:
    jwt_key: bytes
    pseudonym_pepper: bytes
    vault_key: bytes
    ledger_key: Ed25519PrivateKey
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
    )
    _write_secret(directory / JWT_KEY, keys.jwt_key.hex().encode())
    _write_secret(directory / PEPPER, keys.pseudonym_pepper.hex().encode())
    _write_secret(directory / VAULT_KEY, keys.vault_key.hex().encode())
    _write_secret(directory / DATA_MASTER_KEY, keys.data_master.hex().encode())
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
        data_master=_data_master(directory),
        data_master_next=_hex_secret(directory / DATA_MASTER_NEXT, 32)
        if (directory / DATA_MASTER_NEXT).exists()
        else None,
    )


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
