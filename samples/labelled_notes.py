"""The free-text notes of the labelled set: clause templates per entity type and hard-negative phrases.

Why: a note mixes 0-3 entities with context words (or none: a bare name, a number in passing) and
with phrases that must NOT be flagged (全体同志, 于本月底, order numbers); the true spans are recorded
as the sentence is assembled.
"""

from __future__ import annotations

from collections.abc import Callable

from samples.labelled_values import ValueDraw

__all__ = ["entity_value", "sentence"]


# Clause templates per entity type: "{}" is where the value goes. Some clauses carry no context word
# at all (a bare name, a number in passing), as real notes do.
_CLAUSES: dict[str, tuple[str, ...]] = {
    "PERSON": (
        "联系人{}", "联系人：{}", "姓名：{}", "申请人{}", "法定代表人为{}", "户主{}", "经办人{}", "{}先生来电反映",
        "{}女士称", "患者{}", "投诉人{}称", "收件人：{}", "车主{}", "其子{}在外地务工", "家属{}代为办理",
        "{}同志", "紧急联系人{}", "{}于近日到窗口办理业务", "经核实{}已搬离原址", "与{}取得联系",
        "由{}负责跟进", "据{}介绍",
    ),
    "CN_RESIDENT_ID": ("身份证号{}", "公民身份号码：{}", "身份证号码为{}", "证件号码{}", "（身份证{}）", "持{}号身份证",
                       "身份证：{}", "{}"),
    "CN_USCC": ("统一社会信用代码{}", "信用代码：{}", "统一社会信用代码为{}的企业", "（统一社会信用代码：{}）",
                "代码{}"),
    "CN_MOBILE": ("电话{}", "手机：{}", "联系电话{}", "手机号码为{}", "请拨打{}", "{}已停机", "号码{}", "联系方式{}"),
    "CN_LANDLINE": ("办公电话{}", "座机{}", "固话：{}", "请拨打{}咨询", "值班电话{}", "联系电话{}"),
    "CN_BANK_CARD": ("尾号不详的银行卡{}", "{}", "转入{}", "工资卡{}"),
    "CN_PASSPORT": ("护照号码{}", "持护照{}", "护照：{}", "证件号{}", "护照号{}入境"),
    "CN_TRAVEL_PERMIT": ("港澳通行证{}", "往来港澳通行证号码{}", "通行证号{}", "往来台湾通行证{}", "持{}出境"),
    "CN_LICENSE_PLATE": ("车牌号{}", "车牌{}的车辆", "{}号车辆", "驾驶{}小型轿车", "{}在路口违停"),
    "EMAIL_ADDRESS": ("邮箱{}", "电子邮件：{}", "请发送至{}", "{}", "联系邮箱{}"),
    "IP_ADDRESS": ("IP地址{}", "登录IP：{}", "来自{}的访问", "服务器{}", "源地址{}"),
    "CN_ADDRESS": ("家住{}", "住址：{}", "现居住于{}", "地址为{}", "位于{}", "寄往{}", "在{}发生", "{}"),
}  # fmt: skip
# Clauses whose context word lets a 16-19 digit card of any length be recognised.
_CARD_CONTEXT_CLAUSES = ("银行卡号{}", "卡号：{}", "转入账号{}", "借记卡号{}")
# The 台湾居民来往大陆通行证 number is 8 digits: recognisable only after its name.
_TAIWAN_CLAUSES = ("台胞证{}", "台湾居民来往大陆通行证号码{}")

