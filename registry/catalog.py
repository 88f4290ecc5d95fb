"""The catalog of data resources (资源目录), their classification and grading, and their versions.

What the rules ask of a catalog, and where each rule lives here:

- every field of a 资源目录 entry (双鸭山 第十二条; 黑龙江 第十三条): :class:`CatalogEntry`;
- 共享类型: an unstated type is 无条件共享, 有条件共享 states its conditions, and 有条件/不予共享 cite their
  legal basis (黑龙江 第二十一条); 开放类型 likewise (第三十三条): :meth:`Catalog._catalog_values`;
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

Every change is appended to the ledger in its own transaction (subject ``dataset:NAME``); payloads
carry identifiers, types, levels and hashes. Catalog texts are screened for direct personal
identifiers before anything is written: a catalog describes data, it never holds it.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core import Actor, Change, NotFoundError, Recorder, RegistryError, require_role
from desensitize import direct_identifiers_in, is_valid_uscc
from registry.catalog_views import (
    ALIASES,
    UPDATABLE,
    CatalogEntry,
    ColumnClass,
    ItemView,
    RequestView,
    ResourceView,
    Suggestion,
    VersionView,
)
from registry.config import RegistryConfig
from registry.eligibility import licensing_refusal
from registry.models import CatalogRequestRow, ItemRow, LicenceDatasetRow, LicenceRow, ResourceRow, VersionRow
from registry.vocabulary import (
    Level,
    LicenceState,
    OpeningType,
    RequestState,
    ResourceState,
    SharingType,
    VersionKind,
)

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


def _subject(name: str) -> str:
    return f"dataset:{name}"


def _sha256_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _screen(value: Any, what: str) -> None:
    """Refuse texts that carry direct personal identifiers: the catalog and its ledger entries hold none."""
    kinds = direct_identifiers_in(value)
    if kinds:
        raise RegistryError(
            f"{what} carries {', '.join(kinds)}: the catalog describes data and never holds personal data; remove it"
        )


def _reason(reason: str, what: str = "reason") -> str:
    text = (reason or "").strip()
    if not text:
        raise RegistryError(f"a {what} is required: say why, it is kept with the change and in the ledger")
    if len(text) > 2000:
        raise RegistryError(f"the {what} is too long ({len(text)} characters, at most 2000)")
    _screen(text, f"the {what}")
    return text


def _validation_message(exc: ValidationError) -> str:
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


def _check_flags(what: str, level: Level, personal: bool, sensitive: bool) -> None:
    """双鸭山 第十一条 (分级保护): sensitive personal information is L4; personal information at least L3."""
    if sensitive and level != Level.L4:
        raise RegistryError(
            f"{what} holds sensitive personal information and must be graded L4, not {level} "
            "(双鸭山 第十一条: the level selects the protection)"
        )
    if personal and level.rank < Level.L3.rank:
        raise RegistryError(
            f"{what} holds personal information and must be graded L3 or L4, not {level} "
            "(双鸭山 第十一条: the level selects the protection)"
        )


def _grade_column(
    name: str, level: Level | None, pii_type: str | None, personal: bool | None, sensitive: bool
) -> tuple[Level | None, bool, bool]:
    """A column's (level, personal, sensitive): a named PII type is personal information unless stated."""
    is_personal = personal if personal is not None else (pii_type is not None or sensitive)
    if sensitive and not is_personal:
        raise RegistryError(
            f"column {name!r}: sensitive personal information is personal information; do not mark it otherwise"
        )
    if level is None:
        level = Level.L4 if sensitive else Level.L3 if is_personal else None
    if level is not None:
        _check_flags(f"column {name!r}", level, is_personal, sensitive)
    return level, is_personal, sensitive


