"""fast_verify against the reference Ledger.verify, on SQLite and PostgreSQL: the very same report.

Both fast paths answer every scenario on SQLite (the C extension's and the DuckDB one: each must
equal the reference on its own), the DuckDB path on PostgreSQL.

Every tamper scenario of test_ledger.py (edit, payload edit, delete, insert, reorder, truncate,
rewrite with recomputed hashes, re-signed checkpoint) plus the corners the vectorized path must
mirror by hand: non-hex and odd hashes, JSON strings with characters Python escapes, seq below
1, stored nodes, checkpoints of size 0 or past the end, more than MAX_PROBLEMS problems, the
reference's 50,000-row chunking, and storage the fast path hands back to the reference. Two
Hypothesis tests append and tamper with arbitrary text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, func, insert, select

from app import Instance, Settings
from ledger import Ledger, Record, VerifyReport, canonical_json, checkpoint_statement, fastread, native, public_key_hex
from ledger.entry import entry_body
from ledger.fastverify import fast_verify
from ledger.report import Problem
from ledger.storage import checkpoints, entries, nodes
from tests.ledger_support import tamper

FILL = 600  # with init's 5: checkpoints at 5, 105, ..., 605; stored nodes (8, 0), (8, 1), (9, 0)
LEDGER_TABLES = (entries, nodes, checkpoints)
CHECKPOINT_EVERY = 100
LIMITS = {"time": 32, "prev_hash": 64, "hash": 64, "action": 128}  # varchar sizes PostgreSQL enforces
SPECIAL = '"\\\n\r\t\b\f\x00\x01\x1f\x7f\x80\u2028é控制字符😀 '


@pytest.fixture
def sqlite_instance(tmp_path: Path) -> Iterator[Instance]:
    """An instance on the embedded SQLite, for what only SQLite can store (PostgreSQL refuses it)."""
    instance, _ = Instance.init(Settings(home=tmp_path / "home"))
    try:
        yield instance
    finally:
        instance.close()


def make_ledger(instance: Instance, every: int = CHECKPOINT_EVERY) -> Ledger:
    """The instance's ledger key, frequent checkpoints, and no payload screen (arbitrary text on purpose)."""
    return Ledger(instance.engine, instance.keys.ledger_key, origin="keyong.local/fastverify", checkpoint_every=every)


def fill(ledger: Ledger, n: int, start: int = 0) -> None:
    for first in range(start, start + n, 5000):
        ledger.append_many(
            Record(f"op-{i % 3}", "operator", "job.submitted", f"job:{i}", {"i": i, "名": "值"})
            for i in range(first, min(start + n, first + 5000))
        )


def fast_paths(instance: Instance) -> list[str]:
    """The fast paths that can read the instance's database: the C one on SQLite when it is built."""
    if instance.engine.dialect.name == "sqlite" and native.AVAILABLE:
        return ["native", "duckdb"]
    return ["duckdb"]


def check_paths(
    instance: Instance, ledger: Ledger, reference: VerifyReport, name: str = "", *, method: str | None = None
) -> None:
    """Every fast path gives the reference's report; ``method`` names who must answer (default: the path)."""
    url = instance.engine.url.render_as_string(hide_password=False)
    for path in fast_paths(instance):
        fast = fast_verify(url, ledger.public_key, ledger.public_key_hex, path=path)
        assert (name, path, fast.as_json(), fast.truncated_problems) == (
            name,
            path,
            reference.as_json(),
            reference.truncated_problems,
        )
        assert (name, fast.method) == (name, method or path)


def assert_same(instance: Instance, ledger: Ledger, name: str = "", *, method: str | None = None) -> VerifyReport:
    """The reference and every fast path over the instance's database; their reports must be identical
    (``name``: the scenario a failure names)."""
    reference = ledger.verify(reference=True)
    assert reference.method == "reference"
    check_paths(instance, ledger, reference, name, method=method)
    return reference


def set_value(instance: Instance, table: str, column: str, value: str, where: str) -> None:
    """Tamper with one value, passed as a parameter so that any text survives quoting."""
    mark = ":v" if instance.engine.dialect.name == "sqlite" else "%(v)s"
    tamper(instance.engine, f"UPDATE {table} SET {column} = {mark} WHERE {where}", params={"v": value})


# --- scenarios --------------------------------------------------------------------------------


