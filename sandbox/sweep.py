"""After the job: what it left in ``/out``, reduced to plain files the host owns (``sandbox.runner``).

Why: the export guard judges exactly what the operator would receive, and a job's ``/out`` may hold
anything the job could make — symbolic links to the host, hard links, fifos, devices, hidden or
control-character names. Only plain regular files survive the sweep; everything else is removed and
reported, and what remains is handed back to the host user so no later uid-65534 process can alter it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from sandbox.mounts import is_root

_MAX_DEPTH = 16


def _kind_of(mode: int) -> str | None:
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return None
    return "special file"


def _remove(path: str, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sweep_out(out_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Keep only plain regular files in ``out_dir``; list them, remove and report everything else.

    Runs after every process of the job is gone. Symbolic links (to anything), hard links
    (a file with another name elsewhere), fifos, sockets, device files, hidden names, names with
    control characters and too-deep trees are removed; set-id and exec bits are stripped; what
    remains is handed back to the host user so no later uid-65534 process can alter it.
    """
    outputs: list[dict[str, Any]] = []
    removed: list[dict[str, str]] = []

    def visit(directory: str, prefix: str, depth: int) -> None:
        with os.scandir(directory) as listing:
            # Every name's link count is taken before any removal, so all names of a hard link go.
            entries = sorted(((e, e.stat(follow_symlinks=False)) for e in listing), key=lambda pair: pair[0].name)
        for entry, info in entries:
            name = prefix + entry.name
            why = _kind_of(info.st_mode)
            if why is None and entry.name.startswith("."):
                why = "hidden file" if stat.S_ISREG(info.st_mode) else "hidden directory"
            if why is None and any(ord(ch) < 32 or ord(ch) == 127 for ch in entry.name):
                why = "control character in name"
            if why is None and stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                why = "hard link"
            if why is None and stat.S_ISDIR(info.st_mode) and depth >= _MAX_DEPTH:
                why = "directory nesting too deep"
            if why is not None:
                _remove(entry.path, info.st_mode)
                removed.append({"name": name, "why": why})
                continue
            if stat.S_ISDIR(info.st_mode):
                os.chmod(entry.path, 0o700, follow_symlinks=False)
                visit(entry.path, name + "/", depth + 1)
                continue
            os.chmod(entry.path, 0o600, follow_symlinks=False)
            outputs.append({"name": name, "bytes": info.st_size, "sha256": _sha256(entry.path)})

    visit(str(out_dir), "", 0)
    if is_root():
        for root, dirs, files in os.walk(out_dir):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), 0, 0, follow_symlinks=False)
        os.chown(out_dir, 0, 0)
    return outputs, removed


def empty_out(out_dir: Path, why: str) -> list[dict[str, str]]:
    removed = []
    for entry in sorted(os.scandir(out_dir), key=lambda e: e.name):
        info = entry.stat(follow_symlinks=False)
        _remove(entry.path, info.st_mode)
        removed.append({"name": entry.name, "why": why})
    if is_root():
        os.chown(out_dir, 0, 0)
    return removed


__all__ = ["empty_out", "sweep_out"]
