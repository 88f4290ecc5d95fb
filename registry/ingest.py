"""``keyong dataset ingest``: read a raw file, profile its columns, lock it in the vault, version it.

The flow (DESIGN.md, Data flow; issue 4):

1. Read the file strictly — CSV (UTF-8, UTF-8 with BOM or GB18030), Parquet or XLSX. CSV and XLSX
   cells are read as strings, so the leading zeros of codes and the ``X`` of resident IDs survive.
   Anything malformed (an encoding that is neither, ragged rows, an empty file, missing or
   duplicate headers, binary data) is refused with a message that says where and what to fix,
   before anything is written.
2. Profile the columns (:func:`desensitize.profiling.profile_columns`): the custodian's starting
   point for classification and grading (双鸭山 第十一条 分类分级).
3. Write the canonical Parquet into the encrypted vault (黑龙江 第三十八条; 双鸭山 第三十五条
   原始数据不出域: the raw copy is never mounted into a sandbox).
4. In ONE database transaction with its ledger entries: publish the catalog entry if the dataset is
   new (资源目录, 双鸭山 第十二条), record the profiler's suggestions, add a ``raw`` version, and log
   ``dataset.ingested``. If that transaction is refused, the vault file is removed again: a refused
   ingest leaves no vault file, no catalog entry and no ledger entry.

``content_sha256`` of a raw version is the SHA-256 of the **source file's bytes** as delivered, so
a provider can check with ``sha256sum`` that the platform holds exactly what it sent; the SHA-256
of the canonical Parquet plaintext inside the vault is kept in the version's report
(``parquet_sha256``) and in the ``dataset.ingested`` ledger entry.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from core import Actor, JoinedRecorder, NotFoundError, Recorder, RegistryError, file_sha256, require_role
from desensitize import ColumnProfile, direct_identifiers, is_valid_uscc, max_level, profile_columns
from registry.catalog import Catalog, check_name
from registry.catalog_views import CatalogEntry, DataItem
from registry.config import RegistryConfig
from registry.vault import Vault, VaultError
from registry.vocabulary import Level, VersionKind

CUSTODIAN = "custodian"
ENCODINGS = ("auto", "utf-8", "gb18030")
FORMATS = {".csv": "CSV", ".txt": "CSV", ".tsv": "CSV", ".parquet": "Parquet", ".pq": "Parquet", ".xlsx": "XLSX"}
MAX_HEADER = 128  # characters of a column name (数据项名称)
DEFAULT_INDUSTRY = "未分类"
_BOM = b"\xef\xbb\xbf"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
Progress = Callable[[str], None]


class FileRefusedError(RegistryError):
    """The file cannot be ingested as it is; the message says where and what would make it acceptable."""


@dataclass(frozen=True)
class ParsedFile:
    """A raw file read strictly into an Arrow table, with what was learnt on the way."""

    table: pa.Table
    data_format: str  # CSV | Parquet | XLSX (数据格式)
    encoding: str | None  # utf-8 | utf-8-sig | gb18030 for CSV; None for binary formats
    sha256: str  # of the source file's bytes
    bytes: int
    sheet: str | None = None  # the worksheet read, for XLSX


@dataclass(frozen=True)
class IngestResult:
    """What an ingest did (the JSON contract of ``keyong dataset ingest --json``)."""

    dataset: str
    version: int
    rows: int
    columns: list[dict[str, Any]]  # {"name", "type", "pii_type", "level", "confidence"}
    encoding: str | None
    sha256: str  # of the source file's bytes (= the version's content_sha256)
    vault_path: str
    data_format: str = ""
    published: bool = False  # a new catalog entry was published
    profiles: list[ColumnProfile] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "rows": self.rows,
            "columns": self.columns,
            "encoding": self.encoding,
            "sha256": self.sha256,
            "vault_path": self.vault_path,
        }


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


def _check_headers(names: Sequence[Any], label: str) -> list[str]:
    """Headers are required, unique once trimmed, and short enough to be 数据项名称."""
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
        if _CONTROL.search(name):
            raise FileRefusedError(f"{label}: the header of column {position} contains control characters")
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


def _read_csv(raw: bytes, encoding: str, label: str, delimiter: str) -> tuple[pa.Table, str]:
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
    names = _check_headers(header, label)
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


def _read_parquet(path: Path, label: str) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise FileRefusedError(f"{label} is not a readable Parquet file ({type(exc).__name__}): re-export it") from None
    names = _check_headers(table.column_names, label)
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


def _read_xlsx(path: Path, label: str) -> tuple[pa.Table, str]:
    """The first worksheet: its first non-empty row is the header, every cell is read as text."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileRefusedError(
            f"{label} is not a readable XLSX workbook ({type(exc).__name__}): re-export it"
        ) from None
    try:
        if not workbook.worksheets:
            raise FileRefusedError(f"{label} has no worksheet")
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header_cells: list[Any] | None = None
        for row in rows:
            if any(v is not None and str(v).strip() for v in row):
                header_cells = list(row)
                break
        if header_cells is None:
            raise FileRefusedError(f"{label}: worksheet {sheet.title!r} is empty: there is nothing to ingest")
        while header_cells and (header_cells[-1] is None or not str(header_cells[-1]).strip()):
            header_cells.pop()  # formatted but unused columns at the right
        names = _check_headers(header_cells, f"{label} (worksheet {sheet.title!r})")
        width = len(names)
        columns: list[list[str | None]] = [[] for _ in range(width)]
        line = 1
        for row in rows:
            line += 1
            cells = [_cell_text(v) for v in row]
            if len(cells) > width and any(c is not None and c.strip() for c in cells[width:]):
                extra = next(i for i, c in enumerate(cells[width:], start=width + 1) if c is not None and c.strip())
                raise FileRefusedError(
                    f"{label} (worksheet {sheet.title!r}): a row below the header has a value in column {extra} "
                    f"but the header has {width} columns; every value needs a header"
                )
            if all(c is None or not c.strip() for c in cells[:width]):
                continue  # blank rows between blocks
            cells = (cells + [None] * width)[:width]
            for i, cell in enumerate(cells):
                columns[i].append(cell)
        table = pa.table({name: pa.array(col, type=pa.string()) for name, col in zip(names, columns, strict=True)})
        return table, sheet.title
    finally:
        workbook.close()


