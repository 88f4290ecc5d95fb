"""HTTP routes of operators, licences, findings and scope checks.

Roles (DESIGN.md): the agency (授权运营实施机构) registers operators, grants and moves licences and
resolves findings; regulators read everything and change nothing; an operator reads only its own
licences (another's is 404, not 403, so ids reveal nothing) and checks the scope of its own jobs.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.limits import (
    Day,
    Epsilon,
    Filter,
    FindingState,
    Id,
    Name,
    Names,
    PriceCents,
    PublicityDays,
    Reason,
)
from app.api.schemas import RefusalOut, ScopeCheckOut, ScopeRefusalOut
from core import actor_of
from registry import (
    FeeClass,
    FindingKind,
    FindingView,
    LicenceMode,
    LicenceState,
    LicenceView,
    OperatorView,
    Registry,
    ScopeRefusedError,
    UnknownNameError,
)

#: A well-formed 统一社会信用代码 (its check character verifies), for the examples.
USCC_EXAMPLE = "91230500MA0000001D"


class OperatorIn(BaseModel):
    name: Name = Field(description="The operator principal's name.")
    uscc: str = Field(max_length=64, description="统一社会信用代码 (GB 32100, check character verified).")

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "acme-ops", "uscc": USCC_EXAMPLE}]})


class ReasonIn(BaseModel):
    reason: Reason = Field(description="Why; recorded in the ledger.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "超范围调用，限期整改 (双鸭山 第三十一条)"}]})


class GrantIn(BaseModel):
    operator: Name
    mode: LicenceMode = LicenceMode.SCENARIO
    datasets: Names = Field(default_factory=list)
    domains: Names = Field(default_factory=list, description="行业分类 covered by 分领域授权.")
    scenarios: Names = Field(min_length=1, description="Licensed application scenarios (应用场景).")
    valid_from: Day | None = None
    valid_until: Day
    epsilon: Epsilon | Annotated[dict[Name, Epsilon], Field(max_length=256)] = Field(
        default=3.0, description="Privacy budget ε, for all or per dataset."
    )
    fee_class: FeeClass = FeeClass.PUBLIC_WELFARE
    price_cents: PriceCents | None = None
    publicity_days: PublicityDays | None = Field(default=None, description="公示 days; default: instance setting.")
    joint: Annotated[list[Names], Field(max_length=64)] = Field(
        default_factory=list,
        description="Link groups granted for joint analysis (issue 23), each two or more of the licence's datasets; "
        "the others are keyed per dataset and never join.",
    )
    reason: Reason

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "operator": "acme-ops",
                    "datasets": ["traffic"],
                    "scenarios": ["交通出行"],
                    "valid_until": "2027-12-31",
                    "epsilon": 3.0,
                    "publicity_days": 7,
                    "reason": "授权运营协议 granted",
                }
            ]
        }
    )


class TransitionIn(BaseModel):
    to_state: LicenceState
    reason: Reason

    model_config = ConfigDict(json_schema_extra={"examples": [{"to_state": "active", "reason": "公示期满无异议"}]})


class ResolveIn(BaseModel):
    resolution: Reason

    model_config = ConfigDict(json_schema_extra={"examples": [{"resolution": "已约谈并完成整改"}]})


class ScopeCheckIn(BaseModel):
    datasets: list[Name] = Field(min_length=1, max_length=16)
    scenario: Name
    subject: Filter = Field(default="", description="What is being admitted, e.g. job:42.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"datasets": ["traffic"], "scenario": "交通出行"}]})


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["licences"])
    roles = _Roles(
        agency=Depends(require("agency")),
        readers=Depends(require("agency", "regulator")),
        anyone=Depends(require("agency", "regulator", "operator")),
        operator=Depends(require("operator")),
    )
    _operator_routes(router, registry, roles)
    _licence_routes(router, registry, roles)
    _monitoring_routes(router, registry, roles)
    return router


@dataclass(frozen=True, slots=True)
class _Roles:
    """The role dependencies the routes admit: made once per router from the injected ``require``."""

    agency: Any
    readers: Any
    anyone: Any
    operator: Any


def _operator_routes(router: APIRouter, registry: Registry, roles: _Roles) -> None:
    """Operating companies: registered, read, suspended and restored by the agency."""
    licences = registry.licences
    agency, readers, anyone = roles.agency, roles.readers, roles.anyone

    @router.get("/operators", response_model=list[OperatorView])
    def list_operators(principal: Annotated[Any, readers]) -> list[OperatorView]:
        """Every operating company (运营机构)."""
        return licences.list_operators(viewer=actor_of(principal))

    @router.post("/operators", response_model=OperatorView, status_code=201)
    def add_operator(body: OperatorIn, principal: Annotated[Any, agency]) -> OperatorView:
        """Register an operator (双鸭山 第四十八条); its name is its principal's name."""
        return licences.add_operator(body.name, body.uscc, by=actor_of(principal))

    @router.get("/operators/{name}", response_model=OperatorView)
    def get_operator(name: Name, principal: Annotated[Any, anyone]) -> OperatorView:
        """One operator; an operator may read only itself."""
        return licences.get_operator(name, viewer=actor_of(principal))

    @router.post("/operators/{name}/suspend", response_model=OperatorView)
    def suspend_operator(name: Name, body: ReasonIn, principal: Annotated[Any, agency]) -> OperatorView:
        """Close an operator's access (第三十一条)."""
        return licences.suspend_operator(name, by=actor_of(principal), reason=body.reason)

    @router.post("/operators/{name}/restore", response_model=OperatorView)
    def restore_operator(name: Name, body: ReasonIn, principal: Annotated[Any, agency]) -> OperatorView:
        """Reopen a suspended operator's access after rectification (整改)."""
        return licences.restore_operator(name, by=actor_of(principal), reason=body.reason)


