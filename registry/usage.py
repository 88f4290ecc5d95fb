"""使用记录: what was done with each licensed dataset, readable by its provider and by regulators.

黑龙江省政务数据管理暂行办法 第二十八条 and 双鸭山市公共数据管理暂行办法 第二十条: usage is recorded
and the records kept at least three years. Rows here are never deleted by Keyong.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from registry.models import UsageRow, utcnow


def record_usage(
    session: Session,
    *,
    resource_id: int,
    event: str,
    licence_id: int | None = None,
    operator_id: int | None = None,
    scenario: str = "",
    subject: str = "",
    detail: dict[str, Any] | None = None,
) -> UsageRow:
    """Add one usage record inside the caller's change (and so beside its ledger entry)."""
    row = UsageRow(
        resource_id=resource_id,
        licence_id=licence_id,
        operator_id=operator_id,
        event=event,
        scenario=scenario,
        subject=subject,
        detail=detail or {},
        at=utcnow(),
    )
    session.add(row)
    return row


class UsageRecords:
    """Placeholder for the query side of usage records (being built, issue 4)."""

    def __init__(self, *args: Any) -> None:
        self.args = args
