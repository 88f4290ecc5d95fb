"""Opening a home to read only: the commands that change nothing start in a blink (issue 21).

``Instance.open`` is a writer's open: it loads the secrets, migrates the schema and ledgers that,
finishes an interrupted ledger-key rotation and sweeps what killed writes left behind (issue 17), and a
command reaching the registry builds the whole ``Registry`` over every domain's ORM models. ``keyong job
show`` needs none of it, and paid over a second and a half for it. :meth:`ReadOnlyInstance.open` opens
the same home for reading:

* **the embedded database** (SQLite in the home, no database setting): Python's ``sqlite3`` opened with
  ``mode=ro`` and ``query_only``, so nothing can be written through it, one read transaction for the
  command; no SQLAlchemy, no pydantic settings, no secrets (nothing read here needs a key);
* **any other database** (``KEYONG_DATABASE_URL``, the URL recorded at ``init``, TLS settings): the settings
  and an engine of SQLAlchemy's core, in a read-only transaction (PostgreSQL ``SET TRANSACTION READ ONLY``);
* **a schema not at this code's head** (or one the cheap check cannot read): the writer's open, exactly as
  before (it migrates, or refuses a newer schema with its reason), then the same reads over its engine.

The schema check is the cheap one (``app.migration_head``): one query, the migration files' revision lines.
The home's marker, the database URL and its TLS settings are read here first, so the refusals (no instance,
a corrupt marker, TLS settings with SQLite) read as they did; ``app.instance`` re-exports them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from app.migration_head import scanned_head

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from app.settings import Settings

__all__ = [
    "DATABASE_TROUBLES",
    "FORMAT",
    "MARKER",
    "InstanceError",
    "ReadOnlyInstance",
    "database_trouble",
    "database_unusable",
    "not_a_regular_file",
    "read_marker",
    "refuse_special",
    "resolve_database_url",
    "sqlite_file",
    "unreachable",
    "with_tls",
]

MARKER = "keyong.json"
FORMAT = 1
#: What the embedded database is called in the home (``app.database.sqlite_url``).
EMBEDDED_DATABASE = "keyong.db"
#: Settings that take the database elsewhere than the embedded default (pydantic-settings reads them
#: case-insensitively); with any of them set, the settings are read in full (:meth:`ReadOnlyInstance.open`).
DATABASE_SETTINGS = ("keyong_database_url", "keyong_database_sslmode", "keyong_database_sslrootcert")

Rows = Callable[[str, Mapping[str, Any]], Sequence[Mapping[str, Any]]]


class InstanceError(Exception):
    """The home is missing, already exists, or is not usable."""


def read_marker(home: Path) -> dict[str, object]:
    try:
        data = json.loads((home / MARKER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InstanceError(f"no Keyong instance at {home}: run `keyong init --home {home}` first") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InstanceError(f"{home / MARKER} is corrupt: {exc}") from None
    except OSError as exc:  # a directory, a FIFO, no permission: unreadable, not a crash (FINDINGS21a F4)
        raise InstanceError(f"{home / MARKER} cannot be read: {exc.strerror or exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InstanceError(f"{home / MARKER} has an unsupported format")
    return data


def resolve_database_url(settings: Settings, marker: dict[str, object] | None = None) -> str:
    """Explicit setting, else the URL recorded at init, else SQLite inside the home."""
    from app.database import sqlite_url

    if settings.database_url:
        return with_tls(settings, settings.database_url)
    if marker is None and (settings.home / MARKER).exists():
        marker = read_marker(settings.home)
    recorded = (marker or {}).get("database_url")
    return with_tls(settings, recorded if isinstance(recorded, str) else sqlite_url(settings.home))


#: How a database can fail the server (:func:`database_trouble`), and what each one is, in a line.
DATABASE_TROUBLES: dict[str, str] = {
    "unreachable": "cannot connect to the database{where}",
    "read_only": "the database{where} refuses writes (read-only: a standby after a failover, a read-only session "
    "or file)",
    "damaged": "the database{where} is damaged or is not a database (restore it from a backup)",
    "locked": "the database{where} stayed locked by another session past the wait",
    "failing": "the database{where} failed internally",
}
#: SQLSTATEs (PostgreSQL) by trouble: 25006 read_only_sql_transaction (a standby, default_transaction_read_only),
#: XX001/XX002 data or index corrupted, 55P03 lock_not_available, 57014 query_canceled (a statement timeout).
_SQLSTATE_TROUBLES = {
    "25006": "read_only",
    "XX001": "damaged",
    "XX002": "damaged",
    "55P03": "locked",
    "57014": "locked",
}
#: The first line of SQLite's own refusals, by trouble (its errors carry no SQLSTATE).
_SQLITE_TROUBLES = (
    ("attempt to write a readonly database", "read_only"),
    ("database is locked", "locked"),
    ("database table is locked", "locked"),
)


def database_trouble(exc: BaseException) -> str:
    """Which of :data:`DATABASE_TROUBLES` an error :func:`database_unusable` accepted is.

    Why not one word for all: a read-only database (a failover left the server on a standby) or a damaged file
    were "cannot connect", which sent the operator to the network; each needs something else done (ledger23)."""
    orig = getattr(exc, "orig", None) or exc
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str) and state in _SQLSTATE_TROUBLES:
        return _SQLSTATE_TROUBLES[state]
    first = str(orig).strip().splitlines()[0].lower() if str(orig).strip() else ""
    for words, trouble in _SQLITE_TROUBLES:
        if first.startswith(words):
            return trouble
    import sys

    errors = sys.modules.get("sqlalchemy.exc")
    if errors is not None and type(exc) is errors.DatabaseError:  # SQLite: not a database, malformed image
        return "damaged"
    if errors is not None and isinstance(exc, errors.InternalError):
        return "read_only" if isinstance(state, str) and state.startswith("25") else "failing"
    return "unreachable"


def unreachable(url: str | None, exc: BaseException) -> str:
    """A one-line reason for a database that refused or failed the connection or the statement, worded by
    :func:`database_trouble` (no password shown, nor the SQL and its parameters: only the driver's first
    line); ``url`` ``None`` says "the database" without naming it."""
    from app.database import redact

    orig = getattr(exc, "orig", None) or exc
    reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(exc).__name__
    where = "" if url is None else f" {redact(url)}"
    return f"{DATABASE_TROUBLES[database_trouble(exc)].format(where=where)}: {reason}"


def database_unusable(exc: BaseException) -> bool:
    """Whether ``exc`` is the database failing rather than the code or the request: the driver's
    ``OperationalError`` (down, locked, cannot open), its ``InternalError`` (PostgreSQL refusing to write:
    a standby after a failover, ``default_transaction_read_only``, SQLSTATE class 25 or XX) or a bare
    ``DatabaseError`` (SQLite: "file is not a database", "database disk image is malformed"). The last two
    were a traceback in the CLI and a 500 over the API (red team 22); a taken key, bad SQL or a value out of
    range are other classes, answered elsewhere. Reads ``sqlalchemy.exc`` only when it is loaded."""
    import sys

    errors = sys.modules.get("sqlalchemy.exc")
    if errors is None:
        return False
    return isinstance(exc, errors.OperationalError | errors.InternalError) or type(exc) is errors.DatabaseError


def with_tls(settings: Settings, url: str) -> str:
    """``url`` with the database TLS settings applied (``app.database.with_sslmode``), or a refusal."""
    from app.database import DatabaseTlsError, with_sslmode

    try:
        return with_sslmode(url, settings.database_sslmode, settings.database_sslrootcert)
    except DatabaseTlsError as exc:
        raise InstanceError(str(exc)) from None


def default_home(home: Path | None) -> Path:
    """The home as ``Settings().with_home(home).home`` gives it: ``--home``, else ``KEYONG_HOME``, else
    ``./.keyong``, made absolute (without importing pydantic)."""
    if home is None:
        home = Path(_environment().get("keyong_home", ".keyong"))
    return home.expanduser().absolute()


def _environment() -> dict[str, str]:
    return {name.lower(): value for name, value in os.environ.items()}


@dataclass
class ReadOnlyInstance:
    """A home opened for reading: :attr:`rows` runs queries in one read transaction that cannot write."""

    home: Path
    rows: Rows
    close: Callable[[], None]
    #: How it was opened: ``embedded`` (sqlite3, read-only), ``engine`` (SQLAlchemy core, read-only
    #: transaction) or ``writer`` (the schema needed the writer's open).
    way: str
    #: The database URL the settings name (``engine``), with its TLS settings; ``None`` for the embedded
    #: database (``app.database.sqlite_url`` of the home) and after the writer's open.
    database_url: str | None = None

    @classmethod
    def open(cls, home: Path | None) -> ReadOnlyInstance:
        """Open ``home`` (``None``: ``KEYONG_HOME``, else ``./.keyong``) for reading; refusals as ``Instance.open``."""
        where = default_home(home)
        marker = read_marker(where)
        environment = _environment()
        if "database_url" not in marker and not any(environment.get(name) is not None for name in DATABASE_SETTINGS):
            embedded = _open_embedded(where / EMBEDDED_DATABASE)
            if embedded is not None:
                rows, close = embedded
                return cls(where, rows, close, "embedded")
        return _open_with_settings(where, marker)


def _open_embedded(path: Path) -> tuple[Rows, Callable[[], None]] | None:
    """A read-only connection to the embedded database in one read transaction, or ``None`` when the file
    is missing or its schema is not this code's head (the writer's open then decides, as before)."""
    if not path.is_file():
        refuse_special(path)
        return None
    connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout=10000")  # as app.database's engine: wait out a writer's lock
        connection.execute("PRAGMA query_only=ON")
        connection.execute("BEGIN")  # one snapshot for every query of the command
        head = scanned_head()
        revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error as exc:
        connection.close()
        if "database is locked" in str(exc):  # waited out its busy timeout: the writer's open would wait twice
            raise InstanceError(f"the database {path} is locked by another process: try again") from None
        return None
    if head is None or revisions != [(head,)]:
        connection.close()
        return None

    def rows(sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return _sqlite_rows(connection, sql, params)

    return rows, connection.close


_DECODE_ERROR = "Could not decode to UTF-8"
"""How Python's sqlite3 refuses stored text that is not UTF-8."""


