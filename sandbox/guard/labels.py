"""Labels an output carries besides its cells — column names and file names — and when they are
accounted for.

Why: a header or a file name is text the job chose, and a table can pass with any header; so a
name passes only when it says nothing the job learnt from the data: a column name of the copy, a
value of one of the copy's small categorical columns (a crosstab's columns), a name pandas or DuckDB
generate, or words of the job's own code without a digit (the code was written before the job saw
the data). Anything else sends the output to review, and the finding calls it by position.

What remains: a job can still choose *which* of its own words label its columns, a few bits per
label; a table has at most ``MAX_OWN_LABELS`` such labels to pass, which bounds it.
"""

from __future__ import annotations

import re
from functools import cache

import pandas as pd

from sandbox.guard.context import Context
from sandbox.guard.source import keys_of

#: Names pandas, pyarrow and DuckDB make up, and the positional names the readers give.
GENERATED = re.compile(
    r"^(Unnamed: \d{1,3}|level_\d|index|__index_level_\d__|column \d{1,3}|key|value|\d{1,3}|\d{1,2}%|count_star\(\))$"
)
#: Copy columns with at most this many values are categories whose values may label columns.
CATEGORY_VALUES = 50
#: Labels made of the job's own words a table may carry and still pass.
MAX_OWN_LABELS = 20
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
AGGREGATE_WORDS = frozenset(
    {
        "n",
        "count",
        "counts",
        "sum",
        "total",
        "mean",
        "avg",
        "average",
        "median",
        "min",
        "max",
        "std",
        "var",
        "share",
        "rate",
        "pct",
        "percent",
        "round",
        "cnt",
        "num",
        "number",
        "of",
        "by",
        "per",
        "all",
        "合计",
        "总计",
        "人数",
        "户数",
        "平均",
        "占比",
        "比例",
        "数量",
    }
)


@cache
def _code_words(code: str) -> frozenset[str]:
    return frozenset(_WORD.findall(code))


def _category_keys(ctx: Context) -> set[str]:
    keys: set[str] = set()
    for source in ctx.sources:
        for column in source.columns:
            if 0 < column.distinct <= CATEGORY_VALUES:
                keys.update(str(k) for k in column.keys)
    return keys


def own_words(label: str, ctx: Context) -> bool:
    """Every word of ``label`` is the job's own (or an aggregate's name), and it has no digit."""
    words = _WORD.findall(label)
    if not words or any(ch.isdigit() for ch in label):
        return False
    names = {c.name for s in ctx.sources for c in s.columns}
    code = _code_words(ctx.code)
    return all(w in code or w in names or w.lower() in AGGREGATE_WORDS for w in words)


def unaccounted(labels: list[str], ctx: Context) -> list[int]:
    """Positions of the labels that are not accounted for (see the module docstring)."""
    names = {c.name for s in ctx.sources for c in s.columns}
    categories = _category_keys(ctx)
    keys = keys_of(pd.Series(labels, dtype=object)).tolist() if labels else []
    found: list[int] = []
    own = 0
    for i, (label, key) in enumerate(zip(labels, keys, strict=True)):
        if label in names or (key is not None and key in categories) or GENERATED.match(label):
            continue
        if own_words(label, ctx) and own < MAX_OWN_LABELS:
            own += 1
            continue
        found.append(i)
    return found


__all__ = ["AGGREGATE_WORDS", "GENERATED", "MAX_OWN_LABELS", "own_words", "unaccounted"]
