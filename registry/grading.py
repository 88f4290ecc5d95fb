"""Classification and grading of resources and their columns (双鸭山 第十一条), and public facts of columns.

A resource is graded at least as high as its most sensitive column; sensitive personal information
is L4 and personal information at least L3. The desensitizer's suggestions are kept beside the
custodian's decision. DP jobs take bounds and category lists from the declared public facts here,
never from the data.
"""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from core import Actor, NotFoundError, Recorder, RegistryError, require_role
from desensitize import load_policy
from registry.catalog_rules import (
    CUSTODIAN,
    MAX_DOMAIN,
    catalog_row,
    refuse_revoked,
    resource_view,
    screen,
    sha256_json,
    subject,
)
from registry.catalog_views import CatalogEntry, ColumnClass, ResourceView, Suggestion
from registry.config import RegistryConfig
from registry.models import ItemRow
from registry.vocabulary import Level


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


def grade_entry(entry: CatalogEntry) -> tuple[Level, bool, bool, builtins.list[ItemRow]]:
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


#: Longest reason for regrading a recognised direct identifier.
MAX_OVERRIDE_REASON_CHARS = 1000


@functools.cache
def identifier_types() -> frozenset[str]:
    """The PII types the lowest level's shipped policy already pseudonymizes or drops: direct identifiers,
    treated at every level whatever the grading (GB/T 37964-2019 假名化/抑制)."""
    rules = load_policy("L1").rules
    return frozenset(t for t, rule in rules.items() if rule.action in {"pseudonymize", "drop"})


def identifier_overrides(items: Mapping[str, ItemRow], given: Mapping[str, ColumnClass]) -> dict[str, str]:
    """Columns of ``given`` the profiler typed as a direct identifier and the grading types otherwise:
    column -> the recognised type."""
    found: dict[str, str] = {}
    for col, c in given.items():
        recognised = items[col].suggested_pii_type or items[col].pii_type
        if recognised in identifier_types() and c.pii_type != recognised:
            found[col] = str(recognised)
    return found


class Grading:
    """The custodian's classification, the desensitizer's suggestions, and declared public bounds."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

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
        """The custodian's grading of the resource and of the given columns (others keep theirs).

        Flags left as ``None`` follow the columns. Refused when the resource is graded below its most
        sensitive column, or a level contradicts the flags (sensitive PI is L4, PI at least L3).

        A column the profiler recognised as a direct identifier (公民身份号码, passport…: a type every
        level's policy pseudonymizes or drops) is not regraded to another PII type, or none, without a
        ``reason``, which is ledgered: such a column silently left the identifier treatment, and a licence's
        linked copies then failed only in the server log (red team 18; 个人信息保护法 第七十三条(四)).
        """
        require_role(by, CUSTODIAN)
        try:
            resource_level = Level(level)
            given = {col: ColumnClass.model_validate(c) for col, c in (columns or {}).items()}
        except (ValueError, ValidationError) as exc:
            raise RegistryError(f"classification not valid: {exc}") from None
        now = self.config.now()
        with self.recorder.change(by) as change:
            row = catalog_row(change.session, name, lock=True)
            refuse_revoked(row, "classified")
            items = {item.name: item for item in row.items}
            unknown = sorted(set(given) - set(items))
            if unknown:
                raise RegistryError(
                    f"dataset {name!r} has no column(s) {', '.join(unknown)}; its columns: {', '.join(items)}"
                )
            reason = (reason or "").strip()
            overrides = _checked_overrides(items, given, reason)
            graded = _graded_columns(items, given)
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
                subject(name),
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
                    **({"identifier_overrides": overrides, "reason": reason} if overrides else {}),
                },
            )
            return resource_view(row, self.config.now())

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
            row = catalog_row(change.session, name, lock=True)
            refuse_revoked(row, "changed")
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
                subject(name),
                {
                    "columns": {
                        col: {"pii_type": s.pii_type, "level": s.level.value, "confidence": s.confidence}
                        for col, s in sorted(parsed.items())
                    }
                },
            )
            return resource_view(row, self.config.now())

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
            screen(values, "the domain")
            clean_domain = values
        with self.recorder.change(by) as change:
            row = catalog_row(change.session, name, lock=True)
            refuse_revoked(row, "changed")
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
                subject(name),
                {
                    "column": column,
                    "bounds": clean_bounds,
                    "domain_size": len(clean_domain) if clean_domain is not None else None,
                    "domain_sha256": sha256_json(clean_domain) if clean_domain is not None else None,
                },
            )
            return resource_view(row, self.config.now())


def _checked_overrides(items: Mapping[str, ItemRow], given: Mapping[str, ColumnClass], reason: str) -> dict[str, str]:
    """The recognised direct identifiers this grading regrades (column → type); refused without a reason."""
    overrides = identifier_overrides(items, given)
    if overrides and not reason:
        raise RegistryError(
            f"the profiler recognised {', '.join(f'{c!r} as {t}' for c, t in overrides.items())}: a direct "
            "identifier the policy pseudonymizes or drops at every level. Regrade it to another type only "
            "with a reason (it is ledgered); linked copies of the dataset need its pseudonymized person key"
        )
    if len(reason) > MAX_OVERRIDE_REASON_CHARS:
        raise RegistryError(f"the reason is at most {MAX_OVERRIDE_REASON_CHARS} characters")
    return overrides


def _graded_columns(
    items: Mapping[str, ItemRow], given: Mapping[str, ColumnClass]
) -> dict[str, tuple[Level, bool, bool]]:
    """Each column's (level, personal, sensitive): the given ones graded anew, the others as they are."""
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
    return graded


__all__ = ["Grading", "grade_entry"]
