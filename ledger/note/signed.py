"""Signing and opening signed notes (C2SP signed-note), Go ``sumdb/note`` compatible."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.note.cosignature import verify_cosignature_blob
from ledger.note.encoding import MAX_SIGNATURES, ed25519_verify, has_control
from ledger.note.errors import NoteError, UnverifiedNoteError
from ledger.note.keys import KEY_TYPE_COSIGNATURE_V1, KEY_TYPE_ED25519, Verifier
from ledger.note.lines import format_signature_line, note_text, parse_signature_line, split_note

__all__ = ["add_signature_lines", "open_note", "open_verified", "sign_note"]


def sign_note(body: bytes, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign ``body`` with an Ed25519 (type 0x01) key and return the signed note.

    The result is ``body`` + ``"\\n"`` + ``"— name base64(key ID || signature)\\n"``: with Go's
    PeterNeumann key this reproduces Go ``note.Sign`` byte for byte (Ed25519 is deterministic).
    """
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise TypeError("note body must be bytes")
    text = note_text(body)
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    verifier = Verifier.from_public_key(name, private_key.public_key(), KEY_TYPE_ED25519)
    signature = private_key.sign(body)
    note = text + "\n" + format_signature_line(name, verifier.key_hash + signature)
    note_text(note)  # the size limit applies to what we emit, too
    return note


def add_signature_lines(note: str, lines: Iterable[str]) -> str:
    """Append signature lines (e.g. witness cosignatures from :func:`cosign`) to a signed note.

    Each line may end with one newline. Lines are checked for form only -- not verified -- and
    a line already present is not added twice. NoteError if the result would be malformed.
    """
    body, existing = split_note(note)
    out = [sig.line for sig in existing]
    for line in lines:
        if not isinstance(line, str):
            raise TypeError("signature lines must be str")
        bare = line.removesuffix("\n")
        if "\n" in bare:
            raise NoteError("a signature line must be a single line")
        if has_control(bare):
            raise NoteError("malformed note: control character")
        parse_signature_line(bare)
        if bare not in out:
            out.append(bare)
    if len(out) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    result = body + "\n" + "".join(line + "\n" for line in out)
    note_text(result)
    return result


def _verify_signature(verifier: Verifier, body: bytes, signature: bytes) -> tuple[bool, int | None]:
    """Check one signature by ``verifier`` over note text ``body``: (valid, cosignature time)."""
    if verifier.key_type == KEY_TYPE_COSIGNATURE_V1:
        timestamp = verify_cosignature_blob(body, signature, verifier.public_key)
        return timestamp is not None, timestamp
    return ed25519_verify(verifier.public_key, signature, body), None


def open_verified(note: str | bytes, verifiers: Sequence[Verifier]) -> tuple[bytes, dict[Verifier, int | None]]:
    """Parse and verify; the body and each known signer that verified, with its cosignature time."""
    text, lines = split_note(note)
    body = text.encode("utf-8")
    known: dict[tuple[str, bytes], list[Verifier]] = {}
    for verifier in verifiers:
        if not isinstance(verifier, Verifier):
            raise TypeError("verifiers must be Verifier instances")
        candidates = known.setdefault((verifier.name, verifier.key_hash), [])
        if verifier not in candidates:
            candidates.append(verifier)
    verified: dict[Verifier, int | None] = {}
    for sig in lines:
        matching = known.get((sig.name, sig.key_hash))
        if not matching:
            continue  # signed-note: verifiers MUST ignore signatures from unknown keys
        if len(matching) > 1:
            raise NoteError(f"ambiguous key {sig.name}+{sig.key_hash.hex()}")
        verifier = matching[0]
        ok, timestamp = _verify_signature(verifier, body, sig.signature)
        if not ok:
            # signed-note: "If a signature from a known key fails to verify, clients SHOULD
            # reject the whole note." Go's note.Open does; so do we.
            raise NoteError(f"invalid signature for key {sig.name}+{sig.key_hash.hex()}")
        if verifier not in verified:
            verified[verifier] = timestamp
        elif timestamp is not None:
            previous = verified[verifier]
            verified[verifier] = timestamp if previous is None else max(previous, timestamp)
    if not verified:
        raise UnverifiedNoteError("note has no verifiable signatures")
    return body, verified


def open_note(text: str | bytes, verifiers: Sequence[Verifier]) -> tuple[bytes, list[Verifier]]:
    """Verify a signed note against known keys; return its text and the verifiers that signed.

    Follows signed-note and Go's ``note.Open``: signatures from unknown (name, key ID) pairs are
    ignored; a signature from a known key that fails to verify raises NoteError, as does any
    malformation (no blank line, no final newline, control characters, non-UTF-8, bad
    signature line, more than :data:`MAX_SIGNATURES` lines, over :data:`MAX_NOTE_SIZE`); two
    different known keys sharing a name and key ID raise NoteError when a signature uses them;
    if no known key signed, UnverifiedNoteError. Type 0x04 verifiers check cosignature/v1
    signatures (which requires the text to be a checkpoint). The list is in signature order.
    """
    body, verified = open_verified(text, verifiers)
    return body, list(verified)
