"""Operators' jobs over HTTP: ``POST /jobs``, ``GET /jobs``, ``GET /jobs/{id}``, ``POST /jobs/{id}/cancel``.

Remote operators act with their JWT (DESIGN.md, Command-line contract): a submission runs the same
scope check and quotas as ``keyong job submit`` and a refusal comes back as 409 with its reason (the
registry has recorded it). What an operator reads is its own jobs only, and only judged content
(原始数据不出域, 数据可用不可见; 双鸭山 第三十五条): :meth:`sandbox.queue.JobView.for_operator` decides
it, for this API and the console alike (a blocked job shows its findings, never its outputs, log or
exit code). The agency and regulators see every job in full, without host paths; only the owning
operator and the agency may cancel.
"""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.api.limits import (
    MAX_CODE_CHARS,
    Code,
    Delta,
    Epsilon,
    FileName,
    Filter,
    Id,
    Name,
    Reason,
    Visible,
    VisibleText,
)
from app.api.schemas import BINARY_RESPONSE, BudgetOut, CostOut, JobOut
from core import Actor, NotFoundError, actor_of
from operators import Jobs
from sandbox import MAX_PURPOSE, MAX_TITLE, JobState, JobView, manifest_of

#: Who reads a job in full over HTTP: those who see every job. Everyone else gets the operator's view.
FULL_VIEW_ROLES = frozenset({"agency", "regulator"})


class JobSubmission(BaseModel):
    datasets: list[Name] = Field(min_length=1, max_length=16, description="Granted datasets the job reads.")
    # A bounded string, not the enum: an unknown kind is the domain's usage error, answered 422 with a
    # suggestion ("did you mean sql?"), which pydantic's enum message cannot give.
    kind: Name = Field(description="sql | python | dp-query | dp-train")
    code: Code = Field(description="The SQL query or the Python script.")
    scenario: Name = Field(description="The declared application scenario (应用场景).")
    # Issue 18: optional, added beside the contract's keys; the domain checks their length and form too.
    title: Annotated[str, StringConstraints(max_length=MAX_TITLE), Visible] = Field(
        "", description="A one-line title of the job, the operator's own."
    )
    purpose: Annotated[str, StringConstraints(max_length=MAX_PURPOSE), VisibleText] = Field(
        "", description="What the job's results are for (用途)."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "datasets": ["traffic"],
                    "kind": "sql",
                    "code": "SELECT 区县, COUNT(*) AS n FROM traffic GROUP BY 区县",
                    "scenario": "交通出行",
                    "title": "各区县路口数",
                    "purpose": "评估各区县交通监测覆盖",
                }
            ]
        }
    )


class CostRequest(BaseModel):
    spec: str = Field(min_length=2, max_length=MAX_CODE_CHARS, description="A dp-query or dp-train spec (JSON text).")
    kind: Filter | None = Field(None, description="dp-query | dp-train (default: from the spec's keys)")
    dataset: Name | None = Field(
        None, description="With a dataset: the plan's DP-SGD schedule and your remaining budget."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "spec": '{"aggregate": "count", "epsilon": 0.5, "group_by": ["区县"]}',
                    "kind": "dp-query",
                    "dataset": "traffic",
                }
            ]
        }
    )


class MitigationRequest(BaseModel):
    suppress: bool = Field(False, description="Suppress cells below the threshold, with secondary suppression.")
    round_base: int | None = Field(None, ge=2, le=1000, description="Round counts to this base (ACRO: 5).")

    model_config = ConfigDict(json_schema_extra={"examples": [{"suppress": True, "round_base": 5}]})


class BudgetRaise(BaseModel):
    licence: Id
    dataset: Name
    reason: Reason
    epsilon: Epsilon | None = None
    delta: Delta | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"licence": 1, "dataset": "traffic", "reason": "追加分析经批准", "epsilon": 5.0}]
        }
    )


class JobQueued(BaseModel):
    job: int
    state: str = Field(description="queued, or refused when the scope check or quota refused it")


class MitigationQueued(BaseModel):
    job: int = Field(description="The new job that re-checks the mitigated tables.")
    state: str
    source_job: int


class BudgetsOut(BaseModel):
    operator: str
    budgets: list[BudgetOut] = Field(description="Per licence and dataset: ε and δ granted and spent.")