_NEGATIVE_CLAUSES: tuple[tuple[str, str], ...] = (
    ("身份证号{}（校验位有误）", "bad_check_id"), ("身份证号{}", "bad_check_id"), ("证件号码{}", "impossible_birth_id"),
    ("身份证号码{}无效", "impossible_birth_id"), ("统一社会信用代码{}（待核）", "bad_check_uscc"),
    ("卡号{}无效", "bad_luhn_card"), ("银行卡{}", "bad_luhn_card"), ("订单号{}", "order_number"),
    ("运单号{}已签收", "order_number"), ("流水号{}", "order_number"), ("时间戳{}", "timestamp"),
    ("于{}受理", "timestamp"), ("金额{}元", "amount"), ("缴费{}元", "amount"), ("邮编{}", "zip_code"),
    ("发票号码{}", "invoice"), ("{}前办结", "date"), ("日期：{}", "date"),
)  # fmt: skip
_NEGATIVE_PHRASES: tuple[str, ...] = (
    "联系人信息已更新", "申请人数较去年有所增加", "负责人员已到位", "全体同志参加会议", "于本月底前完成整改",
    "高新区管委会已受理", "尖山区人民政府已答复", "方案已报批", "各位女士先生请注意", "请于工作日办理",
    "金额已到账", "马上处理", "周末不办公", "明天上午复查", "安全检查合格", "户主要求补办", "于当日办结",
    "关于调整参保政策的通知", "常年在外务工", "宝清县城区供暖正常", "双鸭山市2024年统计公报",
)  # fmt: skip
_PREFIXES = ("", "", "", "经核实，", "据反映，", "备注：", "情况说明：", "来电记录：", "回访：", "经查，")
_JOINERS = ("，", "，", "；", "。", " ")


def sentence(draw: ValueDraw, types: list[str], negatives: int) -> tuple[str, list[tuple[int, int, str]]]:
    parts: list[tuple[str, str | None]] = []  # (text, entity type or None); clause text has "{}" once
    for entity in types:
        if entity == "CN_BANK_CARD" and draw.p(0.5):
            parts.append((draw.pick(_CARD_CONTEXT_CLAUSES), "CN_BANK_CARD*"))
        elif entity == "CN_TRAVEL_PERMIT" and draw.p(0.12):
            parts.append((draw.pick(_TAIWAN_CLAUSES), "CN_TRAVEL_PERMIT*"))
        else:
            parts.append((draw.pick(_CLAUSES[entity]), entity))
    for _ in range(negatives):
        if draw.p(0.7):
            template, maker = _NEGATIVE_CLAUSES[int(draw.rng.integers(0, len(_NEGATIVE_CLAUSES)))]
            parts.append((template.format(getattr(draw, maker)()), None))
        else:
            parts.append((draw.pick(_NEGATIVE_PHRASES), None))
    order = draw.rng.permutation(len(parts))
    text = draw.pick(_PREFIXES)
    spans: list[tuple[int, int, str]] = []
    for i, k in enumerate(order):
        clause, kind = parts[int(k)]
        if i:
            text += draw.pick(_JOINERS)
        if kind is None:
            text += clause
            continue
        value = entity_value(draw, kind)
        before, after = clause.split("{}")
        start = len(text) + len(before)
        text += before + value + after
        spans.append((start, start + len(value), kind.rstrip("*")))
    return text + draw.pick(("。", "。", "", "！")), spans


def entity_value(draw: ValueDraw, entity: str) -> str:
    makers: dict[str, Callable[[], str]] = {
        "CN_RESIDENT_ID": draw.resident_id,
        "CN_USCC": draw.uscc,
        "CN_MOBILE": draw.mobile,
        "CN_LANDLINE": draw.landline,
        "CN_BANK_CARD": draw.bank_card,
        "CN_BANK_CARD*": lambda: draw.bank_card(any_length=True),
        "CN_PASSPORT": draw.passport,
        "CN_TRAVEL_PERMIT": draw.travel_permit,
        "CN_TRAVEL_PERMIT*": lambda: draw.digits(8),
        "CN_LICENSE_PLATE": draw.plate,
        "EMAIL_ADDRESS": draw.email,
        "IP_ADDRESS": draw.ip,
        "PERSON": draw.person,
        "CN_ADDRESS": draw.address,
    }
    return makers[entity]()
