"""The append-only hash chain, Merkle checkpoints and proofs, verification and audit export.

Imports nothing of Keyong's: callers record what they did through :meth:`Ledger.append`,
inside their own transaction when the change and its record must stand or fall together.

The public face, by what a caller does:

- write: :class:`Ledger` (holds the signing key), :class:`Record`, :class:`Entry`;
- list: :func:`read_entries`, the entries :meth:`Ledger.entries` gives, over any read-only connection;
  :func:`ledger_size`, how many entries a connection's ledger holds;
- verify: :class:`LedgerVerifier` needs only the database and the public key (no writer, no
  signing key), and returns a :class:`VerifyReport`; ``python -m ledger.verify`` (module
  :mod:`ledger.verify`) checks an export file with no database at all;
- prove: :class:`SignedCheckpoint`, :class:`InclusionProof`, :class:`ConsistencyProof`, and the
  RFC 9162 checks :func:`verify_inclusion`, :func:`verify_consistency`;
- rotate: :meth:`Ledger.rotate_key`, :class:`KeySchedule` (which key signs which checkpoints,
  followed by every verifier from any one trusted key: :mod:`ledger.keyring`);
- witness: :class:`WitnessPolicy` (C2SP cosignatures; more in :mod:`ledger.note`);
- publish: :class:`LedgerPublisher` writes checkpoints, their notes, entries and cosignatures to an
  object store (:mod:`ledger.published`), and :func:`verify_published` checks them from the store
  alone (:mod:`ledger.published_verify`);
- set up: :data:`metadata`, :func:`prepare_engine`, the append-only DDL.

Subpackages :mod:`ledger.merkle` (RFC 9162 tree) and :mod:`ledger.note` (C2SP signed notes)
are public too, each with its own ``__all__``.

Each name loads from its own module on first use (PEP 562), as ``core.LazyFace`` does for the packages
above (this one imports nothing of ours): the errors come without SQLAlchemy or cryptography (issue 21).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.checkpoints import (
        ConsistencyProof,
        InclusionProof,
        SignedCheckpoint,
        checkpoint_statement,
        public_key_hex,
    )
    from ledger.entry import GENESIS, Entry, EntryError, Record, canonical_json, strict_json
    from ledger.entry_reads import read_entries
    from ledger.errors import LedgerBusyError, LedgerError, LedgerUnavailableError, gave_up_waiting
    from ledger.export import export_jsonl
    from ledger.head import forget_head
    from ledger.keyring import ACTIVATION_ACTION, ROTATION_ACTION, KeyPeriod, KeySchedule, key_id
    from ledger.merkle import verify_consistency, verify_inclusion
    from ledger.note import NoteError, PolicyError, WitnessPolicy
    from ledger.published import (
        EXPORTS_PREFIX,
        PUBLISHED_PREFIX,
        LedgerPublisher,
        ObjectStore,
        PublishConflictError,
        PublishResult,
    )
    from ledger.published_verify import PublishedReport, key_origin, verify_published
    from ledger.queries import ledger_size
    from ledger.report import Problem, VerifyReport
    from ledger.service import Ledger
    from ledger.storage import append_only_ddl, drop_append_only_ddl, metadata, prepare_engine, sqlite_path
    from ledger.verifier import LedgerVerifier

__all__ = [
    "ACTIVATION_ACTION",
    "EXPORTS_PREFIX",
    "GENESIS",
    "PUBLISHED_PREFIX",
    "ROTATION_ACTION",
    "ConsistencyProof",
    "Entry",
    "EntryError",
    "InclusionProof",
    "KeyPeriod",
    "KeySchedule",
    "Ledger",
    "LedgerBusyError",
    "LedgerError",
    "LedgerPublisher",
    "LedgerUnavailableError",
    "LedgerVerifier",
    "NoteError",
    "ObjectStore",
    "PolicyError",
    "Problem",
    "PublishConflictError",
    "PublishResult",
    "PublishedReport",
    "Record",
    "SignedCheckpoint",
    "VerifyReport",
    "WitnessPolicy",
    "append_only_ddl",
    "canonical_json",
    "checkpoint_statement",
    "drop_append_only_ddl",
    "export_jsonl",
    "forget_head",
    "gave_up_waiting",
    "key_id",
    "key_origin",
    "ledger_size",
    "metadata",
    "prepare_engine",
    "public_key_hex",
    "read_entries",
    "sqlite_path",
    "strict_json",
    "verify_consistency",
    "verify_inclusion",
    "verify_published",
]

#: Each module of this face -> the names it gives (``public=defined`` where the face renames one).
_NAMES: dict[str, str] = {
    "ledger.checkpoints": "ConsistencyProof InclusionProof SignedCheckpoint checkpoint_statement public_key_hex",
    "ledger.entry": "GENESIS Entry EntryError Record canonical_json strict_json",
    "ledger.entry_reads": "read_entries",
    "ledger.errors": "LedgerBusyError LedgerError LedgerUnavailableError gave_up_waiting",
    "ledger.export": "export_jsonl",
    "ledger.head": "forget_head",
    "ledger.keyring": "ACTIVATION_ACTION ROTATION_ACTION KeyPeriod KeySchedule key_id",
    "ledger.merkle": "verify_consistency verify_inclusion",
    "ledger.note": "NoteError PolicyError WitnessPolicy",
    "ledger.published": (
        "EXPORTS_PREFIX PUBLISHED_PREFIX LedgerPublisher ObjectStore PublishConflictError PublishResult"
    ),
    "ledger.published_verify": "PublishedReport key_origin verify_published",
    "ledger.queries": "ledger_size",
    "ledger.report": "Problem VerifyReport",
    "ledger.service": "Ledger",
    "ledger.storage": "append_only_ddl drop_append_only_ddl metadata prepare_engine sqlite_path",
    "ledger.verifier": "LedgerVerifier",
}


def __getattr__(name: str) -> Any:
    for module, names in _NAMES.items():
        if name in names.split():
            value = getattr(importlib.import_module(module), name)
            globals()[name] = value
            return value
    raise AttributeError(f"module 'ledger' has no attribute {name!r}")
