"""Response documents of the catalog, ingest and desensitized copies (``app.api.catalog``, ``ingest``, ``copies``)."""

from typing import Any

from pydantic import Field

from app.api.schemas.base import Document, example

_SHA = "9c2e" + "0" * 60


class ColumnOut(Document):
    """A data item (数据项) with its classification and grading (双鸭山 第十一条)."""

    name: str
    format: str
    pii_type: str | None
    level: str = Field(description="L1..L4")
    personal_info: bool
    sensitive_personal_info: bool


class VersionOut(Document):
    """One version of a dataset; ``path`` and ``report`` are left out for operators."""

    dataset: str
    version: int
    kind: str = Field(description="raw or desensitized")
    rows: int
    columns: list[dict[str, Any]]
    content_sha256: str
    parent: int | None
    created_by: str
    created_at: str


class DatasetOut(Document):
    """A catalog entry: its 资源目录 fields under ``catalog`` (keyed by the rules' Chinese names),
    grading, lifecycle, versions and whether it may be licensed (and why not)."""

    model_config = example(
        name="traffic", catalog={"数据资源名称": "交通流量", "提供方名称": "市交通运输局", "分级": "L2"}, level="L2",
        personal_info=True, sensitive_personal_info=False, state="active", available_until=None,
        obtained_via_sharing=False, source_region="", provider_consent=None, columns=[], versions=[],
        licensable=True, licensing_refusal=None, updated_at="2026-12-01T09:00:00+00:00",
    )  # fmt: skip

    name: str
    catalog: dict[str, Any] = Field(description="资源目录 fields keyed as 双鸭山 第十二条 names them.")
    level: str
    personal_info: bool
    sensitive_personal_info: bool
    state: str
    available_until: str | None
    obtained_via_sharing: bool
    source_region: str
    provider_consent: dict[str, Any] | None
    columns: list[ColumnOut]
    versions: list[VersionOut]
    licensable: bool
    licensing_refusal: str | None
    updated_at: str


class CatalogRequestOut(Document):
    """A restriction or revocation of a catalog entry, waiting for (or decided by) the agency."""

    model_config = example(
        id=3, dataset="traffic", kind="revocation", changes={}, reason="数据源停止更新", state="pending",
        requested_by="demo-custodian", requested_at="2026-12-01T09:00:00Z", decided_by=None, decided_at=None,
        decision_reason="",
    )  # fmt: skip

    id: int
    dataset: str
    kind: str
    changes: dict[str, Any]
    reason: str
    state: str
    requested_by: str
    requested_at: str
    decided_by: str | None
    decided_at: str | None
    decision_reason: str


class DatasetChangedOut(Document):
    """A change applied at once: the entry as it now stands."""

    applied: bool = Field(description="true: applied")
    dataset: DatasetOut


class DatasetChangePendingOut(Document):
    """A more restrictive sharing or opening type: waits for the agency (answered 202)."""

    applied: bool = Field(description="false: waiting for the agency")
    request: CatalogRequestOut


DatasetUpdateOut = DatasetChangedOut | DatasetChangePendingOut


class IngestOut(Document):
    """What an ingest did (the ``keyong dataset ingest --json`` keys)."""

    model_config = example(
        dataset="traffic", version=1, rows=1000, encoding="utf-8", sha256=_SHA, vault_path="vault/ab/abcdef",
        columns=[{"name": "身份证号", "type": "string", "pii_type": "cn_resident_id", "level": "L4",
                  "confidence": 0.99}],
    )  # fmt: skip

    dataset: str
    version: int
    rows: int
    columns: list[dict[str, Any]] = Field(description='{"name", "type", "pii_type", "level", "confidence"} each')
    encoding: str | None
    sha256: str = Field(description="SHA-256 of the uploaded file's bytes.")
    vault_path: str


class DesensitizedOut(Document):
    """A new desensitized version (the ``keyong dataset desensitize --json`` keys; paths relative to the home)."""

    model_config = example(
        dataset="traffic", version=2, parent=1, rows=1000, columns=[{"name": "身份证号", "type": "string",
        "action": "pseudonymize"}], k_anonymity={"k_achieved": 5}, copy="copies/traffic/v2.parquet",
        fingerprints="fingerprints/traffic/v2.json", report={},
    )  # fmt: skip

    dataset: str
    version: int
    parent: int
    rows: int
    columns: list[dict[str, Any]] = Field(description='{"name", "type", "action"} each')
    k_anonymity: dict[str, Any]
    copy_path: str = Field(alias="copy", description="The copy's Parquet, relative to the instance home.")
    fingerprints: str
    report: dict[str, Any]


__all__ = [
    "CatalogRequestOut",
    "ColumnOut",
    "DatasetChangePendingOut",
    "DatasetChangedOut",
    "DatasetOut",
    "DatasetUpdateOut",
    "DesensitizedOut",
    "IngestOut",
    "VersionOut",
]
