"""The read-only open of ``keyong job show`` and ``keyong job list`` (issue 21), on SQLite and PostgreSQL.

What it must keep: the document the queue gives the host (DESIGN.md, ``keyong job show``) for jobs in every
state, held by a suspension (双鸭山 第三十一条) or a freeze (第六十一条); the same refusals as the writer's
open for a home or schema it cannot read; and nothing written through it. What it drops, the sweep of
leftovers at every open (issue 17), still happens at the writer's open (every command that writes, the
worker and ``keyong serve`` open that way).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from app import Instance, InstanceError, Settings
from app.instance_read import DATABASE_SETTINGS, ReadOnlyInstance
from core import Actor, NotFoundError
from operators.jobs import Jobs
from registry import Registry
from registry.freeze import _ROW_ID as FREEZE_MODEL_ROW_ID
from registry.models import OperatorRow
from registry.readonly import FREEZE_ROW_ID, FREEZE_TABLE, OPERATORS_TABLE
from registry.security_models import FreezeRow
from registry.vocabulary import Qualification
from sandbox import read_job, read_jobs
from sandbox.job_reads import JOB_COLUMNS, JOBS_TABLE
from sandbox.models import JobRow
from tests.conftest import FakeClock
from tests.job_worker_proc import OPERATOR, SCENARIO

AGENCY = Actor("demo-agency", "agency")


@pytest.fixture
def environment(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a command of this instance runs in: its database setting, when it has one."""
    for name in DATABASE_SETTINGS:
        monkeypatch.delenv(name.upper(), raising=False)
    if instance.settings.database_url:
        monkeypatch.setenv("KEYONG_DATABASE_URL", instance.settings.database_url)


def opened(home: Path) -> closing[ReadOnlyInstance]:
    return closing(ReadOnlyInstance.open(home))


def jobs_in_every_state(jobs: Jobs, clock: FakeClock) -> list[int]:
    """Queued, running, done (judged, with outputs, findings, resources and a log), failed and cancelled."""
    ids = [jobs.submit(OPERATOR, ["traffic"], "python", f"print({i})", SCENARIO, title=f"t{i}") for i in range(5)]
    for _ in range(4):
        assert jobs.queue.claim("w1") is not None
    clock.advance(seconds=2)
    outputs = [{"name": "t.csv", "bytes": 3, "sha256": "ab" * 32, "path": f"work/{ids[1]}/t.csv"}]
    findings = [{"rule": "sdc.min_cell", "severity": "soft", "file": "t.csv", "location": "row 1", "detail": "n=2"}]
    jobs.queue.finish(
        ids[1],
        "w1",
        1,
        state="done",
        exit_code=0,
        resources={"wall": 1.5, "cpu": 0.5, "max_rss": 1024},
        outputs=outputs,
        verdict="review",
        findings=findings,
        log_excerpt="rows: 3",
    )
    jobs.queue.finish(ids[2], "w1", 1, state="failed", exit_code=3, reason="exit status 3")
    jobs.queue.finish(ids[3], "w1", 1, state="done", exit_code=0, verdict="pass")
    jobs.cancel(ids[4], by=AGENCY)
    return ids


def assert_reads_equal_the_queue(jobs: Jobs, home: Path, ids: list[int]) -> str:
    """Every job, and the lists, as the read-only open reads them and as the queue gives them; the way opened."""
    with opened(home) as reader:
        for job in ids:
            read, queued = read_job(reader.rows, job), jobs.show(job)
            assert read == queued and read.as_json() == queued.as_json(), job  # ``held`` included
            assert read.for_operator() == queued.for_operator(), job
        assert read_jobs(reader.rows) == jobs.queue.list()
        for query in ({"state": "done"}, {"operator": OPERATOR, "limit": 2}, {"operator": "nobody"}):
            assert read_jobs(reader.rows, **query) == jobs.queue.list(**query), query
        return reader.way


@pytest.mark.usefixtures("environment")
def test_reads_give_the_queues_views_held_or_not(
    jobs: Jobs, registry: Registry, instance: Instance, clock: FakeClock
) -> None:
    ids = jobs_in_every_state(jobs, clock)
    way = assert_reads_equal_the_queue(jobs, instance.home, ids)
    assert way == ("engine" if instance.settings.database_url else "embedded")
    registry.licences.suspend_operator(OPERATOR, by=AGENCY, reason="超范围调用")
    assert jobs.show(ids[1]).held  # the case is one where the view differs
    assert_reads_equal_the_queue(jobs, instance.home, ids)
    registry.licences.restore_operator(OPERATOR, by=AGENCY, reason="整改完成")
    registry.freeze.freeze(reason="incident drill", by=AGENCY)
    assert jobs.show(ids[0]).held
    assert_reads_equal_the_queue(jobs, instance.home, ids)


@pytest.mark.usefixtures("environment")
def test_a_missing_job_is_not_found_and_nothing_is_written(instance: Instance) -> None:
    with opened(instance.home) as reader:
        with pytest.raises(NotFoundError, match=r"^no job 404$"):
            read_job(reader.rows, 404)
        with pytest.raises(Exception, match=r"(?i)read-?only"):
            reader.rows("DELETE FROM platform_freeze", {})


