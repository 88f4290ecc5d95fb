"""Who acts, and the one way the registry changes anything: in a transaction with its ledger entries.

Every registry change is appended to the ledger in the same database transaction as the change
itself (issue 4; 双鸭山 第二十条: usage logs kept ≥ 3 years), so there is never a change without
its record nor a record of a change that rolled back.
"""

from __future__ import annotations

import getpass
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ledger import Ledger, Record

HOST_ROLE = "host"


class RegistryError(Exception):
    """A registry operation was refused; the message says why and what would make it acceptable."""


class NotFoundError(RegistryError):
    """The named resource, licence, operator, product or objection does not exist (or is not visible)."""


class PermissionDeniedError(RegistryError):
    """The actor's role may not do this."""


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in 1 MiB blocks: raw files, copies and artifacts can be large."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def text_sha256(text: str) -> str:
    """What a ledger payload carries of a free text (a reason, an objection): its SHA-256, never the text.

    Free texts may hold personal data the screen cannot recognise; the table row keeps the text,
    the ledger its hash, so the record still proves what was written.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a principal's name and role (``operators.Principal`` fits), or the host administrator."""

    name: str
    role: str

    @classmethod
    def host(cls) -> Actor:
        """The local administrator acting through the CLI (DESIGN.md: the CLI acts for the implied role)."""
        return cls(f"host:{getpass.getuser()}", HOST_ROLE)

    @property
    def is_host(self) -> bool:
        return self.role == HOST_ROLE


def actor_of(who: Any) -> Actor:
    """Accept anything with ``name`` and ``role`` (a ``Principal`` whose role is a StrEnum, say)."""
    if who is None:
        return Actor.host()
    if isinstance(who, Actor):
        return who
    return Actor(str(who.name), str(getattr(who.role, "value", who.role)))


def require_role(actor: Actor, *roles: str) -> None:
    """Refuse unless ``actor`` holds one of ``roles``; the host administrator may act for any role."""
    if actor.is_host or actor.role in roles:
        return
    raise PermissionDeniedError(f"role {actor.role!r} may not do this; allowed: {', '.join(sorted(roles))}")


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
