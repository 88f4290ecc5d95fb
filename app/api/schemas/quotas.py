"""Response documents of quotas and the usage report (issue 22; SATRE 2.3.01, 2.3.03, 2.2.13)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.api.schemas.base import Document, example
from app.api.schemas.examples import BUDGET_EXAMPLE
from app.api.schemas.jobs import BudgetOut

_T = "2026-12-06T09:00:00+00:00"
_LINES: list[dict[str, Any]] = [
    {"quota": "concurrent", "means": "jobs queued or running at once", "limit": 4, "used": 1, "remaining": 3,
     "source": "default"},
    {"quota": "per_day", "means": "jobs admitted in the rolling 24 hours", "limit": 200, "used": 3,
     "remaining": 197, "source": "default"},
    {"quota": "cpu_seconds_per_day", "means": "CPU seconds of jobs ended in the rolling 24 hours",
     "limit": 3600.0, "used": 12.5, "remaining": 3587.5, "source": "default"},
]  # fmt: skip
_NOTE = {"reason": "年度算力分配", "allocated_by": "demo-agency", "allocated_at": _T}


class QuotaLineOut(Document):
    """One quota: its limit, what was used in the window (or is in flight), what remains, where it comes from."""

    quota: str = Field(description="concurrent | per_day | cpu_seconds_per_day")
    means: str
    limit: float | int
    used: float | int
    remaining: float | int
    source: str = Field(description="default (the instance setting) | allocated (by the agency)")

    model_config = example(**_LINES[0])


class AllocationNoteOut(Document):
    """Who allocated a quota, when and why."""

    reason: str
    allocated_by: str
    allocated_at: str

    model_config = example(**_NOTE)


class LicenceQuotasOut(Document):
    """A licence's own quotas, where the agency allocated them (never above its operator's)."""

    licence: int
    state: str
    quotas: list[QuotaLineOut]
    allocation: AllocationNoteOut | None

    model_config = example(licence=2, state="active", quotas=_LINES, allocation=_NOTE)


class QuotasOut(Document):
    """An operator's quotas, use and remainder now, per licence where allocated, and its DP budgets."""

    operator: str
    at: str
    window_hours: int
    quotas: list[QuotaLineOut]
    allocation: AllocationNoteOut | None
    licences: list[LicenceQuotasOut]
    budgets: list[BudgetOut]

    model_config = example(
        operator="demo-operator",
        at=_T,
        window_hours=24,
        quotas=_LINES,
        allocation=None,
        licences=[],
        budgets=[BUDGET_EXAMPLE],
    )


class AllocationOut(Document):
    """An allocation as recorded (``licence`` null: the operator's own)."""

    operator: str
    licence: int | None
    concurrent: int
    per_day: int
    cpu_seconds_per_day: float | int
    reason: str
    allocated_by: str
    allocated_at: str

    model_config = example(
        operator="demo-operator",
        licence=None,
        concurrent=8,
        per_day=200,
        cpu_seconds_per_day=7200.0,
        **_NOTE,
    )


class UsageReportOut(Document):
    """Instance-wide counts (no person named) over a window; bytes measured on the files under the home."""

    window: dict[str, str | None]
    principals_by_role: dict[str, dict[str, int]]
    principals_total: int
    organisations_by_role: dict[str, int]
    operators: dict[str, Any]
    licences_by_state: dict[str, int]
    datasets_by_state: dict[str, int]
    versions_by_kind: dict[str, int]
    versions_deleted: int
    products_by_state: dict[str, int]
    new_in_window: dict[str, int]
    jobs_by_state: dict[str, int]
    jobs_active_now: int
    cpu_seconds: float | int
    releases_by_state: dict[str, int]
    stored: dict[str, dict[str, int]]

    model_config = example(
        window={"since": "2026-11-06T09:00:00+00:00", "until": _T},
        principals_by_role={"agency": {"active": 2, "inactive": 0}, "operator": {"active": 3, "inactive": 1}},
        principals_total=6,
        organisations_by_role={"operator": 2},
        operators={"total": 2, "by_qualification": {"qualified": 2}},
        licences_by_state={"active": 2, "revoked": 1},
        datasets_by_state={"published": 3},
        versions_by_kind={"desensitized": 3, "raw": 3},
        versions_deleted=0,
        products_by_state={"available": 4},
        new_in_window={"operators": 0, "licences": 1, "datasets": 1, "versions": 2, "products": 4},
        jobs_by_state={"done": 40, "failed": 2, "refused": 3},
        jobs_active_now=1,
        cpu_seconds=812.4,
        releases_by_state={"approved": 4, "rejected": 1},
        stored={
            "vault_raw": {"files": 3, "bytes": 1048576},
            "copies": {"files": 3, "bytes": 524288},
            "fingerprints": {"files": 6, "bytes": 65536},
            "outputs": {"files": 80, "bytes": 2097152},
            "products": {"files": 8, "bytes": 131072},
            "other": {"files": 12, "bytes": 4194304},
            "total": {"files": 112, "bytes": 8060928},
        },
    )


__all__ = ["AllocationNoteOut", "AllocationOut", "LicenceQuotasOut", "QuotaLineOut", "QuotasOut", "UsageReportOut"]
