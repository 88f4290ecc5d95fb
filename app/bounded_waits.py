"""A bound on the lock waits of all of one request's database work, not only of the ledger's own reads.

Why: ``GET /ledger/verify`` and the regulator's console page bound the verifier's reads of the ledger's tables
(``ledger_verify_lock_timeout_seconds``, ledger23), but the request also reads the token's principal, key,
revocation and recovery hold, the console's session, the freeze banner, the workers' state and, after the
verification, the latest checkpoint and the newest entries, on the application's engine, with no
``lock_timeout``: a DBA's ``LOCK TABLE principals`` (a ``VACUUM FULL``, an ``ALTER TABLE``) held the request
and its server worker as long as it lasted (red team 23b F1, F3).

:func:`bounded_lock_waits` marks the work done in its context (a request's: the value is a context variable,
which FastAPI's thread pool copies into the dependencies and the route that follow); every transaction the
engine begins there starts with ``SET LOCAL lock_timeout``, so a wait past the bound fails with SQLSTATE 55P03
(``app.instance_read.database_trouble``: ``locked``), answered 503 with Retry-After by the API's handler
(``app.api.unavailable``) or the console's busy page. PostgreSQL only: SQLite's waits are its busy timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["bound_lock_waits", "bounded_lock_waits", "install_bounded_waits"]

_BOUND_MS: ContextVar[int | None] = ContextVar("keyong_lock_wait_bound_ms", default=None)


def _bounded_begin(connection: Any) -> None:
    bound = _BOUND_MS.get()
    if bound is not None:  # SET LOCAL: the transaction's own, gone at its end (a pooled connection keeps none)
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(bound))}")


#: libpq waits at least this many seconds for a connection, whatever it is asked (its documented minimum).
_LIBPQ_MIN_CONNECT_TIMEOUT = 2


def _bounded_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    """A connection the pool opens within a bound: libpq's ``connect_timeout`` no longer than it (a database
    address that stops answering new connections held the request without bound), unless it says less."""
    bound = _BOUND_MS.get()
    if bound is None:
        return
    seconds = max(_LIBPQ_MIN_CONNECT_TIMEOUT, -(-int(bound) // 1000))
    given = str(cparams.get("connect_timeout", "")).strip()
    if not (given.isdigit() and 0 < int(given) <= seconds):
        cparams["connect_timeout"] = seconds


def install_bounded_waits(engine: Engine) -> None:
    """Let :func:`bounded_lock_waits` bound the transactions ``engine`` begins and the connections it opens;
    idempotent, PostgreSQL only."""
    if engine.dialect.name == "postgresql" and not event.contains(engine, "begin", _bounded_begin):
        event.listen(engine, "begin", _bounded_begin)
        event.listen(engine, "do_connect", _bounded_connect)


def bound_lock_waits(milliseconds: int) -> None:
    """Bound every lock wait of the current context from now on (a request's dependency: its context ends
    with the request, so nothing is reset; :func:`bounded_lock_waits` where a block must end it)."""
    _BOUND_MS.set(milliseconds)


@contextmanager
def bounded_lock_waits(milliseconds: int) -> Iterator[None]:
    """Within the block, each transaction begun on an engine of :func:`install_bounded_waits` waits at most
    ``milliseconds`` on another session's lock."""
    token = _BOUND_MS.set(milliseconds)
    try:
        yield
    finally:
        _BOUND_MS.reset(token)
