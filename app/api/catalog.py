"""HTTP routes of the catalog: read by every role, changed by the custodian, decided by the agency.

A regulator reads everything and changes nothing (its writes are refused with 403 by ``require``).
An operator reads the catalog without storage paths or desensitization reports, but with the public facts
of the copy a licence serves (``copy_facts``, issue 16; ``app.copy_facts.public_facts``). Refusals of the
catalog's rules come back as 409 with the rule's message (``app.api.registry.install_error_handlers``).
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.limits import Day, Id, Name, OptionalReason, Reason, Text, visible_text
from app.api.schemas import CatalogRequestOut, DatasetOut, DatasetUpdateOut
from app.copy_facts import newest_copy_facts
from core import actor_of
from registry import CatalogEntry, ColumnClass, Level, Registry, RequestState, RequestView, ResourceView

ALL_ROLES = ("custodian", "agency", "operator", "regulator")


class ChangeBody(BaseModel):
    """Catalog fields to change (English or Chinese keys) and why."""

    changes: dict[Name, Any] = Field(max_length=64)
    reason: Reason

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"changes": {"更新频率": "每日"}, "reason": "数据源改为每日推送"}]}
    )

    @field_validator("changes")
    @classmethod
    def _visible_values(cls, changes: dict[str, Any]) -> dict[str, Any]:
        """Field values people read back (titles, summaries, lists of names) hold visible text only."""
        pending: list[Any] = list(changes.values())
        while pending:
            value = pending.pop()
            if isinstance(value, str):
                visible_text(value)
            elif isinstance(value, list | dict):
                pending.extend(value.values() if isinstance(value, dict) else value)
        return changes


class ClassificationBody(BaseModel):
    """The custodian's grading: the resource's level and flags, and the columns being (re)graded."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "分级": "L3",
                    "个人信息": True,
                    "敏感个人信息": False,
                    "columns": {
                        "身份证号": {"分级": "L4", "PII类型": "cn_resident_id", "敏感个人信息": True},
                    },
                }
            ]
        },
    )

    level: Level = Field(alias="分级")
    personal_info: bool | None = Field(None, alias="个人信息")
    sensitive_personal_info: bool | None = Field(None, alias="敏感个人信息")
    columns: dict[Name, ColumnClass] = Field(default_factory=dict, max_length=4096)
    reason: OptionalReason = Field(
        default="",
        description="Required (and ledgered) when a column the profiler recognised as a direct identifier "
        "(cn_resident_id, passport…) is given another PII type or none",
    )


class ConsentBody(BaseModel):
    """The sharing provider's consent (双鸭山 第四十三条); ``on`` defaults to today."""

    provider: Text = Field(min_length=1, max_length=200)
    reference: Text = Field(min_length=1, max_length=200)
    on: Day | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"provider": "市交通运输局", "reference": "交函〔2026〕12号", "on": "2026-11-30"}]
        }
    )


class ReasonBody(BaseModel):
    reason: Reason

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "数据源已停止更新"}]})


class DecisionBody(BaseModel):
    approve: bool
    reason: Reason

    model_config = ConfigDict(json_schema_extra={"examples": [{"approve": True, "reason": "经审核同意"}]})


#: ``CatalogEntry`` is the registry's own model (no HTTP concerns there): its example is given here.
PUBLISH_EXAMPLE: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {
                "example": {
                    "name": "traffic",
                    "数据资源名称": "交通流量",
                    "数据资源摘要": "全市主要路口小时级流量",
                    "数据格式": "CSV",
                    "行业分类": "交通出行",
                    "提供方名称": "市交通运输局",
                    "提供方代码": "91230500MA0000002G",
                    "分级": "L2",
                }
            }
        }
    }
}


