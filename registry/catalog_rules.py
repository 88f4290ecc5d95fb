"""The catalog's shared rules: names, screening, the 共享/开放 types and their defaults, change
requests, and how a resource row is read.

Used by every part of the catalog (publishing, approval and revocation, consent, grading, versions),
so that each rule is written once. 共享类型 follows 黑龙江 第二十一条, 开放类型 第三十三条; a resource is
"in use" while a living licence covers it (第十六条).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core import NotFoundError, RegistryError
from registry.catalog_views import ALIASES, UPDATABLE, CatalogEntry, ItemView, RequestView, ResourceView, VersionView
from registry.eligibility import licensing_refusal
from registry.models import CatalogRequestRow, LicenceDatasetRow, LicenceRow, ResourceRow
from registry.vocabulary import Level, LicenceState, OpeningType, ResourceState, SharingType

if TYPE_CHECKING:
    pass

CUSTODIAN, AGENCY = "custodian", "agency"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,63}")
# A dataset's name becomes a SQL view name in every job: words a query cannot use unquoted are refused.
_KEYWORDS = (
    "all and any as asc between by case cast check column constraint create cross current default delete desc "
    "distinct drop else end except exists false fetch for foreign from full grant group having in inner insert "
    "intersect into is join lateral left like limit natural not null offset on or order outer primary references "
    "right select table then to true union unique update using values when where window with"
)
RESERVED_NAMES = frozenset(_KEYWORDS.split())
IN_USE_STATES = (LicenceState.PUBLICITY.value, LicenceState.ACTIVE.value, LicenceState.SUSPENDED.value)
PRIVACY_BASIS = "黑龙江 第三十三条 不予开放类(一): 涉及个人隐私"
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
MAX_DOMAIN = 10_000


def subject(name: str) -> str:
    return f"dataset:{name}"


def sha256_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def screen(value: Any, what: str) -> None:
    """Refuse texts that carry direct personal identifiers: the catalog and its ledger entries hold none."""
    from desensitize import direct_identifiers_in

    kinds = direct_identifiers_in(value)
    if kinds:
        raise RegistryError(
            f"{what} carries {', '.join(kinds)}: the catalog describes data and never holds personal data; remove it"
        )


def require_reason(reason: str, what: str = "reason") -> str:
    text = (reason or "").strip()
    if not text:
        raise RegistryError(f"a {what} is required: say why, it is kept with the change and in the ledger")
    if len(text) > 2000:
        raise RegistryError(f"the {what} is too long ({len(text)} characters, at most 2000)")
    screen(text, f"the {what}")
    return text


def validation_message(exc: ValidationError) -> str:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors())
    return f"the catalog entry is not valid: {problems}"


def check_name(name: str) -> None:
    """A machine name: ``[a-z][a-z0-9_]{1,63}``, usable unquoted as a SQL view and as a file name."""
    if not NAME_PATTERN.fullmatch(name or ""):
        raise RegistryError(
            f"dataset name {name!r} is not a machine name: use 2-64 characters, a lower-case letter first, "
            "then lower-case letters, digits and underscores (it names the SQL view and /data/NAME.parquet)"
        )
    if name in RESERVED_NAMES:
        raise RegistryError(f"dataset name {name!r} is an SQL keyword and cannot name a view: choose another")


def catalog_values(entry: CatalogEntry, personal_info: bool) -> dict[str, Any]:
    """The catalog fields to store, with the rules' defaults applied and their conditions checked."""
    from desensitize import is_valid_uscc

    values = entry.model_dump(include=set(UPDATABLE))
    screen({k: v for k, v in values.items() if k != "provider_code"}, "the catalog entry")
    if not is_valid_uscc(entry.provider_code):
        raise RegistryError(
            f"提供方代码 {entry.provider_code!r} is not a valid 统一社会信用代码 "
            "(GB 32100: 18 upper-case characters ending in a correct check character)"
        )
    # 黑龙江 第二十一条: 共享为原则, 不共享为例外; an unstated type, or conditions left unstated, mean 无条件共享.
    sharing = entry.sharing_type or SharingType.UNCONDITIONAL
    if sharing == SharingType.CONDITIONAL and not entry.sharing_conditions:
        raise RegistryError(
            "有条件共享 must state its 共享条件 (scope and purpose of use); without them the entry counts as "
            "无条件共享 (黑龙江 第二十一条(二)): state the conditions, or publish it as 无条件共享"
        )
    if sharing != SharingType.UNCONDITIONAL and not entry.sharing_legal_basis:
        raise RegistryError(
            f"{sharing} must cite its legal basis (共享依据): 黑龙江 第二十一条 makes sharing the rule and "
            "not sharing the exception, resting on a law or administrative regulation"
        )
    # 黑龙江 第三十三条: data touching personal privacy is 不予开放; everything not otherwise listed is 无条件开放.
    opening = entry.opening_type
    opening_basis = entry.opening_legal_basis
    if opening is None:
        opening = OpeningType.NONE if personal_info else OpeningType.UNCONDITIONAL
        if opening == OpeningType.NONE and not opening_basis:
            opening_basis = PRIVACY_BASIS
    if opening == OpeningType.CONDITIONAL and not entry.opening_conditions:
        raise RegistryError("有条件开放 must state its 开放条件 (黑龙江 第三十三条: 应明确具体开放条件)")
    if opening != OpeningType.UNCONDITIONAL and not opening_basis:
        raise RegistryError(
            f"{opening} must cite its legal basis or reason (开放依据): 黑龙江 第三十三条 lists when data is "
            "opened only on conditions or not at all, and asks for the concrete reason"
        )
    if opening == OpeningType.NONE and entry.open_to_public:
        raise RegistryError("是否向社会开放 cannot be true for 不予开放 data: change one of the two")
    values.update(
        sharing_type=sharing.value,
        opening_type=opening.value,
        opening_legal_basis=opening_basis,
        operation_status=entry.operation_status.value,
    )
    return values


