"""``keyong dataset ingest``: read a raw file, profile its columns, lock it in the vault, version it.

The flow (DESIGN.md, Data flow; issue 4):

1. Read the file strictly (:mod:`registry.source_files`) — CSV (UTF-8, UTF-8 with BOM or GB18030),
   Parquet or XLSX. CSV and XLSX cells are read as strings, so the leading zeros of codes and the
   ``X`` of resident IDs survive.
   Anything malformed (an encoding that is neither, ragged rows, an empty file, missing or
   duplicate headers, binary data) is refused with a message that says where and what to fix,
   before anything is written; so is a file over a bound of :class:`registry.config.IngestLimits`
   (columns, rows, cell length, an XLSX's inflated size), or with nested or binary columns (issue 17).
2. Profile the columns (:func:`desensitize.profiling.profile_columns`): the custodian's starting
   point for classification and grading (双鸭山 第十一条 分类分级).
3. Write the canonical Parquet into the encrypted vault (黑龙江 第三十八条; 双鸭山 第三十五条
   原始数据不出域: the raw copy is never mounted into a sandbox).
4. In ONE database transaction with its ledger entries: publish the catalog entry if the dataset is
   new (资源目录, 双鸭山 第十二条), record the profiler's suggestions, add a ``raw`` version, and log
   ``dataset.ingested``. If that transaction is refused, the vault file is removed again: a refused
   ingest leaves no vault file, no catalog entry and no ledger entry.

Crash safety (issue 17): every ingest runs inside a :class:`registry.scratch.Scratch`, which notes the
dataset before its vault file is written; an upload's scratch copy is sealed under a key that dies
with the process. :func:`registry.leftovers.sweep_home` (at every instance start) removes the scratch of dead
ingests and the vault files they wrote without committing a catalog row, so a ``kill -9`` at any step
leaves neither plaintext nor a half-registered version.

``content_sha256`` of a raw version is the SHA-256 of the **source file's bytes** as delivered, so
a provider can check with ``sha256sum`` that the platform holds exactly what it sent; the SHA-256
of the canonical Parquet plaintext inside the vault is kept in the version's report
(``parquet_sha256``) and in the ``dataset.ingested`` ledger entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import Actor, JoinedRecorder, NotFoundError, Recorder, RegistryError, require_role
from registry.catalog import Catalog, check_name
from registry.catalog_views import CatalogEntry, DataItem, ResourceView, VersionView
from registry.config import IngestLimits, RegistryConfig
from registry.scratch import Scratch
from registry.source_checks import table_to_pandas
from registry.source_files import (
    ENCODINGS,
    FORMATS,
    MAX_HEADER,
    FileInvalidError,
    FileRefusedError,
    FileTooLargeError,
    ParsedFile,
    canonical_parquet,
    read_source,
)
from registry.vault import Vault, VaultError, VaultObject
from registry.vocabulary import Level, VersionKind

if TYPE_CHECKING:
    import pyarrow as pa

    from desensitize import ColumnProfile

CUSTODIAN = "custodian"
DEFAULT_INDUSTRY = "未分类"
Progress = Callable[[str], None]
_log = logging.getLogger("keyong.ingest")


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


def _column_type(arrow_type: pa.DataType) -> str:
    return str(arrow_type)[:32]


@dataclass(frozen=True)
class _NewEntry:
    """What publishes a new dataset's catalog entry (unused for a new version of an existing one)."""

    provider: str
    provider_code: str
    level: str | None
    title: str | None
    industry: str