def _grade_resource(
    what: str,
    level: Level | None,
    personal: bool | None,
    sensitive: bool | None,
    columns: Sequence[tuple[str, Level, bool, bool]],
) -> tuple[Level, bool, bool]:
    """A resource is graded at least as high as its most sensitive column, and carries its columns' flags."""
    top = max(columns, key=lambda c: c[1].rank) if columns else None
    resolved = Level(level) if level is not None else (top[1] if top else Level.L2)
    personal_columns = [c[0] for c in columns if c[2]]
    sensitive_columns = [c[0] for c in columns if c[3]]
    if personal is False and personal_columns:
        raise RegistryError(
            f"{what} is said to hold no personal information, but column(s) {', '.join(personal_columns)} do: "
            "a resource carries the flags of its columns"
        )
    if sensitive is False and sensitive_columns:
        raise RegistryError(
            f"{what} is said to hold no sensitive personal information, but column(s) "
            f"{', '.join(sensitive_columns)} do: a resource carries the flags of its columns"
        )
    is_sensitive = bool(sensitive_columns) if sensitive is None else sensitive
    is_personal = (bool(personal_columns) or is_sensitive) if personal is None else personal
    if is_sensitive and not is_personal:
        raise RegistryError(f"{what}: sensitive personal information is personal information; do not mark it otherwise")
    if top is not None and resolved.rank < top[1].rank:
        raise RegistryError(
            f"{what} is graded {resolved} but its column {top[0]!r} is {top[1]}: a resource is graded at least as "
            f"high as its most sensitive column (双鸭山 第十一条); grade it {top[1]} or higher"
        )
    _check_flags(what, resolved, is_personal, is_sensitive)
    return resolved, is_personal, is_sensitive


def _catalog_values(entry: CatalogEntry, personal_info: bool) -> dict[str, Any]:
    """The catalog fields to store, with the rules' defaults applied and their conditions checked."""
    values = entry.model_dump(include=set(UPDATABLE))
    _screen({k: v for k, v in values.items() if k != "provider_code"}, "the catalog entry")
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


def _is_restriction(row: ResourceRow, values: Mapping[str, Any]) -> bool:
    """A more restrictive sharing or opening type than the stored one (needs the agency's approval)."""
    sharing = SharingType(values.get("sharing_type", row.sharing_type))
    opening = OpeningType(values.get("opening_type", row.opening_type))
    return sharing.rank > SharingType(row.sharing_type).rank or opening.rank > OpeningType(row.opening_type).rank


