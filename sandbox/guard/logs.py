"""The job's stdout and stderr: judged like files, and shown to the operator only as far as they pass.

Why (issue 15, principle 5): a log is an output the operator reads at once, without review, so it is
the cheapest way out for a value — a ``print``, a traceback quoting a cell, a DuckDB error that echoes
the value it could not convert. The log's lines count toward the verdict like any file's (identifiers,
fingerprints); and of what the operator may read, only what the platform can account for is shown:

* stdout is free text the job wrote as it liked (a ``print`` can spell a record in any words): never
  shown — results belong in ``/out/``, where the guard judges them;
* of stderr, the type of the exception that ended the job, when it is one Python or an installed
  library defines (a job can name its own exception class anything), and where the job's script
  raised it: the line number and that line of the job's own code, taken from the code, not from
  the log (a job can print anything that looks like a traceback);
* the exception's message, when it holds nothing of the data: no digit of any script, no value of a
  granted copy's columns, at most a dozen words, each a column name, a word of a library's message
  templates, or — at most three of them — the job's own words (what a message can still encode in its
  choice of words is bounded by that).

Everything else is withheld, and the operator is told so.
"""

from __future__ import annotations

import builtins
import re
import sys

import pandas as pd

from sandbox.guard.context import Context
from sandbox.guard.findings import STDERR, STDOUT, Finding, OperatorLog
from sandbox.guard.probe import fold
from sandbox.guard.rules.identifiers import texts
from sandbox.guard.source import keys_of

SCRIPT = "/job/script.py"
MAX_MESSAGE_WORDS = 12
MAX_OWN_WORDS = 3
STDOUT_WITHHELD = "[stdout withheld: free text is not shown; write results to /out/ to have them judged]"

_SCRIPT_FRAME = re.compile(r'^\s*File "/job/script\.py", line (\d+)')
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]{0,80})(?::\s?(.*))?$")
_DUCKDB = re.compile(r"^(?:SQL error: )?((?:[A-Z][A-Za-z]* )+Error): ?(.*)$")
_TOKEN = re.compile(r"[^\s'\"`()\[\]{},:;=!?<>|*.]+")
#: Exceptions of the libraries a job may use (pandas, pyarrow, DuckDB, scikit-learn, numpy, json, torch):
#: a job's own class could be named anything, so only these names and Python's own are shown.
LIBRARY_EXCEPTIONS = frozenset(
    {
        "ParserError", "EmptyDataError", "MergeError", "InvalidIndexError", "IntCastingNaNError", "IndexingError",
        "DtypeWarning", "PerformanceWarning", "SettingWithCopyWarning", "OutOfBoundsDatetime", "ArrowInvalid",
        "ArrowTypeError", "ArrowNotImplementedError", "ArrowKeyError", "ArrowIndexError", "ArrowMemoryError",
        "ArrowIOError", "ArrowCapacityError", "BinderException", "CatalogException", "ConversionException",
        "ParserException", "InvalidInputException", "OutOfRangeException", "NotImplementedException",
        "ConstraintException", "IOException", "TypeMismatchException", "SyntaxException", "NotFittedError",
        "ConvergenceWarning", "DataConversionWarning", "JSONDecodeError", "LinAlgError", "AxisError",
        "UnpicklingError", "PrivacyLeakWarning", "BudgetError",
    }
)  # fmt: skip
PYTHON_EXCEPTIONS = frozenset(
    n
    for n in dir(builtins)
    if isinstance(getattr(builtins, n), type) and issubclass(getattr(builtins, n), BaseException)
)
#: DuckDB's error kinds, as the SQL runner prints them ("SQL error: Binder Error: …").
DUCKDB_ERRORS = frozenset(
    f"{kind} Error"
    for kind in (
        "Binder", "Parser", "Catalog", "Conversion", "Invalid Input", "Out of Range", "Not implemented", "Constraint",
        "Type", "Syntax", "Invalid", "Internal", "Serialization", "Dependency", "Interrupt", "Mismatch Type",
        "Permission", "IO", "Sequence", "Transaction", "Decimal", "Math", "Invalid type", "Invalid Configuration",
    )
)  # fmt: skip
#: Words of library message templates ("name 'x' is not defined", "Referenced column x not found in FROM clause").
TEMPLATE_WORDS = frozenset(
    """a an the of in on at to from for with by and or
    not no is are was be been has have had does do did can
    cannot could would should must may might found exist exists defined named name names
    module object attribute attributes key keys column columns table tables index indexes value values
    type types argument arguments missing required positional keyword unexpected given takes expected got unsupported
    operand operands invalid syntax error near line function functions method callable convert string int
    float str dict list tuple NoneType DataFrame Series ndarray clause referenced candidate candidates bindings
    binder catalog parser conversion scalar aggregate group by select where order limit this that
    did you mean such file directory unknown out range size shape mismatch empty data
    unique duplicate label labels level levels axis dtype must contain only one all any
    same length lengths none null divide division zero""".split()  # noqa: SIM905
)


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


