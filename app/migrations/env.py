"""Alembic environment: uses the connection Keyong hands over, or ``KEYONG_DATABASE_URL``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from app.database import TARGET_METADATA

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=TARGET_METADATA,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # `alembic upgrade head` run by hand from the repository root
    from app.instance import resolve_database_url
    from app.settings import Settings

    engine = create_engine(resolve_database_url(Settings()))
    with engine.begin() as conn:
        _run(conn)
