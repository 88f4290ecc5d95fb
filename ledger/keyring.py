"""Which key signs which checkpoints: the ledger's signing keys across rotations (SATRE 2.4.05).

A rotation is itself an entry (action :data:`ROTATION_ACTION`) naming the previous and the new
public key. The writer appends it and, in the same transaction, signs a checkpoint of exactly
the rotation entry's size with the *previous* key (the handover checkpoint); every later
checkpoint is signed by the new key. So a verifier who trusts any one key of the chain follows
the rest without being told: the old key vouches for the rotation entry that names its successor,
and a checkpoint signed by a trusted key commits to every earlier entry, the earlier rotations
among them.

:func:`key_schedule` reads the rotations into a :class:`KeySchedule` (the key for each tree size);
:func:`checkpoint_problems` checks every checkpoint against it. Both verifiers (:mod:`ledger.reference`,
:mod:`ledger.fastverify`) and the standalone ``python -m ledger.verify`` use these two functions, so
they agree on what a rotation proves. A retired private key is destroyed; its public half stays in
the rotation entry, so old checkpoints stay verifiable for ever.

Pure: the standard library, ``cryptography`` and this package, so the standalone verifier can use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoints import SignedCheckpoint
from ledger.report import Problem

__all__ = [
    "ACTIVATION_ACTION",
    "ROTATION_ACTION",
    "KeyPeriod",
    "KeySchedule",
    "checkpoint_problems",
    "first_key",
    "is_key",
    "key_id",
    "key_schedule",
    "rotation_payload",
    "signature_problems",
]

ROTATION_ACTION = "ledger.key_rotated"
"""The action of a rotation entry; its payload is :func:`rotation_payload`."""

ACTIVATION_ACTION = "ledger.key_activated"
"""The entry right after a rotation, checkpointed by the new key (proof that it holds the key)."""

_HEX = frozenset("0123456789abcdef")


def key_id(public_key_hex: str) -> str:
    """A short public name for a key: the first 16 hex digits of SHA-256 over its 32 raw bytes."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]


def rotation_payload(previous_hex: str, new_hex: str) -> dict[str, Any]:
    """What a rotation entry records: both keys' ids and public halves (never private material)."""
    return {
        "algorithm": "Ed25519",
        "previous_key_id": key_id(previous_hex),
        "previous_public_key": previous_hex,
        "key_id": key_id(new_hex),
        "public_key": new_hex,
    }


def is_key(value: object) -> bool:
    """Whether ``value`` is a raw Ed25519 public key as 64 lower-case hex digits."""
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


@dataclass(frozen=True, slots=True)
class KeyPeriod:
    """One key's watch: it signs checkpoints of sizes ``from_size`` .. ``until_size`` (open if None)."""

    public_key: str
    from_size: int
    until_size: int | None
    introduced_at: int | None  # the seq of the rotation entry that named it (None: the first key)

    def as_json(self) -> dict[str, Any]:
        return {
            "key_id": key_id(self.public_key),
            "public_key": self.public_key,
            "from_size": self.from_size,
            "until_size": self.until_size,
            "introduced_at": self.introduced_at,
        }


@dataclass(slots=True)
class KeySchedule:
    """The keys in the order they signed; rotations that could not be followed are ``problems``."""

    periods: list[KeyPeriod]
    problems: list[Problem] = field(default_factory=list)

    def key_for(self, tree_size: int) -> str:
        """The key that must sign a checkpoint of ``tree_size``: the one in office when it was cut."""
        for period in self.periods:
            if period.until_size is None or tree_size <= period.until_size:
                return period.public_key
        return self.periods[-1].public_key

    @property
    def current(self) -> str:
        return self.periods[-1].public_key

    @property
    def rotations(self) -> list[int]:
        return [p.introduced_at for p in self.periods if p.introduced_at is not None]


