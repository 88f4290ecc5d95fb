"""What a verification found: shared by the database verifier and the standalone one.

Kept free of any database or web dependency so that ``ledger/verify.py`` stays runnable on a
regulator's machine with nothing but the standard library and ``cryptography``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GENESIS_HEX = "0" * 64
MAX_PROBLEMS = 100


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: the first entry it concerns (``None`` for a checkpoint or a file line)."""

    seq: int | None
    kind: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "detail": self.detail}


@dataclass
class VerifyReport:
    entries: int = 0
    head: str = GENESIS_HEX
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)
    truncated_problems: bool = False  # more than MAX_PROBLEMS were found; the first are kept
    # What could not be checked but does not make the ledger wrong (no remembered head: ledger.head).
    warnings: list[str] = field(default_factory=list)
    # Which verifier answered (reference, native, duckdb: ledger.fastverify); not part of the JSON,
    # since every verifier gives the very same report.
    method: str = field(default="reference", compare=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, seq: int | None, kind: str, detail: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(seq, kind, detail))
        else:
            self.truncated_problems = True

    def as_json(self) -> dict[str, Any]:
        """The report's JSON (DESIGN.md's keys); ``warnings`` only when there is one, so that a report with
        nothing to warn of is what it always was."""
        found: dict[str, Any] = {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "checkpoints": self.checkpoints,
            "problems": [p.as_json() for p in self.problems],
        }
        if self.warnings:
            found["warnings"] = list(self.warnings)
        return found
