"""People's standing over HTTP (issue 22): identity checks, terms of use, training, and what expires soon.

SATRE 3.2.02, 1.5.01, 1.5.02, 1.6.04.

The agency records identity checks and trainings (a custodian for its own department's staff), publishes the terms
of use and reads everyone's standing; a regulator reads and changes nothing; every person reads their own standing
(``GET /me/standing``) and accepts the terms in force themselves (``POST /me/terms``). Who may record what for whom
is ``operators.people``'s rule, answered here as 403; a bad date or an identity number given as a reference is 422.
A record is ledgered with its change. The identity number, when given, is kept only as a keyed digest and a masked
form, and never returned whole.
"""

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from app.api.identity import NAME_PATTERN
from app.api.schemas import ExpiringRecordOut, PersonRecordOut, StandingOut, TermsOut
from core import NotFoundError, actor_of
from operators import People
from registry import EXPIRING_DAYS, EvidenceKind

PersonPath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=128, description="A principal's name.")]


class IdentityCheckIn(BaseModel):
    evidence_kind: EvidenceKind = Field(description="What the checker saw.")
    evidence_ref: str = Field(min_length=1, max_length=128, description="Where the evidence is filed (no number).")
    checked_on: date | None = Field(default=None, description="YYYY-MM-DD; today when omitted.")
    checked_by: str | None = Field(default=None, max_length=128, description="Who checked; you when omitted.")
    expires_on: date | None = Field(default=None, description="When the check lapses, if it does.")
    id_number: str | None = Field(
        default=None, max_length=32, description="The 居民身份证号码 seen, optional: kept only as a keyed digest."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"evidence_kind": "resident_id_in_person", "evidence_ref": "HR-2026-0142", "checked_on": "2026-11-20"}
            ]
        }
    )


class TrainingIn(BaseModel):
    course: str = Field(min_length=1, max_length=128)
    completed_on: date
    expires_on: date = Field(description="When it must be repeated (at most three years on).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"course": "数据安全培训", "completed_on": "2026-11-20", "expires_on": "2027-11-20"}]
        }
    )


class TermsAcceptIn(BaseModel):
    version: str = Field(min_length=1, max_length=32, description="The version in force (GET /terms).")

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": "2026-12"}]})


class TermsIn(BaseModel):
    version: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=200_000)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"version": "2026-12", "title": "平台使用条款", "text": "1. 仅在授权范围内使用公共数据。"}]
        }
    )


def build_router(people: People, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    router = APIRouter(tags=["people"])
    anyone = require("custodian", "agency", "operator", "regulator")
    readers = require("agency", "regulator")
    certifiers = require("agency", "custodian")
    agency = require("agency")

    @router.get("/terms", response_model=TermsOut)
    def terms(_: Annotated[Any, Depends(anyone)]) -> dict[str, Any]:
        """The terms of use in force, with their text (404 before any is published)."""
        found = people.terms()
        if found is None:
            raise NotFoundError("no terms of use are published yet")
        return found

    @router.post("/terms", status_code=201, response_model=TermsOut)
    def publish(body: TermsIn, principal: Annotated[Any, Depends(agency)]) -> dict[str, Any]:
        """Publish a new version of the terms of use; from now on only its acceptance counts."""
        return people.publish_terms(body.version, title=body.title, text=body.text, by=actor_of(principal))

    @router.get("/me/standing", response_model=StandingOut)
    def my_standing(principal: Annotated[Any, Depends(anyone)]) -> dict[str, Any]:
        """Your own standing: whether you may submit jobs, and what lapsed if not."""
        actor = actor_of(principal)
        return people.standing(actor.name, viewer=actor)

    @router.post("/me/terms", status_code=201, response_model=PersonRecordOut)
    def accept(body: TermsAcceptIn, principal: Annotated[Any, Depends(anyone)]) -> dict[str, Any]:
        """Accept the terms of use in force, as yourself."""
        actor = actor_of(principal)
        return people.accept_terms(actor.name, version=body.version, by=actor)

    @router.get("/people/standing", response_model=list[StandingOut])
    def standings(principal: Annotated[Any, Depends(readers)]) -> list[dict[str, Any]]:
        """Every principal's standing today."""
        return people.standings(viewer=actor_of(principal))

    @router.get("/people/expiring", response_model=list[ExpiringRecordOut])
    def expiring(
        principal: Annotated[Any, Depends(readers)],
        within_days: Annotated[int, Query(ge=0, le=366, description="The horizon in days.")] = EXPIRING_DAYS,
    ) -> list[dict[str, Any]]:
        """Identity checks and trainings in force that expire within the horizon: whom to remind."""
        return people.expiring(within_days, viewer=actor_of(principal))

    @router.get("/people/{name}/standing", response_model=StandingOut)
    def standing(name: PersonPath, principal: Annotated[Any, Depends(readers)]) -> dict[str, Any]:
        """One person's standing today, with every record about them."""
        return people.standing(name, viewer=actor_of(principal))

    @router.post("/people/{name}/identity-checks", status_code=201, response_model=PersonRecordOut)
    def identity_check(
        name: PersonPath, body: IdentityCheckIn, principal: Annotated[Any, Depends(certifiers)]
    ) -> dict[str, Any]:
        """Record that a person's identity was checked (a custodian: its own department's staff only)."""
        return people.record_identity_check(
            name, evidence_kind=body.evidence_kind, evidence_ref=body.evidence_ref, checked_on=body.checked_on,
            checked_by=body.checked_by, expires_on=body.expires_on, id_number=body.id_number, by=actor_of(principal),
        )  # fmt: skip

    @router.post("/people/{name}/trainings", status_code=201, response_model=PersonRecordOut)
    def training(name: PersonPath, body: TrainingIn, principal: Annotated[Any, Depends(certifiers)]) -> dict[str, Any]:
        """Record a completed training and its expiry (a custodian: its own department's staff only)."""
        return people.record_training(
            name, course=body.course, completed_on=body.completed_on, expires_on=body.expires_on,
            by=actor_of(principal),
        )  # fmt: skip

    @router.post("/people/{name}/terms", status_code=201, response_model=PersonRecordOut)
    def accept_for(name: PersonPath, body: TermsAcceptIn, principal: Annotated[Any, Depends(agency)]) -> dict[str, Any]:
        """Record a person's acceptance of the terms in force from their signed copy."""
        return people.accept_terms(name, version=body.version, by=actor_of(principal))

    return router


__all__ = ["build_router"]
