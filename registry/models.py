"""Tables of the registry: catalog, data items, dataset versions, operators, licences, products,
objections, violations, findings, usage records and destructions.

Lists (scenarios, domains, schemas, lineage) are JSON columns: they are read whole with their row
and never queried by element, and JSON keeps SQLite and PostgreSQL on one schema. Times are
UTC-aware everywhere (:class:`UTCDateTime`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core import Base, utcnow

# --- catalog ---------------------------------------------------------------------------------


class ResourceRow(Base):
    """One 资源目录 entry (双鸭山 第十二条) with its classification (第十一条) and lifecycle."""

    __tablename__ = "resources"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # machine name: job view, /data/NAME.parquet
    title: Mapped[str] = mapped_column(String(200))  # 数据资源名称
    summary: Mapped[str] = mapped_column(Text, default="")  # 数据资源摘要
    data_format: Mapped[str] = mapped_column(String(32))  # 数据格式
    industry: Mapped[str] = mapped_column(String(64))  # 行业分类
    coverage_time: Mapped[str] = mapped_column(String(64), default="")  # 数据覆盖时间
    coverage_region: Mapped[str] = mapped_column(String(128), default="")  # 数据覆盖地域
    update_frequency: Mapped[str] = mapped_column(String(32), default="")  # 更新频率
    provider_name: Mapped[str] = mapped_column(String(200))  # 提供方名称
    provider_code: Mapped[str] = mapped_column(String(18))  # 提供方代码 (统一社会信用代码)
    sharing_type: Mapped[str] = mapped_column(String(16))  # 共享类型
    sharing_conditions: Mapped[str] = mapped_column(Text, default="")  # 共享条件
    sharing_method: Mapped[str] = mapped_column(String(64), default="")  # 共享方式
    sharing_legal_basis: Mapped[str] = mapped_column(Text, default="")
    open_to_public: Mapped[bool] = mapped_column(Boolean, default=False)  # 是否向社会开放
    opening_type: Mapped[str] = mapped_column(String(16))  # 开放类型
    opening_conditions: Mapped[str] = mapped_column(Text, default="")  # 开放条件
    opening_legal_basis: Mapped[str] = mapped_column(Text, default="")
    operation_status: Mapped[str] = mapped_column(String(16))  # 授权运营状态
    operation_scenarios: Mapped[list[Any]] = mapped_column(default=list)  # 授权运营应用场景
    level: Mapped[str] = mapped_column(String(2))  # 分级 L1..L4
    personal_info: Mapped[bool] = mapped_column(Boolean, default=False)
    sensitive_personal_info: Mapped[bool] = mapped_column(Boolean, default=False)
    # 双鸭山 第四十三条: data obtained by sharing from another region or department needs the
    # sharing provider's consent before it may be licensed.
    obtained_via_sharing: Mapped[bool] = mapped_column(Boolean, default=False)
    source_region: Mapped[str] = mapped_column(String(128), default="")
    provider_consent: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="published")
    revoke_reason: Mapped[str] = mapped_column(Text, default="")
    available_until: Mapped[datetime | None] = mapped_column(nullable=True)  # end of the 6-month grace
    # Days each version is kept after it was made (SATRE 3.1.09); None: the instance default, if any.
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    items: Mapped[list[ItemRow]] = relationship(
        back_populates="resource", order_by="ItemRow.position", cascade="all, delete-orphan"
    )
    versions: Mapped[list[VersionRow]] = relationship(back_populates="resource", order_by="VersionRow.version")


class ItemRow(Base):
    """数据项: one column of a resource, its format, PII type and level."""

    __tablename__ = "resource_items"
    __table_args__ = (UniqueConstraint("resource_id", "name", name="uq_resource_items_resource_id_name"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))  # 数据项名称
    format: Mapped[str] = mapped_column(String(32))  # 数据项格式
    pii_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    level: Mapped[str] = mapped_column(String(2))
    personal_info: Mapped[bool] = mapped_column(Boolean, default=False)
    sensitive_personal_info: Mapped[bool] = mapped_column(Boolean, default=False)
    # The desensitizer's suggestion, kept beside the custodian's decision.
    suggested_pii_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    suggested_level: Mapped[str | None] = mapped_column(String(2), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Publicly declared bounds or domain (DP jobs take bounds and group lists from here, never from data).
    public_bounds: Mapped[list[Any] | None] = mapped_column(nullable=True)
    public_domain: Mapped[list[Any] | None] = mapped_column(nullable=True)

    resource: Mapped[ResourceRow] = relationship(back_populates="items")


class VersionRow(Base):
    """A dataset version: every ingest or desensitization makes one (row count, schema, content hash)."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("resource_id", "version", name="uq_dataset_versions_resource_id_version"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # raw | desensitized
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"), nullable=True)
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[Any]] = mapped_column()  # [{"name", "type"}]
    content_sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512))  # relative to the instance home (or an fsspec URL)
    report: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    created_by: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A purged version keeps its metadata, marked deleted (registry.retention).
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    deleted_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    deleted_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    resource: Mapped[ResourceRow] = relationship(back_populates="versions")


