"""The strict encodings and limits every part of the note formats shares.

Everything is parsed strictly (canonical base64, valid UTF-8, no control characters, size limits)
because this code sits on a trust boundary; where this is stricter than the Go reference
implementation it is said so at the point of the check.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.note.errors import NoteError

__all__ = [
    "ED25519_SIG_SIZE",
    "MAX_INT64",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "b64decode",
    "b64encode",
    "check_ed25519_public_key",
    "ed25519_verify",
    "has_control",
    "is_valid_name",
    "public_bytes",
    "utf8",
]

#: Maximum signature lines in a note. signed-note says verifiers SHOULD limit it and MUST accept
#: at least 16; 100 is the limit of Go's ``sumdb/note``, so we reject exactly what Go rejects.
MAX_SIGNATURES = 100
#: Maximum size of a note or checkpoint body, in UTF-8 bytes (torchwood's ``maxCheckpointSize``).
MAX_NOTE_SIZE = 1_000_000
#: tlog-cosignature: the timestamp "MUST NOT exceed 2^63 - 1"; tree sizes are int64 in Go too.
MAX_INT64 = 2**63 - 1
ED25519_SIG_SIZE = 64

# Unicode White_Space, which is what Go's unicode.IsSpace tests; str.isspace() differs (it also
# accepts U+001C..U+001F), so key-name validation spells the set out to match the reference.
_UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

# Ed25519 points of small order, by their y coordinate mod p (identity, order 2, order 4, order 8).
_P25519 = 2**255 - 19
_Y_ORDER8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
_SMALL_ORDER_Y = frozenset({0, 1, _P25519 - 1, _Y_ORDER8, _P25519 - _Y_ORDER8})


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64decode(text: str) -> bytes | None:
    """Standard base64 (RFC 4648 section 4), canonical only; None when it is not.

    Stricter than Go's ``encoding/base64.StdEncoding``, which accepts non-zero padding bits:
    with one accepted spelling per byte string, a signature line cannot be re-spelled to dodge
    duplicate detection, and every honest signer produces the canonical form anyway.
    """
    if not text.isascii():
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if b64encode(raw) == text else None


def utf8(text: str) -> bytes:
    """UTF-8 of ``text``; NoteError for lone surrogates, which no valid UTF-8 note can hold."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("text is not valid UTF-8") from exc


def has_control(text: str) -> bool:
    """signed-note: notes "MUST NOT contain any ASCII control characters ... other than newline"."""
    return any(ch < " " and ch != "\n" for ch in text)


def is_valid_name(name: object) -> bool:
    """signed-note: key names "MUST be non-empty and MUST NOT contain any Unicode spaces or plus"."""
    if not isinstance(name, str) or not name or "+" in name:
        return False
    if any(ch in _UNICODE_SPACES or ch < " " for ch in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def public_bytes(key: bytes | Ed25519PublicKey) -> bytes:
    if isinstance(key, Ed25519PublicKey):
        return key.public_bytes_raw()
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key)
    raise TypeError(f"expected an Ed25519 public key or 32 bytes, got {type(key).__name__}")


def check_ed25519_public_key(public_key: bytes) -> None:
    """Refuse public keys no honest signer has: wrong length, non-canonical, or of small order.

    Go's ``note.NewVerifier`` accepts any 32 bytes. We do not, because OpenSSL (behind
    ``cryptography``) verifies cofactorless without rejecting small-order keys: under the
    identity key, ``R = identity, S = 0`` verifies for *every* message. A witness vkey like that
    in a regulator's policy would let anyone forge that witness's cosignatures. Non-canonical
    encodings (y >= p) are refused so a point has exactly one vkey and one key ID.
    """
    if len(public_key) != 32:
        raise NoteError(f"Ed25519 public key must be 32 bytes, got {len(public_key)}")
    y = int.from_bytes(public_key, "little") & ((1 << 255) - 1)
    if y >= _P25519:
        raise NoteError("Ed25519 public key is not canonically encoded")
    if y in _SMALL_ORDER_Y:
        raise NoteError("Ed25519 public key is a point of small order")


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    if len(signature) != ED25519_SIG_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
