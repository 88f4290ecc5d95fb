"""What every rule may consult while judging one run: the probe, the copies, the job's own code.

Why one object: rules are small and independent (one module per family), but some work is shared
and must be done once per table (tying it to a copy is the costliest step), so the context keeps
those results; rules ask, they do not recompute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.guard.config import GuardConfig
from sandbox.guard.content import Table
from sandbox.guard.explain import Explanation, explain, keyed, transposed, without_header_rows
from sandbox.guard.probe import Probe
from sandbox.guard.source import KeyedColumn, SourceCopy


@dataclass(slots=True)
class Context:
    probe: Probe
    sources: Sequence[SourceCopy] = ()
    names: tuple[str, ...] = ()
    config: GuardConfig = field(default_factory=GuardConfig)
    #: The job's own text (its SQL or Python): words in it are the operator's, not the data's.
    code: str = ""
    _explained: dict[int, Explanation | None] = field(default_factory=dict)
    _turned: dict[int, Table | None] = field(default_factory=dict)
    _keyed: dict[int, list[KeyedColumn]] = field(default_factory=dict)
    _readings: dict[int, list[Table]] = field(default_factory=dict)
    #: Results a rule computes once per run and table and more than one of its checks uses.
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def keyed(self, table: Table) -> list[KeyedColumn]:
        """The table's columns by key (computed once per table; the costliest step on large tables)."""
        if id(table) not in self._keyed:
            self._keyed[id(table)] = keyed(table)
        return self._keyed[id(table)]

    def readings(self, table: Table) -> list[Table]:
        """The ways a table may be read: as written, turned, without a multi-row header (cached)."""
        if id(table) not in self._readings:
            found = [table, self.turned(table), *without_header_rows(table)]
            self._readings[id(table)] = [t for t in found if t is not None and t.rows]
        return self._readings[id(table)]

    def turned(self, table: Table) -> Table | None:
        """The table read the other way round (cached: rules must agree on the same object)."""
        if id(table) not in self._turned:
            self._turned[id(table)] = transposed(table)
        return self._turned[id(table)]

    def explanation(self, table: Table) -> Explanation | None:
        """The best tie of ``table`` to a granted copy: a complete one if any copy accounts for it,
        else the one that explains most columns; None without copies or for a table too large."""
        key = id(table)
        if key in self._explained:
            return self._explained[key]
        best: Explanation | None = None
        if table.rows <= self.config.sdc.max_rows:
            for source in self.sources:
                attempt = explain(table, source, self.keyed(table))
                if attempt.complete:
                    best = attempt
                    break
                if best is None or (attempt.problem is None and len(attempt.unexplained) < len(best.unexplained)):
                    best = attempt
        self._explained[key] = best
        return best


__all__ = ["Context"]
