"""The bounds and shape checks a raw file passes before it is parsed, profiled or vaulted (issue 17).

Each check runs before the step it protects and refuses with the bound it applied, so the provider
knows what to change: the inflated size of an XLSX from its zip directory (and while inflating)
before any XML is parsed; a DTD in an XLSX part (entity expansion) before the XML parser sees it;
columns and rows before profiling; nested or binary columns, which the desensitizer cannot
pseudonymise or mask column by column, at ingest rather than at desensitization; Unicode control,
format and unassigned characters in headers, which make two 数据项名称 look alike or hide text.

The refusals are :class:`FileRefusedError` (409, the existing family), :class:`FileInvalidError`
(422: the file is of a shape Keyong does not accept) and :class:`FileTooLargeError` (413).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from core import RegistryError, invisible_character
from registry.config import IngestLimits

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_XML_SUFFIXES = (".xml", ".rels", ".vml")
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
_CHUNK = 1024 * 1024


class FileRefusedError(RegistryError):
    """The file cannot be ingested as it is; the message says where and what would make it acceptable."""


class FileInvalidError(FileRefusedError):
    """The file is of a shape Keyong does not ingest (broken XML, a DTD, nested columns, …): 422."""


class FileTooLargeError(FileRefusedError):
    """The file, or what it inflates to, exceeds a bound of :class:`registry.config.IngestLimits`: 413."""


def check_header_characters(name: str, position: int, label: str) -> None:
    """A 数据项名称 holds no control, invisible-format, private-use or unassigned characters
    (:func:`core.invisible_character`, the one rule for names)."""
    found = invisible_character(name)
    if found is not None:
        offset, code, kind = found
        raise FileInvalidError(
            f"{label}: the header of column {position} contains the {kind} character {code} "
            f"at character {offset}; column names (数据项名称) must be visible text: retype the header"
        )


def check_width(columns: int, label: str, limits: IngestLimits) -> None:
    if columns > limits.max_columns:
        raise FileInvalidError(
            f"{label} has {columns:,} columns; at most {limits.max_columns:,} are ingested in one file: "
            "split it into datasets of related columns"
        )


def check_rows(rows: int, label: str, limits: IngestLimits) -> None:
    if rows > limits.max_rows:
        raise FileTooLargeError(
            f"{label} has {'more than ' if rows == limits.max_rows + 1 else ''}{rows:,} rows; at most "
            f"{limits.max_rows:,} are ingested in one file: split it into versions or partitions"
        )


def _unsupported(kind: pa.DataType) -> str | None:
    """Why a column type cannot be ingested, or ``None`` if it can."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return _unsupported(kind.value_type)
    if (
        pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or pa.types.is_list_view(kind)
        or pa.types.is_large_list_view(kind)
    ):
        return "a nested list"
    if pa.types.is_struct(kind):
        return "a nested struct"
    if pa.types.is_map(kind):
        return "a nested map"
    if pa.types.is_union(kind):
        return "a union"
    if (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or pa.types.is_binary_view(kind)
    ):
        return "a binary"
    if isinstance(kind, pa.ExtensionType):
        return "an extension type"
    return None


def check_schema(schema: pa.Schema, label: str, limits: IngestLimits) -> None:
    """Flat, textual or numeric columns only, and not too many (refused naming the first offender)."""
    check_width(len(schema.names), label, limits)
    for position, column in enumerate(schema, start=1):
        why = _unsupported(column.type)
        if why is not None:
            raise FileInvalidError(
                f"{label}: column {position} {column.name!r} is {why} column ({str(column.type)[:80]}); Keyong "
                "ingests flat columns of text, numbers, dates and times, which it can classify and desensitize "
                "one by one: flatten it (one column per field) or encode it as text before ingesting"
            )


