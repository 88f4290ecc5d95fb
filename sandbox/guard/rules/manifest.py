"""The manifest of a run: how many files, how large, what kind, what names.

Why: names, sizes and the set of files are what an operator reads first, and what a job controls
freely; a file the sandbox had to remove (a link, a device, a hidden name) is an attempt in itself.
Names are content: they are probed like any cell (``identifiers``), and a name that carries a
value is never echoed back in findings (the output is then called by its position).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from sandbox.guard.context import Context
from sandbox.guard.findings import HARD, NAMES, Finding
from sandbox.guard.labels import unaccounted
from sandbox.guard.rules.identifiers import texts

MODELS = frozenset({".pt", ".pth", ".pkl", ".pickle", ".joblib", ".onnx", ".safetensors", ".h5", ".ckpt"})


#: Names the platform's own programs write (the SQL runner, the DP programs and the seal), and the
#: plain words analysts name outputs by; a name of one to three letters says nothing either.
PLATFORM_NAMES = frozenset({"result", "model", "training", "model.certificate"})
GENERIC_NAMES = frozenset(
    [
        "table",
        "tables",
        "output",
        "outputs",
        "out",
        "data",
        "summary",
        "report",
        "chart",
        "charts",
        "plot",
        "figure",
        "counts",
        "count",
        "means",
        "mean",
        "stats",
        "statistics",
        "totals",
        "total",
        "rates",
        "shares",
        "crosstab",
        "pivot",
        "frequencies",
        "freq",
        "regression",
        "model",
        "results",
    ]
)
_SHORT = re.compile(r"^[A-Za-z]{1,3}$")


def name_findings(names: Sequence[str], ctx: Context) -> list[Finding]:
    """Identifiers in output names (whole names, their stems and every directory part)."""
    parts: list[str] = []
    for name in names:
        path = PurePosixPath(name)
        parts += [name, path.stem, *path.parts]
    return texts(pd.Series(parts, dtype=object).drop_duplicates(), ctx, NAMES, "name")


def accounted_name(name: str, ctx: Context) -> bool:
    """A name says nothing the job learnt from the data: each part is the platform's, written in the
    job's code, or a label :mod:`sandbox.guard.labels` accounts for (a category of the copy, the job's
    own words)."""
    path = PurePosixPath(name)
    parts = [*path.parts[:-1], path.name.split(".")[0]]
    for part in parts:
        if part in PLATFORM_NAMES or part.lower() in GENERIC_NAMES or _SHORT.match(part) or (part and part in ctx.code):
            continue
        if unaccounted([part], ctx):
            return False
    return True


def manifest_findings(
    outputs: Sequence[Mapping[str, Any]], removed: Sequence[Mapping[str, Any]], ctx: Context, label: Mapping[str, str]
) -> list[Finding]:
    """Counts, sizes, hidden names and removed files of the whole run."""
    config = ctx.config
    findings = [
        Finding("manifest.removed", HARD, label.get(str(item.get("name")), "*"), "file",
                f"removed by the sandbox: {item.get('why')}")
        for item in removed
    ]  # fmt: skip
    if len(outputs) > config.max_files:
        findings.append(
            Finding("manifest.file_count", HARD, "*", "manifest", f"{len(outputs)} files > {config.max_files}")
        )
    total = sum(int(o.get("bytes", 0)) for o in outputs)
    if total > config.max_total_bytes:
        findings.append(Finding("manifest.total_size", HARD, "*", "manifest", f"{total} bytes in all exceed the cap"))
    for output in outputs:
        name = str(output["name"])
        if any(part.startswith(".") for part in PurePosixPath(name).parts):
            findings.append(Finding("manifest.hidden", HARD, label[name], "file", "hidden file"))
        if len(name) > config.max_name_chars:
            findings.append(
                Finding(
                    "manifest.name", HARD, label[name], "file", f"a name longer than {config.max_name_chars} characters"
                )
            )
        if int(output.get("bytes", 0)) > config.max_file_bytes:
            findings.append(Finding("manifest.size", HARD, label[name], "file", "the file exceeds the per-file cap"))
    return findings


__all__ = ["MODELS", "PLATFORM_NAMES", "accounted_name", "manifest_findings", "name_findings"]
