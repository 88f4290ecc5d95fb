"""Flash messages by id (issue 17): a fixed catalogue of bilingual texts, never text from the URL.

Why: a redirect used to carry its message as ``?msg=<text>`` and every page printed it as an official
notice, so anyone could mail a link to the console that showed "your account is suspended, call …"
in the platform's own banner. Now the URL carries only a message id from :data:`MESSAGES`
(``?msg=job_queued``); an unknown id shows nothing. The few messages that name something (a job
number, the platform's reason for a refusal) carry their values as ``msg_<field>`` parameters
together with ``msg_sig``, an HMAC under the instance's key bound to the session's own token: only
this server can have produced it, for this session, so a link forged — or copied from another
user's session — shows nothing. The login form's ``?reason=`` is an id of :data:`LOGIN_REASONS` the
same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import string
from collections.abc import Mapping
from urllib.parse import urlencode

#: Every message the console may show after a redirect, by id: Chinese first, then English.
MESSAGES: dict[str, str] = {
    # operator
    "job_queued": "作业 {job} 已提交，排队中 · job {job} queued",
    "job_refused": "提交被拒绝 · refused: {reason}",
    "release_requested": "发布申请 {release} 已提交 · release {release} requested ({state})",
    "release_refused": "发布申请被拒绝 · release refused: {reason}",
    "round_base_not_integer": "取整基数须为整数 · round base {value!r} is not an integer",
    "round_base_out_of_range": "取整基数 2–1000 · round base must be 2 to 1000",
    "mitigation_refused": "处理被拒绝 · mitigation refused: {reason}",
    "mitigation_queued": "处理作业 {job} 已排队 · mitigation job {job} queued",
    "not_delivered": "不能下载 · not delivered: {reason}",
    "no_such_artifact": "产品 {product} 没有文件 {file} · no such artifact",
    # agency
    "release_unavailable": "无法打开 · cannot open release {release}: {reason}",
    "vote_refused": "投票未记录 · vote refused: {reason}",
    "vote_recorded_sealed": (
        "您的投票已记录；其他评审的投票在本轮决定前保密（还需 {needed} 票）· "
        "your vote recorded; others sealed until the round is decided ({needed} more needed)"
    ),
    "vote_recorded_decided": "您的投票已记录，本轮已决定 · your vote recorded; the release is now {state}",
    "budget_incomplete": "请填写授权、数据集与新的 ε 总额 · give licence, dataset and ε",
    "budget_refused": "未调整 · not raised: {reason}",
    "budget_raised": "已调整预算 · budget raised: licence {licence} {dataset} ε = {epsilon}",
    "finding_refused": "未处理 · not resolved: {reason}",
    "finding_resolved": "监测发现 {finding} 已处理 · finding {finding} resolved",
    "objection_refused": "未处理 · not resolved: {reason}",
    "objection_resolved": "异议 {objection} 已处理 · objection {objection} resolved",
    # agency: people and keys
    "person_not_added": "未添加 · not added: {reason}",
    "login_not_created": "未创建登录 · no login created: {reason}",
    "key_not_issued": "未签发 · no key issued: {reason}",
    "key_not_rotated": "未轮换 · not rotated: {reason}",
    "key_not_revoked": "未吊销 · not revoked: {reason}",
    "key_revoked": "密钥 {key} 已吊销 · key {key} of {principal} revoked",
    "unknown_action": "未知操作 · unknown action",
    "standing_recorded": "已记录 · {what} recorded for {name}",
    "standing_not_recorded": "未记录 · not recorded: {reason}",
    "terms_published": "使用条款 {version} 已发布 · terms of use {version} published; earlier acceptances lapse",
    "person_not_changed": "未更改 · not changed: {reason}",
    "person_suspended": "{name} 已暂停 · suspended",
    "person_restored": "{name} 已恢复 · reactivated",
    "person_totp_reset": "{name} 的第二因素已重置，下次登录重新绑定 · second factor reset: next login enrols again",
    "person_recovery_confirmed": "{name} 的新凭据已由第二人确认 · recovery of {name} confirmed by a second person",
    # custodian
    "bounds_refused": "未能声明 · refused: {reason}",
    "bounds_declared": "{column}: {what} 已声明 · declared",
    "bounds_cleared": "{column}: 已清除 · cleared",
    "signoff_refused": "未签核 · sign-off refused: {reason}",
    "signoff_recorded": "签核已记录 · sign-off recorded; the release is {state}",
    "delegation_refused": "未执行 · refused: {reason}",
    "delegation_recorded": "{dataset}: 已委托实施机构审核 · sign-off delegated to the agency",
    "delegation_withdrawn": "{dataset}: 委托已撤回，发布须逐项签核 · delegation withdrawn; releases need sign-off",
    "access_refused": "未执行 · refused: {reason}",
    "request_done": "申请 {request}: {state} · request {request} {state}",
    "request_refused": "未执行 · refused: {reason}",
    "request_submitted": "申请 {request} 已提交，法定办结期限 {due} · request {request} submitted, due {due}",
    "access_decided": "授权 {licence} · {dataset}: 决定已记录 · decision recorded",
    "access_delegated": "{dataset}: 授权同意已委托实施机构 · agreement to licences delegated to the agency",
    "access_withdrawn": "{dataset}: 委托已撤回，授权须逐项同意 · delegation withdrawn; licences need your agreement",
    "retention_set": "留存期已设置 · retention set: {days}",
    "retention_refused": "未能设置留存期 · refused: {reason}",
    # regulator
    "entry_not_found": "无此条目 · {reason}",
    # security events, freeze and incidents (issue 22)
    "ack_refused": "未确认 · not acknowledged: {reason}",
    "acknowledged": "已确认 · {what} {item} acknowledged",
    "platform_frozen": "平台已冻结：作业受理、启动、数据出域与产品交付均已停止 · platform frozen",
    "platform_unfrozen": "平台已解冻 · platform unfrozen",
    "incident_refused": "未执行 · refused: {reason}",
    "incident_recorded": "安全事件 {incident} 已登记 · incident {incident} recorded",
    "incident_closed": "安全事件 {incident} 已关闭 · incident {incident} closed",
    # issue 18 — review18: the review thread, the queue's assignments, no default vote, resubmission
    "comment_posted": "评论已发布 · comment posted",
    "comment_refused": "评论未发布 · comment refused: {reason}",
    "vote_incomplete": "投票未记录：请为每个文件选择决定（缺：{files}） · choose a decision for every file",
    "release_assigned": "发布申请 #{release} 已分配给您 · release {release} assigned to you",
    "release_unassigned": "发布申请 #{release} 已取消分配 · release {release} unassigned",
    "assign_refused": "未分配 · not assigned: {reason}",
    "release_resubmitted": "已重新提交，第 {round} 轮审核 · resubmitted: round {round} of the review",
    "resubmit_refused": "未重新提交 · resubmission refused: {reason}",
    # issue 18 — operator18
    "job_withdrawn": "作业 {job} 已撤回 · job {job} withdrawn (cancelled before it ran)",
    "job_withdraw_requested": "已要求停止作业 {job}，工作进程将终止它 · job {job}: its worker is asked to stop it",
    "job_not_withdrawn": "未撤回 · not withdrawn: {reason}",
    "output_refused": "不能读取输出 · output not readable: {reason}",
    # issue 18 — admin18
    "operator_incomplete": "请填写名称与统一社会信用代码 · give the operator's name and USCC",
    "operator_refused": "未执行 · refused: {reason}",
    "operator_added": "运营机构 {operator} 已登记 · operator {operator} added",
    "operator_suspended": "运营机构 {operator} 已暂停 · operator {operator} suspended",
    "operator_restored": "运营机构 {operator} 已恢复 · operator {operator} restored",
    "licence_form_invalid": "授权表单有误 · the grant form is incomplete: {reason}",
    "licence_refused": "未执行 · refused: {reason}",
    "licence_granted": "授权 {licence} 已授予（{state}）· licence {licence} granted ({state})",
    "licence_moved": "授权 {licence} 现为 {state} · licence {licence} is now {state}",
    "job_unavailable": "无法打开作业 {job} · cannot open job {job}: {reason}",
    "trace_unavailable": "无法追溯 · cannot trace: {reason}",
    # issue 18 — custodian18
    "dataset_ingested": (
        "{name} 已接收：原始版本 v{version}，{rows} 行；请核对画像 · "
        "ingested as raw v{version} ({rows} rows); review the profile"
    ),
    "classification_saved": "分级已保存：数据集 {level}；更正的数据项：{columns} · grading saved",
    "classification_refused": "分级未保存 · grading refused: {reason}",
    "desensitized": "脱敏完成：脱敏版本 v{version} · desensitized copy v{version} made; its report follows",
    "desensitize_refused": "未脱敏 · desensitization refused: {reason}",
    "catalog_saved": "目录信息已发布：{fields} · catalog fields published",
    "catalog_change_requested": (
        "收紧的更改（{fields}）已提交实施机构决定，申请 {request} · "
        "the restriction waits for the agency (request {request})"
    ),
    "catalog_unchanged": "没有更改 · nothing changed",
    "catalog_refused": "目录信息未保存 · not saved: {reason}",
    "objection_filed": "异议 {objection} 已提出 · objection {objection} filed",
    "objection_not_filed": "异议未提出 · not filed: {reason}",
    "revocation_requested": "撤销申请 {request} 已提交实施机构 · revocation request {request} waits for the agency",
    # issue 18 — fix18: a vote bound to the round and files the page showed (red team 18, F5)
    "vote_stale": (
        "投票未记录：本申请已进入新一轮或文件已更改，请重新加载并审阅后再投票。 · "
        "vote not recorded: the release moved to a new round or its files changed; reload and review them first"
    ),
}

#: Why the login form is shown (``/console/login?reason=<id>``); an unknown id shows nothing.
LOGIN_REASONS: dict[str, str] = {
    "login_required": "请先登录 · please log in",
    "session_ended": "会话已失效，请重新登录 · your session ended; please log in again",
}

PARAM = "msg"
PREFIX = "msg_"
SIG = "msg_sig"
#: A value is cut to this many characters (a refusal's reason can quote a long input back).
MAX_VALUE = 300


def fields_of(msg_id: str) -> tuple[str, ...]:
    """The names a message's text needs, in a fixed order (empty for a fixed text)."""
    names = {name.split("!")[0] for _, name, _, _ in string.Formatter().parse(MESSAGES[msg_id]) if name}
    return tuple(sorted(names))


