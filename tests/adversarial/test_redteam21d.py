"""Red team 21d: this session's read-only paths, storage URLs and chained claims, attacked from the code.

Written from ``app/cli/ledger.py``, ``app/instance_read.py``, ``ledger/entry_reads.py``,
``registry/readonly.py``, ``core/storage_urls.py`` and ``sandbox/job_claims.py`` alone (the builders' tests
unread). A passing test guards a defence that held or a defect fixed here; findings: ``FINDINGS21d.md``.

The rule under attack everywhere: a hostile home must fail closed. ``ledger verify`` never says ``ok`` of a
ledger that was tampered with or cannot be checked, and ``--json`` keeps stdout one JSON document; a reading
command words edited rows as a refusal (exit 1, one line), never a traceback nor output that is not JSON;
a storage URL's secrets never reach a message.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from app import Instance, Settings
from core import Actor, Change
from core.storage import StorageError
from core.storage_urls import open_storage, parse_s3_url, safe_url, storage_for_url
from ledger import read_entries
from operators.jobs import Jobs
from registry import Registry, read_product, read_products
from sandbox import JobQueue
from sandbox.job_views import Claimed, JobView
from sandbox.models import JobState
from tests.job_worker_proc import OPERATOR, SCENARIO

pytestmark = pytest.mark.attack

KEYONG = [sys.executable, "-m", "app.cli"]
SECRET = "TopSecretValue42"


def _cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.upper().startswith("KEYONG_")}
    return subprocess.run([*KEYONG, *args], capture_output=True, text=True, env={**full, **(env or {})}, timeout=180)


def _strict_json(stdout: str) -> Any:
    """stdout as one JSON document; ``NaN``/``Infinity`` (Python's extensions, not JSON) refused."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} in the output is not JSON")

    return json.loads(stdout, parse_constant=refuse)


def _tamper(settings: Settings, *statements: str) -> None:
    """Run ``statements`` with the ledger's append-only triggers out of the way (a hostile DBA)."""
    url = settings.database_url or f"sqlite:///{settings.home / 'keyong.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                for table in ("ledger_entries", "ledger_checkpoints"):
                    for op in ("update", "delete"):
                        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
            else:
                connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def _verify(settings: Settings, *extra: str, env: Mapping[str, str] | None = None) -> tuple[int, Any]:
    env = {**({"KEYONG_DATABASE_URL": settings.database_url} if settings.database_url else {}), **(env or {})}
    done = _cli("ledger", "verify", "--home", str(settings.home), "--json", *extra, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, _strict_json(done.stdout)


@pytest.fixture
def home(settings: Settings) -> Settings:
    """An initialised home (SQLite in the home, or a PostgreSQL schema), closed: the CLI opens it."""
    instance, _ = Instance.init(settings)
    instance.close()
    return settings


# --- 1. ledger verify on the read-only path ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("statements", "kinds"),
    [
        (["UPDATE ledger_entries SET payload = '{}' WHERE seq = 2"], {"hash"}),
        (["UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 3"], {"hash"}),
        (["UPDATE ledger_checkpoints SET signature = lpad('', 128, '0')"], {"checkpoint_signature"}),
        (["DELETE FROM ledger_entries WHERE seq = (SELECT max(seq) FROM ledger_entries)"], {"truncated"}),
    ],
    ids=["payload", "actor", "signature", "last-entry"],
)
def test_verify_reports_tampering(home: Settings, statements: list[str], kinds: set[str]) -> None:
    """Held: an edited entry, checkpoint signature or a removed entry is exit 1 with its problem kind."""
    if home.database_url is None:  # SQLite has no lpad
        statements = [s.replace("lpad('', 128, '0')", "printf('%0128d', 0)") for s in statements]
    _tamper(home, *statements)
    code, report = _verify(home)
    assert code == 1 and report["ok"] is False
    assert kinds <= {p["kind"] for p in report["problems"]}, report


@pytest.mark.slow
def test_verify_refuses_a_wiped_ledger(home: Settings) -> None:
    """Fixed (F1): every ledger row, checkpoint and node removed verified ``ok`` with 0 entries. ``keyong
    init`` ledgers the instance's creation, so an empty ledger was removed: exit 1, ``truncated``."""
    _tamper(home, "DELETE FROM ledger_entries", "DELETE FROM ledger_checkpoints", "DELETE FROM ledger_nodes")
    code, report = _verify(home)
    assert code == 1 and report["ok"] is False
    assert {p["kind"] for p in report["problems"]} == {"truncated"}  # the empty ledger, and the remembered head


@pytest.mark.slow
def test_verify_sees_a_cut_off_tail(home: Settings) -> None:
    """Fixed (F8): a hostile DBA removes the last entry, the checkpoint over it and the Merkle nodes that
    reach past the new end. Every remaining row is consistent, so a self-contained verifier said ``ok``;
    the head the home's writers remembered outside the database (``ledger.head``) now says ``truncated``."""
    _tamper(
        home,
        "DELETE FROM ledger_entries WHERE seq = (SELECT max(seq) FROM ledger_entries)",
        "DELETE FROM ledger_checkpoints WHERE tree_size = (SELECT max(tree_size) FROM ledger_checkpoints)",
        "DELETE FROM ledger_nodes",
    )
    code, report = _verify(home)
    assert code == 1 and report["ok"] is False
    assert "truncated" in {p["kind"] for p in report["problems"]}, report


@pytest.mark.slow
def test_verify_warns_without_a_remembered_head(home: Settings) -> None:
    """A home older than the remembered head (or a machine whose writers never committed) verifies what the
    database holds, exit 0, and says in ``warnings`` (and on the terminal) that a cut tail would not show."""
    (home.home / "secrets" / "ledger_head.json").unlink()
    code, report = _verify(home)
    assert code == 0 and report["ok"] is True
    assert [w for w in report["warnings"] if "no remembered ledger head" in w], report
    env = {"KEYONG_DATABASE_URL": home.database_url} if home.database_url else {}
    done = _cli("ledger", "verify", "--home", str(home.home), env=env)
    assert done.returncode == 0 and "warning: no remembered ledger head" in done.stdout, done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_a_file_uri_database_without_reference(settings: Settings, tmp_path: Path) -> None:
    """Fixed (predating): a home whose database URL is an SQLite ``file:`` URI verified only with
    ``--reference``; the fast verifier refused the URL ("needs an SQLite database file")."""
    url = f"sqlite:///file:{tmp_path / 'db' / 'keyong.db'}?mode=rwc&uri=true"
    (tmp_path / "db").mkdir()
    uri_home = settings.model_copy(update={"database_url": url})
    instance, _ = Instance.init(uri_home)
    instance.close()
    code, report = _verify(uri_home)
    assert code == 0 and report["ok"] is True and report["entries"] > 0, report


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_refuses_an_emptied_database_file(home: Settings) -> None:
    """Fixed (F1): the database file emptied to 0 bytes; the writer's open rebuilt an empty schema and the
    verify said ``ok``. Now the empty ledger it finds is ``truncated``."""
    for name in ("keyong.db", "keyong.db-wal", "keyong.db-shm"):
        (home.home / name).unlink(missing_ok=True)
    (home.home / "keyong.db").write_bytes(b"")
    code, report = _verify(home)
    assert code == 1 and report["ok"] is False


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("damage", ["no-key", "key-readable-by-others", "corrupt-database", "no-marker"])
def test_verify_json_stays_json_when_it_cannot_open(home: Settings, damage: str) -> None:
    """Fixed (F2): a home ``verify`` cannot open (no ledger key, a key readable by others, a database that
    is not one, no marker) exited 1 with nothing on stdout under ``--json``; now ``{"ok": false, "error"}``
    (the stderr message and exit code unchanged)."""
    key = home.home / "secrets" / "ledger_ed25519.pem"
    if damage == "no-key":
        key.unlink()
    elif damage == "key-readable-by-others":
        key.chmod(0o644)
    elif damage == "corrupt-database":
        for name in ("keyong.db-wal", "keyong.db-shm"):
            (home.home / name).unlink(missing_ok=True)
        (home.home / "keyong.db").write_bytes(os.urandom(8192))
    else:
        (home.home / "keyong.json").unlink()
    code, report = _verify(home)
    assert code == 1
    assert report["ok"] is False and report["error"]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_with_a_swapped_key_fails(home: Settings) -> None:
    """Held: the home's ledger key replaced by another: its checkpoints name a foreign key, exit 1."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = home.home / "secrets" / "ledger_ed25519.pem"
    key.unlink()
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, pem)
    os.close(fd)
    code, report = _verify(home)
    assert code == 1 and report["ok"] is False
    assert "checkpoint_key" in {p["kind"] for p in report["problems"]}


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_pointed_at_another_database_fails(home: Settings, tmp_path: Path) -> None:
    """Held: ``KEYONG_DATABASE_URL`` naming another instance's database is verified against this home's key,
    whose checkpoints it does not hold: exit 1, never ``ok``."""
    other = Settings(home=tmp_path / "other")
    instance, _ = Instance.init(other)
    instance.close()
    code, report = _verify(home, env={"KEYONG_DATABASE_URL": f"sqlite:///{other.home / 'keyong.db'}"})
    assert code == 1 and report["ok"] is False


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_with_a_planted_next_key_takes_the_writer_open(home: Settings) -> None:
    """Held: a ``ledger_ed25519.next.pem`` the ledger never recorded (garbage here) sends verify through the
    writer's open, which abandons it; the untouched ledger verifies and the planted file is gone."""
    planted = home.home / "secrets" / "ledger_ed25519.next.pem"
    planted.write_bytes(b"not a key")
    planted.chmod(0o600)
    code, report = _verify(home)
    assert code == 0 and report["ok"] is True
    assert not planted.exists()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_newer_schema_refused(home: Settings) -> None:
    """Held: a schema revision this code does not know is refused with its reason (``--json``: ok false)."""
    engine = create_engine(f"sqlite:///{home.home / 'keyong.db'}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff9999_future'"))
    engine.dispose()
    code, report = _verify(home)
    assert code == 1 and report["ok"] is False and "ffff9999_future" in report["error"]


