"""The controlled vocabularies of the rules: levels, sharing and opening types, licence modes and states.

Values are the words the regulations use, so that a catalog exported as JSON reads like the
资源目录 it implements. Each enum orders its members from least to most restrictive where the
rules compare them (a change towards a more restrictive type needs an agency's approval).
"""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """分类分级 (双鸭山市公共数据管理暂行办法 第十一条): the level selects the protection applied."""

    L1 = "L1"  # 公开: may be opened as is
    L2 = "L2"  # 一般: internal, no personal information
    L3 = "L3"  # 敏感: personal information; desensitized copies only
    L4 = "L4"  # 高度敏感: sensitive personal information; desensitized copies, stricter policy

    @property
    def rank(self) -> int:
        return int(self.value[1])


class SharingType(StrEnum):
    """共享类型 (黑龙江省政务数据管理暂行办法 第二十一条), least to most restrictive."""

    UNCONDITIONAL = "无条件共享"
    CONDITIONAL = "有条件共享"
    NONE = "不予共享"

    @property
    def rank(self) -> int:
        return list(SharingType).index(self)


class OpeningType(StrEnum):
    """开放类型 (黑龙江省政务数据管理暂行办法 第三十三条), least to most restrictive."""

    UNCONDITIONAL = "无条件开放"
    CONDITIONAL = "有条件开放"
    NONE = "不予开放"

    @property
    def rank(self) -> int:
        return list(OpeningType).index(self)


class OperationStatus(StrEnum):
    """授权运营状态 of a catalog entry."""

    NOT_INCLUDED = "未纳入授权运营"
    ELIGIBLE = "可授权运营"
    OPERATING = "授权运营中"


class ResourceState(StrEnum):
    PUBLISHED = "published"
    REVOKING = "revoking"  # 撤销申请已批准: still served to current licences until the grace period ends
    REVOKED = "revoked"


class VersionKind(StrEnum):
    RAW = "raw"  # the vault copy: encrypted at rest, never mounted into a sandbox
    DESENSITIZED = "desensitized"  # what sandboxes mount


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Qualification(StrEnum):
    """An operating company's standing (第四十八条: capable, in good standing, secure)."""

    QUALIFIED = "qualified"
    SUSPENDED = "suspended"  # access closed until the agency restores it (第三十一条)


class LicenceMode(StrEnum):
    """授权运营模式 (双鸭山 第四十六条)."""

    WHOLE = "整体授权"
    DOMAIN = "分领域授权"
    SCENARIO = "依场景授权"


class LicenceState(StrEnum):
    DRAFT = "draft"
    PUBLICITY = "publicity"  # 公示 (第四十八条): objections may be filed
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"

    @property
    def ended(self) -> bool:
        return self in (LicenceState.REVOKED, LicenceState.EXPIRED)


class FeeClass(StrEnum):
    """公益 products are free; 经营性 products carry a price (双鸭山 第四十四条: 政府指导价)."""

    PUBLIC_WELFARE = "公益"
    COMMERCIAL = "经营性"


class ProductState(StrEnum):
    AVAILABLE = "available"
    SUSPENDED = "suspended"  # an objection is open: delivery stops at once (第四十条)
    WITHDRAWN = "withdrawn"
    DELETED = "deleted"  # its files were destroyed with the only data it derives from (registry.retention)


class ObjectionState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class ObjectionOutcome(StrEnum):
    """第四十条: 撤回数据、恢复开放或依法处理后开放."""

    WITHDRAW = "withdraw"
    RESTORE = "restore"
    CORRECT = "restore_after_correction"


class ViolationKind(StrEnum):
    NO_LICENCE = "no_active_licence"
    OUT_OF_SCOPE = "dataset_out_of_scope"
    OUT_OF_PURPOSE = "scenario_not_licensed"
    EXPIRED = "licence_expired"
    OPERATOR_SUSPENDED = "operator_suspended"
    BLOCKED_EXPORT = "blocked_export"


class FindingKind(StrEnum):
    """Usage-monitoring findings for the agency (双鸭山 第三十一条, 黑龙江 第二十七条)."""

    OUT_OF_SCOPE = "out_of_scope"
    OUT_OF_PURPOSE = "out_of_purpose"
    IDLE = "unused_3_months"
    BLOCKED_EXPORTS = "repeated_blocked_exports"
    AUTO_SUSPENDED = "operator_auto_suspended"
    REQUEST_OVERDUE = "request_overdue"  # a request past its statutory time limit (issue 24; registry.requests)
    CALENDAR_UNREADABLE = "calendar_override_unreadable"  # HOME/calendar.json broken (issue 24; request_clock)


class EvidenceKind(StrEnum):
    """What a checker saw of a person (SATRE 3.2.02: be reasonably sure of each account holder's identity)."""

    RESIDENT_ID_IN_PERSON = "resident_id_in_person"  # 居民身份证, checked in person
    PASSPORT_IN_PERSON = "passport_in_person"  # 护照 or 港澳台居民居住证, checked in person
    EMPLOYER_LETTER = "employer_letter"  # a letter of the employing organisation under its 统一社会信用代码
    ONLINE_REAL_NAME = "online_real_name"  # an official real-name verification service (实名核验)


#: What a request (data application, demand, correction) may be about: a catalogued dataset, or a catalog
#: entry whose data is not yet in the catalog.
SUBJECT_KINDS = ("dataset", "catalog_entry")

#: The agency's warning horizon: records expiring within this many days are listed (SATRE 1.6.03).
EXPIRING_DAYS = 30