def _insert(instance: Instance, ledger: Ledger) -> None:
    forged = ledger.get(300)
    tamper(
        instance.engine,
        "UPDATE ledger_entries SET seq = seq + 100000 WHERE seq >= 300",
        "UPDATE ledger_entries SET seq = seq - 99999 WHERE seq >= 100000",
        "INSERT INTO ledger_entries (seq, time, actor, role, action, subject, payload, prev_hash, hash) "
        f"VALUES (300, '{forged.time}', 'mallory', 'operator', 'job.submitted', 'job:x', '{{}}', "
        f"'{forged.prev_hash}', '{'f' * 64}')",
    )


def _rewrite(instance: Instance, ledger: Ledger) -> None:
    """Edit entry 450 and recompute every later hash: only the signed checkpoints and nodes notice."""
    rows = [ledger.get(seq) for seq in range(450, ledger.size() + 1)]
    prev = rows[0].prev_hash
    statements = []
    for entry in rows:
        actor = "mallory" if entry.seq == 450 else entry.actor
        payload = canonical_json(entry.payload).decode()
        body = entry_body(entry.seq, entry.time, actor, entry.role, entry.action, entry.subject, payload, prev)
        new_hash = hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()
        statements.append(
            f"UPDATE ledger_entries SET actor = '{actor}', prev_hash = '{prev}', hash = '{new_hash}' "
            f"WHERE seq = {entry.seq}"
        )
        prev = new_hash
    tamper(instance.engine, *statements)


def _resign(instance: Instance, ledger: Ledger) -> None:
    forger = Ed25519PrivateKey.generate()
    latest = ledger.latest_checkpoint()
    assert latest is not None
    signature = forger.sign(checkpoint_statement(latest.tree_size, "ab" * 32, latest.time)).hex()
    tamper(
        instance.engine,
        f"UPDATE ledger_checkpoints SET root = '{'ab' * 32}', signature = '{signature}', "
        f"public_key = '{public_key_hex(forger.public_key())}' WHERE tree_size = {latest.tree_size}",
    )


def _extra_checkpoints(instance: Instance, ledger: Ledger) -> None:
    """Checkpoints of size 0 and -1 (checked for key and signature only) and one past the end."""
    tamper(
        instance.engine,
        *(
            "INSERT INTO ledger_checkpoints (tree_size, root, time, signature, public_key, note) "
            f"SELECT {size}, root, time, signature, public_key, note FROM ledger_checkpoints WHERE tree_size = 105"
            for size in (0, -1, 100000)
        ),
    )


def _specials_appended(instance: Instance, ledger: Ledger) -> None:
    """Legitimate entries whose strings need JSON escapes: a clean ledger, recomputed in Python."""
    text = SPECIAL.replace("\x00", "") if instance.engine.dialect.name == "postgresql" else SPECIAL
    ledger.append_many(
        [
            Record(text, "operator", "job.submitted", f"job:{text}", {"k": text, text: [text]}),
            Record("op", text, "job.ran", "x\\y", {}),
        ]
    )


def _spaced_hash(instance: Instance, _ledger: Ledger) -> None:
    """Whitespace between hex pairs: bytes.fromhex accepts it, DuckDB's unhex does not."""
    rest = "substr(hash, 3)" if instance.engine.dialect.name == "sqlite" else "substr(hash, 3, 60)"  # varchar(64)
    spaced = f"' ' || substr(hash, 1, 2) || ' ' || {rest}"
    tamper(instance.engine, f"UPDATE ledger_entries SET hash = {spaced} WHERE seq = 64")


def _sql(*statements: str) -> Callable[[Instance, Ledger], None]:
    return lambda instance, _ledger: tamper(instance.engine, *statements)


def _set(column: str, value: str, seq: int, table: str = "ledger_entries") -> Callable[[Instance, Ledger], None]:
    return lambda instance, _ledger: set_value(instance, table, column, value, f"seq = {seq}")