# --- 4. ledger show / product list / product show on hostile rows ---------------------------------


def _rows_of(documents: Sequence[Mapping[str, Any]]) -> Any:
    def rows(sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(d) for d in documents]

    return rows


ENTRY = {
    "seq": 1,
    "time": "2026-12-07T10:00:00.000000Z",
    "actor": "host",
    "role": "agency",
    "action": "x",
    "subject": "s",
    "prev_hash": "0" * 64,
    "hash": "1" * 64,
}


@pytest.mark.parametrize(
    "payload", ['{"a": NaN}', '{"a": [1e999]}', '{"a": -Infinity}', "[" * 100_000 + "]" * 100_000, "{x"]
)
def test_ledger_show_refuses_payloads_that_are_not_json(payload: str) -> None:
    """Fixed (F3): ``NaN``/``1e999`` in an edited payload printed ``NaN``/``Infinity`` under ``--json`` (not
    JSON, exit 0), deep nesting was a ``RecursionError`` traceback: now a ``ValueError`` naming the entry,
    which ``ledger show`` words as a refusal."""
    with pytest.raises(ValueError, match="ledger entry 1"):
        read_entries(_rows_of([{**ENTRY, "payload": payload}]))


def test_ledger_show_keeps_finite_payloads() -> None:
    """The fix refuses only what JSON has not: an ordinary payload with floats reads as before."""
    (entry,) = read_entries(_rows_of([{**ENTRY, "payload": '{"epsilon": 0.5, "n": [1, 2.25e10]}'}]))
    assert entry.payload == {"epsilon": 0.5, "n": [1, 2.25e10]}