class Ingestor:
    """Reads raw files into the vault and the catalog (custodian)."""

    def __init__(self, recorder: Recorder, config: RegistryConfig, catalog: Catalog) -> None:
        self.recorder = recorder
        self.config = config
        self.catalog = catalog

    @property
    def limits(self) -> IngestLimits:
        return self.config.ingest_limits

    @property
    def vault(self) -> Vault:
        if self.config.vault_key is None:
            raise RegistryError("this instance has no vault key: raw data cannot be stored unencrypted")
        try:
            return Vault(self.config.home, self.config.vault_key, storage=self.config.artifacts())
        except VaultError as exc:
            raise RegistryError(str(exc)) from None

    def ingest(
        self,
        path: Path | bytes,
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
        scratch: Scratch | None = None,
    ) -> IngestResult:
        """Ingest ``path`` as a new raw version of ``name`` (publishing the entry if it is new).

        ``provider_code`` (the provider's 统一社会信用代码) is required for a new dataset; for an
        existing one, ``provider``/``provider_code`` must match its entry. ``level`` grades a new
        entry (default: the highest level the profiler suggests). ``source_name`` is the file name
        to report when ``path`` is a temporary copy, and is required when ``path`` is the bytes of an
        upload (decrypted from its sealed scratch copy). ``scratch`` is the upload's scratch; without one
        the ingest opens its own, so the sweeper can tell it is alive.
        """
        require_role(by, CUSTODIAN)
        note = progress or (lambda _: None)
        existing, entry = self._check_request(name, provider, provider_code, level, title, industry)
        label = source_name or (Path(path).name if isinstance(path, Path | str) else "upload")
        with contextlib.ExitStack() as stack:
            session = scratch or stack.enter_context(Scratch(self.config.home))
            return self._ingest(path, label, name, existing, entry, encoding, by, note, session)

    def _ingest(
        self,
        path: Path | bytes,
        label: str,
        name: str,
        existing: ResourceView | None,
        entry: _NewEntry | None,
        encoding: str,
        by: Actor,
        note: Progress,
        scratch: Scratch,
    ) -> IngestResult:
        from desensitize import profile_columns

        note(f"reading {label}")
        source = path if isinstance(path, bytes) else Path(path)
        parsed = read_source(source, encoding, label=label, limits=self.limits)
        table = parsed.table
        names = table.column_names
        if existing is not None:
            _check_same_columns(existing, names)

        note(f"profiling {table.num_rows:,} rows × {len(names)} columns")
        profiles = profile_columns(table_to_pandas(table, label))
        columns = [{"name": n, "type": _column_type(table.schema.field(n).type)} for n in names]

        note("encrypting the raw copy into the vault")
        plaintext = canonical_parquet(table)
        parquet_sha256 = hashlib.sha256(plaintext).hexdigest()
        next_version = (max((v.version for v in existing.versions), default=0) + 1) if existing else 1
        scratch.note_pending(name)  # before the vault file exists: the sweeper spares a live ingest's file
        try:
            stored = self.vault.put(name, next_version, plaintext)
        except VaultError as exc:
            raise RegistryError(f"the raw copy could not be stored: {exc}") from None
        del plaintext

        note("recording the version in the catalog and the ledger")
        report = _report(parsed, label, parquet_sha256, stored, profiles)
        try:
            version = self._record(name, entry, parsed, profiles, columns, stored, report, by=by)
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
            published=entry is not None,
            profiles=profiles,
        )

    def _check_request(
        self,
        name: str,
        provider: str,
        provider_code: str | None,
        level: str | None,
        title: str | None,
        industry: str,
    ) -> tuple[ResourceView | None, _NewEntry | None]:
        """The existing entry of ``name`` (or ``None``) and, for a new one, what publishes it; or a refusal."""
        from desensitize import is_valid_uscc

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
            return existing, None
        return None, _NewEntry(provider, provider_code or "", level, title, industry)

    def _record(
        self,
        name: str,
        entry: _NewEntry | None,
        parsed: ParsedFile,
        profiles: list[ColumnProfile],
        columns: list[dict[str, Any]],
        stored: VaultObject,
        report: dict[str, Any],
        *,
        by: Actor,
    ) -> VersionView:
        """In one transaction with its ledger entries: publish (if new), suggest, add the raw version."""
        table = parsed.table
        with self.recorder.change(by) as change:
            catalog = type(self.catalog)(JoinedRecorder(change, self.recorder), self.config)
            if entry is not None:
                catalog.publish(
                    self._entry(
                        name,
                        entry.provider,
                        entry.provider_code,
                        entry.level,
                        entry.title,
                        entry.industry,
                        parsed,
                        profiles,
                    ),
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
                    "parquet_sha256": report["parquet_sha256"],
                    "vault_path": stored.path,
                },
            )
        return version

    def _existing(self, name: str) -> ResourceView | None:
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
        from desensitize import max_level

        # model_validate by attribute names (populate_by_name): the models' fields carry Chinese aliases.
        items = [
            DataItem.model_validate(
                {
                    "name": p.name,
                    "format": _column_type(parsed.table.schema.field(p.name).type),
                    "pii_type": p.pii_type,
                    "level": Level(p.level),
                    "personal_info": p.personal_info,
                    "sensitive_personal_info": p.sensitive,
                }
            )
            for p in profiles
        ]
        return CatalogEntry.model_validate(
            {
                "name": name,
                "title": (title or "").strip() or name,
                "data_format": parsed.data_format,
                "industry": industry.strip() or DEFAULT_INDUSTRY,
                "provider_name": provider,
                "provider_code": provider_code.strip(),
                "items": items,
                "level": Level(level or max_level(profiles)),
            }
        )


def _check_same_columns(existing: ResourceView, names: list[str]) -> None:
    """A new version keeps the catalogued columns."""
    catalogued = [item.name for item in existing.items]
    if set(names) != set(catalogued):
        missing = sorted(set(catalogued) - set(names))
        extra = sorted(set(names) - set(catalogued))
        raise RegistryError(
            f"the file's columns differ from the catalog entry of {existing.name!r}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not catalogued: {', '.join(extra)}" if extra else "")
            + ": a new version keeps the catalogued columns (classify new columns in a new entry)"
        )


def _report(
    parsed: ParsedFile, source: str, parquet_sha256: str, stored: VaultObject, profiles: list[ColumnProfile]
) -> dict[str, Any]:
    """The raw version's report: the source as delivered, the vault's Parquet, the profile."""
    return {
        "source": {
            "file": source,
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


__all__ = [
    "CUSTODIAN",
    "DEFAULT_INDUSTRY",
    "ENCODINGS",
    "FORMATS",
    "MAX_HEADER",
    "FileInvalidError",
    "FileRefusedError",
    "FileTooLargeError",
    "IngestLimits",
    "IngestResult",
    "Ingestor",
    "ParsedFile",
    "Progress",
    "canonical_parquet",
    "read_source",
]
