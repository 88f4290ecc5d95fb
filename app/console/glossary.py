"""One Chinese glossary for every console label (issue 18), and times in 北京时间.

Why one place: the same word must mean the same thing on every page. 授权 (the agency's licence to
operate, 授权运营) is not 许可 (a permission in general); 出口审查 is the export guard's review, not
the agency's release review (发布审核). A page shows a state, a finding kind or a ledger action through
the ``label`` filter, which gives the Chinese term with the English code beside it (``已批准 approved``),
so a reader of either language finds the same thing, and the code stays searchable in the ledger.

Times: the database stores UTC; people in China read 北京时间 (UTC+8, no daylight saving), labelled so
that no one mistakes it for UTC (issue 18).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

#: China's civil time: UTC+8 all year.
BEIJING = timezone(timedelta(hours=8), "北京时间")

#: Terms used in sentences and headings, so that every page says the same word.
TERMS: dict[str, str] = {
    "licence": "授权",  # 授权运营 (双鸭山 第四十六条); never 许可
    "operator": "运营机构",
    "agency": "实施机构",
    "custodian": "数据主管部门",
    "regulator": "监管部门",
    "export_guard": "出口审查",
    "release_review": "发布审核",
    "product": "数据产品",
    "desensitized_copy": "脱敏副本",
    "vault": "原始数据库",
    "ledger": "账本",
    "publicity": "公示",
    "objection": "异议",
    "finding": "监测发现",
    "scenario": "应用场景",
    "purpose": "用途",
    "budget": "隐私预算",
}

#: Codes (states, decisions, verdicts, finding kinds, ledger actions) → Chinese. Unknown codes are shown
#: as they are: a new state is never hidden, only left untranslated until it is added here.
LABELS: dict[str, str] = {
    # job states (sandbox.JobState) and export-guard verdicts
    "queued": "排队中",
    "running": "运行中",
    "done": "已完成",
    "failed": "失败",
    "refused": "已拒绝",
    "cancelled": "已取消",
    "pass": "通过",
    "review": "需人工审核",
    "block": "拦截",
    # release states and decisions (sandbox.ReleaseState, sandbox.Decision)
    "submitted": "已提交",
    "under_review": "审核中",
    "approved": "已批准",
    "returned": "退回修改",
    "rejected": "已驳回",
    "withdrawn": "已撤回",
    "approve": "批准",
    "changes_requested": "需修改",
    "reject": "驳回",
    "refuse": "拒绝",
    # licence states (registry.LicenceState)
    "draft": "草案",
    "publicity": "公示中",
    "active": "生效",
    "suspended": "已暂停",
    "revoked": "已撤销",
    "expired": "已到期",
    # products, objections, requests, standing
    "available": "可获取",
    "deleted": "已销毁",
    "open": "未处理",
    "resolved": "已处理",
    "pending": "待处理",
    "qualified": "合格",
    "withdraw": "撤回",
    "restore": "恢复",
    "restore_after_correction": "依法处理后恢复",
    # finding kinds (registry.FindingKind)
    "out_of_scope": "超出授权范围",
    "out_of_purpose": "超出授权用途",
    "unused_3_months": "三个月未使用",
    "repeated_blocked_exports": "多次出口拦截",
    "operator_auto_suspended": "运营机构自动暂停",
    "request_overdue": "申请逾期",
    "calendar_override_unreadable": "节假日文件无法读取",
}


def label(code: Any) -> str:
    """``已批准 approved`` for a known code; the code itself otherwise (never hidden)."""
    text = "" if code is None else str(code)
    chinese = LABELS.get(text)
    return f"{chinese} {text}" if chinese else text


def chinese(code: Any) -> str:
    """The Chinese term alone (for sentences); the code itself when it has none."""
    text = "" if code is None else str(code)
    return LABELS.get(text, text)


def beijing(value: Any) -> str:
    """A stored time (UTC; naive means UTC) as ``2026-12-07 11:20:05 北京时间``; '' for none.

    An ISO string is read as a time too; anything else is shown as it is.
    """
    if value is None or value == "":
        return ""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") + " 北京时间"


__all__ = ["BEIJING", "LABELS", "TERMS", "beijing", "chinese", "label"]
