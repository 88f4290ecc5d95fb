"""Whether a catalog entry may be served, and whether it may enter authorized operation.

Shared by the catalog (publishing, revocation), the licences (granting, activating) and the
scope checks (every job), so that the rules live in one place.
"""

from __future__ import annotations

from datetime import datetime

from registry.models import ResourceRow, VersionRow
from registry.vocabulary import Level, OpeningType, OperationStatus, ResourceState, VersionKind


def is_served(resource: ResourceRow, now: datetime) -> bool:
    """Still available to current licences: published, or revoked less than six months ago.

    黑龙江省政务数据管理暂行办法 第十六条: a catalog entry already in use is provided for six more
    months after its revocation is approved.
    """
    if resource.state == ResourceState.PUBLISHED:
        return True
    return (
        resource.state == ResourceState.REVOKING
        and resource.available_until is not None
        and now < resource.available_until
    )


def desensitized_version(resource: ResourceRow) -> VersionRow | None:
    """The newest desensitized version: the only thing a sandbox ever mounts."""
    candidates = [v for v in resource.versions if v.kind == VersionKind.DESENSITIZED and v.deleted_at is None]
    return candidates[-1] if candidates else None


def licensing_refusal(resource: ResourceRow, now: datetime) -> str | None:
    """Why ``resource`` may not be put under a new licence, or ``None`` when it may.

    - only published entries (a revoked one keeps serving existing licences, 第十六条, but takes no new ones);
    - the catalog must admit it to authorized operation (授权运营状态);
    - 双鸭山 第四十三条: data obtained by sharing from another region or department needs the sharing
      provider's recorded consent;
    - 不予开放 data, and anything holding personal information (L3/L4), enters authorized operation
      only through a desensitized version (第四十三条: no harm to personal privacy; 第三十五条: 原始数据不出域).
    """
    if resource.state != ResourceState.PUBLISHED:
        return f"dataset {resource.name!r} is {resource.state}: it takes no new licences"
    if resource.operation_status == OperationStatus.NOT_INCLUDED:
        status = resource.operation_status
        return f"dataset {resource.name!r} is not admitted to authorized operation (授权运营状态: {status})"
    if resource.obtained_via_sharing and not resource.provider_consent:
        return (
            f"dataset {resource.name!r} was obtained by sharing from {resource.source_region or 'another region'}: "
            "record the sharing provider's consent first (双鸭山 第四十三条)"
        )
    needs_copy = resource.opening_type == OpeningType.NONE or Level(resource.level).rank >= Level.L3.rank
    if needs_copy and desensitized_version(resource) is None:
        return (
            f"dataset {resource.name!r} ({resource.opening_type}, {resource.level}) may enter authorized operation "
            "only through a desensitized version, and it has none yet: run `keyong dataset desensitize`"
        )
    return None
