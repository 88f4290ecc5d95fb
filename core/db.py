"""Database base classes and time types shared by every package that keeps tables.

Times are UTC-aware everywhere (:class:`UTCDateTime`); constraint names follow one convention so
Alembic migrations are stable across SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase

__all__ = ["MAX_ROW_ID", "NAMING_CONVENTION", "Base", "UTCDateTime", "duplicate_key", "utcnow"]

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


#: SQLite's words for a taken unique key (its driver has no SQLSTATE); PostgreSQL's SQLSTATE for it.
_SQLITE_DUPLICATE = "UNIQUE constraint failed"
_UNIQUE_VIOLATION = "23505"


def duplicate_key(exc: BaseException) -> str | None:
    """The unique key the database refused a row for, as ``table.column``, or ``None`` for anything else.

    Why: a create checks "does it exist?" then inserts; two processes creating the same operator, principal
    or dataset at once on PostgreSQL both pass the check and the later insert meets the unique index (red team
    21c F9). That is a conflict with what exists, not a fault: the API answers 409, the CLI "already exists".
    One rule for both (PostgreSQL's SQLSTATE 23505, SQLite's "UNIQUE constraint failed"); only the key's name
    is given, never its values (a hash may be one) nor the SQL. ``"a unique key"`` when the driver names none.
    """
    if not isinstance(exc, IntegrityError):
        return None
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _UNIQUE_VIOLATION:
        diag = getattr(orig, "diag", None)
        table = getattr(diag, "table_name", None)
        constraint = getattr(diag, "constraint_name", None)
        if not table or not constraint:
            return "a unique key"
        for prefix in (f"uq_{table}_", f"ix_{table}_"):  # NAMING_CONVENTION's unique constraints and indexes
            if constraint.startswith(prefix):
                return f"{table}.{constraint.removeprefix(prefix)}"
        return f"{table} ({constraint})"
    text = str(orig)
    if _SQLITE_DUPLICATE in text:
        named = text.partition(_SQLITE_DUPLICATE)[2].lstrip(": ").splitlines()
        return named[0].strip() if named and named[0].strip() else "a unique key"
    return None
