"""Red team 23b: the ledger head's per-process cache (``ledger/head.py``) and the bounded waits of verification
(``GET /ledger/verify``, the regulator's console page), attacked from the product code of branch ledger23 alone
(the builders' tests unread).

Each test here is a finding: it fails on ledger23 and passes once the defect is fixed. What held is in the
report, not here (no test that cannot fail).

The rules under attack: a verification behind another database session's lock answers within
``ledger_verify_lock_timeout_seconds`` (503 + Retry-After, or the console's busy page), never hangs a request
and a server worker for as long as the lock is held; a database that fails the verification is a 503 named by
``app.instance_read.database_trouble``, never a 500 (BRIEF_COMMON: "A service answers bad requests with a 4xx,
never a 500").
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import Instance, Settings
from app.api.factory import create_app
from tests.conftest import PG_ADMIN_URL, bearer

pytestmark = pytest.mark.attack

#: The verification's own bound in these tests; a request still waiting many times longer has no bound.
WAIT_SECONDS = 0.5
#: How long a test waits for an answer before calling the request hung (40 times the bound).
HUNG_AFTER_SECONDS = 20.0


def _answer_while(client: TestClient, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """GET ``path`` in a thread; ``answered``: whether it answered within :data:`HUNG_AFTER_SECONDS`."""
    out: dict[str, Any] = {}

    def go() -> None:
        out["status"] = client.get(path, headers=headers).status_code

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    thread.join(HUNG_AFTER_SECONDS)
    out["answered"] = "status" in out  # while the lock is still held: the caller releases it after
    out["thread"] = thread
    return out


# --- F1. the bound covers the ledger's tables only: a lock on the identity tables hangs GET /ledger/verify ---


def _assert_503_behind_a_lock(locker: Any, table: str, client: TestClient, path: str, headers: dict[str, str]) -> None:
    """``path`` asked while another session holds ``LOCK TABLE table IN ACCESS EXCLUSIVE MODE``: the answer must
    come, while the lock is still held, and be a 503 (the lock is released afterwards so the asking thread ends)."""
    connection = locker.connect()
    transaction = connection.begin()
    try:
        connection.exec_driver_sql(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        out = _answer_while(client, path, headers)
    finally:
        transaction.rollback()
        connection.close()
    out["thread"].join(60)
    assert out["answered"], (
        f"{path} still waited after {HUNG_AFTER_SECONDS} s behind a lock on {table} "
        f"(the verification's bound is {WAIT_SECONDS} s)"
    )
    assert out["status"] == 503, out


@pytest.mark.slow
@pytest.mark.parametrize("table", ["principals", "api_keys", "revoked_tokens", "principal_recovery_holds"])
def test_verify_answers_behind_a_lock_on_the_tables_its_request_reads(pg_url: str, tmp_path: Path, table: str) -> None:
    """A DBA's ``LOCK TABLE principals IN ACCESS EXCLUSIVE MODE`` (a ``VACUUM FULL``, an ``ALTER TABLE``): the
    regulator's ``GET /ledger/verify`` waited as long as it was held, although ``ledger_verify_lock_timeout_seconds``
    is 0.5 s. The request reads these tables (the token's principal, key, revocation, recovery hold) before the
    verification, on the application's engine, which has no ``lock_timeout``: the bound ledger23 added covers
    only the verifier's reads of the ledger's own tables, and the request and its server worker still hang
    (``app/api/ledger.py`` promised "no request or server worker hangs as long as the lock is held")."""
    settings = Settings(home=tmp_path / "home", database_url=pg_url, ledger_verify_lock_timeout_seconds=WAIT_SECONDS)
    instance, result = Instance.init(settings)
    instance.close()
    locker = create_engine(pg_url)
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            headers = bearer(client, result.tokens["regulator"])
            assert client.get("/ledger/verify", headers=headers).status_code == 200
            _assert_503_behind_a_lock(locker, table, client, "/ledger/verify", headers)
    finally:
        locker.dispose()


# --- F2. the fast reader's driver errors are not SQLAlchemy's: a database refusing connections is a 500 -------


@pytest.fixture
def limited_role(pg_database: str) -> Iterator[tuple[str, str]]:
    """A login role allowed 12 connections, owning a fresh schema of the run's database: ``(role, url)``."""
    role = f"rt23b_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    database = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 12'))
    with database.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{role}" AUTHORIZATION "{role}"'))
    url = make_url(pg_database).set(username=role).update_query_dict({"options": f"-csearch_path={role}"})
    try:
        yield role, url.render_as_string(hide_password=False)
    finally:
        with database.connect() as connection:
            connection.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"))
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{role}" CASCADE'))
        with admin.connect() as connection:
            connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        database.dispose()
        admin.dispose()


@pytest.mark.slow
def test_verify_when_the_database_takes_no_more_connections_is_503_not_500(
    limited_role: tuple[str, str], tmp_path: Path
) -> None:
    """The database refuses new connections (``too many connections``, SQLSTATE 53300: max_connections or the
    role's limit reached under load). Every request served from the application's pool answers; one that needs
    a new connection through SQLAlchemy is a 503 (``app/api/unavailable.py``). ``GET /ledger/verify`` was a 500:
    on PostgreSQL the fast verifier reads through ADBC (``ledger/fastread.py``), whose errors are neither
    SQLAlchemy's nor a lock wait (``gave_up_waiting``), so no handler answers them. The same holds for any
    other failure of the fast reader's connections (a backend terminated, a failover mid-read)."""
    import psycopg

    _role, url = limited_role
    settings = Settings(home=tmp_path / "home", database_url=url, ledger_verify_lock_timeout_seconds=WAIT_SECONDS)
    instance, result = Instance.init(settings)
    instance.close()
    libpq = make_url(url).set(drivername="postgresql").difference_update_query(["options"])
    held: list[Any] = []
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            headers = bearer(client, result.tokens["regulator"])
            assert client.get("/ledger/verify", headers=headers).status_code == 200
            while len(held) < 64:  # another application of the same role takes every connection left
                try:
                    held.append(psycopg.connect(libpq.render_as_string(hide_password=False)))
                except psycopg.OperationalError as exc:
                    assert "too many connections" in str(exc), exc
                    break
            response = client.get("/ledger/verify", headers=headers)
            assert response.status_code == 503, (response.status_code, response.text[:300])
            assert response.headers.get("Retry-After"), response.headers
    finally:
        for connection in held:
            connection.close()


# --- F3. the regulator's console page: the same, and more tables (the freeze banner, the workers' state) --------


def _console(settings: Settings, api_key: str) -> tuple[Instance, TestClient]:
    from tests.console_support import console_client

    instance = Instance.open(settings)
    return instance, console_client(instance, api_key)


@pytest.mark.slow
@pytest.mark.parametrize("table", ["principals", "platform_freeze", "workers"])
def test_console_ledger_page_answers_behind_a_lock_on_the_tables_it_reads(
    pg_url: str, tmp_path: Path, table: str
) -> None:
    """``/console/regulator`` behind a DBA's ``LOCK TABLE ... ACCESS EXCLUSIVE`` on a table the page reads besides
    the ledger's: the session's principal, the freeze banner (``platform_freeze``), the workers' state. The page
    waited as long as the lock was held; only a lock on the three ledger tables gets the busy page (ledger23:
    "say so now, not a page that never comes")."""
    settings = Settings(home=tmp_path / "home", database_url=pg_url, ledger_verify_lock_timeout_seconds=WAIT_SECONDS)
    instance, result = Instance.init(settings)
    instance.close()
    opened, client = _console(settings, result.tokens["regulator"])
    locker = create_engine(pg_url)
    try:
        with client:
            assert client.get("/console/regulator").status_code == 200
            _assert_503_behind_a_lock(locker, table, client, "/console/regulator", {})
    finally:
        locker.dispose()
        opened.close()


@pytest.mark.slow
def test_console_ledger_page_answers_when_the_lock_comes_after_the_verification(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DBA's lock on ``ledger_entries`` arrives just after the page's verification finished (it is taken here
    at that moment, through the page's own call of ``instance_verified``): the page then reads the latest
    checkpoint, the newest entries and the per-day chart on the application's engine, with no ``lock_timeout``,
    and waits as long as the lock is held. The bound covers ``ledger.verify`` only, not the page that follows it
    on the very same tables."""
    import app.console.regulator_pages as pages

    settings = Settings(home=tmp_path / "home", database_url=pg_url, ledger_verify_lock_timeout_seconds=WAIT_SECONDS)
    instance, result = Instance.init(settings)
    instance.close()
    opened, client = _console(settings, result.tokens["regulator"])
    locker = create_engine(pg_url)
    connection = locker.connect()
    transaction = connection.begin()
    verified = pages.instance_verified  # type: ignore[attr-defined]

    def then_locked(report: Any) -> Any:
        connection.exec_driver_sql("LOCK TABLE ledger_entries, ledger_checkpoints IN ACCESS EXCLUSIVE MODE")
        return verified(report)

    try:
        with client:
            assert client.get("/console/regulator").status_code == 200
            monkeypatch.setattr(pages, "instance_verified", then_locked)
            try:
                out = _answer_while(client, "/console/regulator", {})
            finally:
                transaction.rollback()
                connection.close()
            out["thread"].join(60)
            assert out["answered"], (
                f"/console/regulator still waited after {HUNG_AFTER_SECONDS} s on a lock taken after its verification "
                f"(the verification's bound is {WAIT_SECONDS} s)"
            )
    finally:
        locker.dispose()
        opened.close()


# --- F4. the writer forgets the head it holds open when the file stops reading: a cut made meanwhile is erased ---


def _writer(tmp_path: Path) -> tuple[Any, Any, Path]:
    """A ledger writer on a fresh SQLite database, remembering its head in ``tmp_path/secrets``; 5 entries."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger import Ledger
    from ledger.storage import metadata

    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    metadata.create_all(engine)
    head = tmp_path / "secrets" / "ledger_head.json"
    ledger = Ledger(engine, Ed25519PrivateKey.generate(), origin="rt23b", head_file=head, checkpoint_every=10**6)
    for n in range(5):
        ledger.append(actor="tester", role="host", action="test.appended", subject=f"honest-{n}")
    return ledger, engine, head


def _cut_tail(engine: Any, count: int) -> None:
    """A DBA deletes the newest ``count`` entries with the nodes over them (the append-only triggers dropped)."""
    with engine.begin() as connection:
        for table in ("ledger_entries", "ledger_checkpoints", "ledger_nodes"):
            for op in ("update", "delete"):
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
        size = connection.exec_driver_sql("SELECT max(seq) FROM ledger_entries").scalar_one()
        keep = size - count
        connection.exec_driver_sql(f"DELETE FROM ledger_entries WHERE seq > {keep}")
        connection.exec_driver_sql(f"DELETE FROM ledger_checkpoints WHERE tree_size > {keep}")
        connection.exec_driver_sql(f"DELETE FROM ledger_nodes WHERE (idx + 1) * (1 << level) > {keep}")


@pytest.mark.parametrize("made", ["removed", "symlink", "fifo"])
def test_a_head_file_that_stops_reading_does_not_let_the_next_append_erase_a_cut(tmp_path: Path, made: str) -> None:
    """The writer keeps the head it last wrote, with the file still open (ledger23's cache). Someone who can write
    the home's ``secrets`` removes the head file, or puts a symlink (to a copy with the very same bytes) or a FIFO
    in its place, while a DBA cuts the ledger's tail. The next append reads the path, cannot use it, and treats
    that as no evidence (``cut_before_append`` returns on ``LedgerError`` or no file): no cut is noted, and
    ``remember_head`` then replaces whatever is there with the head of the cut log. Every verification after
    says ok, without even a warning, although this very process held the longer head, open, in its cache:
    the defence fails open for a file it cannot read, where its own last head was still evidence."""
    ledger, engine, head = _writer(tmp_path)
    try:
        if made == "removed":
            head.unlink()
        elif made == "symlink":
            copy = head.with_name("elsewhere.json")
            copy.write_bytes(head.read_bytes())
            head.unlink()
            head.symlink_to(copy)
        else:
            head.unlink()
            os.mkfifo(head)
        _cut_tail(engine, 2)
        ledger.append(actor="tester", role="host", action="test.appended", subject="after-the-cut")
        report = ledger.verify(reference=True)
        assert not report.ok, f"verify said ok after a cut of 2 entries (head file {made}); warnings {report.warnings}"
        assert {"truncated", "rolled_back"} & {p.kind for p in report.problems}, report.problems
    finally:
        engine.dispose()


# --- F5. the fast reader's new connections have no connect timeout: a database that stops answering hangs verify ---


class _Proxy:
    """A TCP proxy to the test PostgreSQL; once ``blackhole`` is set it accepts new connections and never answers
    them (a partition, a pooler or failover address that hangs), while the connections it already carries go on."""

    def __init__(self, target: tuple[str, int]) -> None:
        import socket

        self.target = target
        self.blackhole = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[Any] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(client)
            if self.blackhole:
                continue
            upstream = socket.create_connection(self.target)
            self.held.append(upstream)
            for one, other in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(one, other), daemon=True).start()

    @staticmethod
    def _pump(source: Any, sink: Any) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.close()

    def close(self) -> None:
        self.listener.close()
        for end in self.held:
            with suppress(OSError):
                end.close()


@pytest.mark.slow
def test_verify_answers_when_new_connections_to_the_database_hang(pg_url: str, tmp_path: Path) -> None:
    """The database's address stops answering new connections (a partition, a pooler or a failover address that
    hangs) while the application's pooled connections still work. The fast verifier opens new connections of its
    own through ADBC (``ledger/fastread.py``), with no ``connect_timeout``: ``GET /ledger/verify`` waited with no
    bound (libpq waits for the server's answer as long as TCP lets it), holding the request and a server worker,
    though ``ledger_verify_lock_timeout_seconds`` is 0.5 s."""
    parsed = make_url(pg_url)
    proxy = _Proxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    url = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = Settings(home=tmp_path / "home", database_url=url, ledger_verify_lock_timeout_seconds=WAIT_SECONDS)
    try:
        instance, result = Instance.init(settings)
        instance.close()
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            headers = bearer(client, result.tokens["regulator"])
            assert client.get("/ledger/verify", headers=headers).status_code == 200
            proxy.blackhole = True
            out = _answer_while(client, "/ledger/verify", headers)
            answered = out["answered"]
            proxy.close()  # the hung connections fail now: the request ends
            out["thread"].join(60)
            assert answered, f"GET /ledger/verify still waited after {HUNG_AFTER_SECONDS} s on a database that hangs"
            assert out["status"] == 503, out
    finally:
        proxy.close()
