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


class RiskModelOut(Document):
    """One attacker model's re-identification risk over the records (ARX / sdcMicro definitions)."""

    highest: float | None = Field(description="Highest risk of any record (1 / size of its class).")
    average: float | None = Field(description="Average risk over the records.")
    records_above_threshold: float | None = Field(description="Share of records whose risk exceeds the threshold.")


class RiskFiguresOut(Document):
    """Risk of one table (the raw ``before`` or the copy ``after``); ``k``/``l`` null with ``note`` where n/a."""

    records: int | None = None
    classes: int | None = None
    k: int | None = None
    l: int | None = None  # noqa: E741 - the measure's own name (l-diversity)
    note: str | None = Field(None, description='"n/a, no quasi-identifiers" when the table has none.')
    prosecutor: RiskModelOut | None = None
    journalist: RiskModelOut | None = None
    marketer: float | None = None
    sample_uniques: int | None = None
    sample_uniques_share: float | None = None


class RiskOut(Document):
    """``report["risk"]`` (issue 16): quasi-identifiers, the policy's threshold, risk before and after, met."""

    model_config = example(
        quasi_identifiers=["性别", "出生年份", "区县"], threshold={"prosecutor_highest": 0.2},
        before={"records": 1000, "classes": 900, "k": 1, "l": None, "note": None,
                "prosecutor": {"highest": 1.0, "average": 0.9, "records_above_threshold": 0.85},
                "journalist": {"highest": 1.0, "average": 0.9, "records_above_threshold": 0.85},
                "marketer": 0.9, "sample_uniques": 820, "sample_uniques_share": 0.82},
        after={"records": 990, "classes": 60, "k": 5, "l": None, "note": None,
               "prosecutor": {"highest": 0.2, "average": 0.06, "records_above_threshold": 0.0},
               "journalist": {"highest": 0.2, "average": 0.06, "records_above_threshold": 0.0},
               "marketer": 0.06, "sample_uniques": 0, "sample_uniques_share": 0.0},
        met=True, steps=["出生年份: year -> 5-year band"],
    )  # fmt: skip

    quasi_identifiers: list[str] = Field(default_factory=list)
    threshold: dict[str, Any] | None = None
    before: RiskFiguresOut | None = None
    after: RiskFiguresOut | None = None
    met: bool | None = None
    steps: list[Any] = Field(default_factory=list)


class UtilityOut(Document):
    """``report["utility"]`` (issue 16): per-column information loss and the standard workload's relative errors."""

    model_config = example(
        columns=[{"name": "月收入", "generalization_height": 1, "max_height": 4, "suppressed_share": 0.01,
                  "non_uniform_entropy": 0.12}],
        workload=[{"query": "mean(月收入) by 区县", "raw": 5234.5, "copy": 5240.0, "relative_error": 0.00105}],
        summary={"queries": 12, "median_relative_error": 0.004, "max_relative_error": 0.06},
    )  # fmt: skip

    columns: list[dict[str, Any]] = Field(default_factory=list)
    workload: list[dict[str, Any]] = Field(default_factory=list)
    summary: dict[str, Any] | None = None


class CopyColumnOut(Document):
    """A column of the copy as an operator will get it: the action and, if generalized, how it is held."""

    name: str
    action: str | None
    representation: dict[str, Any] | None = Field(
        description='e.g. {"kind": "midpoint", "width": 1000.0, "top_coded_at": 20000.0}; null when untouched.'
    )
    described: str | None = Field(description='e.g. "numeric midpoint, width 1000, top-coded at 20000".')
    near_unique: str | None = Field(
        description='"pseudonymize", "kept", "generalize" (a date) or "drop" for a near-unique column, else null.'
    )


class CopyRiskOut(Document):
    """The copy's re-identification risk (after desensitization) against the level's policy threshold."""

    k: int | None
    l: int | None  # noqa: E741 - the measure's own name (l-diversity)
    note: str | None = Field(description='"n/a, no quasi-identifiers" where k and l mean nothing.')
    prosecutor_highest: float | None
    prosecutor_average: float | None
    records_above_threshold: float | None
    marketer: float | None
    threshold: dict[str, Any] | None
    met: bool | None


class CopyFactsOut(Document):
    """What copy a licence serves (issue 16), public to every role: representation, risk after, utility summary.

    No raw value and no raw aggregate: the workload's per-query answers stay with the platform's roles."""

    model_config = example(
        version=2, measured=True, note=None,
        columns=[{"name": "月收入", "action": "generalize_numeric",
                  "representation": {"kind": "midpoint", "unit": None, "width": 1000.0, "bottom_coded_below": 1000.0,
                                     "top_coded_at": 20000.0, "label_column": None},
                  "described": "numeric midpoint, width 1000, bottom-coded below 1000, top-coded at 20000",
                  "near_unique": None},
                 {"name": "统一社会信用代码", "action": "pseudonymize", "representation": None, "described": None,
                  "near_unique": "pseudonymize"}],
        risk_after={"k": 5, "l": None, "note": None, "prosecutor_highest": 0.2, "prosecutor_average": 0.06,
                    "records_above_threshold": 0.0, "marketer": 0.06, "threshold": {"prosecutor_highest": 0.2},
                    "met": True},
        utility_summary={"queries": 12, "median_relative_error": 0.004, "max_relative_error": 0.06},
    )  # fmt: skip

    version: int
    measured: bool = Field(description="false for a copy made before risk and utility were measured.")
    note: str | None
    columns: list[CopyColumnOut]
    risk_after: CopyRiskOut | None
    utility_summary: dict[str, Any] | None = Field(
        description='{"queries", "median_relative_error", "max_relative_error"}; null when not measured.'
    )


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
    copy_facts: CopyFactsOut | None = Field(
        None, description="The newest desensitized copy's public facts (issue 16); null without one."
    )
    linkage: list[dict[str, Any]] | None = Field(
        None,
        description='Per licence serving it (issue 23; an operator sees its own): {"licence", "operator", "state", '
        '"linkable_with", "datasets", "joint", "key", "risk"}; given by GET /datasets/{name}.',
    )


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
    columns: list[dict[str, Any]] = Field(
        description='{"name", "type", "action"} each; "representation" / "near_unique" where the report has them'
    )
    k_anonymity: dict[str, Any]
    copy_path: str = Field(alias="copy", description="The copy's Parquet, relative to the instance home.")
    fingerprints: str
    risk: RiskOut | None = Field(None, description="Re-identification risk before and after (issue 16).")
    utility: UtilityOut | None = Field(None, description="Information loss and workload errors (issue 16).")
    report: dict[str, Any]


__all__ = [
    "CatalogRequestOut",
    "ColumnOut",
    "CopyColumnOut",
    "CopyFactsOut",
    "CopyRiskOut",
    "DatasetChangePendingOut",
    "DatasetChangedOut",
    "DatasetOut",
    "DatasetUpdateOut",
    "DesensitizedOut",
    "IngestOut",
    "RiskFiguresOut",
    "RiskModelOut",
    "RiskOut",
    "UtilityOut",
    "VersionOut",
]