def _check_sub_microsecond(column: pa.ChunkedArray, position: int, name: str, label: str) -> None:
    """A time of day finer than a microsecond has no Python or pandas form: profiling the column failed
    (an ArrowInvalid, a 500 at the API, red team 21c F2). Refused naming the column and the record."""
    import pyarrow as pa
    import pyarrow.compute as pc

    nanos = pc.cast(column, pa.int64())
    finer = pc.not_equal(pc.subtract(nanos, pc.multiply(pc.divide(nanos, 1000), 1000)), 0)  # integer division
    if pc.any(finer).as_py():
        record = pc.index(finer, True).as_py() + 1
        raise FileInvalidError(
            f"{label}: record {record:,} of column {position} {name!r} holds a time of day with nanoseconds; Keyong "
            "keeps times to the microsecond: round the column to microseconds (time64[us]) or encode it as text"
        )


def _first_invalid_utf8(chunk: pa.Array) -> int | None:
    """The index of the first cell of ``chunk`` (a text array) that is not UTF-8, or ``None``."""
    import pyarrow as pa

    for index, cell in enumerate(chunk.cast(pa.large_binary()).to_pylist()):
        if cell is not None:
            try:
                cell.decode("utf-8")
            except UnicodeDecodeError:
                return index
    return None


def _where_invalid_utf8(chunk: pa.Array, offset: int) -> str:
    """Where the bytes that are not UTF-8 are: the first record holding them, or, when a dictionary entry no record
    uses holds them, that entry (red team 23a F11: "record 1" was named, which held valid text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(chunk.type):
        entry = _first_invalid_utf8(chunk.dictionary)
        if entry is None:
            return "a value"
        used = pc.equal(chunk.indices, entry)
        if not pc.any(used).as_py():
            return f"entry {entry + 1:,} of the dictionary (no record uses it)"
        return f"record {offset + pc.index(used, True).as_py() + 1:,}"
    index = _first_invalid_utf8(chunk)
    return "a value" if index is None else f"record {offset + index + 1:,}"


def check_utf8(table: pa.Table, label: str) -> None:
    """Every text column of a Parquet file is UTF-8 (CESU-8 surrogates, Latin-1 or binary data written as text
    are not): Parquet's reader does not check, and profiling failed later with a raw ``ArrowException`` (a 500
    at the API). Not needed for CSV and XLSX, whose text Python decoded strictly. Arrow's full validation
    checks UTF-8 in C (0.2 s for 1M residents, bench/odd_cells_bench.py); the record is looked for only once a
    column fails."""
    import pyarrow as pa

    for position, name in enumerate(table.column_names, start=1):
        column = table.column(name)
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            _check_utf8(column, position, name, label)


def _check_utf8(column: pa.ChunkedArray, position: int, name: str, label: str) -> None:
    import pyarrow as pa

    offset = 0
    for chunk in column.chunks:
        try:
            chunk.validate(full=True)
        except pa.ArrowInvalid:
            where = _where_invalid_utf8(chunk, offset)
            raise FileInvalidError(
                f"{label}: {where} of column {position} {name!r} is not UTF-8 text (its bytes cannot be "
                "decoded: CESU-8, another encoding, or binary data written as text); re-export the file with its "
                "text in UTF-8, or store binary data outside the dataset"
            ) from None
        offset += len(chunk)


def check_cells(table: pa.Table, label: str, limits: IngestLimits) -> None:
    """No text cell longer than ``max_cell_chars``, no time of day finer than a microsecond and no date, time or
    time zone without a Python form (refused naming the column and the record)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    check_temporal(table, label)

    for position, name in enumerate(table.column_names, start=1):
        column = table.column(name)
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if pa.types.is_time64(kind) and kind.unit == "ns":
            _check_sub_microsecond(column.cast(kind), position, name, label)
            continue
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
            continue
        if pa.types.is_dictionary(column.type) or pa.types.is_string_view(kind):
            column = column.cast(pa.large_string())
        lengths = pc.utf8_length(column)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limits.max_cell_chars:
            record = pc.index(pc.greater(lengths, limits.max_cell_chars), True).as_py() + 1
            raise FileInvalidError(
                f"{label}: record {record:,} of column {position} {name!r} holds {longest:,} characters; a cell "
                f"holds at most {limits.max_cell_chars:,}: shorten it or keep long documents outside the dataset"
            )


