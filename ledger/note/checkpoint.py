"""Checkpoints (C2SP tlog-checkpoint): the note body that states a log's tree head."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ledger.note.encoding import MAX_INT64, MAX_NOTE_SIZE, b64decode, b64encode, has_control, utf8
from ledger.note.errors import NoteError

__all__ = ["EMPTY_TREE_ROOT", "Checkpoint", "parse_checkpoint_body"]

#: torchwood refuses origins longer than 255 bytes (they must fit the ML-DSA cosigned message);
#: refusing them too means we never publish a checkpoint a deployed witness would reject.
_MAX_ORIGIN_BYTES = 255

#: RFC 6962 root of the empty tree, SHA-256 of the empty string; a size-0 checkpoint must carry it.
EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


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
        if "\n" in self.origin or has_control(self.origin):
            raise NoteError("checkpoint origin must not contain newlines or control characters")
        if len(utf8(self.origin)) > _MAX_ORIGIN_BYTES:
            raise NoteError(f"checkpoint origin longer than {_MAX_ORIGIN_BYTES} bytes")
        if not isinstance(self.tree_size, int) or isinstance(self.tree_size, bool):
            raise NoteError("tree size must be an int")
        if not 0 <= self.tree_size <= MAX_INT64:
            raise NoteError("tree size out of range [0, 2^63-1]")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != 32:
            raise NoteError("root hash must be 32 bytes")
        if self.tree_size == 0 and self.root_hash != EMPTY_TREE_ROOT:
            # tlog-checkpoint: the root is the RFC 6962 root "at the specified tree size"; for 0
            # leaves that is SHA-256(""), and anything else is a lie (Sigsum rejects it too).
            raise NoteError("an empty tree's root hash must be SHA-256 of the empty string")
        for line in self.extensions:
            # tlog-checkpoint: "Extension lines, if any, MUST be non-empty."
            if not isinstance(line, str) or not line or "\n" in line or has_control(line):
                raise NoteError("extension lines must be non-empty single lines without control characters")
            utf8(line)

    def body(self) -> bytes:
        """The note text: ``origin\\nsize\\nbase64(root)\\n`` then one line per extension."""
        lines = [self.origin, str(self.tree_size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")


def parse_checkpoint_body(body: bytes | str) -> Checkpoint:
    """Parse a tlog-checkpoint note text strictly; NoteError on anything non-canonical.

    Valid UTF-8 without control characters, a final newline, at least three lines, a non-empty
    origin, a decimal size without leading zeros (except ``0``) up to 2^63-1, canonical base64
    of exactly 32 bytes, non-empty extension lines. The result re-serializes to ``body``.
    """
    if isinstance(body, str):
        body = utf8(body)
    if not isinstance(body, bytes | bytearray):
        raise TypeError("checkpoint body must be bytes")
    if len(body) > MAX_NOTE_SIZE:
        raise NoteError("checkpoint body too large")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("checkpoint body is not valid UTF-8") from exc
    if has_control(text):
        raise NoteError("checkpoint body contains control characters")
    if not text.endswith("\n"):
        raise NoteError("checkpoint body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint body needs origin, size and root hash lines")
    origin, size_line, root_line, *extensions = lines
    if not _DECIMAL.fullmatch(size_line):
        raise NoteError(f"checkpoint tree size {size_line!r} is not canonical decimal")
    root = b64decode(root_line)
    if root is None or len(root) != 32:
        raise NoteError("checkpoint root hash is not canonical base64 of 32 bytes")
    checkpoint = Checkpoint(origin, int(size_line), root, tuple(extensions))
    if checkpoint.body() != body:
        # Backstop: one checkpoint, one byte string. The checks above should already ensure it;
        # if one of them were ever loosened, a re-spelling ("010") would still be refused here.
        raise NoteError("checkpoint body is not canonical")
    return checkpoint
