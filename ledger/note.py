"""Checkpoints in the C2SP signed-note / tlog-checkpoint text form, and witness cosignatures.

Why this module exists: the ledger's own checkpoint format (DESIGN.md, section Ledger) is only
useful to a regulator who runs Keyong's verifier. Publishing the same tree heads as C2SP
``tlog-checkpoint`` notes (https://c2sp.org/tlog-checkpoint) lets any off-the-shelf transparency
tooling -- Go's ``golang.org/x/mod/sumdb/note``, Sigsum, litewitness/torchwood witnesses -- check
them, and lets independent *witnesses* cosign them (https://c2sp.org/tlog-cosignature,
``cosignature/v1``). A regulator can then require an N-of-M witness quorum
(:class:`WitnessPolicy`): a log operator who shows the regulator one history and the public
another (a split view) would need N witnesses to collude.

Formats implemented byte-exactly (specs: C2SP ``signed-note``, ``tlog-checkpoint``,
``tlog-cosignature``):

* verifier key (vkey): ``<name>+<hex key ID>+<base64(type byte || public key)>``;
* key ID: ``SHA-256(name || 0x0A || type byte || public key)[:4]``;
* signed note: text ending in ``\\n``, a blank line, then lines
  ``— <name> <base64(key ID || signature)>\\n`` (em dash U+2014);
* checkpoint body: ``<origin>\\n<tree size>\\n<base64(root hash)>\\n[<extension line>\\n...]``;
* cosignature/v1 (type 0x04): signature bytes ``u64 big-endian timestamp || Ed25519 signature``
  over ``"cosignature/v1\\ntime <timestamp>\\n" || checkpoint body``.

Only Ed25519 keys are supported: type 0x01 for a log's own note signatures and 0x04 for witness
cosignatures. Everything is parsed strictly (canonical base64, canonical decimal, size limits)
because this code sits on a trust boundary; where this is stricter than the Go reference
implementation it is said so at the point of the check.

This package imports nothing of Keyong's: standard library and ``cryptography`` only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "COSIGNATURE_V1_HEADER",
    "EMPTY_TREE_ROOT",
    "KEY_TYPE_COSIGNATURE_V1",
    "KEY_TYPE_ED25519",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteError",
    "PolicyError",
    "SignerKey",
    "UnverifiedNoteError",
    "Verifier",
    "WitnessPolicy",
    "WitnessedCheckpoint",
    "add_signature_lines",
    "cosign",
    "cosignature_message",
    "format_skey",
    "format_vkey",
    "key_hash",
    "open_note",
    "parse_checkpoint_body",
    "parse_skey",
    "parse_vkey",
    "sign_note",
    "verify_cosignature",
]

#: signed-note signature type for plain Ed25519 note signatures (what a log signs its checkpoint with).
KEY_TYPE_ED25519 = 0x01
#: signed-note signature type for tlog-cosignature timestamped Ed25519 witness cosignatures.
KEY_TYPE_COSIGNATURE_V1 = 0x04
_SUPPORTED_KEY_TYPES = frozenset({KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE_V1})

#: Maximum signature lines in a note. signed-note says verifiers SHOULD limit it and MUST accept
#: at least 16; 100 is the limit of Go's ``sumdb/note``, so we reject exactly what Go rejects.
MAX_SIGNATURES = 100
#: Maximum size of a note or checkpoint body, in UTF-8 bytes (torchwood's ``maxCheckpointSize``).
MAX_NOTE_SIZE = 1_000_000
#: tlog-cosignature: the timestamp "MUST NOT exceed 2^63 - 1"; tree sizes are int64 in Go too.
_MAX_INT64 = 2**63 - 1
#: torchwood refuses origins longer than 255 bytes (they must fit the ML-DSA cosigned message);
#: refusing them too means we never publish a checkpoint a deployed witness would reject.
_MAX_ORIGIN_BYTES = 255

#: Domain separation line that starts every cosignature/v1 signed message.
COSIGNATURE_V1_HEADER = b"cosignature/v1\n"
#: RFC 6962 root of the empty tree, SHA-256 of the empty string; a size-0 checkpoint must carry it.
EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()

_SIG_PREFIX = "\u2014 "  # em dash, space: the start of every signature line
_ED25519_SIG_SIZE = 64
_COSIGNATURE_V1_SIZE = 8 + _ED25519_SIG_SIZE

# Unicode White_Space, which is what Go's unicode.IsSpace tests; str.isspace() differs (it also
# accepts U+001C..U+001F), so key-name validation spells the set out to match the reference.
_UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")

# Ed25519 points of small order, by their y coordinate mod p (identity, order 2, order 4, order 8).
_P25519 = 2**255 - 19
_Y_ORDER8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
_SMALL_ORDER_Y = frozenset({0, 1, _P25519 - 1, _Y_ORDER8, _P25519 - _Y_ORDER8})


class NoteError(ValueError):
    """A key, note, checkpoint or cosignature is malformed or does not verify."""


class UnverifiedNoteError(NoteError):
    """The note is well formed but carries no signature from any of the known keys.

    signed-note: "If no signature from a known key verifies successfully, clients MUST reject
    the note." Kept distinct so a caller can tell "nobody I trust signed" from "forged".
    """


class PolicyError(ValueError):
    """A witness policy is malformed, or a note does not satisfy it."""


# ---------------------------------------------------------------------------------------------
# Small strict helpers


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(text: str) -> bytes | None:
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
    return raw if _b64encode(raw) == text else None


def _utf8(text: str) -> bytes:
    """UTF-8 of ``text``; NoteError for lone surrogates, which no valid UTF-8 note can hold."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("text is not valid UTF-8") from exc


