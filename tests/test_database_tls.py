"""PostgreSQL over TLS (SATRE v2 2.8.01; issue 22): ``KEYONG_DATABASE_SSLMODE`` / ``_SSLROOTCERT``.

A PostgreSQL server of the test's own, with ``ssl=on`` and a self-signed certificate, started from the
machine's PostgreSQL binaries on a free loopback port: an instance initialised with ``verify-full``
talks to it over TLS, and a certificate that does not chain to the given CA is refused. The shared
PostgreSQL at 127.0.0.1:5432 serves no TLS: requiring it there is refused, never downgraded.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app import Instance
from app.database import DatabaseTlsError, with_sslmode
from app.settings import Settings
from tests.test_serve import free_port
from tests.test_transport import _run, self_signed

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def test_sslmode_setting_can_only_tighten_the_url() -> None:
    assert with_sslmode(PG, None) == PG
    assert "sslmode=require" in with_sslmode(PG, "require")
    assert "sslmode=verify-full" in with_sslmode(PG + "?sslmode=verify-full", "require")  # the URL's stricter
    assert "sslmode=require" in with_sslmode(PG + "?sslmode=disable", "require")  # the setting's stricter
    with pytest.raises(DatabaseTlsError, match="unknown sslmode"):
        with_sslmode(PG, "sure")
    with pytest.raises(DatabaseTlsError, match="PostgreSQL only"):
        with_sslmode("sqlite:////tmp/x.db", "require")
    with pytest.raises(DatabaseTlsError, match="no such file"):
        with_sslmode(PG, "verify-full", Path("/nonexistent/ca.pem"))


@pytest.mark.attack
def test_tls_required_database_is_refused_not_downgraded(tmp_path: Path) -> None:
    """The shared PostgreSQL serves no TLS: with sslmode=require, init fails cleanly and writes nothing."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        pytest.skip("no PostgreSQL listening at 127.0.0.1:5432")
    home = tmp_path / "home"
    # A database that does not exist: should the server speak TLS after all, nothing is written anywhere.
    url = PG.removesuffix("/test") + "/keyong_tls_probe"
    result = _run("init", "--home", str(home), env={"KEYONG_DATABASE_URL": url, "KEYONG_DATABASE_SSLMODE": "require"})
    if "does not exist" in result.stderr:
        pytest.skip("this PostgreSQL serves TLS, so a required-TLS connection gets through (nothing to refuse)")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot connect to the database" in result.stderr and "SSL" in result.stderr
    assert not home.exists() and not list(tmp_path.glob(".home.init-*"))
    sqlite = _run("init", "--home", str(tmp_path / "lite"), env={"KEYONG_DATABASE_SSLMODE": "require"})
    assert sqlite.returncode == 1 and "PostgreSQL only" in sqlite.stderr
    assert not (tmp_path / "lite").exists()


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[tuple[int, Path]]:
    """``(port, CA file)`` of a throw-away PostgreSQL with ssl=on, run as the postgres user."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if os.geteuid() != 0 or not initdb or not pg_ctl or not shutil.which("runuser"):
        pytest.skip("needs root, runuser and the PostgreSQL server binaries to start a TLS PostgreSQL")
    import pwd

    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user to run a PostgreSQL server as")
    base = Path(tempfile.mkdtemp(prefix="keyong-pgtls-"))
    base.chmod(0o755)
    cert, key = self_signed(base)
    for path in (base, cert, key):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    key.chmod(0o600)
    data, port = base / "data", free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"]
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c ssl=on "
        f"-c ssl_cert_file={cert} -c ssl_key_file={key} -c fsync=off"
    )
    try:
        init = [*as_postgres, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
        subprocess.run(init, check=True, capture_output=True, timeout=120)
        started = subprocess.run(
            [*as_postgres, pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "-t", "60", "start"],
            capture_output=True,
            text=True,
            timeout=90,
        )
        if started.returncode != 0:
            log = (base / "log").read_text(errors="replace")[-800:] if (base / "log").exists() else ""
            pytest.fail(f"TLS PostgreSQL did not start: {started.stderr} {log}")
        yield port, cert
    finally:
        subprocess.run(
            [*as_postgres, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_verify_full_connects_over_tls(tls_postgres: tuple[int, Path], tmp_path: Path) -> None:
    port, ca = tls_postgres
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    env = {"KEYONG_DATABASE_URL": url, "KEYONG_DATABASE_SSLMODE": "verify-full", "KEYONG_DATABASE_SSLROOTCERT": str(ca)}
    home = tmp_path / "home"
    init = _run("init", "--home", str(home), env=env)
    assert init.returncode == 0, init.stderr
    settings = Settings(home=home, database_sslmode="verify-full", database_sslrootcert=ca)
    instance = Instance.open(settings)
    try:
        with instance.engine.connect() as connection:
            ssl_on = connection.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar()
        assert ssl_on is True
    finally:
        instance.close()


@pytest.mark.slow
@pytest.mark.attack
def test_a_server_certificate_from_another_ca_is_refused(tls_postgres: tuple[int, Path], tmp_path: Path) -> None:
    """verify-full checks who answers: a server whose certificate the given CA did not sign is refused."""
    port, _ = tls_postgres
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    other_ca, _ = self_signed(stranger)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={other_ca}"
    home = tmp_path / "home"
    result = _run("init", "--home", str(home), env={"KEYONG_DATABASE_URL": url, "KEYONG_DATABASE_SSLMODE": "require"})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot connect to the database" in result.stderr and "certificate verify failed" in result.stderr
    assert not home.exists()
