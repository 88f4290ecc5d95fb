"""Response documents of the public, unauthenticated register (``/api/public``, SATRE 1.7.02*).

Only names, descriptions, dates and counts (``registry.public`` says what is left out and why).
"""

from pydantic import Field

from app.api.schemas.base import Document, example


class PublicDatasetOut(Document):
    """A published 资源目录 entry (双鸭山 第十二条) as anyone may read it: no columns, versions or paths."""

    model_config = example(
        name="residents", title="户籍人口基础信息", summary="双鸭山市户籍人口的脱敏副本", industry="公共管理",
        data_format="CSV", coverage_time="2025", coverage_region="双鸭山市", update_frequency="每月",
        provider="双鸭山市公安局", level="L3", personal_info=True, sharing_type="有条件共享",
        opening_type="不予开放", operation_status="可授权运营", operation_scenarios=["城市治理"],
        published="2026-12-06",
    )  # fmt: skip

    name: str
    title: str = Field(description="数据资源名称")
    summary: str = Field(description="数据资源摘要")
    industry: str
    data_format: str
    coverage_time: str
    coverage_region: str
    update_frequency: str
    provider: str = Field(description="提供方名称: the providing organisation")
    level: str = Field(description="分级 L1..L4")
    personal_info: bool
    sharing_type: str
    opening_type: str
    operation_status: str
    operation_scenarios: list[str]
    published: str = Field(description="Date the entry was published (YYYY-MM-DD).")


class PublicLicenceOut(Document):
    """A licence in 公示 (双鸭山 第四十八条) or active within its period: the operating company and its scope."""

    model_config = example(
        licence=3, state="publicity", operator="acme-operating", operator_uscc="91230500MA00022014",
        mode="依场景授权", domains=[], scenarios=["城市治理"], datasets=["residents"],
        valid_from="2026-12-06", valid_until="2027-12-31", fee_class="公益",
        publicity_ends_at="2026-12-13T09:00:00+00:00", rule="双鸭山市公共数据管理暂行办法 第四十八条",
    )  # fmt: skip

    licence: int = Field(description="The licence's number: what an objection names.")
    state: str = Field(description="publicity (公示) or active")
    operator: str = Field(description="The operating company (运营机构), never a person.")
    operator_uscc: str = Field(description="The company's 统一社会信用代码.")
    mode: str
    domains: list[str]
    scenarios: list[str]
    datasets: list[str]
    valid_from: str
    valid_until: str
    fee_class: str
    publicity_ends_at: str | None = Field(description="End of 公示 (objections are filed until then); null if active.")
    rule: str | None


class PublicProductOut(Document):
    """A released, available product: who made it from which datasets and when; never its content."""

    model_config = example(
        product="district-age-bands", operator="acme-operating", scenario="城市治理", datasets=["residents"],
        released="2026-12-06", fee_class="公益",
    )  # fmt: skip

    product: str
    operator: str
    scenario: str
    datasets: list[str]
    released: str
    fee_class: str


class PublicUsageOut(Document):
    """How much a published dataset was used: counts only."""

    model_config = example(dataset="residents", licences=2, licences_active=1, jobs=14, products=3)

    dataset: str
    licences: int = Field(description="Licences granted over it (公示 or later; drafts are not counted).")
    licences_active: int
    jobs: int = Field(description="Jobs admitted over it.")
    products: int = Field(description="Available products derived from it.")


class PublicCheckpointOut(Document):
    """The ledger's latest signed checkpoint: compare it with one you kept (``keyong ledger`` / ``ledger.verify``)."""

    model_config = example(
        tree_size=120, root="9f2c…", time="2026-12-06T09:00:00Z", public_key="3b6a…", signature="5e1d…"
    )

    tree_size: int
    root: str
    time: str
    public_key: str = Field(description="The ledger's Ed25519 public key (hex).")
    signature: str


class PublicObjectionsOut(Document):
    """How to object to a licence in 公示."""

    model_config = example(
        rule="双鸭山市公共数据管理暂行办法 第四十八条; 第四十条", how="…", route="POST /objections",
        body_example={"target_kind": "licence", "target": "3", "reason": "…"},
    )  # fmt: skip

    rule: str
    how: str
    route: str
    body_example: dict[str, str]


class PublicOperationsOut(Document):
    """What the service is, how to object, whether it is frozen, and the ledger's latest checkpoint."""

    model_config = example(
        service="Keyong (可用)", version="0.1.0", what="…", frozen=False,
        objections={"rule": "双鸭山市公共数据管理暂行办法 第四十八条; 第四十条", "how": "…",
                    "route": "POST /objections",
                    "body_example": {"target_kind": "licence", "target": "3", "reason": "…"}},
        checkpoint={"tree_size": 120, "root": "9f2c…", "time": "2026-12-06T09:00:00Z", "public_key": "3b6a…",
                    "signature": "5e1d…"},
        as_of="2026-12-06T09:00:05+00:00",
    )  # fmt: skip

    service: str
    version: str
    what: str
    frozen: bool = Field(
        description="An incident's freeze stops intake, egress and delivery (not why: see the agency)."
    )
    objections: PublicObjectionsOut
    checkpoint: PublicCheckpointOut | None = Field(description="Null before the first checkpoint is signed.")
    as_of: str


class PublicRegisterOut(Document):
    """The whole public register in one document."""

    model_config = example(
        operations=PublicOperationsOut.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
        catalog=PublicDatasetOut.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
        licences=PublicLicenceOut.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
        products=PublicProductOut.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
        usage=PublicUsageOut.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
    )

    operations: PublicOperationsOut
    catalog: list[PublicDatasetOut]
    licences: list[PublicLicenceOut]
    products: list[PublicProductOut]
    usage: list[PublicUsageOut]


__all__ = [
    "PublicCheckpointOut",
    "PublicDatasetOut",
    "PublicLicenceOut",
    "PublicObjectionsOut",
    "PublicOperationsOut",
    "PublicProductOut",
    "PublicRegisterOut",
    "PublicUsageOut",
]
