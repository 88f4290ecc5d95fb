"""The guard's rules, one module per family (as presidio keeps one recognizer per file).

A rule looks at one output's content (:class:`sandbox.guard.content.Content`) with the run's
:class:`sandbox.guard.context.Context` and returns findings. The registry below is the order in
which they run; a rule that raises is itself a hard finding (``sandbox.guard.judge``), never a pass.
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.guard.content import Content
from sandbox.guard.context import Context
from sandbox.guard.findings import Finding
from sandbox.guard.rules import free_text, identifiers, records, statistics

Rule = Callable[[Content, Context], list[Finding]]

RULES: dict[str, Rule] = {
    "identifiers": identifiers.check,
    "records": records.check,
    "statistics": statistics.check,
    "free_text": free_text.check,
}

__all__ = ["RULES", "Rule"]
