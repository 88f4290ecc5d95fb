"""Witness cosignatures (C2SP tlog-cosignature, cosignature/v1)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.note.checkpoint import parse_checkpoint_body
from ledger.note.encoding import ED25519_SIG_SIZE, MAX_INT64, ed25519_verify, has_control
from ledger.note.errors import NoteError
from ledger.note.keys import KEY_TYPE_COSIGNATURE_V1, Verifier
from ledger.note.lines import format_signature_line, parse_signature_line

__all__ = ["COSIGNATURE_V1_HEADER", "cosign", "cosignature_message", "verify_cosignature", "verify_cosignature_blob"]

#: Domain separation line that starts every cosignature/v1 signed message.
COSIGNATURE_V1_HEADER = b"cosignature/v1\n"
_COSIGNATURE_V1_SIZE = 8 + ED25519_SIG_SIZE


def cosignature_message(checkpoint_body: bytes, timestamp: int) -> bytes:
    """The cosignature/v1 signed message: header line, ``time <decimal>`` line, whole body."""
    return COSIGNATURE_V1_HEADER + b"time %d\n" % timestamp + checkpoint_body


def _check_timestamp(timestamp: int) -> None:
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_INT64:
        raise NoteError("cosignature timestamp must be an int in [0, 2^63-1]")


def verify_cosignature_blob(body: bytes, blob: bytes, public_key: bytes) -> int | None:
    """``timestamp || signature`` over ``body``; the timestamp when valid, else None.

    Like torchwood, the body must be a valid checkpoint: a witness key signs only checkpoints,
    so a "cosignature" over anything else is not one.
    """
    if len(blob) != _COSIGNATURE_V1_SIZE:
        return None
    timestamp = int.from_bytes(blob[:8], "big")
    if timestamp > MAX_INT64:
        return None
    try:
        parse_checkpoint_body(body)
    except NoteError:
        return None
    if not ed25519_verify(public_key, blob[8:], cosignature_message(body, timestamp)):
        return None
    return timestamp


def cosign(checkpoint_body: bytes, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> str:
    """A witness's cosignature/v1 signature line (with final newline) over a checkpoint body.

    The key ID uses type byte 0x04; the signature bytes are the 8-byte big-endian
    ``timestamp`` followed by the Ed25519 signature of :func:`cosignature_message`. Append the
    line to the log-signed note with :func:`add_signature_lines`. tlog-cosignature requires a
    witness operator to use a distinct key per witness name, since the message does not
    commit to the name.
    """
    _check_timestamp(timestamp)
    if isinstance(checkpoint_body, bytearray | memoryview):
        checkpoint_body = bytes(checkpoint_body)
    parse_checkpoint_body(checkpoint_body)
    verifier = Verifier.from_public_key(name, private_key.public_key(), KEY_TYPE_COSIGNATURE_V1)
    signature = private_key.sign(cosignature_message(checkpoint_body, timestamp))
    return format_signature_line(name, verifier.key_hash + timestamp.to_bytes(8, "big") + signature)


def verify_cosignature(checkpoint_body: bytes, line: str, witness: Verifier) -> int | None:
    """The timestamp of a valid cosignature/v1 line by ``witness`` over ``checkpoint_body``.

    None if the line is malformed, names another key (name or key ID differ), or does not
    verify. ``line`` may end with one newline. ``witness`` must be a type 0x04 verifier.
    """
    if witness.key_type != KEY_TYPE_COSIGNATURE_V1:
        raise ValueError("witness verifier must have key type 0x04 (cosignature/v1)")
    if not isinstance(line, str):
        return None
    bare = line.removesuffix("\n")
    if "\n" in bare or has_control(bare):
        return None
    try:
        sig = parse_signature_line(bare)
    except NoteError:
        return None
    if sig.name != witness.name or sig.key_hash != witness.key_hash:
        return None
    return verify_cosignature_blob(bytes(checkpoint_body), sig.signature, witness.public_key)
