"""Which request has how many working days, per instance profile, each rule citing its article (issue 24).

Why data and not code: the three regions give different clocks for the same kind of request (a 校核
request is 5 working days in Heilongjiang and Shuangyashan, 10 in Jiyuan), and an instance serves one
region, chosen by its setting ``request_profile`` (``KEYONG_REQUEST_PROFILE``). The issue's summary put
every Heilongjiang clock under 第三十四条; the text in ``regulations/`` gives each its own article, and
the rules below cite the article whose words they carry.

Request kinds:

* ``data_application`` — an application to use 有条件共享 data (decided: granted or refused with reasons);
* ``data_demand`` — a 数据需求 for data not yet in the catalog (accepted, or 驳回 with reasons);
* ``correction`` — a 校核 request or notice (verified and corrected, the result reported back: answered;
  or refused with reasons where the text allows it);
* ``open_data_application`` — an application for 有条件开放 data (granted or refused with reasons);
* ``catalog_update`` — the obligation to update the catalog after a change of law or duty, or to amend
  it after the authority's comments (answered once done).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import RegistryError

KINDS = ("data_application", "data_demand", "correction", "open_data_application", "catalog_update")
PROFILES = ("heilongjiang", "shuangyashan", "jiyuan")
#: The outcomes each kind may end in (besides withdrawal by its requester).
OUTCOMES: dict[str, tuple[str, ...]] = {
    "data_application": ("granted", "refused"),
    "data_demand": ("granted", "refused"),
    "correction": ("answered", "refused"),
    "open_data_application": ("granted", "refused"),
    "catalog_update": ("answered",),
}


@dataclass(frozen=True, slots=True)
class Rule:
    """A time limit: ``working_days`` for ``kind`` (and its ``variant``), from ``article`` of ``source``."""

    kind: str
    variant: str
    working_days: int
    source: str
    article: str
    text: str

    @property
    def basis(self) -> str:
        """The legal basis as recorded on a request: the regulation and its article."""
        return f"{self.source} {self.article}"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "variant": self.variant,
            "working_days": self.working_days,
            "source": self.source,
            "article": self.article,
            "basis": self.basis,
            "text": self.text,
        }


_HLJ = "黑龙江省政务数据管理暂行办法 (2025)"
_SYS = "双鸭山市公共数据管理暂行办法 (2026)"
_JY = "济源示范区政务数据共享管理暂行办法 (征求意见稿, 2022)"

RULES: dict[str, tuple[Rule, ...]] = {
    "heilongjiang": (
        Rule(
            "data_application",
            "",
            1,
            _HLJ,
            "第二十二条",
            "有条件共享的政务数据,由数据提供部门自收到数据使用申请的1个工作日内完成审核,不同意共享的,应说明具体原因。",
        ),
        Rule(
            "data_demand",
            "",
            3,
            _HLJ,
            "第二十九条",
            "数据提供部门应在收到数据需求后3个工作日内完成审核,对于不符合条件的数据需求驳回时应说明具体原因",
        ),
        Rule(
            "correction",
            "",
            5,
            _HLJ,
            "第二十四条",
            "数据提供部门应自收到政务数据校核申请或者通知之日起5个工作日内予以核实、更正,并反馈校核处理结果。",
        ),
        Rule(
            "open_data_application",
            "",
            5,
            _HLJ,
            "第三十四条",
            "申请有条件开放的政务数据,从发出申请之日起5个工作日内,数据提供部门应完成审核,审核未通过的,需说明理由。",
        ),
        Rule(
            "catalog_update",
            "",
            3,
            _HLJ,
            "第十五条",
            "因法律法规调整或者职责变化等原因致使目录发生变化的,政府部门应自变化之日起3个工作日内完成更新。",
        ),
        Rule(
            "catalog_update",
            "comments",
            5,
            _HLJ,
            "第十二条",
            "政务数据主管部门有修改意见的,政府部门应当在5个工作日内完成修改。",
        ),
    ),
    "shuangyashan": (
        Rule(
            "data_application",
            "",
            1,
            _SYS,
            "第二十七条",
            "有条件共享类的数据,由数据提供部门自收到数据使用申请的1个工作日完成审核,不同意共享的,应当说明具体原因。",
        ),
        Rule(
            "data_demand",
            "",
            3,
            _SYS,
            "第三十二条",
            "数据提供部门应当在收到数据需求后3个工作日内完成审核,对于不符合条件的数据需求驳回时应当说明具体原因",
        ),
        Rule(
            "correction",
            "",
            5,
            _SYS,
            "第二十八条",
            "数据提供部门应当自收到公共数据校核申请或者校核通知之日起5个工作日内完成核实、更正,并反馈校核处理结果。",
        ),
        Rule(
            "open_data_application",
            "",
            5,
            _SYS,
            "第三十九条",
            "申请有条件开放类公共数据,数据提供部门应当自收到申请之日起5个工作日内予以答复,不可开放的应当向申请人说明理由并提供依据",
        ),
        Rule(
            "catalog_update",
            "",
            10,
            _SYS,
            "第十三条",
            "法律、行政法规依据或法定职能发生变化的,公共管理和公共服务部门应当自变化发生之日起10个工作日内对本部门、本行业公共数据资源目录完成更新",
        ),
    ),
    "jiyuan": (
        Rule(
            "correction",
            "",
            10,
            _JY,
            "第四十条",
            "政务数据生产部门应当在收到申请之日起10个工作日内予以答复,同意更正的,应当提请示范区数据主管部门变更政务数据开放目录;不同意更正的,应当说明理由,并提供依据。",
        ),
        Rule(
            "correction",
            "problem_data",
            5,
            _JY,
            "第二十四条",
            "数据生产部门应于5个工作日内核实问题并作出是否更正的决定,并通过示范区数据中台告知示范区数据主管部门。",
        ),
        Rule(
            "open_data_application",
            "",
            10,
            _JY,
            "第四十一条",
            "申请获取有条件开放政务数据的,政务数据生产部门应当在收到申请之日起在10个工作日内予以答复,同意的应当予以开放;不同意的应当说明理由,并提供依据。",
        ),
        Rule(
            "catalog_update",
            "",
            5,
            _JY,
            "第十九条",
            "应当于法律法规做出修改或者行政管理职能发生变更之日起5个工作日内,向本级数据主管部门申请更新政务数据目录。",
        ),
    ),
}


def check_profile(profile: str) -> str:
    if profile not in RULES:
        raise RegistryError(f"unknown request profile {profile!r}: one of {', '.join(PROFILES)}")
    return profile


def rules_of(profile: str) -> tuple[Rule, ...]:
    """Every rule of ``profile`` (an unknown profile is refused, never an empty rule set)."""
    return RULES[check_profile(profile)]


def rule_for(profile: str, kind: str, variant: str = "") -> Rule:
    """The rule giving ``kind``'s (and ``variant``'s) time limit in ``profile``; refused when none does.

    Fail closed: a request whose clock the region's text does not set (Jiyuan's draft sets none for a
    data use application) is refused, rather than given some other region's number.
    """
    if kind not in KINDS:
        raise RegistryError(f"unknown request kind {kind!r}: one of {', '.join(KINDS)}")
    for rule in rules_of(profile):
        if rule.kind == kind and rule.variant == (variant or ""):
            return rule
    variants = [r.variant for r in rules_of(profile) if r.kind == kind]
    if variants:
        named = ", ".join(repr(v) if v else "(none)" for v in variants)
        raise RegistryError(f"no {kind} rule of variant {variant!r} in profile {profile}: variants {named}")
    raise RegistryError(
        f"the {profile} profile's regulation sets no time limit for a {kind} request, so this instance does not "
        "take one (no other region's clock is borrowed)"
    )


__all__ = ["KINDS", "OUTCOMES", "PROFILES", "RULES", "Rule", "check_profile", "rule_for", "rules_of"]
