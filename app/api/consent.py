"""Custodians' agreement to access, and four-eyes approval of desensitization policies, over HTTP (issue 22).

Access (SATRE 1.5.04, ``registry.access_consent``): a licence becomes active only when each dataset's
custodian agreed to it or delegated that agreement to the agency.

- ``GET /licences/awaiting-agreement`` (custodian): licences awaiting its decision;
- ``GET /licences/{id}/consent``: per dataset, agreed | refused | delegated | awaiting (the agency, regulators,
  its operator, custodians of its datasets);
- ``POST /licences/{id}/consent`` (custodian): ``{"dataset", "decision": "agree"|"refuse", "reason"}``;
- ``GET /datasets/{name}/access``, ``POST /datasets/{name}/access/delegation`` and
  ``POST /datasets/{name}/access/delegation/withdraw`` (custodian): the standing access delegation.

Policies (SATRE 1.2.01, ``registry.policy_approvals``):

- ``GET /policies``, ``GET /policies/{id}`` (every platform role);
- ``POST /policies`` (custodian, agency): ``{"level", "policy": {...}, "reason"}``;
- ``POST /policies/{id}/approve`` and ``/refuse`` (agency, never the proposer): ``{"reason"}``.

Refusals are the registry's 403/404/409; an agreement while the platform is frozen is 423.
"""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from app.api.egress import ALL_ROLES, Delegation, EgressOut, Withdrawal
from app.api.limits import Id, Name, Reason
from core import actor_of
from registry import Registry, parse_policy

Level = Literal["L1", "L2", "L3", "L4"]


class ConsentOut(BaseModel):
    licence: int
    state: str
    complete: bool = Field(description="Every dataset agreed or delegated: the agency may activate the licence")
    datasets: dict[str, dict[str, Any]] = Field(description="Per dataset: status agreed|refused|delegated|awaiting")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "licence": 3,
                    "state": "draft",
                    "complete": False,
                    "datasets": {
                        "traffic": {
                            "status": "agreed",
                            "by": "traffic-custodian",
                            "org": "双鸭山市交通运输局",
                            "reason": "同意用于交通分析",
                            "at": "2026-12-01T09:00:00+00:00",
                        },
                        "buses": {"status": "delegated", "delegation": 2},
                        "loans": {"status": "awaiting"},
                    },
                }
            ]
        }
    )


class DecisionIn(BaseModel):
    dataset: Name
    decision: Literal["agree", "refuse"]
    reason: Reason

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"dataset": "residents", "decision": "agree", "reason": "同意用于人口统计"}]},
    )


class ProposalIn(BaseModel):
    level: Level
    policy: dict[str, Any] = Field(description="The policy, as its JSON file would hold it (declaring `level`)")
    reason: Reason

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "level": "L2",
                    "policy": {"level": "L2", "default": {"action": "keep"}, "rules": {"cn_phone": {"action": "drop"}}},
                    "reason": "法定代表人手机号码整列删除",
                }
            ]
        },
    )


class PolicyOut(BaseModel):
    id: int
    level: str
    sha256: str
    state: str
    proposed_by: str
    reason: str
    proposed_at: str
    decided_by: str | None
    decided_at: str | None
    decision_reason: str | None
    policy: dict[str, Any]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "level": "L2",
                    "sha256": "5d41" + "0" * 60,
                    "state": "approved",
                    "proposed_by": "demo-custodian",
                    "reason": "法定代表人手机号码整列删除",
                    "proposed_at": "2026-12-01T09:00:00+00:00",
                    "decided_by": "demo-agency",
                    "decided_at": "2026-12-01T10:00:00+00:00",
                    "decision_reason": "符合分级保护要求",
                    "policy": {"level": "L2", "default": {"action": "keep"}, "rules": {"cn_phone": {"action": "drop"}}},
                }
            ]
        }
    )


class DecisionReason(BaseModel):
    reason: Reason

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "符合分级保护要求"}]})


