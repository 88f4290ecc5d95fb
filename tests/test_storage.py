"""The storage layer on SQLite and PostgreSQL: migrations match the models, the same code
reads and writes on both, constraints hold, and the baseline migration is reversible."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import Instance, Settings
from app.database import (
    TARGET_METADATA,
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migrate,
    sqlite_url,
)
from operators import IdentityError, Role
from operators.models import ApiKeyRow, PrincipalRow


def url_of(settings: Settings) -> str:
    return settings.database_url or sqlite_url(settings.home)


def test_migrations_match_the_models(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    engine = make_engine(url_of(settings))
    migrate(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, TARGET_METADATA)  # type: ignore[arg-type]
    assert diff == []
    migrate(engine)  # idempotent
    engine.dispose()


def test_baseline_downgrades_and_upgrades_again(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    engine = make_engine(url_of(settings))
    migrate(engine)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert not {"principals", "api_keys"} & set(inspect(engine).get_table_names())
    migrate(engine)
    assert {"principals", "api_keys"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_principals_and_keys_round_trip(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, _ = initialised
    identity = instance.identity
    new = identity.create_principal("acme-data-ops", Role.OPERATOR)
    assert identity.authenticate_api_key(new.api_key).name == "acme-data-ops"
    second = identity.issue_api_key("acme-data-ops")
    assert second.api_key != new.api_key
    with Session(instance.engine) as session:
        row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == "acme-data-ops"))
        assert row is not None and row.role == "operator"
        assert row.created_at.tzinfo is not None and row.created_at <= datetime.now(UTC)
        stored = [k.secret_sha256 for k in row.api_keys]
    # Only digests are stored: no stored value appears in the issued keys.
    assert len(stored) == 2 and all(digest not in new.api_key + second.api_key for digest in stored)
    with pytest.raises(IdentityError, match="already exists"):
        identity.create_principal("acme-data-ops", Role.AGENCY)
    with pytest.raises(IdentityError, match="must be"):
        identity.create_principal("Bad Name!", Role.AGENCY)


def test_database_enforces_uniqueness_and_foreign_keys(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, _ = initialised
    with Session(instance.engine) as session, pytest.raises(IntegrityError):
        session.add(PrincipalRow(name="demo-agency", role="agency", created_at=datetime.now(UTC), active=True))
        session.commit()
    with Session(instance.engine) as session, pytest.raises(IntegrityError):
        session.add(
            ApiKeyRow(principal_id=99999, key_id="f" * 16, secret_sha256="0" * 64, created_at=datetime.now(UTC))
        )
        session.commit()


def test_naive_timestamps_are_refused(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, _ = initialised
    with Session(instance.engine) as session, pytest.raises(Exception, match="naive datetime"):
        session.add(PrincipalRow(name="naive-one", role="agency", created_at=datetime(2026, 1, 1), active=True))
        session.commit()