def key_schedule(rotations: Iterable[tuple[int, Any]], first_key: str) -> KeySchedule:
    """The schedule from the rotation entries ``(seq, payload)`` (payload as JSON text or a dict) in seq order.

    ``first_key`` is the key before any rotation (for a verifier: the first rotation's previous key,
    else a key it trusts). A rotation whose payload is malformed or whose previous key is not the
    key then in office is reported and not followed, so checkpoints after it fail as foreign.
    """
    periods: list[KeyPeriod] = []
    problems: list[Problem] = []
    current, start, introduced = first_key, 1, None
    for seq, raw in rotations:
        try:
            payload = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            payload = None
        new = payload.get("public_key") if isinstance(payload, dict) else None
        previous = payload.get("previous_public_key") if isinstance(payload, dict) else None
        if not (is_key(new) and is_key(previous)):
            problems.append(Problem(seq, "key_rotation", f"rotation entry {seq} does not name two Ed25519 keys"))
            continue
        if previous != current:
            problems.append(
                Problem(seq, "key_rotation", f"rotation entry {seq} retires a key that was not the one in office")
            )
            continue
        periods.append(KeyPeriod(current, start, seq, introduced))
        current, start, introduced = str(new), seq + 1, seq
    periods.append(KeyPeriod(current, start, None, introduced))
    return KeySchedule(periods, problems)


def first_key(
    rotations: Sequence[tuple[int, Any]], checkpoints: Sequence[SignedCheckpoint], trusted: Sequence[str]
) -> str:
    """Where a verifier starts the schedule: the first rotation's previous key, else the trusted key
    that signed the first checkpoint, else the first trusted key."""
    if rotations:
        raw = rotations[0][1]
        try:
            payload = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            payload = None
        previous = payload.get("previous_public_key") if isinstance(payload, dict) else None
        if is_key(previous):
            return str(previous)
    if checkpoints and checkpoints[0].public_key in trusted:
        return checkpoints[0].public_key
    return trusted[0]


def _verifies(cp: SignedCheckpoint, public_hex: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
    except (ValueError, TypeError):
        return False
    try:
        key.verify(bytes.fromhex(cp.signature), cp.statement())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def checkpoint_problems(
    cps: Sequence[SignedCheckpoint], schedule: KeySchedule, trusted: Sequence[str]
) -> list[Problem]:
    """Checkpoints signed by another key than the schedule's for their size, or not signed at all;
    rotations without their handover checkpoint; and, across a rotation, a chain that no trusted key
    anchors (a forger could otherwise start the chain from a key of their own)."""
    found: list[Problem] = list(schedule.problems)
    anchored = False
    for cp in cps:
        expected = schedule.key_for(cp.tree_size)
        if cp.public_key != expected:
            found.append(
                Problem(None, "checkpoint_key", f"checkpoint of size {cp.tree_size} names a foreign public key")
            )
        if not _verifies(cp, expected):
            found.append(
                Problem(None, "checkpoint_signature", f"checkpoint of size {cp.tree_size} has a bad signature")
            )
        elif cp.public_key == expected and expected in trusted:
            anchored = True
    sizes = {cp.tree_size for cp in cps}
    for seq in schedule.rotations:
        if seq not in sizes:
            found.append(
                Problem(seq, "key_rotation", f"rotation entry {seq} is not covered by a checkpoint of the previous key")
            )
    if cps and len(schedule.periods) > 1 and not anchored:
        found.append(Problem(None, "checkpoint_key", "no checkpoint is signed by a key the verifier trusts"))
    return found


def signature_problems(
    cps: Sequence[SignedCheckpoint], rotations: Sequence[tuple[int, Any]], trusted: Sequence[str]
) -> list[Problem]:
    """Every checkpoint-key problem of a ledger: its rotations ``(seq, payload)``, in seq order, read
    into a schedule that starts where :func:`first_key` says, then :func:`checkpoint_problems`."""
    if not trusted:
        raise ValueError("a verifier needs at least one public key it trusts")
    schedule = key_schedule(rotations, first_key(rotations, cps, trusted))
    return checkpoint_problems(cps, schedule, trusted)