def _types_payload(values: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("sharing_type", "opening_type", "open_to_public", "operation_status", "obtained_via_sharing")
    return {key: values[key] for key in keys if key in values}


class Catalog:
    """The 资源目录: publish, change, classify, version, revoke; reads for every role."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    @staticmethod
    def parse_entry(data: Mapping[str, Any]) -> CatalogEntry:
        """A :class:`CatalogEntry` from JSON-like data (English or Chinese keys); refusal says what is wrong."""
        try:
            return CatalogEntry.model_validate(data)
        except ValidationError as exc:
            raise RegistryError(_validation_message(exc)) from None

    # --- reads ---------------------------------------------------------------------------------

    def get(self, name: str) -> ResourceView:
        with self.recorder.read() as session:
            return self._view(self._row(session, name))

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
            return [_request_view(req, name) for req, name in session.execute(query).all()]

    # --- publishing and changes -----------------------------------------------------------------

    def publish(self, entry: CatalogEntry, *, by: Actor) -> ResourceView:
        """Publish a new entry (custodian). Refused when a rule of the catalog is not met; the message says which."""
        require_role(by, CUSTODIAN)
        check_name(entry.name)
        level, personal, sensitive, items = _grade_entry(entry)
        values = _catalog_values(entry, personal)
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
            view = self._view(row)
            change.log(
                "catalog.published",
                _subject(entry.name),
                {
                    "title": row.title,
                    "provider_code": row.provider_code,
                    "industry": row.industry,
                    **_types_payload(values),
                    "level": row.level,
                    "personal_info": personal,
                    "sensitive_personal_info": sensitive,
                    "items": len(items),
                    "entry_sha256": _sha256_json(view.catalog_json()),
                },
            )
        return view

    def update(self, name: str, changes: Mapping[str, Any], *, by: Actor, reason: str) -> ResourceView | RequestView:
        """Change catalog fields (custodian), keyed in English or Chinese.

        A more restrictive 共享类型 or 开放类型 becomes a pending request the agency decides
        (:meth:`decide`); anything else applies at once. Levels and flags change through
        :meth:`classify`; the name and the data items do not change here.
        """
        require_role(by, CUSTODIAN)
        reason = _reason(reason)
        normalized = _normalize_changes(changes)
        now = self.config.now()
        with self.recorder.change(by) as change:
            row = self._row(change.session, name, lock=True)
            _refuse_revoked(row, "changed")
            diff = _merge(row, normalized)
            if _is_restriction(row, diff):
                request = CatalogRequestRow(
                    resource_id=row.id,
                    kind="restrict",
                    changes=diff,
                    reason=reason,
                    state=RequestState.PENDING.value,
                    requested_by=by.name,
                    requested_at=now,
                )
                change.session.add(request)
                change.session.flush()
                change.log(
                    "catalog.change_requested",
                    _subject(name),
                    {"request": request.id, "kind": "restrict", "fields": sorted(diff), **_types_payload(diff)},
                )
                return _request_view(request, name)
            _apply(row, diff, now)
            change.session.flush()
            change.log("catalog.updated", _subject(name), {"fields": sorted(diff), **_types_payload(diff)})
            return self._view(row)

    def decide(self, request_id: int, approve: bool, *, by: Actor, reason: str) -> RequestView:
        """The agency approves or rejects a pending restriction or revocation; approval applies it."""
        require_role(by, AGENCY)
        reason = _reason(reason)
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            request = session.get(CatalogRequestRow, request_id, with_for_update=True)
            if request is None:
                raise NotFoundError(f"no catalog request {request_id}")
            if request.state != RequestState.PENDING:
                raise RegistryError(
                    f"catalog request {request_id} was already {request.state} by {request.decided_by}: "
                    "a decision is final; file a new request"
                )
            row = session.execute(
                select(ResourceRow).where(ResourceRow.id == request.resource_id).with_for_update()
            ).scalar_one()
            request.decided_by, request.decided_at, request.decision_reason = by.name, now, reason
            payload = {"request": request.id, "kind": request.kind}
            if not approve:
                request.state = RequestState.REJECTED.value
                change.log("catalog.change_rejected", _subject(row.name), payload)
                session.flush()
                return _request_view(request, row.name)
            request.state = RequestState.APPROVED.value
            change.log("catalog.change_approved", _subject(row.name), payload)
            if request.kind == "restrict":
                _refuse_revoked(row, "changed")
                # Checked again against the entry as it is now; it may have changed since the request.
                diff = _merge(row, request.changes, require_change=False)
                if diff:
                    _apply(row, diff, now)
                    change.log(
                        "catalog.updated",
                        _subject(row.name),
                        {"fields": sorted(diff), "request": request.id, **_types_payload(diff)},
                    )
            elif request.kind == "revoke":
                self._revoke(change, row, request, now)
            else:  # pragma: no cover - kinds are written by this module only
                raise RegistryError(f"unknown catalog request kind {request.kind!r}")
            session.flush()
            return _request_view(request, row.name)

    # --- revocation (黑龙江 第十六条) --------------------------------------------------------------

    def request_revocation(self, name: str, *, by: Actor, reason: str) -> RequestView:
        """The custodian asks to revoke an entry (黑龙江 第十六条: 提交目录撤销申请, 经审核后撤销)."""
        require_role(by, CUSTODIAN)
        reason = _reason(reason)
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            row = self._row(session, name, lock=True)
            if row.state != ResourceState.PUBLISHED:
                raise RegistryError(f"dataset {name!r} is already {row.state}")
            pending = session.scalar(
                select(CatalogRequestRow.id).where(
                    CatalogRequestRow.resource_id == row.id,
                    CatalogRequestRow.kind == "revoke",
                    CatalogRequestRow.state == RequestState.PENDING.value,
                )
            )
            if pending is not None:
                raise RegistryError(f"dataset {name!r} already has a pending revocation request ({pending})")
            request = CatalogRequestRow(
                resource_id=row.id,
                kind="revoke",
                changes={"state": ResourceState.REVOKED.value},
                reason=reason,
                state=RequestState.PENDING.value,
                requested_by=by.name,
                requested_at=now,
            )
            session.add(request)
            session.flush()
            change.log(
                "catalog.revocation_requested",
                _subject(name),
                {"request": request.id, "in_use": _in_use(session, row.id)},
            )
            return _request_view(request, name)

    def finalize_revocations(self, *, by: Actor) -> builtins.list[str]:
        """Revoke for good the entries whose six-month grace has ended (黑龙江 第十六条); their names."""
        require_role(by, CUSTODIAN, AGENCY)
        now = self.config.now()
        with self.recorder.change(by) as change:
            rows = change.session.scalars(
                select(ResourceRow)
                .where(ResourceRow.state == ResourceState.REVOKING.value, ResourceRow.available_until <= now)
                .order_by(ResourceRow.name)
                .with_for_update()
            ).all()
            for row in rows:
                row.state = ResourceState.REVOKED.value
                row.updated_at = now
                until = row.available_until.isoformat() if row.available_until else None
                change.log(
                    "catalog.revoked",
                    _subject(row.name),
                    {"state": ResourceState.REVOKED.value, "available_until": until, "grace_ended": True},
                )
            return [row.name for row in rows]

    def _revoke(self, change: Change, row: ResourceRow, request: CatalogRequestRow, now: datetime) -> None:
        """Approved revocation: in use -> REVOKING for the grace period; otherwise REVOKED at once."""
        if row.state != ResourceState.PUBLISHED:
            raise RegistryError(f"dataset {row.name!r} is already {row.state}")
        in_use = _in_use(change.session, row.id)
        grace = self.config.revocation_grace_days if in_use else 0
        row.state = (ResourceState.REVOKING if in_use else ResourceState.REVOKED).value
        row.available_until = now + timedelta(days=grace)
        row.revoke_reason = request.reason
        row.updated_at = now
        change.log(
            "catalog.revoked",
            _subject(row.name),
            {
                "request": request.id,
                "state": row.state,
                "in_use": in_use,
                "grace_days": grace,
                "available_until": row.available_until.isoformat(),
            },
        )

    # --- provenance (双鸭山 第四十三条) ------------------------------------------------------------

    def record_consent(
        self, name: str, *, provider: str, reference: str, on: date | None = None, by: Actor
    ) -> ResourceView:
        """Record the sharing provider's consent to authorized operation of data obtained by sharing.

        双鸭山 第四十三条: 以公共数据共享方式获取的其他地区或部门的公共数据, 用于授权运营的应征得共享数据提供部门同意.
        """
        require_role(by, CUSTODIAN)
        provider, reference = (provider or "").strip(), (reference or "").strip()
        if not provider or not reference:
            raise RegistryError("a consent needs the consenting provider and a reference to its document")
        if len(provider) > 200 or len(reference) > 200:
            raise RegistryError("provider and reference are at most 200 characters each")
        _screen([provider, reference], "the consent")
        now = self.config.now()
        given = on or now.date()
        if given > now.date():
            raise RegistryError(f"a consent dated {given} lies in the future: record it once it is given")
        with self.recorder.change(by) as change:
            row = self._row(change.session, name, lock=True)
            _refuse_revoked(row, "changed")
            if not row.obtained_via_sharing:
                raise RegistryError(
                    f"dataset {name!r} is not marked as obtained by sharing from another region or department, "
                    "so no provider's consent is needed (双鸭山 第四十三条); mark it first if it was"
                )
            consent = {"provider": provider, "reference": reference, "date": given.isoformat(), "recorded_by": by.name}
            row.provider_consent = consent
            row.updated_at = now
            change.session.flush()
            change.log(
                "catalog.consent_recorded",
                _subject(name),
                {"provider": provider, "reference": reference, "date": given.isoformat()},
            )
            return self._view(row)

    # --- classification and grading (双鸭山 第十一条) ----------------------------------------------

    def classify(
        self,
        name: str,
        *,
        level: Level | str,
        personal_info: bool | None = None,
        sensitive_personal_info: bool | None = None,
        columns: Mapping[str, ColumnClass | Mapping[str, Any]] | None = None,
        by: Actor,
    ) -> ResourceView:
        """The custodian's grading of the resource and of the given columns (others keep theirs).

        Flags left as ``None`` follow the columns. Refused when the resource is graded below its most
        sensitive column, or a level contradicts the flags (sensitive PI is L4, PI at least L3).
        """
        require_role(by, CUSTODIAN)
        try:
            resource_level = Level(level)
            given = {col: ColumnClass.model_validate(c) for col, c in (columns or {}).items()}
        except (ValueError, ValidationError) as exc:
            raise RegistryError(f"classification not valid: {exc}") from None
        now = self.config.now()
        with self.recorder.change(by) as change:
            row = self._row(change.session, name, lock=True)
            _refuse_revoked(row, "classified")
            items = {item.name: item for item in row.items}
            unknown = sorted(set(given) - set(items))
            if unknown:
                raise RegistryError(
                    f"dataset {name!r} has no column(s) {', '.join(unknown)}; its columns: {', '.join(items)}"
                )
            graded: dict[str, tuple[Level, bool, bool]] = {}
            for col, item in items.items():
                if col in given:
                    c = given[col]
                    col_level, personal, sensitive = _grade_column(
                        col, c.level, c.pii_type, c.personal_info, c.sensitive_personal_info
                    )
                    assert col_level is not None
                    graded[col] = (col_level, personal, sensitive)
                else:
                    graded[col] = (Level(item.level), item.personal_info, item.sensitive_personal_info)
            final_level, personal, sensitive = _grade_resource(
                f"dataset {name!r}",
                resource_level,
                personal_info,
                sensitive_personal_info,
                [(col, *g) for col, g in graded.items()],
            )
            for col, c in given.items():
                item = items[col]
                item.level, item.personal_info, item.sensitive_personal_info = (
                    graded[col][0].value,
                    graded[col][1],
                    graded[col][2],
                )
                item.pii_type = c.pii_type
            row.level, row.personal_info, row.sensitive_personal_info = final_level.value, personal, sensitive
            row.updated_at = now
            change.session.flush()
            change.log(
                "catalog.classified",
                _subject(name),
                {
                    "level": row.level,
                    "personal_info": personal,
                    "sensitive_personal_info": sensitive,
                    "columns": {
                        col: {
                            "level": items[col].level,
                            "pii_type": items[col].pii_type,
                            "personal_info": items[col].personal_info,
                            "sensitive_personal_info": items[col].sensitive_personal_info,
                        }
                        for col in sorted(given)
                    },
                },
            )
            return self._view(row)

    def suggest(
        self, name: str, suggestions: Mapping[str, Suggestion | Mapping[str, Any]], *, by: Actor
    ) -> ResourceView:
        """Keep the desensitizer's suggested PII type, level and confidence per column beside the decision."""
        require_role(by, CUSTODIAN)
        try:
            parsed = {col: Suggestion.model_validate(s) for col, s in suggestions.items()}
        except ValidationError as exc:
            raise RegistryError(f"suggestions not valid: {exc}") from None
        if not parsed:
            raise RegistryError("no suggestions given")
        with self.recorder.change(by) as change:
            row = self._row(change.session, name, lock=True)
            _refuse_revoked(row, "changed")
            items = {item.name: item for item in row.items}
            unknown = sorted(set(parsed) - set(items))
            if unknown:
                raise RegistryError(f"dataset {name!r} has no column(s) {', '.join(unknown)}")
            for col, s in parsed.items():
                items[col].suggested_pii_type = s.pii_type
                items[col].suggested_level = s.level.value
                items[col].confidence = s.confidence
            change.session.flush()
            change.log(
                "catalog.suggested",
                _subject(name),
                {
                    "columns": {
                        col: {"pii_type": s.pii_type, "level": s.level.value, "confidence": s.confidence}
                        for col, s in sorted(parsed.items())
                    }
                },
            )
            return self._view(row)

    def set_public_bounds(
        self,
        name: str,
        column: str,
        bounds: Sequence[float] | None = None,
        domain: Sequence[Any] | None = None,
        *,
        by: Actor,
    ) -> ResourceView:
        """Declare a column's public bounds ``[lo, hi]`` and/or domain (both ``None`` clears them).

        DP jobs take bounds and category lists from here, never from the data: bounds read off the
        data would leak it. A domain never enumerates personal information.
        """
        require_role(by, CUSTODIAN)
        clean_bounds: list[float] | None = None
        if bounds is not None:
            if (
                len(bounds) != 2
                or any(isinstance(b, bool) or not isinstance(b, int | float) for b in bounds)
                or not all(math.isfinite(b) for b in bounds)
                or not bounds[0] < bounds[1]
            ):
                raise RegistryError(f"bounds must be two finite numbers [lo, hi] with lo < hi, not {bounds!r}")
            clean_bounds = [bounds[0], bounds[1]]
        clean_domain: list[Any] | None = None
        if domain is not None:
            values = list(domain)
            if not values or len(values) > MAX_DOMAIN:
                raise RegistryError(f"a domain lists 1 to {MAX_DOMAIN} values")
            if any(isinstance(v, bool) or not isinstance(v, str | int | float) for v in values):
                raise RegistryError("domain values are strings or numbers")
            if len(set(values)) != len(values):
                raise RegistryError("domain values must be distinct")
            _screen(values, "the domain")
            clean_domain = values
        with self.recorder.change(by) as change:
            row = self._row(change.session, name, lock=True)
            _refuse_revoked(row, "changed")
            item = next((i for i in row.items if i.name == column), None)
            if item is None:
                raise NotFoundError(f"dataset {name!r} has no column {column!r}")
            if clean_domain is not None and item.personal_info:
                raise RegistryError(
                    f"column {column!r} holds personal information: a public domain would enumerate it; "
                    "declare domains only for non-personal columns"
                )
            item.public_bounds, item.public_domain = clean_bounds, clean_domain
            change.session.flush()
            change.log(
                "catalog.bounds_set",
                _subject(name),
                {
                    "column": column,
                    "bounds": clean_bounds,
                    "domain_size": len(clean_domain) if clean_domain is not None else None,
                    "domain_sha256": _sha256_json(clean_domain) if clean_domain is not None else None,
                },
            )
            return self._view(row)

    # --- versions ------------------------------------------------------------------------------

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
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            row = self._row(session, name, lock=True)
            _refuse_revoked(row, "given new versions")
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
                _subject(name),
                {
                    "version": number,
                    "kind": version_kind.value,
                    "rows": rows,
                    "columns": len(schema),
                    "content_sha256": content_sha256,
                    "parent": parent,
                },
            )
            return VersionView(
                dataset=name,
                version=number,
                kind=version.kind,
                rows=rows,
                columns=schema,
                content_sha256=content_sha256,
                path=path,
                parent=parent,
                report=version.report,
                created_by=by.name,
                created_at=now,
            )

    # --- helpers -------------------------------------------------------------------------------

    def _row(self, session: Session, name: str, *, lock: bool = False) -> ResourceRow:
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

    def _view(self, row: ResourceRow) -> ResourceView:
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
            ],
            licensing_refusal=licensing_refusal(row, self.config.now()),
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    # Last, so that ``list`` names the builtin in every annotation above.
    def list(self) -> builtins.list[ResourceView]:
        """Every entry of the catalog, by name (revoked ones too: the catalog keeps its history)."""
        with self.recorder.read() as session:
            rows = session.scalars(
                select(ResourceRow)
                .order_by(ResourceRow.name)
                .options(selectinload(ResourceRow.items), selectinload(ResourceRow.versions))
            ).all()
            return [self._view(row) for row in rows]