def test_the_plain_sql_names_the_tables_and_states_of_the_models() -> None:
    """The read-only queries name the tables, columns and standing the ORM's models define."""
    assert JobRow.__tablename__ == JOBS_TABLE and set(JOB_COLUMNS) == set(JobRow.__table__.c.keys()) - {"code"}
    assert OperatorRow.__tablename__ == OPERATORS_TABLE and {"name", "qualification"} <= set(
        OperatorRow.__table__.c.keys()
    )
    assert FreezeRow.__tablename__ == FREEZE_TABLE and "frozen" in FreezeRow.__table__.c
    assert FREEZE_MODEL_ROW_ID == FREEZE_ROW_ID and Qualification.QUALIFIED.value == "qualified"


@pytest.fixture
def sqlite_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in DATABASE_SETTINGS:
        monkeypatch.delenv(name.upper(), raising=False)
    instance, _ = Instance.init(Settings(home=tmp_path / "home"))
    instance.close()
    yield tmp_path / "home"


@pytest.mark.parametrize(
    ("revision", "refusal"),
    [(None, "holds .* tables but no schema revision"), ("9999_future", "which this Keyong .* does not know")],
)
def test_a_schema_not_at_head_is_refused_as_the_writers_open_refuses_it(
    sqlite_home: Path, revision: str | None, refusal: str
) -> None:
    """A revision this code does not know, or none over existing tables: the read-only open takes the writer's
    open, which refuses both (SATRE 2.2.03) with its reason, rather than reading a schema it cannot vouch for."""
    with sqlite3.connect(sqlite_home / "keyong.db") as connection:
        connection.execute("DELETE FROM alembic_version")
        if revision is not None:
            connection.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    with pytest.raises(InstanceError, match=refusal) as writer:
        Instance.open(Settings(home=sqlite_home))
    with pytest.raises(InstanceError, match=refusal) as reader:
        ReadOnlyInstance.open(sqlite_home)
    assert str(reader.value) == str(writer.value)


def test_no_home_is_refused_as_before(tmp_path: Path) -> None:
    with pytest.raises(InstanceError, match=r"no Keyong instance at .*: run `keyong init --home"):
        ReadOnlyInstance.open(tmp_path / "nowhere")


def test_tls_settings_with_the_embedded_database_are_refused_as_before(
    sqlite_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS asked of SQLite most likely means the PostgreSQL URL was forgotten: refused, not ignored (SATRE 2.8.01)."""
    monkeypatch.setenv("KEYONG_DATABASE_SSLMODE", "require")
    with pytest.raises(InstanceError, match="apply to PostgreSQL only"):
        ReadOnlyInstance.open(sqlite_home)


def test_the_writers_open_sweeps_leftovers_and_the_read_only_open_does_not(sqlite_home: Path) -> None:
    """A product directory no committed row names is what a killed write leaves (issue 17): reading leaves
    it (and the database's bytes) as they were; the next writer's open removes it."""
    leftover = sqlite_home / "products" / "never-registered"
    leftover.mkdir(parents=True)
    (leftover / "table.csv").write_text("a\n1\n", encoding="utf-8")
    database = (sqlite_home / "keyong.db").read_bytes()
    with opened(sqlite_home) as reader:
        assert reader.way == "embedded"
        with pytest.raises(NotFoundError):
            read_job(reader.rows, 1)
    assert leftover.is_dir() and (sqlite_home / "keyong.db").read_bytes() == database
    writer = Instance.open(Settings(home=sqlite_home))
    try:
        assert not leftover.exists()
        with writer.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0
    finally:
        writer.close()


def _leftover(home: Path) -> Path:
    """What a write killed between its steps leaves: a product directory no committed row names (issue 17)."""
    leftover = home / "products" / "never-registered"
    leftover.mkdir(parents=True, exist_ok=True)
    (leftover / "table.csv").write_text("a\n1\n", encoding="utf-8")
    return leftover


def test_reading_commands_leave_leftovers_to_the_writers_and_the_worker_and_serve_sweep(sqlite_home: Path) -> None:
    """Commands that only read sweep nothing; a command that writes, the worker's start and the server's
    (``create_app`` opens as ``keyong serve`` does) each still sweep first."""
    from typer.testing import CliRunner

    from app.api import create_app
    from app.cli import cli

    runner = CliRunner()
    home = ["--home", str(sqlite_home)]
    leftover = _leftover(sqlite_home)
    for args in (["job", "show", "1"], ["job", "list"], ["product", "list"], ["ledger", "show"], ["dataset", "list"]):
        runner.invoke(cli, [*args, *home, "--json"])
        assert leftover.is_dir(), args
    frozen = runner.invoke(cli, ["freeze", "--reason", "drill", *home, "--json"])
    assert frozen.exit_code == 0, frozen.output
    assert not leftover.exists()
    runner.invoke(cli, ["unfreeze", "--reason", "drill over", *home, "--json"])

    leftover = _leftover(sqlite_home)
    runner.invoke(cli, ["worker", "--once", *home, "--json"])  # swept at its start, whether a sandbox runs here or not
    assert not leftover.exists()

    leftover = _leftover(sqlite_home)
    app = create_app(Settings(home=sqlite_home))
    assert app is not None and not leftover.exists()
