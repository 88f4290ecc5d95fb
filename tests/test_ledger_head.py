"""The ledger head remembered outside the database (red team 21d F8): a tail cut off the database, with or
without the checkpoints and Merkle nodes over it, no longer verifies ok; on SQLite and PostgreSQL.

A hostile DBA writes the database but not the home, where each commit's head is kept (``ledger.head``,
placed by ``app.ledger_whole.remembered_head_file``). Both verifiers must agree on every report."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

from app import Instance
from app.ledger_whole import remembered_head_file
from ledger import Ledger, LedgerVerifier, Record, metadata
from ledger.head import RememberedHead, read_head, remember_head
from tests.ledger_support import tamper


def _fill(ledger: Ledger, n: int) -> None:
    ledger.append_many(Record("op", "operator", "job.submitted", f"job:{i}", {"i": i}) for i in range(n))


def _report(instance: Instance) -> dict[str, object]:
    """The report both verifiers give (they must agree)."""
    fast, reference = instance.ledger.verify(), instance.ledger.verify(reference=True)
    assert fast.as_json() == reference.as_json()
    return fast.as_json()


def _kinds(report: dict[str, object]) -> set[str]:
    return {problem["kind"] for problem in report["problems"]}  # type: ignore[attr-defined]


def test_an_untouched_ledger_verifies_with_its_remembered_head(instance: Instance) -> None:
    _fill(instance.ledger, 3)
    held = read_head(remembered_head_file(instance.home))
    assert held is not None and held.tree_size == instance.ledger.size()
    report = _report(instance)
    assert report["ok"] is True and "warnings" not in report, report


def test_a_tail_cut_without_its_checkpoint_is_truncated(instance: Instance) -> None:
    """The two newest entries, after the last checkpoint, removed with every node: the rest verifies on its
    own, and only the remembered head shows the log is shorter than what was committed."""
    _fill(instance.ledger, 3)
    size = instance.ledger.size()
    assert instance.ledger.latest_checkpoint().tree_size < size - 1  # type: ignore[union-attr]
    tamper(instance.engine, f"DELETE FROM ledger_entries WHERE seq > {size - 2}", "DELETE FROM ledger_nodes")
    report = _report(instance)
    assert report["ok"] is False and _kinds(report) == {"truncated"}, report
    assert [p["seq"] for p in report["problems"]] == [size - 1], report  # type: ignore[attr-defined]  # the first missing


def test_a_tail_cut_with_its_checkpoint_is_truncated(instance: Instance) -> None:
    _fill(instance.ledger, 3)
    size = instance.ledger.checkpoint().tree_size
    tamper(
        instance.engine,
        f"DELETE FROM ledger_entries WHERE seq = {size}",
        f"DELETE FROM ledger_checkpoints WHERE tree_size = {size}",
        "DELETE FROM ledger_nodes",
    )
    report = _report(instance)
    assert report["ok"] is False and _kinds(report) == {"truncated"}, report


def test_appends_after_a_cut_keep_the_evidence(instance: Instance) -> None:
    """The instance goes on appending past the cut: the remembered head moves on, but the cut it found
    before its first append stays in the file, and every verification still reports it."""
    _fill(instance.ledger, 3)
    size = instance.ledger.size()
    tamper(instance.engine, f"DELETE FROM ledger_entries WHERE seq > {size - 2}", "DELETE FROM ledger_nodes")
    _fill(instance.ledger, 5)
    assert instance.ledger.size() > size
    report = _report(instance)
    assert report["ok"] is False and "truncated" in _kinds(report), report


def test_a_missing_head_file_is_a_warning(instance: Instance) -> None:
    """An older home, or a machine whose writers never committed: the database alone says nothing either
    way, so ``ok`` stands with a warning that says what could not be checked; the next append writes it."""
    remembered_head_file(instance.home).unlink()
    report = _report(instance)
    assert report["ok"] is True
    assert len(report["warnings"]) == 1 and "no remembered ledger head" in report["warnings"][0]  # type: ignore[arg-type,index]
    _fill(instance.ledger, 1)
    assert "warnings" not in _report(instance)


def test_a_head_whose_root_does_not_match_is_rolled_back(instance: Instance) -> None:
    """The database holds as many entries as remembered, but not those: its root at that size differs."""
    path = remembered_head_file(instance.home)
    data = json.loads(path.read_text())
    data["root"] = "ab" * 32
    path.write_text(json.dumps(data))
    report = _report(instance)
    assert report["ok"] is False and _kinds(report) == {"rolled_back"}, report


def test_an_unreadable_head_file_fails_closed(instance: Instance) -> None:
    remembered_head_file(instance.home).write_text("not json")
    report = _report(instance)
    assert report["ok"] is False and _kinds(report) == {"remembered_head"}, report


def test_the_head_file_keeps_the_larger_head(tmp_path: Path) -> None:
    """A writer that committed earlier but writes its head later must not move the file backwards."""
    path = tmp_path / "secrets" / "head.json"
    remember_head(path, RememberedHead(7, "77" * 32))
    remember_head(path, RememberedHead(5, "55" * 32))
    assert read_head(path) == RememberedHead(7, "77" * 32)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700


def test_concurrent_writers_leave_the_head_of_the_database(tmp_path: Path) -> None:
    """Two ledgers (two engines, as two processes have) append to one database and remember in one file,
    interleaving: the file ends at the database's head, and the database verifies against it."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    key, path = Ed25519PrivateKey.generate(), tmp_path / "secrets" / "head.json"
    metadata.create_all(create_engine(url))
    writers = [Ledger(create_engine(url), key, origin="test", head_file=path) for _ in range(2)]
    writers[0].append(actor="a", role="r", action="test.started", subject="s")
    errors: list[BaseException] = []

    def run(ledger: Ledger) -> None:
        try:
            for i in range(25):
                ledger.append(actor="a", role="r", action="test.stepped", subject=f"s{i}")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(ledger,)) for ledger in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    held = read_head(path)
    assert held is not None and held.tree_size == writers[0].size() == 51 and held.cut is None
    report = LedgerVerifier(create_engine(url), key.public_key(), head_file=path).verify()
    assert report.ok and not report.warnings, report.as_json()


