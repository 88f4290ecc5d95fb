"""Ledger verification apart from the writer: the database and the log's public key are enough.

A regulator, an auditor's script or the CLI checks a ledger without the signing key and without
a :class:`~ledger.service.Ledger` (which exists to append). :class:`LedgerVerifier` picks one of
the two verifiers, which give the very same report: the vectorized :mod:`ledger.fastverify`
(default, ~2x faster) or the plain-Python :mod:`ledger.reference`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.engine import Engine

from ledger.checkpoints import public_key_hex
from ledger.reference import verify_reference
from ledger.report import VerifyReport
from ledger.storage import prepare_engine

__all__ = ["LedgerVerifier"]


class LedgerVerifier:
    """Verifies the ledger in one database against the log's public key."""

    def __init__(self, engine: Engine, public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey]) -> None:
        """``public_key``: the key the verifier trusts, or several (any one key of the ledger's
        rotation chain is enough: :mod:`ledger.keyring`)."""
        self._engine = prepare_engine(engine)
        self.public_keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
        if not self.public_keys:
            raise ValueError("a verifier needs at least one public key it trusts")
        self.public_key = self.public_keys[0]
        self.public_key_hex = public_key_hex(self.public_key)

    def verify(self, progress: Callable[[int], None] | None = None, *, reference: bool = False) -> VerifyReport:
        """Recompute the chain, the Merkle tree, every stored node and checkpoint, and every signature.

        By default the vectorized verifier does the work and ``progress`` hears of all entries at
        once when it is done; ``reference=True`` walks the rows in plain Python, the code a
        regulator can read, and reports progress chunk by chunk.
        """
        if reference:
            return verify_reference(self._engine, self.public_keys, progress)
        from ledger.fastverify import fast_verify  # heavy imports (duckdb, ADBC) only when used

        url = self._engine.url.render_as_string(hide_password=False)
        report = fast_verify(url, self.public_keys, [public_key_hex(key) for key in self.public_keys])
        if progress is not None:
            progress(report.entries)
        return report
