"""The native (C) verifier path on SQLite: tampering, hostile storage, batch seams, the fallbacks.

The ledger file is attacker-writable in the threat model, so beyond the report equality of
tests/test_fastverify.py these feed the C code what only a hand-edited file holds: values of every
storage class in every column (NULL, BLOB in TEXT, text in INTEGER), invalid UTF-8 (bad bytes,
surrogates, overlongs), embedded NULs, rows of tens of megabytes, a UTF-16 database. The
outcome must be the reference verifier's: the same report, or the same exception.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from app import Instance, Settings
from ledger import Ledger, Record, native
from ledger.fastverify import default_path, fast_verify
from ledger.reference import verify_reference
from tests.ledger_support import tamper

pytestmark = pytest.mark.skipif(not native.AVAILABLE, reason="the ledger._chainhash extension is not built")

BATCH_ROWS = 4096  # rows per batch in ledger/_chainhash.c: the seams between batches are tested
COLUMNS = ("seq", "time", "actor", "role", "action", "subject", "payload", "prev_hash", "hash")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Instance]:
    instance, _ = Instance.init(Settings(home=tmp_path / "home"))
    try:
        yield instance
    finally:
        instance.close()


def make_ledger(instance: Instance, n: int, every: int = 50) -> Ledger:
    ledger = Ledger(instance.engine, instance.keys.ledger_key, origin="keyong.local/native", checkpoint_every=every)
    for first in range(0, n, 5000):
        ledger.append_many(
            Record(f"op-{i % 3}", "operator", "job.submitted", f"job:{i}", {"i": i, "名": "值"})
            for i in range(first, min(n, first + 5000))
        )
    return ledger


def url_of(instance: Instance) -> str:
    return instance.engine.url.render_as_string(hide_password=False)


def outcome(run: Callable[[], Any]) -> tuple[Any, ...]:
    """A verifier's report (JSON and truncation), or the type of the exception it raised."""
    try:
        report = run()
    except Exception as exc:
        return ("raised", type(exc).__name__)
    return ("report", report.as_json(), report.truncated_problems)


def compare(instance: Instance, ledger: Ledger, method: str = "native") -> tuple[Any, ...]:
    """The reference's outcome, which the native path must give; ``method``: who must answer."""
    reference = outcome(lambda: ledger.verify(reference=True))
    reports: list[Any] = []

    def native_run() -> Any:
        reports.append(fast_verify(url_of(instance), ledger.public_key, ledger.public_key_hex, path="native"))
        return reports[-1]

    assert outcome(native_run) == reference
    if reports:
        assert reports[0].method == method
    return reference


def loosen(instance: Instance) -> None:
    """What an attacker with the file can do: the entries table again without its types and constraints."""
    tamper(
        instance.engine,
        "CREATE TABLE loose AS SELECT * FROM ledger_entries",
        "DROP TABLE ledger_entries",
        "ALTER TABLE loose RENAME TO ledger_entries",
    )


# --- tampering through the native path ------------------------------------------------------


def test_tampering_gives_the_reference_report(home: Instance) -> None:
    ledger = make_ledger(home, 300)
    assert compare(home, ledger)[1]["ok"]
    cases = [
        """UPDATE ledger_entries SET payload = '{"i":1}' WHERE seq = 10""",
        "DELETE FROM ledger_entries WHERE seq = 77",
        "UPDATE ledger_entries SET seq = -1 WHERE seq = 100",
        "UPDATE ledger_entries SET seq = 100 WHERE seq = 101",
        "UPDATE ledger_entries SET seq = 101 WHERE seq = -1",
        "UPDATE ledger_entries SET action = 'job.ran' || char(0) || 'x' WHERE seq = 120",
        "UPDATE ledger_entries SET time = 'a' || char(0) || 'b' WHERE seq = 121",
        "UPDATE ledger_entries SET hash = upper(hash) WHERE seq = 130",
        f"UPDATE ledger_nodes SET hash = '{'ab' * 32}' WHERE level = 8 AND idx = 0",
    ]
    for statement in cases:  # cumulative: the ledger gathers every kind of damage
        tamper(home.engine, statement)
        assert not compare(home, ledger)[1]["ok"]
    kinds = {p["kind"] for p in compare(home, ledger)[1]["problems"]}
    assert kinds == {"hash", "missing", "link", "merkle_node", "checkpoint_root", "truncated"}