def _grade_entry(entry: CatalogEntry) -> tuple[Level, bool, bool, builtins.list[ItemRow]]:
    """Grade a new entry's columns and the entry itself; ungraded columns are L2 (L1 in an L1 resource)."""
    seen: set[str] = set()
    graded: builtins.list[tuple[str, Level | None, bool, bool]] = []
    for item in entry.items:
        if item.name in seen:
            raise RegistryError(f"data item {item.name!r} is listed twice")
        seen.add(item.name)
        graded.append(
            (
                item.name,
                *_grade_column(item.name, item.level, item.pii_type, item.personal_info, item.sensitive_personal_info),
            )
        )
    level, personal, sensitive = _grade_resource(
        f"dataset {entry.name!r}",
        entry.level,
        entry.personal_info,
        entry.sensitive_personal_info,
        [(n, lvl, p, s) for n, lvl, p, s in graded if lvl is not None],
    )
    fill = Level.L1 if level == Level.L1 else Level.L2
    rows = [
        ItemRow(
            position=position,
            name=item.name,
            format=item.format,
            pii_type=item.pii_type,
            level=(col_level or fill).value,
            personal_info=personal_col,
            sensitive_personal_info=sensitive_col,
        )
        for position, (item, (_, col_level, personal_col, sensitive_col)) in enumerate(
            zip(entry.items, graded, strict=True)
        )
    ]
    return level, personal, sensitive, rows


