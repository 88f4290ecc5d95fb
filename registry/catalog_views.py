"""The catalog's input and output shapes: a 资源目录 entry as the rules name its fields, and its views.

Input models take English attribute names or the Chinese field names of the rules (aliases, with
``populate_by_name``), so an entry can be written the way a 资源目录 form reads (双鸭山 第十二条)
or the way code writes it. ``ResourceView.as_json()`` is a public contract (``keyong dataset show
--json``, ``GET /datasets/NAME``): its ``catalog`` key carries the Chinese field names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from registry.vocabulary import Level, OpeningType, OperationStatus, SharingType

# English attribute -> the field name of the 资源目录 (双鸭山 第十二条; 黑龙江 第十三条). The two legal
# bases are not in 第十二条's list but the rules ask for them beside the type (黑龙江 第二十一条(三), 第三十三条).
CATALOG_FIELDS: dict[str, str] = {
    "title": "数据资源名称",
    "summary": "数据资源摘要",
    "data_format": "数据格式",
    "industry": "行业分类",
    "coverage_time": "数据覆盖时间",
    "coverage_region": "数据覆盖地域",
    "update_frequency": "更新频率",
    "provider_name": "提供方名称",
    "provider_code": "提供方代码",
    "sharing_type": "共享类型",
    "sharing_conditions": "共享条件",
    "sharing_method": "共享方式",
    "sharing_legal_basis": "共享依据",
    "open_to_public": "是否向社会开放",
    "opening_type": "开放类型",
    "opening_conditions": "开放条件",
    "opening_legal_basis": "开放依据",
    "operation_status": "授权运营状态",
    "operation_scenarios": "授权运营应用场景",
}
ITEM_FIELDS: dict[str, str] = {"name": "数据项名称", "format": "数据项格式", "pii_type": "PII类型", "level": "分级"}

# Short and English spellings people type for the types; stored as the rules' own words.
_SHARING_WORDS = {
    "无条件": SharingType.UNCONDITIONAL,
    "有条件": SharingType.CONDITIONAL,
    "不予": SharingType.NONE,
    "unconditional": SharingType.UNCONDITIONAL,
    "conditional": SharingType.CONDITIONAL,
    "none": SharingType.NONE,
}
_OPENING_WORDS = {
    "无条件": OpeningType.UNCONDITIONAL,
    "有条件": OpeningType.CONDITIONAL,
    "不予": OpeningType.NONE,
    "unconditional": OpeningType.UNCONDITIONAL,
    "conditional": OpeningType.CONDITIONAL,
    "none": OpeningType.NONE,
}


def _short_type(value: Any, words: dict[str, Any]) -> Any:
    if isinstance(value, str):
        key = value.strip()
        return words.get(key.lower(), words.get(key, key))
    return value


class DataItem(BaseModel):
    """数据项: one column as the catalog declares it (name, format, PII type, level)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(alias="数据项名称", min_length=1, max_length=128)
    format: str = Field("string", alias="数据项格式", min_length=1, max_length=32)
    pii_type: str | None = Field(None, alias="PII类型", max_length=32)
    level: Level | None = Field(None, alias="分级")
    # None: personal information exactly when a PII type is named.
    personal_info: bool | None = Field(None, alias="个人信息")
    sensitive_personal_info: bool = Field(False, alias="敏感个人信息")