def _known(kind: str) -> bool:
    last = kind.rsplit(".", 1)[-1]
    return last in PYTHON_EXCEPTIONS or last in LIBRARY_EXCEPTIONS or kind in DUCKDB_ERRORS


def _message_passes(message: str, ctx: Context) -> bool:
    """An error message holds nothing of the data (see the module docstring)."""
    tokens = _TOKEN.findall(message)
    folded = "".join(fold(pd.Series([message])).tolist()) + message
    if not tokens or len(tokens) > MAX_MESSAGE_WORDS or len(message) > 200 or any(c.isdigit() for c in folded):
        return False
    keys = keys_of(pd.Series(tokens, dtype=object))
    for source in ctx.sources:
        for column in source.columns:
            if bool((column.keys.get_indexer(pd.Index(keys.fillna(""))) >= 0).any()):
                return False
    names = {c.name for s in ctx.sources for c in s.columns}
    code = set(_TOKEN.findall(ctx.code))
    own = [t for t in tokens if t not in names and t.lower() not in TEMPLATE_WORDS and t not in TEMPLATE_WORDS]
    return len(own) <= MAX_OWN_WORDS and all(t in code for t in own)


def _last_exception(lines: list[str]) -> tuple[str, str] | None:
    for line in reversed(lines):
        stripped = line.strip()
        match = _DUCKDB.match(stripped) or _EXCEPTION.match(stripped)
        if match and (match.re is _DUCKDB or stripped[:1].isupper() or "." in match.group(1)):
            return match.group(1), (match.group(2) or "").strip()
    return None


def stderr_view(stderr: str, ctx: Context) -> tuple[list[str], str | None]:
    """What the operator may read of stderr, and the exception type it ended with (when known)."""
    lines = stderr.splitlines()[-400:]
    shown: list[str] = []
    code = ctx.code.splitlines()
    frames = [int(m.group(1)) for m in map(_SCRIPT_FRAME.match, lines) if m]
    if frames and 1 <= frames[-1] <= len(code):
        shown.append(f"line {frames[-1]} of the job's code:\n    {code[frames[-1] - 1].strip()}")
    found = _last_exception(lines)
    error: str | None = None
    if found is not None and _known(found[0]):
        error, message = found
        passes = bool(message) and _message_passes(message, ctx)
        shown.append(f"{error}: {message}" if passes else error + (": [message withheld]" if message else ""))
    elif found is not None:
        shown.append("an exception of the job's own (its name and message withheld)")
    if len(lines) > len(shown):
        shown.append("[other stderr lines withheld]")
    return shown, error


def judge_logs(stdout: str, stderr: str, ctx: Context) -> tuple[list[Finding], OperatorLog]:
    """Findings on the logs (they count toward the verdict) and what the operator may read of them."""
    findings: list[Finding] = []
    for stream, text in ((STDOUT, stdout), (STDERR, stderr)):
        lines = pd.Series([line for line in text.splitlines() if line.strip()], dtype=object).drop_duplicates()
        if not lines.empty:
            findings += texts(lines, ctx, stream, "text")
    if not stdout.strip() and not stderr.strip():
        return findings, OperatorLog()
    shown, error = stderr_view(stderr, ctx) if stderr.strip() else ([], None)
    if findings:
        return findings, OperatorLog(withheld="it holds identifier values; see the findings", error=error)
    text = "\n".join(([STDOUT_WITHHELD] if stdout.strip() else []) + shown)
    data = text.encode("utf-8")
    if len(data) > ctx.config.log_excerpt_bytes:
        text = "[…truncated]\n" + data[-ctx.config.log_excerpt_bytes :].decode("utf-8", errors="ignore")
    return findings, OperatorLog(text=text, error=error)


__all__ = ["host_paths", "judge_logs", "scrub", "stderr_view"]
