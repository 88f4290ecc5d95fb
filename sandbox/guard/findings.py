"""What the guard says about an output: findings, and the verdict they add up to.

Why two severities and nothing else: a *hard* finding is something the platform knows must not
leave (an identifier, a record, a file it cannot read), so the job is blocked; a *soft* finding is
something only a person can weigh (a small cell, free text, an image), so the output goes to the
agency's review (双鸭山 rules: products are reviewed before release). ``pass`` is the absence of
both, which the rules grant only to what the platform can account for as aggregate.

A finding's ``detail`` never echoes the offending value: operators read findings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

HARD: Literal["hard"] = "hard"
SOFT: Literal["soft"] = "soft"
Severity = Literal["hard", "soft"]
Verdict = Literal["pass", "review", "block"]

#: The pseudo-file names of what is not a file: the job's logs and its output names.
STDOUT, STDERR, NAMES = "<stdout>", "<stderr>", "<file names>"
STREAMS = (STDOUT, STDERR, NAMES)


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired on one place of one output."""

    rule: str
    severity: str
    file: str
    location: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return asdict(self)


def verdict_of(findings: Iterable[Finding]) -> str:
    """``block`` if any hard finding, ``review`` if only soft ones, ``pass`` if none."""
    severities = {f.severity for f in findings}
    return "block" if HARD in severities else "review" if SOFT in severities else "pass"


@dataclass(frozen=True, slots=True)
class OperatorLog:
    """What the operator may read of a run's stdout and stderr.

    ``text`` is set only when the log itself would pass (no data in it); otherwise ``withheld``
    says why, and ``error`` names at most the exception type the job died of (never its message).
    """

    text: str | None = None
    withheld: str | None = None
    error: str | None = None

    def excerpt(self) -> str | None:
        """The one string the job row keeps for the operator (``log_excerpt``)."""
        if self.text is not None:
            return self.text
        if self.withheld is None:
            return None
        return f"[log withheld: {self.withheld}]" + (f"\n{self.error}" if self.error else "")


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict on one run, its findings, the outputs as the operator would receive them (the
    platform's canonical bytes: names, sizes, hashes) and the log the operator may read."""

    verdict: str
    findings: list[Finding]
    outputs: list[dict[str, Any]] = field(default_factory=list)
    log: OperatorLog = field(default_factory=OperatorLog)

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "findings": [f.as_json() for f in self.findings]}


__all__ = [
    "HARD",
    "NAMES",
    "SOFT",
    "STDERR",
    "STDOUT",
    "STREAMS",
    "Finding",
    "Judgement",
    "OperatorLog",
    "Severity",
    "Verdict",
    "verdict_of",
]