class CatalogEntry(BaseModel):
    """A 资源目录 entry to publish: every field 双鸭山 第十二条 lists, plus classification and provenance.

    ``name`` is the machine name (SQL view name and ``/data/NAME.parquet``). Fields left out take the
    rules' defaults: an unstated 共享类型 is 无条件共享 (黑龙江 第二十一条(二)); an unstated 开放类型 is
    不予开放 for data holding personal information (第三十三条, 不予开放类(一)) and 无条件开放 otherwise
    (第三十三条, 无条件开放类(三)); an unstated level is the highest of the columns' levels, or L2.
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=2, max_length=64)
    title: str = Field(alias="数据资源名称", min_length=1, max_length=200)
    summary: str = Field("", alias="数据资源摘要", max_length=4000)
    data_format: str = Field(alias="数据格式", min_length=1, max_length=32)
    industry: str = Field(alias="行业分类", min_length=1, max_length=64)
    coverage_time: str = Field("", alias="数据覆盖时间", max_length=64)
    coverage_region: str = Field("", alias="数据覆盖地域", max_length=128)
    update_frequency: str = Field("", alias="更新频率", max_length=32)
    provider_name: str = Field(alias="提供方名称", min_length=1, max_length=200)
    provider_code: str = Field(alias="提供方代码", max_length=64)  # checked as a USCC by the catalog
    sharing_type: SharingType | None = Field(None, alias="共享类型")
    sharing_conditions: str = Field("", alias="共享条件", max_length=4000)
    sharing_method: str = Field("", alias="共享方式", max_length=64)
    sharing_legal_basis: str = Field("", alias="共享依据", max_length=4000)
    open_to_public: bool = Field(False, alias="是否向社会开放")
    opening_type: OpeningType | None = Field(None, alias="开放类型")
    opening_conditions: str = Field("", alias="开放条件", max_length=4000)
    opening_legal_basis: str = Field("", alias="开放依据", max_length=4000)
    operation_status: OperationStatus = Field(OperationStatus.ELIGIBLE, alias="授权运营状态")
    operation_scenarios: list[str] = Field(default_factory=list, alias="授权运营应用场景")
    items: list[DataItem] = Field(default_factory=list, alias="数据项")
    level: Level | None = Field(None, alias="分级")
    personal_info: bool | None = Field(None, alias="个人信息")
    sensitive_personal_info: bool | None = Field(None, alias="敏感个人信息")
    # 双鸭山 第四十三条: obtained by sharing from another region or department -> consent before licensing.
    obtained_via_sharing: bool = Field(False, alias="共享获取")
    source_region: str = Field("", alias="来源地区", max_length=128)

    @field_validator("sharing_type", mode="before")
    @classmethod
    def _sharing_words(cls, value: Any) -> Any:
        return _short_type(value, _SHARING_WORDS)

    @field_validator("opening_type", mode="before")
    @classmethod
    def _opening_words(cls, value: Any) -> Any:
        return _short_type(value, _OPENING_WORDS)

    @field_validator("operation_scenarios")
    @classmethod
    def _scenarios(cls, value: list[str]) -> list[str]:
        cleaned = [s.strip() for s in value if s.strip()]
        return list(dict.fromkeys(cleaned))


UPDATABLE = frozenset(CATALOG_FIELDS) | {"obtained_via_sharing", "source_region"}
"""What ``Catalog.update`` may change: the catalog fields and provenance. The name is an identity,
the data items follow the data (versions), and levels and flags change only through ``classify``."""

ALIASES: dict[str, str] = {
    **{field.alias: name for name, field in CatalogEntry.model_fields.items() if field.alias},
    **{name: name for name in CatalogEntry.model_fields},
}
"""Any accepted key (English or Chinese) -> the English attribute name."""


class ColumnClass(BaseModel):
    """The custodian's classification of one column (双鸭山 第十一条).

    Sensitive personal information implies L4 and personal information at least L3; the catalog
    refuses a classification that says otherwise.
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    level: Level = Field(alias="分级")
    pii_type: str | None = Field(None, alias="PII类型", max_length=32)
    personal_info: bool | None = Field(None, alias="个人信息")  # None: exactly when a PII type is named
    sensitive_personal_info: bool = Field(False, alias="敏感个人信息")


class Suggestion(BaseModel):
    """The desensitizer's suggestion for a column, kept beside the custodian's decision."""

    model_config = ConfigDict(extra="forbid")

    pii_type: str | None = Field(None, max_length=32)
    level: Level
    confidence: float = Field(ge=0.0, le=1.0)


