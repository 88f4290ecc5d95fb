"""Requests with statutory deadlines over HTTP (issue 24), role-checked like every route.

Operators, custodians and the agency submit requests in their own name; the providing department's
custodians review, grant, refuse (reasons required) or answer them; the requester withdraws. Every role
reads: a custodian its department's queue (soonest due first), an operator its own requests, the agency
and regulators all of them, with ``overdue`` and ``due_soon`` filters. ``/calendar/due`` answers the
working-day question for anyone signed in. Refusals are the registry's 403/404/409; bad input is 422.
"""

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.api.limits import Id, Name, VisibleText
from app.api.schemas.requests import DueOut, RequestOut, RulesOut
from core import actor_of
from registry import MAX_WORKING_DAYS, Registry, rules_of

Kind = Literal["data_application", "data_demand", "correction", "open_data_application", "catalog_update"]
State = Literal["submitted", "in_review", "granted", "refused", "answered", "withdrawn"]
Words = Annotated[str, StringConstraints(max_length=2000), VisibleText]
RequiredWords = Annotated[str, StringConstraints(min_length=1, max_length=2000), VisibleText]


class RequestIn(BaseModel):
    kind: Kind
    subject: Name = Field(description="The dataset (catalog name) or the catalog entry concerned.")
    subject_kind: Literal["dataset", "catalog_entry"] = "dataset"
    provider: Name | None = Field(None, description="The providing department (default: the dataset's 提供方).")
    detail: Annotated[str, StringConstraints(max_length=4000), VisibleText] = ""
    variant: Literal["", "comments", "problem_data"] = ""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"kind": "correction", "subject": "population", "detail": "户籍地址有误", "variant": ""}]
        }
    )


class GrantIn(BaseModel):
    reason: Words = ""
    leads_to: Annotated[str, StringConstraints(min_length=1, max_length=200), VisibleText] | None = Field(
        None, description="licence:ID or sharing:DESCRIPTION: what the grant gives."
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "同意", "leads_to": "licence:3"}]})


class ReasonIn(BaseModel):
    reason: RequiredWords = Field(description="The specific reasons of a refusal, or the answer reported back.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "含个人信息, 不符合有条件开放条件"}]})


class NoteIn(BaseModel):
    reason: Words = ""

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "已受理"}]})


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    router = APIRouter(tags=["requests"])
    anyone = require("custodian", "agency", "operator", "regulator")
    submitters = require("operator", "custodian", "agency")
    providers = require("custodian")
    requests = registry.requests

    @router.post("/requests", status_code=201, response_model=RequestOut)
    def submit(body: RequestIn, principal: Annotated[Any, Depends(submitters)]) -> dict[str, Any]:
        """Submit a request in your own name: its rule, legal basis and due date are fixed on receipt."""
        return requests.submit(
            body.kind,
            by=actor_of(principal),
            subject=body.subject,
            subject_kind=body.subject_kind,
            provider=body.provider,
            detail=body.detail,
            variant=body.variant,
        ).as_json()

    @router.get("/requests", response_model=list[RequestOut])
    def listing(
        principal: Annotated[Any, Depends(anyone)],
        state: Annotated[State | None, Query()] = None,
        kind: Annotated[Kind | None, Query()] = None,
        provider: Annotated[Name | None, Query()] = None,
        overdue: Annotated[bool, Query(description="Open requests past their due day.")] = False,
        due_soon: Annotated[bool, Query(description="Open requests due today or next working day.")] = False,
        open_only: Annotated[bool, Query(alias="open", description="Only open requests.")] = False,
    ) -> list[dict[str, Any]]:
        """The requests you may see, soonest due first (a custodian: its department's queue)."""
        found = requests.list(
            viewer=actor_of(principal),
            state=state,
            kind=kind,
            provider=provider,
            overdue=overdue,
            due_soon=due_soon,
            open_only=open_only,
        )
        return [r.as_json() for r in found]

    @router.get("/requests/{request_id}", response_model=RequestOut)
    def show(request_id: Id, principal: Annotated[Any, Depends(anyone)]) -> dict[str, Any]:
        """One request with its history (who did what, when, why)."""
        return requests.get(request_id, viewer=actor_of(principal)).as_json()

    @router.post("/requests/{request_id}/review", response_model=RequestOut)
    def review(request_id: Id, body: NoteIn, principal: Annotated[Any, Depends(providers)]) -> dict[str, Any]:
        """The providing department takes the request into review (受理)."""
        return requests.review(request_id, by=actor_of(principal), note=body.reason).as_json()

    @router.post("/requests/{request_id}/grant", response_model=RequestOut)
    def grant(request_id: Id, body: GrantIn, principal: Annotated[Any, Depends(providers)]) -> dict[str, Any]:
        """Grant an application or accept a demand; say what it leads to (a licence or a sharing)."""
        return requests.decide(
            request_id, "granted", by=actor_of(principal), reason=body.reason, leads_to=body.leads_to
        ).as_json()

    @router.post("/requests/{request_id}/refuse", response_model=RequestOut)
    def refuse(request_id: Id, body: ReasonIn, principal: Annotated[Any, Depends(providers)]) -> dict[str, Any]:
        """Refuse with the specific reasons (应说明具体原因)."""
        return requests.decide(request_id, "refused", by=actor_of(principal), reason=body.reason).as_json()

    @router.post("/requests/{request_id}/answer", response_model=RequestOut)
    def answer(request_id: Id, body: ReasonIn, principal: Annotated[Any, Depends(providers)]) -> dict[str, Any]:
        """Answer a correction or a catalog update: the result reported back."""
        return requests.decide(request_id, "answered", by=actor_of(principal), reason=body.reason).as_json()

    @router.post("/requests/{request_id}/withdraw", response_model=RequestOut)
    def withdraw(request_id: Id, body: NoteIn, principal: Annotated[Any, Depends(submitters)]) -> dict[str, Any]:
        """Withdraw your own open request."""
        return requests.withdraw(request_id, by=actor_of(principal), reason=body.reason).as_json()

    _calendar_routes(router, registry, anyone)
    return router


def _calendar_routes(router: APIRouter, registry: Registry, anyone: Callable[..., Any]) -> None:
    """``/calendar/due`` and ``/calendar/rules``: the working-day question, for anyone signed in."""

    @router.get("/calendar/due", response_model=DueOut)
    def due(
        _: Annotated[Any, Depends(anyone)],
        received: Annotated[
            date, Query(ge=date(2004, 1, 1), le=date(2098, 12, 31), description="China's date of receipt (YYYY-MM-DD).")
        ],
        working_days: Annotated[int, Query(ge=1, le=MAX_WORKING_DAYS)],
    ) -> dict[str, Any]:
        """The due date of N working days counted from the day after receipt (China's working days)."""
        return registry.requests.calendar().due(received, working_days).as_json()

    @router.get("/calendar/rules", response_model=RulesOut)
    def rules(_: Annotated[Any, Depends(anyone)]) -> dict[str, Any]:
        """This instance's time limits, each with its article."""
        profile = registry.config.request_profile
        return {"profile": profile, "rules": [r.as_json() for r in rules_of(profile)]}


__all__ = ["build_router"]
