"""Keys as signed-note names them: verifier keys (vkeys), key IDs, and Go's signer-key text."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.note.encoding import (
    b64decode,
    b64encode,
    check_ed25519_public_key,
    is_valid_name,
    public_bytes,
    utf8,
)
from ledger.note.errors import NoteError

__all__ = [
    "KEY_TYPE_COSIGNATURE_V1",
    "KEY_TYPE_ED25519",
    "SUPPORTED_KEY_TYPES",
    "SignerKey",
    "Verifier",
    "format_skey",
    "format_vkey",
    "key_hash",
    "parse_skey",
    "parse_vkey",
]

#: signed-note signature type for plain Ed25519 note signatures (what a log signs its checkpoint with).
KEY_TYPE_ED25519 = 0x01
#: signed-note signature type for tlog-cosignature timestamped Ed25519 witness cosignatures.
KEY_TYPE_COSIGNATURE_V1 = 0x04
SUPPORTED_KEY_TYPES = frozenset({KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE_V1})

_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


def key_hash(name: str, key_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID of signed-note: ``SHA-256(name || 0x0A || type byte || public key)[:4]``.

    It is an identifier, not a security boundary: signed-note notes that anyone can make a key
    collide with a given ID; that only yields signatures that fail to verify.
    """
    if not isinstance(key_type, int) or isinstance(key_type, bool) or not 0 <= key_type <= 0xFF:
        raise ValueError(f"key type must be one byte, got {key_type!r}")
    digest = hashlib.sha256(utf8(name) + b"\n" + bytes([key_type]) + public_bytes(public_key)).digest()
    return digest[:4]


@dataclass(frozen=True)
class Verifier:
    """A trusted public key as the signed-note format names it: key name, type, key ID, key.

    Construction checks every field against the others (the key ID must be the one computed
    from the name, type and key), so an instance always describes one self-consistent key;
    build one with :meth:`from_public_key` or :func:`parse_vkey`.
    """

    name: str
    key_type: int
    key_hash: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        if not is_valid_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}: must be non-empty, without spaces or '+'")
        if self.key_type not in SUPPORTED_KEY_TYPES or isinstance(self.key_type, bool):
            raise NoteError(f"unsupported key type {self.key_type!r} (supported: 0x01 Ed25519, 0x04 cosignature/v1)")
        if not isinstance(self.public_key, bytes) or not isinstance(self.key_hash, bytes):
            raise TypeError("public_key and key_hash must be bytes")
        check_ed25519_public_key(self.public_key)
        if self.key_hash != key_hash(self.name, self.key_type, self.public_key):
            raise NoteError(f"key ID {self.key_hash.hex()} does not match key {self.name!r}")

    @classmethod
    def from_public_key(
        cls, name: str, public_key: bytes | Ed25519PublicKey, key_type: int = KEY_TYPE_ED25519
    ) -> Verifier:
        """The verifier for ``public_key`` under ``name`` and ``key_type``, with its key ID computed."""
        raw = public_bytes(public_key)
        if not is_valid_name(name):
            raise NoteError(f"invalid key name {name!r}: must be non-empty, without spaces or '+'")
        return cls(name=name, key_type=key_type, key_hash=key_hash(name, key_type, raw), public_key=raw)

    @property
    def key_id(self) -> int:
        """The key ID as the big-endian uint32 signature lines carry."""
        return int.from_bytes(self.key_hash, "big")

    @property
    def vkey(self) -> str:
        """The signed-note verifier key text: ``name+hexid+base64(type || key)``."""
        return f"{self.name}+{self.key_hash.hex()}+{b64encode(bytes([self.key_type]) + self.public_key)}"


def format_vkey(name: str, public_key: bytes | Ed25519PublicKey, key_type: int = KEY_TYPE_ED25519) -> str:
    """The verifier key (vkey) text for ``public_key`` (raw 32 bytes or a key object)."""
    return Verifier.from_public_key(name, public_key, key_type).vkey


def parse_vkey(vkey: str) -> Verifier:
    """Parse ``name+hexid+base64(type || key)``, checking the key ID against the key.

    Split at the first two '+' (base64 itself may contain '+'), like Go's ``note.NewVerifier``:
    8 hex digits of key ID (either case), canonical base64, a supported type byte, a 32-byte key,
    and the recomputed key ID must match. Raises NoteError otherwise.
    """
    if not isinstance(vkey, str):
        raise TypeError("vkey must be a str")
    name, sep1, rest = vkey.partition("+")
    hash16, sep2, key64 = rest.partition("+")
    if not sep1 or not sep2 or not _HEX8.fullmatch(hash16):
        raise NoteError("malformed verifier key: want <name>+<8 hex digits>+<base64 key>")
    if not is_valid_name(name):
        raise NoteError(f"malformed verifier key: invalid key name {name!r}")
    raw = b64decode(key64)
    if not raw:
        raise NoteError("malformed verifier key: key is not canonical base64")
    key_type, public_key = raw[0], raw[1:]
    if key_type not in SUPPORTED_KEY_TYPES:
        raise NoteError(f"unknown verifier key type 0x{key_type:02x}")
    if len(public_key) != 32:
        raise NoteError(f"malformed verifier key: Ed25519 key must be 32 bytes, got {len(public_key)}")
    if bytes.fromhex(hash16) != key_hash(name, key_type, public_key):
        raise NoteError("invalid verifier key: key ID does not match name and key")
    return Verifier(name=name, key_type=key_type, key_hash=bytes.fromhex(hash16), public_key=public_key)


class SignerKey(NamedTuple):
    """A private key read from Go's ``PRIVATE+KEY+...`` signer-key text."""

    name: str
    key_type: int
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> Verifier:
        """The matching public :class:`Verifier`."""
        return Verifier.from_public_key(self.name, self.private_key.public_key(), self.key_type)


def format_skey(name: str, private_key: Ed25519PrivateKey, key_type: int = KEY_TYPE_ED25519) -> str:
    """Go ``sumdb/note`` signer-key text, ``PRIVATE+KEY+name+hexid+base64(type || seed)``.

    The ``PRIVATE+KEY`` prefix is Go's guard against pasting a secret where a vkey belongs.
    """
    verifier = Verifier.from_public_key(name, private_key.public_key(), key_type)
    seed = private_key.private_bytes_raw()
    return f"PRIVATE+KEY+{name}+{verifier.key_hash.hex()}+{b64encode(bytes([key_type]) + seed)}"


def parse_skey(skey: str) -> SignerKey:
    """Parse Go's signer-key text; the key ID must match the public key derived from the seed."""
    prefix = "PRIVATE+KEY+"
    if not isinstance(skey, str) or not skey.startswith(prefix):
        raise NoteError("malformed signer key: want PRIVATE+KEY+<name>+<8 hex digits>+<base64 seed>")
    name, sep1, rest = skey[len(prefix) :].partition("+")
    hash16, sep2, key64 = rest.partition("+")
    raw = b64decode(key64)
    if not sep1 or not sep2 or not _HEX8.fullmatch(hash16) or not is_valid_name(name) or not raw:
        raise NoteError("malformed signer key")
    key_type, seed = raw[0], raw[1:]
    if key_type not in SUPPORTED_KEY_TYPES or len(seed) != 32:
        raise NoteError("malformed signer key: unsupported type or seed length")
    private_key = Ed25519PrivateKey.from_private_bytes(seed)
    signer = SignerKey(name, key_type, private_key)
    if signer.verifier.key_hash != bytes.fromhex(hash16):
        raise NoteError("invalid signer key: key ID does not match the key")
    return signer
