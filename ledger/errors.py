"""The error a refused ledger operation raises.

Entries refused before they reach the chain raise :class:`ledger.entry.EntryError` instead, so a
caller can tell "your record is malformed" from "the ledger cannot do that now".
"""

from __future__ import annotations

__all__ = [
    "LedgerBusyError",
    "LedgerError",
    "LedgerUnavailableError",
    "UnrepresentableError",
    "driver_failed",
    "gave_up_waiting",
]

#: PostgreSQL's ``lock_not_available`` (a ``lock_timeout`` ran out) and ``query_canceled`` (``statement_timeout``).
GAVE_UP_SQLSTATES = frozenset({"55P03", "57014"})


class LedgerError(Exception):
    """A ledger operation was refused."""


class LedgerBusyError(LedgerError):
    """A read gave up waiting on a lock another session holds on the ledger's tables (a DBA's ``LOCK TABLE``,
    a long maintenance): nothing was verified, nothing is wrong with the request; try again later."""


class LedgerUnavailableError(LedgerError):
    """The database failed a read of the fast verifier's own connections (it refused or dropped them: too many
    connections, a backend terminated, a failover, no answer within the connect timeout): nothing was verified,
    nothing is wrong with the request; try again later. ``__cause__`` is the driver's error."""


def driver_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is ADBC's driver saying the database failed (its ``OperationalError`` or ``InternalError``),
    not the code. Why: they are not SQLAlchemy's, so nothing answered them and ``GET /ledger/verify`` was a 500
    (red team 23b F2). Reads ``adbc_driver_manager`` only when it is loaded."""
    import sys

    adbc = sys.modules.get("adbc_driver_manager")
    return adbc is not None and isinstance(exc, adbc.OperationalError | adbc.InternalError)


def gave_up_waiting(exc: BaseException) -> bool:
    """Whether ``exc`` (SQLAlchemy's, psycopg's or ADBC's, or one they caused) is PostgreSQL giving up a wait."""
    seen: BaseException | None = exc
    for _ in range(4):  # the error, the driver's under SQLAlchemy's, and what it was raised from
        if seen is None:
            return False
        if getattr(seen, "sqlstate", None) in GAVE_UP_SQLSTATES:
            return True
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) else seen.__cause__
    return False


class UnrepresentableError(Exception):
    """A fast verifier met stored values it cannot treat exactly like the reference (which then answers)."""
