"""Quotas and the usage report over HTTP (issue 22; SATRE 2.3.01, 2.3.03, 2.2.13).

* ``GET /quotas``: the calling operator's own quotas, use and remainder (and per licence where the
  agency allocated one, and its DP budgets), before it submits anything.
* ``GET /quotas/{operator}``: the same for the agency and regulators; an operator asking for another's
  gets 404, as if it did not exist (its own is answered).
* ``PUT /quotas/{operator}``: the agency allocates (reason required, ledgered as ``quota.allocated``);
  values are bounded here (422) and again in the registry.
* ``GET /usage-report``: the instance-wide counts, agency and regulators only (an operator: 403).
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from app.api.limits import Id, Name, Reason
from app.api.schemas import AllocationOut, QuotasOut, UsageReportOut
from app.instance import Instance
from core import UsageError, actor_of
from operators import usage_report
from registry import MAX_CONCURRENT, MAX_CPU_SECONDS, MAX_PER_DAY

#: The usage report's window when ``since`` is not given.
DEFAULT_WINDOW = timedelta(days=30)


class QuotaAllocationIn(BaseModel):
    licence: Id | None = Field(None, description="Only this licence of the operator (never above the operator's).")
    concurrent: int | None = Field(None, ge=0, le=MAX_CONCURRENT, description="Jobs queued or running at once.")
    per_day: int | None = Field(None, ge=0, le=MAX_PER_DAY, description="Jobs admitted per rolling 24 hours.")
    cpu_seconds_per_day: float | None = Field(
        None, ge=0, le=MAX_CPU_SECONDS, allow_inf_nan=False, description="CPU seconds per rolling 24 hours."
    )
    reason: Reason

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"concurrent": 8, "cpu_seconds_per_day": 7200, "reason": "年度算力分配"}]},
    )


def build_router(instance: Instance, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["quotas"])
    operator = require("operator")
    readers = require("operator", "agency", "regulator")
    agency = require("agency")
    reporters = require("agency", "regulator")

    @router.get("/quotas", response_model=QuotasOut)
    def own_quotas(principal: Annotated[Any, Depends(operator)]) -> dict[str, Any]:
        """Your own quotas: each limit, what you used in the rolling 24 hours and what remains."""
        actor = actor_of(principal)
        return instance.jobs.book.overview(actor.name, viewer=actor)

    @router.get("/quotas/{operator_name}", response_model=QuotasOut)
    def quotas_of(operator_name: Name, principal: Annotated[Any, Depends(readers)]) -> dict[str, Any]:
        """An operator's quotas and use (an operator: its own only)."""
        return instance.jobs.book.overview(operator_name, viewer=actor_of(principal))

    @router.put("/quotas/{operator_name}", response_model=AllocationOut)
    def allocate(
        operator_name: Name, body: QuotaAllocationIn, principal: Annotated[Any, Depends(agency)]
    ) -> dict[str, Any]:
        """Allocate an operator's quotas, or a licence's (agency; the reason is ledgered)."""
        view = instance.jobs.book.allocate(
            operator_name,
            by=actor_of(principal),
            reason=body.reason,
            licence=body.licence,
            concurrent=body.concurrent,
            per_day=body.per_day,
            cpu_seconds_per_day=body.cpu_seconds_per_day,
        )
        return dict(view.as_json())

    @router.get("/usage-report", tags=["usage"], response_model=UsageReportOut)
    def report(
        principal: Annotated[Any, Depends(reporters)],
        since: Annotated[datetime | None, Query(description="Window start (ISO time); default 30 days ago.")] = None,
        all_time: Annotated[bool, Query(alias="all", description="The whole life of the instance.")] = False,
    ) -> dict[str, Any]:
        """Instance-wide usage: principals by role, organisations, licences, datasets, bytes stored, jobs, CPU."""
        now = instance.registry.config.now()
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        if all_time and since is not None:
            raise UsageError("give since or all, not both")
        start = None if all_time else since or now - DEFAULT_WINDOW
        return usage_report(instance.registry, instance.home, since=start, viewer=actor_of(principal))

    return router
