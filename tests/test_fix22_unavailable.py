"""fix22 item 1: a database the server cannot reach is answered 503 with ``Retry-After``, never a 500.

The API is opened over a working database, signed in, then the database goes away under it: PostgreSQL's
connections are sent to a port nothing listens on (connection refused, as a stopped server), SQLite's file
is replaced by something SQLite cannot open. Every request that needs the database is then a 503 with a JSON
error, logged with the database's URL masked (its password never appears), and ``/healthz`` still says 503.
"""

from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app import Instance, Settings, create_app
from tests.conftest import bearer

SECRET = "s3cret-pw-fix22"


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _assert_unavailable(client: TestClient, headers: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    for method, path, body in (
        ("GET", "/operators", None),
        ("POST", "/operators", {"name": "late-op", "uscc": "91230500MA0000002G"}),
        ("GET", "/jobs", None),
    ):
        with caplog.at_level(logging.ERROR, logger="keyong"):
            response = client.request(method, path, headers=headers, json=body)
        assert response.status_code == 503, (path, response.status_code, response.text)
        assert response.json()["kind"] == "database_unavailable"
        assert int(response.headers["Retry-After"]) > 0
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "503 on GET /operators" in logged
    assert SECRET not in logged and SECRET not in response.text
    assert client.get("/healthz").status_code == 503


def test_postgresql_refusing_connections_is_503(tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = make_url(pg_url).set(password=SECRET).render_as_string(hide_password=False)  # trust: ignored
    instance, result = Instance.init(Settings(home=tmp_path / "home", database_url=url))
    try:
        client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
        headers = bearer(client, result.tokens["agency"])
        port = _dead_port()

        @event.listens_for(instance.engine, "do_connect")
        def _refused(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
            cparams["port"] = port  # the server "stopped": every new connection is refused

        instance.engine.dispose()
        _assert_unavailable(client, headers, caplog)
        assert "***" in "\n".join(record.getMessage() for record in caplog.records)  # the URL, masked
    finally:
        event.remove(instance.engine, "do_connect", _refused)
        instance.close()


def test_sqlite_file_that_cannot_be_opened_is_503(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    instance, result = Instance.init(Settings(home=tmp_path / "home"))
    try:
        client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
        headers = bearer(client, result.tokens["agency"])
        instance.engine.dispose()
        database = instance.home / "keyong.db"
        shutil.move(database, tmp_path / "kept.db")
        database.mkdir()  # what SQLite cannot open (root reads any file, so a mode 000 would not do)
        _assert_unavailable(client, headers, caplog)
    finally:
        instance.close()