SCENARIOS: dict[str, Callable[[Instance, Ledger], None]] = {
    "clean": lambda _instance, _ledger: None,
    "edit": _sql("UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 234"),
    "payload_edit": _sql("""UPDATE ledger_entries SET payload = '{"i":1}' WHERE seq = 10"""),
    "delete": _sql("DELETE FROM ledger_entries WHERE seq = 377"),
    "delete_first": _sql("DELETE FROM ledger_entries WHERE seq = 1"),
    "insert": _insert,
    "reorder": _sql(
        "UPDATE ledger_entries SET seq = -1 WHERE seq = 300",
        "UPDATE ledger_entries SET seq = 300 WHERE seq = 301",
        "UPDATE ledger_entries SET seq = 301 WHERE seq = -1",
    ),
    "seq_zero": _sql("UPDATE ledger_entries SET seq = 0 WHERE seq = 1"),
    "seq_negative": _sql("UPDATE ledger_entries SET seq = -5 WHERE seq = 3"),
    "truncate": _sql("DELETE FROM ledger_entries WHERE seq > 450"),
    "truncate_all": _sql("DELETE FROM ledger_entries"),
    "single_entry": _sql("DELETE FROM ledger_entries WHERE seq > 1"),
    "truncate_with_checkpoints": _sql(
        "DELETE FROM ledger_entries WHERE seq > 500", "DELETE FROM ledger_checkpoints WHERE tree_size > 500"
    ),
    "rewrite": _rewrite,
    "resigned_checkpoint": _resign,
    "foreign_key": _sql(f"UPDATE ledger_checkpoints SET public_key = '{'cd' * 32}' WHERE tree_size = 205"),
    "bad_signature": _sql(
        f"UPDATE ledger_checkpoints SET signature = '{'00' * 64}' WHERE tree_size = 105",
        "UPDATE ledger_checkpoints SET signature = 'zz' WHERE tree_size = 205",
    ),
    "checkpoint_root": _sql(f"UPDATE ledger_checkpoints SET root = '{'ef' * 32}' WHERE tree_size = 305"),
    "extra_checkpoints": _extra_checkpoints,
    "node_edit": _sql(f"UPDATE ledger_nodes SET hash = '{'ab' * 32}' WHERE level = 8 AND idx = 1"),
    "node_upper": _sql("UPDATE ledger_nodes SET hash = upper(hash) WHERE level = 9"),
    "node_delete": _sql("DELETE FROM ledger_nodes WHERE level = 8 AND idx = 0"),
    "node_beyond": _sql(
        f"INSERT INTO ledger_nodes (level, idx, hash) VALUES (8, 40, '{'ab' * 32}')",
        f"INSERT INTO ledger_nodes (level, idx, hash) VALUES (12, 0, '{'cd' * 32}')",
    ),
    "hash_non_hex": _set("hash", "zz" * 32, 50),
    "hash_upper": _sql("UPDATE ledger_entries SET hash = upper(hash) WHERE seq = 60"),
    "hash_short": _set("hash", "abcd", 61),
    "hash_empty": _set("hash", "", 62),
    "hash_odd": _set("hash", "a" * 63, 63),
    "hash_spaced": _spaced_hash,
    "hash_unicode": _set("hash", "é" * 32, 65),
    "prev_hash_non_hex": _set("prev_hash", "xyz", 70),
    "prev_hash_upper": _sql("UPDATE ledger_entries SET prev_hash = upper(prev_hash) WHERE seq = 71"),
    "subject_specials": _set("subject", 'a"b\\c\n\t\x01控制字符😀', 90),
    "actor_quote": _set("actor", 'say "hi"', 91),
    "role_control": _set("role", "op\x1f", 92),
    "action_specials": _set("action", 'job."x"', 93),
    "time_quotes": _set("time", '2026"x\\', 94),
    "payload_not_json": _set("payload", "not json \n 控制", 95),
    "specials_appended": _specials_appended,
    "many_problems": _sql("UPDATE ledger_entries SET actor = 'x'", f"UPDATE ledger_nodes SET hash = '{'ab' * 32}'"),
}


# Also read through ADBC in a reader process on SQLite (small ledgers are read in this process).
THROUGH_READER_PROCESS = ("clean", "insert", "truncate_all", "single_entry", "hash_non_hex", "subject_specials")


def saved_tables(instance: Instance) -> dict[Table, list[dict[str, object]]]:
    with instance.engine.connect() as connection:
        return {table: [dict(r._mapping) for r in connection.execute(select(table))] for table in LEDGER_TABLES}


def restore(instance: Instance, saved: dict[Table, list[dict[str, object]]]) -> None:
    """Back to the saved rows: DELETE past the append-only guards, then plain INSERTs (allowed)."""
    tamper(instance.engine, *(f"DELETE FROM {table.name}" for table in LEDGER_TABLES))
    with instance.engine.begin() as connection:
        for table, rows in saved.items():
            connection.execute(insert(table), rows)


