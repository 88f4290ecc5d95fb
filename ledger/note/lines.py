"""A signed note's text (C2SP signed-note): the body, the blank line, the signature lines."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.note.encoding import MAX_NOTE_SIZE, MAX_SIGNATURES, b64decode, b64encode, has_control, is_valid_name, utf8
from ledger.note.errors import NoteError

__all__ = ["SIG_PREFIX", "SignatureLine", "format_signature_line", "note_text", "parse_signature_line", "split_note"]

SIG_PREFIX = "\u2014 "  # em dash, space: the start of every signature line


@dataclass(frozen=True)
class SignatureLine:
    name: str
    key_hash: bytes
    signature: bytes  # the bytes after the 4-byte key ID
    line: str  # the line as written, without its newline


def parse_signature_line(line: str) -> SignatureLine:
    """``— <name> <base64(key ID || signature)>`` (no newline); NoteError when malformed."""
    if not line.startswith(SIG_PREFIX):
        raise NoteError("malformed note: signature line does not start with an em dash and a space")
    name, _, b64 = line[len(SIG_PREFIX) :].partition(" ")
    raw = b64decode(b64)
    if not is_valid_name(name) or raw is None or len(raw) < 5:
        raise NoteError("malformed note: bad signature line")
    return SignatureLine(name=name, key_hash=raw[:4], signature=raw[4:], line=line)


def format_signature_line(name: str, blob: bytes) -> str:
    return f"{SIG_PREFIX}{name} {b64encode(blob)}\n"


def note_text(note: str | bytes) -> str:
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
        if len(utf8(text)) > MAX_NOTE_SIZE:
            raise NoteError("note too large")
    else:
        raise TypeError("note must be str or bytes")
    if has_control(text):
        raise NoteError("malformed note: control character")
    return text


def split_note(note: str | bytes) -> tuple[str, list[SignatureLine]]:
    """Split a note into its text and parsed signature lines, verifying nothing.

    signed-note: the text is separated from the signatures by the *last* empty line; the text
    keeps its final newline; the signature block is one or more newline-terminated lines.
    """
    text = note_text(note)
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("malformed note: signature block missing or without final newline")
    raw_lines = block[:-1].split("\n")
    if len(raw_lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return body, [parse_signature_line(line) for line in raw_lines]
