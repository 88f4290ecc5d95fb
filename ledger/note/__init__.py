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

Modules, each one part of the formats: :mod:`~ledger.note.encoding` (the strict encodings and
limits all parts share), :mod:`~ledger.note.errors`, :mod:`~ledger.note.keys` (verifier and
signer keys), :mod:`~ledger.note.checkpoint` (tlog-checkpoint bodies), :mod:`~ledger.note.lines`
(a note's text and signature lines), :mod:`~ledger.note.signed` (signing and opening notes),
:mod:`~ledger.note.cosignature` (cosignature/v1), :mod:`~ledger.note.policy` (witness quorum).
Import from ``ledger.note``; the split is for reading.

This package imports nothing of Keyong's: standard library and ``cryptography`` only.
"""

from ledger.note.checkpoint import EMPTY_TREE_ROOT, Checkpoint, parse_checkpoint_body
from ledger.note.cosignature import COSIGNATURE_V1_HEADER, cosign, cosignature_message, verify_cosignature
from ledger.note.encoding import MAX_NOTE_SIZE, MAX_SIGNATURES
from ledger.note.errors import NoteError, PolicyError, UnverifiedNoteError
from ledger.note.keys import (
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
    SignerKey,
    Verifier,
    format_skey,
    format_vkey,
    key_hash,
    parse_skey,
    parse_vkey,
)
from ledger.note.policy import WitnessedCheckpoint, WitnessPolicy
from ledger.note.signed import add_signature_lines, open_note, sign_note

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
