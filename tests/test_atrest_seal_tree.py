"""``AtRest.seal_tree`` batched (issue 21, throughput): one key look-up per tree, every sealed file durable
(fsynced) before it is renamed over its plaintext, every changed directory fsynced after the renames, and
nothing half-written left when a file cannot be sealed. Crash safety is what tests/test_crash_safety.py
checks end to end; these check the order of the durable steps themselves.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, cast

import pytest

from core import Actor
from registry import DataKeys, VaultError, is_sealed
from registry import atrest as atrest_module
from registry.atrest import AtRest

HOST = Actor("host:test", "host")
KEY_ID, KEY = secrets.token_bytes(16), secrets.token_bytes(32)


class CountingKeys:
    """A scope's one live key, counting how often a writer asks for it (the real one is a database read)."""

    def __init__(self) -> None:
        self.asked = 0

    def for_writing(self, scope: str, *, by: Actor) -> tuple[bytes, bytes]:
        self.asked += 1
        return KEY_ID, KEY

    def resolve(self, key_id: bytes | None) -> bytes:
        if key_id != KEY_ID:
            raise VaultError("unknown key")
        return KEY


def _tree(root: Path) -> dict[Path, bytes]:
    files = {
        root / "out" / "result.csv": b"n\n3\n",
        root / "out" / "deep" / "chart.svg": b"<svg/>",
        root / "stdout.txt": b"hello\n",
        root / "stderr.txt": b"",
        root / "run.json": b'{"status": "ok"}',
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


@pytest.fixture
def keys() -> CountingKeys:
    return CountingKeys()


def _at_rest(keys: CountingKeys, home: Path) -> AtRest:
    return AtRest(cast(DataKeys, keys), home)


def test_a_tree_is_sealed_whole_with_one_key_look_up(tmp_path: Path, keys: CountingKeys) -> None:
    files = _tree(tmp_path / "attempt")
    at_rest = _at_rest(keys, tmp_path)
    assert at_rest.seal_tree(tmp_path / "attempt", "licence:1", by=HOST) == len(files)
    assert keys.asked == 1
    for path, data in files.items():
        assert is_sealed(path), path
        assert at_rest.read(path) == data
        assert path.stat().st_mode & 0o777 == 0o600
    left = [p.name for p in (tmp_path / "attempt").rglob("*") if p.name.endswith(".tmp")]
    assert left == []
    assert at_rest.seal_tree(tmp_path / "attempt", "licence:1", by=HOST) == 0  # sealed ones are left as they are
    assert keys.asked == 1  # and an already sealed tree asks for no key


def test_every_file_is_durable_before_its_rename_and_every_directory_after(
    tmp_path: Path, keys: CountingKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "attempt"
    files = _tree(root)
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source: Any, target: Any) -> None:
        events.append(("replace", str(source)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    _at_rest(keys, tmp_path).seal_tree(root, "licence:1", by=HOST)

    synced = [where for what, where in events if what == "fsync"]
    renamed = [where for what, where in events if what == "replace"]
    assert len(renamed) == len(files)
    first_rename = events.index(("replace", renamed[0]))
    for twin in renamed:  # each sealed twin fsynced, and before any rename
        assert twin in synced, twin
        assert events.index(("fsync", twin)) < first_rename
    last_rename = events.index(("replace", renamed[-1]))
    directories = {str(path.parent) for path in files}
    for directory in directories:  # each directory holding a renamed file fsynced after the renames
        assert events.index(("fsync", directory)) > last_rename, directory
    assert len(synced) == len(files) + len(directories)


def test_a_file_that_cannot_be_sealed_leaves_no_twin_and_nothing_renamed(
    tmp_path: Path, keys: CountingKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "attempt"
    files = _tree(root)
    real_write = atrest_module._write_twin
    calls = []

    def failing(path: Path, key: bytes, key_id: bytes) -> Path:
        calls.append(path)
        if len(calls) == 3:
            raise VaultError("disk full")
        return real_write(path, key, key_id)

    monkeypatch.setattr(atrest_module, "_write_twin", failing)
    with pytest.raises(VaultError, match="disk full"):
        _at_rest(keys, tmp_path).seal_tree(root, "licence:1", by=HOST)
    for path, data in files.items():  # all or nothing renamed: the plaintext stays for a retry
        assert path.read_bytes() == data
    assert [p for p in root.rglob("*") if p.name.endswith(".tmp")] == []


def test_a_failing_fsync_fails_the_sealing(tmp_path: Path, keys: CountingKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "attempt"
    files = _tree(root)

    def fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output"):
        _at_rest(keys, tmp_path).seal_tree(root, "licence:1", by=HOST)
    for path, data in files.items():
        assert path.read_bytes() == data
    assert [p for p in root.rglob("*") if p.name.endswith(".tmp")] == []