def test_nul_in_action_is_recomputed_in_python(home: Instance) -> None:
    """A string JSON escapes makes the row "slow": the reference's own code encodes it."""
    ledger = make_ledger(home, 20)
    ledger.append(actor="a\x00b", role="operator", action="job.ran", subject="\x00\n", payload={"\x00": "\x00"})
    assert compare(home, ledger)[1]["ok"]
    tamper(home.engine, "UPDATE ledger_entries SET action = 'job' || char(0) || '.ran' WHERE seq = 21")
    assert [p["kind"] for p in compare(home, ledger)[1]["problems"]] == ["hash"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET actor = CAST(actor AS BLOB) WHERE seq = 3",
        "UPDATE ledger_entries SET payload = X'7b7d' WHERE seq = 4",
        "UPDATE ledger_entries SET hash = CAST(hash AS BLOB) WHERE seq = 5",
    ],
)
def test_other_storage_classes_go_to_the_reference(home: Instance, statement: str) -> None:
    ledger = make_ledger(home, 30)
    tamper(home.engine, statement)
    report = compare(home, ledger, method="reference")
    assert not report[1]["ok"]


@pytest.mark.parametrize(
    "value",
    [
        "X'FF61'",  # not UTF-8 at all
        "X'EDA080'",  # a UTF-16 surrogate encoded in UTF-8: Python refuses it
        "X'C080'",  # an overlong NUL
        "X'F4908080'",  # above U+10FFFF
        "X'E282'",  # cut short
        "X'61' || X'80'",  # a lone continuation byte
    ],
)
@pytest.mark.parametrize("column", ["subject", "payload", "hash", "time"])
def test_text_that_is_not_utf8_is_reported_like_the_reference(home: Instance, value: str, column: str) -> None:
    """Both verifiers name the entry (``unreadable``) instead of raising sqlite3's decode error (FINDINGS21a F2)."""
    ledger = make_ledger(home, 10)
    tamper(home.engine, f"UPDATE ledger_entries SET {column} = CAST({value} AS TEXT) WHERE seq = 4")
    result = compare(home, ledger, method="reference")
    assert result[0] == "report" and not result[1]["ok"]
    unreadable = [p for p in result[1]["problems"] if p["kind"] == "unreadable"]
    assert unreadable == [
        {"seq": 4, "kind": "unreadable", "detail": f"entry 4 stores text that is not UTF-8 in {column}"}
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET hash = NULL WHERE seq = 5",
        "UPDATE ledger_entries SET payload = NULL WHERE seq = 6",
        "UPDATE ledger_entries SET seq = NULL WHERE seq = 7",
        "UPDATE ledger_entries SET seq = 'x' WHERE seq = 8",
        "UPDATE ledger_entries SET seq = 8.5 WHERE seq = 8",
        "UPDATE ledger_entries SET seq = X'01' WHERE seq = 9",
        "UPDATE ledger_entries SET seq = 9223372036854775807 WHERE seq = 10",
    ],
)
def test_a_loosened_schema_gives_the_reference_outcome(home: Instance, statement: str) -> None:
    """NULLs and text or reals in seq: only a rewritten schema admits them."""
    ledger = make_ledger(home, 30)
    loosen(home)
    tamper(home.engine, statement)
    method = "native" if "9223372036854775807" in statement else "reference"
    compare(home, ledger, method=method)


def test_huge_rows(home: Instance) -> None:
    """Rows far beyond a batch's 4 MB of copies (and the 64 MB after which its buffer is given back)."""
    ledger = make_ledger(home, 20)
    tamper(
        home.engine,
        "UPDATE ledger_entries SET payload = :v WHERE seq = 5",
        params={"v": '{"x":"' + "é" * 3_000_000 + '"}'},
    )
    tamper(home.engine, "UPDATE ledger_entries SET subject = :v WHERE seq = 9", params={"v": "s" * 70_000_000})
    tamper(home.engine, "UPDATE ledger_entries SET hash = :v WHERE seq = 12", params={"v": "a" * 5_000_000})
    problems = [(p["seq"], p["kind"]) for p in compare(home, ledger)[1]["problems"]]
    assert problems[:4] == [(5, "hash"), (9, "hash"), (12, "hash"), (13, "link")]


