"""Releases over HTTP, by role (issue 7): operators request, resubmit, withdraw and fetch their own;
agency principals vote (sealed until the round is decided); custodians sign off releases of their
datasets, or refuse them (issue 22, SATRE 3.1.06; not sealed); regulators read everything.

``POST /releases``, ``GET /releases``, ``GET /releases/{id}``, ``POST /releases/{id}/votes``,
``GET /releases/awaiting-signoff`` (the custodian's queue), ``POST /releases/{id}/signoffs``,
``POST /releases/{id}/resubmit``, ``POST /releases/{id}/withdraw``,
``GET/POST /releases/{id}/comments`` (the review thread: agency reviewers and the requesting operator, issue 18),
``POST /releases/{id}/assignment`` (a reviewer takes or gives back a pending release),
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
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.api.limits import MAX_LIST_ITEMS, FileName, Id, Name, OptionalReason, ProductName, Text
from app.api.schemas import BINARY_RESPONSE
from core import NotFoundError, actor_of
from registry import FeeClass
from sandbox import Decision, Releases, ReleaseState, SignOff

Justifications = Annotated[
    dict[Annotated[str, Field(max_length=16)], Text],
    Field(max_length=MAX_LIST_ITEMS, description="finding index -> justification"),
]
Files = Annotated[list[FileName], Field(max_length=MAX_LIST_ITEMS, description="Only these outputs (default: all).")]


class ReleaseOut(BaseModel):
    """A release as the caller may read it: votes of an undecided round stay sealed (only one's own shows)."""

    release: int
    job: int
    operator: str
    licence: int
    product: str
    fee_class: str
    state: str = Field(
        description="submitted, under_review (also while custodians' sign-off is pending), approved, returned, "
        "rejected or withdrawn"
    )
    round: int
    required_reviews: int
    votes_needed: int
    verdict: str = Field(description="The export guard's verdict on the job: pass or review")
    findings: list[dict[str, Any]]
    justifications: dict[str, str]
    outputs: list[dict[str, Any]]
    votes: list[dict[str, Any]]
    votes_cast: int
    reason: str | None
    product_id: int | None
    signoff_required: list[str] = Field(
        default_factory=list, description="Datasets whose custodian must sign off this round (no delegation)"
    )
    delegated: dict[str, int] = Field(
        default_factory=dict, description="dataset -> the standing delegation that spared its sign-off"
    )
    signoffs: list[dict[str, Any]] = Field(default_factory=list, description="Custodians' sign-offs (not sealed)")
    signoffs_pending: list[str] = Field(default_factory=list, description="Datasets still awaiting sign-off")
    created_at: str
    updated_at: str
    decided_at: str | None


class ReleaseRequest(BaseModel):
    job: Id
    product: ProductName
    fee_class: FeeClass | None = None
    justifications: Justifications = Field(default_factory=dict)
    files: Files | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"job": 42, "product": "traffic-flow-2026", "justifications": {"0": "区县级汇总，单元格均≥10"}}
            ]
        }
    )


class Resubmission(BaseModel):
    job: Id
    justifications: Justifications = Field(default_factory=dict)
    files: Files | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"job": 43, "justifications": {"0": "已抑制小于10的单元格"}}]}
    )


Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Vote(BaseModel):
    """A reviewer's vote. With ``files`` it decides every file of the round (a partial map is refused: no
    default vote, issue 18); without ``files`` it is the shorthand ``decision`` for every file.

    ``round`` and ``files_sha256`` are optional (callers before red team 18 keep working): when given, the
    vote is refused (409, nothing recorded) unless the release is still in that round with exactly those
    files, so a vote is never counted for outputs the reviewer did not see (双鸭山 第五十二条)."""

    decision: Decision = Field(
        description="approve | changes_requested | reject: every file's decision when ``files`` is empty"
    )
    files: Annotated[dict[FileName, Decision], Field(max_length=MAX_LIST_ITEMS)] = Field(
        default_factory=dict, description="file name -> decision, for every file of the round (or empty)"
    )
    round: Id | None = Field(default=None, description="The round the reviewer read; refused if the release moved on")
    files_sha256: Annotated[dict[FileName, Sha256], Field(max_length=MAX_LIST_ITEMS)] | None = Field(
        default=None, description="file name -> SHA-256 of every file the reviewer read; refused if they differ"
    )
    reason: OptionalReason = ""
    comment: OptionalReason = Field(
        default="", description="Posted on the whole release with the vote; a return needs a comment this round"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "decision": "approve",
                    "files": {"table.csv": "approve", "chart.svg": "reject"},
                    "reason": "表格合规；图表含小单元格",
                    "round": 1,
                }
            ]
        }
    )


