"""Strict CSV: UTF-8, one header, every record exactly the header's width, nothing else.

Why strict: a lenient reader (pandas' ``on_bad_lines="skip"``) drops what it cannot parse, and what
it drops is exactly what a hostile job would hide there; here a line that does not parse to the
header's width, a bad encoding, a blank line or anything after the last record is a hard finding.
Every cell is read as the text it is (no type guessing that turns ``007`` into ``7``); columns
that are wholly numeric are typed for the statistical rules. The canonical bytes are the cells
re-written by Arrow (every string quoted, ``\\n`` line ends), so quoting choices and line endings
carry nothing out.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from sandbox.guard.content import Content, Table
from sandbox.guard.readers.strict import hard, read_text

FORMAT = "CSV"
_BLANK_LINE = re.compile(r"\n\r?\n")


def numeric_or_text(values: pd.Series) -> pd.Series:
    """Numbers when every non-empty cell is one (empty cells become NaN), else the text itself.

    Arrow parses the whole column in C++ and refuses it at the first cell that is no number."""
    array = pa.array(values, type=pa.large_string(), from_pandas=True)
    present = pc.not_equal(pc.fill_null(array, ""), "")
    if not pc.any(present).as_py():
        return values
    try:
        numbers = pc.cast(pc.if_else(present, array, pa.scalar(None, pa.large_string())), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return values
    return pd.Series(numbers.to_numpy(zero_copy_only=False), index=values.index, dtype=np.float64)


def _header(text: str, file: str) -> tuple[list[str] | None, list]:
    first_line, _, _ = text.partition("\n")
    try:
        header = next(csv.reader(io.StringIO(first_line.rstrip("\r")), strict=True))
    except (csv.Error, StopIteration):
        return None, [hard("csv.header", file, "header", "the first line is not a CSV header")]
    if any(h == "" for h in header) and len(header) > 1:
        header = [h if h else f"column {i + 1}" for i, h in enumerate(header)]
    return header, []


def read(path: Path, name: str) -> Content:
    content = Content(name, FORMAT)
    text = read_text(path, content)
    if text is None:
        return content
    if text.strip() == "":
        content.canonical = b""
        return content
    header, problems = _header(text, name)
    content.findings += problems
    if header is None:
        return content
    body = text.rstrip("\r\n")
    if len(header) > 1 and _BLANK_LINE.search(body):
        content.findings.append(hard("csv.blank_line", name, "rows", "blank line(s) between records"))
        return content
    width = len(header)
    names = [f"c{i}" for i in range(width)]
    try:
        table = pa_csv.read_csv(
            io.BytesIO(body.encode("utf-8") + b"\n"),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, use_threads=True),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        # Arrow's message quotes the offending line: never echo it (operators read findings).
        content.findings.append(
            hard("csv.malformed", name, "rows", f"a line does not parse to the header's {width} field(s)")
        )
        return content
    written = [table.column(i).to_pandas() for i in range(width)]
    content.tables.append(Table("table", header, [numeric_or_text(w) for w in written], written=written))
    content.canonical = _canonical(header, table)
    return content


_NEEDS_QUOTES = r'[,"\r\n]'


def _canonical(header: list[str], table: pa.Table) -> bytes:
    """Arrow's CSV: unquoted when no cell or name needs quotes (the usual table), else every string quoted."""
    out = io.BytesIO()
    renamed = table.rename_columns(header)
    names = pa.array(header, pa.large_string())
    plain = not pc.any(pc.match_substring_regex(names, _NEEDS_QUOTES)).as_py() and not any(
        pc.any(pc.match_substring_regex(column, _NEEDS_QUOTES)).as_py() for column in table.columns
    )
    if plain:  # Arrow quotes header names whatever the style: write that line itself
        out.write((",".join(header) + "\n").encode("utf-8"))
    options = pa_csv.WriteOptions(include_header=not plain, quoting_style="none" if plain else "needed")
    pa_csv.write_csv(renamed, out, write_options=options)
    return out.getvalue()


__all__ = ["FORMAT", "numeric_or_text", "read"]
