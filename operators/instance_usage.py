"""The instance-wide usage report (issue 22, SATRE 2.2.13: record usage data — users, projects, data stored).

For the agency and regulators (and the host): read-only, counts only. Each package counts what it
owns — principals here (``operators.models``), the registry's operators, licences, datasets, versions,
products and the bytes under the home (``registry.usage_counts``), the queue's jobs, CPU seconds and
releases (``sandbox.job_usage``) — and this module puts them side by side with the window they cover.
No person is named: principals are counted by role and state, organisations by role.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import Actor, PermissionDeniedError, UsageError
from operators.models import PrincipalRow
from registry import Registry, registry_counts, stored_bytes
from sandbox import job_counts

#: Who may read the report: it spans every operator (an operator reads its own quotas instead).
REPORT_ROLES = ("agency", "regulator")


def principal_counts(session: Session) -> dict[str, Any]:
    """Principals by role and state (active or deactivated), and distinct organisations by role."""
    rows = session.execute(
        select(PrincipalRow.role, PrincipalRow.active, func.count()).group_by(PrincipalRow.role, PrincipalRow.active)
    ).all()
    by_role: dict[str, dict[str, int]] = {}
    for role, active, n in rows:
        counts = by_role.setdefault(str(role), {"active": 0, "inactive": 0})
        counts["active" if active else "inactive"] += int(n)
    orgs = session.execute(
        select(PrincipalRow.role, func.count(func.distinct(PrincipalRow.org)))
        .where(PrincipalRow.org.is_not(None))
        .group_by(PrincipalRow.role)
    ).all()
    return {
        "principals_by_role": dict(sorted(by_role.items())),
        "principals_total": sum(c["active"] + c["inactive"] for c in by_role.values()),
        "organisations_by_role": {str(role): int(n) for role, n in sorted(orgs)},
    }


def usage_report(registry: Registry, home: Path, *, since: datetime | None, viewer: Actor) -> dict[str, Any]:
    """The report over the window from ``since`` (``None``: since the instance began) to now."""
    if not (viewer.is_host or viewer.role in REPORT_ROLES):
        raise PermissionDeniedError("the usage report is for the agency and regulators")
    now = registry.config.now()
    if since is not None and since > now:
        raise UsageError(f"since {since.isoformat()} is in the future (now {now.isoformat()})")
    with registry.recorder.read() as session:
        people = principal_counts(session)
        held = registry_counts(session, since)
        work = job_counts(session, since)
    return {
        "window": {"since": since.isoformat() if since else None, "until": now.isoformat()},
        **people,
        **held,
        **work,
        "stored": stored_bytes(home, registry.config.artifacts()),  # the bucket when artifacts live there (issue 19)
    }


__all__ = ["REPORT_ROLES", "principal_counts", "usage_report"]
