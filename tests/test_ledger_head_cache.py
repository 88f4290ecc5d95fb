"""The remembered head as a writer process last saw it (ledger23): an append no longer reads and parses the
head file the process itself wrote, yet whatever changed since (the database cut behind its back, another
writer's file renamed over it, the file rewritten in place) is seen before the next append (red team 21d F8,
redteam22 T1: a cut the next append does not note is erased by the head moving onto the shorter log)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

import ledger.head as head_module
from ledger import Ledger, LedgerVerifier, Record, metadata
from ledger.head import RememberedHead, read_head, remember_head
from tests.ledger_support import tamper


def _ledger(tmp_path: Path) -> tuple[Ledger, Path, Ed25519PrivateKey]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    metadata.create_all(create_engine(url))
    key, path = Ed25519PrivateKey.generate(), tmp_path / "secrets" / "ledger_head.json"
    return Ledger(create_engine(url), key, origin="test", head_file=path), path, key


def _fill(ledger: Ledger, n: int) -> None:
    for i in range(n):  # one transaction each, as the instance's appends are
        ledger.append_many([Record("op", "operator", "job.submitted", f"job:{i}", {"i": i})])


def _kinds(ledger: Ledger, path: Path, key: Ed25519PrivateKey) -> set[str]:
    report = LedgerVerifier(ledger._engine, key.public_key(), head_file=path).verify()
    return {problem.kind for problem in report.problems}


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every time the head file is opened and parsed from now on."""
    opened: list[Path] = []
    load = head_module._load

    def counting(path: Path) -> tuple[RememberedHead | None, int | None, bytes]:
        opened.append(path)
        return load(path)

    monkeypatch.setattr(head_module, "_load", counting)
    return opened


def test_an_append_does_not_reread_the_file_its_process_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, path, key = _ledger(tmp_path)
    _fill(ledger, 2)
    opened = _reads(monkeypatch)
    _fill(ledger, 3)
    assert opened == []
    held = read_head(path)
    assert held is not None and held.tree_size == ledger.size() == 5 and held.cut is None
    assert _kinds(ledger, path, key) == set()


def test_a_cut_made_after_the_cache_was_filled_is_still_seen(tmp_path: Path) -> None:
    """Only the file is cached: the database is checked against it before every append, so a tail cut
    (with its nodes) between two appends of this process is noted, and stays noted as the log grows."""
    ledger, path, key = _ledger(tmp_path)
    _fill(ledger, 5)
    tamper(ledger._engine, "DELETE FROM ledger_entries WHERE seq > 3", "DELETE FROM ledger_nodes")
    ledger._frontier = None  # another process's view: nothing of this log in memory
    _fill(ledger, 4)
    held = read_head(path)
    assert held is not None and held.cut is not None and (held.cut["from"], held.cut["to"]) == (5, 3), held
    assert "truncated" in _kinds(ledger, path, key)


def _same_length_other_root(path: Path) -> bytes:
    data = json.loads(path.read_bytes())
    data["root"] = "ab" * 32
    return json.dumps(data, sort_keys=True).encode()


def test_another_writers_file_renamed_over_the_cached_one_is_read(tmp_path: Path) -> None:
    """Another process remembers a head (its own rename over the file, the same size in bytes): this
    process's next append must compare the database with that head, not with the one it wrote."""
    ledger, path, key = _ledger(tmp_path)
    _fill(ledger, 3)
    other = path.with_name("other.tmp")
    other.write_bytes(_same_length_other_root(path))
    os.replace(other, path)
    _fill(ledger, 1)
    held = read_head(path)
    assert held is not None and held.cut is not None and held.cut["root"] == "ab" * 32, held
    assert "rolled_back" in _kinds(ledger, path, key)


def test_the_file_rewritten_in_place_is_read(tmp_path: Path) -> None:
    """Writers only rename, but the cache must not trust that: the same inode with other bytes (at once, as
    fast as a file's times cannot tell apart) is read again."""
    ledger, path, key = _ledger(tmp_path)
    _fill(ledger, 3)
    changed = _same_length_other_root(path)
    with path.open("r+b") as file:
        file.write(changed)
    _fill(ledger, 1)
    held = read_head(path)
    assert held is not None and held.cut is not None and held.cut["root"] == "ab" * 32, held
    assert "rolled_back" in _kinds(ledger, path, key)


def test_the_process_keeps_few_files_open(tmp_path: Path) -> None:
    """A process that wrote many homes' heads (a test run) keeps only the last few files open."""
    before = len(os.listdir("/proc/self/fd"))
    for i in range(3 * head_module._SEEN_MAX):
        remember_head(tmp_path / f"home{i}" / "head.json", RememberedHead(1, "11" * 32))
    assert len(os.listdir("/proc/self/fd")) <= before + head_module._SEEN_MAX
    for i in range(3 * head_module._SEEN_MAX):  # and every one still reads back
        assert read_head(tmp_path / f"home{i}" / "head.json") == RememberedHead(1, "11" * 32)


def test_a_child_forked_while_the_cache_is_locked_still_writes_its_head(tmp_path: Path) -> None:
    """A process forks (a worker's pool) while one of its threads holds the cache's lock: the child's own
    appends must not wait on a lock no thread of its will ever release."""
    path = tmp_path / "secrets" / "head.json"
    remember_head(path, RememberedHead(1, "11" * 32))
    with head_module._seen_lock:
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's outcome is its exit status
            signal.alarm(20)  # a child stuck on the lock dies of SIGALRM instead of hanging the test
            code = 1
            try:
                remember_head(path, RememberedHead(2, "22" * 32))
                code = 0
            finally:
                os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert read_head(path) == RememberedHead(2, "22" * 32)