PRODUCT = {
    "id": 1,
    "name": "p",
    "operator": "acme",
    "licence_id": 1,
    "job": "job:1",
    "scenario": "s",
    "lineage": '{"datasets": [{"name": "d"}], "code_sha256": "ab", "guard": {"verdict": "pass"}}',
    "fee_class": "free",
    "price_cents": 250,
    "artifacts": '[{"name": "a.csv"}]',
    "attribution": '{"statement": "x"}',
    "state": "registered",
    "registered_by": "agency",
    "registered_at": "2026-12-07 10:00:00.000000",
}


@pytest.mark.parametrize(
    "edit",
    [
        {"lineage": "[1, 2]"},
        {"lineage": '{"guard": {"x": NaN}}'},
        {"lineage": '{"guard": {"x": 1e999}}'},
        {"lineage": {"guard": {"x": math.inf}}},  # PostgreSQL hands JSON over decoded
        {"lineage": '{"datasets": 5}'},
        {"lineage": '{"reviews": [1]}'},
        {"artifacts": '"abc"'},
        {"attribution": "[1]"},
        {"lineage": "[" * 100_000 + "]" * 100_000},
        {"price_cents": math.inf},
        {"price_cents": "250"},
        {"name": b"\xffp"},
        {"operator": b"\xff"},
        {"registered_at": 12345},
        {"registered_at": None},
        {"licence_id": None},
    ],
    ids=lambda edit: next(iter(edit)) + ":" + repr(next(iter(edit.values())))[:20],
)
def test_product_reads_refuse_hostile_rows(edit: dict[str, Any]) -> None:
    """Fixed (F4): these rows were tracebacks (``AttributeError``, ``TypeError``: ``product list`` exit 1
    with a stack) or, for ``NaN`` and infinities, output that is not JSON with exit 0, or a list of letters
    for artifacts stored as a string. Now a ``ValueError`` naming the product, worded as a refusal."""
    with pytest.raises(ValueError, match="product"):
        read_products(_rows_of([{**PRODUCT, **edit}]))


