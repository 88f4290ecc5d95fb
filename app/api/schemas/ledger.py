"""Response documents of the ledger (regulators' read-only access, ``app.api.ledger``)."""

from typing import Any

from pydantic import Field

from app.api.schemas.base import Document, example

_HASH = "5d41" + "0" * 60
_ROOT = "b10c" + "0" * 60


class EntryOut(Document):
    """One ledger entry: exactly the hashed fields plus ``hash`` (the export line)."""

    model_config = example(
        seq=7, time="2026-12-01T09:00:00.000000Z", actor="demo-agency", role="agency", action="licence.granted",
        subject="licence:1", payload={"operator": "demo-operator"}, prev_hash=_HASH, hash=_ROOT,
    )  # fmt: skip

    seq: int
    time: str
    actor: str
    role: str
    action: str
    subject: str
    payload: Any = Field(description="The entry's canonical JSON payload.")
    prev_hash: str
    hash: str


class ProblemOut(Document):
    seq: int | None
    kind: str
    detail: str


class VerifyOut(Document):
    """The chain, Merkle tree and checkpoints recomputed now (``keyong ledger verify`` keys)."""

    model_config = example(ok=True, entries=120, head=_HASH, checkpoints=3, problems=[])

    ok: bool
    entries: int
    head: str
    checkpoints: int
    problems: list[ProblemOut]


class SignedCheckpointOut(Document):
    """A signed checkpoint: tree size, root and time, signed with the log's Ed25519 key."""

    tree_size: int
    root: str
    time: str
    signature: str
    public_key: str


class ProofOut(Document):
    """An RFC 6962 inclusion proof of one entry against a signed checkpoint."""

    model_config = example(
        seq=7, entry_hash=_HASH, leaf_index=6, tree_size=120, root=_ROOT, path=[_HASH],
        checkpoint={"tree_size": 120, "root": _ROOT, "time": "2026-12-01T09:01:00Z", "signature": "ab" * 64,
                    "public_key": "cd" * 32},
    )  # fmt: skip

    seq: int
    entry_hash: str
    leaf_index: int
    tree_size: int
    root: str
    path: list[str]
    checkpoint: SignedCheckpointOut


class ConsistencyOut(Document):
    """A consistency proof between two tree sizes (RFC 9162 §2.1.4)."""

    model_config = example(old_size=100, new_size=120, old_root=_HASH, new_root=_ROOT, path=[_HASH])

    old_size: int
    new_size: int
    old_root: str
    new_root: str
    path: list[str]


class CheckpointOut(SignedCheckpointOut):
    """The latest checkpoint, its C2SP signed note (with cosignatures) and the log's verifier key."""

    note: str
    vkey: str


__all__ = ["CheckpointOut", "ConsistencyOut", "EntryOut", "ProblemOut", "ProofOut", "SignedCheckpointOut", "VerifyOut"]
