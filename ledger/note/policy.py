"""Witness policy: the N-of-M quorum of cosignatures a regulator requires of a checkpoint."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ledger.note.checkpoint import Checkpoint, parse_checkpoint_body
from ledger.note.errors import NoteError, PolicyError
from ledger.note.keys import KEY_TYPE_COSIGNATURE_V1, KEY_TYPE_ED25519, Verifier, parse_vkey
from ledger.note.signed import open_verified

__all__ = ["WitnessPolicy", "WitnessedCheckpoint"]


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
            body, verified = open_verified(note_text, [log_verifier, *self.witnesses])
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
