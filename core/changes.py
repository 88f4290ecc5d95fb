"""Who acts, and the one way the registry changes anything: in a transaction with its ledger entries.

Every registry change is appended to the ledger in the same database transaction as the change
itself (issue 4; 双鸭山 第二十条: usage logs kept ≥ 3 years), so there is never a change without
its record nor a record of a change that rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.actors import Actor
from ledger import Ledger, Record

__all__ = ["Change", "JoinedRecorder", "Recorder"]


@dataclass
class Change:
    """A session plus the ledger records that will be appended when it commits."""

    session: Session
    actor: Actor
    records: list[Record] = field(default_factory=list)

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
        with self.ledger.transaction() as connection:
            with Session(bind=connection, expire_on_commit=False) as session:
                change = Change(session, actor)
                yield change
                session.flush()
            if change.records:
                self.ledger.append_many(change.records, connection=connection)

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
        yield Change(self.outer.session, actor, self.outer.records)
        self.outer.session.flush()

    @contextmanager
    def read(self) -> Iterator[Any]:
        yield self.outer.session
