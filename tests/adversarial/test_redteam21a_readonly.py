"""Red team of issue 21 (redteam21a), second target: the read-only open of ``keyong job show/list``.

Written from the code alone (``app/instance_read.py``, ``sandbox/job_reads.py``, ``registry/readonly.py``),
before reading tests/test_cli_start.py. A passing test guards a defence that held; an ``xfail(strict=True)``
test is a break that FAILS on the current code. Findings: ``FINDINGS21a.md`` (F3-F5).

A hostile home (its marker, a schema whose revision lies, odd rows) must not make a reading command write,
crash with a traceback (DESIGN.md: exit 1 with a clear message), or skip a refusal ``Instance.open`` makes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app import Instance, Settings
from app.instance_read import InstanceError, ReadOnlyInstance
from sandbox import read_job, read_jobs

pytestmark = pytest.mark.attack

REPO = Path(__file__).resolve().parents[2]

JOB = {
    "id": 1,
    "operator": "acme",
    "licence_id": None,
    "kind": "sql",
    "datasets": '{"d": {"version": 1}}',
    "scenario": "s",
    "code": "select 1",
    "code_sha256": "0" * 64,
    "spec_sha256": "0" * 64,
    "state": "done",
    "verdict": "pass",
    "attempts": 1,
    "max_attempts": 3,
    "worker": "w",
    "claimed_at": "2026-12-07 10:00:00.000000",
    "heartbeat_at": None,
    "started_at": "2026-12-07 10:00:01.000000",
    "finished_at": "2026-12-07 10:00:02.000000",
    "exit_code": 0,
    "reason": None,
    "resources": '{"cpu": 1}',
    "outputs": '[{"name": "a.csv", "bytes": 3, "sha256": "00", "path": "x"}]',
    "created_at": "2026-12-07 09:59:59.000000",
    "cancel_requested": 0,
    "findings": "[]",
    "log_excerpt": "ok",
    "title": "t",
    "purpose": "p",
}


@pytest.fixture(scope="module")
def pristine_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home") / "h"
    instance, _ = Instance.init(Settings().with_home(home))
    instance.close()
    return home


@pytest.fixture
def home(pristine_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("KEYONG_DATABASE"):
            monkeypatch.delenv(name)
    target = tmp_path / "h"
    shutil.copytree(pristine_home, target)
    return target


def add_job(home: Path, **changes: Any) -> None:
    row = {**JOB, **changes}
    raw = sqlite3.connect(home / "keyong.db")
    raw.execute(f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    raw.commit()
    raw.close()


def sql(home: Path, statement: str) -> None:
    raw = sqlite3.connect(home / "keyong.db")
    raw.execute(statement)
    raw.commit()
    raw.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KEYONG_DATABASE")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_the_embedded_read_changes_no_byte_of_the_database(home: Path) -> None:
    add_job(home)
    before = digest(home / "keyong.db")
    ro = ReadOnlyInstance.open(home)
    try:
        assert ro.way == "embedded"
        assert read_job(ro.rows, 1).as_json()["outputs"][0]["name"] == "a.csv"
        assert [v.id for v in read_jobs(ro.rows)] == [1]
    finally:
        ro.close()
    assert digest(home / "keyong.db") == before


def test_the_read_connection_cannot_be_talked_into_writing(home: Path) -> None:
    """query_only can be switched off by SQL, mode=ro cannot: the rows function must stay read-only."""
    add_job(home)
    ro = ReadOnlyInstance.open(home)
    try:
        with pytest.raises((sqlite3.Error, TypeError)):
            ro.rows("PRAGMA query_only=OFF", {})
        with pytest.raises(sqlite3.Error):
            ro.rows("UPDATE jobs SET verdict='block' WHERE id=1 RETURNING id", {})
    finally:
        ro.close()
    raw = sqlite3.connect(home / "keyong.db")
    assert raw.execute("SELECT verdict FROM jobs WHERE id=1").fetchone() == ("pass",)
    raw.close()


def test_the_engine_way_on_sqlite_does_not_write(home: Path) -> None:
    raw = sqlite3.connect(home / "keyong.db")
    raw.execute("PRAGMA journal_mode=DELETE")
    raw.close()
    marker = json.loads((home / "keyong.json").read_text())
    marker["database_url"] = f"sqlite:///{home / 'keyong.db'}"  # as an init with KEYONG_DATABASE_URL records it
    (home / "keyong.json").write_text(json.dumps(marker))
    before = digest(home / "keyong.db")
    ro = ReadOnlyInstance.open(home)
    try:
        assert ro.way == "engine"
        assert read_jobs(ro.rows) == []
    finally:
        ro.close()
    assert digest(home / "keyong.db") == before


def test_a_schema_from_a_newer_keyong_is_refused_not_read(home: Path) -> None:
    raw = sqlite3.connect(home / "keyong.db")
    raw.execute("UPDATE alembic_version SET version_num='9999_future'")
    raw.commit()
    raw.close()
    before = digest(home / "keyong.db")
    with pytest.raises(InstanceError, match="does not know"):
        ReadOnlyInstance.open(home)
    assert digest(home / "keyong.db") == before


@pytest.mark.parametrize(
    ("marker", "message"),
    [("{not json", "corrupt"), ('{"format": 2}', "unsupported format"), ("[1]", "unsupported format")],
)
def test_a_bad_marker_is_refused_as_the_writer_refuses_it(home: Path, marker: str, message: str) -> None:
    (home / "keyong.json").write_text(marker)
    with pytest.raises(InstanceError, match=message):
        ReadOnlyInstance.open(home)


def test_tls_settings_with_the_embedded_database_are_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYONG_DATABASE_SSLMODE", "require")
    with pytest.raises(InstanceError, match="PostgreSQL only"):
        ReadOnlyInstance.open(home)


def test_a_missing_job_is_a_clear_refusal(home: Path) -> None:
    done = cli(home, "job", "show", "7")
    assert done.returncode == 1 and "no job 7" in done.stderr and "Traceback" not in done.stderr


def _marker_a_directory(home: Path) -> None:
    (home / "keyong.json").unlink()
    (home / "keyong.json").mkdir()


def _reason_not_utf8(home: Path) -> None:
    add_job(home)
    sql(home, "UPDATE jobs SET reason=CAST(X'61FF' AS TEXT)")


def _not_a_database(home: Path) -> None:
    (home / "keyong.db").write_bytes(b"garbage" * 100)


HOSTILE: dict[str, Callable[[Path], None]] = {
    "outputs_not_json": lambda h: add_job(h, outputs="not json"),
    "outputs_an_object": lambda h: add_job(h, outputs='{"a": 1}'),
    "created_at_garbage": lambda h: add_job(h, created_at="garbage"),
    "created_at_integer": lambda h: add_job(h, created_at=12345),
    "title_a_blob": lambda h: add_job(h, title=b"\x00\xff"),
    "deeply_nested_findings": lambda h: add_job(h, findings="[" * 100_000 + "]" * 100_000),
    "reason_not_utf8": _reason_not_utf8,
    "database_not_sqlite": _not_a_database,
    "marker_a_directory": _marker_a_directory,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("command", [("job", "show", "1", "--json"), ("job", "list", "--json")])
def test_a_hostile_home_gets_a_clear_error_not_a_traceback(home: Path, name: str, command: tuple[str, ...]) -> None:
    HOSTILE[name](home)
    done = cli(home, *command)
    assert "Traceback" not in done.stderr, done.stderr[-300:]
    assert done.returncode in (0, 1, 2)


def test_json_output_stays_json_whatever_the_row_holds(home: Path) -> None:
    add_job(home, findings='[{"rule": "x", "detail": NaN}]')
    done = cli(home, "job", "show", "1", "--json")
    assert done.returncode == 0

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    json.loads(done.stdout, parse_constant=refuse)
