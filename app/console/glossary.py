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
    # column actions of a desensitized copy (desensitize.transforms.actions), catalog requests, objection targets
    "keep": "保留",
    "drop": "删除",
    "pseudonymize": "假名化",
    "mask": "遮蔽",
    "mask_name": "姓名遮蔽",
    "generalize_address": "地址泛化",
    "date_year": "日期取年",
    "date_month": "日期取月",
    "date_band": "日期分段",
    "band": "数值分段",
    "round": "取整",
    "randomize": "随机扰动",
    "redact_text": "文本脱敏",
    "restrict": "收紧更改",
    "revoke": "撤销",
    "resource": "资源目录条目",
    "product": "数据产品",
    "licence": "授权",
    # roles (operators.Role) and who acts in the ledger
    "operator": "运营机构",
    "agency": "实施机构",
    "custodian": "数据主管部门",
    "regulator": "监管部门",
    "system": "系统",
    "host": "主机管理员",
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
    # resources, versions, licence usability (registry.ResourceState, VersionKind, Usability)
    "published": "已发布",
    "revoking": "撤回中",
    "raw": "原始",
    "desensitized": "已脱敏",
    "usable": "可用",
    "not_active": "未生效",
    "not_yet_valid": "尚未开始",
    "lapsed": "已过期限",
    # violations (registry.ViolationKind) and the operator's standing
    "no_active_licence": "无生效授权",
    "dataset_out_of_scope": "数据集超出授权范围",
    "scenario_not_licensed": "应用场景未获授权",
    "licence_expired": "授权已到期",
    "operator_suspended": "运营机构已暂停",
    "blocked_export": "出口审查拦截",
    # requests (registry.requests: 依申请公开 and the like) and their clock
    "in_review": "审查中",
    "granted": "已准予",
    "answered": "已答复",
    "overdue": "已逾期",
    "recounted": "期限已重算",
    # incidents and security alerts (registry.incidents, registry.security_events)
    "closed": "已结束",
    "acknowledged": "已确认",
    # security event kinds (registry.SecurityEventKind)
    "login_failed": "登录失败",
    "token_rejected": "令牌被拒",
    "forbidden": "越权访问",
    "scope_refused": "超范围被拒",
    "standing_refused": "资格不符被拒",
    # people records (registry.people) and recovery holds (operators.recovery)
    "identity_check": "身份核验",
    "terms": "条款确认",
    "training": "培训",
    "resident_id_in_person": "现场核验居民身份证",
    "passport_in_person": "现场核验护照或居住证",
    "employer_letter": "单位证明函",
    "online_real_name": "在线实名核验",
    "key_issued": "已签发密钥",
    "key_rotated": "已轮换密钥",
    "totp_reset": "已重置动态码",
    "unconfirmed": "未确认",
    # job kinds (sandbox.JobKind)
    "sql": "SQL 查询",
    "python": "Python 脚本",
    "dp-query": "差分隐私查询",
    "dp-train": "差分隐私训练",
    "mitigation": "风险处理",
    # export-guard finding kinds (sandbox.guard): what a reviewer reads beside each output
    "sdc.min_cell_count": "最小单元格计数",
    "sdc.zero_cell": "零值单元格",
    "sdc.nk_rule": "支配规则（n,k）",
    "sdc.p_percent": "p% 规则",
    "sdc.dominance_undefined": "无法判定支配",
    "sdc.differencing": "差分攻击风险",
    "sdc.extreme_value": "极端值",
    "sdc.free_text": "自由文本",
    "sdc.image": "图像输出",
    "sdc.residual_df": "残差自由度",
    "sdc.row_cap": "行数上限",
}

