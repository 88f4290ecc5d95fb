"""fix22 item 2: a ``keyong`` create that loses a PostgreSQL race says what exists, not an ``IntegrityError``.

The race is forced for real: the test's own transaction inserts the same operator (or principal) and holds
it uncommitted, so the command's "does it exist?" check sees nothing and its insert waits on the unique
index; once the command is seen waiting (``pg_stat_activity``), the test commits and the command's insert
meets the taken key (SQLSTATE 23505), as the loser of two concurrent creates does. The command must exit 1
with one line naming what exists, no traceback and no SQL; it changed nothing (the one row is the winner's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app import Instance, Settings

USCC = "91230500MA0000002G"  # a valid 统一社会信用代码 (GB 32100)
WINNERS = {
    "operator": (
        "INSERT INTO operator_orgs (name, uscc, qualification, suspended_reason, created_at) "
        "VALUES ('race-op', :uscc, 'qualified', '', now())",
        ("operator", "add", "race-op", "--uscc", USCC),
        "operator_orgs.name",
        "SELECT count(*) FROM operator_orgs WHERE name = 'race-op'",
    ),
    "principal": (
        "INSERT INTO principals (name, role, created_at, active, credential_epoch) "
        "VALUES ('race-person', 'regulator', now(), true, 0)",
        ("principal", "add", "race-person", "--role", "regulator"),
        "principals.name",
        "SELECT count(*) FROM principals WHERE name = 'race-person'",
    ),
}


@pytest.fixture
def home(tmp_path: Path, pg_url: str) -> Iterator[Path]:
    instance, _ = Instance.init(Settings(home=tmp_path / "home", database_url=pg_url))
    instance.close()
    yield tmp_path / "home"


def _waiting_on_a_lock(connection: object, deadline: float) -> None:
    """Until another backend waits on a lock (the command's insert behind the held row), or fail at ``deadline``."""
    while time.monotonic() < deadline:
        waiting = connection.execute(  # type: ignore[attr-defined]
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() "
                "AND datname = current_database()"
            )
        ).scalar_one()
        if waiting:
            return
        time.sleep(0.1)
    raise AssertionError("the command never reached its insert")


@pytest.mark.parametrize("what", sorted(WINNERS))
def test_a_create_that_loses_the_race_says_it_exists(home: Path, pg_url: str, what: str) -> None:
    insert, args, key, count = WINNERS[what]
    engine = create_engine(pg_url)
    watcher = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as winner, watcher.connect() as watch:
            winner.execute(text(insert), {"uscc": USCC})  # held, uncommitted: the other process's create
            command = subprocess.Popen(
                [sys.executable, "-m", "app.cli", *args, "--home", str(home)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "COLUMNS": "400"},
            )
            try:
                _waiting_on_a_lock(watch, time.monotonic() + 60)
            except AssertionError:
                command.kill()
                raise
            winner.commit()  # the other process wins: the command's insert now meets the taken key
            out, err = command.communicate(timeout=60)
            assert command.returncode == 1, (out, err)
            assert "Traceback" not in err and "IntegrityError" not in err, err
            assert "INSERT" not in err and "23505" not in err, err
            assert "already exists" in err and key in err, err
            assert len(err.strip().splitlines()) == 1, err
            assert watch.execute(text(count)).scalar_one() == 1
    finally:
        engine.dispose()
        watcher.dispose()