def _normalize_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
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


def _merge(row: ResourceRow, changes: Mapping[str, Any], *, require_change: bool = True) -> dict[str, Any]:
    """The stored values ``changes`` would alter, checked against every rule of the catalog."""
    base = {attr: getattr(row, attr) for attr in UPDATABLE}
    try:
        merged = CatalogEntry.model_validate({**base, **changes, "name": row.name})
    except ValidationError as exc:
        raise RegistryError(_validation_message(exc)) from None
    values = _catalog_values(merged, row.personal_info)
    if row.obtained_via_sharing and not values["obtained_via_sharing"]:
        raise RegistryError(
            "data obtained by sharing stays marked as such: its provider's consent governs its licensing "
            "(双鸭山 第四十三条)"
        )
    diff = {attr: value for attr, value in values.items() if getattr(row, attr) != value}
    if not diff and require_change:
        raise RegistryError(f"these changes leave dataset {row.name!r} as it is")
    return diff


def _apply(row: ResourceRow, diff: Mapping[str, Any], now: datetime) -> None:
    for attr, value in diff.items():
        setattr(row, attr, value)
    row.updated_at = now


def _refuse_revoked(row: ResourceRow, what: str) -> None:
    if row.state == ResourceState.REVOKED:
        raise RegistryError(f"dataset {row.name!r} is revoked and cannot be {what}")


def _in_use(session: Session, resource_id: int) -> bool:
    """In use: in the scope of a licence under publicity, active or suspended (黑龙江 第十六条: 已被使用)."""
    found = session.scalar(
        select(LicenceDatasetRow.id)
        .join(LicenceRow, LicenceRow.id == LicenceDatasetRow.licence_id)
        .where(LicenceDatasetRow.resource_id == resource_id, LicenceRow.state.in_(IN_USE_STATES))
        .limit(1)
    )
    return found is not None


def _request_view(request: CatalogRequestRow, name: str) -> RequestView:
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
