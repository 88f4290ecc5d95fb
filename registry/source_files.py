"""Reading a raw file strictly: CSV (UTF-8, UTF-8 with BOM or GB18030), Parquet or XLSX.

CSV and XLSX cells are read as strings, so the leading zeros of codes and the ``X`` of resident IDs
survive. Anything malformed (an encoding that is neither, ragged rows, an empty file, missing or
duplicate headers, binary data) is refused with a message that says where and what to fix, before
anything is written (issue 4). The bounds of :class:`registry.config.IngestLimits` are applied before
the step each protects (:mod:`registry.source_checks`, issue 17). The canonical Parquet of what was
read is what the vault keeps.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import file_sha256
from registry.config import IngestLimits
from registry.source_checks import (
    FileInvalidError,
    FileRefusedError,
    FileTooLargeError,
    check_cells,
    check_header_characters,
    check_rows,
    check_schema,
    check_utf8,
    check_width,
    check_xlsx_archive,
)

if TYPE_CHECKING:
    import pyarrow as pa


ENCODINGS = ("auto", "utf-8", "gb18030")
FORMATS = {".csv": "CSV", ".txt": "CSV", ".tsv": "CSV", ".parquet": "Parquet", ".pq": "Parquet", ".xlsx": "XLSX"}
MAX_HEADER = 128  # characters of a column name (数据项名称)
_BOM = b"\xef\xbb\xbf"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ParsedFile:
    """A raw file read strictly into an Arrow table, with what was learnt on the way."""

    table: pa.Table
    data_format: str  # CSV | Parquet | XLSX (数据格式)
    encoding: str | None  # utf-8 | utf-8-sig | gb18030 for CSV; None for binary formats
    sha256: str  # of the source file's bytes
    bytes: int
    sheet: str | None = None  # the worksheet read, for XLSX


# --- reading ---------------------------------------------------------------------------------


def _format_of(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise FileRefusedError(
            f"{path.name} is a legacy binary Excel file (.xls): save it as .xlsx or CSV and ingest that"
        )
    if suffix in FORMATS:
        return FORMATS[suffix]
    if head.startswith(b"PAR1"):
        return "Parquet"
    if head.startswith(b"PK\x03\x04"):
        return "XLSX"
    return "CSV"


def _decode(raw: bytes, encoding: str, label: str) -> tuple[str, str]:
    """Decode strictly, never replacing a character: (text, encoding used)."""
    bom = raw.startswith(_BOM)
    body = raw[len(_BOM) :] if bom else raw
    if encoding in ("auto", "utf-8"):
        try:
            return body.decode("utf-8"), "utf-8-sig" if bom else "utf-8"
        except UnicodeDecodeError as exc:
            utf8_error = exc
            if encoding == "utf-8" or bom:
                offset = exc.start + (len(_BOM) if bom else 0)
                raise FileRefusedError(
                    f"{label} is not valid UTF-8: byte 0x{raw[offset]:02x} at offset {offset} cannot be decoded; "
                    "re-export it as UTF-8, or give --encoding gb18030 if it is GB18030"
                ) from None
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError as exc:
        if encoding == "gb18030":
            raise FileRefusedError(
                f"{label} is not valid GB18030: byte 0x{raw[exc.start]:02x} at offset {exc.start} cannot be decoded; "
                "re-export it as GB18030, or give --encoding utf-8 if it is UTF-8"
            ) from None
        raise FileRefusedError(
            f"{label} is neither UTF-8 nor GB18030: it is not valid UTF-8 from byte offset {utf8_error.start} "
            f"(0x{raw[utf8_error.start]:02x}) and not valid GB18030 from byte offset {exc.start} "
            f"(0x{raw[exc.start]:02x}); re-export it as UTF-8 or GB18030 text"
        ) from None
    return text.removeprefix("\ufeff"), "gb18030"


def _check_headers(names: Sequence[Any], label: str, limits: IngestLimits) -> list[str]:
    """Headers are required, unique once trimmed, visible text, and short enough to be 数据项名称."""
    from desensitize import direct_identifiers

    check_width(len(names), label, limits)
    cleaned: list[str] = []
    seen: dict[str, int] = {}
    for position, raw in enumerate(names, start=1):
        name = "" if raw is None else str(raw).strip()
        if not name:
            raise FileRefusedError(
                f"{label}: column {position} has an empty header; every column needs a name (数据项名称)"
            )
        if len(name) > MAX_HEADER:
            raise FileRefusedError(f"{label}: the header of column {position} is longer than {MAX_HEADER} characters")
        check_header_characters(name, position, label)
        if direct_identifiers(name):
            raise FileRefusedError(
                f"{label}: the header of column {position} is a {'/'.join(direct_identifiers(name))}, not a column "
                "name: the first row looks like data; add a header row naming the columns"
            )
        if name in seen:
            raise FileRefusedError(
                f"{label}: header {name!r} appears twice (columns {seen[name]} and {position}); "
                "column names must be unique"
            )
        seen[name] = position
        cleaned.append(name)
    if not cleaned:
        raise FileRefusedError(f"{label} has no columns")
    return cleaned


def _first_ragged_record(text: str, delimiter: str, width: int) -> str | None:
    """Locate the first record whose field count differs from the header's (slow path, errors only)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    record = 0
    try:
        for row in reader:
            if not row:
                continue
            record += 1
            if record > 1 and len(row) != width:
                return f"record {record} (line {reader.line_num}) has {len(row)} fields where the header has {width}"
    except csv.Error as exc:
        return f"line {reader.line_num}: {exc}"
    return None


