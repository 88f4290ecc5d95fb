"""The database part of a backup: a consistent snapshot out, an empty database filled back in.

- SQLite (the embedded default): the sqlite3 online backup API copies the live file page by page,
  consistent while a server writes; restored as the new home's ``keyong.db``.
- PostgreSQL: every table of the instance's schema read through SQLAlchemy in one REPEATABLE READ,
  read-only transaction (one snapshot of the whole schema) and written as JSON lines with tagged
  types; restored into an empty target database or schema migrated to the dumped revision, rows
  inserted in foreign-key order, sequences moved past the restored keys, all in one transaction.
  ``pg_dump`` is not used: it would need the same major version as the server and a restore tool,
  where this needs only the connection the instance already has.

The ledger's head (size, chain hash, latest checkpoint) is read around the PostgreSQL snapshot and
must be the same before and after it: the ledger is append-only, so an unchanged head means the
snapshot holds exactly that ledger. Values of a type this module does not know are refused, never
guessed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from alembic import command
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

from app.backup_archive import BackupError
from app.database import alembic_config, current_revision, make_engine
from app.instance import Instance
from ledger import Ledger

SQLITE_MEMBER = "database/keyong.db"
POSTGRESQL_MEMBER = "database/tables.jsonl"
VERSION_TABLE = "alembic_version"
BATCH = 500
ATTEMPTS = 5
TAG = "$keyong"


def ledger_state(ledger: Ledger) -> dict[str, Any]:
    size, head = ledger.head()
    checkpoint = ledger.latest_checkpoint()
    return {
        "size": size,
        "head": head,
        "checkpoint": None
        if checkpoint is None
        else {"tree_size": checkpoint.tree_size, "root": checkpoint.root, "time": checkpoint.time},
    }


# --- SQLite -----------------------------------------------------------------------------------------


def snapshot_sqlite(instance: Instance, into: Path) -> dict[str, Any]:
    """The live database copied by SQLite's online backup API; the ledger state the copy holds."""
    source = sqlite3.connect(f"file:{instance.home / 'keyong.db'}?mode=ro", uri=True)
    target = sqlite3.connect(into)
    try:
        with target:
            source.backup(target)
    finally:
        target.close()
        source.close()
    engine = make_engine(f"sqlite:///{into}")
    try:
        state = ledger_state(Ledger(engine, instance.keys.ledger_key, origin=instance.ledger.origin))
        state["revision"] = current_revision(engine)
    finally:
        engine.dispose()
    return {"dialect": "sqlite", "method": "sqlite3 online backup API", "member": SQLITE_MEMBER, "ledger": state}


# --- PostgreSQL ---------------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str | float):
        return value
    if isinstance(value, dict | list):
        return {TAG: "json", "v": value}
    if isinstance(value, dt.datetime):
        return {TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {TAG: "date", "v": value.isoformat()}
    if isinstance(value, dt.time):
        return {TAG: "time", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {TAG: "decimal", "v": str(value)}
    if isinstance(value, bytes | memoryview):
        return {TAG: "bytes", "v": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, uuid.UUID):
        return {TAG: "uuid", "v": str(value)}
    raise BackupError(f"cannot back up a database value of type {type(value).__name__}")


_DECODERS: dict[str, Any] = {
    "json": lambda v: v,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "decimal": Decimal,
    "bytes": base64.b64decode,
    "uuid": uuid.UUID,
}


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        kind = value.get(TAG)
        if kind not in _DECODERS or set(value) != {TAG, "v"}:
            raise BackupError(f"the database dump holds an unknown value {value!r}")
        return _DECODERS[kind](value["v"])
    if isinstance(value, list):
        raise BackupError("the database dump holds an untagged list")
    return value


def _dump_tables(connection: Connection, sink: IO[str]) -> list[str]:
    meta = MetaData()
    meta.reflect(connection)
    names = []
    for table in meta.sorted_tables:
        if table.name == VERSION_TABLE:
            continue
        names.append(table.name)
        order = list(table.primary_key.columns) or list(table.columns)
        for row in connection.execute(table.select().order_by(*order)).mappings():
            sink.write(json.dumps({"t": table.name, "r": {k: _encode(v) for k, v in row.items()}}) + "\n")
    return names


def snapshot_postgresql(instance: Instance, into: Path) -> dict[str, Any]:
    """Every table in one REPEATABLE READ snapshot, bracketed by an unchanged ledger head (else tried again)."""
    for _ in range(ATTEMPTS):
        before = ledger_state(instance.ledger)
        with (
            instance.engine.connect().execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            ) as conn,
            conn.begin(),
            into.open("w", encoding="utf-8") as sink,
        ):
            revision = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one()
            tables = _dump_tables(conn, sink)
        if ledger_state(instance.ledger) == before:
            break
    else:
        raise BackupError(f"the ledger grew during each of {ATTEMPTS} dumps; run the backup at a quieter moment")
    return {
        "dialect": "postgresql",
        "method": "SQLAlchemy: every table in one REPEATABLE READ transaction, as JSON lines (not pg_dump)",
        "member": POSTGRESQL_MEMBER,
        "tables": tables,
        "ledger": {**before, "revision": revision},
    }


def _rows(dump: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with dump.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                item = json.loads(line)
                yield str(item["t"]), {str(k): _decode(v) for k, v in item["r"].items()}
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
                raise BackupError(f"line {number} of the database dump is malformed: {exc}") from None


def require_empty_database(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
    except Exception as exc:  # any connection failure is a refusal with the reason, never a traceback
        raise BackupError(f"cannot reach the target database: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"the target database already holds tables ({', '.join(sorted(tables)[:5])}); nothing was written"
        )


def load_postgresql(url: str, dump: Path, revision: str) -> None:
    """Migrate the empty target to ``revision`` and insert every dumped row, in one transaction."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:  # schema and rows commit together (PostgreSQL DDL is transactional)
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            meta = MetaData()
            meta.reflect(connection)
            # Rows a migration seeds (the platform's one freeze row) are in the dump as they were: the
            # dump, not the migration, is what the home held, so seeded rows give way to it.
            for table in reversed(meta.sorted_tables):
                if table.name != VERSION_TABLE:
                    connection.execute(table.delete())
            batch: list[dict[str, Any]] = []
            current: str | None = None
            for table, row in _rows(dump):
                if table not in meta.tables or table == VERSION_TABLE:
                    raise BackupError(f"the database dump names table {table!r}, which revision {revision} lacks")
                if table != current and batch and current is not None:
                    connection.execute(meta.tables[current].insert(), batch)
                    batch = []
                current = table
                batch.append(row)
                if len(batch) >= BATCH:
                    connection.execute(meta.tables[current].insert(), batch)
                    batch = []
            if batch and current is not None:
                connection.execute(meta.tables[current].insert(), batch)
            _advance_sequences(connection, meta)
    except BackupError:
        raise
    except Exception as exc:
        raise BackupError(f"the database could not be restored: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    finally:
        engine.dispose()


def _advance_sequences(connection: Connection, meta: MetaData) -> None:
    """Every serial or identity key's sequence past the largest restored key, so new rows do not collide."""
    for table in meta.sorted_tables:
        for column in table.primary_key.columns:
            sequence = connection.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
            ).scalar()
            if sequence:
                connection.execute(
                    text(
                        f'SELECT setval(:s, COALESCE((SELECT MAX("{column.name}") FROM "{table.name}"), 0) + 1, false)'
                    ),
                    {"s": sequence},
                )