def _licence_routes(router: APIRouter, registry: Registry, roles: _Roles) -> None:
    """Licences: listed (an operator its own), granted and moved through their states by the agency."""
    licences = registry.licences
    agency, anyone = roles.agency, roles.anyone

    @router.get("/licences", response_model=list[LicenceView])
    def list_licences(
        principal: Annotated[Any, anyone],
        operator: Annotated[Name | None, Query()] = None,
        state: Annotated[LicenceState | None, Query()] = None,
    ) -> list[LicenceView]:
        """Licences; an operator sees only its own."""
        return licences.list(viewer=actor_of(principal), operator=operator, state=state)

    @router.get("/licences/{licence_id}", response_model=LicenceView)
    def get_licence(licence_id: Id, principal: Annotated[Any, anyone]) -> LicenceView:
        """One licence with its events; another operator's licence is 404."""
        return licences.get(licence_id, viewer=actor_of(principal))

    @router.post("/licences", response_model=LicenceView, status_code=201)
    def grant(body: GrantIn, principal: Annotated[Any, agency]) -> LicenceView:
        """Grant a licence: draft, then 公示 (or active at once with 0 publicity days)."""
        return licences.grant(
            body.operator,
            datasets=body.datasets,
            mode=body.mode,
            domains=body.domains,
            scenarios=body.scenarios,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            epsilon=body.epsilon,
            fee_class=body.fee_class,
            price_cents=body.price_cents,
            publicity_days=body.publicity_days,
            by=actor_of(principal),
            reason=body.reason,
            joint=[list(group) for group in body.joint],
        )

    @router.post("/licences/{licence_id}/transition", response_model=LicenceView)
    def transition(licence_id: Id, body: TransitionIn, principal: Annotated[Any, agency]) -> LicenceView:
        """Move a licence through draft → publicity → active ⇄ suspended → revoked | expired."""
        return licences.transition(licence_id, body.to_state, by=actor_of(principal), reason=body.reason)


def _monitoring_routes(router: APIRouter, registry: Registry, roles: _Roles) -> None:
    """Usage monitoring's findings, and an operator's own scope check before it submits."""
    licences = registry.licences
    monitoring = registry.monitoring
    agency, readers = roles.agency, roles.readers

    @router.get("/findings", response_model=list[FindingView])
    def list_findings(
        principal: Annotated[Any, readers],
        state: Annotated[FindingState | None, Query()] = None,
        kind: Annotated[FindingKind | None, Query()] = None,
        operator: Annotated[Name | None, Query()] = None,
    ) -> list[FindingView]:
        """Usage-monitoring findings (双鸭山 第三十一条, 黑龙江 第二十七条)."""
        return monitoring.list_findings(viewer=actor_of(principal), state=state, kind=kind, operator=operator)

    @router.post("/findings/{finding_id}/resolve", response_model=FindingView)
    def resolve_finding(finding_id: Id, body: ResolveIn, principal: Annotated[Any, agency]) -> FindingView:
        """Close a finding, saying what was done."""
        return monitoring.resolve_finding(finding_id, by=actor_of(principal), resolution=body.resolution)

    @router.post(
        "/scope-check",
        response_model=ScopeCheckOut,
        responses={
            409: {"model": ScopeRefusalOut, "description": "Refused: out of the licence's scope or purpose."},
            422: {"model": RefusalOut, "description": "A dataset or scenario the platform does not know."},
        },
    )
    def scope_check(body: ScopeCheckIn, principal: Annotated[Any, roles.operator]) -> JSONResponse:
        """Would a job of mine over these datasets, for this scenario, be admitted? A dry run: never a violation.

        Recorded in the ledger as ``scope.checked``, but it records no usage and counts nothing towards
        automatic suspension (双鸭山 第三十一条 is about data used, not questions asked). Refused: 409
        with ``detail`` (the reason) and ``kind``; a dataset or scenario the platform does not know: 422
        with ``suggestions``. Admitted: the licence and datasets, without storage paths (an operator never
        learns where data lies).
        """
        actor = actor_of(principal)
        try:
            grant = licences.check_scope(
                actor.name, body.datasets, body.scenario, subject=body.subject, by=actor, dry_run=True
            )
        except UnknownNameError as exc:
            return JSONResponse(
                {"detail": exc.reason, "kind": exc.kind, "suggestions": list(exc.suggestions)}, status_code=422
            )
        except ScopeRefusedError as exc:
            return JSONResponse({"detail": exc.reason, "kind": exc.kind}, status_code=409)
        return JSONResponse(grant.model_dump(mode="json", exclude={"datasets": {"__all__": {"path"}}}))
