"""The export guard: every file, name, stdout and stderr of a run -> pass | review | block.

Why this shape (issue 15; DESIGN.md "Export guard"): raw data never leaves the domain and may not
be restored "through reversible models or algorithms" (双鸭山 第三十五条, 第五十四条). The guard turns
the old question around: it does not look for what is forbidden in a lenient parse of whatever the
operator wrote; it lets out only what it can account for.

1. Each output goes through the strict reader of its format (``sandbox.guard.readers``); a format
   without one, or bytes a reader cannot account for, is blocked. The operator receives the
   reader's canonical bytes, so what was judged is exactly what leaves.
2. The rules of ``sandbox.guard.rules`` run over what the reader found; ``pass`` is granted only to
   tables the platform re-derived from the copy, DP answers it signed, models it certified and
   charts it rendered itself. Everything else goes to review at best.
3. stdout and stderr are judged like files (``sandbox.guard.logs``).
4. Nothing wedges: any error while judging a file is a hard finding on it, never a pass.

A finding never echoes a value: an output whose name carries one is called by its position.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from desensitize import FingerprintSet
from dp import check_model, signed_by_platform
from sandbox.guard.config import GuardConfig
from sandbox.guard.content import Content
from sandbox.guard.context import Context
from sandbox.guard.findings import HARD, NAMES, SOFT, Finding, Judgement, OperatorLog, verdict_of
from sandbox.guard.logs import judge_logs
from sandbox.guard.probe import Probe, ProbeLimitError
from sandbox.guard.readers import read_output
from sandbox.guard.rules import RULES
from sandbox.guard.rules.charts import Chart, is_spec, render_chart
from sandbox.guard.rules.differencing import content_totals, differencing_findings
from sandbox.guard.rules.manifest import MODELS, accounted_name, manifest_findings, name_findings
from sandbox.guard.rules.records import shape_findings
from sandbox.guard.source import SourceCopy

log = logging.getLogger("keyong.guard")
#: Manifest findings that block before any file is read.
OVERSIZED = frozenset({"manifest.file_count", "manifest.total_size"})


def _labels(outputs: Sequence[Mapping[str, Any]], named: list[Finding], ctx: Context) -> dict[str, str]:
    """How findings call each output: its name when the platform accounts for it, else ``output N``
    (a name built from data must not come back to the operator inside a finding)."""
    labels: dict[str, str] = {}
    for i, output in enumerate(outputs):
        name = str(output["name"])
        labels[name] = name if not named and accounted_name(name, ctx) else f"output {i + 1}"
    return labels


def _names(outputs: Sequence[Mapping[str, Any]], ctx: Context) -> tuple[list[Finding], dict[str, str]]:
    """Findings on the output names, and the labels findings use for the outputs."""
    try:
        named = name_findings([str(o["name"]) for o in outputs], ctx)
    except ProbeLimitError:
        named = [Finding("guard.limit", HARD, NAMES, "name", "too many names to check")]
    except Exception as exc:  # names the guard cannot even read (undecodable bytes): refused
        log.exception("guard: the output names could not be judged")
        named = [_error(NAMES, "name", exc)]
    labels = _labels(outputs, named, ctx) if not any(f.rule.startswith("guard.") for f in named) else {
        str(o["name"]): f"output {i + 1}" for i, o in enumerate(outputs)
    }  # fmt: skip
    unnamed = [
        Finding("manifest.name", SOFT, labels[str(o["name"])], "name",
                "a name the platform cannot account for (the job's own words, the copy's categories): reviewed")
        for o in outputs if labels[str(o["name"])] != str(o["name"]) and not named
    ]  # fmt: skip
    return named + unnamed, labels


def _model(name: str, out_dir: Path, outputs: Sequence[Mapping[str, Any]], key: Ed25519PublicKey | None,
           job: int | None, config: GuardConfig, label: str) -> list[Finding]:  # fmt: skip
    problem, certificate = check_model(name, out_dir, outputs, key, job)
    if problem is not None:
        return [Finding("model.uncertified", HARD, label, "file", problem)]
    auc = certificate.get("mia_auc") if certificate else None
    if auc is None or float(auc) > config.max_mia_auc:
        detail = (
            f"membership-inference AUC {auc} exceeds {config.max_mia_auc}: the model may remember its training rows"
            if auc is not None
            else "no membership-inference AUC was recorded"
        )
        return [Finding("model.membership_inference", SOFT, label, "certificate", detail)]
    return []


def _relabel(findings: list[Finding], name: str, label: str) -> list[Finding]:
    if name == label:
        return findings
    return [Finding(f.rule, f.severity, label if f.file == name else f.file, f.location, f.detail) for f in findings]


def _judge_file(
    path: Path, name: str, ctx: Context, *, key: Ed25519PublicKey | None, job: int | None,
    earlier: Sequence[tuple[str, np.ndarray]],
) -> tuple[list[Finding], Content]:  # fmt: skip
    content = read_output(path, name)
    if content.format == "JSON" and not content.findings:
        content.signed = signed_by_platform(path, key, job)
    findings = list(content.findings) or shape_findings(content, ctx)
    if findings:
        return findings, content
    for rule_name, rule in RULES.items():
        try:
            findings += rule(content, ctx)
        except ProbeLimitError:
            findings.append(Finding("guard.limit", HARD, name, rule_name, "too large to check completely"))
    if earlier and content.tables and not content.signed:
        findings += differencing_findings(content_totals(content), name, earlier, ctx.config.sdc.min_cell_count)
    return findings, content


def _write_canonical(path: Path, content: Content, output: Mapping[str, Any]) -> dict[str, Any]:
    """Replace the job's bytes with the platform's canonical bytes; the output entry that results."""
    entry = _entry(output)
    if content.canonical is None:
        return entry
    if path.read_bytes() != content.canonical:
        path.write_bytes(content.canonical)
    entry["bytes"] = len(content.canonical)
    entry["sha256"] = hashlib.sha256(content.canonical).hexdigest()
    return entry


def judge(
    out_dir: Path,
    outputs: Sequence[Mapping[str, Any]],
    *,
    stdout: str = "",
    stderr: str = "",
    removed: Sequence[Mapping[str, Any]] = (),
    fingerprints: Mapping[str, FingerprintSet] | None = None,
    sources: Mapping[str, SourceCopy] | None = None,
    names: Sequence[str] = (),
    config: GuardConfig | None = None,
    earlier: Sequence[tuple[str, np.ndarray]] = (),
    certificate_key: Ed25519PublicKey | None = None,
    job: int | None = None,
    code: str = "",
) -> Judgement:
    """The verdict on one run: ``outputs`` as the runner listed them (files under ``out_dir``).

    ``sources``: the granted copies (name -> :class:`SourceCopy`), to tie tables to them; without
    them no table can be accounted for (review at best). ``fingerprints``: the copies' prints.
    ``certificate_key``/``job``: to accept certified models and DP answers signed for this job.
    ``earlier``: (product, totals) already released from the job's datasets (differencing).
    ``removed``: what the sandbox's sweep took out. ``code``: the job's SQL or Python (its words are
    the operator's own, not data, when the log is judged). Files are rewritten in place with their
    canonical bytes; the judgement lists the outputs as the operator would receive them.
    """
    config = config or GuardConfig()
    ctx = Context(
        Probe(dict(fingerprints or {}), max_probes=config.max_probes),
        sources=list((sources or {}).values()),
        names=tuple(names),
        config=config,
        code=code,
    )
    named, labels = _names(outputs, ctx)
    findings = named + manifest_findings(outputs, removed, ctx, labels)
    if any(f.rule in OVERSIZED for f in findings):
        # Too many or too large to read them all: the manifest alone blocks, and nothing wedges. The
        # outputs are listed as the job left them (for the host and the agency; the operator gets none).
        received = [_entry(o) for o in outputs]
    else:
        run = _Run(out_dir, outputs, ctx, labels, certificate_key, job, earlier)
        findings += run.files() + run.charts()
        received = run.received
    try:
        log_findings, operator_log = judge_logs(stdout, stderr, ctx)
    except Exception as exc:
        log.exception("guard: the logs could not be judged")
        log_findings = [_error("<logs>", "text", exc)]
        operator_log = OperatorLog(withheld="the guard could not judge it")
    findings += log_findings
    verdict = verdict_of(findings)
    if verdict == "block":
        operator_log = OperatorLog(withheld="the job's outputs were blocked", error=operator_log.error)
    return Judgement(verdict, findings, received, operator_log)


def _entry(output: Mapping[str, Any]) -> dict[str, Any]:
    return {k: output[k] for k in ("name", "bytes", "sha256") if k in output}


def _error(label: str, location: str, exc: BaseException) -> Finding:
    """Fail closed: what the guard could not judge does not leave."""
    return Finding("guard.error", HARD, label, location, f"the guard could not judge it ({type(exc).__name__})")


@dataclass(slots=True)
class _Run:
    """The outputs of one run, judged file by file, then the charts drawn from them."""

    out_dir: Path
    outputs: Sequence[Mapping[str, Any]]
    ctx: Context
    labels: Mapping[str, str]
    key: Ed25519PublicKey | None
    job: int | None
    earlier: Sequence[tuple[str, np.ndarray]]
    received: list[dict[str, Any]] = field(default_factory=list)
    judged: dict[str, tuple[list[Finding], Content]] = field(default_factory=dict)

    def files(self) -> list[Finding]:
        findings: list[Finding] = []
        for output in (o for o in self.outputs if not is_spec(str(o["name"]))):
            name = str(output["name"])
            try:
                findings += self._file(name, output)
            except Exception as exc:
                log.exception("guard: %s could not be judged", self.labels[name])
                findings.append(_error(self.labels[name], "file", exc))
        return findings

    def _file(self, name: str, output: Mapping[str, Any]) -> list[Finding]:
        path, label = self.out_dir / name, self.labels[name]
        if path.is_symlink() or not path.is_file():
            return [Finding("manifest.special", HARD, label, "file", "not a regular file")]
        if PurePosixPath(name).suffix.lower() in MODELS:
            self.received.append(_entry(output))
            return _model(name, self.out_dir, self.outputs, self.key, self.job, self.ctx.config, label)
        found, content = _judge_file(path, name, self.ctx, key=self.key, job=self.job, earlier=self.earlier)
        self.judged[name] = (found, content)
        self.received.append(_write_canonical(path, content, output))
        return _relabel(found, name, label)

    def charts(self) -> list[Finding]:
        findings: list[Finding] = []
        for output in (o for o in self.outputs if is_spec(str(o["name"]))):
            name = str(output["name"])
            try:
                chart = render_chart(name, self.out_dir, self.ctx, self.judged, self.labels[name])
            except Exception as exc:
                log.exception("guard: chart %s could not be judged", self.labels[name])
                chart = Chart([_error(self.labels[name], "spec", exc)])
            findings += chart.findings
            self.received += [entry for entry in (chart.spec, chart.output) if entry is not None]
        return findings


__all__ = ["judge"]