def is_restriction(row: ResourceRow, values: Mapping[str, Any]) -> bool:
    """A more restrictive sharing or opening type than the stored one (needs the agency's approval)."""
    sharing = SharingType(values.get("sharing_type", row.sharing_type))
    opening = OpeningType(values.get("opening_type", row.opening_type))
    return sharing.rank > SharingType(row.sharing_type).rank or opening.rank > OpeningType(row.opening_type).rank


def types_payload(values: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("sharing_type", "opening_type", "open_to_public", "operation_status", "obtained_via_sharing")
    return {key: values[key] for key in keys if key in values}


def catalog_row(session: Session, name: str, *, lock: bool = False) -> ResourceRow:
    query = (
        select(ResourceRow)
        .where(ResourceRow.name == name)
        .options(selectinload(ResourceRow.items), selectinload(ResourceRow.versions))
    )
    if lock:
        query = query.with_for_update(of=ResourceRow)
    row = session.scalars(query).first()
    if row is None:
        raise NotFoundError(f"no dataset {name!r} in the catalog")
    return row


def resource_view(row: ResourceRow, now: datetime) -> ResourceView:
    numbers = {v.id: v.version for v in row.versions}
    return ResourceView(
        name=row.name,
        **{attr: getattr(row, attr) for attr in UPDATABLE},
        items=[
            ItemView(
                name=i.name,
                format=i.format,
                pii_type=i.pii_type,
                level=Level(i.level),
                personal_info=i.personal_info,
                sensitive_personal_info=i.sensitive_personal_info,
                suggested_pii_type=i.suggested_pii_type,
                suggested_level=Level(i.suggested_level) if i.suggested_level else None,
                confidence=i.confidence,
                public_bounds=i.public_bounds,
                public_domain=i.public_domain,
            )
            for i in row.items
        ],
        level=Level(row.level),
        personal_info=row.personal_info,
        sensitive_personal_info=row.sensitive_personal_info,
        provider_consent=row.provider_consent,
        state=row.state,
        revoke_reason=row.revoke_reason,
        available_until=row.available_until,
        versions=[
            VersionView(
                dataset=row.name,
                version=v.version,
                kind=v.kind,
                rows=v.rows,
                columns=v.columns,
                content_sha256=v.content_sha256,
                path=v.path,
                parent=numbers.get(v.parent_id) if v.parent_id else None,
                report=v.report,
                created_by=v.created_by,
                created_at=v.created_at,
            )
            for v in row.versions
            if v.deleted_at is None
        ],
        deleted_versions=[
            {
                "version": v.version,
                "kind": v.kind,
                "rows": v.rows,
                "content_sha256": v.content_sha256,
                "parent": numbers.get(v.parent_id) if v.parent_id else None,
                "created_at": v.created_at.isoformat(),
                "deleted_at": v.deleted_at.isoformat(),
                "deleted_by": v.deleted_by,
                "reason": v.deleted_reason,
            }
            for v in row.versions
            if v.deleted_at is not None
        ],
        retention_days=row.retention_days,
        licensing_refusal=licensing_refusal(row, now),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def normalize_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """English attribute names for keys given in English or Chinese; refuse what ``update`` may not change."""
    if not changes:
        raise RegistryError("no changes given")
    normalized: dict[str, Any] = {}
    for key, value in changes.items():
        attr = ALIASES.get(key)
        if attr is None:
            raise RegistryError(f"unknown catalog field {key!r}")
        if attr not in UPDATABLE:
            hint = {
                "name": "a dataset's name is its identity: publish a new entry instead",
                "items": "data items follow the data: ingest a new version",
            }.get(attr, "levels and flags change through classification (keyong dataset classify)")
            raise RegistryError(f"{key!r} cannot be changed by an update: {hint}")
        normalized[attr] = value
    return normalized


def merge_changes(row: ResourceRow, changes: Mapping[str, Any], *, require_change: bool = True) -> dict[str, Any]:
    """The stored values ``changes`` would alter, checked against every rule of the catalog."""
    base = {attr: getattr(row, attr) for attr in UPDATABLE}
    try:
        merged = CatalogEntry.model_validate({**base, **changes, "name": row.name})
    except ValidationError as exc:
        raise RegistryError(validation_message(exc)) from None
    values = catalog_values(merged, row.personal_info)
    if row.obtained_via_sharing and not values["obtained_via_sharing"]:
        raise RegistryError(
            "data obtained by sharing stays marked as such: its provider's consent governs its licensing "
            "(双鸭山 第四十三条)"
        )
    diff = {attr: value for attr, value in values.items() if getattr(row, attr) != value}
    if not diff and require_change:
        raise RegistryError(f"these changes leave dataset {row.name!r} as it is")
    return diff


def apply_changes(row: ResourceRow, diff: Mapping[str, Any], now: datetime) -> None:
    for attr, value in diff.items():
        setattr(row, attr, value)
    row.updated_at = now


def refuse_revoked(row: ResourceRow, what: str) -> None:
    if row.state == ResourceState.REVOKED:
        raise RegistryError(f"dataset {row.name!r} is revoked and cannot be {what}")


def resource_in_use(session: Session, resource_id: int) -> bool:
    """In use: in the scope of a licence under publicity, active or suspended (黑龙江 第十六条: 已被使用)."""
    found = session.scalar(
        select(LicenceDatasetRow.id)
        .join(LicenceRow, LicenceRow.id == LicenceDatasetRow.licence_id)
        .where(LicenceDatasetRow.resource_id == resource_id, LicenceRow.state.in_(IN_USE_STATES))
        .limit(1)
    )
    return found is not None


def request_view(request: CatalogRequestRow, name: str) -> RequestView:
    return RequestView(
        id=request.id,
        dataset=name,
        kind=request.kind,
        changes=request.changes,
        reason=request.reason,
        state=request.state,
        requested_by=request.requested_by,
        requested_at=request.requested_at,
        decided_by=request.decided_by,
        decided_at=request.decided_at,
        decision_reason=request.decision_reason,
    )


__all__ = [
    "AGENCY",
    "CUSTODIAN",
    "IN_USE_STATES",
    "MAX_DOMAIN",
    "NAME_PATTERN",
    "PRIVACY_BASIS",
    "RESERVED_NAMES",
    "SHA256_PATTERN",
    "apply_changes",
    "catalog_row",
    "catalog_values",
    "check_name",
    "is_restriction",
    "merge_changes",
    "normalize_changes",
    "refuse_revoked",
    "request_view",
    "require_reason",
    "resource_in_use",
    "resource_view",
    "screen",
    "sha256_json",
    "subject",
    "types_payload",
    "validation_message",
]
