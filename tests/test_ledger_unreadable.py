"""Ledgers edited into states a verifier cannot read as their schema says (FINDINGS21a F1, F2).

A row whose ``seq`` is not an integer, stored text that is not UTF-8, a stored Merkle node or a checkpoint
whose coordinates are not integers, and a checkpoint note that is not the row's signed tree head: both
verifiers report the row (the native and DuckDB paths hand such databases to the reference, so the report
is one), and ``keyong ledger verify`` prints that report and exits 1, never a traceback (DESIGN.md,
Command-line contract).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

from app import Instance, Settings
from ledger import Ledger, Record, metadata, native, public_key_hex
from ledger.fastverify import fast_verify
from ledger.reference import reaches_past, verify_reference
from ledger.report import Problem, VerifyReport
from ledger.storage import APPEND_ONLY_TABLES

REPO = Path(__file__).resolve().parents[1]

LOOSE = (
    "CREATE TABLE loose (seq, time, actor, role, action, subject, payload, prev_hash, hash)",
    "INSERT INTO loose SELECT seq, time, actor, role, action, subject, payload, prev_hash, hash FROM ledger_entries",
    "DROP TABLE ledger_entries",
    "ALTER TABLE loose RENAME TO ledger_entries",
)


def tamper(path: Path, *statements: str) -> None:
    raw = sqlite3.connect(path)
    try:
        for table in APPEND_ONLY_TABLES:
            raw.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            raw.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        for statement in statements:
            raw.execute(statement)
        raw.commit()
    finally:
        raw.close()


@pytest.fixture
def ledger_file(tmp_path: Path) -> tuple[Path, Ed25519PrivateKey]:
    path = tmp_path / "ledger.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    key = Ed25519PrivateKey.generate()
    ledger = Ledger(engine, key, origin="unreadable.test", checkpoint_every=300)
    for start in range(0, 600, 100):
        ledger.append_many(
            [Record("a", "operator", "job.submitted", f"s{i}", {"i": i}) for i in range(start, start + 100)]
        )
    ledger.checkpoint()
    engine.dispose()
    return path, key


def reports(path: Path, key: Ed25519PrivateKey) -> list[VerifyReport]:
    """The reference's report, then each fast path's."""
    public = key.public_key()
    engine = create_engine(f"sqlite:///{path}")
    try:
        found = [verify_reference(engine, public)]
    finally:
        engine.dispose()
    paths = ["duckdb", *(["native"] if native.AVAILABLE else [])]
    found += [fast_verify(f"sqlite:///{path}", public, public_key_hex(public), path=p) for p in paths]
    return found


def the_one_report(path: Path, key: Ed25519PrivateKey) -> VerifyReport:
    first, *others = reports(path, key)
    for other in others:
        assert other == first and other.truncated_problems == first.truncated_problems
    json.dumps(first.as_json(), allow_nan=False)  # the CLI prints it
    return first


def test_a_seq_that_is_not_an_integer_is_named_where_it_sorts(ledger_file: tuple[Path, Ed25519PrivateKey]) -> None:
    path, key = ledger_file
    tamper(path, *LOOSE, "UPDATE ledger_entries SET seq = 'x7' WHERE seq = 7")
    report = the_one_report(path, key)
    # SQLite sorts text after every integer: the row is the 600th read, after entry 600.
    assert report.problems[:3] == [
        Problem(7, "missing", "entries 7..7 are missing (deleted)"),
        Problem(8, "link", "prev_hash does not match the previous entry's hash"),
        Problem(601, "unreadable", "the entry after 600 has a seq that is not an integer: 'x7'"),
    ]
    assert report.method == "reference" and report.entries == 600


def test_text_that_is_not_utf8_is_named_with_its_column(ledger_file: tuple[Path, Ed25519PrivateKey]) -> None:
    path, key = ledger_file
    tamper(
        path, "UPDATE ledger_entries SET actor = CAST(X'61FF62' AS TEXT), role = CAST(X'C0AF' AS TEXT) WHERE seq = 9"
    )
    report = the_one_report(path, key)
    assert report.problems[:2] == [
        Problem(9, "unreadable", "entry 9 stores text that is not UTF-8 in actor, role"),
        Problem(9, "hash", "content does not match its hash (edited, inserted or reordered)"),
    ]
    # The rest of the ledger is still checked: a later edit is found too.
    tamper(path, "UPDATE ledger_entries SET subject = 'other' WHERE seq = 500")
    assert Problem(500, "hash", "content does not match its hash (edited, inserted or reordered)") in (
        the_one_report(path, key).problems
    )


def test_an_undecodable_hash_on_the_last_entry_leaves_a_printable_head(
    ledger_file: tuple[Path, Ed25519PrivateKey],
) -> None:
    path, key = ledger_file
    tamper(path, "UPDATE ledger_entries SET hash = CAST(X'FF' AS TEXT) || substr(hash, 2) WHERE seq = 600")
    report = the_one_report(path, key)
    assert isinstance(report.head, str) and report.head.startswith("b'\\xff")
    assert Problem(600, "unreadable", "entry 600 stores text that is not UTF-8 in hash") in report.problems


def test_nodes_and_checkpoints_with_odd_coordinates_are_reported(ledger_file: tuple[Path, Ed25519PrivateKey]) -> None:
    path, key = ledger_file
    tamper(
        path,
        "CREATE TABLE n2 AS SELECT * FROM ledger_nodes",
        "DROP TABLE ledger_nodes",
        "ALTER TABLE n2 RENAME TO ledger_nodes",
        "UPDATE ledger_nodes SET level = 'a' WHERE idx = 1",
        "CREATE TABLE c2 AS SELECT * FROM ledger_checkpoints",
        "DROP TABLE ledger_checkpoints",
        "ALTER TABLE c2 RENAME TO ledger_checkpoints",
        "UPDATE ledger_checkpoints SET tree_size = 'big' WHERE tree_size = 300",
    )
    problems = the_one_report(path, key).problems
    assert Problem(None, "unreadable", "a checkpoint's tree size is not an integer: 'big'") in problems
    assert (
        Problem(None, "merkle_node", "a stored Merkle node has coordinates that are not integers: ('a', 1)") in problems
    )
    assert Problem(257, "merkle_node", "stored Merkle node (8, 1) does not match entries") in problems


@pytest.mark.parametrize("level", [-1, 64, 2**62])
def test_a_stored_node_at_an_impossible_level_is_past_the_end(
    level: int, ledger_file: tuple[Path, Ed25519PrivateKey]
) -> None:
    """A hostile level never reaches ``1 << level`` (a negative shift raised, a huge one would not end)."""
    assert reaches_past((level, 0), 600)
    path, key = ledger_file
    tamper(path, f"INSERT INTO ledger_nodes VALUES ({level}, 0, '{'0' * 64}')")
    problems = the_one_report(path, key).problems
    assert problems == [Problem(601, "truncated", "stored Merkle nodes cover entries that no longer exist")]


@pytest.mark.parametrize(
    "edit",
    [
        "note = CAST(X'FF' AS TEXT)",
        "note = CAST(note AS BLOB)",
        "note = ''",
        "note = (SELECT note FROM ledger_checkpoints WHERE tree_size = 600)",
        "note = replace(note, 'unreadable.test', 'other.origin')",
        "note = substr(note, 1, length(note) - 6) || 'AAAA=' || char(10)",
    ],
)
def test_a_checkpoint_note_that_is_not_the_rows_signed_head_is_reported(
    edit: str, ledger_file: tuple[Path, Ed25519PrivateKey]
) -> None:
    """FINDINGS21a F1: the note witnesses fetch (GET /ledger/checkpoint.note) is checked by every path alike."""
    path, key = ledger_file
    assert the_one_report(path, key).ok
    tamper(path, f"UPDATE ledger_checkpoints SET {edit} WHERE tree_size = 300")
    assert the_one_report(path, key).problems == [
        Problem(None, "checkpoint_note", "checkpoint of size 300 stores a note that is not its signed tree head")
    ]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KEYONG_DATABASE")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize(
    "statements",
    [
        ("UPDATE ledger_entries SET actor = CAST(X'61FF62' AS TEXT) WHERE seq = 2",),
        (*LOOSE, "UPDATE ledger_entries SET seq = 'abc' WHERE seq = 2"),
    ],
    ids=["not_utf8", "text_seq"],
)
def test_keyong_ledger_verify_prints_the_report_not_a_traceback(tmp_path: Path, statements: tuple[str, ...]) -> None:
    home = tmp_path / "home"
    instance, _ = Instance.init(Settings().with_home(home))
    instance.close()
    tamper(home / "keyong.db", *statements)
    done = cli(home, "ledger", "verify", "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-500:]
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert any(p["kind"] == "unreadable" for p in report["problems"]), report["problems"]


def test_a_verifier_that_cannot_finish_says_so_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    """What the verifiers cannot report (the database itself failing) is exit 1 and ``{"ok": false, "error"}``."""
    import typer

    from app.cli.conventions import Output
    from app.cli.ledger import _unverified

    with pytest.raises(typer.Exit) as exited:
        _unverified(Output(True), sqlite3.DatabaseError("database disk image is malformed\nmore"))
    assert exited.value.exit_code == 1
    captured = capsys.readouterr()
    message = "the ledger could not be verified: DatabaseError: database disk image is malformed"
    assert json.loads(captured.out) == {"ok": False, "error": message}
    assert message in captured.err
