"""Red team of issue 21 (redteam21a): the native ledger verifier (the read-only open: ``test_redteam21a_readonly``).

Written from the code alone, before reading the builders' tests (tests/test_ledger_native*.py,
tests/test_cli_start.py). A passing test guards a defence that held; a test marked
``xfail(strict=True)`` is a break that FAILS on the current code (the fixer removes the mark).
Findings, severities and suggested fixes: ``FINDINGS21a.md``.

Threat model (DESIGN.md, Ledger; ledger/native.py): the SQLite ledger file is attacker-writable, so
the native path (ledger/_chainhash.c) must give the reference verifier's report (ledger/reference.py)
for every stored state, never crash, never call a tampered ledger clean. A hostile home (marker,
schema, rows) must not make ``keyong job show/list`` write, crash with a traceback, or skip the
refusals ``Instance.open`` makes (DESIGN.md, Command-line contract: exit 1 with a clear message).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import create_engine

from ledger import Ledger, LedgerVerifier, Record, metadata, native, public_key_hex
from ledger.fastverify import fast_verify
from ledger.reference import verify_reference
from ledger.storage import APPEND_ONLY_TABLES

pytestmark = pytest.mark.attack

needs_native = pytest.mark.skipif(not native.AVAILABLE, reason="ledger._chainhash is not built (setup.py build_ext)")
REPO = Path(__file__).resolve().parents[2]


# --- ledgers an attacker edits --------------------------------------------------------------------


def build_ledger(
    path: Path,
    n: int,
    *,
    every: int = 10**9,
    checkpoints: tuple[int, ...] = (),
    batch: int = 5000,
    records: Callable[[int], Record] | None = None,
    encoding: str | None = None,
) -> Ed25519PublicKey:
    """A real ledger of ``n`` entries written by :class:`Ledger`, checkpointed at ``checkpoints`` and at the end."""
    if encoding:
        raw = sqlite3.connect(path)
        raw.execute(f"PRAGMA encoding='{encoding}'")
        raw.execute("CREATE TABLE t (a)")  # the encoding is fixed once the file has a table
        raw.commit()
        raw.close()
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    key = Ed25519PrivateKey.generate()
    ledger = Ledger(engine, key, origin="redteam21a", checkpoint_every=every)
    make = records or (lambda i: Record("a", "operator", "job.submitted", f"s{i}", {"i": i, "q": 'x"y'}))
    done = 0
    while done < n:
        step = min(batch, n - done, *[c - done for c in checkpoints if c > done])
        ledger.append_many([make(done + i) for i in range(step)])
        done += step
        if done in checkpoints:
            ledger.checkpoint()
    ledger.checkpoint()
    engine.dispose()
    return key.public_key()


def tamper(path: Path, *statements: str) -> None:
    """The attacker's edit: the file itself, append-only triggers dropped."""
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


def outcome(run: Callable[[], Any]) -> tuple[Any, ...]:
    """A verifier's whole answer: its report (with the cap flag), or the kind of error it raised."""
    try:
        report = run()
    except Exception as exc:  # the comparison is the point: both must fail alike
        return ("raised", type(exc).__name__)
    return ("report", report.as_json(), report.truncated_problems)


def native_outcome(path: Path, key: Ed25519PublicKey) -> tuple[Any, ...]:
    return outcome(lambda: fast_verify(f"sqlite:///{path}", key, public_key_hex(key), path="native"))


def reference_outcome(path: Path, key: Ed25519PublicKey) -> tuple[Any, ...]:
    def run() -> Any:
        engine = create_engine(f"sqlite:///{path}")
        try:
            return verify_reference(engine, key)
        finally:
            engine.dispose()

    return outcome(run)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ed25519PublicKey]:
    path = tmp_path_factory.mktemp("small") / "ledger.db"
    return path, build_ledger(path, 40, every=8, batch=1)


