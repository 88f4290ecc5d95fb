"""The instance home: init creates secrets 0600, never overwrites, and fails cleanly."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app import Instance, InstanceError, Settings
from app.keys import JWT_KEY, LEDGER_KEY, PEPPER, SECRETS_DIR, VAULT_KEY, SecretsError, load_keys
from tests.totp_support import code_for

SECRET_FILES = (JWT_KEY, PEPPER, VAULT_KEY, LEDGER_KEY)


def test_init_creates_owner_only_secrets(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    secrets_dir = instance.home / SECRETS_DIR
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    for name in SECRET_FILES:
        assert stat.S_IMODE((secrets_dir / name).stat().st_mode) == 0o600, name
    assert set(tokens) == {"custodian", "agency", "operator", "regulator"}
    assert len(set(tokens.values())) == 4
    keys = load_keys(instance.home)
    assert len({keys.jwt_key, keys.pseudonym_pepper, keys.vault_key}) == 3


def test_init_twice_refuses_and_changes_nothing(
    settings: Settings, initialised: tuple[Instance, dict[str, str]]
) -> None:
    home = settings.home
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file() and not p.name.startswith("keyong.db")}
    principals = initialised[0].identity.list_principals()
    with pytest.raises(InstanceError, match="already exists"):
        Instance.init(settings)
    after = {p: p.read_bytes() for p in home.rglob("*") if p.is_file() and not p.name.startswith("keyong.db")}
    assert before == after
    assert initialised[0].identity.list_principals() == principals
    # The old API keys still work.
    for api_key in initialised[1].values():
        initialised[0].identity.exchange(api_key, code_for(api_key))


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    home = tmp_path / "busy"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(InstanceError, match="not an empty directory"):
        Instance.init(Settings(home=home))
    assert [p.name for p in home.iterdir()] == ["notes.txt"]


def test_init_accepts_an_empty_directory(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    home.mkdir()
    instance, _ = Instance.init(Settings(home=home))
    instance.close()
    assert (home / "keyong.json").exists()


def test_failed_init_leaves_nothing_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad = Settings(home=home, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(Exception):  # noqa: B017 - the driver's own connection error
        Instance.init(bad)
    assert not home.exists()
    assert list(tmp_path.iterdir()) == []
    instance, _ = Instance.init(Settings(home=home))  # and a retry works
    instance.close()


def test_open_refuses_a_missing_home(tmp_path: Path) -> None:
    with pytest.raises(InstanceError, match="keyong init"):
        Instance.open(Settings(home=tmp_path / "nowhere"))


def test_open_refuses_a_secret_others_can_read(
    initialised: tuple[Instance, dict[str, str]], settings: Settings
) -> None:
    os.chmod(settings.home / SECRETS_DIR / VAULT_KEY, 0o644)
    with pytest.raises(SecretsError, match="readable by others"):
        Instance.open(settings)


def test_open_refuses_a_corrupt_secret(initialised: tuple[Instance, dict[str, str]], settings: Settings) -> None:
    path = settings.home / SECRETS_DIR / JWT_KEY
    path.write_text("not hex at all")
    with pytest.raises(SecretsError, match="not hex"):
        Instance.open(settings)


def test_open_refuses_a_corrupt_marker(initialised: tuple[Instance, dict[str, str]], settings: Settings) -> None:
    (settings.home / "keyong.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(InstanceError, match="corrupt"):
        Instance.open(settings)


def test_second_instance_on_the_same_database_is_refused(tmp_path: Path, pg_url: str) -> None:
    first, _ = Instance.init(Settings(home=tmp_path / "one", database_url=pg_url))
    first.close()
    with pytest.raises(InstanceError, match="already holds"):
        Instance.init(Settings(home=tmp_path / "two", database_url=pg_url))
    assert not (tmp_path / "two").exists()


def test_home_records_its_database(tmp_path: Path, pg_url: str) -> None:
    instance, _ = Instance.init(Settings(home=tmp_path / "h", database_url=pg_url))
    instance.close()
    reopened = Instance.open(Settings(home=tmp_path / "h"))
    try:
        assert reopened.engine.dialect.name == "postgresql"
        assert len(reopened.identity.list_principals()) == 4
    finally:
        reopened.close()
