"""Strict plain text (``.txt``, ``.md``): UTF-8 without control or invisible characters.

Why it always goes to review: free text is whatever the job chose to write, and no rule can account
for it as an aggregate; a person reads it. The canonical form has ``\\n`` line ends and no trailing
spaces, so whitespace cannot carry bits past that person. Lines that form a table (Markdown pipes,
tabs or commas, the same number of fields on at least three lines) are also read as a table, so the
record-level rules see a list of people written as text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from sandbox.guard.content import Content, Table
from sandbox.guard.readers.csv import numeric_or_text
from sandbox.guard.readers.strict import read_text

FORMAT = "text"


def canonical_text(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines)


_SEPARATOR_ROW = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
MIN_TABLE_LINES = 3


def text_tables(lines: list[str]) -> list[Table]:
    """The tables a text holds: for each delimiter, one per field count of at least two that at least
    three lines share."""
    tables: list[Table] = []
    for delimiter in ("|", "\t", ","):
        rows: dict[int, list[list[str]]] = {}
        for line in lines:
            if delimiter not in line or _SEPARATOR_ROW.match(line):
                continue
            body = line.strip()
            if delimiter == "|":
                body = body.strip("|")
            fields = [f.strip() for f in body.split(delimiter)]
            if len(fields) >= 2:
                rows.setdefault(len(fields), []).append(fields)
        if not rows:
            continue
        for width, found in rows.items():  # every width: filler lines of another width hide nothing
            if len(found) >= MIN_TABLE_LINES:
                columns = [pd.Series([r[i] for r in found], dtype=object) for i in range(width)]
                header = [f"column {i + 1}" for i in range(width)]
                tables.append(Table("text table", header, [numeric_or_text(c) for c in columns], written=columns))
    return tables


def read(path: Path, name: str) -> Content:
    content = Content(name, FORMAT, free_text=True)
    text = read_text(path, content)
    if text is None:
        return content
    normalised = canonical_text(text)
    lines = [line for line in normalised.split("\n") if line.strip()]
    content.add_text("text", lines)
    content.add_sequence("lines", lines)
    content.tables += text_tables(lines)
    content.canonical = normalised.encode("utf-8")
    return content


__all__ = ["FORMAT", "canonical_text", "read"]
