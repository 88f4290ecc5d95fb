"""An idle worker woken when a job is queued, instead of sleeping out its whole poll interval.

Why (issue 21): an idle ``keyong worker`` used to look at the queue every ``--poll`` seconds (2 s by
default), so a job submitted to an idle platform waited a second on average before anything happened
to it, and every look was a write transaction (the claim). Now the wait ends as soon as a job may be
there, without busy-waiting, and ``--poll`` stays as the longest wait (the fallback that also catches
what no signal announces):

* **PostgreSQL:** ``LISTEN keyong_jobs`` on a connection of the worker's own; :func:`announce` sends
  ``NOTIFY`` in the transaction that queues (or requeues) a job, so it is delivered when, and only
  if, that transaction commits (a rolled-back submission wakes nobody).
* **SQLite** (one file on one host): a short poll of ``PRAGMA data_version`` (it changes when another
  connection commits; a read of the WAL index, no disk I/O) every :data:`SQLITE_TICK` seconds and, only
  after a change, one indexed read of the queue's shape: the number of queued jobs and the newest
  queued id. The worker wakes when that shape differs from the one it read just before its last claim
  (which then found nothing it could take), so queued jobs it may not take (an operator's held jobs, a
  frozen platform) do not wake it again and again; a new job or a requeued one does.

Waking never decides anything: the claim that follows (:meth:`sandbox.queue.JobQueue.claim`) checks
everything, in its transaction, as before. A wake-up that finds nothing costs one claim.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

__all__ = ["CHANNEL", "SQLITE_TICK", "Degrading", "Sleep", "Wakeup", "announce", "queue_shape", "wakeup_for"]

log = logging.getLogger("keyong.worker")

#: The PostgreSQL notification channel of the job queue.
CHANNEL = "keyong_jobs"
#: How often an idle SQLite worker looks whether another connection committed (seconds).
SQLITE_TICK = 0.05
_SHAPE = "SELECT count(*), max(id) FROM jobs WHERE state = 'queued'"


def announce(session: Session) -> None:
    """Tell idle workers that a job is (again) queued, once ``session``'s transaction commits (PostgreSQL:
    ``NOTIFY``, transactional; SQLite needs nothing: its workers see the commit itself)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def queue_shape(engine: Engine) -> tuple[int, int | None]:
    """The number of queued jobs and the newest queued id: what a wake-up compares."""
    with engine.connect() as connection:
        count, newest = connection.execute(text(_SHAPE)).one()
    return int(count), (int(newest) if newest is not None else None)


class Wakeup(Protocol):
    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """Return once a job may be queued (``True``), ``stop`` is set or ``timeout`` passed (``False``)."""
        ...

    def before_claim(self) -> None:
        """A claim follows: if it finds nothing it may take, what is queued now does not wake the worker."""
        ...

    def close(self) -> None: ...


class Sleep:
    """No signal: the wait is the poll interval (an engine this module does not know)."""

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        stop.wait(timeout)
        return False

    def before_claim(self) -> None:
        return None

    def close(self) -> None:
        return None


class SqliteWakeup:
    """``PRAGMA data_version`` looked at every ``tick`` seconds; the queue's shape read after a change."""

    def __init__(self, engine: Engine, tick: float = SQLITE_TICK) -> None:
        self.engine = engine
        self.tick = tick
        self._raw: Any = engine.raw_connection()
        self._raw.detach()  # never back into the pool: it only ever reads data_version
        self._version = self._data_version()
        self._seen: tuple[int, int | None] | None = None

    def _data_version(self) -> int:
        cursor = self._raw.cursor()
        try:
            return int(cursor.execute("PRAGMA data_version").fetchone()[0])
        finally:
            cursor.close()

    def before_claim(self) -> None:
        self._seen = queue_shape(self.engine)

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            version = self._data_version()
            if version != self._version:
                self._version = version
                shape = queue_shape(self.engine)
                if shape[0] > 0 and shape != self._seen:
                    return True
                self._seen = shape
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            stop.wait(min(self.tick, left))
        return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()


class PostgresWakeup:
    """``LISTEN keyong_jobs`` on a connection of its own (autocommit); a notification ends the wait."""

    def __init__(self, engine: Engine, slice_seconds: float = 0.25) -> None:
        self.slice = slice_seconds  # how often the wait looks at ``stop`` (SIGTERM ends it promptly)
        self._raw: Any = engine.raw_connection()
        self._conn: Any = self._raw.driver_connection  # psycopg's own (read before the detach forgets it)
        if self._conn is None:
            raise RuntimeError("no driver connection to listen on")
        self._raw.detach()  # never back into the pool: it listens, in autocommit, for as long as the worker runs
        self._conn.autocommit = True
        self._conn.execute(f"LISTEN {CHANNEL}")

    def before_claim(self) -> None:
        """What was announced so far, the claim that follows sees: those notifications wake nobody again."""
        self._drain()

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            woken = False
            for _ in self._conn.notifies(timeout=min(self.slice, left), stop_after=1):
                woken = True
            if woken:
                self._drain()
                return True
        return False

    def _drain(self) -> None:
        """Notifications already delivered: one claim serves them all."""
        for _ in self._conn.notifies(timeout=0.0):
            pass

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()


class Degrading:
    """A wake-up that turns into plain sleeping the first time it fails (the database went away, the
    listening connection dropped): a worker never stops over its wake-up, it polls as it always did."""

    def __init__(self, inner: Wakeup) -> None:
        self.inner = inner

    def _failed(self, exc: Exception) -> None:
        log.warning("the queue's wake-up failed (%s); polling only from now on", exc)
        self.inner.close()
        self.inner = Sleep()

    def before_claim(self) -> None:
        try:
            self.inner.before_claim()
        except Exception as exc:
            self._failed(exc)

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        started = time.monotonic()
        try:
            return self.inner.wait(timeout, stop)
        except Exception as exc:
            self._failed(exc)
            return self.inner.wait(max(0.0, timeout - (time.monotonic() - started)), stop)

    def close(self) -> None:
        self.inner.close()


def wakeup_for(engine: Engine) -> Wakeup:
    """The wake-up of ``engine``'s database (:class:`Degrading`); plain sleeping when it cannot be set up."""
    try:
        if engine.dialect.name == "sqlite":
            return Degrading(SqliteWakeup(engine))
        if engine.dialect.name == "postgresql":
            return Degrading(PostgresWakeup(engine))
    except Exception:
        log.exception("the queue's wake-up could not be set up; polling only")
    return Sleep()
