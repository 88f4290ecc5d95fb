"""fix22 item 3: every open of the database refuses a FIFO (or any non-regular file) in its place.

The read commands refused it already (red team 21d F6); the writing commands went through
``app.database.make_engine``, whose SQLite opened the FIFO: waiting forever for a writer wherever SQLite falls
back to a read-only open (a user who may not write the FIFO), else failing with a bare "disk I/O error". Now
``app.instance_read.not_a_regular_file`` is the one rule, applied at every new connection of every engine:
the commands exit 1 naming the file, the API answers 503. Each command runs under a timeout: a hang fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from app import Instance, Settings, create_app
from app.database import make_engine
from tests.conftest import bearer

USCC = "91230500MA0000002G"  # a valid 统一社会信用代码 (GB 32100)


@pytest.fixture
def fifo_home(tmp_path: Path) -> Path:
    """An initialised embedded home whose keyong.db was replaced by a FIFO."""
    instance, _ = Instance.init(Settings(home=tmp_path / "home"))
    instance.close()
    home = tmp_path / "home"
    for leftover in home.glob("keyong.db*"):
        leftover.unlink()
    os.mkfifo(home / "keyong.db", 0o444)
    return home


@pytest.mark.parametrize(
    "args",
    [
        ("operator", "add", "fifo-op", "--uscc", USCC),
        ("principal", "add", "fifo-person", "--role", "regulator"),
        ("dataset", "ingest", "{csv}", "--name", "fifo_ds", "--provider", "P", "--provider-code", USCC),
        ("freeze", "--reason", "drill"),
        ("job", "run-pending"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_writing_commands_refuse_a_fifo_database(fifo_home: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b\n1,2\n", encoding="utf-8")
    command = [sys.executable, "-m", "app.cli", *(a.format(csv=csv) for a in args), "--home", str(fifo_home)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`keyong {' '.join(args[:2])}` hung on a FIFO database")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert f"the database {fifo_home / 'keyong.db'} is not a regular file: refused" in done.stderr, done.stderr


def test_an_engine_never_opens_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "named.db"
    os.mkfifo(fifo, 0o444)
    engine = make_engine(f"sqlite:///{fifo}")
    with pytest.raises(OperationalError, match="is not a regular file: refused"):
        engine.connect()
    engine.dispose()


def test_the_api_over_a_database_turned_fifo_is_503(tmp_path: Path) -> None:
    instance, result = Instance.init(Settings(home=tmp_path / "home"))
    try:
        client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
        headers = bearer(client, result.tokens["agency"])
        instance.engine.dispose()
        database = instance.home / "keyong.db"
        database.rename(tmp_path / "kept.db")
        os.mkfifo(database, 0o444)
        response = client.get("/operators", headers=headers)
        assert response.status_code == 503, response.text
        assert response.json()["kind"] == "database_unavailable"
    finally:
        instance.close()
