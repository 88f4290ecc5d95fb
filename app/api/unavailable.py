"""A database the server cannot reach is the server's problem: 503 with ``Retry-After``, never a 500.

PostgreSQL stopped (connection refused), a SQLite file that cannot be opened or stays locked past the busy
timeout, a pool with no connection to give: SQLAlchemy raises :class:`~sqlalchemy.exc.OperationalError` (or
its pool's ``TimeoutError``, or a connection found dead) from whatever route touched the database, and
Starlette answered it with a bare 500. The client did nothing wrong and may retry; the operator must see it.
So the answer is 503 with a JSON error and ``Retry-After`` (RFC 9110 §15.6.4, §10.2.3), and the log line names
the database with its password masked (``app.database.redact`` through ``app.instance_read.unreachable``)
and the driver's one-line reason, never the SQL or its parameters (a key's hash may be one).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DatabaseError, InternalError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.database import redact
from app.instance_read import database_trouble, database_unusable, unreachable

logger = logging.getLogger("keyong")

#: Seconds a client should wait before trying again: long enough for a restart or a failover to finish.
RETRY_AFTER_SECONDS = 30
UNAVAILABLE_DETAIL = "the database is unavailable: the server cannot reach it now; try again later"
#: What a client is told, by ``app.instance_read.database_trouble`` (the log line names the database too).
TROUBLE_DETAILS = {
    "unreachable": UNAVAILABLE_DETAIL,
    "read_only": "the database refuses writes now (read-only, e.g. a standby after a failover); try again later",
    "damaged": "the database is damaged or is not a database: the operator must restore it; try again later",
    "locked": "the database is locked by another session; try again later",
    "failing": "the database failed internally; try again later",
}
#: Seconds to wait before verifying again when another session held a lock on the ledger (a DBA's maintenance).
BUSY_RETRY_AFTER_SECONDS = 60


def unavailable_response(detail: str, kind: str, retry_after: int = RETRY_AFTER_SECONDS) -> JSONResponse:
    """503 with ``Retry-After`` (RFC 9110 §15.6.4, §10.2.3): the client did nothing wrong and may try again."""
    return JSONResponse({"detail": detail, "kind": kind}, status_code=503, headers={"Retry-After": str(retry_after)})


def install_unavailable_handler(app: FastAPI, url: str) -> None:
    """Answer a database that is down with 503 and ``Retry-After`` on every route of ``app`` over ``url``.

    ``OperationalError`` is the driver's "could not do it now" (connection refused or lost, locked past the
    busy timeout, cannot open the file), and ``app.instance_read.database_unusable`` adds a database that
    refuses to write or is no database; the pool's ``TimeoutError`` means no connection came free in time."""

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, DatabaseError):  # the pool's TimeoutError: no connection came free in time
            reason, detail = f"no connection to the database {redact(url)}: {type(exc).__name__}", UNAVAILABLE_DETAIL
        elif database_unusable(exc):
            reason, detail = unreachable(url, exc), TROUBLE_DETAILS[database_trouble(exc)]
        else:
            raise exc  # bad SQL, a value out of range: a fault of the code, still a 500 (logged by Starlette)
        logger.error("503 on %s %s: %s", request.method, request.url.path, reason)
        return unavailable_response(detail, "database_unavailable")

    app.add_exception_handler(OperationalError, unavailable)
    # A PostgreSQL that refuses writes (a standby after a failover) and a SQLite file that is no database
    # (or is malformed): the server cannot use its database either (red team 22; they were 500s).
    app.add_exception_handler(InternalError, unavailable)
    app.add_exception_handler(DatabaseError, unavailable)
    app.add_exception_handler(PoolTimeoutError, unavailable)


__all__ = [
    "BUSY_RETRY_AFTER_SECONDS",
    "RETRY_AFTER_SECONDS",
    "TROUBLE_DETAILS",
    "UNAVAILABLE_DETAIL",
    "install_unavailable_handler",
    "unavailable_response",
]
