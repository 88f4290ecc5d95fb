"""Mitigations an operator applies to a judged job's tables, then has re-checked (issue 7).

ACRO offers two ways to make a table that failed statistical disclosure control releasable, and so
does Keyong: **suppression** of cells below the threshold, with secondary suppression so that
published margins cannot restore them (``sandbox.sdc.suppress_small_cells``), and **rounding** of
counts to a base (default 5, ``sandbox.sdc.round_base``). A mitigation is a job of its own (kind
``mitigation``): it reads the source job's outputs — never the data — writes the mitigated copies,
and the export guard judges them like any output, so the operator sees a fresh verdict and may
request release of the mitigated job instead of the original.

Which columns: counts are recognised as the guard's SDC rules recognise them (``count_columns``);
the grouping dimensions are the table's non-numeric columns; other numeric columns of a suppressed
cell (a mean, a sum) are suppressed with it. Files that are not tables are carried over unchanged,
so the re-check covers the whole bundle the operator would release.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import file_sha256
from sandbox.kinds import JobKind
from sandbox.runner import RunResult
from sandbox.sdc import count_columns, round_base, suppress_small_cells

if TYPE_CHECKING:
    import pandas as pd

KIND = JobKind.MITIGATION.value
TABLES = {".csv", ".parquet"}
_WHOLE_TABLE = "__keyong_all__"


@dataclass(frozen=True, slots=True)
class Mitigation:
    source_job: int
    suppress: bool = False
    round_base: int | None = None
    threshold: int = 10

    def __post_init__(self) -> None:
        if not self.suppress and self.round_base is None:
            raise ValueError("choose a mitigation: suppression and/or rounding to a base")
        if self.round_base is not None and not 2 <= self.round_base <= 1000:
            raise ValueError("the rounding base is an integer from 2 to 1000")
        if not 1 <= self.threshold <= 1000:
            raise ValueError("the suppression threshold is an integer from 1 to 1000")

    def as_code(self) -> str:
        """The job's stored code: what was applied, so the ledger's code hash proves it."""
        return json.dumps(
            {
                "source_job": self.source_job,
                "suppress": self.suppress,
                "round_base": self.round_base,
                "threshold": self.threshold,
            },
            sort_keys=True,
        )

    @classmethod
    def from_code(cls, code: str) -> Mitigation:
        data = json.loads(code)
        return cls(
            source_job=int(data["source_job"]),
            suppress=bool(data.get("suppress")),
            round_base=data.get("round_base"),
            threshold=int(data.get("threshold", 10)),
        )


def mitigate_table(frame: pd.DataFrame, mitigation: Mitigation) -> tuple[pd.DataFrame, dict[str, int]]:
    """The mitigated table and what was done (cells suppressed, counts rounded)."""
    import numpy as np
    import pandas as pd

    counts = count_columns(frame)
    done = {"suppressed": 0, "rounded": 0}
    if not counts:
        return frame, done
    out = frame
    if mitigation.suppress:
        numeric = [c for c in out.columns if pd.api.types.is_numeric_dtype(out[c])]
        dims = [str(c) for c in out.columns if c not in numeric]
        values = [str(c) for c in numeric if c != counts[0]]
        by = dims
        if len(dims) < 2:  # one dimension: its only margin is the grand total, i.e. the whole table
            out = out.assign(**{_WHOLE_TABLE: 0})
            by = [_WHOLE_TABLE]
        before = out[counts[0]].isna().sum()
        out = suppress_small_cells(out, counts[0], by, threshold=mitigation.threshold, value_columns=values)
        done["suppressed"] = int(out[counts[0]].isna().sum() - before)
        out = out.drop(columns=[_WHOLE_TABLE], errors="ignore")
    if mitigation.round_base is not None:
        present = [c for c in counts if c in out.columns]
        changed = out[present].copy()
        out = round_base(out, present, mitigation.round_base)
        done["rounded"] = int(
            np.sum(
                [
                    (pd.to_numeric(changed[c], errors="coerce") != pd.to_numeric(out[c], errors="coerce")).sum()
                    for c in present
                ]
            )
        )
    return out, done


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd
    import pyarrow.parquet as pq

    if path.suffix.lower() == ".parquet":
        return pq.read_table(path).to_pandas()
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return frame


def _write(frame: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix.lower() == ".parquet":
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    else:
        frame.to_csv(path, index=False)


def run_mitigation(mitigation: Mitigation, sources: list[Path], out_dir: Path) -> RunResult:
    """Write the mitigated copies of ``sources`` (the source job's output files) into ``out_dir``.

    Runs in the worker, not the sandbox: it reads only what the source job already wrote (which the
    guard judged) and never the data. Shaped as a sandbox run so the guard and the queue treat it alike.
    """
    import pyarrow as pa

    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    outputs: list[dict[str, Any]] = []
    try:
        for source in sources:
            target = out_dir / source.name
            if source.suffix.lower() in TABLES:
                frame, done = mitigate_table(_read(source), mitigation)
                _write(frame, target)
                notes.append(f"{source.name}: {done['suppressed']} cells suppressed, {done['rounded']} counts rounded")
            else:
                shutil.copyfile(source, target)
                notes.append(f"{source.name}: carried over unchanged (not a table)")
            outputs.append({"name": target.name, "bytes": target.stat().st_size, "sha256": file_sha256(target)[0]})
    except (OSError, ValueError, pa.ArrowException) as exc:
        return RunResult(
            status="failed",
            exit_code=1,
            reason=f"mitigation failed: {type(exc).__name__}",
            wall_seconds=time.monotonic() - started,
            cpu_seconds=0.0,
            max_rss_bytes=0,
            stdout="",
            stderr="",
            out_dir=out_dir,
            outputs=outputs,
        )
    return RunResult(
        status="ok",
        exit_code=0,
        reason=None,
        wall_seconds=time.monotonic() - started,
        cpu_seconds=0.0,
        max_rss_bytes=0,
        stdout="\n".join(notes) + "\n",
        stderr="",
        out_dir=out_dir,
        outputs=outputs,
    )


__all__ = ["KIND", "Mitigation", "mitigate_table", "run_mitigation"]