class CommentBody(BaseModel):
    body: Text = Field(description="The comment (ledgered as its SHA-256 only)")
    file: FileName | None = Field(default=None, description="One of the round's files; none: the whole release")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"body": "请将小于10的单元格合并", "file": "result.csv"}]}
    )


class CommentOut(BaseModel):
    """One comment of a release's review thread (issue 18)."""

    id: int
    release: int
    round: int
    file: str | None = Field(description="The file commented on; null: the whole release")
    author: str
    role: str
    body: str
    created_at: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "release": 7,
                    "round": 1,
                    "file": "result.csv",
                    "author": "demo-agency",
                    "role": "agency",
                    "body": "请将小于10的单元格合并",
                    "created_at": "2026-12-07T03:20:05+00:00",
                }
            ]
        }
    )


class AssignmentBody(BaseModel):
    take: bool = Field(default=True, description="true: assign to me; false: give back my assignment")

    model_config = ConfigDict(json_schema_extra={"examples": [{"take": True}]})


class AssignmentOut(BaseModel):
    """Who reviews a pending release now (null: nobody)."""

    release: int
    assigned_to: str | None

    model_config = ConfigDict(json_schema_extra={"examples": [{"release": 7, "assigned_to": "demo-agency"}]})


class SignOffBody(BaseModel):
    decision: SignOff = Field(description="approve (sign off) | refuse (rejects the release at once)")
    datasets: Annotated[list[Name], Field(max_length=MAX_LIST_ITEMS)] | None = Field(
        default=None, description="Only these datasets (default: every pending one the caller is custodian of)"
    )
    reason: OptionalReason = ""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"decision": "refuse", "reason": "含未公开的个体字段 · individual-level field"}]
        }
    )


class Withdrawal(BaseModel):
    reason: OptionalReason = ""

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "改用新的分析口径"}]})


def build_router(releases: Releases, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["releases"])
    operator = require("operator")
    agency = require("agency")
    custodian = require("custodian")  # the custodians' routes come before /releases/{id}: they must match first
    readers = require("operator", "agency", "regulator", "custodian")

    @router.post("/releases", status_code=201, response_model=ReleaseOut)
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

    @router.get("/releases", response_model=list[ReleaseOut])
    def list_releases(
        principal: Annotated[Any, Depends(readers)],
        state: Annotated[ReleaseState | None, Query(description="the releases in this state only")] = None,
    ) -> list[dict[str, Any]]:
        """An operator's own releases; the agency's pending queue with ``state``."""
        return [v.as_json() for v in releases.list(viewer=actor_of(principal), state=state)]

    _custodian_routes(router, releases, custodian)

    @router.get("/releases/{release_id}", response_model=ReleaseOut)
    def show(release_id: Id, principal: Annotated[Any, Depends(readers)]) -> dict[str, Any]:
        """One release as the caller may read it (votes stay sealed until the round is decided)."""
        return releases.get(release_id, viewer=actor_of(principal)).as_json()

    @router.post("/releases/{release_id}/votes", response_model=ReleaseOut)
    def vote(release_id: Id, body: Vote, principal: Annotated[Any, Depends(agency)]) -> dict[str, Any]:
        """One reviewer's sealed vote; the round is decided once enough independent reviewers agree."""
        view = releases.vote(
            release_id,
            body.decision,
            by=actor_of(principal),
            reason=body.reason,
            files=body.files,
            comment=body.comment,
            round_shown=body.round,
            files_sha256=body.files_sha256,
        )
        return view.as_json()

    _thread_routes(router, releases, require("operator", "agency"), agency)

    @router.post("/releases/{release_id}/resubmit", response_model=ReleaseOut)
    def resubmit(release_id: Id, body: Resubmission, principal: Annotated[Any, Depends(operator)]) -> dict[str, Any]:
        """Send a returned release back to review as a new round, with a rerun job's outputs."""
        view = releases.resubmit(
            release_id, job_id=body.job, by=actor_of(principal), justifications=body.justifications, files=body.files
        )
        return view.as_json()

    @router.post("/releases/{release_id}/withdraw", response_model=ReleaseOut)
    def withdraw(release_id: Id, body: Withdrawal, principal: Annotated[Any, Depends(operator)]) -> dict[str, Any]:
        """Take back a release not yet decided (submitted, under review or returned)."""
        return releases.withdraw(release_id, by=actor_of(principal), reason=body.reason).as_json()

    _product_routes(router, releases, operator)
    return router