def test_batch_seams(home: Instance) -> None:
    """Tampering on both sides of the seams between the C code's batches of 4,096 rows."""
    ledger = make_ledger(home, 2 * BATCH_ROWS + 100, every=1000)
    seam = BATCH_ROWS  # the last row of the first batch (rows are seq 1..)
    assert compare(home, ledger)[1]["ok"]
    tamper(
        home.engine,
        f"DELETE FROM ledger_entries WHERE seq = {seam}",
        f"UPDATE ledger_entries SET actor = 'say \"hi\"' WHERE seq = {seam + 1}",
        f"UPDATE ledger_entries SET prev_hash = '{'ab' * 32}' WHERE seq = {2 * seam + 1}",
        f"UPDATE ledger_entries SET payload = '{{}}' WHERE seq = {2 * seam + 2}",
    )
    problems = [(p["seq"], p["kind"]) for p in compare(home, ledger)[1]["problems"]]
    after = 2 * seam + 1
    assert problems[:5] == [(seam, "missing"), (seam + 1, "link"), (seam + 1, "hash"), (after, "link"), (after, "hash")]


def test_a_utf16_database(home: Instance, tmp_path: Path) -> None:
    """Text of a UTF-16 database comes through SQLite's conversion to UTF-8, as for Python's sqlite3."""
    ledger = make_ledger(home, 120)
    ledger.append(actor="控制字符😀", role="operator", action="job.ran", subject='"q"', payload={"é": "😀"})
    copy = tmp_path / "utf16.db"
    source, connection = sqlite3.connect(str(home.engine.url.database)), sqlite3.connect(copy)
    try:
        connection.execute("PRAGMA encoding = 'UTF-16le'")
        for table in ("ledger_entries", "ledger_nodes", "ledger_checkpoints"):
            cursor = source.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            connection.execute(f"CREATE TABLE {table} ({', '.join(names)})")
            connection.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(names))})", cursor.fetchall())
        connection.execute("UPDATE ledger_entries SET subject = 'job:x' WHERE seq = 50")
        connection.commit()
        assert connection.execute("PRAGMA encoding").fetchone()[0] == "UTF-16le"
    finally:
        source.close()
        connection.close()
    engine = create_engine(f"sqlite:///{copy}")
    try:
        reference = verify_reference(engine, ledger.public_key)
    finally:
        engine.dispose()
    fast = fast_verify(f"sqlite:///{copy}", ledger.public_key, ledger.public_key_hex, path="native")
    assert fast.method == "native"
    assert fast.as_json() == reference.as_json()
    assert [(p.seq, p.kind) for p in reference.problems] == [(50, "hash")]


# --- arbitrary hostile values ----------------------------------------------------------------

values = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=80).map(lambda b: ("blob", b)),
    st.binary(max_size=80).map(lambda b: ("text", b)),  # any bytes as TEXT: often not UTF-8
    st.text(max_size=80),
)


def test_arbitrary_values_in_any_column(home: Instance) -> None:
    """Any storage class, any bytes, in any column of a loosened table: the reference's outcome."""
    ledger = make_ledger(home, 120)
    loosen(home)
    saved = sqlite3.connect(str(home.engine.url.database))
    try:
        rows = saved.execute("SELECT * FROM ledger_entries").fetchall()
    finally:
        saved.close()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(edits=st.lists(st.tuples(st.sampled_from(COLUMNS), st.integers(1, 120), values), min_size=1, max_size=3))
    def check(edits: list[tuple[str, int, Any]]) -> None:
        statements = ["DELETE FROM ledger_entries"]
        tamper(home.engine, *statements)
        connection = sqlite3.connect(str(home.engine.url.database))
        try:
            connection.executemany(f"INSERT INTO ledger_entries VALUES ({', '.join('?' * 9)})", rows)
            for column, seq, value in edits:
                if isinstance(value, tuple):
                    kind, data = value
                    sql = "CAST(? AS TEXT)" if kind == "text" else "?"
                    connection.execute(f"UPDATE ledger_entries SET {column} = {sql} WHERE rowid = ?", (data, seq))
                else:
                    connection.execute(f"UPDATE ledger_entries SET {column} = ? WHERE rowid = ?", (value, seq))
            connection.commit()
        finally:
            connection.close()
        home.engine.dispose()
        compare(home, ledger, method=ledger_method(home))

    check()


