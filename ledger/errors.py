"""The error a refused ledger operation raises.

Entries refused before they reach the chain raise :class:`ledger.entry.EntryError` instead, so a
caller can tell "your record is malformed" from "the ledger cannot do that now".
"""

from __future__ import annotations

__all__ = ["LedgerError", "UnrepresentableError"]


class LedgerError(Exception):
    """A ledger operation was refused."""


class UnrepresentableError(Exception):
    """A fast verifier met stored values it cannot treat exactly like the reference (which then answers)."""
