"""Red team 22: the service's database errors and the remembered ledger head, attacked from the code.

Written from ``app/api/unavailable.py``, ``app/cli/conventions.py``, ``app/database.py``,
``app/instance_read.py`` and ``ledger/fastread.py`` alone (the builders' tests of this session unread).
A passing test guards a defence that held or a defect fixed here; an ``xfail(strict=True)`` one is open.

The rules under attack: a database that dies, locks, turns read-only or is replaced is the server's
problem, a 503 over the API and exit 1 with one line in the CLI, never a 500 or a traceback (with the SQL
and its parameters); and ``ledger verify`` never says ``ok`` of a ledger a hostile DBA changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from app import Instance, Settings
from app.api.factory import create_app
from tests import totp_support

pytestmark = pytest.mark.attack

KEYONG = [sys.executable, "-m", "app.cli"]
USCC = "91350100M000100Y43"


def _cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.upper().startswith("KEYONG_")}
    return subprocess.run(
        [*KEYONG, *args], capture_output=True, text=True, env={**full, **(env or {})}, timeout=timeout
    )


def _with_options(url: str, *settings: str) -> str:
    """``url`` (a test schema's, ``options=-csearch_path=…``) with more ``-c`` settings in its ``options``."""
    parsed = make_url(url)
    options = " ".join([str(parsed.query["options"]), *(f"-c{s}" for s in settings)])
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def _schema(url: str) -> str:
    return str(make_url(url).query["options"]).split()[0].removeprefix("-csearch_path=")


def _admin(url: str) -> Any:
    """An engine on the test database without the schema's options (a DBA's own session)."""
    return create_engine(make_url(url).difference_update_query(["options"]), isolation_level="AUTOCOMMIT")


def _init(tmp_path: Path, database_url: str | None) -> tuple[Settings, dict[str, str]]:
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    instance, result = Instance.init(settings)
    instance.close()
    return settings, result.tokens


# --- 1. ledger verify read another schema than the application writes --------------------------------


@pytest.mark.slow
def test_verify_reads_the_schema_the_application_writes(pg_url: str, tmp_path: Path) -> None:
    """Fixed (F1): with two settings in the URL's ``options`` (``-csearch_path=s -cstatement_timeout=0``), the
    fast verifier handed libpq SQLAlchemy's rendering, a space as ``+``, which libpq keeps: it read the schema
    ``s+-cstatement_timeout=0``. A hostile DBA creates that schema with an untouched copy of the ledger, edits
    the real one (the application's), and ``keyong ledger verify`` said ok."""
    url = _with_options(pg_url, "statement_timeout=0")
    settings, _ = _init(tmp_path, url)
    schema, decoy = _schema(pg_url), f"{_schema(pg_url)}+-cstatement_timeout=0"
    admin = _admin(pg_url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{decoy}"')
            for table in ("ledger_entries", "ledger_checkpoints", "ledger_nodes"):
                connection.exec_driver_sql(f'CREATE TABLE "{decoy}".{table} AS SELECT * FROM "{schema}".{table}')
            connection.exec_driver_sql("SET session_replication_role = replica")
            connection.exec_driver_sql(f"UPDATE \"{schema}\".ledger_entries SET actor = 'mallory' WHERE seq = 3")
            connection.exec_driver_sql("SET session_replication_role = origin")
        done = _cli("ledger", "verify", "--home", str(settings.home), "--json", env={"KEYONG_DATABASE_URL": url})
        report = json.loads(done.stdout)
        assert done.returncode == 1 and report["ok"] is False, report
        assert "hash" in {p["kind"] for p in report["problems"]}, report
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{decoy}" CASCADE')
        admin.dispose()


# --- 2. a database that is no database, or refuses to write --------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", [["operator", "list"], ["operator", "add", "acme", "--uscc", USCC]])
def test_cli_on_a_file_that_is_no_database(tmp_path: Path, command: list[str]) -> None:
    """Fixed (F2): the embedded database overwritten with garbage (a dying disk, a bad restore, someone with
    the home): a writing command's open was a ``sqlalchemy.exc.DatabaseError`` traceback ("file is not a
    database"), where the read-only commands said so in one line. Now exit 1, one line, for both."""
    settings, _ = _init(tmp_path, None)
    (settings.home / "keyong.db").write_bytes(b"this is not SQLite " * 4000)
    done = _cli(*command, "--home", str(settings.home))
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    assert "not a database" in done.stderr


@pytest.mark.slow
def test_cli_create_on_a_read_only_postgresql(pg_url: str, tmp_path: Path) -> None:
    """Fixed (F3): a PostgreSQL that refuses writes (a hot standby after a failover; here
    ``default_transaction_read_only``) made ``keyong operator add`` a traceback holding the INSERT and its
    parameters (``psycopg.errors.ReadOnlySqlTransaction`` is an ``InternalError``, not ``OperationalError``)."""
    settings, _ = _init(tmp_path, pg_url)
    read_only = _with_options(pg_url, "default_transaction_read_only=on")
    done = _cli(
        "operator", "add", "acme", "--uscc", USCC, "--home", str(settings.home), env={"KEYONG_DATABASE_URL": read_only}
    )
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr and "INSERT INTO" not in done.stderr and USCC not in done.stderr, done.stderr
    assert "read-only transaction" in done.stderr


@pytest.mark.slow
def test_api_on_a_read_only_postgresql_is_503(pg_url: str, tmp_path: Path) -> None:
    """Fixed (F4): the same read-only PostgreSQL under the API: a login (``POST /auth/token`` records the key's
    use) was a bare 500; the client did nothing wrong and may retry once the primary is back: 503."""
    settings, tokens = _init(tmp_path, pg_url)
    read_only = Settings(home=settings.home, database_url=_with_options(pg_url, "default_transaction_read_only=on"))
    with TestClient(create_app(read_only), raise_server_exceptions=False) as client:
        response = client.post("/auth/token", json=totp_support.token_body(tokens["custodian"]))
    assert response.status_code == 503, response.text
    assert response.headers.get("Retry-After") and response.json()["kind"] == "database_unavailable"


@pytest.mark.slow
def test_api_on_a_file_that_became_no_database_is_503(tmp_path: Path) -> None:
    """Fixed (F5): the embedded database overwritten in place under a running server (a dying disk, a bad
    copy over it): a request reading what its connections had not cached was a 500 (``DatabaseError``:
    "database disk image is malformed"), where a file that cannot be opened is a 503."""
    settings, _ = _init(tmp_path, None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        path = settings.home / "keyong.db"
        size = path.stat().st_size
        with path.open("r+b") as database:  # in place: the server's open connections read the same file
            database.write(bytes(range(256)) * (size // 256 + 1))
        response = client.get("/public")
    assert response.status_code == 503, response.text
    assert response.headers.get("Retry-After") and response.json()["kind"] == "database_unavailable"


@pytest.mark.slow
def test_an_emptied_database_is_not_started_over(settings: Settings) -> None:
    """Fixed (F6): the database of an initialised home emptied (a SQLite file truncated or replaced by an empty
    one; a PostgreSQL schema a DBA dropped and made again): the next writing command migrated a fresh schema
    over it and carried on as a new instance, no principals and a ledger starting again at entry 1 that
    verified ok. ``init`` makes the schema before the home's marker: a marker over no schema is a loss."""
    instance, _ = Instance.init(settings)
    instance.close()
    if settings.database_url is None:
        (settings.home / "keyong.db").write_bytes(b"")
    else:
        admin = _admin(settings.database_url)
        schema = _schema(settings.database_url)
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        admin.dispose()
    env = {"KEYONG_DATABASE_URL": settings.database_url} if settings.database_url else {}
    done = _cli("operator", "add", "acme", "--uscc", USCC, "--home", str(settings.home), env=env)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr and "holds no Keyong schema" in done.stderr, done.stderr
    listed = _cli("principal", "list", "--home", str(settings.home), "--json", env=env)
    assert listed.returncode == 1 and "holds no Keyong schema" in listed.stderr, listed


# --- 3. the remembered ledger head (red team 21d F8's fix), a hostile DBA without the home --------------


def _drop_ledger_guards(connection: Any) -> None:
    """The ledger's append-only triggers out of the way, as a DBA may (SQLite: dropped; PostgreSQL: replica)."""
    if connection.dialect.name == "sqlite":
        for table in ("ledger_entries", "ledger_checkpoints", "ledger_nodes"):
            for op in ("update", "delete"):
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
    else:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")


def _engine(settings: Settings) -> Any:
    return create_engine(settings.database_url or f"sqlite:///{settings.home / 'keyong.db'}")


def _append(settings: Settings, subject: str) -> None:
    """One entry appended by the instance's own writer (which remembers the head in the home)."""
    instance = Instance.open(settings)
    try:
        instance.ledger.append(actor="tester", role="host", action="test.appended", subject=subject)
    finally:
        instance.close()


def _verify_json(settings: Settings, timeout: float = 120) -> tuple[int, dict[str, Any]]:
    env = {"KEYONG_DATABASE_URL": settings.database_url} if settings.database_url else {}
    done = _cli("ledger", "verify", "--home", str(settings.home), "--json", env=env, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.slow
def test_a_tail_rewritten_longer_is_not_erased_by_the_next_append(settings: Settings) -> None:
    """Fixed (T1): a DBA replaces the entries after the last signed checkpoint with MORE forged ones (hashes
    and nodes recomputed with the ledger's own code and any key: no checkpoint is due). Verify saw it
    (``rolled_back``) until the instance appended once more: ``cut_before_append`` compared the head only
    with a log no longer than it, the append moved the remembered head onto the forged log, and every
    verification after said ok. The remembered head must stay the prefix of whatever the writer appends to."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger import Ledger

    instance, _ = Instance.init(settings)
    instance.close()
    _append(settings, "honest-1")
    _append(settings, "honest-2")
    engine = _engine(settings)
    try:
        with engine.begin() as connection:
            keep = connection.exec_driver_sql("SELECT max(tree_size) FROM ledger_checkpoints").scalar_one()
            size = connection.exec_driver_sql("SELECT max(seq) FROM ledger_entries").scalar_one()
            assert size > keep
            _drop_ledger_guards(connection)
            connection.exec_driver_sql(f"DELETE FROM ledger_entries WHERE seq > {keep}")
            connection.exec_driver_sql(f"DELETE FROM ledger_nodes WHERE (idx + 1) * (1 << level) > {keep}")
        forger = Ledger(engine, Ed25519PrivateKey.generate(), origin="mallory", checkpoint_every=10**9)
        for n in range(size - keep + 1):  # one more than was cut: the log is longer than the remembered head
            forger.append(actor="mallory", role="host", action="forged.entry", subject=f"forged-{n}")
    finally:
        engine.dispose()
    _append(settings, "honest-3")  # the instance goes on writing
    code, report = _verify_json(settings)
    assert code == 1 and report["ok"] is False, report
    assert {"rolled_back", "truncated"} & {p["kind"] for p in report["problems"]}, report


def _head_file(settings: Settings) -> Path:
    return settings.home / "secrets" / "ledger_head.json"


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_fifo_head_file_neither_hangs_verify_nor_the_writer(settings: Settings) -> None:
    """Fixed (T2): someone with the home (not the ledger key) puts a FIFO in place of the head file: verify
    waited on it forever, and so did every writer, which reads it after each commit (``keyong serve`` would
    stop answering writes). Now verify says it cannot use it (exit 1) and the writer replaces it."""
    instance, _ = Instance.init(settings)
    instance.close()
    head = _head_file(settings)
    head.unlink()
    os.mkfifo(head)
    code, report = _verify_json(settings, timeout=60)
    assert code == 1 and "remembered_head" in {p["kind"] for p in report["problems"]}, report
    done = _cli("principal", "add", "bob", "--role", "operator", "--home", str(settings.home), timeout=60)
    assert done.returncode == 0, done.stderr
    code, report = _verify_json(settings, timeout=60)
    assert code == 0 and report["ok"] is True, report


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_head_file_linked_to_an_endless_device_is_refused(settings: Settings) -> None:
    """Fixed (T3): the head file a link to ``/dev/zero``: verify read it until memory ran out (here bounded by
    an address-space limit on the child, so the machine is spared: MemoryError or the timeout)."""
    import resource

    instance, _ = Instance.init(settings)
    instance.close()
    head = _head_file(settings)
    head.unlink()
    head.symlink_to("/dev/zero")
    limit = 2**30  # a small ledger verifies in less; reading /dev/zero stops at it

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    full = {k: v for k, v in os.environ.items() if not k.upper().startswith("KEYONG_")}
    done = subprocess.run(
        [*KEYONG, "ledger", "verify", "--home", str(settings.home), "--json"],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        preexec_fn=bounded,
    )
    report = json.loads(done.stdout)
    assert done.returncode == 1 and "remembered_head" in {p["kind"] for p in report.get("problems", [])}, report


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_deeply_nested_head_file_is_not_one(settings: Settings) -> None:
    """Fixed (T4): a head file of ``[[[[…`` made ``json.loads`` raise ``RecursionError``, which ``read_head``
    did not count as "not a head": every append failed (rolled back) with "the input nests too deeply to be
    read: give a flat document", and verify's JSON held an exception's name. It is now a damaged head:
    a problem for verify, replaced by the writer's next commit."""
    instance, _ = Instance.init(settings)
    instance.close()
    _head_file(settings).write_text("[" * 100_000)
    code, report = _verify_json(settings)
    assert code == 1 and "remembered_head" in {p["kind"] for p in report.get("problems", [])}, report
    done = _cli("principal", "add", "bob", "--role", "operator", "--home", str(settings.home))
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_head_checkpoint_size_past_any_column_is_a_problem_not_a_500(settings: Settings) -> None:
    """Fixed (T5): a head file whose checkpoint ``tree_size`` is 10**30 passed ``read_head`` (an int) and the
    database query with it raised ``OverflowError`` (SQLite) or ``DataError`` (PostgreSQL): ``GET
    /ledger/verify`` was a 500 and the CLI printed the exception's name instead of a report."""
    instance, result = Instance.init(settings)
    instance.close()
    tokens = result.tokens
    head = _head_file(settings)
    data = json.loads(head.read_text())
    data["checkpoint"]["tree_size"] = 10**30
    head.write_text(json.dumps(data))
    from tests.conftest import bearer

    code, report = _verify_json(settings)
    assert code == 1 and "remembered_head" in {p["kind"] for p in report.get("problems", [])}, report
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/ledger/verify", headers=bearer(client, tokens["regulator"]))
    # The login appended first, and its writer replaced the file it could not use with its own head.
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True, response.json()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_blocked_lock_file_does_not_freeze_the_head(settings: Settings) -> None:
    """Fixed (T6): with the head's lock file replaced by a directory, every write of the head failed (logged
    only) and the file kept an ever older head, which verify went on accepting: a DBA then cut the tail back
    to it unseen. The head is written under a lock no one can take away (its directory) and a random
    temporary name."""
    instance, _ = Instance.init(settings)
    instance.close()
    lock = _head_file(settings).with_name("ledger_head.json.lock")
    lock.unlink(missing_ok=True)
    lock.mkdir()
    _append(settings, "after-the-lock-broke")
    engine = _engine(settings)
    try:
        with engine.begin() as connection:
            _drop_ledger_guards(connection)
            size = connection.exec_driver_sql("SELECT max(seq) FROM ledger_entries").scalar_one()
            connection.exec_driver_sql(f"DELETE FROM ledger_entries WHERE seq = {size}")
            connection.exec_driver_sql(f"DELETE FROM ledger_checkpoints WHERE tree_size >= {size}")
            connection.exec_driver_sql(f"DELETE FROM ledger_nodes WHERE (idx + 1) * (1 << level) >= {size}")
    finally:
        engine.dispose()
    code, report = _verify_json(settings)
    assert code == 1 and "truncated" in {p["kind"] for p in report["problems"]}, report


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_verify_behind_a_dba_lock_answers(settings: Settings) -> None:
    """Fixed (T7): a DBA holds ``LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE``; ``keyong ledger verify``
    waited as long as the lock was held (SQLite's reads give up after the busy timeout). A verification must
    answer, exit 1 within a bound: the verifier's PostgreSQL sessions (its engine's and the fast reader's) now
    give up a lock wait after 30 s."""
    instance, _ = Instance.init(settings)
    instance.close()
    assert settings.database_url is not None
    locker = create_engine(settings.database_url)
    try:
        with locker.begin() as connection:
            connection.exec_driver_sql("LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE")
            env = {"KEYONG_DATABASE_URL": settings.database_url}
            try:
                done = _cli("ledger", "verify", "--home", str(settings.home), "--json", env=env, timeout=90)
            except subprocess.TimeoutExpired:
                pytest.fail("ledger verify still waited on the lock after 90 s")
            assert done.returncode == 1 and "Traceback" not in done.stderr, done
    finally:
        locker.dispose()
