"""The platform freeze and the incident register over HTTP (SATRE 2.6.04; 双鸭山 第六十一条 应急处置).

``POST /platform/freeze`` stops job intake, job starts, egress and delivery at once; the agency or the
regulator may stop the platform, only the agency restarts it (``registry.FREEZE_ROLES``,
``UNFREEZE_ROLES``). Every authenticated role reads whether it is frozen (``GET /platform/freeze``),
and ``/healthz`` says so without authentication. A request the freeze refuses is answered 423 Locked
with the reason it is refused. Incidents are recorded, closed and read by the agency and the regulator.
"""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.limits import MAX_ID, Id
from app.api.schemas import FreezeOut, IncidentOut
from core import actor_of
from registry import FREEZE_REASON_CHARS, FREEZE_ROLES, INCIDENT_ROLES, UNFREEZE_ROLES, PlatformFrozenError, Registry

LOCKED = 423


class FreezeReason(BaseModel):
    reason: str = Field(min_length=1, max_length=FREEZE_REASON_CHARS, description="Why; recorded in the ledger.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "数据泄露 suspected leak of a desensitized copy"}]}
    )


class IncidentIn(BaseModel):
    title: str = Field(min_length=1, max_length=200, examples=["API key of an operator leaked"])
    severity: Literal["low", "medium", "high", "critical"]
    description: str = Field("", max_length=8000)
    ledger_entries: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=100, description="Sequence numbers of the ledger entries it concerns."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "API key of an operator leaked",
                    "severity": "high",
                    "description": "密钥出现在公开仓库",
                    "ledger_entries": [41, 42],
                }
            ]
        }
    )


class IncidentClose(BaseModel):
    note: str = Field(min_length=1, max_length=8000, description="How it was resolved.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "key revoked, operator notified"}]})


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    router = APIRouter(tags=["incidents"])
    anyone = require("custodian", "agency", "operator", "regulator")
    freezers = require(*FREEZE_ROLES)
    unfreezers = require(*UNFREEZE_ROLES)
    handlers = require(*INCIDENT_ROLES)

    @router.get("/platform/freeze", response_model=FreezeOut)
    def freeze_state(_: Annotated[Any, Depends(anyone)]) -> dict[str, Any]:
        """Whether the platform is frozen, since when, why and by whom."""
        return registry.freeze.state().as_json()

    @router.post("/platform/freeze", response_model=FreezeOut)
    def freeze(body: FreezeReason, principal: Annotated[Any, Depends(freezers)]) -> dict[str, Any]:
        """Stop job intake, job starts, egress and product delivery at once (ledgered with the reason)."""
        return registry.freeze.freeze(reason=body.reason, by=actor_of(principal)).as_json()

    @router.post("/platform/unfreeze", response_model=FreezeOut)
    def unfreeze(body: FreezeReason, principal: Annotated[Any, Depends(unfreezers)]) -> dict[str, Any]:
        """Restore what the freeze stopped; queued jobs start again (ledgered with the reason)."""
        return registry.freeze.unfreeze(reason=body.reason, by=actor_of(principal)).as_json()

    @router.get("/incidents", response_model=list[IncidentOut])
    def incidents(
        principal: Annotated[Any, Depends(handlers)],
        state: Annotated[Literal["open", "closed"] | None, Query()] = None,
    ) -> list[dict[str, Any]]:
        """The incident register, newest first."""
        return registry.incidents.list(viewer=actor_of(principal), state=state)

    @router.post("/incidents", status_code=201, response_model=IncidentOut)
    def record(body: IncidentIn, principal: Annotated[Any, Depends(handlers)]) -> dict[str, Any]:
        """Record an incident, linked to the ledger entries it concerns (which must exist)."""
        return registry.incidents.record(
            title=body.title,
            severity=body.severity,
            description=body.description,
            ledger_entries=body.ledger_entries,
            by=actor_of(principal),
        )

    @router.get("/incidents/{incident_id}", response_model=IncidentOut)
    def incident(incident_id: Id, principal: Annotated[Any, Depends(handlers)]) -> dict[str, Any]:
        """One incident."""
        return registry.incidents.get(incident_id, viewer=actor_of(principal))

    @router.post("/incidents/{incident_id}/close", response_model=IncidentOut)
    def close(incident_id: Id, body: IncidentClose, principal: Annotated[Any, Depends(handlers)]) -> dict[str, Any]:
        """Close an open incident with a note."""
        return registry.incidents.close(incident_id, note=body.note, by=actor_of(principal))

    return router


def install_freeze_handler(app: FastAPI) -> None:
    """A request the freeze refuses is 423 Locked, with the freeze's own message."""

    async def locked(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=LOCKED)

    app.add_exception_handler(PlatformFrozenError, locked)


__all__ = ["build_router", "install_freeze_handler"]
