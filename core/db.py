"""Database base classes and time types shared by every package that keeps tables.

Times are UTC-aware everywhere (:class:`UTCDateTime`); constraint names follow one convention so
Alembic migrations are stable across SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

__all__ = ["MAX_ROW_ID", "NAMING_CONVENTION", "Base", "UTCDateTime", "utcnow"]

#: The largest row id: ids are SQL INTEGER (signed 32-bit) columns. A larger number names nothing, and
#: the database driver fails on it (SQLite: OverflowError past 2^63; PostgreSQL: "integer out of range")
#: rather than finding nothing, so callers that take an id from outside check it against this first.
MAX_ROW_ID = 2**31 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that comes back timezone-aware UTC on SQLite and PostgreSQL alike.

    SQLite has no time zones and returns naive values; comparing those with aware values
    raises, so everything is normalised to aware UTC at the boundary.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Keyong stores UTC-aware timestamps only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime()}