#: The days since 1970-01-01 of 0001-01-01 and 9999-12-31: the dates Python's ``datetime.date`` holds.
_FIRST_DAY, _LAST_DAY = -719_162, 2_932_896
_UNIT_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def _out_of_range(column: pa.ChunkedArray) -> tuple[int, str] | None:
    """The first record (0-based) of a date or time-of-day column that no Python ``date``/``time`` holds, and why.

    Arrow holds a date32 of ±5.8 million years and a time64 of any length; the profiler's ``to_pandas`` raised a
    raw ``ValueError`` on them (red team 23a F1, F2)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_date32(kind) or pa.types.is_date64(kind):
        days = pc.cast(column, pa.int32()) if pa.types.is_date32(kind) else None
        if days is None:  # date64: milliseconds, floored to days
            millis = pc.cast(column, pa.int64())
            days = pc.divide(pc.subtract(millis, pc.if_else(pc.less(millis, 0), 86_400_000 - 1, 0)), 86_400_000)
        bad = pc.or_(pc.less(days, _FIRST_DAY), pc.greater(days, _LAST_DAY))
        why = "a date before the year 1 or after the year 9999"
    elif pa.types.is_timestamp(kind) and kind.unit != "ns":  # nanoseconds hold 1677–2262 only; coarser units
        # hold years far beyond Python's, which pandas reads: refused as dates are
        ticks = pc.cast(column, pa.int64())
        per_day = _UNIT_PER_DAY[kind.unit]
        bad = pc.or_(pc.less(ticks, _FIRST_DAY * per_day), pc.greater_equal(ticks, (_LAST_DAY + 1) * per_day))
        why = "a timestamp before the year 1 or after the year 9999"
    elif pa.types.is_time32(kind) or pa.types.is_time64(kind):
        ticks = pc.cast(column, pa.int64() if pa.types.is_time64(kind) else pa.int32())
        bad = pc.or_(pc.less(ticks, 0), pc.greater_equal(ticks, _UNIT_PER_DAY[kind.unit]))
        why = "a time of day outside 00:00–24:00"
    else:
        return None
    if not pc.any(bad).as_py():
        return None
    return pc.index(bad, True).as_py(), why


def _unknown_time_zone(kind: pa.DataType) -> str | None:
    """The time zone of a timestamp column if no time zone database knows it (red team 23a F3: a raw
    ``ArrowInvalid`` from ``to_pandas``); fixed offsets such as ``+08:00`` are known."""
    import re
    import zoneinfo

    import pyarrow as pa

    if not pa.types.is_timestamp(kind) or kind.tz is None or re.fullmatch(r"[+-]\d{2}:\d{2}", kind.tz):
        return None
    zone: str = kind.tz
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return zone
    return None


def _temporal_refusal(label: str, position: int, name: str, what: str) -> FileInvalidError:
    return FileInvalidError(
        f"{label}: column {position} {name!r} holds {what}; Keyong reads dates of the years 1–9999, times of day "
        "within 00:00–24:00 and time zones of the tz database: correct the column, or encode it as text"
    )


def check_temporal(table: pa.Table, label: str) -> None:
    """Every date, time of day and time zone has a Python form, so profiling and desensitizing can read it:
    refused naming the column (and the record) before anything is vaulted (a 422 at the API, not a 500)."""
    import pyarrow as pa

    for position, name in enumerate(table.column_names, start=1):
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        zone = _unknown_time_zone(column.type)
        if zone is not None:
            raise _temporal_refusal(
                label, position, name, f"the time zone {zone[:60]!r}, which no time zone database knows"
            )
        found = _out_of_range(column)
        if found is not None:
            record, why = found
            raise _temporal_refusal(label, position, name, f"{why} at record {record + 1:,}")


def table_to_pandas(table: pa.Table, label: str) -> pd.DataFrame:
    """The table as the profiler reads it; a column pandas cannot convert is refused naming it (fail closed for
    what :func:`check_temporal` does not foresee) rather than escaping as a raw error (a 500 at the API)."""
    import pyarrow as pa

    try:
        return table.to_pandas()
    except (pa.ArrowException, ValueError, OverflowError, TypeError) as exc:
        for position, name in enumerate(table.column_names, start=1):
            try:
                table.column(name).to_pandas()
            except (pa.ArrowException, ValueError, OverflowError, TypeError) as column_exc:
                raise FileInvalidError(
                    f"{label}: column {position} {name!r} cannot be read as values Keyong handles "
                    f"({type(column_exc).__name__}: {str(column_exc)[:120]}); correct the column, or encode it "
                    "as text"
                ) from None
        raise FileInvalidError(
            f"{label} cannot be read as values Keyong handles ({type(exc).__name__}: {str(exc)[:120]}); re-export it"
        ) from None


#: The DTD markers as the XML parser may read them: UTF-8 (and ASCII, Latin-1) and both UTF-16 orders.
#: Expat, which openpyxl parses with, reads UTF-16 without a byte order mark too.
_MARKERS = tuple(m.decode("ascii").encode(codec) for m in _DTD_MARKERS for codec in ("utf-8", "utf-16-le", "utf-16-be"))
_UTF16_HEADS = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")


def _scan_part(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, budget: int) -> int:
    """Inflate one part (within ``budget`` bytes), refusing a DTD or a non-UTF-8 XML part; its size.

    Every part is scanned, whatever its name: openpyxl parses the parts the workbook's relationships
    name, and a worksheet stored as ``sheet1.dat`` (or encoded in UTF-16, where ``<!DOCTYPE`` is not
    the bytes of its UTF-8 spelling) carried a DTD past a check of ``.xml`` parts in UTF-8 (issue 17).
    """
    size = 0
    tail = b""
    first = True
    xml_named = info.filename.lower().endswith(_XML_SUFFIXES)
    with archive.open(info) as stream:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > budget:
                return size
            if first:
                head = chunk.lstrip(b"\xef\xbb\xbf \t\r\n")
                if head.startswith(_UTF16_HEADS) or (xml_named and head and not head.startswith(b"<")):
                    raise FileInvalidError(
                        f"{label}: part {info.filename} is not UTF-8 XML; re-save the workbook from Excel or WPS"
                    )
            first = False
            window = tail + chunk
            if any(m in window for m in _MARKERS):
                raise FileInvalidError(
                    f"{label}: part {info.filename} declares a DTD (<!DOCTYPE or <!ENTITY); workbooks saved by "
                    "Excel or WPS never do and entity expansion is refused: re-save the workbook"
                )
            tail = window[-32:]
    return size


def check_xlsx_archive(source: Path | bytes, label: str, limits: IngestLimits) -> None:
    """Bound an XLSX's inflated size from its zip directory, then while inflating; refuse DTDs."""
    bound = limits.max_xlsx_inflated_bytes
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileRefusedError(
            f"{label} is not a readable XLSX workbook ({type(exc).__name__}): re-export it"
        ) from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_xlsx_parts:
            raise FileTooLargeError(
                f"{label} has {len(members):,} parts in its zip; an XLSX workbook is ingested with at most "
                f"{limits.max_xlsx_parts:,}: save the data sheet alone"
            )
        declared = sum(info.file_size for info in members)
        if declared > bound:
            raise FileTooLargeError(
                f"{label} inflates to {declared:,} bytes (its zip directory says so); at most {bound:,} bytes "
                "of workbook XML are read: save large tables as CSV or Parquet"
            )
        inflated = 0
        try:
            for info in members:
                inflated += _scan_part(archive, info, label, bound - inflated)
                if inflated > bound:
                    raise FileTooLargeError(
                        f"{label} inflates beyond {bound:,} bytes (more than its zip directory declares); "
                        "the workbook is refused: save large tables as CSV or Parquet"
                    )
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as exc:
            raise FileInvalidError(
                f"{label} is not a readable XLSX workbook: its zip is damaged or encrypted ({type(exc).__name__}); "
                "re-save it without a password"
            ) from None


__all__ = [
    "FileInvalidError",
    "FileRefusedError",
    "FileTooLargeError",
    "check_cells",
    "check_header_characters",
    "check_rows",
    "check_schema",
    "check_temporal",
    "check_width",
    "check_xlsx_archive",
    "table_to_pandas",
]