def test_product_reads_keep_what_the_orm_shows() -> None:
    """An ordinary row reads to the same document as before the checks."""
    (document,) = read_products(_rows_of([PRODUCT]))
    assert document["datasets"] == [{"name": "d"}] and document["price_cents"] == 250
    assert document["registered_at"] == "2026-12-07T10:00:00Z"
    assert read_product(_rows_of([PRODUCT]), "p") == document
    aware = {**PRODUCT, "registered_at": datetime.fromisoformat("2026-12-07T10:00:00+00:00")}
    assert read_products(_rows_of([aware]))[0]["registered_at"] == "2026-12-07T10:00:00Z"


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_product_list_on_an_edited_row_is_a_refusal(home: Settings) -> None:
    """End to end: an edited product row (its lineage a list) is exit 1 with a line, no traceback."""
    engine = create_engine(f"sqlite:///{home.home / 'keyong.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.exec_driver_sql(
            "INSERT INTO operator_orgs VALUES (901, 'acme21d', '91000000000000021D', 'qualified', '', "
            "'2026-12-07 10:00:00.000000')"
        )
        connection.exec_driver_sql(
            "INSERT INTO products VALUES (901, 'p21d', 901, 1, 'job:1', 's', '[1]', '{}', 'free', NULL, '[]', "
            "'registered', 'agency', '2026-12-07 10:00:00.000000')"
        )
    engine.dispose()
    for command in (["product", "list"], ["product", "show", "p21d"]):
        done = _cli(*command, "--home", str(home.home), "--json")
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert "p21d" in done.stderr and done.stdout == ""


# --- 3. storage URLs ----------------------------------------------------------------------------


