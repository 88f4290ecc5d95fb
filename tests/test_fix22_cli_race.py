"""fix22 item 2: a ``keyong`` create that loses a PostgreSQL race says what exists, not an ``IntegrityError``.

The race is forced for real: the test's own transaction inserts the same operator (or principal) and holds
it uncommitted, so the command's "does it exist?" check sees nothing and its insert waits on the unique
index; once the command is seen waiting (``pg_stat_activity``), the test commits and the command's insert
meets the taken key (SQLSTATE 23505), as the loser of two concurrent creates does. (A dataset's winner copies
the catalog row of a dataset ingested first under the contested name.) The command must exit 1
with one line naming what exists, no traceback and no SQL; it changed nothing (the one row is the winner's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    "dataset": (
        "INSERT INTO resources ({columns}) SELECT {values} FROM resources WHERE name = 'seed_ds'",
        ("dataset", "ingest", "{csv}", "--name", "race_ds", "--provider", "P", "--provider-code", USCC),
        "resources.name",
        "SELECT count(*) FROM resources WHERE name = 'race_ds'",
    ),
}


@pytest.fixture
def home(tmp_path: Path, pg_url: str) -> Iterator[Path]:
    instance, _ = Instance.init(Settings(home=tmp_path / "home", database_url=pg_url))
    instance.close()
    yield tmp_path / "home"


def _keyong(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args, "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
    )


def _winner_sql(connection: Any, home: Path, insert: str, csv: Path) -> str:
    """The winner's insert; a dataset's copies an ingested seed's catalog row under the contested name."""
    if "{columns}" not in insert:
        return insert
    seeded = _keyong(
        home, "dataset", "ingest", str(csv), "--name", "seed_ds", "--provider", "P", "--provider-code", USCC
    )
    assert seeded.wait(timeout=120) == 0, seeded.communicate()
    names = connection.execute(
        text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'resources' "
            "AND table_schema = current_schema() AND column_name <> 'id' ORDER BY ordinal_position"
        )
    ).scalars()
    columns = [f'"{name}"' for name in names]
    values = ["'race_ds'" if column == '"name"' else column for column in columns]
    return insert.format(columns=", ".join(columns), values=", ".join(values))


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
def test_a_create_that_loses_the_race_says_it_exists(home: Path, tmp_path: Path, pg_url: str, what: str) -> None:
    insert, args, key, count = WINNERS[what]
    csv = tmp_path / "rows.csv"
    csv.write_text("区县,n\n尖山区,5\n", encoding="utf-8")
    engine = create_engine(pg_url)
    watcher = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as winner, watcher.connect() as watch:
            winner.execute(text(_winner_sql(watch, home, insert, csv)), {"uscc": USCC})  # held, uncommitted
            command = _keyong(home, *(a.format(csv=csv) for a in args))
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
