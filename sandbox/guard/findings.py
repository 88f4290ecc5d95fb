"""What the guard says about an output: findings, and the verdict they add up to.

Why two severities and nothing else: a *hard* finding is something the platform knows must not
leave (an identifier, a record, a file it cannot read), so the job is blocked; a *soft* finding is
something only a person can weigh (a small cell, free text, an image), so the output goes to the
agency's review (双鸭山 rules: products are reviewed before release). ``pass`` is the absence of
both, which the rules grant only to what the platform can account for as aggregate.

A finding's ``detail`` never echoes the offending value: operators read findings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


#: What an operator reads of each rule that fired (by rule name, else by its family): fixed text.
RULE_TEXT: dict[str, str] = {
    "identifier": "identifier values of a granted dataset (raw, pseudonymized or recognised) are in it",
    "record": "record-level data: rows of a granted dataset, one per person, rare combinations or a key",
    "table.unaccounted": "a table the platform cannot re-derive from the granted copies: the agency reviews it",
    "table.shape": "too many columns or too long a column name",
    "sdc.min_cell_count": "cells of fewer records than the minimum cell count",
    "sdc.zero_cell": "empty cells (zeros disclose)",
    "sdc.p_percent": "cells dominated by one or two records (p% rule)",
    "sdc.nk_rule": "cells dominated by one or two records (n-k rule)",
    "sdc.dominance_undefined": "negative values: dominance cannot be checked",
    "sdc.extreme_value": "minimums or maximums: each is one record's value",
    "sdc.differencing": "totals that, subtracted from others, isolate a few records",
    "sdc.row_cap": "more rows than an aggregate output holds",
    "sdc.residual_df": "a model with too few residual degrees of freedom",
    "sdc.free_text": "free text: the agency reads it",
    "sdc.image": "an image drawn in the sandbox: the agency looks at it (write a *.vl.json chart spec instead)",
    "manifest": "the platform does not accept this file as it is (type, name, size, count or link)",
    "format": "not plain UTF-8 text without control or invisible characters",
    "csv": "not a strict CSV: one header, every line the header's width, nothing else",
    "json": "not a strict JSON document (no NaN, no repeated keys)",
    "parquet": "not a plain Parquet table (no binary columns, no custom metadata)",
    "png": "not a plain PNG image (no extra chunks or data after its end)",
    "svg": "not a plain SVG drawing (no scripts, links, images or declarations)",
    "chart": "a chart spec the platform does not render as it stands",
    "model": "a model file without a valid platform certificate, or one that may remember its training rows",
    "guard": "the guard could not judge it completely: nothing leaves",
}
#: Findings an operator reads at most (one per rule and output).
MAX_OPERATOR_FINDINGS = 20


def operator_findings(findings: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Findings as an operator reads them: each rule once per output, with the rule's fixed text.

    Why not the guard's own details: a job chooses its outputs, so it chooses the counts and positions
    a detail states ("26310 rows", "column 417") — numbers that would leave even with a ``block``."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for finding in findings:
        rule = str(finding.get("rule", ""))
        key = (rule, str(finding.get("file", "")))
        if key in seen or len(seen) >= MAX_OPERATOR_FINDINGS:
            continue
        text = RULE_TEXT.get(rule) or RULE_TEXT.get(rule.split(".", 1)[0], "see the platform's rules")
        seen[key] = {"rule": rule, "severity": str(finding.get("severity", "")), "file": key[1],
                     "location": "", "detail": text}  # fmt: skip
    return list(seen.values())


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
    "RULE_TEXT",
    "SOFT",
    "STDERR",
    "STDOUT",
    "STREAMS",
    "Finding",
    "Judgement",
    "OperatorLog",
    "Severity",
    "Verdict",
    "operator_findings",
    "verdict_of",
]