URLS = [
    f"s3:\\\\key:{SECRET}@bucket/prefix",  # backslashes: urlsplit sees no user-info, it was echoed whole
    f"s3://key:{SECRET}/prefix",  # no '@': parsed as host:port, the "port" was echoed as the bucket name
    f"s3://bucket:{SECRET}/prefix",
    f"s3://key:{SECRET}@bucket/prefix",
    f"s3://bucket/prefix?X-Amz-Signature={SECRET}",
    f"s3://bucket/prefix#{SECRET}",
    f"s3://key:{SECRET}@[bucket/prefix",
    f"gs://key:{SECRET}@bucket/prefix",
    f"file://key:{SECRET}@/tmp",
    f"https://host/x?sig={SECRET}",
    f"s3://key:{SECRET}@@bucket/prefix",
]
ENDPOINTS = [None, f"http://key:{SECRET}@host:9000", f"http://host:9000/?sig={SECRET}", f"http://[{SECRET}"]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_storage_url_secrets_never_in_messages(url: str, endpoint: str | None, tmp_path: Path) -> None:
    """Fixed (F5) for the first two URLs; the rest held: every refusal is a ``StorageError`` whose message
    holds no part of the secret, for the instance's storage and for one named alone."""
    for alone in (False, True):
        try:
            made = (
                storage_for_url(url, endpoint_url=endpoint)
                if alone
                else open_storage(url, home=tmp_path, endpoint_url=endpoint)
            )
        except StorageError as exc:
            assert SECRET.lower() not in str(exc).lower(), str(exc)
        else:
            assert SECRET.lower() not in repr(made).lower()


def test_safe_url_keeps_what_is_not_secret() -> None:
    """The fix drops user-info urlsplit cannot see; an ordinary URL is shown as before."""
    assert safe_url("s3://bucket/prefix/x") == "s3://bucket/prefix/x"
    assert safe_url(f"s3://u:{SECRET}@bucket/p?q=1") == "s3://bucket/p"
    assert SECRET not in safe_url(f"s3:\\\\u:{SECRET}@bucket/p")
    assert parse_s3_url("s3://bucket/p/q") == ("bucket", "p/q")


# --- 2. the claim that rides on the previous job's end -------------------------------------------

AGENCY = Actor("demo-agency", "agency")
REGULATOR = Actor("demo-regulator", "regulator")
CLAIM_SQL = "SELECT 区县, count(*) AS n FROM traffic GROUP BY 区县"


def _between_jobs(registry: Registry, jobs: Jobs, second: int, change: str) -> None:
    if change == "operator-suspended":  # 双鸭山 第三十一条: 中断调用服务
        registry.licences.suspend_operator(OPERATOR, by=AGENCY, reason="安全检查未通过")
    elif change == "licence-suspended":
        registry.licences.suspend(OPERATOR, by=AGENCY, reason="超范围使用")
    elif change == "platform-frozen":
        registry.freeze.freeze(reason="incident 21d", by=REGULATOR)
    else:
        jobs.cancel(second, by=Actor(OPERATOR, "operator"))


@pytest.mark.parametrize("change", ["operator-suspended", "licence-suspended", "platform-frozen", "job-cancelled"])
def test_claim_within_an_end_refuses_what_a_claim_refuses(registry: Registry, jobs: Jobs, change: str) -> None:
    """Held: between two jobs the operator or its licence is suspended, the platform frozen, or the queued job
    cancelled; the claim that rides on the first job's end takes nothing, the first job's end still
    commits, and the second job never runs (no ``job.started`` for it)."""
    queue = jobs.queue
    first = jobs.submit(OPERATOR, ["traffic"], "sql", CLAIM_SQL, SCENARIO)
    second = jobs.submit(OPERATOR, ["traffic"], "sql", CLAIM_SQL, SCENARIO)
    claimed = queue.claim("w21d")
    assert claimed is not None and claimed.job.id == first
    _between_jobs(registry, jobs, second, change)
    riding: list[Claimed | None] = []
    ended = queue.finish(
        first,
        "w21d",
        claimed.attempt,
        state=JobState.DONE,
        verdict="pass",
        then=lambda c, _view: riding.append(queue.claim_within(c, "w21d")),
    )
    assert ended is not None and ended.state == JobState.DONE.value
    assert riding == [None]
    assert queue.get(second).state != JobState.RUNNING.value
    started = [e for e in registry.recorder.ledger.entries(action="job.started") if e.subject == f"job:{second}"]
    assert started == []


