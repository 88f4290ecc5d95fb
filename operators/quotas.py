"""Quotas as submission checks them and as an operator sees them before it starts (SATRE 2.3.03, 2.3.01).

The registry keeps the agency's allocations (``registry.quotas``); the queue counts what jobs used
(``sandbox.job_usage``). This module puts the two together, once, for both readers:

* **Submission** (:meth:`QuotaBook.exceeded`, in the submitter's transaction): the operator's limits
  (its allocation, else the instance default), then, when the job's licence has an allocation, that
  licence's, counted from the licence's own jobs. The refusal names the quota, the use and the limit.
* **The operator's own view** (:meth:`QuotaBook.overview`): every quota with its limit, what is used
  in the rolling 24 hours, what remains, where the limit comes from; per licence where allocated; and
  the privacy budgets (ε, δ) of its licences. An operator reads only its own: asking for another's is
  answered as if it did not exist (no oracle of names).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core import Actor, Change, NotFoundError, require_role
from registry import AllocationView, Quotas, Registry, limits_of
from sandbox import JobQueue

QUOTA_WINDOW = timedelta(hours=24)

#: What each quota counts, in the words of the views and the refusals.
MEANING = {
    "concurrent": "jobs queued or running at once",
    "per_day": "jobs admitted in the rolling 24 hours",
    "cpu_seconds_per_day": "CPU seconds of jobs ended in the rolling 24 hours",
}


@dataclass(frozen=True, slots=True)
class _Use:
    concurrent: int
    per_day: int
    cpu_seconds_per_day: float


def _refusal(whose: str, use: _Use, limits: Quotas) -> str | None:
    """Why ``whose`` may not queue one more job under ``limits``, or ``None`` when it may."""
    if use.concurrent >= limits.concurrent:
        return (
            f"quota concurrent: {whose} already has {use.concurrent} jobs queued or running "
            f"(limit {limits.concurrent}); wait for one to end"
        )
    if use.per_day >= limits.per_day:
        return f"quota per_day: {whose} submitted {use.per_day} jobs in the last 24 hours (limit {limits.per_day})"
    if use.cpu_seconds_per_day >= limits.cpu_seconds_per_day:
        return (
            f"quota cpu_seconds_per_day: {whose} used {use.cpu_seconds_per_day:.0f} CPU seconds in the last 24 hours "
            f"(limit {limits.cpu_seconds_per_day:.0f})"
        )
    return None


def _lines(use: _Use, limits: Quotas, source: str, ceiling: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """One line per quota: limit, used, remaining (never more than ``ceiling``'s remaining), source."""
    out = []
    for name, meaning in MEANING.items():
        limit, used = getattr(limits, name), getattr(use, name)
        remaining = max(0.0, limit - used)
        if ceiling is not None:
            remaining = min(remaining, ceiling[name])
        if name != "cpu_seconds_per_day":
            remaining = int(remaining)
        out.append(
            {"quota": name, "means": meaning, "limit": limit, "used": used, "remaining": remaining, "source": source}
        )
    return out


class QuotaBook:
    """The operator's quotas against its use; ``defaults`` are the instance settings' quotas."""

    def __init__(self, registry: Registry, queue: JobQueue, defaults: Quotas) -> None:
        self.registry = registry
        self.queue = queue
        self.defaults = defaults

    def _use(self, session: Any, operator: str, since: datetime, licence_id: int | None = None) -> _Use:
        usage = self.queue.usage(session, operator, since, licence_id)
        return _Use(usage.active, usage.submitted, usage.cpu_seconds)

    def exceeded(self, change: Change, operator: str, licence_id: int | None) -> str | None:
        """Why one more job of ``operator`` under ``licence_id`` is over quota, or ``None`` (in ``change``)."""
        since = self.queue.clock() - QUOTA_WINDOW
        session = change.session
        own, licence = limits_of(session, operator, licence_id, self.defaults)
        refusal = _refusal(f"operator {operator!r}", self._use(session, operator, since), own)
        if refusal is None and licence is not None and licence_id is not None:
            use = self._use(session, operator, since, licence_id)
            refusal = _refusal(f"licence {licence_id} of operator {operator!r}", use, licence)
        return refusal

    def allocate(self, operator: str, *, by: Actor, reason: str, licence: int | None = None, **values: Any) -> Any:
        """The agency's allocation (``registry.QuotaAllocations.allocate``) over this instance's defaults."""
        return self.registry.quotas.allocate(
            operator, defaults=self.defaults, licence=licence, reason=reason, by=by, **values
        )

    def overview(self, operator: str, *, viewer: Actor) -> dict[str, Any]:
        """``operator``'s quotas, use and remainder now, per licence where allocated, and its DP budgets.

        An operator reads its own only; another's is "no operator" (:class:`NotFoundError`), as the
        registry answers an operator asking about another's allocations.
        """
        if viewer.role == "operator" and not viewer.is_host and viewer.name != operator:
            raise NotFoundError(f"no operator named {operator!r}")
        require_role(viewer, "operator", "agency", "regulator")
        allocations = self.registry.quotas.list(operator, viewer=viewer)  # unknown operator: NotFoundError
        states = dict(self.registry.quotas.licences_of(operator))
        now = self.queue.clock()
        since = now - QUOTA_WINDOW
        with self.registry.recorder.read() as session:
            own, _ = limits_of(session, operator, None, self.defaults)
            own_use = self._use(session, operator, since)
            per_licence = [(a, self._use(session, operator, since, a.licence)) for a in allocations if a.licence]
        own_allocation = next((a for a in allocations if a.licence is None), None)
        lines = _lines(own_use, own, "allocated" if own_allocation else "default")
        left = {line["quota"]: float(line["remaining"]) for line in lines}
        budgets = self.registry.budgets.show(operator, viewer=viewer)
        return {
            "operator": operator,
            "at": now.isoformat(),
            "window_hours": int(QUOTA_WINDOW.total_seconds() // 3600),
            "quotas": lines,
            "allocation": _allocation_json(own_allocation),
            "licences": [
                {
                    "licence": a.licence,
                    "state": states.get(a.licence or 0, "unknown"),
                    "quotas": _lines(use, Quotas(a.concurrent, a.per_day, a.cpu_seconds_per_day), "allocated", left),
                    "allocation": _allocation_json(a),
                }
                for a, use in per_licence
            ],
            "budgets": [b.as_json() for b in budgets],
        }


def _allocation_json(view: AllocationView | None) -> dict[str, Any] | None:
    """Who allocated, when and why; ``None`` for the instance default."""
    if view is None:
        return None
    data = view.as_json()
    return {k: data[k] for k in ("reason", "allocated_by", "allocated_at")}


__all__ = ["MEANING", "QUOTA_WINDOW", "QuotaBook"]
