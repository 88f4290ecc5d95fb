"""Signed checkpoints and the proofs that refer to them, as regulators receive them.

A checkpoint is the log's Ed25519 signature over ``{tree_size, root, time}`` (canonical JSON,
:func:`checkpoint_statement`); an inclusion proof ties an entry to one, a consistency proof ties
two tree sizes together (RFC 9162). Kept apart from the database and from the signing key: the
writer makes these, while every verifier (the database ones and the standalone
``python -m ledger.verify``) only reads them and checks them against the public key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.entry import canonical_json

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "SignedCheckpoint",
    "checkpoint_statement",
    "public_key_hex",
]


def public_key_hex(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key as 64 hex digits: how checkpoints name the key that signed them."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def checkpoint_statement(tree_size: int, root: str, time: str) -> bytes:
    """What a checkpoint's Ed25519 signature covers: canonical JSON of {tree_size, root, time}."""
    return canonical_json({"tree_size": tree_size, "root": root, "time": time})


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    tree_size: int
    root: str
    time: str
    signature: str
    public_key: str
    note: str = field(default="", compare=False)

    def statement(self) -> bytes:
        return checkpoint_statement(self.tree_size, self.root, self.time)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(bytes.fromhex(self.signature), self.statement())
        except (InvalidSignature, ValueError):
            return False
        return True

    def as_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root": self.root,
            "time": self.time,
            "signature": self.signature,
            "public_key": self.public_key,
        }


@dataclass(frozen=True, slots=True)
class InclusionProof:
    seq: int
    entry_hash: str
    tree_size: int
    root: str
    path: list[str]
    checkpoint: SignedCheckpoint

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "entry_hash": self.entry_hash,
            "leaf_index": self.seq - 1,
            "tree_size": self.tree_size,
            "root": self.root,
            "path": self.path,
            "checkpoint": self.checkpoint.as_json(),
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    path: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": self.old_root,
            "new_root": self.new_root,
            "path": self.path,
        }
