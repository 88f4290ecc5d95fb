"""HTTP routes for products, objections and usage records.

Product registration is not a route: it happens in the release workflow once reviewers approved.
Over the API nobody gets artifact paths (DESIGN.md: an operator never gets paths); an operator
reads only its own products and objections, and another operator's product is a 404, so its
existence is not revealed. Regulators read everything and change nothing.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict

from app.api.limits import Id, Name, Reason
from core import actor_of
from registry import ObjectionOutcome, ObjectionView, ProductView, Registry


class ArtifactOut(BaseModel):
    name: str
    bytes: int
    sha256: str


class ProductOut(BaseModel):
    """A product as the API shows it: lineage, attribution, fee, state; artifacts without paths."""

    name: str
    operator: str
    licence_id: int
    job: str
    scenario: str
    datasets: list[dict[str, Any]]
    code_sha256: str
    guard: dict[str, Any]
    reviews: list[dict[str, Any]]
    fee_class: str
    price_cents: int | None
    artifacts: list[ArtifactOut]
    attribution: dict[str, Any]
    state: str
    registered_at: datetime

    @classmethod
    def of(cls, view: ProductView) -> "ProductOut":
        data = view.model_dump()
        data["artifacts"] = [{"name": a["name"], "bytes": a["bytes"], "sha256": a["sha256"]} for a in view.artifacts]
        return cls.model_validate(data)


class ObjectionIn(BaseModel):
    """An objection (双鸭山 第四十条): ``target`` is a product name, a catalog entry name or a licence id."""

    target_kind: Literal["product", "resource", "licence"]
    target: Name
    reason: Reason

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"target_kind": "product", "target": "traffic-flow-2026", "reason": "产品中含可识别个人的组合"}
            ]
        }
    )


class ResolutionIn(BaseModel):
    outcome: ObjectionOutcome
    reason: Reason

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"outcome": "restore", "reason": "经核查不含个人信息，恢复提供"}]}
    )


class UsageOut(BaseModel):
    summary: dict[str, Any]
    records: list[dict[str, Any]]


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter()
    any_role = require("custodian", "agency", "operator", "regulator")
    decider = require("agency", "custodian")  # which of them may decide depends on the target
    usage_reader = require("custodian", "regulator")

    @router.get("/products", response_model=list[ProductOut], tags=["products"])
    def list_products(principal: Annotated[Any, Depends(any_role)]) -> list[ProductOut]:
        """Products: an operator's own; all of them for custodian, agency and regulator."""
        return [ProductOut.of(p) for p in registry.products.list(viewer=actor_of(principal))]

    @router.get("/products/{name}", response_model=ProductOut, tags=["products"])
    def get_product(name: Name, principal: Annotated[Any, Depends(any_role)]) -> ProductOut:
        """One product with its lineage and attribution (数据来源, 获取日期; 双鸭山 第四十一条)."""
        return ProductOut.of(registry.products.get(name, viewer=actor_of(principal)))

    @router.post("/objections", response_model=ObjectionView, status_code=status.HTTP_201_CREATED, tags=["objections"])
    def file_objection(body: ObjectionIn, principal: Annotated[Any, Depends(any_role)]) -> ObjectionView:
        """File an objection; against a product, its delivery stops at once (双鸭山 第四十条)."""
        return registry.objections.file(body.target_kind, body.target, body.reason, by=actor_of(principal))

    @router.get("/objections", response_model=list[ObjectionView], tags=["objections"])
    def list_objections(principal: Annotated[Any, Depends(any_role)]) -> list[ObjectionView]:
        """Objections: one's own with their resolutions; all for custodian, agency and regulator."""
        return registry.objections.list(viewer=actor_of(principal))

    @router.get("/objections/{objection_id}", response_model=ObjectionView, tags=["objections"])
    def get_objection(objection_id: Id, principal: Annotated[Any, Depends(any_role)]) -> ObjectionView:
        """One objection: one's own, or any for custodian, agency and regulator."""
        return registry.objections.get(objection_id, viewer=actor_of(principal))

    @router.post("/objections/{objection_id}/resolution", response_model=ObjectionView, tags=["objections"])
    def resolve_objection(
        objection_id: Id, body: ResolutionIn, principal: Annotated[Any, Depends(decider)]
    ) -> ObjectionView:
        """Withdraw, restore, or restore after correction, with a reason the objector reads."""
        return registry.objections.resolve(objection_id, body.outcome, body.reason, by=actor_of(principal))

    @router.get("/usage/{dataset}", response_model=UsageOut, tags=["usage"])
    def dataset_usage(dataset: Name, principal: Annotated[Any, Depends(usage_reader)]) -> UsageOut:
        """Usage records of a dataset, for the custodian that provided it and regulators (黑龙江 第二十八条)."""
        viewer = actor_of(principal)
        return UsageOut(
            summary=registry.usage.summary(dataset, viewer=viewer),
            records=registry.usage.for_dataset(dataset, viewer=viewer),
        )

    return router
