"""Response documents of requests with statutory deadlines and the working-day calendar (issue 24).

Keys are exactly those ``registry.RequestRecord.as_json`` and ``registry.Due.as_json`` write (the CLI's
``keyong request … --json`` and ``keyong calendar due … --json`` share them).
"""

from typing import Any

from pydantic import Field

from app.api.schemas.base import Document, example

_REQUEST = {
    "id": 7,
    "kind": "correction",
    "variant": "",
    "profile": "shuangyashan",
    "requester": "demo-operator",
    "requester_role": "operator",
    "provider": "双鸭山市公安局",
    "subject_kind": "dataset",
    "subject": "population",
    "detail": "户籍地址有误",
    "legal_basis": "双鸭山市公共数据管理暂行办法 (2026) 第二十八条",
    "working_days": 5,
    "state": "refused",
    "received_at": "2025-09-30T02:00:00+00:00",
    "received": "2025-09-30",
    "due": "2025-10-14",
    "due_at": "2025-10-14T15:59:59.999999+00:00",
    "provisional": False,
    "provisional_reason": None,
    "overdue": False,
    "due_soon": False,
    "late": False,
    "decided_by": "demo-custodian",
    "decided_at": "2025-10-13T03:00:00+00:00",
    "reason": "经核实, 地址与户籍登记一致",
    "leads_to": None,
    "finding": None,
}


class RequestOut(Document):
    """A request: its legal basis, its clock (received, due, overdue, due soon, provisional) and its state;
    ``history`` (one request's answer) lists each step with who took it and why."""

    model_config = example(**_REQUEST)

    id: int
    kind: str = Field(description="data_application, data_demand, correction, open_data_application, catalog_update")
    variant: str
    profile: str = Field(description="The instance profile whose rule gives the time limit.")
    requester: str
    requester_role: str
    provider: str = Field(description="The providing department that must act.")
    subject_kind: str = Field(description="dataset or catalog_entry")
    subject: str
    detail: str
    legal_basis: str = Field(description="The regulation and article of the time limit.")
    working_days: int
    state: str = Field(description="submitted, in_review, granted, refused, answered or withdrawn")
    received_at: str
    received: str = Field(description="China's date of receipt (YYYY-MM-DD).")
    due: str = Field(description="The last working day of the time limit (China).")
    due_at: str
    provisional: bool = Field(description="The due date counted days of a year no holiday source knows.")
    provisional_reason: str | None
    overdue: bool
    due_soon: bool
    late: bool = Field(description="Decided after its due day.")
    decided_by: str | None
    decided_at: str | None
    reason: str | None = Field(description="The reasons of a refusal, the answer reported back, or why granted.")
    leads_to: str | None = Field(description="What a grant gives: licence:ID or sharing:DESCRIPTION.")
    finding: int | None = Field(description="The monitoring finding its lateness raised.")
    history: list[dict[str, Any]] | None = None


class DueOut(Document):
    """The due date of N working days after receipt; ``provisional`` (with why) for an unknown year."""

    model_config = example(
        received="2025-09-30", working_days=5, due="2025-10-14", provisional=False, provisional_reason=None
    )

    received: str
    working_days: int
    due: str
    provisional: bool
    provisional_reason: str | None


class RulesOut(Document):
    """The instance profile's time limits, each with the article it comes from."""

    model_config = example(
        profile="shuangyashan",
        rules=[
            {
                "kind": "correction",
                "variant": "",
                "working_days": 5,
                "source": "双鸭山市公共数据管理暂行办法 (2026)",
                "article": "第二十八条",
                "basis": "双鸭山市公共数据管理暂行办法 (2026) 第二十八条",
                "text": "数据提供部门应当自收到公共数据校核申请或者校核通知之日起5个工作日内完成核实、更正",
            }
        ],
    )

    profile: str
    rules: list[dict[str, Any]]


__all__ = ["DueOut", "RequestOut", "RulesOut"]
