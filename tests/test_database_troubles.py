"""Each way a database fails the server has its own words (ledger23): a read-only database (a failover left the
server on a standby), a damaged file and one locked past the wait were all "cannot connect to the database"
in the log and a command's error, and "the server cannot reach it" to an API client, which sent the operator
to the network. The errors here are the drivers' own, raised by real databases (SQLite files, the PostgreSQL
at 127.0.0.1:5432), and answered by the API's handler and the CLI's ``refusing`` as in production."""

from __future__ import annotations

import logging
import socket
import sqlite3
from pathlib import Path

import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.api.unavailable import TROUBLE_DETAILS, install_unavailable_handler
from app.cli.conventions import refusing
from app.instance_read import database_trouble, unreachable


def _raised(url: str, statement: str) -> DBAPIError:
    """What SQLAlchemy raises running ``statement`` on ``url``."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{statement} on {url} did not fail")


def _read_only_sqlite(tmp_path: Path) -> tuple[str, DBAPIError]:
    path = tmp_path / "ro.db"
    with sqlite3.connect(path) as made:
        made.execute("CREATE TABLE t (x INTEGER)")
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    return url, _raised(url, "INSERT INTO t VALUES (1)")


def _damaged_sqlite(tmp_path: Path) -> tuple[str, DBAPIError]:
    path = tmp_path / "damaged.db"
    path.write_bytes(bytes(range(256)) * 64)  # what a bad copy over the file leaves
    url = f"sqlite:///{path}"
    return url, _raised(url, "SELECT * FROM sqlite_master")


def _locked_sqlite(tmp_path: Path) -> tuple[str, DBAPIError]:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        url = f"sqlite:///{path}?timeout=0"
        return url, _raised(url, "SELECT * FROM t")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _refused_postgresql(tmp_path: Path) -> tuple[str, DBAPIError]:
    with socket.socket() as probe:  # a loopback port nothing listens on: PostgreSQL stopped
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://keyong:s3cret@127.0.0.1:{port}/keyong"
    return url, _raised(url, "SELECT 1")


CASES = {
    "read_only": (_read_only_sqlite, "refuses writes", "attempt to write a readonly database"),
    "damaged": (_damaged_sqlite, "is damaged or is not a database", "file is not a database"),
    "locked": (_locked_sqlite, "stayed locked by another session", "database is locked"),
    "unreachable": (_refused_postgresql, "cannot connect to the database", "refused"),
}


@pytest.mark.parametrize("trouble", sorted(CASES))
def test_each_trouble_has_its_own_words_in_the_log_and_the_cli(
    trouble: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, words, driver = CASES[trouble]
    url, exc = make(tmp_path)
    assert database_trouble(exc) == trouble
    said = unreachable(url, exc)
    assert said.startswith(("cannot connect", "the database")) and words in said and driver in said, said
    assert "s3cret" not in said and "INSERT" not in said  # no password, no SQL
    others = [w for t, (_, w, _) in CASES.items() if t != trouble]
    assert not any(other in said for other in others), said

    @refusing
    def command() -> None:
        raise exc

    with pytest.raises(typer.Exit):
        command()
    stderr = " ".join(capsys.readouterr().err.split())
    assert words in stderr and "rolled back" in stderr, stderr
    assert stderr.endswith("; retry") == (trouble in ("locked", "unreachable")), stderr


@pytest.mark.parametrize("trouble", sorted(CASES))
def test_each_trouble_has_its_own_words_over_the_api(
    trouble: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make, words, _ = CASES[trouble]
    url, exc = make(tmp_path)
    app = FastAPI()

    @app.get("/fails")
    def fails() -> None:
        raise exc

    install_unavailable_handler(app, url)
    with caplog.at_level(logging.ERROR, logger="keyong"):
        response = TestClient(app, raise_server_exceptions=False).get("/fails")
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.json() == {"detail": TROUBLE_DETAILS[trouble], "kind": "database_unavailable"}
    assert len(set(TROUBLE_DETAILS.values())) == len(TROUBLE_DETAILS)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert words in logged and "503 on GET /fails" in logged, logged


def test_a_read_only_postgresql_is_read_only(pg_url: str) -> None:
    """A PostgreSQL that refuses writes (``default_transaction_read_only``, as a hot standby does): SQLSTATE
    25006 through psycopg's ``InternalError``."""
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    options = make_url(pg_url).query["options"]
    read_only = make_url(pg_url).update_query_dict({"options": f"{options} -cdefault_transaction_read_only=on"})
    exc = _raised(read_only.render_as_string(hide_password=False), "INSERT INTO t VALUES (1)")
    assert database_trouble(exc) == "read_only"
    said = unreachable(pg_url, exc)
    assert said.startswith("the database") and "refuses writes" in said and "read-only transaction" in said, said
