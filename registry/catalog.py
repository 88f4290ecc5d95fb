"""The catalog of data resources (资源目录), their classification and grading, and their versions.

What the rules ask of a catalog, and where each rule lives here:

- every field of a 资源目录 entry (双鸭山 第十二条; 黑龙江 第十三条): :class:`CatalogEntry`;
- 共享类型: an unstated type is 无条件共享, 有条件共享 states its conditions, and 有条件/不予共享 cite their
  legal basis (黑龙江 第二十一条); 开放类型 likewise (第三十三条): :func:`registry.catalog_rules.catalog_values`;
- a change towards a more restrictive sharing or opening type waits for the agency's approval; less
  restrictive or neutral changes apply at once (:meth:`Catalog.update`, :meth:`Catalog.decide`);
- revocation of an entry already in use keeps it served for six months (黑龙江 第十六条):
  :meth:`Catalog.request_revocation`, :meth:`Catalog.decide`, :meth:`Catalog.finalize_revocations`;
- data obtained by sharing from another region or department needs its provider's consent before it
  is licensed (双鸭山 第四十三条): :meth:`Catalog.record_consent`;
- classification and grading of each resource and column (双鸭山 第十一条): :meth:`Catalog.classify`,
  beside the desensitizer's suggestions (:meth:`Catalog.suggest`);
- whether an entry may enter authorized operation is decided in one place,
  :func:`registry.eligibility.licensing_refusal`, and shown on every view.

:class:`Catalog` is the one object callers hold; it publishes and reads, and hands the rest to its
parts: :mod:`registry.catalog_approval` (changes, decisions, revocation), :mod:`registry.consent`,
:mod:`registry.grading` (classification, suggestions, public bounds) and :mod:`registry.catalog_versions`;
the rules they share are in :mod:`registry.catalog_rules`.

Every change is appended to the ledger in its own transaction (subject ``dataset:NAME``); payloads
carry identifiers, types, levels and hashes. Catalog texts are screened for direct personal
identifiers before anything is written: a catalog describes data, it never holds it.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core import Actor, Recorder, RegistryError, require_role
from registry.catalog_approval import CatalogApproval
from registry.catalog_rules import (
    CUSTODIAN,
    IN_USE_STATES,
    NAME_PATTERN,
    PRIVACY_BASIS,
    RESERVED_NAMES,
    catalog_row,
    catalog_values,
    check_name,
    request_view,
    resource_view,
    sha256_json,
    subject,
    types_payload,
    validation_message,
)
from registry.catalog_versions import Versions
from registry.catalog_views import CatalogEntry, ColumnClass, RequestView, ResourceView, Suggestion, VersionView
from registry.config import RegistryConfig
from registry.consent import Consents
from registry.grading import Grading, grade_entry
from registry.models import CatalogRequestRow, ResourceRow
from registry.vocabulary import Level, RequestState, ResourceState, VersionKind


class Catalog:
    """The 资源目录: publish, change, classify, version, revoke; reads for every role."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config
        self.approval = CatalogApproval(recorder, config)
        self.consents = Consents(recorder, config)
        self.grading = Grading(recorder, config)
        self.version_records = Versions(recorder, config)

    @staticmethod
    def parse_entry(data: Mapping[str, Any]) -> CatalogEntry:
        """A :class:`CatalogEntry` from JSON-like data (English or Chinese keys); refusal says what is wrong."""
        try:
            return CatalogEntry.model_validate(data)
        except ValidationError as exc:
            raise RegistryError(validation_message(exc)) from None

    # --- reads ---------------------------------------------------------------------------------

    def get(self, name: str) -> ResourceView:
        with self.recorder.read() as session:
            return resource_view(catalog_row(session, name), self.config.now())

    def versions(self, name: str) -> builtins.list[VersionView]:
        return self.get(name).versions

    def licensing_refusal(self, name: str) -> str | None:
        """Why ``name`` may not be put under a new licence now (see :func:`registry.eligibility.licensing_refusal`)."""
        return self.get(name).licensing_refusal

    def requests(self, state: RequestState | str | None = None) -> builtins.list[RequestView]:
        """Catalog change requests (restrictions, revocations), oldest first; optionally only in ``state``."""
        query = select(CatalogRequestRow, ResourceRow.name).join(ResourceRow).order_by(CatalogRequestRow.id)
        if state is not None:
            try:
                query = query.where(CatalogRequestRow.state == RequestState(state).value)
            except ValueError:
                raise RegistryError(f"unknown request state {state!r}: use pending, approved or rejected") from None
        with self.recorder.read() as session:
            return [request_view(req, name) for req, name in session.execute(query).all()]

    # --- publishing and changes -----------------------------------------------------------------

    def publish(self, entry: CatalogEntry, *, by: Actor) -> ResourceView:
        """Publish a new entry (custodian). Refused when a rule of the catalog is not met; the message says which."""
        require_role(by, CUSTODIAN)
        check_name(entry.name)
        level, personal, sensitive, items = grade_entry(entry)
        values = catalog_values(entry, personal)
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            if session.scalar(select(ResourceRow.id).where(ResourceRow.name == entry.name)) is not None:
                raise RegistryError(f"dataset {entry.name!r} is already in the catalog: change it with an update")
            row = ResourceRow(
                name=entry.name,
                **values,
                level=level.value,
                personal_info=personal,
                sensitive_personal_info=sensitive,
                state=ResourceState.PUBLISHED.value,
                created_by=by.name,
                created_at=now,
                updated_at=now,
            )
            row.items = items
            session.add(row)
            session.flush()
            view = resource_view(row, self.config.now())
            change.log(
                "catalog.published",
                subject(entry.name),
                {
                    "title": row.title,
                    "provider_code": row.provider_code,
                    "industry": row.industry,
                    **types_payload(values),
                    "level": row.level,
                    "personal_info": personal,
                    "sensitive_personal_info": sensitive,
                    "items": len(items),
                    "entry_sha256": sha256_json(view.catalog_json()),
                },
            )
        return view

    # --- changes, decisions and revocation (registry.catalog_approval) -------------------------

    def update(self, name: str, changes: Mapping[str, Any], *, by: Actor, reason: str) -> ResourceView | RequestView:
        return self.approval.update(name, changes, by=by, reason=reason)

    def decide(self, request_id: int, approve: bool, *, by: Actor, reason: str) -> RequestView:
        return self.approval.decide(request_id, approve, by=by, reason=reason)

    def request_revocation(self, name: str, *, by: Actor, reason: str) -> RequestView:
        return self.approval.request_revocation(name, by=by, reason=reason)

    def finalize_revocations(self, *, by: Actor) -> builtins.list[str]:
        return self.approval.finalize_revocations(by=by)

    # --- provenance, grading, versions ---------------------------------------------------------

    def record_consent(
        self, name: str, *, provider: str, reference: str, on: date | None = None, by: Actor
    ) -> ResourceView:
        return self.consents.record_consent(name, provider=provider, reference=reference, on=on, by=by)

    def classify(
        self,
        name: str,
        *,
        level: Level | str,
        personal_info: bool | None = None,
        sensitive_personal_info: bool | None = None,
        columns: Mapping[str, ColumnClass | Mapping[str, Any]] | None = None,
        by: Actor,
        reason: str = "",
    ) -> ResourceView:
        return self.grading.classify(
            name,
            level=level,
            personal_info=personal_info,
            sensitive_personal_info=sensitive_personal_info,
            columns=columns,
            by=by,
            reason=reason,
        )

    def suggest(
        self, name: str, suggestions: Mapping[str, Suggestion | Mapping[str, Any]], *, by: Actor
    ) -> ResourceView:
        return self.grading.suggest(name, suggestions, by=by)

    def set_public_bounds(
        self,
        name: str,
        column: str,
        bounds: Sequence[float] | None = None,
        domain: Sequence[Any] | None = None,
        *,
        by: Actor,
    ) -> ResourceView:
        return self.grading.set_public_bounds(name, column, bounds, domain, by=by)

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
        return self.version_records.add_version(
            name,
            kind=kind,
            rows=rows,
            columns=columns,
            content_sha256=content_sha256,
            path=path,
            report=report,
            parent=parent,
            by=by,
        )

    def list(self) -> builtins.list[ResourceView]:
        """Every entry of the catalog, by name (revoked ones too: the catalog keeps its history)."""
        with self.recorder.read() as session:
            rows = session.scalars(
                select(ResourceRow)
                .order_by(ResourceRow.name)
                .options(selectinload(ResourceRow.items), selectinload(ResourceRow.versions))
            ).all()
            return [resource_view(row, self.config.now()) for row in rows]


__all__ = [
    "IN_USE_STATES",
    "NAME_PATTERN",
    "PRIVACY_BASIS",
    "RESERVED_NAMES",
    "Catalog",
    "check_name",
]
