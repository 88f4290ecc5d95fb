"""fix23b: what the red team 23b's findings left to close beyond its own tests.

F4: a process that remembers a longer head uses it as evidence, in its verifications too, not only in its
next append (a head file removed while a DBA cuts the tail, and no append since).
"""

from __future__ import annotations

from pathlib import Path

from tests.adversarial.test_redteam23b import _cut_tail, _writer


def test_a_removed_head_file_still_lets_this_process_see_a_cut(tmp_path: Path) -> None:
    """The head file is removed and the tail cut; before any append, this process's verification compares
    the database with the head it committed (red team 23b F4): the cut is a problem, not a warning."""
    ledger, engine, head = _writer(tmp_path)
    try:
        head.unlink()
        _cut_tail(engine, 2)
        report = ledger.verify(reference=True)
        assert not report.ok, report.warnings
        assert "truncated" in {p.kind for p in report.problems}, report.problems
        assert any("removed" in w for w in report.warnings), report.warnings
    finally:
        engine.dispose()


def test_bounded_lock_waits_set_lock_timeout_only_within_the_block(pg_url: str) -> None:
    """F1/F3's mechanism: a transaction begun within :func:`bounded_lock_waits` waits on a lock at most the
    bound (PostgreSQL's ``lock_timeout``, SET LOCAL); one begun outside it keeps the server's default."""
    from sqlalchemy import create_engine

    from app.bounded_waits import bounded_lock_waits, install_bounded_waits

    engine = create_engine(pg_url)
    try:
        install_bounded_waits(engine)
        install_bounded_waits(engine)  # idempotent
        with engine.connect() as connection:
            default = connection.exec_driver_sql("SHOW lock_timeout").scalar_one()
        with bounded_lock_waits(750), engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar_one() == "750ms"
        with engine.connect() as connection:  # the pooled connection kept nothing: SET LOCAL ended with it
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar_one() == default
    finally:
        engine.dispose()


def test_the_fast_readers_connections_have_a_connect_timeout() -> None:
    """F5: libpq's ``connect_timeout`` on the fast reader's URI, no longer than the wait (at least libpq's 2 s),
    and a smaller one the URL already gives is kept."""
    from ledger.fastread import bounded_connect

    assert "connect_timeout=2" in bounded_connect("postgresql://u@h/db", 500)
    assert "connect_timeout=11" in bounded_connect("postgresql://u@h/db", 10_001)
    assert "connect_timeout=30" not in bounded_connect("postgresql://u@h/db?connect_timeout=30", 5000)
    assert "connect_timeout=3" in bounded_connect("postgresql://u@h/db?connect_timeout=3", 5000)


def test_a_connection_opened_within_the_bound_has_a_connect_timeout(pg_url: str) -> None:
    """F5 for the application's own pool: a connection opened within :func:`bounded_lock_waits` gets libpq's
    ``connect_timeout`` (a new connection to an address that hangs is bounded too); one opened outside it not."""
    from sqlalchemy import create_engine

    from app.bounded_waits import bounded_lock_waits, install_bounded_waits

    engine = create_engine(pg_url)
    try:
        install_bounded_waits(engine)
        with bounded_lock_waits(500), engine.connect() as connection:
            params = connection.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
            assert params.get("connect_timeout") == "2", params
        engine.dispose()
        with engine.connect() as connection:
            params = connection.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
            assert "connect_timeout" not in params, params
    finally:
        engine.dispose()