def test_same_report_as_the_reference(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scenario from one filled ledger, restored in between (an instance per scenario is slow)."""
    ledger = make_ledger(instance)
    fill(ledger, FILL)
    saved = saved_tables(instance)
    url = instance.engine.url.render_as_string(hide_password=False)
    for name, scenario in SCENARIOS.items():
        restore(instance, saved)
        scenario(instance, ledger)
        reference = assert_same(instance, ledger, name)
        assert reference.ok == (name in ("clean", "specials_appended")), name
        if instance.engine.dialect.name == "sqlite" and name in THROUGH_READER_PROCESS:
            with monkeypatch.context() as patch:
                patch.setattr(fastread, "SQLITE_IN_PROCESS_ROWS", 0)
                fast = fast_verify(url, ledger.public_key, ledger.public_key_hex, path="duckdb")
            assert (name, fast.as_json()) == (name, reference.as_json())


def test_nul_characters_on_sqlite(sqlite_instance: Instance) -> None:
    """PostgreSQL refuses NUL in text; SQLite keeps it, and Python escapes it as \\u0000."""
    instance = sqlite_instance
    ledger = make_ledger(instance)
    fill(ledger, 300)
    ledger.append(actor="a\x00b", role="operator", action="job.ran", subject="\x00", payload={"\x00": "\x00"})
    assert assert_same(instance, ledger).ok
    set_value(instance, "ledger_entries", "time", "t\x00", "seq = 7")
    set_value(instance, "ledger_entries", "subject", "s\x00", "seq = 8")
    assert not assert_same(instance, ledger).ok


def test_storage_the_fast_path_hands_to_the_reference(
    sqlite_instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite values of another storage class than the schema's: the reference itself answers."""
    instance = sqlite_instance
    ledger = make_ledger(instance)
    fill(ledger, 300)
    tamper(
        instance.engine,
        "UPDATE ledger_entries SET actor = CAST(actor AS BLOB) WHERE seq = 3",
        "UPDATE ledger_nodes SET hash = CAST(hash AS BLOB) WHERE level = 8",
    )
    assert not assert_same(instance, ledger, method="reference").ok
    monkeypatch.setattr(fastread, "SQLITE_IN_PROCESS_ROWS", 0)  # the same through the reader process
    assert not assert_same(instance, ledger, method="reference").ok


def test_text_that_is_not_utf8_is_reported_like_the_reference(
    sqlite_instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = sqlite_instance
    ledger = make_ledger(instance)
    fill(ledger, 20)
    tamper(instance.engine, "UPDATE ledger_entries SET subject = CAST(X'FF61' AS TEXT) WHERE seq = 4")
    url = instance.engine.url.render_as_string(hide_password=False)
    expected = ledger.verify(reference=True)  # reported, not raised (FINDINGS21a F2)
    assert Problem(4, "unreadable", "entry 4 stores text that is not UTF-8 in subject") in expected.problems
    for path in fast_paths(instance):
        report = fast_verify(url, ledger.public_key, ledger.public_key_hex, path=path)
        assert report.method == "reference" and report == expected
    monkeypatch.setattr(fastread, "SQLITE_IN_PROCESS_ROWS", 0)  # ADBC reads the bytes; the reference decides
    report = fast_verify(url, ledger.public_key, ledger.public_key_hex, path="duckdb")
    assert report.method == "reference" and report == expected


def test_merkle_problems_interleave_at_the_reference_chunks(sqlite_instance: Instance) -> None:
    """The reference reports a 50,000-row chunk's Merkle problems after that chunk's row problems.

    Entry 49,990's hash is replaced: its row problems fall in the first chunk, while the
    checkpoint of size 50,005 and the nodes over it complete in the second, after the row
    problem of entry 50,100 there. SQLite only: at this size it is read by the ADBC reader
    process, while PostgreSQL's reading is the same at any size and the ordering is not the
    database's (and the test time budget is tight).
    """
    instance = sqlite_instance
    ledger = make_ledger(instance, every=1000)
    fill(ledger, 50_400)
    tamper(
        instance.engine,
        f"UPDATE ledger_entries SET hash = '{'ab' * 32}' WHERE seq = 49990",
        "UPDATE ledger_entries SET actor = 'mallory' WHERE seq IN (49995, 50100)",
    )
    report = assert_same(instance, ledger)
    assert [(p.seq, p.kind) for p in report.problems][:5] == [
        (49990, "hash"),
        (49991, "link"),
        (49995, "hash"),
        (50100, "hash"),
        (49006, "checkpoint_root"),
    ]


def _seam(instance: Instance) -> int:
    """The last seq of the first reader's half: fastread splits the entries between two connections there."""
    with instance.engine.connect() as connection:
        low, high = connection.execute(select(func.min(entries.c.seq), func.max(entries.c.seq))).one()
    return int(low) + (int(high) - int(low)) // 2


def _seam_scenarios(last: int) -> dict[str, Callable[[Instance, Ledger], None]]:
    """Tampering on either side of the seam between the two readers, and across it."""
    first = last + 1
    found: dict[str, Callable[[Instance, Ledger], None]] = {
        "clean": lambda _instance, _ledger: None,
        "delete_last_of_first_half": _sql(f"DELETE FROM ledger_entries WHERE seq = {last}"),
        "delete_first_of_second_half": _sql(f"DELETE FROM ledger_entries WHERE seq = {first}"),
        "delete_both_sides": _sql(f"DELETE FROM ledger_entries WHERE seq IN ({last}, {first})"),
        "reorder_across": _sql(
            f"UPDATE ledger_entries SET seq = -1 WHERE seq = {last}",
            f"UPDATE ledger_entries SET seq = {last} WHERE seq = {first}",
            f"UPDATE ledger_entries SET seq = {first} WHERE seq = -1",
        ),
        "link_across": _set("prev_hash", "ab" * 32, first),
        "hash_before_seam": _set("hash", "cd" * 32, last),
        "checkpoint_forged": _sql(f"UPDATE ledger_checkpoints SET root = '{'ef' * 32}' WHERE tree_size = {last + 2}"),
    }
    for column in ("time", "actor", "role", "action", "subject", "payload"):
        found[f"{column}_before_seam"] = _set(column, "x", last)
        found[f"{column}_after_seam"] = _set(column, "y", first)
    return found


def test_tampering_at_the_seam_between_the_two_readers(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entries are read by two connections in halves (in a reader process on SQLite): each kind of
    tampering next to, and across, the cut gives the reference's report."""
    ledger = make_ledger(instance)
    fill(ledger, FILL)
    saved = saved_tables(instance)
    url = instance.engine.url.render_as_string(hide_password=False)
    last = _seam(instance)
    assert last == 303  # entries 1..605: halves 1..303 and 304..605; checkpoint 305 straddles the seam
    monkeypatch.setattr(fastread, "SQLITE_IN_PROCESS_ROWS", 0)
    for name, scenario in _seam_scenarios(last).items():
        restore(instance, saved)
        scenario(instance, ledger)
        reference = ledger.verify(reference=True)
        fast = fast_verify(url, ledger.public_key, ledger.public_key_hex, path="duckdb")
        assert (name, fast.as_json(), fast.truncated_problems) == (
            name,
            reference.as_json(),
            reference.truncated_problems,
        )
        assert reference.ok == (name == "clean"), name


# --- arbitrary text ---------------------------------------------------------------------------


def texts(dialect: str, min_size: int = 1, max_size: int = 30) -> st.SearchStrategy[str]:
    """Any text the database can hold, heavy on what JSON must escape and on non-ASCII."""
    specials = [c for c in SPECIAL if dialect == "sqlite" or c != "\x00"]
    banned = "" if dialect == "sqlite" else "\x00"
    alphabet = st.one_of(st.sampled_from(specials), st.characters(codec="utf-8", exclude_characters=banned))
    return st.text(alphabet, min_size=min_size, max_size=max_size)


def json_values(dialect: str) -> st.SearchStrategy[object]:
    leaves = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts(dialect, 0)
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(texts(dialect, 0, 8), children, max_size=3),
        max_leaves=6,
    )


def records(dialect: str) -> st.SearchStrategy[Record]:
    return st.builds(
        Record,
        actor=texts(dialect),
        role=texts(dialect),
        action=st.from_regex(r"[a-z][a-z0-9_]{0,5}(\.[a-z][a-z0-9_]{0,5}){1,2}", fullmatch=True),
        subject=texts(dialect),
        payload=st.dictionaries(texts(dialect, 0, 8), json_values(dialect), max_size=4),
    )


def test_arbitrary_text_appends_verify_the_same(instance: Instance) -> None:
    ledger = make_ledger(instance, every=3)  # checkpoints every few entries: many roots to fold
    dialect = instance.engine.dialect.name

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(records(dialect), min_size=1, max_size=4))
    def check(batch: list[Record]) -> None:
        ledger.append_many(batch)
        assert assert_same(instance, ledger).ok

    check()


def test_arbitrary_tampering_verifies_the_same(instance: Instance) -> None:
    ledger = make_ledger(instance, every=50)
    fill(ledger, 300)  # a stored level-8 node, checkpoints on both sides of it
    dialect = instance.engine.dialect.name
    hexish = st.text("0123456789abcdefABCDEF \n", min_size=0, max_size=66)

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        column=st.sampled_from(["time", "actor", "role", "action", "subject", "payload", "prev_hash", "hash"]),
        seq=st.integers(1, 306),
        value=st.one_of(texts(dialect, 0), hexish),
    )
    def check(column: str, seq: int, value: str) -> None:
        set_value(instance, "ledger_entries", column, value[: LIMITS.get(column, 256)], f"seq = {seq}")
        assert_same(instance, ledger)

    check()
