"""The metadata database: engine set-up and Alembic migrations for SQLite and PostgreSQL.

The embedded default is SQLite in WAL mode, so readers (API, console) and a writer (worker)
do not block each other; PostgreSQL is the production store. The same migrations run on both.

Opening a home checks its schema revision at every command. Alembic and the domain packages' table
definitions cost a second to import, so a database already at this code's head is recognised with one
query and a read of the migration files' ``revision`` lines (:func:`cheap_status`); Alembic runs only
when something is pending or unclear (issue 21).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from sqlalchemy import create_engine, event, inspect, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

import ledger
from app.instance_read import not_a_regular_file, sqlite_file
from app.migration_head import MIGRATIONS, scanned_head

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import MetaData


def __getattr__(name: str) -> Any:
    # TARGET_METADATA: every package that owns tables contributes its MetaData; Alembic compares against all.
    # Built when Alembic first asks (PEP 562): it imports every domain package.
    if name == "TARGET_METADATA":
        import operators
        import registry
        import sandbox

        # A name of sandbox's lazy face loads it whole: its job and release tables join the core Base's metadata.
        sandbox.JobQueue  # noqa: B018

        metadata: list[MetaData] = [ledger.metadata, operators.metadata, registry.metadata]
        globals()[name] = metadata
        return metadata
    raise AttributeError(f"module 'app.database' has no attribute {name!r}")


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'keyong.db'}"


#: libpq's sslmode values, weakest first: ``require`` and above never talk to the database in clear text.
DatabaseSslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSL_MODES: tuple[str, ...] = get_args(DatabaseSslMode)


class DatabaseTlsError(ValueError):
    """The database TLS settings cannot be honoured (unknown mode, SQLite, missing CA file)."""


def with_sslmode(url: str, sslmode: str | None, sslrootcert: Path | None = None) -> str:
    """``url`` with TLS required of its PostgreSQL connection (SATRE 2.8.01).

    The stricter of ``sslmode`` and an ``sslmode`` already in the URL applies, so a setting can raise
    but never lower what the URL asks. SQLite has no connection to encrypt: a TLS setting with it is
    refused rather than ignored, since it most likely means the PostgreSQL URL was forgotten.
    """
    if sslmode is None and sslrootcert is None:
        return url
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseTlsError(
            f"KEYONG_DATABASE_SSLMODE / KEYONG_DATABASE_SSLROOTCERT apply to PostgreSQL only, "
            f"not to {parsed.get_backend_name()} ({redact(url)}); set KEYONG_DATABASE_URL or unset them"
        )
    query = dict(parsed.query)
    modes = [str(m) for m in (query.get("sslmode"), sslmode) if m is not None]
    unknown = [m for m in modes if m not in SSL_MODES]
    if unknown:
        raise DatabaseTlsError(f"unknown sslmode {unknown[0]!r}; one of {', '.join(SSL_MODES)}")
    if modes:
        query["sslmode"] = max(modes, key=SSL_MODES.index)
    if sslrootcert is not None:
        if not sslrootcert.is_file():
            raise DatabaseTlsError(f"KEYONG_DATABASE_SSLROOTCERT: no such file {sslrootcert}")
        query["sslrootcert"] = str(sslrootcert)
    return parsed.set(query=query).render_as_string(hide_password=False)


#: Query parameters of a database URL whose value is a secret (libpq takes ``password`` and ``sslpassword``
#: there as well as in the user-info); matched by part of the name, lower-cased.
_SECRET_PARAMETERS = ("pass", "secret", "token")


def redact(url: str) -> str:
    """The URL with any password hidden, for printing and for the ledger: the user-info's, and a query
    parameter's (``?password=…``, ``?sslpassword=…``), which ``hide_password`` leaves shown (red team 21d)."""
    parsed = make_url(url)
    query = {
        name: "***" if any(part in name.lower() for part in _SECRET_PARAMETERS) else value
        for name, value in parsed.query.items()
    }
    return parsed.set(query=query).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _regular_file_only(path: Path) -> Callable[..., None]:
    """A ``do_connect`` hook refusing ``path`` when it is no regular file (``app.instance_read``'s rule), at
    every new connection: as the driver's error, so the CLI says it cannot connect and the API answers 503."""

    def check(*_: Any) -> None:
        reason = not_a_regular_file(path)
        if reason is not None:
            raise sqlite3.OperationalError(reason)

    return check


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        path = sqlite_file(url)
        if path is not None:  # a FIFO in its place: SQLite may wait on it forever (fix22)
            event.listen(engine, "do_connect", _regular_file_only(path))
    return ledger.prepare_engine(engine)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision``; safe to run on an up-to-date database (then Alembic is not run)."""
    if revision == "head":
        status = cheap_status(engine)
        if status is not None and status.up_to_date:
            return
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def cheap_status(engine: Engine) -> SchemaStatus | None:
    """The status of a database at this code's head, read without Alembic; ``None`` when it is anything
    else (behind, ahead, empty, unreadable): then :func:`schema_status` asks Alembic, as before."""
    head = scanned_head()
    if head is None:
        return None
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None
    if [tuple(row) for row in rows] != [(head,)]:
        return None
    return SchemaStatus(head, head, (), known=True)


class SchemaTooNewError(RuntimeError):
    """The database is at a revision this code's migrations do not know: a newer Keyong made it.

    Running older code over a newer schema could write rows the newer code misreads (or drop what it
    needs), so such a home is never opened (fail closed, SATRE 2.2.03): install the newer version again,
    or roll back by restoring the backup taken before the upgrade (``docs/deployment.md``)."""


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database stands against this code's migrations (``keyong db status``)."""

    current: str | None  # None: an empty database (no schema yet)
    head: str | None
    pending: tuple[str, ...]  # revisions an upgrade would apply, oldest first
    known: bool  # False: ``current`` is not one of this code's revisions (a newer Keyong's)

    @property
    def up_to_date(self) -> bool:
        return self.known and not self.pending

    def as_json(self) -> dict[str, object]:
        return {
            "current": self.current,
            "head": self.head,
            "pending": list(self.pending),
            "known": self.known,
            "up_to_date": self.up_to_date,
        }