def copy_of(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ledger.db"
    shutil.copy(source, target)
    return target


# Rebuild ledger_entries without its constraints, so that any storage class, NULL or duplicate fits.
LOOSE = (
    "CREATE TABLE loose (seq, time, actor, role, action, subject, payload, prev_hash, hash)",
    "INSERT INTO loose SELECT seq, time, actor, role, action, subject, payload, prev_hash, hash FROM ledger_entries",
    "DROP TABLE ledger_entries",
    "ALTER TABLE loose RENAME TO ledger_entries",
)
LOOSE_CP = (
    "CREATE TABLE c2 AS SELECT * FROM ledger_checkpoints",
    "DROP TABLE ledger_checkpoints",
    "ALTER TABLE c2 RENAME TO ledger_checkpoints",
)
FIRST_NODE = "rowid = (SELECT min(rowid) FROM ledger_nodes)"
EDITS: dict[str, tuple[str, ...]] = {
    "edit_payload": ("UPDATE ledger_entries SET payload='{\"i\":99}' WHERE seq=5",),
    "delete_middle": ("DELETE FROM ledger_entries WHERE seq=10",),
    "delete_last": ("DELETE FROM ledger_entries WHERE seq=40",),
    "reorder": (
        "UPDATE ledger_entries SET seq=-3 WHERE seq=3",
        "UPDATE ledger_entries SET seq=3 WHERE seq=4",
        "UPDATE ledger_entries SET seq=4 WHERE seq=-3",
    ),
    "swap_hash_columns": ("UPDATE ledger_entries SET hash=prev_hash, prev_hash=hash WHERE seq=7",),
    "blob_hash": ("UPDATE ledger_entries SET hash=CAST(hash AS BLOB) WHERE seq=7",),
    "blob_payload": ("UPDATE ledger_entries SET payload=CAST(payload AS BLOB) WHERE seq=7",),
    "blob_actor": ("UPDATE ledger_entries SET actor=CAST(actor AS BLOB) WHERE seq=7",),
    "integer_actor": ("UPDATE ledger_entries SET actor=5 WHERE seq=7",),
    "real_time": ("UPDATE ledger_entries SET time=1.5 WHERE seq=7",),
    "nul_in_actor": ("UPDATE ledger_entries SET actor=CAST(X'610062' AS TEXT) WHERE seq=7",),
    "nul_after_time": ("UPDATE ledger_entries SET time=time||CAST(X'00' AS TEXT) WHERE seq=7",),
    "differs_after_nul_payload": ("UPDATE ledger_entries SET payload=payload||CAST(X'0041' AS TEXT) WHERE seq=7",),
    "differs_after_nul_last_hash": ("UPDATE ledger_entries SET hash=hash||CAST(X'0041' AS TEXT) WHERE seq=40",),
    "differs_after_nul_prev_hash": ("UPDATE ledger_entries SET prev_hash=prev_hash||CAST(X'00' AS TEXT) WHERE seq=9",),
    "invalid_utf8_actor": ("UPDATE ledger_entries SET actor=CAST(X'61FF62' AS TEXT) WHERE seq=7",),
    "overlong_utf8_time": ("UPDATE ledger_entries SET time=CAST(X'C0AF' AS TEXT) WHERE seq=7",),
    "surrogate_in_payload": ("UPDATE ledger_entries SET payload=CAST(X'7B22223A22EDA080227D' AS TEXT) WHERE seq=7",),
    "invalid_utf8_hash": ("UPDATE ledger_entries SET hash=CAST(X'FF' AS TEXT)||substr(hash,2) WHERE seq=7",),
    "null_hash": (*LOOSE, "UPDATE ledger_entries SET hash=NULL WHERE seq=7"),
    "null_prev_hash": (*LOOSE, "UPDATE ledger_entries SET prev_hash=NULL WHERE seq=7"),
    "null_payload": (*LOOSE, "UPDATE ledger_entries SET payload=NULL WHERE seq=7"),
    "duplicate_seq": (*LOOSE, "INSERT INTO ledger_entries SELECT * FROM ledger_entries WHERE seq=7"),
    "duplicate_seq_edited": (
        *LOOSE,
        "INSERT INTO ledger_entries SELECT seq,time,'evil',role,action,subject,payload,prev_hash,hash "
        "FROM ledger_entries WHERE seq=7",
    ),
    "negative_seq": ("UPDATE ledger_entries SET seq=-1 WHERE seq=1",),
    "zero_seq": ("UPDATE ledger_entries SET seq=0 WHERE seq=1",),
    "int64_max_seq": ("UPDATE ledger_entries SET seq=9223372036854775807 WHERE seq=40",),
    "int64_min_seq": ("UPDATE ledger_entries SET seq=-9223372036854775808 WHERE seq=1",),
    "two_int64_max_seqs": (*LOOSE, "UPDATE ledger_entries SET seq=9223372036854775807 WHERE seq>=39"),
    "real_seq": (*LOOSE, "UPDATE ledger_entries SET seq=7.0 WHERE seq=7"),
    "quote_in_actor": ("UPDATE ledger_entries SET actor='a\"b' WHERE seq=7",),
    "backslash_in_subject": ("UPDATE ledger_entries SET subject='a\\b' WHERE seq=7",),
    "newline_in_role": ("UPDATE ledger_entries SET role=CAST(X'610A62' AS TEXT) WHERE seq=7",),
    "del_in_role": ("UPDATE ledger_entries SET role=CAST(X'617F62' AS TEXT) WHERE seq=7",),
    "u2028_in_role": ("UPDATE ledger_entries SET role=CAST(X'61E280A862' AS TEXT) WHERE seq=7",),
    "uppercase_last_hash": ("UPDATE ledger_entries SET hash=upper(hash) WHERE seq=40",),
    "uppercase_middle_hash": ("UPDATE ledger_entries SET hash=upper(hash) WHERE seq=7",),
    "spaced_last_hash": ("UPDATE ledger_entries SET hash=substr(hash,1,2)||' '||substr(hash,3) WHERE seq=40",),
    "short_hash": ("UPDATE ledger_entries SET hash=substr(hash,1,62) WHERE seq=7",),
    "long_hash": ("UPDATE ledger_entries SET hash=hash||'00' WHERE seq=7",),
    "non_hex_hash": ("UPDATE ledger_entries SET hash='g'||substr(hash,2) WHERE seq=7",),
    "empty_hash": ("UPDATE ledger_entries SET hash='' WHERE seq=7",),
    "huge_payload": ("UPDATE ledger_entries SET payload='\"'||hex(zeroblob(3000000))||'\"' WHERE seq=7",),
    "huge_escaped_actor": ("UPDATE ledger_entries SET actor=hex(zeroblob(2000000))||'\"' WHERE seq=7",),
    "no_entries": ("DELETE FROM ledger_entries",),
    "nothing_at_all": ("DELETE FROM ledger_entries", "DELETE FROM ledger_checkpoints", "DELETE FROM ledger_nodes"),
    "checkpoint_root": (
        "UPDATE ledger_checkpoints SET root=(SELECT hash FROM ledger_entries WHERE seq=1) WHERE tree_size=8",
    ),
    "checkpoint_signature": ("UPDATE ledger_checkpoints SET signature=substr(signature,3)||'00' WHERE tree_size=8",),
    "checkpoint_beyond": (
        "INSERT INTO ledger_checkpoints SELECT tree_size+100, root, time, signature, public_key, "
        "note FROM ledger_checkpoints WHERE tree_size=8",
    ),
    "checkpoint_zero": (
        "INSERT INTO ledger_checkpoints SELECT 0, root, time, signature, public_key, note "
        "FROM ledger_checkpoints WHERE tree_size=8",
    ),
    "checkpoint_negative": (
        "INSERT INTO ledger_checkpoints SELECT -5, root, time, signature, public_key, note "
        "FROM ledger_checkpoints WHERE tree_size=8",
    ),
    "checkpoint_blob_root": ("UPDATE ledger_checkpoints SET root=CAST(root AS BLOB) WHERE tree_size=8",),
    "checkpoint_invalid_utf8_root": ("UPDATE ledger_checkpoints SET root=CAST(X'FF' AS TEXT) WHERE tree_size=8",),
    "checkpoint_duplicate": (
        *LOOSE_CP,
        "INSERT INTO ledger_checkpoints SELECT * FROM ledger_checkpoints WHERE tree_size=8",
    ),
    "no_checkpoint_table": ("DROP TABLE ledger_checkpoints",),
    "no_node_table": ("DROP TABLE ledger_nodes",),
    "entries_as_view": (
        "ALTER TABLE ledger_entries RENAME TO real_entries",
        "CREATE VIEW ledger_entries AS SELECT * FROM real_entries",
    ),
    "extra_column": ("ALTER TABLE ledger_entries ADD COLUMN extra",),
    "forged_rotation": (
        "UPDATE ledger_entries SET action='ledger.key_rotated', payload='{\"public_key\":\"00\"}' WHERE seq=7",
    ),
    "forged_rotation_blob": ("UPDATE ledger_entries SET action='ledger.key_rotated', payload=X'7B7D' WHERE seq=7",),
}


@needs_native
@pytest.mark.parametrize("name", sorted(EDITS))
def test_native_report_is_the_references_on_every_edit(
    name: str, small: tuple[Path, Ed25519PublicKey], tmp_path: Path
) -> None:
    """Target 2: whatever the attacker stored, the native path answers exactly as the reference."""
    path = copy_of(small[0], tmp_path)
    tamper(path, *EDITS[name])
    assert native_outcome(path, small[1]) == reference_outcome(path, small[1])


@needs_native
def test_an_untouched_ledger_is_verified_by_the_native_path(
    small: tuple[Path, Ed25519PublicKey], tmp_path: Path
) -> None:
    path = copy_of(small[0], tmp_path)
    report = fast_verify(f"sqlite:///{path}", small[1], public_key_hex(small[1]), path="native")
    assert report.method == "native" and report.ok and report.entries == 40
    assert native_outcome(path, small[1]) == reference_outcome(path, small[1])


@needs_native
def test_checkpoint_note_the_reference_cannot_read_is_not_clean_on_native(
    small: tuple[Path, Ed25519PublicKey], tmp_path: Path
) -> None:
    path = copy_of(small[0], tmp_path)
    tamper(path, "UPDATE ledger_checkpoints SET note=CAST(X'FF' AS TEXT) WHERE tree_size=8")
    assert native_outcome(path, small[1]) == reference_outcome(path, small[1])


WEIRD = ['q"uote', "back\\slash", "new\nline", "nul\x00byte", "tab\tand\x1f", "del\x7f", "sep\u2028", "汉字😀", "é"]


@needs_native
def test_legitimate_entries_with_escaped_strings_verify_clean_on_both(tmp_path: Path) -> None:
    """Rows whose JSON needs escaping take the slow (Python) path in C: an honest ledger stays clean."""
    path = tmp_path / "weird.db"

    def record(i: int) -> Record:
        text = WEIRD[i % len(WEIRD)]
        return Record(f"actor {text}", f"role {text}", "job.submitted", f"subject {text}", {"v": text, "i": i})

    key = build_ledger(path, 60, every=16, batch=7, records=record)
    native_report = fast_verify(f"sqlite:///{path}", key, public_key_hex(key), path="native")
    assert native_report.method == "native" and native_report.ok
    assert native_outcome(path, key) == reference_outcome(path, key)
    tamper(path, "UPDATE ledger_entries SET subject=subject||' ' WHERE seq=30")
    assert native_outcome(path, key) == reference_outcome(path, key)
    assert native_outcome(path, key)[1]["ok"] is False


UTF16_EDITS: dict[str, tuple[str, ...]] = {
    "untouched": (),
    "edited": ("UPDATE ledger_entries SET subject='zz' WHERE seq=3",),
    "lone_high_surrogate": ("UPDATE ledger_entries SET subject=CAST(X'00D8' AS TEXT) WHERE seq=3",),
    "lone_low_surrogate": ("UPDATE ledger_entries SET subject=CAST(X'41000CDC' AS TEXT) WHERE seq=3",),
    "odd_byte_count": ("UPDATE ledger_entries SET subject=CAST(X'410042' AS TEXT) WHERE seq=3",),
    "nul": ("UPDATE ledger_entries SET subject=CAST(X'410000004200' AS TEXT) WHERE seq=3",),
    "surrogate_last_hash": ("UPDATE ledger_entries SET hash=CAST(X'00D8' AS TEXT) WHERE seq=30",),
}


@needs_native
@pytest.mark.parametrize("name", sorted(UTF16_EDITS))
def test_a_utf16_ledger_gets_the_references_report(name: str, tmp_path: Path) -> None:
    """The C code reads UTF-16 text through SQLite's conversion: it must agree with Python's sqlite3."""
    path = tmp_path / "utf16.db"
    key = build_ledger(
        path,
        30,
        every=7,
        batch=1,
        encoding="UTF-16le",
        records=lambda i: Record('汉"x', "r", "job.submitted", f"s{i}😀", {"i": i, "z": "é"}),
    )
    tamper(path, *UTF16_EDITS[name])
    assert native_outcome(path, key) == reference_outcome(path, key)


@needs_native
def test_the_reading_and_checking_threads_agree_however_many(tmp_path: Path) -> None:
    """Batches of 4096 rows cross slots in any order: 0, 1, 2 or 8 checking threads give the same scan."""
    path = tmp_path / "threads.db"
    build_ledger(path, 20_000, batch=5000)
    tamper(
        path,
        "UPDATE ledger_entries SET actor='a\"' WHERE seq % 7 = 0",
        "UPDATE ledger_entries SET payload='{}' WHERE seq % 11 = 0",
    )
    scans = [native.scan_sqlite(f"sqlite:///{path}", workers=w) for w in (0, 1, 2, 8)]
    first = scans[0]
    assert first.slow_rows == 20_000 // 7
    for scan in scans[1:]:
        assert scan.slow_rows == first.slow_rows and scan.head == first.head
        assert (scan.leaves == first.leaves).all() and (scan.bad == first.bad).all()
        assert (scan.link == first.link).all() and (scan.seq == first.seq).all()


BIG_EDITS: dict[str, tuple[str, ...]] = {
    "untouched": (),
    "stored_node": ("UPDATE ledger_nodes SET hash=substr(hash,3)||'00' WHERE level=8 AND idx=3",),
    "node_past_the_end": (
        "INSERT INTO ledger_nodes SELECT level, idx+100000, hash FROM ledger_nodes WHERE level=8 AND idx=3",
    ),
    "node_deleted": ("DELETE FROM ledger_nodes WHERE level=8 AND idx=3",),
    "over_100_problems": ("UPDATE ledger_entries SET payload='{}' WHERE seq % 397 = 0",),
    "over_100_slow_problems": ("UPDATE ledger_entries SET actor='a\"' WHERE seq % 391 = 0",),
    "chunk_edges": ("UPDATE ledger_entries SET payload='{}' WHERE seq IN (49999,50000,50001,50002,59999,60000)",),
    "deleted_at_chunk_edge": ("DELETE FROM ledger_entries WHERE seq IN (50000,50001)",),
    "truncated_tail": ("DELETE FROM ledger_entries WHERE seq > 55000",),
    "middle_checkpoint_root": (
        "UPDATE ledger_checkpoints SET root=(SELECT hash FROM ledger_entries WHERE seq=1) WHERE tree_size=50000",
    ),
    "every_link_broken": ("UPDATE ledger_entries SET prev_hash=hash",),
}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ed25519PublicKey]:
    path = tmp_path_factory.mktemp("big") / "ledger.db"
    return path, build_ledger(path, 60_000, checkpoints=(300, 50_000, 50_001))


