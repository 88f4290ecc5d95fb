"""Dataset versions: every ingest or desensitization is a numbered version of its resource.

A desensitized copy names the raw version it derives from, so a product's lineage reaches back to
what was ingested (双鸭山 第五十条: 登记 with lineage).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select

from core import Actor, Recorder, RegistryError, require_role
from registry.catalog_rules import (
    CUSTODIAN,
    SHA256_PATTERN,
    catalog_row,
    refuse_revoked,
    subject,
)
from registry.catalog_views import (
    VersionView,
)
from registry.config import RegistryConfig
from registry.models import VersionRow
from registry.vocabulary import VersionKind


def _checked(
    kind: VersionKind | str, rows: int, columns: Sequence[Mapping[str, Any]], content_sha256: str, path: str
) -> tuple[VersionKind, list[dict[str, Any]]]:
    """The version's kind and its schema ``[{"name", "type"}]``, or a refusal saying what is malformed."""
    try:
        version_kind = VersionKind(kind)
    except ValueError:
        raise RegistryError(f"unknown version kind {kind!r}: use raw or desensitized") from None
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise RegistryError(f"rows must be a non-negative integer, not {rows!r}")
    if not isinstance(content_sha256, str) or not SHA256_PATTERN.fullmatch(content_sha256):
        raise RegistryError("content_sha256 must be 64 lower-case hex digits (SHA-256)")
    if not path or len(path) > 512:
        raise RegistryError("a version needs the path of its file (at most 512 characters)")
    schema: list[dict[str, Any]] = []
    for col in columns:
        if not isinstance(col, Mapping) or not isinstance(col.get("name"), str) or not col["name"]:
            raise RegistryError(f"each column of the schema is {{'name', 'type'}}, not {col!r}")
        schema.append({"name": col["name"], "type": str(col.get("type", ""))})
    return version_kind, schema


def _view(name: str, version: VersionRow, parent: int | None) -> VersionView:
    return VersionView(
        dataset=name,
        version=version.version,
        kind=version.kind,
        rows=version.rows,
        columns=version.columns,
        content_sha256=version.content_sha256,
        path=version.path,
        parent=parent,
        report=version.report,
        created_by=version.created_by,
        created_at=version.created_at,
    )


class Versions:
    """Numbered versions of each resource, with their schema, hash and file."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def add_version(
        self,
        name: str,
        *,
        kind: VersionKind | str,
        rows: int,
        columns: Sequence[Mapping[str, Any]],
        content_sha256: str,
        path: str,
        report: Mapping[str, Any] | None = None,
        parent: int | None = None,
        by: Actor,
    ) -> VersionView:
        """Record a dataset version (every ingest or desensitization): numbered 1, 2, 3… per resource.

        ``columns`` is the schema ``[{"name", "type"}]``; ``parent`` the version number it derives from
        (a desensitized copy's raw version); ``path`` is relative to the instance home or an fsspec URL.
        """
        require_role(by, CUSTODIAN)
        version_kind, schema = _checked(kind, rows, columns, content_sha256, path)
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            row = catalog_row(session, name, lock=True)
            refuse_revoked(row, "given new versions")
            parent_row: VersionRow | None = None
            if parent is not None:
                parent_row = next((v for v in row.versions if v.version == parent), None)
                if parent_row is None:
                    raise RegistryError(f"dataset {name!r} has no version {parent} to derive from")
            number = (
                session.scalar(select(func.max(VersionRow.version)).where(VersionRow.resource_id == row.id)) or 0
            ) + 1
            version = VersionRow(
                resource=row,  # also appends to row.versions, for later steps of the same transaction
                version=number,
                kind=version_kind.value,
                parent_id=parent_row.id if parent_row else None,
                rows=rows,
                columns=schema,
                content_sha256=content_sha256,
                path=path,
                report=dict(report) if report is not None else None,
                created_by=by.name,
                created_at=now,
            )
            session.add(version)
            session.flush()
            change.log(
                "dataset.version_added",
                subject(name),
                {
                    "version": number,
                    "kind": version_kind.value,
                    "rows": rows,
                    "columns": len(schema),
                    "content_sha256": content_sha256,
                    "parent": parent,
                },
            )
            return _view(name, version, parent)


__all__ = ["Versions"]