def schema_status(engine: Engine) -> SchemaStatus:
    """The database's revision, this code's head and what lies between, read without changing anything."""
    cheap = cheap_status(engine)
    if cheap is not None:
        return cheap
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    current = current_revision(engine)
    known_ids = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known_ids:
        return SchemaStatus(current, head, (), known=False)
    pending = tuple(reversed([rev.revision for rev in script.iterate_revisions(head, current)]))
    return SchemaStatus(current, head, pending, known=True)


def refuse_unknown_schema(status: SchemaStatus, where: str) -> None:
    """Raise :class:`SchemaTooNewError` when ``status`` is a revision this code does not know."""
    if not status.known:
        raise SchemaTooNewError(
            f"the database {where} is at schema revision {status.current!r}, which this Keyong (schema head "
            f"{status.head!r}) does not know: a newer Keyong made it, and this version will not run on it. "
            "Install that newer version again, or roll back by restoring the backup taken before the upgrade "
            "(docs/deployment.md, Upgrade and rollback); nothing was changed"
        )


def refuse_unversioned_tables(engine: Engine, status: SchemaStatus, where: str) -> None:
    """Raise :class:`SchemaTooNewError` when the database has tables but no schema revision.

    An emptied or dropped ``alembic_version`` would otherwise send every migration over the existing tables
    (a raw ``table already exists`` error, reported as an unreachable database; red team 22c). The revision
    is unknown, so nothing is migrated: fail closed with the reason (SATRE 2.2.03)."""
    if status.current is not None:
        return
    tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
    if tables:
        raise SchemaTooNewError(
            f"the database {where} holds {len(tables)} tables but no schema revision (its alembic_version is "
            "empty or gone): Keyong will not migrate over them. Restore the backup taken before, or set the "
            "revision back by hand once you know it (`alembic stamp`); nothing was changed"
        )
