"""Every storage key the sandbox's rows refer to, for the storage sweeper (issue 19).

Why: objects are written before the row that names them commits, so a worker killed in between leaves
objects no row names; the sweeper (``core.storage_sweep``) removes those after a grace period, and must
never remove one a row still names. The sandbox's rows name: each job's outputs (``jobs.outputs[].path``),
the logs of the attempt that recorded the job's end (``stdout.txt``, ``stderr.txt``, ``run.json`` beside
``out/``: the host's and the guard's record, sealed with the outputs), and each registered product's
artifacts (``products.artifacts[].path``, written by the release review). Earlier attempts' objects are
named by no row: they never recorded their end, so they were never judged, and the sweeper takes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from sandbox.models import JobRow
from sandbox.ports import Workdir

__all__ = ["LOG_FILES", "SandboxKeys"]

#: What an attempt keeps beside its ``out/`` (``sandbox.attempt_files.keep_logs``).
LOG_FILES = ("stdout.txt", "stderr.txt", "run.json")


def _relative(path: Any) -> str | None:
    value = str(path or "")
    return value if value and not Path(value).is_absolute() else None


class SandboxKeys:
    """A ``core.ReferencedKeys``: :meth:`storage_keys` lists every key the jobs and products refer to."""

    def __init__(self, engine: Engine, home: Path, workdir: Workdir) -> None:
        self.engine = engine
        self.home = Path(home)
        self.workdir = workdir

    def storage_keys(self) -> Iterator[str]:
        """Job outputs and the logs of each job's recorded attempt, then product artifacts; raises when the
        rows cannot be read (the sweeper then deletes nothing)."""
        query = select(JobRow.id, JobRow.operator, JobRow.licence_id, JobRow.attempts, JobRow.outputs)
        with self.engine.connect() as connection:
            for job_id, operator, licence_id, attempts, outputs in connection.execute(query):
                for output in outputs or []:
                    key = _relative(output.get("path") if isinstance(output, dict) else None)
                    if key is not None:
                        yield key
                if licence_id is not None and attempts:
                    where = self.workdir(str(operator), int(licence_id)).relative_to(self.home).as_posix()
                    yield from (f"{where}/jobs/{job_id}/{attempts}/{name}" for name in LOG_FILES)
            for (artifacts,) in connection.execute(text("SELECT artifacts FROM products")):
                for artifact in json.loads(artifacts) if isinstance(artifacts, str) else artifacts or []:
                    key = _relative(artifact.get("path"))
                    if key is not None:
                        yield key
