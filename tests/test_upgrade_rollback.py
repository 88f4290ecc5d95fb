"""Upgrade and rollback of a home, as ``docs/deployment.md`` writes them down (SATRE 2.2.03).

- Code older than the home's schema (a revision its migrations do not know) refuses to open the home
  and changes nothing: the revision is stamped to a future one, as a newer Keyong would leave it.
- The documented procedure, performed: a home with data at an older revision (built with the current code,
  then migrated *down* to ``0013_people_standing`` with its own Alembic downgrade: a real older schema) is
  frozen and backed up by "the old version", upgraded by this one with ``keyong db upgrade`` (ledgered),
  verified and unfrozen; then rolled back by restoring the pre-upgrade backup with the old version: the old
  revision and the old data come back, and the ledger verifies.

"The old version" is this code told that its newest migration is ``0013_people_standing`` (the two
functions ``Instance.open`` asks: what to migrate to, and where the schema stands), which is what an
installed Keyong of that revision does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

import app.instance as instance_module
from app import Instance, InstanceError, Settings
from app.backup_archive import PASSPHRASE_ENV
from app.cli import cli
from app.database import SchemaStatus, alembic_config, current_revision, migrate, schema_status, sqlite_url
from app.instance import resolve_database_url
from core import Actor
from operators import Role
from tests.test_registry_licences import uscc

OLD = "0013_people_standing"


def _after(old: str) -> list[str]:
    """The migrations newer than ``old``, oldest first: what an upgrade from ``old`` applies."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    chain = [rev.revision for rev in script.walk_revisions("base", "heads")][::-1]
    return chain[chain.index(old) + 1 :]


NEWER = _after(OLD)
PASSPHRASE = "correct horse battery staple"
PERSON = "zhang-analyst"
OPERATOR_ORG = "acme-operating"


