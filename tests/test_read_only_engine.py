"""The read-only open's "engine" way on SQLite writes nothing, however the database is named (FINDINGS21a F3).

That way is taken when the marker records a database URL or ``KEYONG_DATABASE_URL`` is set. Its engine
used to be the writer's (``app.database.make_engine``), whose connect hook runs ``PRAGMA journal_mode=WAL``:
a database kept in rollback-journal mode had its header rewritten by ``keyong job list``.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from app import Instance, Settings
from app.instance_read import DATABASE_SETTINGS, ReadOnlyInstance
from sandbox import read_jobs


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("engine") / "h"
    instance, _ = Instance.init(Settings().with_home(home))
    instance.close()
    raw = sqlite3.connect(home / "keyong.db")
    raw.execute("PRAGMA journal_mode=DELETE")
    raw.close()
    return home


@pytest.fixture
def home(pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in DATABASE_SETTINGS:
        monkeypatch.delenv(name.upper(), raising=False)
    target = tmp_path / "h"
    shutil.copytree(pristine, target)
    monkeypatch.chdir(tmp_path)
    return target


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


URLS: dict[str, Callable[[Path], str]] = {
    "absolute": lambda db: f"sqlite:///{db}",
    "relative": lambda db: "sqlite:///h/keyong.db",
    "driver_named": lambda db: f"sqlite+pysqlite:///{db}",
    "uri_asking_to_create": lambda db: f"sqlite:///file:{db}?mode=rwc&uri=true",
    "uri_with_cache": lambda db: f"sqlite:///file:{db}?cache=shared&uri=true",
}


@pytest.mark.parametrize("name", sorted(URLS))
def test_the_engine_way_changes_no_byte_and_cannot_write(
    name: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = home / "keyong.db"
    monkeypatch.setenv("KEYONG_DATABASE_URL", URLS[name](database))
    before = digest(database)
    ro = ReadOnlyInstance.open(home)
    try:
        assert ro.way == "engine"
        assert read_jobs(ro.rows) == []
        with pytest.raises(Exception, match=r"readonly|read-only|query_only"):
            ro.rows("DELETE FROM jobs", {})
    finally:
        ro.close()
    assert digest(database) == before
    assert not (home / "keyong.db-wal").exists() and not (home / "keyong.db-journal").exists()