def test_a_file_uri_database_verifies_on_the_fast_path(tmp_path: Path) -> None:
    """``sqlite:///file:...?uri=true`` (which SQLAlchemy and Settings accept) made the fast verifier refuse
    the database ("needs an SQLite database file"): ``ledger verify`` failed unless ``--reference``."""
    key = Ed25519PrivateKey.generate()
    url = f"sqlite:///file:{tmp_path / 'ledger.db'}?mode=rwc&uri=true"
    metadata.create_all(create_engine(url))
    ledger = Ledger(create_engine(url), key, origin="test")
    ledger.append(actor="a", role="r", action="test.started", subject="s")
    ledger.checkpoint()
    report = LedgerVerifier(create_engine(url), key.public_key()).verify()
    assert report.ok and report.entries == 1 and report.method != "reference", report.as_json()


@pytest.mark.parametrize("url", ["sqlite:///file::memory:?uri=true", "sqlite:///file:x.db?mode=memory&uri=true"])
def test_an_in_memory_file_uri_is_no_file(url: str) -> None:
    from ledger.native import sqlite_file

    with pytest.raises(ValueError, match="needs an SQLite database file"):
        sqlite_file(url)


def test_a_head_that_cannot_be_written_does_not_undo_the_commit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The append committed before its head is remembered: failing to write the file (here its directory is a
    file) must not tell the caller the entry failed; it is logged, and verify, which cannot read that memory
    either, fails closed on it."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    metadata.create_all(create_engine(url))
    (tmp_path / "secrets").write_text("not a directory")
    key, path = Ed25519PrivateKey.generate(), tmp_path / "secrets" / "head.json"
    ledger = Ledger(create_engine(url), key, origin="test", head_file=path)
    entry = ledger.append(actor="a", role="r", action="test.started", subject="s")
    assert entry.seq == 1 and ledger.size() == 1
    assert "could not remember the ledger head" in caplog.text
    report = ledger.verify()
    assert [p.kind for p in report.problems] == ["remembered_head"], report.as_json()
