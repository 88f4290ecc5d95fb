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
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from core import Actor, RegistryError
from registry import is_sealed, licence_scope
from sandbox.ports import GUARD_ACTOR_NAME, AtRestPort, RunResultLike

__all__ = ["CopyUnreadableError", "keep_logs", "open_copies", "plain_files", "remove_earlier_attempts", "seal_attempt"]

log = logging.getLogger("keyong.worker")

#: Who seals a run's outputs (and makes the licence's data key on its first job): the worker's guard.
SEALER = Actor(GUARD_ACTOR_NAME, "agency")


class CopyUnreadableError(Exception):
    """A granted copy could not be opened (altered, its key destroyed, or no keys): the job fails closed."""


def open_copies(stack: ExitStack, at_rest: AtRestPort | None, datasets: Mapping[str, Path]) -> dict[str, Path]:
    """Each granted copy decrypted into one private directory held open by ``stack``; name -> plaintext path.

    The files are 0644 in a 0700 directory: the runner's stager hard-links them (same filesystem as
    its own staging directory) and binds them read-only for the sandbox uid; nobody else reaches them.
    """
    if at_rest is None:
        sealed = sorted(name for name, path in datasets.items() if is_sealed(path))
        if sealed:
            raise CopyUnreadableError(f"the copies of {', '.join(sealed)} are encrypted and this worker has no keys")
        return dict(datasets)
    directory = stack.enter_context(at_rest.private_dir())
    opened: dict[str, Path] = {}
    for index, (name, path) in enumerate(sorted(datasets.items())):
        try:
            opened[name] = at_rest.decrypt_to(path, directory / f"{index}.parquet", mode=0o644)
        except (RegistryError, OSError) as exc:  # altered, its key destroyed, or no master key
            raise CopyUnreadableError(f"the desensitized copy of {name} could not be opened: {exc}") from None
    return opened


def plain_files(stack: ExitStack, at_rest: AtRestPort | None, paths: Sequence[Path]) -> list[Path]:
    """``paths`` (sealed outputs or product artifacts) decrypted under their own names into a private
    directory held by ``stack`` (one subdirectory each, names may repeat); missing files are skipped."""
    if at_rest is None:
        return list(paths)
    directory = stack.enter_context(at_rest.private_dir())
    opened: list[Path] = []
    for index, path in enumerate(paths):
        if not path.is_file():
            continue
        (directory / str(index)).mkdir(mode=0o700)
        opened.append(at_rest.decrypt_to(path, directory / str(index) / path.name))
    return opened


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
