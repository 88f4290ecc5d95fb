"""The job's stdout and stderr: judged like files, and shown to the operator only when they pass.

Why (issue 15, principle 5): a log is an output the operator reads at once, without review, so it
is the cheapest way out for a value — a ``print``, a traceback quoting a cell, a DuckDB error that
echoes the value it could not convert. Its lines count toward the verdict like any file's
(identifiers, fingerprints); and the operator reads it only when it holds nothing of the data:

* words and numbers the job's own code contains are the operator's, not the data's;
* Python's traceback frames (paths, line numbers) and library source lines are code;
* anything else with a digit in it, or that is a value of a granted copy's columns, is data.

A log with data in it is withheld (results belong in ``/out/``, where the guard judges them); the
operator is told why and which exception type ended the job, never its message. Host paths
(the interpreter's prefix, the virtual environment) are replaced by placeholders in what is shown.
"""

from __future__ import annotations

import re
import sys

import pandas as pd

from sandbox.guard.context import Context
from sandbox.guard.findings import STDERR, STDOUT, Finding, OperatorLog
from sandbox.guard.rules.identifiers import texts
from sandbox.guard.source import keys_of

_FRAME = re.compile(r'^\s*File "[^"]*", line \d+(?:, in [^\s]+)?\s*$')
_TOKEN = re.compile(r"[\w\u3400-\u9fff][\w\u3400-\u9fff.\-]*")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))\b")
_DUCKDB = re.compile(r"\b((?:[A-Z][a-z]+ )+Error)\b")
#: A library's warning: "<venv>/…/frame.py:123: FutureWarning: message"; only the message can hold data.
_WARNING = re.compile(r"^<(?:venv|python)>\S*:\d+: \w*Warning: (.*)$")


def host_paths() -> list[tuple[str, str]]:
    """Host path prefixes an operator must not learn, and what they read as instead."""
    placeholders: dict[str, str] = {}
    for path, placeholder in (
        (sys.base_exec_prefix, "<python>"),
        (sys.base_prefix, "<python>"),
        (sys.prefix, "<venv>"),
    ):
        if path and path != "/":
            placeholders[path] = placeholder  # a venv's prefix wins over the base it equals outside a venv
    return sorted(placeholders.items(), key=lambda pair: -len(pair[0]))


def scrub(text: str) -> str:
    for prefix, placeholder in host_paths():
        text = text.replace(prefix, placeholder)
    return text


def _data_tokens(lines: list[str], ctx: Context) -> int:
    """How many tokens of non-code lines are data (see the module docstring)."""
    code_words = set(_TOKEN.findall(ctx.code))
    candidates: list[str] = []
    after_frame = False
    for line in map(scrub, lines):
        warning = _WARNING.match(line)
        if warning:
            line = warning.group(1)
        if _FRAME.match(line):
            after_frame = True
            continue
        if after_frame and line.startswith("    "):  # the source line a traceback quotes
            after_frame = False
            continue
        after_frame = False
        candidates += [t for t in _TOKEN.findall(line) if t not in code_words]
    if not candidates:
        return 0
    tokens = pd.Series(sorted(set(candidates)), dtype=object)
    data = tokens.str.contains(r"[0-9]", regex=True)
    keys = keys_of(tokens)
    column_names = {c.name for s in ctx.sources for c in s.columns}
    for source in ctx.sources:
        for column in source.columns:
            inside = pd.Series(column.keys.get_indexer(pd.Index(keys.fillna(""))) >= 0)
            data |= inside & ~tokens.isin(column_names)
    return int(data.sum())


def _last_error(lines: list[str]) -> str | None:
    for line in reversed(lines):
        match = _EXCEPTION.match(line.strip()) or _DUCKDB.search(line)
        if match:
            return match.group(1)
    return None


def judge_logs(stdout: str, stderr: str, ctx: Context) -> tuple[list[Finding], OperatorLog]:
    """Findings on the logs (they count toward the verdict) and what the operator may read of them."""
    findings: list[Finding] = []
    for stream, text in ((STDOUT, stdout), (STDERR, stderr)):
        lines = pd.Series([line for line in text.splitlines() if line.strip()], dtype=object).drop_duplicates()
        if not lines.empty:
            findings += texts(lines, ctx, stream, "text")
    lines = (stdout.splitlines()[-200:] if stdout else []) + (stderr.splitlines()[-200:] if stderr else [])
    if not lines:
        return findings, OperatorLog()
    error = _last_error(lines)
    if findings:
        return findings, OperatorLog(withheld="it holds identifier values; see the findings", error=error)
    data = _data_tokens(lines, ctx)
    if data:
        why = f"it holds {data} value(s) from the data or computed from it; write results to /out/ to have them judged"
        return findings, OperatorLog(withheld=why, error=error)
    shown = "\n".join(
        (stdout.splitlines()[-200:] if stdout else [])
        + (["--- stderr ---", *stderr.splitlines()[-200:]] if stderr else [])
    )
    shown = scrub(shown)
    data_bytes = shown.encode("utf-8")
    if len(data_bytes) > ctx.config.log_excerpt_bytes:
        shown = "[…truncated]\n" + data_bytes[-ctx.config.log_excerpt_bytes :].decode("utf-8", errors="ignore")
    return findings, OperatorLog(text=shown)


__all__ = ["host_paths", "judge_logs", "scrub"]
