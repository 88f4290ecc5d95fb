"""The append-only hash chain, Merkle checkpoints and proofs, verification and audit export.

Imports nothing of Keyong's: callers record what they did through :meth:`Ledger.append`,
inside their own transaction when the change and its record must stand or fall together.
"""

from ledger.entry import GENESIS, Entry, EntryError, Record, canonical_json
from ledger.merkle import verify_consistency, verify_inclusion
from ledger.service import (
    ConsistencyProof,
    InclusionProof,
    Ledger,
    LedgerError,
    Problem,
    SignedCheckpoint,
    VerifyReport,
)
from ledger.storage import metadata, prepare_engine

__all__ = [
    "GENESIS",
    "ConsistencyProof",
    "Entry",
    "EntryError",
    "InclusionProof",
    "Ledger",
    "LedgerError",
    "Problem",
    "Record",
    "SignedCheckpoint",
    "VerifyReport",
    "canonical_json",
    "metadata",
    "prepare_engine",
    "verify_consistency",
    "verify_inclusion",
]
