"""Releases over HTTP, by role (issue 7): operators request, resubmit, withdraw and fetch their own;
agency principals vote (sealed until the round is decided); regulators read everything.

``POST /releases``, ``GET /releases``, ``GET /releases/{id}``, ``POST /releases/{id}/votes``,
``POST /releases/{id}/resubmit``, ``POST /releases/{id}/withdraw``,
``GET /products/{name}/artifacts/{file}`` (the owning operator only, while no objection suspends it;
the delivered copy carries its attribution, 双鸭山 第四十一条). Refusals are the registry's 403/404/409.
"""

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Depends, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from core import NotFoundError, actor_of
from sandbox import Releases


class ReleaseRequest(BaseModel):
    job: int
    product: str = Field(min_length=1, max_length=128)
    fee_class: str | None = None
    justifications: dict[str, str] = Field(default_factory=dict, description="finding index -> justification")
    files: list[str] | None = Field(default=None, description="Only these outputs (default: all).")


class Resubmission(BaseModel):
    job: int
    justifications: dict[str, str] = Field(default_factory=dict)
    files: list[str] | None = None


class Vote(BaseModel):
    decision: str = Field(description="approve | changes_requested | reject (the default for every file)")
    files: dict[str, str] = Field(default_factory=dict, description="file name -> decision, overriding the default")
    reason: str = Field(default="", max_length=4000)


class Withdrawal(BaseModel):
    reason: str = Field(default="", max_length=4000)


def build_router(releases: Releases, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["releases"])
    operator = require("operator")
    agency = require("agency")
    readers = require("operator", "agency", "regulator")

    @router.post("/releases", status_code=201)
    def request(body: ReleaseRequest, principal: Annotated[Any, Depends(operator)]) -> dict[str, Any]:
        """Ask for a done job's outputs (guard verdict pass or review) to be released as a product."""
        view = releases.request(
            body.job,
            product=body.product,
            by=actor_of(principal),
            fee_class=body.fee_class,
            justifications=body.justifications,
            files=body.files,
        )
        return view.as_json()

    @router.get("/releases")
    def list_releases(
        principal: Annotated[Any, Depends(readers)],
        state: Annotated[str | None, Query(description="submitted, under_review, approved, returned, …")] = None,
    ) -> list[dict[str, Any]]:
        """An operator's own releases; the agency's pending queue with ``state``."""
        return [v.as_json() for v in releases.list(viewer=actor_of(principal), state=state)]

    @router.get("/releases/{release_id}")
    def show(release_id: int, principal: Annotated[Any, Depends(readers)]) -> dict[str, Any]:
        return releases.get(release_id, viewer=actor_of(principal)).as_json()

    @router.post("/releases/{release_id}/votes")
    def vote(release_id: int, body: Vote, principal: Annotated[Any, Depends(agency)]) -> dict[str, Any]:
        """One reviewer's sealed vote; the round is decided once enough independent reviewers agree."""
        view = releases.vote(release_id, body.decision, by=actor_of(principal), reason=body.reason, files=body.files)
        return view.as_json()

    @router.post("/releases/{release_id}/resubmit")
    def resubmit(release_id: int, body: Resubmission, principal: Annotated[Any, Depends(operator)]) -> dict[str, Any]:
        view = releases.resubmit(
            release_id, job_id=body.job, by=actor_of(principal), justifications=body.justifications, files=body.files
        )
        return view.as_json()

    @router.post("/releases/{release_id}/withdraw")
    def withdraw(release_id: int, body: Withdrawal, principal: Annotated[Any, Depends(operator)]) -> dict[str, Any]:
        return releases.withdraw(release_id, by=actor_of(principal), reason=body.reason).as_json()

    @router.get("/products/{name}/artifacts/{file}")
    def fetch(
        name: str, file: str, principal: Annotated[Any, Depends(operator)], cleanup: BackgroundTasks
    ) -> FileResponse:
        """One artifact of the caller's own available product, stamped with its attribution."""
        workdir = tempfile.TemporaryDirectory(prefix="keyong-fetch-")
        cleanup.add_task(workdir.cleanup)
        delivered = releases.fetch(name, Path(workdir.name), by=actor_of(principal))
        match = next((f for f in delivered["files"] if f["name"] == file), None)
        if match is None:
            workdir.cleanup()
            raise NotFoundError(f"product {name!r} has no artifact {file!r}")
        # Every download also names its source and date in a header (a CSV has nowhere inside to keep it).
        header = quote(json.dumps(delivered["attribution"], ensure_ascii=False, sort_keys=True))
        return FileResponse(match["path"], filename=Path(match["path"]).name, headers={"X-Keyong-Attribution": header})

    return router