@needs_native
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BIG_EDITS))
def test_native_report_across_chunks_nodes_and_the_problem_cap(
    name: str, big: tuple[Path, Ed25519PublicKey], tmp_path: Path
) -> None:
    """Past the reference's 50,000-row chunk and its 100-problem cap, with stored Merkle nodes (level >= 8)."""
    path = copy_of(big[0], tmp_path)
    tamper(path, *BIG_EDITS[name])
    assert native_outcome(path, big[1]) == reference_outcome(path, big[1])


FUZZ_CHILD = """
import sys
from ledger import native
try:
    scan = native.scan_sqlite("sqlite:///" + sys.argv[1], workers=int(sys.argv[2]))
    print("scanned", len(scan.seq))
except Exception as exc:
    print("refused", type(exc).__name__)
"""


@needs_native
@pytest.mark.slow
def test_corrupted_files_never_crash_the_extension(tmp_path: Path) -> None:
    """Random byte flips in the SQLite file: the C code answers or refuses, it never dies of a signal."""
    source = tmp_path / "source.db"
    build_ledger(source, 3000, checkpoints=(300, 1000), batch=500)
    data = source.read_bytes()
    rnd = random.Random(2121)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for i in range(24):
        corrupted = bytearray(data)
        for _ in range(rnd.choice([1, 4, 16, 64])):
            corrupted[rnd.randrange(100, len(corrupted))] = rnd.randrange(256)
        path = tmp_path / f"fuzz{i}.db"
        path.write_bytes(bytes(corrupted))
        done = subprocess.run(
            [sys.executable, "-c", FUZZ_CHILD, str(path), str(rnd.choice([0, 1, 2, 8]))],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert done.returncode == 0, (i, done.returncode, done.stderr[-500:])
        assert done.stdout.startswith(("scanned", "refused")), done.stdout


TRAPS: dict[str, tuple[str, ...]] = {
    "text_seq": (*LOOSE, "UPDATE ledger_entries SET seq='abc' WHERE seq=7"),
    "blob_seq": (*LOOSE, "UPDATE ledger_entries SET seq=X'07' WHERE seq=7"),
    "invalid_utf8_entry": ("UPDATE ledger_entries SET actor=CAST(X'61FF62' AS TEXT) WHERE seq=7",),
}


@needs_native
@pytest.mark.parametrize("name", sorted(TRAPS))
def test_verification_reports_an_unreadable_entry_instead_of_raising(
    name: str, small: tuple[Path, Ed25519PublicKey], tmp_path: Path
) -> None:
    path = copy_of(small[0], tmp_path)
    tamper(path, *TRAPS[name])
    engine = create_engine(f"sqlite:///{path}")
    try:
        report = LedgerVerifier(engine, small[1]).verify()
    finally:
        engine.dispose()
    assert not report.ok and report.problems


WRITER = """
import sys
from cryptography.hazmat.primitives import serialization
from sqlalchemy import create_engine
from ledger import Ledger, Record
key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
ledger = Ledger(create_engine("sqlite:///" + sys.argv[1], connect_args={"timeout": 60}), key, origin="w",
                checkpoint_every=97)
for b in range(40):
    ledger.append_many([Record("a", "r", "job.submitted", f"s{b}.{k}", {"k": k}) for k in range(250)])
"""


@needs_native
@pytest.mark.slow
@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_concurrent_writer_never_tears_the_native_snapshot(journal: str, tmp_path: Path) -> None:
    """Checkpoints, nodes and entries are read in one transaction: a ledger growing meanwhile stays clean."""
    path = tmp_path / "live.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA journal_mode={journal}")
    raw.close()
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    key = Ed25519PrivateKey.generate()
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(pem)], env=env)
    public = key.public_key()
    reports = []
    try:
        while writer.poll() is None:
            reports.append(fast_verify(f"sqlite:///{path}", public, public_key_hex(public), path="native"))
    finally:
        assert writer.wait(timeout=300) == 0
    reports.append(fast_verify(f"sqlite:///{path}", public, public_key_hex(public), path="native"))
    assert all(r.ok and r.method == "native" for r in reports), [r.problems[:2] for r in reports if not r.ok]
    assert reports[-1].entries == 40 * 250