def _ride_along(into: list[Claimed | None], queue: JobQueue, worker: str, change: Change, _ended: JobView) -> None:
    into.append(queue.claim_within(change, worker))


@pytest.mark.slow
def test_two_workers_never_chain_into_the_same_job(registry: Registry, jobs: Jobs) -> None:
    """Held: two workers each end a job and claim in that end, on SQLite and PostgreSQL, one queued job
    between them: exactly one of them gets it (the other ``None``), whatever the order."""
    queue = jobs.queue
    firsts = [jobs.submit(OPERATOR, ["traffic"], "sql", CLAIM_SQL, SCENARIO) for _ in range(2)]
    target = jobs.submit(OPERATOR, ["traffic"], "sql", CLAIM_SQL, SCENARIO)
    held = [queue.claim(f"w21d-{i}") for i in range(2)]
    assert [c.job.id for c in held if c is not None] == firsts
    got: list[Claimed | None] = []
    for i, claimed in enumerate(held):
        assert claimed is not None
        queue.finish(
            claimed.job.id,
            f"w21d-{i}",
            claimed.attempt,
            state=JobState.DONE,
            verdict="pass",
            then=partial(_ride_along, got, queue, f"w21d-{i}"),
        )
    assert sorted((c.job.id if c is not None else 0) for c in got) == [0, target]
    assert queue.get(target).attempts == 1


def _chain_one(jobs: Jobs) -> tuple[int, Claimed]:
    """Job 1 ends and claims job 2 in its end; job 2's claim is returned (nobody runs it)."""
    queue = jobs.queue
    first = jobs.submit(OPERATOR, ["traffic"], "sql", CLAIM_SQL, SCENARIO)
    second = jobs.submit(OPERATOR, ["traffic"], "sql", CLAIM_SQL, SCENARIO)
    claimed = queue.claim("w21d")
    assert claimed is not None and claimed.job.id == first
    riding: list[Claimed | None] = []
    queue.finish(
        first,
        "w21d",
        claimed.attempt,
        state=JobState.DONE,
        verdict="pass",
        then=lambda c, _view: riding.append(queue.claim_within(c, "w21d")),
    )
    (next_claim,) = riding
    assert next_claim is not None and next_claim.job.id == second
    return second, next_claim


def test_a_chained_claim_whose_worker_died_is_requeued(jobs: Jobs, clock: Any) -> None:
    """Held: the worker dies after the end (and the ride-along claim) committed, before it runs the job:
    no heartbeat is renewed, the reaper requeues it for another worker."""
    second, _lost = _chain_one(jobs)
    clock.advance(minutes=30)
    reaped = jobs.queue.reap(timedelta(minutes=5))
    assert [j.id for j in reaped] == [second]
    assert jobs.queue.get(second).state == JobState.QUEUED.value
    again = jobs.queue.claim("w21d-other")
    assert again is not None and again.job.id == second


