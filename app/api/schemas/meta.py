"""Response documents that are not a domain view: health, refusals, the scope check, file and text bodies."""

from typing import Any

from pydantic import Field

from app.api.schemas.base import Document, example


class WorkersOut(Document):
    live: int = Field(description="Workers whose heartbeat is recent.")
    live_within_seconds: int


class HealthOut(Document):
    """Liveness and database reachability; ``warning`` appears (only) when no worker is alive.

    Answered 503 with ``status`` "error" and ``database`` naming the error's type when the database is
    unreachable (then without ``instance`` or ``workers``)."""

    model_config = example(
        status="ok", database="postgresql", instance="3f2a…", workers={"live": 1, "live_within_seconds": 60}
    )

    status: str = Field(description="ok, or error (answered 503)")
    database: str = Field(description="The database dialect, or the error's type when unreachable.")
    instance: str
    workers: WorkersOut


class HealthDownOut(Document):
    """The database is unreachable: ``database`` names the error's type (never its message)."""

    status: str = Field(description="error")
    database: str


class RefusalOut(Document):
    """A refusal: ``detail`` says why, in the rule's own words."""

    model_config = example(detail="operator 'acme' is suspended (双鸭山 第三十一条)")

    detail: Any = Field(description="Why (text), or FastAPI's list of validation errors.")


class ScopeDatasetOut(Document):
    """A dataset a job would mount: the desensitized version, by number (never where it lies)."""

    name: str
    resource_id: int
    version_id: int
    version: int
    epsilon_budget: float | int
    epsilon_spent: float | int


class ScopeCheckOut(Document):
    """The licence and datasets a job of the caller's would run under."""

    model_config = example(
        licence_id=1, operator="demo-operator", scenario="交通出行",
        datasets=[{"name": "traffic", "resource_id": 1, "version_id": 2, "version": 2, "epsilon_budget": 3.0,
                   "epsilon_spent": 0.0}],
    )  # fmt: skip

    licence_id: int
    operator: str
    scenario: str
    datasets: list[ScopeDatasetOut]


class ScopeRefusalOut(Document):
    """Why a job would not be admitted: ``kind`` names the rule; an unknown name comes with ``suggestions``."""

    detail: str
    kind: str


def text_response(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route answering with text of ``media_type`` (not JSON)."""
    return {200: {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}}


#: A downloaded file: its bytes as they were approved and stamped.
BINARY_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The artifact's bytes; ``X-Keyong-Attribution`` names its source and date.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}

__all__ = [
    "BINARY_RESPONSE",
    "HealthDownOut",
    "HealthOut",
    "RefusalOut",
    "ScopeCheckOut",
    "ScopeDatasetOut",
    "ScopeRefusalOut",
    "WorkersOut",
    "text_response",
]
