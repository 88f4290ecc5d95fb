"""Who acts, and the one way the registry changes anything: in a transaction with its ledger entries.

Every registry change is appended to the ledger in the same database transaction as the change
itself (issue 4; 双鸭山 第二十条: usage logs kept ≥ 3 years), so there is never a change without
its record nor a record of a change that rolled back.

Files are not in the transaction. A change that also writes or removes files registers what
finishes them once the transaction has committed (:meth:`Change.on_commit`: remove a tombstone,
release a scratch) and what undoes them if it rolls back (:meth:`Change.on_rollback`); a process
killed between the steps leaves a noted scratch that the start-up sweep completes or rolls back
(``registry.scratch``; issue 17). Just before every commit is the crash point
``before-commit:<action>`` for each ledger action of the change (:func:`core.crashpoints.crash_point`), for the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.actors import Actor
from core.crashpoints import crash_point
from ledger import Ledger, Record

__all__ = ["Change", "JoinedRecorder", "Recorder"]

_log = logging.getLogger(__name__)


@dataclass
class Change:
    """A session plus the ledger records that will be appended when it commits."""

    session: Session
    actor: Actor
    records: list[Record] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    after_rollback: list[Callable[[], None]] = field(default_factory=list)

    def on_commit(self, step: Callable[[], None]) -> None:
        """Run ``step`` once the transaction has committed (a failure is logged: the change stands)."""
        self.after_commit.append(step)

    def on_rollback(self, step: Callable[[], None]) -> None:
        """Run ``step`` if the transaction rolls back (undo what was done to files for it)."""
        self.after_rollback.append(step)

    def log(
        self, action: str, subject: str, payload: dict[str, Any] | None = None, *, actor: Actor | None = None
    ) -> None:
        who = actor or self.actor
        self.records.append(Record(who.name, who.role, action, subject, payload or {}))


class Recorder:
    """Opens changes: ``with recorder.change(actor) as change: ...; change.log(...)``."""

    def __init__(self, engine: Engine, ledger: Ledger) -> None:
        self.engine = engine
        self.ledger = ledger

    @contextmanager
    def change(self, actor: Actor) -> Iterator[Change]:
        change: Change | None = None
        try:
            with self.ledger.transaction() as connection:
                with Session(bind=connection, expire_on_commit=False) as session:
                    change = Change(session, actor)
                    yield change
                    session.flush()
                if change.records:
                    self.ledger.append_many(change.records, connection=connection)
                    crash_point(*(f"before-commit:{record.action}" for record in change.records))
        except BaseException:
            if change is not None:
                _run(change.after_rollback, "rolling back")
            raise
        _run(change.after_commit, "after its commit")

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session


class JoinedRecorder(Recorder):
    """A recorder whose changes join one open change, so several catalog steps are one transaction.

    The catalog opens a change per method; an ingest (or a desensitization) needs publish, suggest and
    add_version to stand or fall together with the files it wrote, so a catalog built over this
    recorder runs them inside the caller's own transaction (its ledger records are appended when that
    transaction commits).
    """

    def __init__(self, outer: Change, base: Recorder) -> None:
        super().__init__(base.engine, base.ledger)
        self.outer = outer

    @contextmanager
    def change(self, actor: Actor) -> Iterator[Change]:
        outer = self.outer
        yield Change(outer.session, actor, outer.records, outer.after_commit, outer.after_rollback)
        self.outer.session.flush()

    @contextmanager
    def read(self) -> Iterator[Any]:
        yield self.outer.session


def _run(steps: list[Callable[[], None]], when: str) -> None:
    for step in steps:
        try:
            step()
        except Exception:  # the transaction's outcome stands; the start-up sweep finishes the files
            _log.exception("a file step %s failed; the next start's sweep completes it", when)
