"""The programs Keyong itself runs inside the sandbox for the platform-run job kinds (issue 8: dp-query, dp-train).

Why standalone programs and not functions of Keyong's packages: they run inside bubblewrap over
the licence's desensitized copies, where only the interpreter, the standard library and the
venv's third-party packages (pandas, numpy, pyarrow, diffprivlib, torch, opacus, scikit-learn) are
visible — Keyong's own code is not mounted, so a job cannot import (and so cannot be tampered with
through) the host's worker, ledger or vault. The host copies these files under ``/job/`` (all of
them for either kind, so ``dp_train.py`` can reuse ``dp_query.py``'s contribution bounding and
``dp_columns.py``'s column reading), writes the resolved ``/job/plan.json`` and runs ``python -I -B
/job/dp_query.py`` or ``/job/dp_train.py``. The files stay importable on the host (no side effects
at import) so tests and benchmarks call their functions on DataFrames directly.
"""

from __future__ import annotations

from pathlib import Path

from dp.kinds import DpKind

#: The program each DP kind runs, by file name under ``/job/``; every one is mounted for either kind.
PROGRAMS: dict[str, str] = {DpKind.QUERY.value: "dp_query.py", DpKind.TRAIN.value: "dp_train.py"}


def program_source(name: str) -> bytes:
    """The source of one of the platform's in-sandbox programs, as shipped in this package."""
    return (Path(__file__).parent / name).read_bytes()


#: What the programs import beside each other (mounted with them, never run on their own).
SUPPORT: tuple[str, ...] = ("dp_columns.py",)


def program_files() -> dict[str, bytes]:
    """Every program and its support by ``/job/`` name: what the host mounts for a DP job of either kind."""
    return {name: program_source(name) for name in (*PROGRAMS.values(), *SUPPORT)}


__all__ = ["PROGRAMS", "SUPPORT", "program_files", "program_source"]
