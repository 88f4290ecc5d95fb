"""Verification behind a lock another PostgreSQL session holds (a DBA's ``LOCK TABLE ... IN ACCESS EXCLUSIVE
MODE``): ``GET /ledger/verify`` and the regulator's console page waited as long as the lock was held, a
request (and a server worker) hung without limit. Now they wait ``ledger_verify_lock_timeout_seconds`` and
answer 503 with Retry-After, saying why (ledger23; the CLI's own bound is redteam22 T7).

Against the real PostgreSQL at 127.0.0.1:5432 (``pg_url`` skips, saying so, when it is not there)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from app import Instance, Settings, create_app
from tests.console_support import console_client
from tests.totp_support import token_body

WAIT_SECONDS = 0.3
HUNG_SECONDS = 120  # far past the wait: a request still going then waits on the lock without a bound


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    """PostgreSQL only, and a short wait (the default is 10 s)."""
    return Settings(home=tmp_path / "home", database_url=pg_url, ledger_verify_lock_timeout_seconds=WAIT_SECONDS)


@contextmanager
def _locked(url: str, table: str) -> Iterator[None]:
    """A second session holding ``table`` in ACCESS EXCLUSIVE mode for the block (as a DBA's maintenance)."""
    locker = create_engine(url)
    try:
        with locker.begin() as connection:
            connection.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        locker.dispose()


def _get_behind_lock(client: TestClient, url: str, table: str, path: str, **kwargs: Any) -> Any:
    """``client.get(path)`` while ``table`` is locked; fails (after releasing the lock) if it did not answer."""
    answers: list[Any] = []  # the test client's responses
    with _locked(url, table):
        request = threading.Thread(target=lambda: answers.append(client.get(path, **kwargs)), daemon=True)
        request.start()
        request.join(HUNG_SECONDS)
    request.join()  # the lock is gone: a hung request ends now
    assert answers, f"GET {path} failed"
    assert not request.is_alive()
    return answers[0]


@pytest.mark.parametrize("table", ["ledger_entries", "ledger_nodes", "ledger_checkpoints"])
def test_api_verify_behind_a_lock_answers_503_with_retry_after(
    initialised: tuple[Instance, dict[str, str]], table: str
) -> None:
    instance, tokens = initialised
    assert instance.settings.database_url is not None
    client = TestClient(create_app(instance=instance))
    token = client.post("/auth/token", json=token_body(tokens["regulator"], client)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    busy = _get_behind_lock(client, instance.settings.database_url, table, "/ledger/verify", headers=headers)
    assert busy.status_code == 503, busy.text
    assert busy.headers["Retry-After"] == "60"
    assert busy.json()["kind"] == "ledger_busy"
    assert "locked by another database session" in busy.json()["detail"]
    after = client.get("/ledger/verify", headers=headers)  # the lock released: verified as ever
    assert after.status_code == 200 and after.json()["ok"] is True, after.text


def test_console_ledger_page_behind_a_lock_says_so(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    assert instance.settings.database_url is not None
    client = console_client(instance, tokens["regulator"])
    page = _get_behind_lock(client, instance.settings.database_url, "ledger_entries", "/console/regulator")
    assert page.status_code == 503 and page.headers["Retry-After"] == "60"
    assert 'id="verify-busy"' in page.text and "locked by another database session" in page.text
    after = client.get("/console/regulator")
    assert after.status_code == 200 and 'data-ok="true"' in after.text