def ledger_method(instance: Instance) -> str:
    """Who answers for the current state: native unless some entry holds what only the reference mirrors."""
    connection = sqlite3.connect(str(instance.engine.url.database))
    try:
        connection.text_factory = bytes
        odd = connection.execute(
            "SELECT count(*) FROM ledger_entries WHERE typeof(seq) <> 'integer' OR "
            + " OR ".join(f"typeof({c}) <> 'text'" for c in COLUMNS[1:])
        ).fetchone()[0]
        texts = connection.execute(f"SELECT {', '.join(COLUMNS[1:])} FROM ledger_entries").fetchall()
    finally:
        connection.close()
    if odd:
        return "reference"
    try:
        for row in texts:
            for value in row:
                value.decode("utf-8")
    except UnicodeDecodeError:
        return "reference"
    return "native"


def test_verifying_while_entries_are_appended(home: Instance) -> None:
    """One read transaction: checkpoints, nodes and entries of one state, whatever commits meanwhile."""
    ledger = make_ledger(home, 2 * BATCH_ROWS, every=7)
    stop = threading.Event()
    appended: list[int] = []

    def append() -> None:
        i = 0
        while not stop.is_set():
            ledger.append_many(Record("w", "operator", "job.ran", f"job:w{i + k}", {"k": k}) for k in range(50))
            i += 50
            appended.append(i)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        reports = [fast_verify(url_of(home), ledger.public_key, ledger.public_key_hex, path="native") for _ in range(6)]
    finally:
        stop.set()
        writer.join()
    assert appended
    for report in reports:
        assert (report.ok, report.method) == (True, "native"), report.problems[:3]


# --- which path answers ------------------------------------------------------------------------


def test_the_default_path(home: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = make_ledger(home, 10)
    url = url_of(home)
    assert default_path(url) == "native"
    assert default_path("postgresql+psycopg://u@127.0.0.1/x") == "duckdb"
    assert fast_verify(url, ledger.public_key, ledger.public_key_hex).method == "native"
    monkeypatch.setattr(native, "AVAILABLE", False)  # as when the extension did not build
    assert default_path(url) == "duckdb"
    assert fast_verify(url, ledger.public_key, ledger.public_key_hex).method == "duckdb"
    with pytest.raises(ValueError, match="native path needs"):
        fast_verify(url, ledger.public_key, ledger.public_key_hex, path="native")


def test_the_extension_runs_pythons_sqlite() -> None:
    """One copy of SQLite in the process: the extension's library is the one Python's sqlite3 runs,
    and the check tells another copy apart (ADBC's driver carries its own; loaded in a child)."""
    assert native.same_sqlite()
    probe = (
        "import ctypes, glob, os, adbc_driver_sqlite\n"
        "from ledger import _chainhash\n"
        "[so] = glob.glob(os.path.join(os.path.dirname(adbc_driver_sqlite.__file__), '*.so'))\n"
        "ctypes.CDLL(so)\n"
        "print(_chainhash.same_sqlite_as(so))\n"
    )
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert child.stdout.strip() == "False", child.stderr


def test_the_cli_says_which_verifier_answered(tmp_path: Path) -> None:
    """``keyong ledger verify`` names the path in its text (its JSON is the same for every verifier)."""
    home = str(tmp_path / "home")
    env = {k: v for k, v in os.environ.items() if k != "KEYONG_DATABASE_URL"}

    def keyong(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "app.cli", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    assert keyong("init", "--home", home, "--json").returncode == 0
    fast, reference = (
        keyong("ledger", "verify", "--home", home),
        keyong("ledger", "verify", "--home", home, "--reference"),
    )
    assert (fast.returncode, reference.returncode) == (0, 0), fast.stderr + reference.stderr
    assert "verified by: native" in fast.stdout
    assert "verified by: reference" in reference.stdout
