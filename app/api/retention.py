"""Retention and purges over HTTP (SATRE 3.1.09, 2.2.06; ``registry.retention``).

The custodian sets a dataset's retention period and purges a version (or all of them) with a reason;
the custodian, the agency and the regulator read what is due and what holds it. A purge that a live
licence or a running job holds is refused with 409 and the names of what holds it
(``app.api.registry.install_error_handlers``).
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from app.api.limits import MAX_ID, Name, Reason
from app.api.schemas import PurgeOut, RetentionScheduleOut, RetentionSetOut
from core import actor_of
from registry import Registry

READERS = ("custodian", "agency", "regulator")


class RetentionBody(BaseModel):
    days: int | None = Field(ge=1, le=36_500, description="Days each version is kept after it was made; null clears.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"days": 365}]})


class PurgeBody(BaseModel):
    reason: Reason
    version: int | None = Field(
        None, ge=1, le=MAX_ID, description="One version (and those derived from it); null: all."
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "提供方撤回数据", "version": 1}]})


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    router = APIRouter(tags=["retention"])
    readers = require(*READERS)
    custodian = require("custodian")

    @router.get("/retention", response_model=RetentionScheduleOut)
    def schedule(
        _: Annotated[Any, Depends(readers)],
        every: Annotated[bool, Query(alias="all", description="Every live version, not only the due ones.")] = False,
        dataset: Annotated[Name | None, Query(description="Only this dataset.")] = None,
    ) -> dict[str, Any]:
        """Versions whose retention ended (or whose entry's revocation is final), and what holds each."""
        rows = registry.retention.schedule(due_only=not every, dataset=dataset)
        return {"versions": [row.as_json() for row in rows]}

    @router.put("/datasets/{name}/retention", response_model=RetentionSetOut)
    def set_retention(name: Name, body: RetentionBody, principal: Annotated[Any, Depends(custodian)]) -> dict[str, Any]:
        """Set how long each version of the dataset is kept (ledgered)."""
        return registry.retention.set_retention(name, body.days, by=actor_of(principal))

    @router.post("/datasets/{name}/purge", response_model=PurgeOut)
    def purge(name: Name, body: PurgeBody, principal: Annotated[Any, Depends(custodian)]) -> dict[str, Any]:
        """Delete a version's data (raw, copy, fingerprints, products derived only from it), each file ledgered."""
        return registry.retention.purge(
            name, version=body.version, reason=body.reason, by=actor_of(principal)
        ).as_json()

    return router


__all__ = ["build_router"]
