"""What the remote-worker tests share (issue 19): a directory standing in for a bucket, the copy's row, a
stand-in runner, a worker's own home, and an instance licensed with the runner's markers.

Why a module of its own: ``test_worker_remote`` and ``test_worker_remote_guard`` both build on these, and shared
helpers live in ``tests/*_support.py`` modules rather than in a test module another one imports.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from sqlalchemy import text

from app import Instance
from app.keys import DATA_MASTER_KEY, PEPPER, SECRETS_DIR
from core import LocalStorage, StorageError, StoredObject
from tests.job_worker_proc import MARKERS_ENV, FakeResult, licensed

COPY = "datasets/traffic/v1.parquet"


def licensed_with_markers(instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Instance:
    """``instance`` with :func:`tests.job_worker_proc.licensed`'s dataset, operator and licence; the stand-in
    runner's markers in a directory of this test's own (xdist-safe)."""
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(MARKERS_ENV, str(markers))
    licensed(instance.registry, instance.home)
    return instance


class StorageAccessDeniedError(StorageError):
    """What the worker role's credentials get under ``vault/`` and ``secrets/``."""


class Bucket(LocalStorage):
    """A directory as an object store: no local paths (every object staged and put, as on S3); refuses the
    worker role's forbidden prefixes, and records every key it was asked for."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked: list[str] = []

    def _guard(self, key: str) -> None:
        self.asked.append(key)
        if key.split("/")[0] in ("vault", "secrets"):
            raise StorageAccessDeniedError(f"access denied to {key}: the worker role cannot reach it")

    def put(self, key: str, data: bytes | Path | BinaryIO) -> StoredObject:
        self._guard(key)
        return super().put(key, data)

    def open(self, key: str) -> BinaryIO:
        self._guard(key)
        return super().open(key)

    def local_path(self, key: str) -> Path | None:
        return None


def record(instance: Instance, key: str, digest: str) -> None:
    """The copy's rows record ``digest`` (the test fixture's rows record a placeholder)."""
    with instance.engine.begin() as connection:
        for table in ("dataset_versions", "licence_copies"):
            connection.execute(text(f"UPDATE {table} SET content_sha256 = :d WHERE path = :p"), {"d": digest, "p": key})


class Runs:
    """A runner standing in for the sandbox: records what it was given; writes one table."""

    def __init__(self) -> None:
        self.seen: list[dict[str, bytes]] = []

    def __call__(self, kind: str, code: str, *, datasets: Mapping[str, Path], out_dir: Path, limits: Any = None) -> Any:
        self.seen.append({name: path.read_bytes() for name, path in datasets.items()})
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "result.csv").write_text("区县,n\n尖山区,12\n", encoding="utf-8")
        return FakeResult(outputs=[{"name": "result.csv", "bytes": 22, "sha256": "0" * 64}], stdout="ok\n")


def worker_home(server: Instance, tmp_path: Path) -> Path:
    """A worker's own home: its data master key and pepper (0600), nothing else (no vault key, no marker)."""
    home = tmp_path / "worker-home"
    (home / SECRETS_DIR).mkdir(parents=True, mode=0o700)
    for name in (DATA_MASTER_KEY, PEPPER):
        shutil.copyfile(server.home / SECRETS_DIR / name, home / SECRETS_DIR / name)
        os.chmod(home / SECRETS_DIR / name, 0o600)
    return home
