"""The roster of workers: who is alive to run queued jobs, by their heartbeats (issue 17).

Why: a job submitted while no worker runs stays ``queued`` forever, and nothing said so. Every
worker loop (``keyong worker``, or one supervised by ``keyong serve --workers N``) keeps a row in
``workers`` fresh every :data:`PRESENCE_SECONDS` from a thread of its own, so a long job does not
make its worker look dead; ``/healthz`` and the console read the rows seen within
:data:`LIVE_WITHIN` (four intervals) as the live workers and warn when there is none. A worker that
stops cleanly marks its row stopped; one that dies simply stops beating. Heartbeats are operational
state, not acts of governance, so they are not ledgered (the jobs a worker claims and ends are).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Integer, String, delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import Base, utcnow

log = logging.getLogger("keyong.worker")

#: How often a worker says it is alive.
PRESENCE_SECONDS = 5.0
#: A worker last seen longer ago than this is not live (four missed heartbeats).
LIVE_WITHIN = timedelta(seconds=4 * PRESENCE_SECONDS)
#: Rows of workers gone for longer than this are forgotten when a worker starts.
FORGET_AFTER = timedelta(days=7)


class WorkerRow(Base):
    """One worker loop: where it runs, since when, and when it last said it was alive."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True, slots=True)
class LiveWorker:
    id: str
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime


class WorkerRoster:
    """The ``workers`` table: heartbeats in, live workers out."""

    def __init__(
        self, engine: Engine, *, clock: Callable[[], datetime] = utcnow, live_within: timedelta = LIVE_WITHIN
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.live_within = live_within

    def beat(self, worker_id: str, *, started_at: datetime | None = None) -> None:
        """Record that ``worker_id`` (this process) is alive now; its row is made on the first beat."""
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            row = session.get(WorkerRow, worker_id)
            if row is None:
                session.add(
                    WorkerRow(
                        id=worker_id,
                        host=socket.gethostname()[:255],
                        pid=os.getpid(),
                        started_at=started_at or now,
                        last_seen=now,
                    )
                )
            else:
                row.last_seen = now
                row.stopped_at = None

    def stopped(self, worker_id: str) -> None:
        """A clean stop: the worker is no longer live at once."""
        now = self.clock()
        with self.engine.begin() as connection:
            connection.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(stopped_at=now))

    def forget(self, older_than: timedelta = FORGET_AFTER) -> int:
        """Drop the rows of workers not seen for ``older_than``; how many."""
        cutoff = self.clock() - older_than
        with self.engine.begin() as connection:
            return int(connection.execute(delete(WorkerRow).where(WorkerRow.last_seen < cutoff)).rowcount or 0)

    def live(self) -> list[LiveWorker]:
        """Workers that beat within ``live_within`` and did not stop, the most recently started first."""
        cutoff = self.clock() - self.live_within
        query = (
            select(WorkerRow)
            .where(WorkerRow.last_seen >= cutoff, WorkerRow.stopped_at.is_(None))
            .order_by(WorkerRow.started_at.desc(), WorkerRow.id)
        )
        with Session(self.engine) as session:
            return [LiveWorker(r.id, r.host, r.pid, r.started_at, r.last_seen) for r in session.scalars(query)]

    def live_count(self) -> int:
        cutoff = self.clock() - self.live_within
        query = select(func.count()).select_from(WorkerRow)
        query = query.where(WorkerRow.last_seen >= cutoff, WorkerRow.stopped_at.is_(None))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def keep_alive(self, worker_id: str, stop: threading.Event, *, every: float = PRESENCE_SECONDS) -> threading.Thread:
        """Beat for ``worker_id`` every ``every`` seconds from a daemon thread until ``stop`` is set, then
        mark it stopped. A failed beat (the database away) is logged and retried next round."""
        started = self.clock()
        try:
            self.forget()
        except Exception as exc:  # housekeeping only
            log.warning("could not forget old workers: %s", exc)

        def loop() -> None:
            while True:
                try:
                    self.beat(worker_id, started_at=started)
                except Exception as exc:
                    log.warning("worker %s: presence heartbeat failed: %s", worker_id, exc)
                if stop.wait(every):
                    break
            try:
                self.stopped(worker_id)
            except Exception as exc:
                log.warning("worker %s: could not record its stop: %s", worker_id, exc)

        thread = threading.Thread(target=loop, name=f"presence-{worker_id}", daemon=True)
        thread.start()
        return thread


__all__ = ["FORGET_AFTER", "LIVE_WITHIN", "PRESENCE_SECONDS", "LiveWorker", "WorkerRoster", "WorkerRow"]