def test_a_chained_claim_given_back_is_untouched(jobs: Jobs) -> None:
    """Held: a stopping worker gives back the job it claimed with the last end (``Worker._unchain`` calls
    ``release``): queued again, its attempt not counted, and another worker takes it."""
    second, parked = _chain_one(jobs)
    assert jobs.queue.release(second, "w21d", parked.attempt, reason="the worker stopped")
    view = jobs.queue.get(second)
    assert view.state == JobState.QUEUED.value and view.attempts == 0
    assert not jobs.queue.release(second, "w21d", parked.attempt, reason="twice")  # no longer its own


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("where", ["home", "setting"])
def test_verify_refuses_a_fifo_for_a_database(home: Settings, tmp_path: Path, where: str) -> None:
    """Fixed (F6): a FIFO in the database's place (in the home, or named by ``KEYONG_DATABASE_URL``) made
    ``ledger verify`` (and ``job show``) wait forever: SQLite opened it and waited for a writer."""
    fifo = home.home / "keyong.db" if where == "home" else tmp_path / "elsewhere.db"
    if where == "home":
        for name in ("keyong.db", "keyong.db-wal", "keyong.db-shm"):
            (home.home / name).unlink(missing_ok=True)
    os.mkfifo(fifo)
    env = {"KEYONG_DATABASE_URL": f"sqlite:///{fifo}"} if where == "setting" else None
    code, report = _verify(home, env=env)
    assert code == 1 and report["ok"] is False and "not a regular file" in report["error"]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_writes_no_secret(home: Settings) -> None:
    """Fixed (F7): verify on the read-only path loaded every secret with ``load_keys``, which makes a missing
    ``data_master.key`` or ``totp.key`` anew: a reading command wrote secrets, and a lost data master was
    silently replaced by a key that opens none of the sealed files. Now only the ledger key is read."""
    secrets_dir = home.home / "secrets"
    (secrets_dir / "data_master.key").unlink()
    (secrets_dir / "totp.key").unlink()
    before = sorted(p.name for p in secrets_dir.iterdir())
    code, report = _verify(home)
    assert code == 0 and report["ok"] is True
    assert sorted(p.name for p in secrets_dir.iterdir()) == before


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("reference", [False, True])
def test_verify_does_not_write_the_database(home: Settings, reference: bool) -> None:
    """Fixed (F9): the read-only verify built its engine with ``make_engine``, whose ``PRAGMA
    journal_mode=WAL`` on connect rewrote a database kept in another journal mode (FINDINGS21a F3 again,
    for ``ledger verify``). Now the file's bytes and journal mode are as they were."""
    import hashlib
    import sqlite3

    path = home.home / "keyong.db"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    code, report = _verify(home, *(["--reference"] if reference else []))
    assert code == 0 and report["ok"] is True
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not (home.home / "keyong.db-wal").exists()