def read_source(path: Path, encoding: str = "auto", *, label: str | None = None) -> ParsedFile:
    """Read ``path`` strictly into an Arrow table; :class:`FileRefusedError` says why a file cannot be.

    ``label`` names the file in messages (an upload's original name rather than its temporary copy).
    """
    if encoding not in ENCODINGS:
        raise FileRefusedError(f"unknown encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")
    path = Path(path)
    label = label or path.name
    if not path.is_file():
        raise FileRefusedError(f"{path} is not a file")
    digest, size = file_sha256(path)
    if size == 0:
        raise FileRefusedError(f"{label} is empty: there is nothing to ingest")
    with open(path, "rb") as stream:
        head = stream.read(8)
    data_format = _format_of(path, head)
    sheet: str | None = None
    used: str | None = None
    if data_format == "CSV":
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        table, used = _read_csv(path.read_bytes(), encoding, label, delimiter)
    elif data_format == "Parquet":
        table = _read_parquet(path, label)
    else:
        table, sheet = _read_xlsx(path, label)
    if table.num_rows == 0:
        raise FileRefusedError(f"{label} has a header but no rows: there is nothing to ingest")
    return ParsedFile(table.combine_chunks(), data_format, used, digest, size, sheet)


def canonical_parquet(table: pa.Table) -> bytes:
    """The vault's plaintext: one Parquet file, zstd-compressed."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


# --- the registry side -----------------------------------------------------------------------


def _column_type(arrow_type: pa.DataType) -> str:
    return str(arrow_type)[:32]


class Ingestor:
    """Reads raw files into the vault and the catalog (custodian)."""

    def __init__(self, recorder: Recorder, config: RegistryConfig, catalog: Catalog) -> None:
        self.recorder = recorder
        self.config = config
        self.catalog = catalog

    @property
    def vault(self) -> Vault:
        if self.config.vault_key is None:
            raise RegistryError("this instance has no vault key: raw data cannot be stored unencrypted")
        try:
            return Vault(self.config.home, self.config.vault_key)
        except VaultError as exc:
            raise RegistryError(str(exc)) from None

    def ingest(
        self,
        path: Path,
        *,
        name: str,
        provider: str,
        provider_code: str | None = None,
        level: str | None = None,
        encoding: str = "auto",
        title: str | None = None,
        industry: str = "",
        by: Actor,
        progress: Progress | None = None,
        source_name: str | None = None,
    ) -> IngestResult:
        """Ingest ``path`` as a new raw version of ``name`` (publishing the entry if it is new).

        ``provider_code`` (the provider's 统一社会信用代码) is required for a new dataset; for an
        existing one, ``provider``/``provider_code`` must match its entry. ``level`` grades a new
        entry (default: the highest level the profiler suggests). ``source_name`` is the file name
        to report when ``path`` is a temporary copy (an upload).
        """
        require_role(by, CUSTODIAN)
        note = progress or (lambda _: None)
        check_name(name)
        if level is not None:
            try:
                level = Level(level.upper()).value
            except ValueError:
                raise RegistryError(f"unknown level {level!r}: use L1, L2, L3 or L4") from None
        provider = (provider or "").strip()
        if not provider:
            raise RegistryError("the provider's name (提供方名称, --provider) is required")
        if provider_code is not None and not is_valid_uscc(provider_code.strip()):
            raise RegistryError(
                f"提供方代码 {provider_code!r} is not a valid 统一社会信用代码 "
                "(GB 32100: 18 upper-case characters ending in a correct check character)"
            )
        existing = self._existing(name)
        if existing is None and provider_code is None:
            raise RegistryError(
                f"dataset {name!r} is new: its provider's 统一社会信用代码 (提供方代码, --provider-code) is required "
                "to publish its catalog entry (双鸭山 第十二条)"
            )
        if existing is not None:
            self._check_same_provider(existing, provider, provider_code)

        note(f"reading {source_name or Path(path).name}")
        parsed = read_source(Path(path), encoding, label=source_name)
        table = parsed.table
        names = table.column_names
        if existing is not None:
            catalogued = [item.name for item in existing.items]
            if set(names) != set(catalogued):
                missing = sorted(set(catalogued) - set(names))
                extra = sorted(set(names) - set(catalogued))
                raise RegistryError(
                    f"the file's columns differ from the catalog entry of {name!r}"
                    + (f"; missing: {', '.join(missing)}" if missing else "")
                    + (f"; not catalogued: {', '.join(extra)}" if extra else "")
                    + ": a new version keeps the catalogued columns (classify new columns in a new entry)"
                )

        note(f"profiling {table.num_rows:,} rows × {len(names)} columns")
        profiles = profile_columns(table.to_pandas())
        columns = [{"name": n, "type": _column_type(table.schema.field(n).type)} for n in names]

        note("encrypting the raw copy into the vault")
        plaintext = canonical_parquet(table)
        parquet_sha256 = hashlib.sha256(plaintext).hexdigest()
        next_version = (max((v.version for v in existing.versions), default=0) + 1) if existing else 1
        try:
            stored = self.vault.put(name, next_version, plaintext)
        except VaultError as exc:
            raise RegistryError(f"the raw copy could not be stored: {exc}") from None
        del plaintext

        note("recording the version in the catalog and the ledger")
        report = {
            "source": {
                "file": source_name or Path(path).name,
                "format": parsed.data_format,
                "encoding": parsed.encoding,
                "bytes": parsed.bytes,
                "sha256": parsed.sha256,
                **({"sheet": parsed.sheet} if parsed.sheet else {}),
            },
            "parquet_sha256": parquet_sha256,
            "parquet_bytes": stored.bytes,
            "profile": [p.as_json() for p in profiles],
        }
        try:
            with self.recorder.change(by) as change:
                catalog = type(self.catalog)(JoinedRecorder(change, self.recorder), self.config)
                published = existing is None
                if published:
                    catalog.publish(
                        self._entry(name, provider, provider_code or "", level, title, industry, parsed, profiles),
                        by=by,
                    )
                catalog.suggest(
                    name,
                    {p.name: {"pii_type": p.pii_type, "level": p.level, "confidence": p.confidence} for p in profiles},
                    by=by,
                )
                version = catalog.add_version(
                    name,
                    kind=VersionKind.RAW,
                    rows=table.num_rows,
                    columns=columns,
                    content_sha256=parsed.sha256,
                    path=stored.path,
                    report=report,
                    by=by,
                )
                change.log(
                    "dataset.ingested",
                    f"dataset:{name}",
                    {
                        "version": version.version,
                        "format": parsed.data_format,
                        "encoding": parsed.encoding,
                        "rows": table.num_rows,
                        "source_bytes": parsed.bytes,
                        "source_sha256": parsed.sha256,
                        "parquet_sha256": parquet_sha256,
                        "vault_path": stored.path,
                    },
                )
        except BaseException:
            self.vault.delete(stored.path)
            raise
        by_name = {p.name: p for p in profiles}
        return IngestResult(
            dataset=name,
            version=version.version,
            rows=table.num_rows,
            columns=[
                {
                    **col,
                    "pii_type": by_name[col["name"]].pii_type,
                    "level": by_name[col["name"]].level,
                    "confidence": by_name[col["name"]].confidence,
                }
                for col in columns
            ],
            encoding=parsed.encoding,
            sha256=parsed.sha256,
            vault_path=stored.path,
            data_format=parsed.data_format,
            published=published,
            profiles=profiles,
        )

    def _existing(self, name: str) -> Any:
        try:
            return self.catalog.get(name)
        except NotFoundError:
            return None

    @staticmethod
    def _check_same_provider(existing: Any, provider: str, provider_code: str | None) -> None:
        if provider != existing.provider_name or (
            provider_code is not None and provider_code != existing.provider_code
        ):
            raise RegistryError(
                f"dataset {existing.name!r} is provided by {existing.provider_name} ({existing.provider_code}); "
                f"a file from {provider} cannot become a version of it: ingest it under another name"
            )

    @staticmethod
    def _entry(
        name: str,
        provider: str,
        provider_code: str,
        level: str | None,
        title: str | None,
        industry: str,
        parsed: ParsedFile,
        profiles: list[ColumnProfile],
    ) -> CatalogEntry:
        """The 资源目录 entry of a new dataset, its data items graded as the profiler suggests."""
        items = [
            DataItem(
                name=p.name,
                format=_column_type(parsed.table.schema.field(p.name).type),
                pii_type=p.pii_type,
                level=Level(p.level),
                personal_info=p.personal_info,
                sensitive_personal_info=p.sensitive,
            )
            for p in profiles
        ]
        return CatalogEntry(
            name=name,
            title=(title or "").strip() or name,
            data_format=parsed.data_format,
            industry=industry.strip() or DEFAULT_INDUSTRY,
            provider_name=provider,
            provider_code=provider_code.strip(),
            items=items,
            level=Level(level or max_level(profiles)),
        )
