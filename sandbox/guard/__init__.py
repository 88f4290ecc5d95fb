"""The export guard (issue 15): strict readers, a registry of rules, and the verdict they add up to.

Public API: :func:`judge` (the verdict on one run), :class:`Judgement`, :class:`Finding`,
:class:`GuardConfig`, :class:`OperatorLog`, :class:`SourceCopy` (a granted copy as the guard reads it),
:func:`verdict_of`, and the differencing helpers the worker uses for released products.
"""

from sandbox.guard.config import GuardConfig
from sandbox.guard.findings import HARD, SOFT, Finding, Judgement, OperatorLog, verdict_of
from sandbox.guard.judge import judge
from sandbox.guard.rules.differencing import (
    Released,
    aggregate_totals,
    differencing_findings,
    totals_of_files,
)
from sandbox.guard.source import SourceCopy

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
    "totals_of_files",
    "verdict_of",
]