#: Media types of outputs by suffix; anything else is bytes. Always served as an attachment, never rendered.
OUTPUT_MEDIA = {
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def output_media_type(name: str) -> str:
    """What an output is served as (``application/octet-stream`` for an unknown suffix)."""
    suffix = "." + name.lower().rsplit(".", 1)[-1] if "." in name else ""
    return OUTPUT_MEDIA.get(suffix, "application/octet-stream")


def remote_view(view: JobView, viewer: Actor) -> dict[str, Any]:
    """What ``viewer`` may read of a job over HTTP.

    The agency and regulators read the full record (they see every job, DESIGN.md, Roles); anyone
    else — an operator — reads :meth:`JobView.for_operator` (judged content only), so a role added
    later falls on the closed side. Nobody remote gets a storage path or a worker's internals; ``log``
    is only ever the export guard's redacted excerpt, never the raw logs.
    """
    shown = view if viewer.role in FULL_VIEW_ROLES or viewer.is_host else view.for_operator()
    data = shown.as_json()
    data["outputs"] = manifest_of(data["outputs"])
    data["datasets"] = {
        name: {"version": granted.get("version")} if isinstance(granted, dict) else {}
        for name, granted in (data.get("datasets") or {}).items()
    }
    for internal in ("worker", "claimed_at", "heartbeat_at"):
        data.pop(internal, None)
    return data


def build_router(jobs: Jobs, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["jobs"])
    operator = require("operator")
    readers = require("operator", "agency", "regulator")
    cancellers = require("operator", "agency")

    @router.post("/jobs/cost", response_model=CostOut)
    def cost(body: CostRequest, principal: Annotated[Any, Depends(operator)]) -> dict[str, Any]:
        """What a DP spec would charge, before it runs; nothing is charged."""
        actor = actor_of(principal)
        return jobs.cost(body.kind, body.spec, operator=actor.name, dataset=body.dataset)

    @router.post("/jobs/{job_id}/mitigate", status_code=201, response_model=MitigationQueued)
    def mitigate(job_id: Id, body: MitigationRequest, principal: Annotated[Any, Depends(operator)]) -> dict[str, Any]:
        """Queue a mitigated copy of one of your judged jobs' tables; the guard re-checks it as a new job."""
        actor = actor_of(principal)
        new = jobs.mitigate(job_id, suppress=body.suppress, round_base=body.round_base, by=actor)
        return {"job": new, "state": "queued", "source_job": job_id}

    @router.post("/jobs", status_code=201, response_model=JobQueued)
    def submit(body: JobSubmission, principal: Annotated[Any, Depends(operator)]) -> dict[str, Any]:
        """Submit a job: refused at once (409, recorded) when out of licence scope or over quota."""
        actor = actor_of(principal)
        job = jobs.submit(
            actor.name,
            body.datasets,
            body.kind,
            body.code,
            body.scenario,
            by=actor,
            title=body.title,
            purpose=body.purpose,
        )
        return {"job": job, "state": jobs.show(job, viewer=actor).state}

    @router.get("/jobs", response_model=list[JobOut])
    def list_jobs(
        principal: Annotated[Any, Depends(readers)],
        state: Annotated[JobState | None, Query(description="the jobs in this state only")] = None,
    ) -> list[dict[str, Any]]:
        """Jobs the caller may see (an operator: its own), newest first."""
        actor = actor_of(principal)
        return [remote_view(v, actor) for v in jobs.list(viewer=actor, state=state)]

    @router.get("/jobs/{job_id}", response_model=JobOut)
    def show(job_id: Id, principal: Annotated[Any, Depends(readers)]) -> dict[str, Any]:
        """One job as the caller may read it (an operator: its own, judged content only)."""
        actor = actor_of(principal)
        return remote_view(jobs.show(job_id, viewer=actor), actor)

    @router.get("/jobs/{job_id}/outputs/{name}", response_class=Response, responses=BINARY_RESPONSE)
    def output(job_id: Id, name: FileName, principal: Annotated[Any, Depends(operator)]) -> Response:
        """One output of your own finished job the export guard passed (issue 18); every read is ledgered.
        Outputs sent to review or blocked leave only as a product approved by the release review (409)."""
        read = jobs.output(job_id, name, by=actor_of(principal))
        return Response(
            read.data,
            media_type=output_media_type(read.name),
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(read.name)}",
                "X-Content-SHA256": read.sha256,
            },
        )

    @router.post("/jobs/{job_id}/cancel", response_model=JobOut)
    def cancel(job_id: Id, principal: Annotated[Any, Depends(cancellers)]) -> dict[str, Any]:
        """Cancel a queued job at once; a running one is killed by its worker."""
        actor = actor_of(principal)
        return remote_view(jobs.cancel(job_id, by=actor), actor)

    _budget_routes(router, jobs, require)
    return router


def _budget_routes(router: APIRouter, jobs: Jobs, require: Callable[..., Callable[..., Any]]) -> None:
    """An operator's privacy budgets, and the agency raising one (dp jobs spend them)."""
    readers = require("operator", "agency", "regulator")
    agency = require("agency")

    @router.get("/budgets/{operator_name}", response_model=BudgetsOut)
    def budgets(operator_name: Name, principal: Annotated[Any, Depends(readers)]) -> dict[str, Any]:
        """An operator's privacy budgets (an operator sees its own only)."""
        views = jobs.registry.budgets.show(operator_name, viewer=actor_of(principal))
        return {"operator": operator_name, "budgets": [v.as_json() for v in views]}

    @router.post("/budgets/{operator_name}/raise", response_model=BudgetOut)
    def raise_budget(
        operator_name: Name, body: BudgetRaise, principal: Annotated[Any, Depends(agency)]
    ) -> dict[str, Any]:
        """Raise a licence's budget for a dataset (agency; the reason is ledgered)."""
        owned = {b.licence for b in jobs.registry.budgets.show(operator_name, viewer=actor_of(principal))}
        if body.licence not in owned:
            raise NotFoundError(f"operator {operator_name!r} holds no licence {body.licence}")
        view = jobs.registry.budgets.raise_budget(
            body.licence,
            body.dataset,
            epsilon=body.epsilon,
            delta=body.delta,
            reason=body.reason,
            by=actor_of(principal),
        )
        return view.as_json()