def _access_routes(router: APIRouter, registry: Registry, require: Callable[..., Callable[..., Any]]) -> None:
    anyone = Annotated[Any, Depends(require(*ALL_ROLES))]
    custodian = Annotated[Any, Depends(require("custodian"))]

    @router.get("/licences/awaiting-agreement", response_model=list[ConsentOut])
    def awaiting(principal: custodian) -> list[dict[str, Any]]:
        """Licences not yet active with a dataset of this custodian's awaiting its agreement."""
        return [v.as_json() for v in registry.licence_consent.awaiting(by=actor_of(principal))]

    @router.get("/licences/{licence_id}/consent", response_model=ConsentOut)
    def consent(licence_id: Id, principal: anyone) -> dict[str, Any]:
        """Per dataset of the licence: agreed, refused, delegated to the agency, or awaiting its custodian."""
        return registry.licence_consent.get(licence_id, viewer=actor_of(principal)).as_json()

    @router.post("/licences/{licence_id}/consent", response_model=ConsentOut)
    def decide(licence_id: Id, body: DecisionIn, principal: custodian) -> dict[str, Any]:
        """The dataset's custodian agrees to or refuses this licence (its own act; ledgered)."""
        return registry.licence_consent.decide(
            licence_id, body.dataset, body.decision, by=actor_of(principal), reason=body.reason
        ).as_json()

    @router.get("/datasets/{name}/access", response_model=EgressOut)
    def show(name: Name, _: anyone) -> dict[str, Any]:
        """Whether licences over this dataset need its custodian's agreement each, or are delegated."""
        return registry.access.get(name).as_json()

    @router.post("/datasets/{name}/access/delegation", response_model=EgressOut)
    def delegate(name: Name, body: Delegation, principal: custodian) -> dict[str, Any]:
        """Delegate the agreement to licences over this dataset to the agency (its custodian only; ledgered)."""
        by = actor_of(principal)
        return registry.access.delegate(name, by=by, reason=body.reason, expires=body.expires).as_json()

    @router.post("/datasets/{name}/access/delegation/withdraw", response_model=EgressOut)
    def withdraw(name: Name, body: Withdrawal, principal: custodian) -> dict[str, Any]:
        """Withdraw it: licences not yet active need this custodian's agreement again (ledgered)."""
        return registry.access.withdraw(name, by=actor_of(principal), reason=body.reason).as_json()


def _policy_routes(router: APIRouter, registry: Registry, require: Callable[..., Callable[..., Any]]) -> None:
    anyone = Annotated[Any, Depends(require(*ALL_ROLES))]
    proposer = Annotated[Any, Depends(require("custodian", "agency"))]
    agency = Annotated[Any, Depends(require("agency"))]

    @router.get("/policies", response_model=list[PolicyOut])
    def list_policies(
        _: anyone, level: Annotated[Level | None, Query()] = None, state: Annotated[Name | None, Query()] = None
    ) -> list[dict[str, Any]]:
        """Every proposed desensitization policy with its digest and state, oldest first."""
        return [p.as_json() for p in registry.policies.list(level=level, state=state)]

    @router.get("/policies/{proposal}", response_model=PolicyOut)
    def get_policy(proposal: Id, _: anyone) -> dict[str, Any]:
        return registry.policies.get(proposal).as_json()

    @router.post("/policies", response_model=PolicyOut, status_code=201)
    def propose(body: ProposalIn, principal: proposer) -> dict[str, Any]:
        """Propose a policy for a level; an agency person other than the proposer approves it."""
        policy = parse_policy(body.level, body.policy)
        return registry.policies.propose(body.level, policy, by=actor_of(principal), reason=body.reason).as_json()

    @router.post("/policies/{proposal}/approve", response_model=PolicyOut)
    def approve(proposal: Id, body: DecisionReason, principal: agency) -> dict[str, Any]:
        return registry.policies.decide(proposal, True, by=actor_of(principal), reason=body.reason).as_json()

    @router.post("/policies/{proposal}/refuse", response_model=PolicyOut)
    def refuse(proposal: Id, body: DecisionReason, principal: agency) -> dict[str, Any]:
        return registry.policies.decide(proposal, False, by=actor_of(principal), reason=body.reason).as_json()


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["consent"])
    _access_routes(router, registry, require)
    _policy_routes(router, registry, require)
    return router
