"""Rich tables of a copy's measured risk, utility and column representation, for the CLI's human output.

``keyong dataset desensitize`` and ``keyong dataset show`` print the same tables (issue 16: "Shown in
``dataset desensitize --json``, ``dataset show`` ..."); the figures come from :mod:`app.copy_facts`, the
one reading of the report the API and the console share. A copy made before issue 16 prints that it was
not measured rather than an empty table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from app.copy_facts import NOT_MEASURED, number_text, report_sections


def print_measures(console: Console, report: Mapping[str, Any] | None, *, version: int | None = None) -> None:
    """Representation, re-identification risk before/after and utility of one desensitized version."""
    sections = report_sections(report)
    title = f" (v{version})" if version is not None else ""
    shaped = [c for c in sections["columns"] if c["described"] or c["near_unique_described"]]
    if shaped:
        table = Table(title=f"Column representation{title} 表示方式")
        for header in ("column", "action", "representation", "near-unique"):
            table.add_column(header, overflow="fold")
        for c in shaped:
            table.add_row(c["name"], c["action"] or "-", c["described"] or "-", c["near_unique_described"] or "-")
        console.print(table)
    if not sections["measured"]:
        console.print(f"Re-identification risk and utility{title}: {NOT_MEASURED}", markup=False)
        return
    if sections["risk"] is not None:
        risk = Table(title=f"Re-identification risk{title} 重识别风险")
        for header in ("measure", "before", "after"):
            risk.add_column(header)
        for row in sections["risk_rows"]:
            risk.add_row(*row)
        console.print(risk)
        met = {True: "yes", False: "NO"}.get(sections["met"], "—")
        qis = ", ".join(sections["quasi_identifiers"]) or "none"
        console.print(f"threshold: {sections['threshold']}; met: {met}; quasi-identifiers: {qis}", markup=False)
    else:
        console.print(f"Re-identification risk{title}: {NOT_MEASURED}", markup=False)
    _print_utility(console, sections, title)


def _print_utility(console: Console, sections: Mapping[str, Any], title: str) -> None:
    if sections["utility"] is None:
        console.print(f"Utility{title}: {NOT_MEASURED}", markup=False)
        return
    loss = Table(title=f"Information loss{title} 信息损失")
    for header in ("column", "height", "max height", "suppressed", "non-uniform entropy"):
        loss.add_column(header)
    for c in sections["utility_columns"]:
        loss.add_row(
            str(c.get("name")),
            number_text(c.get("generalization_height")),
            number_text(c.get("max_height")),
            number_text(c.get("suppressed_share")),
            number_text(c.get("non_uniform_entropy")),
        )
    console.print(loss)
    summary = sections["summary"] or {}
    console.print(
        f"workload: {number_text(summary.get('queries'))} queries; relative error median "
        f"{number_text(summary.get('median_relative_error'))}, max {number_text(summary.get('max_relative_error'))}",
        markup=False,
    )