class CatalogRequestRow(Base):
    """A change that needs the agency's approval: a more restrictive type, or a revocation."""

    __tablename__ = "catalog_requests"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # restrict | revoke
    changes: Mapped[dict[str, Any]] = mapped_column()
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    requested_by: Mapped[str] = mapped_column(String(160))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")


# --- operators and licences ------------------------------------------------------------------


class OperatorRow(Base):
    """An operating company (运营机构); ``name`` is also the name of its principal."""

    __tablename__ = "operator_orgs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)  # 统一社会信用代码, GB 32100 checked
    qualification: Mapped[str] = mapped_column(String(16), default="qualified")
    suspended_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LicenceRow(Base):
    """授权运营协议: who may process which data, for which scenarios, until when (三权分置)."""

    __tablename__ = "licences"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operator_orgs.id"), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    domains: Mapped[list[Any]] = mapped_column(default=list)  # 行业分类 covered in 分领域授权
    scenarios: Mapped[list[Any]] = mapped_column(default=list)  # 应用场景
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    fee_class: Mapped[str] = mapped_column(String(8))
    price_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="draft")
    publicity_days: Mapped[int] = mapped_column(Integer, default=0)
    publicity_ends_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    operator: Mapped[OperatorRow] = relationship()
    datasets: Mapped[list[LicenceDatasetRow]] = relationship(
        back_populates="licence", cascade="all, delete-orphan", order_by="LicenceDatasetRow.resource_id"
    )
    events: Mapped[list[LicenceEventRow]] = relationship(
        back_populates="licence", cascade="all, delete-orphan", order_by="LicenceEventRow.id"
    )
    copies: Mapped[list[LicenceCopyRow]] = relationship(order_by="LicenceCopyRow.id", viewonly=True)


class LicenceDatasetRow(Base):
    """A dataset in a licence's scope, with its privacy budget (ε, δ) and what was spent of it."""

    __tablename__ = "licence_datasets"
    __table_args__ = (UniqueConstraint("licence_id", "resource_id", name="uq_licence_datasets_licence_id_resource_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"), index=True)
    epsilon_budget: Mapped[float] = mapped_column(Float)
    epsilon_spent: Mapped[float] = mapped_column(Float, default=0.0)
    delta_budget: Mapped[float] = mapped_column(Float, default=1e-6)
    delta_spent: Mapped[float] = mapped_column(Float, default=0.0)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The link group (``desensitize.linkage.group_name``: "a+b") this dataset is granted jointly with;
    # None: analysed alone, its pseudonyms keyed for this licence and this dataset only (issue 23).
    link_group: Mapped[str | None] = mapped_column(String(300), nullable=True)

    licence: Mapped[LicenceRow] = relationship(back_populates="datasets")
    resource: Mapped[ResourceRow] = relationship()


