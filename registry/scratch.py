"""An ingest's scratch space: sealed with a key that lives only in the ingesting process, swept at start.

Why: an upload is the raw dataset with every personal identifier in it. Written in clear to a
temporary file, a ``kill -9`` (or an OOM kill, or a power cut) during the ingest left it in the
instance home forever, outside the vault's encryption (黑龙江 第三十八条) and outside any record.

So the scratch copy is written in the vault's file format (:class:`registry.vault.Sealer`) under a
fresh random key held only in memory: once the process dies, what it left on disk is ciphertext
nobody can read. Each scratch directory ``HOME/.scratch/ingest-PID-…`` holds an exclusive
``flock`` on its ``lock`` file while its ingest runs; the kernel drops the lock when the process
dies, however it dies, so :func:`sweep` (run when an instance opens: serve, worker, every CLI
command) removes exactly the directories whose owner is gone and leaves a running ingest alone,
even one in another process. A scratch also notes the dataset whose vault file its ingest is about to
write, so the sweeper can tell an orphan vault file (written, then killed before the catalog row was
committed) from one a live ingest is about to register.

The same scratch is every multi-step write's intent record (issue 17): a desensitization, a release's
product store, a licence's destruction note (:meth:`Scratch.note_paths`) the home-relative paths they
may create or move before their transaction commits, and release the scratch only after it has
committed or rolled back. :mod:`registry.leftovers` then tells what a dead operation left (swept)
from what a live one is writing (spared).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from registry.vault import DIRECTORY as VAULT_DIRECTORY
from registry.vault import Sealer, unseal

DIRECTORY = ".scratch"
LEGACY_PREFIX = ".ingest-"  # the clear-text scratch of earlier releases (app/api/ingest.py)
LOCK = "lock"
NOTE = "pending.json"
GRACE_SECONDS = 60.0  # a directory without a lock file younger than this may be one being created


class ScratchWriter:
    """A sealed file being written: ``write`` plaintext, ``close`` to seal its last frame."""

    def __init__(self, out: BinaryIO, key: bytes) -> None:
        self._out = out
        self._sealer = Sealer(key, out)

    @property
    def size(self) -> int:
        return self._sealer.size

    def write(self, data: bytes) -> None:
        self._sealer.write(data)

    def close(self) -> tuple[str, int]:
        digest = self._sealer.finish()
        self._out.close()
        return digest


class Scratch:
    """One ingest's private directory (0700), its files sealed, its liveness an exclusive flock."""

    def __init__(self, home: Path, purpose: str = "ingest") -> None:
        base = Path(home) / DIRECTORY
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"{purpose}-{os.getpid()}-", dir=base))
        self._lock: int | None = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self._key = secrets.token_bytes(32)  # never written anywhere: dies with the process
        self._note: dict[str, object] = {"paths": []}

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def writer(self, name: str) -> ScratchWriter:
        fd = os.open(self.path / f"{name}.kyv", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return ScratchWriter(os.fdopen(fd, "wb"), self._key)

    def read(self, name: str) -> bytes:
        """The plaintext of a sealed scratch file (in memory only)."""
        buffer = io.BytesIO()
        for chunk in unseal(self.path / f"{name}.kyv", self._key, label=f"scratch file {name}"):
            buffer.write(chunk)
        return buffer.getvalue()

    def note_pending(self, dataset: str) -> None:
        """Record, before the vault file is written, which dataset's vault directory this ingest writes to."""
        self._note["dataset"] = dataset
        self.note_paths(f"{VAULT_DIRECTORY}/{dataset}/")

    def note_paths(self, *prefixes: str) -> None:
        """Record, before writing them, the home-relative paths (prefixes) this operation may create."""
        paths = self._note["paths"]
        assert isinstance(paths, list)
        paths.extend(prefixes)
        self._write_note()

    def _write_note(self) -> None:
        temporary = self.path / f".{NOTE}"
        temporary.write_text(json.dumps(self._note), encoding="utf-8")
        os.replace(temporary, self.path / NOTE)

    def close(self) -> None:
        """Remove the directory and release the lock (idempotent)."""
        if self._lock is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock)
        self._lock = None


@dataclass
class Swept:
    """What :func:`sweep` removed, and the datasets live ingests are writing vault files for."""

    removed: list[str] = field(default_factory=list)
    live_pending: set[str] = field(default_factory=set)
    live_paths: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)  # named by committed rows, absent from the home

    def is_live(self, relative: str) -> bool:
        """Whether a live operation noted ``relative`` (or a prefix of it) as its own."""
        return any(relative.startswith(prefix) for prefix in self.live_paths)


def _owner_alive(directory: Path) -> bool:
    try:
        fd = os.open(directory / LOCK, os.O_RDWR)
    except FileNotFoundError:
        with contextlib.suppress(FileNotFoundError):
            return time.time() - directory.stat().st_mtime < GRACE_SECONDS
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing the descriptor releases a lock taken on it
    return False


def sweep(home: Path) -> Swept:
    """Remove the scratch left by dead ingests (and the clear-text scratch of earlier releases)."""
    home = Path(home)
    swept = Swept()
    base = home / DIRECTORY
    candidates = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    for directory in candidates:
        if _owner_alive(directory):
            with contextlib.suppress(OSError, ValueError, TypeError):
                note = json.loads((directory / NOTE).read_text(encoding="utf-8"))
                if note.get("dataset") is not None:
                    swept.live_pending.add(str(note["dataset"]))
                swept.live_paths.update(str(p) for p in note.get("paths", []) if p)
            continue
        shutil.rmtree(directory, ignore_errors=True)
        swept.removed.append(directory.relative_to(home).as_posix())
    if home.is_dir():
        for legacy in sorted(home.glob(f"{LEGACY_PREFIX}*")):
            if legacy.is_dir():
                shutil.rmtree(legacy, ignore_errors=True)
                swept.removed.append(legacy.name)
    return swept


__all__ = ["DIRECTORY", "Scratch", "ScratchWriter", "Swept", "sweep"]