def _product_routes(router: APIRouter, releases: Releases, operator: Callable[..., Any]) -> None:
    """The operator's download of one artifact of its own released product."""

    @router.get("/products/{name}/artifacts/{file}", response_class=FileResponse, responses=BINARY_RESPONSE)
    def fetch(
        name: Name, file: FileName, principal: Annotated[Any, Depends(operator)], cleanup: BackgroundTasks
    ) -> FileResponse:
        """One artifact of the caller's own available product, stamped with its attribution."""
        workdir = tempfile.TemporaryDirectory(prefix="keyong-fetch-")
        cleanup.add_task(workdir.cleanup)
        try:  # an artifact the product lacks is refused (404) before anything is ledgered (red team 18, F6)
            delivered = releases.fetch(name, Path(workdir.name), by=actor_of(principal), only=file)
        except BaseException:
            workdir.cleanup()
            raise
        match = next((f for f in delivered["files"] if f["name"] == file), None)
        if match is None:
            workdir.cleanup()
            raise NotFoundError(f"product {name!r} has no artifact {file!r}")
        # Every download also names its source and date in a header (a CSV has nowhere inside to keep it).
        header = quote(json.dumps(delivered["attribution"], ensure_ascii=False, sort_keys=True))
        return FileResponse(match["path"], filename=Path(match["path"]).name, headers={"X-Keyong-Attribution": header})


def _custodian_routes(router: APIRouter, releases: Releases, custodian: Callable[..., Any]) -> None:
    """A custodian's queue and its own sign-off or refusal (issue 22, SATRE 3.1.06)."""

    @router.get("/releases/awaiting-signoff", response_model=list[ReleaseOut])
    def awaiting(principal: Annotated[Any, Depends(custodian)]) -> list[dict[str, Any]]:
        """Open releases still waiting for the caller's sign-off on a dataset it is custodian of."""
        return [v.as_json() for v in releases.awaiting_signoff(viewer=actor_of(principal))]

    @router.post("/releases/{release_id}/signoffs", response_model=ReleaseOut)
    def sign_off(release_id: Id, body: SignOffBody, principal: Annotated[Any, Depends(custodian)]) -> dict[str, Any]:
        """A custodian's own sign-off or refusal; the product is registered once reviewers and custodians agree."""
        view = releases.sign_off(
            release_id, body.decision, by=actor_of(principal), datasets=body.datasets, reason=body.reason
        )
        return view.as_json()


def _thread_routes(
    router: APIRouter, releases: Releases, parties: Callable[..., Any], agency: Callable[..., Any]
) -> None:
    """The review thread (issue 18): the agency's reviewers and the requesting operator read and post."""

    @router.get("/releases/{release_id}/comments", response_model=list[CommentOut])
    def comments(release_id: Id, principal: Annotated[Any, Depends(parties)]) -> list[dict[str, Any]]:
        """Every round's comments, oldest first."""
        return [c.as_json() for c in releases.comments.list(release_id, viewer=actor_of(principal))]

    @router.post("/releases/{release_id}/comments", status_code=201, response_model=CommentOut)
    def comment(release_id: Id, body: CommentBody, principal: Annotated[Any, Depends(parties)]) -> dict[str, Any]:
        """A comment on one of the round's files or on the whole release (ledgered as its SHA-256)."""
        return releases.comments.post(release_id, body.body, by=actor_of(principal), file=body.file).as_json()

    @router.post("/releases/{release_id}/assignment", response_model=AssignmentOut)
    def assignment(release_id: Id, body: AssignmentBody, principal: Annotated[Any, Depends(agency)]) -> dict[str, Any]:
        """Take a pending release from the queue (``take``), or give your assignment back."""
        reviewer = releases.comments.assign(release_id, by=actor_of(principal), take=body.take)
        return {"release": release_id, "assigned_to": reviewer}