class LicenceCopyRow(Base):
    """A licence copy (issue 23): a dataset's desensitized copy as one licence sees it.

    Derived from the base desensitized version ``base_version_id`` (never from raw data): its pseudonyms
    re-keyed for the licence and its link group (``link_group``: the dataset alone, or the datasets granted
    jointly), sealed under the dataset's data key at ``path``, with the guard's prints of the per-licence
    pseudonyms at ``fingerprints``. ``shares_base``: a copy holding no pseudonym is the same under every
    licence, so the row names the base file (nothing in it is keyed; nothing is written twice).
    """

    __tablename__ = "licence_copies"
    __table_args__ = (
        UniqueConstraint("licence_id", "base_version_id", name="uq_licence_copies_licence_id_base_version_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"), index=True)
    base_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"))
    base_version: Mapped[int] = mapped_column(Integer)
    link_group: Mapped[str] = mapped_column(String(300))
    shares_base: Mapped[bool] = mapped_column(Boolean, default=False)
    path: Mapped[str] = mapped_column(String(512))  # relative to the instance home
    fingerprints: Mapped[str | None] = mapped_column(String(512), nullable=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    resource: Mapped[ResourceRow] = relationship()


class LicenceEventRow(Base):
    """One transition of a licence, with who made it and why (also in the ledger)."""

    __tablename__ = "licence_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(160))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    licence: Mapped[LicenceRow] = relationship(back_populates="events")


# --- monitoring ------------------------------------------------------------------------------


class ViolationRow(Base):
    """A refused or blocked act of an operator; enough of them in a window suspend it."""

    __tablename__ = "violations"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operator_orgs.id"), index=True, nullable=True)
    operator_name: Mapped[str] = mapped_column(String(128))
    licence_id: Mapped[int | None] = mapped_column(ForeignKey("licences.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(128), default="")  # e.g. job:42
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class FindingRow(Base):
    """A usage-monitoring finding raised for the agency (第三十一条): open until resolved."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operator_orgs.id"), index=True, nullable=True)
    licence_id: Mapped[int | None] = mapped_column(ForeignKey("licences.id"), nullable=True)
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("resources.id"), nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="open")
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolution: Mapped[str] = mapped_column(Text, default="")


class UsageRow(Base):
    """使用记录 of a licensed dataset: a job and its scenario, a release, a copy stored or destroyed.

    Kept at least three years like the ledger (黑龙江 第二十八条; 双鸭山 第二十条).
    """

    __tablename__ = "usage_records"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"), index=True)
    licence_id: Mapped[int | None] = mapped_column(ForeignKey("licences.id"), index=True, nullable=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operator_orgs.id"), nullable=True)
    event: Mapped[str] = mapped_column(String(32))  # job.admitted | job.ran | product.released | copy.destroyed
    scenario: Mapped[str] = mapped_column(String(128), default="")
    subject: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class DestructionRow(Base):
    """Irreversible destruction of an operator's working copies and outputs when a licence ends."""

    __tablename__ = "destructions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    files: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    manifest_sha256: Mapped[str] = mapped_column(String(64))  # SHA-256 over the sorted "path sha256" lines
    by: Mapped[str] = mapped_column(String(160))
    at: Mapped[datetime] = mapped_column(default=utcnow)


# --- products and objections -----------------------------------------------------------------


class ProductRow(Base):
    """数据产品和服务 registered on release (双鸭山 第五十条) with lineage and attribution (第四十一条)."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operator_orgs.id"), index=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    job: Mapped[str] = mapped_column(String(64))  # the job's id, as the sandbox names it
    scenario: Mapped[str] = mapped_column(String(128))
    lineage: Mapped[dict[str, Any]] = mapped_column()  # datasets+versions, code hash, guard report, review
    attribution: Mapped[dict[str, Any]] = mapped_column()  # data source and acquisition date, travels inside
    fee_class: Mapped[str] = mapped_column(String(8))
    price_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    artifacts: Mapped[list[Any]] = mapped_column(default=list)  # [{"name", "bytes", "sha256", "path"}]
    state: Mapped[str] = mapped_column(String(16), default="available")
    registered_by: Mapped[str] = mapped_column(String(160))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)

    operator: Mapped[OperatorRow] = relationship()


class ObjectionRow(Base):
    """异议 against a product or a catalog entry (双鸭山 第四十条): delivery stops while it is open."""

    __tablename__ = "objections"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    target_kind: Mapped[str] = mapped_column(String(16))  # product | resource | licence
    target_id: Mapped[int] = mapped_column(Integer)
    filed_by: Mapped[str] = mapped_column(String(160))
    filed_role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="open")
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    resolution: Mapped[str] = mapped_column(Text, default="")  # the reason the objector reads
    resolved_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)


metadata = Base.metadata


class DataKeyRow(Base):
    """A data key of files at rest (issue 22, SATRE 2.8.01), wrapped under the instance's master key.

    ``scope`` says what it covers (``dataset:NAME``: copies and fingerprints; ``licence:ID``: job
    outputs; ``products:ID``: products released under the licence). ``live_scope`` equals ``scope``
    while the key lives and is NULL once destroyed, so a scope has at most one live key (unique).
    Destroying a key clears ``wrapped``: the files it sealed are unreadable from then on.
    """

    __tablename__ = "data_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # hex of the 16-byte key id in file headers
    scope: Mapped[str] = mapped_column(String(160), index=True)
    live_scope: Mapped[str | None] = mapped_column(String(160), unique=True, nullable=True)
    wrapped: Mapped[str | None] = mapped_column(String(96), nullable=True)  # hex of AES-KW(master, key)
    master_id: Mapped[str] = mapped_column(String(16))  # which master key wraps it (hex, not the key)
    created_by: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    destroyed_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    destroyed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    destroyed_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
