"""The export guard (issue 15): strict readers, a registry of rules, and the verdict they add up to.

Public API: :func:`judge` (the verdict on one run), :class:`Judgement`, :class:`Finding`,
:class:`GuardConfig`, :class:`OperatorLog`, :class:`SourceCopy` (a granted copy as the guard reads it),
:func:`verdict_of`, :func:`operator_findings` (what an operator reads of findings), the
differencing helpers the worker uses for released products, and :func:`warm` (a worker's first judgement).

Imports are lazy (PEP 562): the job views and the CLI need the findings' vocabulary, not pandas and
pyarrow, so ``sandbox.guard.findings`` stays light and the rest loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sandbox.guard.findings import HARD, SOFT, Finding, Judgement, OperatorLog, operator_findings, verdict_of

_LAZY = {
    "GuardConfig": "sandbox.guard.config",
    "judge": "sandbox.guard.judge",
    "SourceCopy": "sandbox.guard.source",
    "Released": "sandbox.guard.rules.differencing",
    "aggregate_totals": "sandbox.guard.rules.differencing",
    "differencing_findings": "sandbox.guard.rules.differencing",
    "totals_of_files": "sandbox.guard.rules.differencing",
    "warm": "sandbox.guard.warmup",
}

if TYPE_CHECKING:
    from sandbox.guard.config import GuardConfig
    from sandbox.guard.judge import judge
    from sandbox.guard.rules.differencing import Released, aggregate_totals, differencing_findings, totals_of_files
    from sandbox.guard.source import SourceCopy
    from sandbox.guard.warmup import warm


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HARD",
    "SOFT",
    "Finding",
    "GuardConfig",
    "Judgement",
    "OperatorLog",
    "Released",
    "SourceCopy",
    "aggregate_totals",
    "differencing_findings",
    "judge",
    "operator_findings",
    "totals_of_files",
    "verdict_of",
    "warm",
]
