"""Red team 21c: bad input to the ``keyong`` command line gets exit 1 and one line on stderr, never a traceback.

DESIGN.md's command-line contract: exit 0 ok, 1 refused or failed with a clear message on stderr, 2 usage error;
with ``--json`` stdout carries one JSON document or nothing. Each case below was a Python traceback: a path
that names a directory or lies under a file (``--to``, ``--file``), a JSON file nested past Python's recursion
limit, an unknown ``--state``. Nothing is written by a refused command: the ledger still verifies.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app import Instance

KEYONG = [sys.executable, "-m", "app.cli"]


@pytest.fixture
def database_url() -> None:
    """SQLite: the failures were in reading the command's own input, before the database."""
    return None


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    plain = tmp_path / "plain.txt"
    plain.write_text("terms\n", encoding="utf-8")
    return {"deep": deep, "folder": folder, "plain": plain}


def keyong(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYONG, *args, "--home", str(home), "--json"], capture_output=True, text=True, timeout=120, check=False
    )


CASES = [
    (("dataset", "publish", "--file", "{deep}"), "nests too deeply"),  # F6
    (("release", "request", "1", "--product", "p", "--justify", "{deep}"), "nests too deeply"),  # F6
    (("policy", "propose", "L3", "{deep}", "--reason", "r"), "nests too deeply"),  # F6
    (("ledger", "export", "--to", "{folder}"), "Is a directory"),  # F5
    (("ledger", "export", "--to", "{plain}/under-a-file.jsonl"), "Not a directory"),  # F5
    (("job", "list", "--state", "finished"), "unknown job state 'finished'"),  # F4
    (("release", "list", "--state", "approve"), "unknown release state 'approve'"),  # F4
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a[:2]) + f" {i}" for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_exit_1_with_a_message_and_nothing_written(
    initialised: tuple[Instance, dict[str, str]], files: dict[str, Path], args: tuple[str, ...], message: str
) -> None:
    instance = initialised[0]
    home = instance.home
    before = instance.ledger.size()
    result = keyong(home, *(a.format(**{k: str(v) for k, v in files.items()}) for a in args))
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert message in result.stderr
    assert result.stdout.strip() == ""  # --json: nothing on stdout when it failed
    assert instance.ledger.size() == before
    verified = keyong(home, "ledger", "verify")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True


def test_an_unknown_state_is_a_usage_error_for_every_reader(initialised: tuple[Instance, dict[str, str]]) -> None:
    """F4 at its owner: the queue, the host's fast reader and the releases name the states they know."""
    from core import Actor, UsageError
    from sandbox.job_reads import read_jobs

    instance = initialised[0]
    with pytest.raises(UsageError, match="queued"):
        instance.jobs.list(state="finished")
    with pytest.raises(UsageError, match="queued"):
        read_jobs(lambda *_: [], state="finished")
    with pytest.raises(UsageError, match="approved"):
        instance.releases.list(viewer=Actor.host(), state="approve")
    assert instance.releases.list(viewer=Actor.host(), state="approved") == []


@pytest.mark.slow
def test_a_database_locked_by_another_process_is_exit_1_not_a_traceback(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """F7: another process holding SQLite's write lock past the busy timeout made every writing command a
    ``sqlalchemy.exc.OperationalError`` traceback; now exit 1 saying so, and nothing of the command lands."""
    import sqlite3

    instance = initialised[0]
    before = instance.ledger.size()
    locker = sqlite3.connect(instance.home / "keyong.db", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        result = keyong(instance.home, "freeze", "--reason", "drill")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "database is locked" in result.stderr
    assert result.stdout.strip() == ""
    assert instance.ledger.size() == before and not instance.registry.freeze.state().frozen
