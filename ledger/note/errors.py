"""What the signed-note code raises: malformed or unverified notes, and unmet witness policies."""

from __future__ import annotations

__all__ = ["NoteError", "PolicyError", "UnverifiedNoteError"]


class NoteError(ValueError):
    """A key, note, checkpoint or cosignature is malformed or does not verify."""


class UnverifiedNoteError(NoteError):
    """The note is well formed but carries no signature from any of the known keys.

    signed-note: "If no signature from a known key verifies successfully, clients MUST reject
    the note." Kept distinct so a caller can tell "nobody I trust signed" from "forged".
    """


class PolicyError(ValueError):
    """A witness policy is malformed, or a note does not satisfy it."""