def _internals(principal: Any) -> bool:
    """Storage paths and reports are for the platform's own roles, never an operator's."""
    return actor_of(principal).role != "operator"


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["catalog"])
    catalog = registry.catalog
    anyone = Annotated[Any, Depends(require(*ALL_ROLES))]
    custodian = Annotated[Any, Depends(require("custodian"))]
    agency = Annotated[Any, Depends(require("agency"))]
    overseer = Annotated[Any, Depends(require("custodian", "agency", "regulator"))]

    def shown(view: ResourceView, principal: Any) -> dict[str, Any]:
        """The entry as the role may read it, with its newest copy's public facts (issue 16: operators
        should know what copy they will get — representation, risk after, utility summary)."""
        return view.as_json(internals=_internals(principal)) | {"copy_facts": newest_copy_facts(view.versions)}

    @router.get("/datasets", response_model=list[DatasetOut])
    def list_datasets(principal: anyone) -> list[dict[str, Any]]:
        """The catalog: every entry with its 资源目录 fields (Chinese keys under ``catalog``) and what copy a
        licence serves (``copy_facts``)."""
        return [shown(view, principal) for view in catalog.list()]

    @router.get("/datasets/{name}", response_model=DatasetOut)
    def show_dataset(name: Name, principal: anyone) -> dict[str, Any]:
        """One entry, with classification, versions, whether it may be licensed (and why not) and the public
        facts of its newest desensitized copy (``copy_facts``: representation, risk after, utility summary)."""
        view = shown(catalog.get(name), principal)
        # Issue 23: per licence serving it, what it can be linked with (an operator sees its own licences).
        return view | {"linkage": registry.licence_copies.dataset_linkage(name, viewer=actor_of(principal))}

    @router.post(
        "/datasets", status_code=status.HTTP_201_CREATED, response_model=DatasetOut, openapi_extra=PUBLISH_EXAMPLE
    )
    def publish_dataset(entry: CatalogEntry, principal: custodian) -> dict[str, Any]:
        """Publish a catalog entry (custodian); fields may be given in English or with the rules' Chinese names."""
        return catalog.publish(entry, by=actor_of(principal)).as_json()

    @router.patch(
        "/datasets/{name}",
        response_model=DatasetUpdateOut,
        responses={202: {"model": CatalogRequestOut, "description": "Waiting for the agency (applied: false)."}},
    )
    def update_dataset(name: Name, body: ChangeBody, principal: custodian, response: Response) -> dict[str, Any]:
        """Change catalog fields. A more restrictive sharing or opening type waits for the agency (202)."""
        result = catalog.update(name, body.changes, by=actor_of(principal), reason=body.reason)
        if isinstance(result, RequestView):
            response.status_code = status.HTTP_202_ACCEPTED
            return {"applied": False, "request": result.as_json()}
        return {"applied": True, "dataset": result.as_json()}

    @router.put("/datasets/{name}/classification", response_model=DatasetOut)
    def classify_dataset(name: Name, body: ClassificationBody, principal: custodian) -> dict[str, Any]:
        """Grade the resource and the given columns (双鸭山 第十一条)."""
        view = catalog.classify(
            name,
            level=body.level,
            personal_info=body.personal_info,
            sensitive_personal_info=body.sensitive_personal_info,
            columns=body.columns,
            by=actor_of(principal),
            reason=body.reason,
        )
        return view.as_json()

    @router.post("/datasets/{name}/consent", response_model=DatasetOut)
    def record_consent(name: Name, body: ConsentBody, principal: custodian) -> dict[str, Any]:
        """Record the sharing provider's consent to authorized operation (双鸭山 第四十三条)."""
        view = catalog.record_consent(
            name, provider=body.provider, reference=body.reference, on=body.on, by=actor_of(principal)
        )
        return view.as_json()

    @router.post("/datasets/{name}/revocation", status_code=status.HTTP_202_ACCEPTED, response_model=CatalogRequestOut)
    def request_revocation(name: Name, body: ReasonBody, principal: custodian) -> dict[str, Any]:
        """Ask the agency to revoke an entry (黑龙江 第十六条: in use, it is served six more months)."""
        return catalog.request_revocation(name, by=actor_of(principal), reason=body.reason).as_json()

    _request_routes(router, registry, overseer, agency)
    return router


def _request_routes(router: APIRouter, registry: Registry, overseer: Any, agency: Any) -> None:
    """Restrictions and revocations waiting for the agency: listed by the overseers, decided by the agency."""
    catalog = registry.catalog

    @router.get("/catalog-requests", response_model=list[CatalogRequestOut])
    def list_requests(
        principal: overseer, state: Annotated[RequestState | None, Query()] = None
    ) -> list[dict[str, Any]]:
        """Restrictions and revocations, pending or decided."""
        return [request.as_json() for request in catalog.requests(state)]

    @router.post("/catalog-requests/{request_id}/decision", response_model=CatalogRequestOut)
    def decide_request(request_id: Id, body: DecisionBody, principal: agency) -> dict[str, Any]:
        """The agency approves (applies) or rejects a pending catalog request."""
        return catalog.decide(request_id, body.approve, by=actor_of(principal), reason=body.reason).as_json()