def text_of(msg_id: str, values: Mapping[str, str]) -> str:
    """The catalogue text of ``msg_id`` filled with ``values``; '' for an unknown id or a missing value."""
    if msg_id not in MESSAGES:
        return ""
    names = fields_of(msg_id)
    if any(name not in values for name in names):
        return ""
    return MESSAGES[msg_id].format(**{name: values[name] for name in names})


def _clip(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


class Flashes:
    """Builds and reads the ``msg`` query of a redirect, signing its values for one session."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, token: str, msg_id: str, values: Mapping[str, str]) -> str:
        payload = json.dumps([token, msg_id, [values[name] for name in fields_of(msg_id)]], ensure_ascii=False)
        return hmac.new(self._key, f"console-flash:{payload}".encode(), hashlib.sha256).hexdigest()[:32]

    def query(self, token: str | None, msg_id: str, **values: object) -> str:
        """The query string (without ``?``) that shows ``msg_id`` with ``values`` on the next page.

        Raises ``ValueError`` for an id not in the catalogue or values that do not match its fields:
        a programming error, caught by the tests, never a message shown wrong.
        """
        if msg_id not in MESSAGES:
            raise ValueError(f"unknown console message id {msg_id!r}")
        names = fields_of(msg_id)
        if set(values) != set(names):
            raise ValueError(f"message {msg_id!r} takes {names}, given {tuple(sorted(values))}")
        params = {PARAM: msg_id}
        if names:
            if not token:
                raise ValueError(f"message {msg_id!r} names values and needs a session to sign them")
            clipped = {name: _clip(values[name]) for name in names}
            params.update({PREFIX + name: clipped[name] for name in names})
            params[SIG] = self._sign(token, msg_id, clipped)
        return urlencode(params)

    def read(self, query: Mapping[str, str], token: str | None) -> str:
        """The text a page shows for its query: '' unless the id is known and its values are signed
        for this session (a fixed text needs no signature)."""
        msg_id = query.get(PARAM, "")
        if msg_id not in MESSAGES:
            return ""
        names = fields_of(msg_id)
        if not names:
            return text_of(msg_id, {})
        if not token:
            return ""
        values = {name: query.get(PREFIX + name, "") for name in names}
        expected = self._sign(token, msg_id, values)
        if not hmac.compare_digest(query.get(SIG, ""), expected):
            return ""
        return text_of(msg_id, values)


__all__ = ["LOGIN_REASONS", "MESSAGES", "Flashes", "fields_of", "text_of"]