@pytest.mark.slow
@pytest.mark.parametrize("table", ["ledger_entries", "ledger_checkpoints"])
def test_verify_without_a_ledger_table_is_unverified(home: Settings, table: str) -> None:
    """Fixed (F10) for ``ledger_entries``: the table dropped (the schema revision still head) was an
    ``OperationalError`` traceback from ``size()`` with stdout empty; now ``{"ok": false, "error"}``, exit 1.
    ``ledger_checkpoints`` dropped held (the verifier's own failure was already worded)."""
    _tamper(home, f"DROP TABLE {table}" + (" CASCADE" if home.database_url else ""))
    code, report = _verify(home)
    assert code == 1 and report["ok"] is False and "could not be verified" in report["error"]


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://u@127.0.0.1:1/test?password={SECRET}",
        f"postgresql+psycopg://u:{SECRET}@127.0.0.1:1/test?sslpassword={SECRET}&sslmode=disable",
        f"postgresql://127.0.0.1:1/test?PassWord={SECRET}&password={SECRET}",
    ],
)
def test_database_url_secrets_in_the_query_are_hidden(url: str) -> None:
    """Fixed (F11): ``redact`` hid the user-info's password but printed ``?password=`` and ``?sslpassword=``
    (libpq takes both in the query): ``ledger verify``, ``job show`` and every "cannot connect" message showed
    them, on stderr and in ``--json``. Parameters that are not secrets stay as they were."""
    from app.database import redact

    shown = redact(url)
    assert SECRET not in shown and "127.0.0.1:1/test" in shown
    assert redact("postgresql+psycopg://u@h/db?options=-csearch_path%3Dt_1&sslmode=require") == (
        "postgresql+psycopg://u@h/db?options=-csearch_path%3Dt_1&sslmode=require"
    )


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_unreachable_database_message_hides_a_query_password(home: Settings) -> None:
    """End to end for F11: an unreachable PostgreSQL named with ``?password=``: exit 1, no secret anywhere."""
    url = f"postgresql+psycopg://u@127.0.0.1:1/test?password={SECRET}"
    done = _cli("ledger", "verify", "--home", str(home.home), "--json", env={"KEYONG_DATABASE_URL": url})
    assert done.returncode == 1 and _strict_json(done.stdout)["ok"] is False
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_product_list_shows_no_product_whose_operator_is_gone(home: Settings) -> None:
    """Fixed (F12): the read-only query joined the operators with an inner JOIN, so a product whose operator
    row is gone (an edited database) silently dropped out of ``product list`` (exit 0) where the ORM fails
    on it. Now a LEFT JOIN and a refusal naming the product."""
    engine = create_engine(f"sqlite:///{home.home / 'keyong.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.exec_driver_sql(
            "INSERT INTO products VALUES (902, 'ghost21d', 77777, 1, 'job:1', 's', '{}', '{}', 'free', NULL, "
            "'[]', 'registered', 'agency', '2026-12-07 10:00:00.000000')"
        )
    engine.dispose()
    for command in (["product", "list"], ["product", "show", "ghost21d"]):
        done = _cli(*command, "--home", str(home.home), "--json")
        assert done.returncode == 1 and "ghost21d" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_refuses_a_fifo_for_the_ledger_key(home: Settings) -> None:
    """Fixed (F13): a FIFO (mode 600) in the ledger key's place passed the mode check and ``read_bytes``
    waited on it forever: ``ledger verify`` (and every command loading the secrets) hung."""
    key = home.home / "secrets" / "ledger_ed25519.pem"
    key.unlink()
    os.mkfifo(key, 0o600)
    code, report = _verify(home)
    assert code == 1 and report["ok"] is False and "not a regular file" in report["error"]


@pytest.mark.slow
def test_s3_open_errors_name_no_credential(s3_server: Any) -> None:
    """Held: ``S3Storage.open`` (and ``read``/``exists``/``stage``) with a wrong secret, a missing key or a
    missing bucket raise a ``StorageError`` naming bucket and key, never the secret (SeaweedFS checks the
    credentials; moto accepts any, so there only the missing key and bucket are reached)."""
    from core.storage_s3 import S3Credentials

    wrong = S3Credentials(s3_server.admin.key_id, SECRET)
    cases = [
        s3_server.storage("p21d", wrong),
        s3_server.storage("p21d"),
        s3_server.storage("p21d", wrong, bucket="no-such-bucket-21d"),
    ]
    for storage in cases:
        assert SECRET not in repr(storage)
        for operation in ("open", "read", "exists"):
            try:
                answer = getattr(storage, operation)("missing/object.bin")
                if operation == "open":
                    answer.read()
            except StorageError as exc:
                assert SECRET not in str(exc)
                assert "missing/object.bin" in str(exc) or "no-such-bucket-21d" in str(exc), str(exc)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_on_a_locked_database_is_refused(home: Settings) -> None:
    """Held, and now said plainly (F14): a database another process holds in an exclusive lock is refused
    (exit 1, ``{"ok": false}``, "locked"); the read-only open no longer falls through to two more opens that
    each wait out the busy timeout again."""
    import sqlite3

    holder = sqlite3.connect(home.home / "keyong.db", isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("CREATE TABLE held21d (x)")
        code, report = _verify(home)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 1 and report["ok"] is False and "locked" in report["error"]
