"""Response documents of jobs and privacy budgets (``app.api.jobs``)."""

from typing import Any

from pydantic import Field

from app.api.schemas.base import Document, example

_SHA = "3f1a" + "0" * 60


class FindingOut(Document):
    """One export-guard finding. An operator reads the rule's fixed text as ``detail`` and no location."""

    rule: str = Field(description="The guard rule that fired, e.g. sdc.min_cell_count.")
    severity: str = Field(description="hard (blocks) or soft (sends to review).")
    file: str = Field(description="The output (or stream) it fired on.")
    location: str
    detail: str


class OutputOut(Document):
    """One output of a judged job: name, size and hash, never where it lies."""

    name: str
    bytes: int
    sha256: str


class JobOut(Document):
    """A job as the caller may read it (``keyong job show`` keys, without host paths or worker internals).

    An operator reads its own jobs only, and judged content only (双鸭山 第三十五条): a blocked job shows
    its findings, never its outputs, log or exit code."""

    model_config = example(
        job=42, state="done", verdict="pass", findings=[], log="rows: 12", reason=None, resources=None,
        exit_code=0, operator="demo-operator", licence=1, kind="sql", datasets={"traffic": {"version": 2}},
        scenario="交通出行", code_sha256=_SHA, spec_sha256=_SHA, attempts=1, max_attempts=2,
        cancel_requested=False, created_at="2026-12-01T09:00:00+00:00", started_at="2026-12-01T09:00:01+00:00",
        finished_at="2026-12-01T09:00:09+00:00",
        outputs=[{"name": "result.csv", "bytes": 120, "sha256": _SHA}],
    )  # fmt: skip

    job: int
    state: str = Field(description="queued, running, done, failed, cancelled or refused")
    verdict: str | None = Field(description="pass, review, block, or null before the guard judged")
    findings: list[FindingOut]
    log: str | None = Field(description="The export guard's redacted log excerpt, never the raw logs.")
    outputs: list[OutputOut]
    reason: str | None
    resources: dict[str, Any] | None
    exit_code: int | None
    operator: str
    licence: int | None
    kind: str
    datasets: dict[str, dict[str, Any]] = Field(description="Granted dataset -> its version.")
    scenario: str
    code_sha256: str
    spec_sha256: str
    attempts: int
    max_attempts: int
    cancel_requested: bool
    created_at: str
    started_at: str | None
    finished_at: str | None
    title: str = Field("", description="The operator's title of the job ('' when none was given; issue 18).")
    purpose: str = Field("", description="The operator's stated purpose (用途) of the job ('' when none).")


class CostOut(Document):
    """What a DP spec would charge, before it runs; nothing is charged.

    With a dataset the answer also holds ``dataset``, for a dp-train spec the planned
    ``noise_multiplier``, ``sample_rate``, ``steps`` and ``accountant``, and for the operator's active
    licence ``licence``, ``epsilon_remaining``, ``delta_remaining`` and ``fits`` (these keys appear only
    then: a key is never present as null)."""

    model_config = example(
        kind="dp-query", epsilon=0.5, delta=0.0, dataset="traffic", licence=1, epsilon_remaining=2.5,
        delta_remaining=1e-05, fits=True,
    )  # fmt: skip

    kind: str
    epsilon: float | int
    delta: float | int


class BudgetOut(Document):
    """A licence's privacy budget for one dataset: ε and δ granted, spent and remaining."""

    licence: int
    operator: str
    dataset: str
    licence_state: str
    epsilon_budget: float | int
    epsilon_spent: float | int
    epsilon_remaining: float | int
    delta_budget: float | int
    delta_spent: float | int
    delta_remaining: float | int


__all__ = ["BudgetOut", "CostOut", "FindingOut", "JobOut", "OutputOut"]
