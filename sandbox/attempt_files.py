"""What a job's attempt keeps in the home, and the worker's side of encryption at rest (issue 22, SATRE 2.8.01).

An attempt's directory (``HOME/work/<operator>/licence-<id>/jobs/<job>/<attempt>/``) holds the run's
``out``, its stdout, stderr and run record. Why a module of its own for sealing them: the worker
decides *when* (copies opened just before a run, into a private 0700 ``keyong-plain-`` directory
the runner's stager hard-links from, removed once the job's judgement is recorded; outputs sealed
after the guard judged them and before the job's end is committed), :class:`registry.AtRest`
decides *how*. The export guard reads the plaintext in the attempt's ``out`` directory, then
everything the attempt keeps (outputs, stdout, stderr, run record) is sealed under the licence's
data key: judge, then encrypt into the home.

Without an at-rest port (tests of the bare worker) files are read as they lie, but a sealed copy is
refused with a clear reason rather than handed to a job as ciphertext.

Issue 19: on a worker of another host the attempt's directory is a local scratch (never the home); once
judged and sealed, :func:`upload_attempt` puts what it keeps into the storage under the attempt's key
(``work/<operator>/licence-<id>/jobs/<job>/<attempt>/…``), before the job's row commits.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path, PurePosixPath

from core import Actor, ObjectMissingError, Storage
from registry import licence_scope
from sandbox.copy_cache import CopyUnreadableError, private_dir
from sandbox.ports import GUARD_ACTOR_NAME, AtRestPort, RunResultLike

__all__ = [
    "CopyUnreadableError",
    "keep_logs",
    "object_version",
    "plain_files",
    "remove_earlier_attempts",
    "seal_attempt",
    "upload_attempt",
]

log = logging.getLogger("keyong.worker")

#: Who seals a run's outputs (and makes the licence's data key on its first job): the worker's guard.
SEALER = Actor(GUARD_ACTOR_NAME, "agency")


def plain_files(
    stack: ExitStack, storage: Storage, at_rest: AtRestPort | None, keys: Sequence[str | Path]
) -> list[Path]:
    """Stored objects (sealed outputs or product artifacts), by key, decrypted under their own names into
    a private directory held by ``stack`` (one subdirectory each, names may repeat); missing ones are
    skipped. An absolute path is a local file (a test's fake ``released`` answer), read as it lies."""
    directory = stack.enter_context(private_dir(at_rest))
    opened: list[Path] = []
    for index, key in enumerate(keys):
        into = directory / str(index)
        into.mkdir(mode=0o700)
        name = PurePosixPath(str(key)).name
        try:
            sealed = _local_or_staged(storage, key, into / f".{name}.sealed")
        except ObjectMissingError:
            continue
        if sealed is None:
            continue
        if at_rest is None:
            opened.append(sealed.rename(into / name) if sealed.parent == into else sealed)  # never move an object
        else:
            opened.append(at_rest.decrypt_to(sealed, into / name))
    return opened


def _local_or_staged(storage: Storage, key: str | Path, staged: Path) -> Path | None:
    if isinstance(key, Path) and key.is_absolute():
        return key if key.is_file() else None
    local = storage.local_path(str(key))
    if local is not None:
        return local if local.is_file() else None
    return storage.stage(str(key), staged, sha256=None)


def object_version(storage: Storage, path: Path) -> tuple[str, int, int]:
    """A released artifact's version for a totals cache: a local file's stat, else its key (written once)."""
    local = path if path.is_absolute() else storage.local_path(path.as_posix())
    if local is not None and local.exists():
        st = local.stat()
        return (str(local), st.st_mtime_ns, st.st_size)
    return (path.as_posix(), 0, 0)


def upload_attempt(storage: Storage, where: Path, prefix: str) -> int:
    """Put every file the attempt keeps (sealed) into ``storage`` under ``prefix``, create-only; how many.

    Issue 19: the object is written before the job's row that names it commits; a worker killed between
    leaves objects no row names, which the sweeper removes after its grace period. Where the storage
    keeps objects on this file system at ``where`` already (the embedded home), nothing is copied."""
    local = storage.local_path(prefix)
    if local is not None and local.resolve() == where.resolve():
        return 0
    count = 0
    for entry in sorted(where.rglob("*")):
        if entry.is_file() and not entry.is_symlink():
            storage.put(f"{prefix}/{entry.relative_to(where).as_posix()}", entry)
            count += 1
    return count


def seal_attempt(at_rest: AtRestPort | None, where: Path, licence_id: int | None) -> int:
    """Seal every file an attempt keeps (``out/``, logs, run record) under the licence's key; how many."""
    if at_rest is None or licence_id is None or not where.is_dir():
        return 0
    return at_rest.seal_tree(where, licence_scope(licence_id), by=SEALER)


def keep_logs(where: Path, result: RunResultLike) -> None:
    """stdout, stderr and the run record beside the outputs, for the export guard and the host only
    (sealed with the outputs once judged: :func:`seal_attempt`)."""
    (where / "stdout.txt").write_text(result.stdout or "", encoding="utf-8")
    (where / "stderr.txt").write_text(result.stderr or "", encoding="utf-8")
    record = {
        "status": result.status,
        "exit_code": result.exit_code,
        "reason": result.reason,
        "wall_seconds": result.wall_seconds,
        "cpu_seconds": result.cpu_seconds,
        "max_rss_bytes": result.max_rss_bytes,
        "outputs": list(result.outputs),
        "removed": list(getattr(result, "removed", []) or []),
    }
    (where / "run.json").write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")


def remove_earlier_attempts(where: Path) -> None:
    """Remove the job's earlier attempt directories: a retried attempt never recorded its end (unjudged)."""
    for sibling in where.parent.iterdir():
        if sibling.name.isdigit() and int(sibling.name) < int(where.name):
            if sibling.is_symlink() or not sibling.is_dir():
                sibling.unlink(missing_ok=True)
            else:
                shutil.rmtree(sibling, ignore_errors=True)
            log.warning("removed %s: an attempt that never recorded its end", sibling)
