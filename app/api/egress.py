"""A dataset's egress rule over HTTP (issue 22, SATRE 3.1.06 and 1.5.04): its custodian keeps the sign-off
of every release of its data (the default), or records a standing delegation to the agency and may
withdraw it. Only a custodian of the dataset (``registry.egress``) changes it, through its own token;
every platform role reads it.

``GET /datasets/{name}/egress``, ``POST /datasets/{name}/egress/delegation`` (custodian),
``POST /datasets/{name}/egress/delegation/withdraw`` (custodian). Refusals are the registry's
403/404/409; a delegation while the platform is frozen is 423.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from app.api.limits import Day, Name, Reason
from core import actor_of
from registry import Registry

ALL_ROLES = ("custodian", "agency", "operator", "regulator")


class EgressOut(BaseModel):
    """A dataset's egress rule: ``signoff`` (its custodian signs off each release) or ``delegated``."""

    dataset: str
    mode: str = Field(description="signoff (the custodian signs off each release) or delegated (to the agency)")
    organisation: list[str] = Field(description="提供方名称 and 提供方代码 of the dataset")
    delegation: dict[str, Any] | None = Field(description="The live delegation, if any")
    history: list[dict[str, Any]] = Field(description="Every delegation, live, withdrawn or expired")


class Delegation(BaseModel):
    reason: Reason
    expires: Day | None = Field(default=None, description="Last day the delegation holds (UTC); none: until withdrawn")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "汇总统计类产品委托实施机构审核", "expires": "2027-06-30"}]}
    )


class Withdrawal(BaseModel):
    reason: Reason

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "数据口径调整，恢复逐项签核"}]})


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["catalog"])
    anyone = Annotated[Any, Depends(require(*ALL_ROLES))]
    custodian = Annotated[Any, Depends(require("custodian"))]

    @router.get("/datasets/{name}/egress", response_model=EgressOut)
    def show(name: Name, _: anyone) -> dict[str, Any]:
        """Whether releases of this dataset need its custodian's sign-off, or are delegated to the agency."""
        return registry.egress.get(name).as_json()

    @router.post("/datasets/{name}/egress/delegation", response_model=EgressOut)
    def delegate(name: Name, body: Delegation, principal: custodian) -> dict[str, Any]:
        """Delegate this dataset's release sign-off to the agency (its own custodian only; ledgered)."""
        return registry.egress.delegate(
            name, by=actor_of(principal), reason=body.reason, expires=body.expires
        ).as_json()

    @router.post("/datasets/{name}/egress/delegation/withdraw", response_model=EgressOut)
    def withdraw(name: Name, body: Withdrawal, principal: custodian) -> dict[str, Any]:
        """Withdraw the delegation: new release requests need this custodian's sign-off again (ledgered)."""
        return registry.egress.withdraw(name, by=actor_of(principal), reason=body.reason).as_json()

    return router