def keyong(*args: str, env_url: str | None = None) -> tuple[int, str, str]:
    env = {PASSPHRASE_ENV: PASSPHRASE, "KEYONG_DATABASE_URL": env_url}
    result = CliRunner().invoke(cli, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def sqlite_engine(home: Path) -> Engine:
    return create_engine(sqlite_url(home))


def actions(home: Path) -> list[str]:
    engine = sqlite_engine(home)
    try:
        with engine.connect() as connection:
            return [str(a) for (a,) in connection.execute(text("SELECT action FROM ledger_entries ORDER BY seq"))]
    finally:
        engine.dispose()


@contextmanager
def old_keyong(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run as a Keyong whose newest migration is ``OLD``: it migrates to ``OLD`` and sees ``OLD`` as its head."""

    def old_migrate(engine: Engine, revision: str = "head") -> None:
        migrate(engine, OLD if revision == "head" else revision)

    def old_status(engine: Engine) -> SchemaStatus:
        real = schema_status(engine)
        if real.current == OLD:
            return SchemaStatus(OLD, OLD, (), known=True)
        return SchemaStatus(real.current, OLD, real.pending, known=real.current is None or real.known)

    with monkeypatch.context() as patch:
        patch.setattr(instance_module, "migrate", old_migrate)
        patch.setattr(instance_module, "schema_status", old_status)
        yield


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """The procedure's home: SQLite inside it, so the whole home is one backup and one restore."""
    return Settings(home=tmp_path / "home", database_url=None)


def home_engine(settings: Settings) -> Engine:
    return create_engine(resolve_database_url(settings))


def older_home_with_data(settings: Settings) -> None:
    """A home with a person and an operating company, its schema then migrated down to ``OLD``."""
    instance, _ = Instance.init(settings)
    try:
        instance.identity.create_principal(PERSON, Role.OPERATOR, org=None)
        instance.registry.licences.add_operator(OPERATOR_ORG, uscc(2201), by=Actor.host())
        config = alembic_config()
        with instance.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, OLD)
        assert current_revision(instance.engine) == OLD
    finally:
        instance.close()


def data_of(home: Path) -> tuple[list[str], list[str], set[str]]:
    engine = sqlite_engine(home)
    try:
        with engine.connect() as connection:
            people = sorted(str(r[0]) for r in connection.execute(text("SELECT name FROM principals")))
            orgs = sorted(str(r[0]) for r in connection.execute(text("SELECT name FROM operator_orgs")))
        return people, orgs, set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_code_older_than_the_schema_refuses_to_open_the_home(settings: Settings) -> None:
    """On SQLite and PostgreSQL (``settings`` from conftest): a future revision is never opened."""
    instance, _ = Instance.init(settings)
    instance.close()
    engine = home_engine(settings)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
            size = connection.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one()

        with pytest.raises(InstanceError, match=r"0099_from_the_future.*does not know.*newer Keyong"):
            Instance.open(settings)
        with pytest.raises(InstanceError, match="0099_from_the_future"):
            Instance.open(settings, upgrade=False)
        home = str(settings.home)
        code, _, err = keyong("ledger", "verify", "--home", home, env_url=settings.database_url)
        assert code == 1 and "0099_from_the_future" in err and "restoring the backup" in err
        code, _, err = keyong("db", "upgrade", "--home", home, env_url=settings.database_url)
        assert code == 1 and "newer Keyong" in err

        # `db status` reads without opening: it says where the home stands.
        code, out, _ = keyong("db", "status", "--home", home, "--json", env_url=settings.database_url)
        assert code == 0
        state = json.loads(out)
        assert state["current"] == "0099_from_the_future" and state["known"] is False and state["up_to_date"] is False

        # Nothing was changed: the revision is still the future one and the ledger did not grow.
        assert current_revision(engine) == "0099_from_the_future"
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one() == size
    finally:
        engine.dispose()


def test_db_status_names_the_pending_migrations_of_an_older_home(sqlite_settings: Settings) -> None:
    older_home_with_data(sqlite_settings)
    code, out, _ = keyong("db", "status", "--home", str(sqlite_settings.home), "--json")
    assert code == 0
    state = json.loads(out)
    assert state["current"] == OLD and state["known"] is True
    assert state["pending"] == NEWER and state["head"] == NEWER[-1] and state["up_to_date"] is False


def test_the_documented_upgrade_and_rollback(
    sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sqlite_settings
    home = str(settings.home)
    older_home_with_data(settings)
    archive = tmp_path / "pre-upgrade.tar"

    # 1-2. With the old version installed: freeze, then back up the frozen home.
    with old_keyong(monkeypatch):
        assert keyong("freeze", "--reason", "upgrade to the next release", "--home", home)[0] == 0
        code, _, err = keyong("backup", "create", str(archive), "--home", home, "--json")
        assert code == 0, err
        assert current_revision_of(settings.home) == OLD  # the old version left the schema where it was

    # 3-4. The new version is installed: its status names what is pending, then it migrates explicitly.
    code, out, _ = keyong("db", "upgrade", "--home", home, "--json")
    assert code == 0
    assert json.loads(out) == {"home": home, "from": OLD, "to": NEWER[-1], "applied": NEWER}
    assert current_revision_of(settings.home) == NEWER[-1]
    assert "schema.migrated" in actions(settings.home)
    # 5. The ledger verifies; the data is there, with the new table beside it.
    code, out, _ = keyong("ledger", "verify", "--home", home, "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    people, orgs, tables = data_of(settings.home)
    assert PERSON in people and OPERATOR_ORG in orgs and "principal_totp" in tables
    # A second upgrade has nothing to do and writes nothing.
    size = len(actions(settings.home))
    code, out, _ = keyong("db", "upgrade", "--home", home, "--json")
    assert code == 0 and json.loads(out)["applied"] == [] and len(actions(settings.home)) == size
    # 6. Unfreeze.
    assert keyong("unfreeze", "--reason", "upgrade verified", "--home", home)[0] == 0

    # Rollback: the upgraded home is set aside and the pre-upgrade backup restored with the old version.
    settings.home.rename(tmp_path / "home.upgraded")
    with old_keyong(monkeypatch):
        code, out, err = keyong("backup", "restore", str(archive), "--home", home, "--json")
        assert code == 0, err
        assert json.loads(out)["ok"] is True
        assert current_revision_of(settings.home) == OLD
        people, orgs, tables = data_of(settings.home)
        assert PERSON in people and OPERATOR_ORG in orgs and "principal_totp" not in tables
        restored = actions(settings.home)
        assert "schema.migrated" not in restored and restored[-1] == "home.restored"
        code, out, _ = keyong("ledger", "verify", "--home", home, "--json")
        assert code == 0 and json.loads(out)["ok"] is True
        # The backup was taken frozen: the restored home stays frozen until the operator unfreezes it.
        code, out, _ = keyong("unfreeze", "--reason", "rolled back to the previous release", "--home", home, "--json")
        assert code == 0 and json.loads(out)["frozen"] is False


def current_revision_of(home: Path) -> str | None:
    engine = sqlite_engine(home)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()
