"""The job's stdout and stderr: judged like files, and shown to the operator only as far as they pass.

Why (issue 15, principle 5): a log is an output the operator reads at once, without review, so it is
the cheapest way out for a value — a ``print``, a traceback quoting a cell, a DuckDB error that echoes
the value it could not convert. So the log's lines count toward the verdict like any file's
(identifiers, fingerprints), and of what the operator may read only the parts the platform can
account for pass:

* stdout is free text the job wrote as it liked (a ``print`` can spell out a record in any words):
  never shown — results belong in ``/out/``, where the guard judges them;
* of stderr, the structure of a Python traceback is shown (frame lines of the job's script and of the
  installed libraries, with host paths replaced by ``<venv>``/``<python>``; the quoted source lines
  when they are the job's own code or a library's; carets), and the exception's type;
* an error message is shown only when it holds nothing of the data: no digit, no value of a granted
  copy's columns, no word that is neither the job's own, a column name, nor a plain English word of a
  library's message template — and at most a dozen words (what a message can still encode in its
  choice of words is bounded by that).

Everything else is withheld, and the operator is told so.
"""

from __future__ import annotations

import re
import sys

import pandas as pd

from sandbox.guard.context import Context
from sandbox.guard.findings import STDERR, STDOUT, Finding, OperatorLog
from sandbox.guard.rules.identifiers import texts
from sandbox.guard.source import keys_of

_FRAME = re.compile(r'^(\s*File ")([^"]*)(", line \d+(?:, in [\w<>.]+)?\s*)$')
_TOKEN = re.compile(r"[^\s'\"`()\[\]{},:;=!?<>|*]+")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))(?::\s?(.*))?$")
_DUCKDB = re.compile(r"^(?:SQL error: )?((?:[A-Z][a-z]+ )+Error): ?(.*)$")
_STRUCTURE = re.compile(
    r"^(Traceback \(most recent call last\):|During handling of the above exception, another exception occurred:"
    r"|The above exception was the direct cause of the following exception:|\s*[\^~]+\s*)$"
)
_PLAIN_WORD = re.compile(r"^[A-Za-z][a-z]{0,19}$|^[A-Z]{2,10}$")
SCRIPT = "/job/script.py"
MAX_MESSAGE_WORDS = 12
STDOUT_WITHHELD = "[stdout withheld: free text is not shown; write results to /out/ to have them judged]"


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


def _library(path: str) -> bool:
    return path.startswith(("<venv>/", "<python>/"))


def _message_passes(message: str, ctx: Context) -> bool:
    """An error message holds nothing of the data (see the module docstring)."""
    tokens = _TOKEN.findall(message)
    if len(tokens) > MAX_MESSAGE_WORDS or any(ch.isdigit() for ch in message):
        return False
    code_words = set(_TOKEN.findall(ctx.code))
    names = {c.name for s in ctx.sources for c in s.columns}
    values = pd.Series(tokens, dtype=object)
    keys = keys_of(values) if tokens else values
    for source in ctx.sources:
        for column in source.columns:
            if bool((column.keys.get_indexer(pd.Index(keys.fillna(""))) >= 0).any()):
                return False
    return all(t in code_words or t in names or bool(_PLAIN_WORD.match(t)) for t in tokens)


def _exception_line(line: str, ctx: Context) -> tuple[str, str]:
    """(what the operator reads of an exception line, its type)."""
    match = _EXCEPTION.match(line.strip()) or _DUCKDB.match(line.strip())
    assert match is not None
    kind, message = match.group(1), (match.group(2) or "").strip()
    if not message or _message_passes(message, ctx):
        return scrub(line.rstrip()), kind
    return f"{kind}: [message withheld: it may hold data]", kind


def stderr_view(stderr: str, ctx: Context) -> tuple[list[str], str | None]:
    """The lines of stderr the operator may read, and the type of the last exception."""
    shown: list[str] = []
    error: str | None = None
    quoted_from: str | None = None  # the file of the frame whose source line may follow
    for raw in stderr.splitlines()[-400:]:
        line = scrub(raw)
        frame = _FRAME.match(line)
        if frame:
            path = frame.group(2)
            shown_path = path if path == SCRIPT or _library(path) else "<file>"
            shown.append(f"{frame.group(1)}{shown_path}{frame.group(3)}")
            quoted_from = path if shown_path == path else None
            continue
        if quoted_from is not None and line.startswith("    "):
            own = quoted_from == SCRIPT and line.strip() in ctx.code
            shown.append(line if own or _library(quoted_from) else "    [source withheld]")
            quoted_from = None
            continue
        quoted_from = None
        if _STRUCTURE.match(line):
            shown.append(line)
        elif _EXCEPTION.match(line.strip()) or _DUCKDB.match(line.strip()):
            text, error = _exception_line(line, ctx)
            shown.append(text)
        elif line.strip():
            shown.append("[line withheld]")
    return [line for i, line in enumerate(shown) if line != "[line withheld]" or shown[i - 1 : i] != [line]], error


def judge_logs(stdout: str, stderr: str, ctx: Context) -> tuple[list[Finding], OperatorLog]:
    """Findings on the logs (they count toward the verdict) and what the operator may read of them."""
    findings: list[Finding] = []
    for stream, text in ((STDOUT, stdout), (STDERR, stderr)):
        lines = pd.Series([line for line in text.splitlines() if line.strip()], dtype=object).drop_duplicates()
        if not lines.empty:
            findings += texts(lines, ctx, stream, "text")
    if not stdout.strip() and not stderr.strip():
        return findings, OperatorLog()
    shown, error = stderr_view(stderr, ctx)
    if findings:
        return findings, OperatorLog(withheld="it holds identifier values; see the findings", error=error)
    parts = ([STDOUT_WITHHELD] if stdout.strip() else []) + shown
    text = "\n".join(parts)
    data = text.encode("utf-8")
    if len(data) > ctx.config.log_excerpt_bytes:
        text = "[…truncated]\n" + data[-ctx.config.log_excerpt_bytes :].decode("utf-8", errors="ignore")
    return findings, OperatorLog(text=text, error=error)


__all__ = ["host_paths", "judge_logs", "scrub", "stderr_view"]