def _has_control(text: str) -> bool:
    """signed-note: notes "MUST NOT contain any ASCII control characters ... other than newline"."""
    return any(ch < " " and ch != "\n" for ch in text)


def _is_valid_name(name: object) -> bool:
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


def _public_bytes(key: bytes | Ed25519PublicKey) -> bytes:
    if isinstance(key, Ed25519PublicKey):
        return key.public_bytes_raw()
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key)
    raise TypeError(f"expected an Ed25519 public key or 32 bytes, got {type(key).__name__}")


def _check_ed25519_public_key(public_key: bytes) -> None:
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


def _ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    if len(signature) != _ED25519_SIG_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Keys


def key_hash(name: str, key_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID of signed-note: ``SHA-256(name || 0x0A || type byte || public key)[:4]``.

    It is an identifier, not a security boundary: signed-note notes that anyone can make a key
    collide with a given ID; that only yields signatures that fail to verify.
    """
    if not isinstance(key_type, int) or isinstance(key_type, bool) or not 0 <= key_type <= 0xFF:
        raise ValueError(f"key type must be one byte, got {key_type!r}")
    digest = hashlib.sha256(_utf8(name) + b"\n" + bytes([key_type]) + _public_bytes(public_key)).digest()
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
        if not _is_valid_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}: must be non-empty, without spaces or '+'")
        if self.key_type not in _SUPPORTED_KEY_TYPES or isinstance(self.key_type, bool):
            raise NoteError(f"unsupported key type {self.key_type!r} (supported: 0x01 Ed25519, 0x04 cosignature/v1)")
        if not isinstance(self.public_key, bytes) or not isinstance(self.key_hash, bytes):
            raise TypeError("public_key and key_hash must be bytes")
        _check_ed25519_public_key(self.public_key)
        if self.key_hash != key_hash(self.name, self.key_type, self.public_key):
            raise NoteError(f"key ID {self.key_hash.hex()} does not match key {self.name!r}")

    @classmethod
    def from_public_key(
        cls, name: str, public_key: bytes | Ed25519PublicKey, key_type: int = KEY_TYPE_ED25519
    ) -> Verifier:
        """The verifier for ``public_key`` under ``name`` and ``key_type``, with its key ID computed."""
        raw = _public_bytes(public_key)
        if not _is_valid_name(name):
            raise NoteError(f"invalid key name {name!r}: must be non-empty, without spaces or '+'")
        return cls(name=name, key_type=key_type, key_hash=key_hash(name, key_type, raw), public_key=raw)

    @property
    def key_id(self) -> int:
        """The key ID as the big-endian uint32 signature lines carry."""
        return int.from_bytes(self.key_hash, "big")

    @property
    def vkey(self) -> str:
        """The signed-note verifier key text: ``name+hexid+base64(type || key)``."""
        return f"{self.name}+{self.key_hash.hex()}+{_b64encode(bytes([self.key_type]) + self.public_key)}"


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
    if not _is_valid_name(name):
        raise NoteError(f"malformed verifier key: invalid key name {name!r}")
    raw = _b64decode(key64)
    if not raw:
        raise NoteError("malformed verifier key: key is not canonical base64")
    key_type, public_key = raw[0], raw[1:]
    if key_type not in _SUPPORTED_KEY_TYPES:
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
    return f"PRIVATE+KEY+{name}+{verifier.key_hash.hex()}+{_b64encode(bytes([key_type]) + seed)}"


def parse_skey(skey: str) -> SignerKey:
    """Parse Go's signer-key text; the key ID must match the public key derived from the seed."""
    prefix = "PRIVATE+KEY+"
    if not isinstance(skey, str) or not skey.startswith(prefix):
        raise NoteError("malformed signer key: want PRIVATE+KEY+<name>+<8 hex digits>+<base64 seed>")
    name, sep1, rest = skey[len(prefix) :].partition("+")
    hash16, sep2, key64 = rest.partition("+")
    raw = _b64decode(key64)
    if not sep1 or not sep2 or not _HEX8.fullmatch(hash16) or not _is_valid_name(name) or not raw:
        raise NoteError("malformed signer key")
    key_type, seed = raw[0], raw[1:]
    if key_type not in _SUPPORTED_KEY_TYPES or len(seed) != 32:
        raise NoteError("malformed signer key: unsupported type or seed length")
    private_key = Ed25519PrivateKey.from_private_bytes(seed)
    signer = SignerKey(name, key_type, private_key)
    if signer.verifier.key_hash != bytes.fromhex(hash16):
        raise NoteError("invalid signer key: key ID does not match the key")
    return signer


# ---------------------------------------------------------------------------------------------
# Checkpoints (C2SP tlog-checkpoint)


@dataclass(frozen=True)
class Checkpoint:
    """A tree head as a tlog-checkpoint note body: origin, tree size, RFC 6962 root, extensions.

    Validated on construction so that :meth:`body` always yields text that
    :func:`parse_checkpoint_body` accepts and maps back to an equal object.
    """

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.extensions, tuple):
            object.__setattr__(self, "extensions", tuple(self.extensions))
        if not isinstance(self.origin, str) or not self.origin:
            raise NoteError("checkpoint origin must be a non-empty string")
        if "\n" in self.origin or _has_control(self.origin):
            raise NoteError("checkpoint origin must not contain newlines or control characters")
        if len(_utf8(self.origin)) > _MAX_ORIGIN_BYTES:
            raise NoteError(f"checkpoint origin longer than {_MAX_ORIGIN_BYTES} bytes")
        if not isinstance(self.tree_size, int) or isinstance(self.tree_size, bool):
            raise NoteError("tree size must be an int")
        if not 0 <= self.tree_size <= _MAX_INT64:
            raise NoteError("tree size out of range [0, 2^63-1]")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != 32:
            raise NoteError("root hash must be 32 bytes")
        if self.tree_size == 0 and self.root_hash != EMPTY_TREE_ROOT:
            # tlog-checkpoint: the root is the RFC 6962 root "at the specified tree size"; for 0
            # leaves that is SHA-256(""), and anything else is a lie (Sigsum rejects it too).
            raise NoteError("an empty tree's root hash must be SHA-256 of the empty string")
        for line in self.extensions:
            # tlog-checkpoint: "Extension lines, if any, MUST be non-empty."
            if not isinstance(line, str) or not line or "\n" in line or _has_control(line):
                raise NoteError("extension lines must be non-empty single lines without control characters")
            _utf8(line)

    def body(self) -> bytes:
        """The note text: ``origin\\nsize\\nbase64(root)\\n`` then one line per extension."""
        lines = [self.origin, str(self.tree_size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")


def parse_checkpoint_body(body: bytes | str) -> Checkpoint:
    """Parse a tlog-checkpoint note text strictly; NoteError on anything non-canonical.

    Valid UTF-8 without control characters, a final newline, at least three lines, a non-empty
    origin, a decimal size without leading zeros (except ``0``) up to 2^63-1, canonical base64
    of exactly 32 bytes, non-empty extension lines. The result re-serializes to ``body``.
    """
    if isinstance(body, str):
        body = _utf8(body)
    if not isinstance(body, bytes | bytearray):
        raise TypeError("checkpoint body must be bytes")
    if len(body) > MAX_NOTE_SIZE:
        raise NoteError("checkpoint body too large")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("checkpoint body is not valid UTF-8") from exc
    if _has_control(text):
        raise NoteError("checkpoint body contains control characters")
    if not text.endswith("\n"):
        raise NoteError("checkpoint body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint body needs origin, size and root hash lines")
    origin, size_line, root_line, *extensions = lines
    if not _DECIMAL.fullmatch(size_line):
        raise NoteError(f"checkpoint tree size {size_line!r} is not canonical decimal")
    root = _b64decode(root_line)
    if root is None or len(root) != 32:
        raise NoteError("checkpoint root hash is not canonical base64 of 32 bytes")
    checkpoint = Checkpoint(origin, int(size_line), root, tuple(extensions))
    if checkpoint.body() != body:
        # Backstop: one checkpoint, one byte string. The checks above should already ensure it;
        # if one of them were ever loosened, a re-spelling ("010") would still be refused here.
        raise NoteError("checkpoint body is not canonical")
    return checkpoint


# ---------------------------------------------------------------------------------------------
# Signed notes (C2SP signed-note)


@dataclass(frozen=True)
class _SignatureLine:
    name: str
    key_hash: bytes
    signature: bytes  # the bytes after the 4-byte key ID
    line: str  # the line as written, without its newline


def _parse_signature_line(line: str) -> _SignatureLine:
    """``— <name> <base64(key ID || signature)>`` (no newline); NoteError when malformed."""
    if not line.startswith(_SIG_PREFIX):
        raise NoteError("malformed note: signature line does not start with an em dash and a space")
    name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    raw = _b64decode(b64)
    if not _is_valid_name(name) or raw is None or len(raw) < 5:
        raise NoteError("malformed note: bad signature line")
    return _SignatureLine(name=name, key_hash=raw[:4], signature=raw[4:], line=line)


def _format_signature_line(name: str, blob: bytes) -> str:
    return f"{_SIG_PREFIX}{name} {_b64encode(blob)}\n"


def _note_text(note: str | bytes) -> str:
    """Decode and size-check a note; NoteError for non-UTF-8, control characters, oversize."""
    if isinstance(note, bytes | bytearray):
        if len(note) > MAX_NOTE_SIZE:
            raise NoteError("note too large")
        try:
            text = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("malformed note: not valid UTF-8") from exc
    elif isinstance(note, str):
        text = note
        if len(_utf8(text)) > MAX_NOTE_SIZE:
            raise NoteError("note too large")
    else:
        raise TypeError("note must be str or bytes")
    if _has_control(text):
        raise NoteError("malformed note: control character")
    return text


def _split_note(note: str | bytes) -> tuple[str, list[_SignatureLine]]:
    """Split a note into its text and parsed signature lines, verifying nothing.

    signed-note: the text is separated from the signatures by the *last* empty line; the text
    keeps its final newline; the signature block is one or more newline-terminated lines.
    """
    text = _note_text(note)
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("malformed note: signature block missing or without final newline")
    raw_lines = block[:-1].split("\n")
    if len(raw_lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return body, [_parse_signature_line(line) for line in raw_lines]


def sign_note(body: bytes, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign ``body`` with an Ed25519 (type 0x01) key and return the signed note.

    The result is ``body`` + ``"\\n"`` + ``"— name base64(key ID || signature)\\n"``: with Go's
    PeterNeumann key this reproduces Go ``note.Sign`` byte for byte (Ed25519 is deterministic).
    """
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise TypeError("note body must be bytes")
    text = _note_text(body)
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    verifier = Verifier.from_public_key(name, private_key.public_key(), KEY_TYPE_ED25519)
    signature = private_key.sign(body)
    note = text + "\n" + _format_signature_line(name, verifier.key_hash + signature)
    _note_text(note)  # the size limit applies to what we emit, too
    return note


def add_signature_lines(note: str, lines: Iterable[str]) -> str:
    """Append signature lines (e.g. witness cosignatures from :func:`cosign`) to a signed note.

    Each line may end with one newline. Lines are checked for form only -- not verified -- and
    a line already present is not added twice. NoteError if the result would be malformed.
    """
    body, existing = _split_note(note)
    out = [sig.line for sig in existing]
    for line in lines:
        if not isinstance(line, str):
            raise TypeError("signature lines must be str")
        bare = line.removesuffix("\n")
        if "\n" in bare:
            raise NoteError("a signature line must be a single line")
        if _has_control(bare):
            raise NoteError("malformed note: control character")
        _parse_signature_line(bare)
        if bare not in out:
            out.append(bare)
    if len(out) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    result = body + "\n" + "".join(line + "\n" for line in out)
    _note_text(result)
    return result


def _verify_signature(verifier: Verifier, body: bytes, signature: bytes) -> tuple[bool, int | None]:
    """Check one signature by ``verifier`` over note text ``body``: (valid, cosignature time)."""
    if verifier.key_type == KEY_TYPE_COSIGNATURE_V1:
        timestamp = _verify_cosignature_blob(body, signature, verifier.public_key)
        return timestamp is not None, timestamp
    return _ed25519_verify(verifier.public_key, signature, body), None


def _open(note: str | bytes, verifiers: Sequence[Verifier]) -> tuple[bytes, dict[Verifier, int | None]]:
    """Parse and verify; the body and each known signer that verified, with its cosignature time."""
    text, lines = _split_note(note)
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
        candidates = known.get((sig.name, sig.key_hash))
        if not candidates:
            continue  # signed-note: verifiers MUST ignore signatures from unknown keys
        if len(candidates) > 1:
            raise NoteError(f"ambiguous key {sig.name}+{sig.key_hash.hex()}")
        verifier = candidates[0]
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
    body, verified = _open(text, verifiers)
    return body, list(verified)


# ---------------------------------------------------------------------------------------------
# Witness cosignatures (C2SP tlog-cosignature, cosignature/v1)


def cosignature_message(checkpoint_body: bytes, timestamp: int) -> bytes:
    """The cosignature/v1 signed message: header line, ``time <decimal>`` line, whole body."""
    return COSIGNATURE_V1_HEADER + b"time %d\n" % timestamp + checkpoint_body


def _check_timestamp(timestamp: int) -> None:
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not 0 <= timestamp <= _MAX_INT64:
        raise NoteError("cosignature timestamp must be an int in [0, 2^63-1]")


def _verify_cosignature_blob(body: bytes, blob: bytes, public_key: bytes) -> int | None:
    """``timestamp || signature`` over ``body``; the timestamp when valid, else None.

    Like torchwood, the body must be a valid checkpoint: a witness key signs only checkpoints,
    so a "cosignature" over anything else is not one.
    """
    if len(blob) != _COSIGNATURE_V1_SIZE:
        return None
    timestamp = int.from_bytes(blob[:8], "big")
    if timestamp > _MAX_INT64:
        return None
    try:
        parse_checkpoint_body(body)
    except NoteError:
        return None
    if not _ed25519_verify(public_key, blob[8:], cosignature_message(body, timestamp)):
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
    return _format_signature_line(name, verifier.key_hash + timestamp.to_bytes(8, "big") + signature)


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
    if "\n" in bare or _has_control(bare):
        return None
    try:
        sig = _parse_signature_line(bare)
    except NoteError:
        return None
    if sig.name != witness.name or sig.key_hash != witness.key_hash:
        return None
    return _verify_cosignature_blob(bytes(checkpoint_body), sig.signature, witness.public_key)


# ---------------------------------------------------------------------------------------------
# Witness policy


@dataclass(frozen=True)
class WitnessedCheckpoint:
    """A checkpoint that met a :class:`WitnessPolicy`: the log that signed it and each counted
    witness's (latest) cosignature timestamp, in POSIX seconds."""

    checkpoint: Checkpoint
    log: Verifier
    cosignatures: Mapping[Verifier, int]


@dataclass(frozen=True)
class WitnessPolicy:
    """Require the log's signature and cosignatures from at least ``threshold`` of ``witnesses``.

    This is the quorum a regulator sets (tlog-cosignature: "Log clients can verify a quorum of
    cosignatures to prevent split-view attacks"). Witnesses are type 0x04 verifiers, counted once
    each however many lines they contributed. Because a cosignature/v1 message does not commit
    to the witness name, one Ed25519 key under two names would let one witness count twice, so
    the witnesses must have pairwise distinct public keys (and names/key IDs).
    """

    threshold: int
    witnesses: tuple[Verifier, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.witnesses, tuple):
            object.__setattr__(self, "witnesses", tuple(self.witnesses))
        if not isinstance(self.threshold, int) or isinstance(self.threshold, bool):
            raise PolicyError("threshold must be an int")
        if not 0 <= self.threshold <= len(self.witnesses):
            raise PolicyError(f"threshold {self.threshold} outside [0, {len(self.witnesses)}] witnesses")
        ids: set[tuple[str, bytes]] = set()
        keys: set[bytes] = set()
        for witness in self.witnesses:
            if not isinstance(witness, Verifier) or witness.key_type != KEY_TYPE_COSIGNATURE_V1:
                raise PolicyError("witnesses must be type 0x04 (cosignature/v1) verifiers")
            if (witness.name, witness.key_hash) in ids or witness.public_key in keys:
                raise PolicyError(f"witness {witness.name!r} is listed twice (same name and key ID, or same key)")
            ids.add((witness.name, witness.key_hash))
            keys.add(witness.public_key)

    @classmethod
    def parse(cls, text: str) -> WitnessPolicy:
        """Read a policy from text: ``witness <label> <vkey>`` lines and one ``quorum <N>`` line.

        ``#`` starts a comment line; blank lines are ignored. Labels are local names (as in the
        torchwood/Sigsum policy formats) that must be unique. ``N`` is a non-negative decimal
        no larger than the number of witnesses. PolicyError, with the line number, otherwise.
        """
        threshold: int | None = None
        labels: set[str] = set()
        witnesses: list[Verifier] = []
        for number, raw in enumerate(text.split("\n"), start=1):
            fields = raw.split()
            if not fields or fields[0].startswith("#"):
                continue
            keyword = fields[0]
            if keyword == "witness":
                if len(fields) != 3:
                    raise PolicyError(f"line {number}: want 'witness <label> <vkey>'")
                label, vkey = fields[1], fields[2]
                if label in labels:
                    raise PolicyError(f"line {number}: duplicate witness label {label!r}")
                try:
                    witness = parse_vkey(vkey)
                except NoteError as exc:
                    raise PolicyError(f"line {number}: {exc}") from exc
                if witness.key_type != KEY_TYPE_COSIGNATURE_V1:
                    raise PolicyError(f"line {number}: witness vkey must have key type 0x04 (cosignature/v1)")
                labels.add(label)
                witnesses.append(witness)
            elif keyword == "quorum":
                if len(fields) != 2 or not re.fullmatch(r"[0-9]{1,9}", fields[1]):
                    raise PolicyError(f"line {number}: want 'quorum <non-negative integer>'")
                if threshold is not None:
                    raise PolicyError(f"line {number}: more than one quorum line")
                threshold = int(fields[1])
            else:
                raise PolicyError(f"line {number}: unknown keyword {keyword!r}")
        if threshold is None:
            raise PolicyError("policy has no quorum line")
        return cls(threshold=threshold, witnesses=tuple(witnesses))

    def to_text(self) -> str:
        """The policy in the text form :meth:`parse` reads (labels are the witnesses' key names)."""
        lines = [f"witness {w.name} {w.vkey}" for w in self.witnesses]
        return "".join(line + "\n" for line in [*lines, f"quorum {self.threshold}"])

    def verify(
        self, note_text: str | bytes, log_verifier: Verifier, *, origin: str | None = None
    ) -> WitnessedCheckpoint:
        """Check a cosigned checkpoint note against the policy; PolicyError when it falls short.

        Requires: a well-formed note whose every known signature verifies (signed-note); a valid
        signature by ``log_verifier`` (type 0x01); a checkpoint body; if ``origin`` is given,
        that origin (tlog-checkpoint only says the log's key name SHOULD match it, and
        sum.golang.org's does not); and valid cosignatures from at least ``threshold`` distinct
        configured witnesses. The log's own key is never accepted as a witness.
        """
        if log_verifier.key_type != KEY_TYPE_ED25519:
            raise PolicyError("the log verifier must have key type 0x01 (Ed25519)")
        if any(w.public_key == log_verifier.public_key for w in self.witnesses):
            raise PolicyError("the log's own key is configured as a witness")
        try:
            body, verified = _open(note_text, [log_verifier, *self.witnesses])
            checkpoint = parse_checkpoint_body(body)
        except NoteError as exc:
            raise PolicyError(f"checkpoint rejected: {exc}") from exc
        if log_verifier not in verified:
            raise PolicyError("checkpoint is not signed by the log")
        if origin is not None and checkpoint.origin != origin:
            raise PolicyError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
        cosignatures = {v: t for v, t in verified.items() if v in self.witnesses and t is not None}
        if len(cosignatures) < self.threshold:
            raise PolicyError(f"{len(cosignatures)} witness cosignatures, policy requires {self.threshold}")
        return WitnessedCheckpoint(checkpoint=checkpoint, log=log_verifier, cosignatures=cosignatures)

    def satisfied_by(self, note_text: str | bytes, log_verifier: Verifier, *, origin: str | None = None) -> bool:
        """Whether :meth:`verify` accepts the note (False instead of PolicyError)."""
        try:
            self.verify(note_text, log_verifier, origin=origin)
        except PolicyError:
            return False
        return True
