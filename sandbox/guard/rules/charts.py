"""Chart specs: judged as the operator's words, then rendered by the platform from a table that passed.

Why (issue 15, principle 2): a picture drawn inside the sandbox goes to review because pixels can
carry anything; a Vega-Lite spec (``*.vl.json``) is instead drawn by the platform, outside the
sandbox, from its own canonical copy of a table the guard judged (``sandbox.guard.charts``). The
chart then says no more than that table and the spec's strings, so it passes when both do:

* the spec must be one the platform renders (a strict subset: no inline data, no expressions, no
  links); anything else is refused outright, since inline values would be a way around the tables;
* its strings (titles, labels) are probed like any text, and pass only when they are the operator's
  own words — written in the job's code — not text the job computed from the data;
* the table it draws must be another output of the job without hard findings; drawn from a table
  that goes to review, the chart goes to review too.

Findings never quote the spec: the count of problems is said, and the README lists what is allowed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa

from sandbox.guard.charts import SPEC_SUFFIX, ChartError, check_spec, render_svg
from sandbox.guard.content import Content
from sandbox.guard.context import Context
from sandbox.guard.findings import HARD, SOFT, Finding
from sandbox.guard.rules.identifiers import texts
from sandbox.guard.source import keys_of


def is_spec(name: str) -> bool:
    return name.lower().endswith(SPEC_SUFFIX)


@dataclass(slots=True)
class Chart:
    """A rendered chart: its output entry, and the findings of the spec it came from."""

    findings: list[Finding]
    output: dict[str, Any] | None = None
    spec: dict[str, Any] | None = None


def _arrow(content: Content) -> pa.Table:
    table = content.tables[0]
    frame = table.frame()
    frame.columns = table.header
    return pa.Table.from_pandas(frame, preserve_index=False)


def render_chart(
    name: str, out_dir: Path, ctx: Context, judged: Mapping[str, tuple[list[Finding], Content]], label: str
) -> Chart:
    """Judge the spec ``name`` and, when it may be drawn, render it beside it as ``<stem>.svg``."""
    raw = (out_dir / name).read_bytes()
    check = check_spec(raw)
    if check.problems:
        detail = f"{len(check.problems)} construct(s) the platform does not render (inline data, expressions, links…)"
        return Chart([Finding("chart.spec", HARD, label, "spec", detail)])
    findings = texts(pd.Series(list(check.strings), dtype=object), ctx, label, "spec text")
    parent = str(PurePosixPath(name).parent)
    table_name = str(PurePosixPath(parent) / str(check.table)) if parent != "." else str(check.table)
    source = judged.get(table_name)
    if source is None or len(source[1].tables) != 1 or source[1].tables[0].nested:
        findings.append(Finding("chart.table", HARD, label, "spec", "it draws no single flat table of this job"))
        return Chart(findings)
    table_findings, content = source
    if any(f.severity == HARD for f in table_findings):
        return Chart([*findings, Finding("chart.table", HARD, label, "spec", "the table it draws is blocked")])
    if table_findings:
        findings.append(Finding("chart.table", SOFT, label, "spec", "the table it draws goes to review"))
    findings += _values(json.loads(raw), check.strings, content, ctx, label)
    target = out_dir / (name[: -len(SPEC_SUFFIX)] + ".svg")
    if target.exists() or target.is_symlink():
        findings.append(Finding("chart.name", HARD, label, "file", "the chart's name is taken by another output"))
        return Chart(findings)
    try:
        svg = render_svg(raw, _arrow(content))
    except ChartError:
        detail = "the chart cannot be drawn from that table (a field it names is missing, or too many rows)"
        findings.append(Finding("chart.render", HARD, label, "spec", detail))
        return Chart(findings)
    target.write_bytes(svg)
    (out_dir / name).unlink()  # the spec was the job's instruction to the platform; the chart is the output
    entry = {"name": str(target.relative_to(out_dir)), "bytes": len(svg), "sha256": hashlib.sha256(svg).hexdigest()}
    return Chart(findings, entry)


#: Spec keys whose numbers style the drawing (sizes, angles, opacity), not data.
STYLE_NUMBERS = frozenset(
    """width height padding size opacity fillOpacity strokeOpacity strokeWidth fontSize titleFontSize
    labelFontSize labelAngle angle tickCount maxbins step cornerRadius innerRadius outerRadius thickness
    binSpacing labelLimit titleLimit offset dx dy minExtent maxExtent zindex columns spacing labelPadding
    titlePadding symbolSize gradientLength strokeDash""".split()  # noqa: SIM905
)
#: Strings of a spec that are neither the drawn table's values nor its column names, and still pass
#: when the job's code holds them verbatim (titles): what a choice among them encodes stays small.
MAX_OWN_STRINGS = 10


def _scalars(node: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in _scalars(v, k)]
    if isinstance(node, list):
        return [pair for v in node for pair in _scalars(v, key)]
    return [(key, node)]


def _values(spec: Any, strings: tuple[str, ...], content: Content, ctx: Context, label: str) -> list[Finding]:
    """Numbers and strings of the spec the table or the job's code does not account for (soft)."""
    table = content.tables[0]
    cells = {str(k) for k in pd.unique(pd.concat([keys_of(c) for c in table.columns]).dropna())}
    names = set(table.header)
    numbers = [v for k, v in _scalars(spec) if isinstance(v, int | float) and not isinstance(v, bool)]
    foreign_numbers = [
        v for k, v in _scalars(spec)
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in STYLE_NUMBERS
        and keys_of(pd.Series([v], dtype=object)).iloc[0] not in cells
    ]  # fmt: skip
    own = [s for s in strings if s not in cells and s not in names]
    foreign = [s for s in own if s not in ctx.code] + own[MAX_OWN_STRINGS:]
    findings: list[Finding] = []
    if foreign_numbers and numbers:
        detail = f"{len(foreign_numbers)} number(s) that are neither the table's values nor sizes of the drawing"
        findings.append(Finding("chart.values", SOFT, label, "spec", detail))
    if foreign:
        detail = f"{len(foreign)} string(s) that are not the table's values nor written in the job's code"
        findings.append(Finding("chart.text", SOFT, label, "spec text", detail))
    return findings


__all__ = ["Chart", "is_spec", "render_chart"]