def _lenient_text(raw: bytes) -> str | bytes:
    """Stored text as sqlite3 decodes it, or its bytes when they are not UTF-8 (the reader names the field)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _sqlite_rows(connection: sqlite3.Connection, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``sql``. Text that is not UTF-8 (someone edited the file) is read again, in the same
    transaction, as bytes, so that one edited row hides no other and the reader names the field
    (FINDINGS21a F4). Any other database error is the caller's to word (``app.cli.job``)."""
    try:
        return _fetch(connection, sql, params)
    except sqlite3.OperationalError as exc:
        if _DECODE_ERROR not in str(exc):
            raise
    connection.text_factory = _lenient_text
    try:
        return _fetch(connection, sql, params)
    finally:
        connection.text_factory = str


def _fetch(connection: sqlite3.Connection, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    cursor = connection.execute(sql, dict(params))
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _open_with_settings(home: Path, marker: dict[str, object]) -> ReadOnlyInstance:
    """The database the settings name, read through SQLAlchemy's core in a read-only transaction; the
    writer's open when its schema is not at this code's head or cannot be checked cheaply."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.database import cheap_status, make_engine
    from app.settings import Settings

    settings = Settings().with_home(home)
    url = resolve_database_url(settings, marker)
    engine = _read_only_sqlite_engine(url) or make_engine(url)
    if cheap_status(engine) is not None:
        rows, close = _engine_rows(engine, read_only=True)
        return ReadOnlyInstance(home, rows, _then(close, engine.dispose), "engine", url)
    engine.dispose()
    from app.instance import Instance

    # migrates (ledgered) or refuses, as every command did before; no sweep, as `read_instance` promises
    # (the sweep is the next writer's business, FINDINGS21a I2)
    try:
        instance = Instance.open(settings, sweep=False)
    except SQLAlchemyError as exc:  # "file is not a database" and its like: a reason, not a traceback (F4)
        raise InstanceError(_reason(url, exc)) from None
    rows, close = _engine_rows(instance.engine, read_only=False)
    return ReadOnlyInstance(home, rows, _then(close, instance.close), "writer")


def _read_only_sqlite_engine(url: str) -> Engine | None:
    """An engine over the SQLite file ``url`` names that cannot write, or ``None`` for another database.

    ``app.database.make_engine`` runs ``PRAGMA journal_mode=WAL`` on connect, which rewrites the header of
    a database kept in another journal mode before any ``query_only`` could refuse it (FINDINGS21a F3).
    Here every connection is opened ``mode=ro`` (SQLite's own refusal, which SQL cannot switch off), with
    no pragma but the busy timeout (as ``make_engine``'s) and ``query_only``, whichever way the URL names
    the file: a path, relative or absolute, or a ``file:`` URI with its own parameters (``mode=ro``
    replaces any ``mode``). An in-memory database has no file to protect: ``make_engine`` opens it.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from ledger import prepare_engine

    path = sqlite_file(url)
    if path is None:
        return None
    refuse_special(path)
    target = f"file:{quote(str(path))}?mode=ro"

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(target, uri=True, timeout=10.0, check_same_thread=False)
        connection.execute("PRAGMA query_only=ON")
        return connection

    return prepare_engine(create_engine("sqlite://", creator=connect, poolclass=NullPool))


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite ``url`` names, absolute, whichever way it names it (a path, relative or absolute, or a
    ``file:`` URI with its own parameters); ``None`` for another database or an in-memory one
    (``ledger.sqlite_path`` reads the URL, for the verifiers too)."""
    from ledger import sqlite_path

    path = sqlite_path(url)
    return None if path is None else Path(path).expanduser().absolute()


def not_a_regular_file(path: Path) -> str | None:
    """Why the database at ``path`` must not be opened, or ``None``: there but no regular file (a FIFO, a
    socket, a device). SQLite opening a FIFO waits for a writer forever: ``ledger verify`` and ``job show``
    hung (red team 21d F6), and so did every writing command wherever SQLite falls back to opening it read-only
    (a user who may not write it); where it can write it, the command failed later with "disk I/O error". The
    one rule for every open of the database: the read-only opens here and ``app.database.make_engine``'s."""
    try:
        mode = path.stat().st_mode
    except OSError:  # missing (the writer's open decides, as before) or unreadable (its open says why)
        return None
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return f"the database {path} is not a regular file: refused"
    return None


def refuse_special(path: Path) -> None:
    """Raise :class:`InstanceError` when :func:`not_a_regular_file` refuses ``path``."""
    reason = not_a_regular_file(path)
    if reason is not None:
        raise InstanceError(reason)


def _reason(url: str, exc: Exception) -> str:
    """One line on a database that could not be read (``unreachable``'s, for any SQLAlchemy error)."""
    from app.database import redact

    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"cannot read the database {redact(url)}: {lines[0] if lines else type(exc).__name__}"


def _then(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        try:
            first()
        finally:
            second()

    return both


def _engine_rows(engine: Engine, *, read_only: bool) -> tuple[Rows, Callable[[], None]]:
    """Queries on one connection of ``engine`` in one transaction (read-only on PostgreSQL when asked)."""
    from sqlalchemy import text

    connection = engine.connect()
    if read_only and engine.dialect.name == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif read_only and engine.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only=ON")  # the engine is this open's own, disposed with it

    driver = None
    if engine.dialect.name == "sqlite":  # Python's sqlite3 underneath: read as the embedded way reads
        if not connection.in_transaction():
            connection.begin()  # one snapshot (ledger.prepare_engine emits BEGIN)
        driver = connection.connection.driver_connection

    def rows(sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        if isinstance(driver, sqlite3.Connection):
            return _sqlite_rows(driver, sql, params)
        return [dict(row._mapping) for row in connection.execute(text(sql), dict(params))]

    def close() -> None:
        connection.rollback()
        connection.close()

    return rows, close