def _read_csv(raw: bytes, encoding: str, label: str, delimiter: str, limits: IngestLimits) -> tuple[pa.Table, str]:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    if not raw.strip():
        raise FileRefusedError(f"{label} is empty: there is nothing to ingest")
    text, used = _decode(raw, encoding, label)
    control = _CONTROL.search(text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        raise FileRefusedError(
            f"{label} contains the control character U+{ord(control.group()):04X} on line {line}: "
            "this is binary data, not a CSV text export"
        )
    if text.count('"') % 2:
        # pyarrow would read an unclosed quoted field to the end of the file, swallowing every row after it.
        raise FileRefusedError(
            f"{label} is not a well-formed CSV: it has an odd number of double quotes, so a quoted field is never "
            'closed; close it (and write a quote inside a quoted field as "")'
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next((row for row in reader if row), None)
    except csv.Error as exc:
        raise FileRefusedError(f"{label}: the header cannot be parsed as CSV ({exc})") from None
    if header is None:
        raise FileRefusedError(f"{label} is empty: there is nothing to ingest")
    names = _check_headers(header, label, limits)
    if len(names) == 1:
        for other in ("\t", ";", "|"):
            if other != delimiter and other in header[0]:
                raise FileRefusedError(
                    f"{label}: the header is one column containing {other!r}: the file looks delimited by "
                    f"{other!r}; Keyong reads comma-separated CSV (tab-separated as .tsv)"
                )
    ragged: list[Any] = []

    def on_invalid(row: Any) -> str:
        ragged.append(row)
        return "error"

    # pyarrow reads UTF-8: hand it the file's own bytes when they are UTF-8 already.
    data = raw[len(_BOM) :] if used == "utf-8-sig" else raw if used == "utf-8" else text.encode("utf-8")
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(column_names=header, skip_rows=0, block_size=8 << 20),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        where = _first_ragged_record(text, delimiter, len(names))
        if where is None and ragged:
            where = f"a record has {ragged[0].actual_columns} fields where the header has {ragged[0].expected_columns}"
        if where is None:
            where = str(exc).split(":", 1)[0]  # never echo the row: it may carry personal data
        raise FileRefusedError(
            f"{label} is not a well-formed CSV: {where}; ragged rows are refused (quote fields that contain "
            f"{delimiter!r} or line breaks, and give every row as many fields as the header)"
        ) from None
    table = table.slice(1)  # the header, read again as the first record
    return table.rename_columns(names), used


def _read_parquet(source: Path | bytes, label: str, limits: IngestLimits) -> pa.Table:
    """The schema and row count from the footer are checked before any column is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(source) if isinstance(source, bytes) else source)
        schema = parquet.schema_arrow
    except UnicodeDecodeError:  # the footer's column names are read as UTF-8 (odd23: a raw traceback, a 500)
        raise FileInvalidError(
            f"{label}: its column names are not UTF-8 text; re-export it with the headers (数据项名称) in UTF-8"
        ) from None
    except (pa.ArrowException, OSError) as exc:
        raise FileRefusedError(f"{label} is not a readable Parquet file ({type(exc).__name__}): re-export it") from None
    with parquet:
        check_schema(schema, label, limits)
        check_rows(parquet.metadata.num_rows, label, limits)
        names = _check_headers(schema.names, label, limits)
        try:
            table = parquet.read()
        except (pa.ArrowException, OSError) as exc:
            raise FileRefusedError(
                f"{label} is not a readable Parquet file ({type(exc).__name__}): re-export it"
            ) from None
    check_utf8(table, label)
    return table.rename_columns(names)


def _cell_text(value: Any) -> str | None:
    """An XLSX cell as the text a person reads in it (numbers without a spurious '.0', ISO dates)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


# What openpyxl raises on a damaged workbook: XML syntax (ParseError is a SyntaxError), missing parts,
# values of the wrong type. Refused as unreadable (422), never a traceback.
_XLSX_ERRORS = (SyntaxError, zipfile.BadZipFile, KeyError, IndexError, TypeError, AttributeError, OSError, ValueError)


def _read_xlsx(source: Path | bytes, label: str, limits: IngestLimits) -> tuple[pa.Table, str]:
    """The first worksheet: its first non-empty row is the header, every cell is read as text.

    The zip directory bounds the inflated size and no part may declare a DTD before openpyxl parses
    anything (:func:`registry.source_checks.check_xlsx_archive`).
    """
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    check_xlsx_archive(source, label, limits)
    try:
        workbook = openpyxl.load_workbook(
            io.BytesIO(source) if isinstance(source, bytes) else source, read_only=True, data_only=True
        )
    except (InvalidFileException, *_XLSX_ERRORS) as exc:
        raise FileInvalidError(
            f"{label} is not a readable XLSX workbook ({type(exc).__name__}): re-export it"
        ) from None
    try:
        if not workbook.worksheets:
            raise FileRefusedError(f"{label} has no worksheet")
        sheet = workbook.worksheets[0]
        return _read_sheet(sheet, f"{label} (worksheet {sheet.title!r})", limits), sheet.title
    except _XLSX_ERRORS as exc:
        raise FileInvalidError(
            f"{label} is not a readable XLSX workbook: its XML is damaged ({type(exc).__name__}); re-save it "
            "from Excel or WPS"
        ) from None
    finally:
        workbook.close()


def _read_sheet(sheet: Any, label: str, limits: IngestLimits) -> pa.Table:
    import pyarrow as pa

    rows = sheet.iter_rows(values_only=True)
    header_cells: list[Any] | None = None
    for row in rows:
        if any(v is not None and str(v).strip() for v in row):
            header_cells = list(row)
            break
    if header_cells is None:
        raise FileRefusedError(f"{label} is empty: there is nothing to ingest")
    while header_cells and (header_cells[-1] is None or not str(header_cells[-1]).strip()):
        header_cells.pop()  # formatted but unused columns at the right
    names = _check_headers(header_cells, label, limits)
    width = len(names)
    columns: list[list[str | None]] = [[] for _ in range(width)]
    kept = 0
    for row in rows:
        cells = [_cell_text(v) for v in row]
        if len(cells) > width and any(c is not None and c.strip() for c in cells[width:]):
            extra = next(i for i, c in enumerate(cells[width:], start=width + 1) if c is not None and c.strip())
            raise FileRefusedError(
                f"{label}: a row below the header has a value in column {extra} "
                f"but the header has {width} columns; every value needs a header"
            )
        if all(c is None or not c.strip() for c in cells[:width]):
            continue  # blank rows between blocks
        kept += 1
        if kept > limits.max_rows:
            check_rows(kept, label, limits)
        cells = (cells + [None] * width)[:width]
        for i, cell in enumerate(cells):
            columns[i].append(cell)
    return pa.table({name: pa.array(col, type=pa.string()) for name, col in zip(names, columns, strict=True)})


def read_source(
    source: Path | bytes, encoding: str = "auto", *, label: str | None = None, limits: IngestLimits | None = None
) -> ParsedFile:
    """Read ``source`` strictly into an Arrow table; :class:`FileRefusedError` says why a file cannot be.

    ``source`` is a file, or the bytes of one (an upload decrypted from its sealed scratch copy: then
    ``label``, its original name, gives the format by its suffix). ``label`` names the file in messages.
    """
    limits = limits or IngestLimits()
    if encoding not in ENCODINGS:
        raise FileRefusedError(f"unknown encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")
    if isinstance(source, bytes):
        path = Path(label or "upload")
        digest, size, head = hashlib.sha256(source).hexdigest(), len(source), source[:8]
    else:
        path = Path(source)
        if not path.is_file():
            raise FileRefusedError(f"{path} is not a file")
        digest, size = file_sha256(path)
        with open(path, "rb") as stream:
            head = stream.read(8)
    label = label or path.name
    if size == 0:
        raise FileRefusedError(f"{label} is empty: there is nothing to ingest")
    data_format = _format_of(path, head)
    sheet: str | None = None
    used: str | None = None
    if data_format == "CSV":
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        raw = source if isinstance(source, bytes) else path.read_bytes()
        table, used = _read_csv(raw, encoding, label, delimiter, limits)
        check_rows(table.num_rows, label, limits)
    elif data_format == "Parquet":
        table = _read_parquet(source if isinstance(source, bytes) else path, label, limits)
    else:
        table, sheet = _read_xlsx(source if isinstance(source, bytes) else path, label, limits)
    if table.num_rows == 0:
        raise FileRefusedError(f"{label} has a header but no rows: there is nothing to ingest")
    check_cells(table, label, limits)
    return ParsedFile(table.combine_chunks(), data_format, used, digest, size, sheet)


def canonical_parquet(table: pa.Table) -> bytes:
    """The vault's plaintext: one Parquet file, zstd-compressed."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


__all__ = [
    "ENCODINGS",
    "FORMATS",
    "MAX_HEADER",
    "FileInvalidError",
    "FileRefusedError",
    "FileTooLargeError",
    "IngestLimits",
    "ParsedFile",
    "canonical_parquet",
    "read_source",
]