#: Every action the code writes to the ledger → Chinese (the regulator reads the ledger in Chinese).
#: ``tests/test_console_everywhere.py`` scans the sources: an action written without a label here fails it.
ACTIONS: dict[str, str] = {
    # sessions and principals (operators)
    "auth.token_issued": "登录（签发令牌）",
    "auth.token_renewed": "会话续期",
    "auth.token_revoked": "退出登录（令牌作废）",
    "principal.created": "创建账号",
    "principal.key_issued": "签发 API 密钥",
    "principal.key_revoked": "撤销 API 密钥",
    "principal.key_rotated": "轮换 API 密钥",
    "principal.keys_revoked": "撤销全部 API 密钥",
    "principal.reactivated": "恢复账号",
    "principal.suspended": "暂停账号",
    "principal.recovery_confirmed": "第二人确认恢复",
    "principal.recovery_held": "账号待第二人确认",
    "principal.totp_confirmed": "确认动态码",
    "principal.totp_enrolled": "绑定动态码",
    "principal.totp_locked": "动态码锁定",
    "principal.totp_reset": "重置动态码",
    "person.identity_check_recorded": "记录身份核验",
    "person.terms_recorded": "记录条款确认",
    "person.training_recorded": "记录培训",
    # operators, licences and budgets (registry)
    "operator.added": "登记运营机构",
    "operator.auto_suspended": "自动暂停运营机构",
    "operator.restored": "恢复运营机构",
    "operator.suspended": "暂停运营机构",
    "licence.granted": "授予授权",
    "licence.publicity_started": "授权开始公示",
    "licence.awaiting_consent": "授权待数据主管部门同意",
    "licence.access_agreed": "数据主管部门同意授权",
    "licence.access_refused": "数据主管部门拒绝授权",
    "licence.activated": "授权生效",
    "licence.suspended": "暂停授权",
    "licence.restored": "恢复授权",
    "licence.revoked": "撤销授权",
    "licence.expired": "授权到期",
    "licence.destroyed": "授权数据已销毁",
    "licence.copy_made": "制作授权副本",
    "licence.copy_held": "保留授权副本",
    "licence.copy_deleted": "删除授权副本",
    "budget.charged": "扣减隐私预算",
    "budget.raised": "追加隐私预算",
    "budget.refunded": "退还隐私预算",
    "quota.allocated": "分配资源配额",
    "scope.admitted": "范围检查通过",
    "scope.checked": "范围检查",
    "scope.refused": "超范围被拒",
    "terms.published": "发布条款",
    "policy.proposed": "提出策略变更",
    "policy.approved": "批准策略变更",
    "policy.refused": "拒绝策略变更",
    "finding.raised": "产生监测发现",
    "finding.resolved": "处理监测发现",
    "objection.filed": "提出异议",
    "objection.resolved": "处理异议",
    "request.submitted": "提交申请",
    "request.in_review": "申请进入审查",
    "request.granted": "准予申请",
    "request.refused": "拒绝申请",
    "request.answered": "答复申请",
    "request.withdrawn": "撤回申请",
    "request.recounted": "重算申请期限",
    "request.overdue": "申请逾期",
    # catalog and datasets (custodian)
    "catalog.published": "发布目录",
    "catalog.updated": "更新目录",
    "catalog.classified": "分级分类",
    "catalog.suggested": "建议目录字段",
    "catalog.bounds_set": "设定公开边界",
    "catalog.change_requested": "申请目录变更",
    "catalog.change_approved": "批准目录变更",
    "catalog.change_rejected": "驳回目录变更",
    "catalog.consent_recorded": "记录同意",
    "catalog.revocation_requested": "申请撤回资源",
    "catalog.revoked": "撤回资源",
    "dataset.ingested": "导入数据集",
    "dataset.desensitized": "制作脱敏副本",
    "dataset.version_added": "新增数据版本",
    "dataset.version_deleted": "删除数据版本",
    "dataset.retention_set": "设定保存期限",
    "dataset.egress_delegated": "委托发布签核",
    "dataset.egress_withdrawn": "撤回发布签核委托",
    "dataset.access_delegated": "委托授权同意",
    "dataset.access_withdrawn": "撤回授权同意委托",
    "data.deleted": "删除数据",
    "datakey.created": "创建数据密钥",
    "datakey.destroyed": "销毁数据密钥",
    "copy.destroyed": "销毁副本",
    # jobs, releases, products (sandbox, registry)
    "job.queued": "作业提交",
    "job.held": "作业暂缓",
    "job.started": "作业开始",
    "job.finished": "作业完成",
    "job.failed": "作业失败",
    "job.refused": "作业被拒",
    "job.cancel_requested": "申请取消作业",
    "job.cancelled": "作业已取消",
    "job.requeued": "作业重新排队",
    "job.admitted": "作业准入",
    "release.requested": "申请发布",
    "release.resubmitted": "重新提交发布",
    "release.withdrawn": "撤回发布申请",
    "release.voted": "发布审核投票",
    "release.decided": "发布审核决定",
    "release.signoff_required": "需数据主管部门签核",
    "release.signed_off": "数据主管部门签核",
    "product.registered": "登记数据产品",
    "product.released": "数据产品发布",
    "product.fetched": "获取数据产品",
    "product.suspended": "暂停数据产品",
    "product.withdrawn": "下架数据产品",
    "product.restored": "恢复数据产品",
    "product.deleted": "销毁数据产品",
    # platform, incidents, security, keys, the instance
    "platform.frozen": "平台冻结",
    "platform.unfrozen": "平台解冻",
    "incident.recorded": "登记应急事件",
    "incident.closed": "结束应急事件",
    "security.alert_raised": "产生安全告警",
    "security.alert_acknowledged": "确认安全告警",
    "security.event_acknowledged": "确认安全事件",
    "keys.rotated": "轮换密钥",
    "keys.jwt_rotated": "轮换令牌签名密钥",
    "keys.home_encrypted": "加密实例目录",
    "ledger.key_rotated": "轮换账本签名密钥",
    "ledger.key_activated": "启用账本签名密钥",
    "home.backed_up": "备份实例",
    "home.restored": "恢复实例",
    "instance.initialised": "初始化实例",
    "schema.migrated": "数据库迁移",
    "storage.swept": "清理无引用的存储对象",
    "job.recorded": "记录作业结果",
    "job.judging": "出口审查中",
    "job.judged": "出口审查完成",
    "job.output_read": "查看作业输出",
    "release.commented": "发布审核评论",
    "release.assigned": "认领发布审核",
    "release.unassigned": "放弃认领发布审核",
}
LABELS.update(ACTIONS)


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


__all__ = ["ACTIONS", "BEIJING", "LABELS", "TERMS", "beijing", "chinese", "label"]
