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
from sandbox.guard.findings import Finding
from sandbox.guard.readers.strict import character_findings, dictionary_codes, hard, hidden_cells

FORMAT = "CSV"
_BLANK_LINE = re.compile(rb"\n\r?\n")
BOM_BYTES = "\ufeff".encode()


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


def _header(first_line: bytes, file: str) -> tuple[list[str] | None, list[Finding]]:
    try:
        line = first_line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        return None, [hard("format.encoding", file, "header", "not valid UTF-8: write the CSV as UTF-8 text")]
    problems = character_findings(line, file, "header")
    if problems:
        return None, problems
    try:
        header = next(csv.reader(io.StringIO(line), strict=True))
    except (csv.Error, StopIteration):
        return None, [hard("csv.header", file, "header", "the first line is not a CSV header")]
    if any(h == "" for h in header) and len(header) > 1:
        header = [h if h else f"column {i + 1}" for i, h in enumerate(header)]
    return header, []


def read(path: Path, name: str) -> Content:
    """Bytes go to Arrow as they are (it checks UTF-8 in C++ while it parses); the header line is read
    here, and every column is then searched for control and invisible characters."""
    content = Content(name, FORMAT)
    raw = path.read_bytes()
    raw = raw[len(BOM_BYTES) :] if raw.startswith(BOM_BYTES) else raw
    if raw.strip() == b"":
        content.canonical = b""
        return content
    header, problems = _header(raw.partition(b"\n")[0], name)
    content.findings += problems
    if header is None:
        return content
    body = raw.rstrip(b"\r\n")
    if len(header) > 1 and _BLANK_LINE.search(body):
        content.findings.append(hard("csv.blank_line", name, "rows", "blank line(s) between records"))
        return content
    table = _parse(body, header, content)
    if table is None:
        return content
    encoded = [dictionary_codes(column) for column in table.columns]
    for i, column in enumerate(encoded):
        if hidden_cells(column.dictionary):  # a cell's characters are its distinct value's
            content.findings.append(
                hard("format.invisible_characters", name, f"column {i + 1}", "control or invisible characters")
            )
    if content.findings:
        return content
    written = [table.column(i).to_pandas() for i in range(len(header))]
    typed = [numeric_or_text(w) for w in written]
    read_table = Table("table", header, typed, written=written)
    for i, cells in enumerate(written):
        distinct = pd.Series(encoded[i].uniques, dtype=cells.dtype)
        read_table.seed(i, encoded[i].codes, distinct, written=True)
        if typed[i] is cells:  # a text column: its typed values are the written ones
            read_table.seed(i, encoded[i].codes, distinct)
    content.tables.append(read_table)
    content.canonical = _canonical(header, table, [column.dictionary for column in encoded])
    return content


def _parse(body: bytes, header: list[str], content: Content) -> pa.Table | None:
    width = len(header)
    names = [f"c{i}" for i in range(width)]
    try:
        return pa_csv.read_csv(
            io.BytesIO(body + b"\n"),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, use_threads=True),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        # Arrow's message quotes the offending line: never echo it (operators read findings).
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            content.findings.append(hard("format.encoding", content.file, "rows", "not valid UTF-8: write UTF-8"))
        else:
            content.findings.append(
                hard("csv.malformed", content.file, "rows", f"a line does not parse to the header's {width} field(s)")
            )
        return None


_NEEDS_QUOTES = r'[,"\r\n]'


def _canonical(header: list[str], table: pa.Table, distinct: list[pa.Array]) -> bytes:
    """Arrow's CSV: unquoted when no cell or name needs quotes (the usual table), else every string quoted.
    ``distinct``: each column's distinct values (whether a cell needs quotes depends on its text alone)."""
    out = io.BytesIO()
    renamed = table.rename_columns(header)
    names = pa.array(header, pa.large_string())
    plain = not pc.any(pc.match_substring_regex(names, _NEEDS_QUOTES)).as_py() and not any(
        pc.any(pc.match_substring_regex(values, _NEEDS_QUOTES)).as_py() for values in distinct if len(values)
    )
    if plain:  # Arrow quotes header names whatever the style: write that line itself
        out.write((",".join(header) + "\n").encode("utf-8"))
    options = pa_csv.WriteOptions(include_header=not plain, quoting_style="none" if plain else "needed")
    pa_csv.write_csv(renamed, out, write_options=options)
    return out.getvalue()


__all__ = ["FORMAT", "numeric_or_text", "read"]