class ItemView(BaseModel):
    name: str
    format: str
    pii_type: str | None
    level: Level
    personal_info: bool
    sensitive_personal_info: bool
    suggested_pii_type: str | None = None
    suggested_level: Level | None = None
    confidence: float | None = None
    public_bounds: list[Any] | None = None
    public_domain: list[Any] | None = None

    def catalog_json(self) -> dict[str, Any]:
        """The 数据项 object of the catalog, keyed as the rules name its fields."""
        return {"数据项名称": self.name, "数据项格式": self.format, "PII类型": self.pii_type, "分级": self.level.value}


class VersionView(BaseModel):
    """One dataset version: every ingest or desensitization makes one."""

    dataset: str
    version: int
    kind: str
    rows: int
    columns: list[dict[str, Any]]
    content_sha256: str
    path: str
    parent: int | None
    report: dict[str, Any] | None
    created_by: str
    created_at: datetime

    def as_json(self, *, internals: bool = True) -> dict[str, Any]:
        """``internals=False`` leaves out the storage path and the report (what an operator may not see)."""
        data = self.model_dump(mode="json")
        if not internals:
            data.pop("path")
            data.pop("report")
        return data


class ResourceView(BaseModel):
    """A catalog entry as stored, with its classification, lifecycle, versions and licensability."""

    name: str
    title: str
    summary: str
    data_format: str
    industry: str
    coverage_time: str
    coverage_region: str
    update_frequency: str
    provider_name: str
    provider_code: str
    sharing_type: SharingType
    sharing_conditions: str
    sharing_method: str
    sharing_legal_basis: str
    open_to_public: bool
    opening_type: OpeningType
    opening_conditions: str
    opening_legal_basis: str
    operation_status: OperationStatus
    operation_scenarios: list[str]
    items: list[ItemView]
    level: Level
    personal_info: bool
    sensitive_personal_info: bool
    obtained_via_sharing: bool
    source_region: str
    provider_consent: dict[str, Any] | None
    state: str
    revoke_reason: str
    available_until: datetime | None
    versions: list[VersionView]  # live versions only; purged ones are in ``deleted_versions``
    licensing_refusal: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    deleted_versions: list[dict[str, Any]] = []  # metadata of purged versions (registry.retention)
    retention_days: int | None = None  # the custodian's retention period per version, if set

    @property
    def licensable(self) -> bool:
        return self.licensing_refusal is None

    def catalog_json(self) -> dict[str, Any]:
        """The 资源目录 entry keyed by the rules' field names (双鸭山 第十二条)."""
        data: dict[str, Any] = {}
        for attr, key in CATALOG_FIELDS.items():
            value = getattr(self, attr)
            data[key] = value.value if hasattr(value, "value") else value
        data["数据项"] = [item.catalog_json() for item in self.items]
        return data

    def as_json(self, *, internals: bool = True) -> dict[str, Any]:
        """The public contract of ``keyong dataset show --json`` and ``GET /datasets/NAME``."""
        return {
            "name": self.name,
            "catalog": self.catalog_json(),
            "level": self.level.value,
            "personal_info": self.personal_info,
            "sensitive_personal_info": self.sensitive_personal_info,
            "state": self.state,
            "available_until": self.available_until.isoformat() if self.available_until else None,
            "obtained_via_sharing": self.obtained_via_sharing,
            "source_region": self.source_region,
            "provider_consent": self.provider_consent,
            "columns": [item.model_dump(mode="json") for item in self.items],
            "versions": [v.as_json(internals=internals) for v in self.versions],
            "deleted_versions": self.deleted_versions,
            "retention_days": self.retention_days,
            "licensable": self.licensable,
            "licensing_refusal": self.licensing_refusal,
            "updated_at": self.updated_at.isoformat(),
        }


class RequestView(BaseModel):
    """A catalog change waiting for (or decided by) the agency: a restriction or a revocation."""

    id: int
    dataset: str
    kind: str
    changes: dict[str, Any]
    reason: str
    state: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
