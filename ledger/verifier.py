"""Ledger verification apart from the writer: the database and the log's public key are enough.

A regulator, an auditor's script or the CLI checks a ledger without the signing key and without
a :class:`~ledger.service.Ledger` (which exists to append). :class:`LedgerVerifier` picks one of
the two verifiers, which give the very same report: the vectorized :mod:`ledger.fastverify`
(default, ~2x faster) or the plain-Python :mod:`ledger.reference`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.engine import Engine

from ledger.checkpoints import public_key_hex
from ledger.errors import LedgerBusyError, LedgerError, LedgerUnavailableError, driver_failed, gave_up_waiting
from ledger.head import head_problems, held_in_process, read_head
from ledger.reference import verify_reference
from ledger.report import VerifyReport
from ledger.storage import BUSY_TIMEOUT_MS, prepare_engine, read_transaction

__all__ = ["LedgerVerifier"]


class LedgerVerifier:
    """Verifies the ledger in one database against the log's public key."""

    def __init__(
        self,
        engine: Engine,
        public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey],
        *,
        head_file: Path | None = None,
        lock_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        """``public_key``: the key the verifier trusts, or several (any one key of the ledger's
        rotation chain is enough: :mod:`ledger.keyring`). ``head_file``: where the writers remember the
        head they committed (:mod:`ledger.head`); the log must still extend it. ``lock_timeout_ms``: how long
        each of its reads waits on a lock another session holds (a DBA's ``LOCK TABLE``) before the
        verification gives up with :class:`LedgerBusyError` (redteam22 T7; ledger23 for the API and console)."""
        self._engine = prepare_engine(engine)
        self.lock_timeout_ms = lock_timeout_ms
        self.head_file = head_file
        self.public_keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
        if not self.public_keys:
            raise ValueError("a verifier needs at least one public key it trusts")
        self.public_key = self.public_keys[0]
        self.public_key_hex = public_key_hex(self.public_key)

    def verify(self, progress: Callable[[int], None] | None = None, *, reference: bool = False) -> VerifyReport:
        """Recompute the chain, the Merkle tree, every stored node and checkpoint, and every signature.

        By default the vectorized verifier does the work and ``progress`` hears of all entries at
        once when it is done; ``reference=True`` walks the rows in plain Python, the code a
        regulator can read, and reports progress chunk by chunk. A read that waited on another session's lock
        past ``lock_timeout_ms`` raises :class:`LedgerBusyError`: nothing was verified.
        """
        try:
            return self._verify(progress, reference)
        except Exception as exc:
            if not gave_up_waiting(exc):
                if driver_failed(exc):  # after a lock wait: ADBC's lock_timeout is its OperationalError too
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise LedgerUnavailableError(f"the database failed the verification's read: {first}") from exc
                raise
            raise LedgerBusyError(
                f"the ledger's tables are locked by another database session: verification waited "
                f"{self.lock_timeout_ms / 1000:g} s and gave up; nothing was verified, try again later"
            ) from exc

    def _verify(self, progress: Callable[[int], None] | None, reference: bool) -> VerifyReport:
        wait = self.lock_timeout_ms
        if reference:
            return self._against_head(verify_reference(self._engine, self.public_keys, progress, lock_timeout_ms=wait))
        from ledger.fastverify import fast_verify  # heavy imports (duckdb, ADBC) only when used

        url = self._engine.url.render_as_string(hide_password=False)
        report = fast_verify(
            url, self.public_keys, [public_key_hex(key) for key in self.public_keys], lock_timeout_ms=wait
        )
        if progress is not None:
            progress(report.entries)
        return self._against_head(report)

    def _against_head(self, report: VerifyReport) -> VerifyReport:
        """``report`` with what the remembered head shows: a tail cut off with its checkpoints and nodes
        leaves rows that verify, and only the head kept outside the database sees it (red team 21d F8).

        No file is a warning, not a failure: a home older than the file, or a machine whose writers never
        committed, has none, and the database alone says nothing either way. An unreadable one is a problem:
        it is no evidence, and a verification must not pass on what it could not read."""
        if self.head_file is None:
            return report
        try:
            held = read_head(self.head_file)  # before the database is read (head_problems says why)
        except LedgerError as exc:
            report.add(None, "remembered_head", str(exc))
            return report
        # The head this process last committed or read is evidence too (red team 23b F4): checked besides the
        # file's when they differ, each on its own (a merge would hide the one a forger lowered in the file).
        heads = [head for head in (held, held_in_process(self.head_file)) if head is not None]
        if held is None and heads:
            report.warnings.append(
                f"no remembered ledger head ({self.head_file}): it was removed; compared with the head this "
                "process last committed or read instead"
            )
        if not heads:
            report.warnings.append(
                f"no remembered ledger head ({self.head_file}): a tail cut off the database together with its "
                "checkpoints cannot be seen; this home's next append or checkpoint writes it"
            )
            return report
        found: list[tuple[int | None, str, str]] = []
        with read_transaction(self._engine, self.lock_timeout_ms) as connection:
            for head in [h for n, h in enumerate(heads) if h not in heads[:n]]:  # the same head twice: once
                try:
                    more = head_problems(connection, head)
                except (ValueError, TypeError, LedgerError) as exc:  # rows the verifier reported as unreadable
                    more = [(None, "remembered_head", f"the ledger cannot be compared with the remembered head: {exc}")]
                found.extend(problem for problem in more if problem not in found)
        for seq, kind, detail in found:
            report.add(seq, kind, detail)
        return report
