"""Helpers for ledger tests: raw tampering that bypasses the database's append-only guards."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ledger.storage import APPEND_ONLY_TABLES


def tamper(engine: Engine, *statements: str, params: dict[str, Any] | None = None) -> None:
    """Run ``statements`` as an attacker with direct access: the SQLite file itself, or a
    PostgreSQL superuser who switches triggers off for the session."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        assert path
        raw = sqlite3.connect(path)
        try:
            for table in APPEND_ONLY_TABLES:
                raw.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
                raw.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            for statement in statements:
                raw.execute(statement, params or {})
            raw.commit()
        finally:
            raw.close()
    else:
        with engine.connect() as connection, connection.begin():
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in statements:
                # Driver-level: the attacker's SQL is not parsed for SQLAlchemy ":name" binds.
                connection.exec_driver_sql(statement, params or {}) if params else connection.exec_driver_sql(statement)
    engine.dispose()  # no pooled connection keeps a view from before the attack
