"""What a base copy's report says about linkage, and what a licence says an operator can link (issue 23).

Pure readings, shared by the licence copies (:mod:`registry.linkage`), the grant (a joint group needs a
person key) and the views (``licence show``, ``dataset show``, the API and the console). Nothing here reads
files or writes rows.

* **Pseudonym columns** of a base copy: its report's ``columns[i]`` whose ``action`` is ``pseudonymize``,
  or whose near-unique decision pseudonymized them (``desensitize.keys``). These are what a licence copy
  re-keys: a person key shared by every licence would let any two operators' outputs be joined (个人信息
  保护法 第七十三条(四): 去标识化 means not identifiable *without additional information*; a key common to
  all licences is that information).
* **The person key** of a table: its pseudonymized column of type ``cn_resident_id``, else ``uscc``
  (the types of ``dp.plans.PERSON_KEY_TYPES``; registry does not import ``dp``).
* **Quasi-identifiers**: the base report's ``k_anonymity.quasi_identifiers`` with the ladder type each
  was generalized along (``ladder_type`` when the report states it, else ``type``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

#: Column types whose pseudonym names a person, or for entities a legal person (as ``dp.plans``).
PERSON_KEY_TYPES = ("cn_resident_id", "uscc")
#: ``linkage[].key`` of a dataset analysed alone, and of a joint group.
KEY_ALONE = "per licence and dataset"
KEY_SHARED = "per licence, shared by the group"
_PSEUDONYMIZED = frozenset({"pseudonymize", "pseudonymized"})
_TOLERANCE = 1e-12  # 1/5 is not above 0.2 through rounding (as desensitize.risk)


def report_columns(report: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The report's column entries that are dicts with a name (anything else is ignored, not trusted)."""
    columns = (report or {}).get("columns") or []
    return [c for c in columns if isinstance(c, dict) and isinstance(c.get("name"), str)]


def pseudonym_columns(report: Mapping[str, Any] | None) -> list[str]:
    """The columns of a base copy holding pseudonyms (to be re-keyed per licence)."""
    found: list[str] = []
    for column in report_columns(report):
        near = column.get("near_unique")
        near_action = near.get("action") if isinstance(near, dict) else None
        if column.get("action") in _PSEUDONYMIZED or near_action in _PSEUDONYMIZED:
            found.append(column["name"])
    return found


def person_key(report: Mapping[str, Any] | None, types: Mapping[str, str | None]) -> str | None:
    """The pseudonymized column a table joins on: of type ``cn_resident_id``, else ``uscc``; None without one.

    ``types`` is the catalog's classification (column -> PII type), which the report's own ``type`` may
    leave out (a near-unique key pseudonymized without a type)."""
    pseudonyms = pseudonym_columns(report)
    stated = {c["name"]: c.get("type") for c in report_columns(report)}
    for kind in PERSON_KEY_TYPES:
        for column in pseudonyms:
            if types.get(column) == kind or stated.get(column) == kind:
                return column
    return None


def quasi_identifiers(report: Mapping[str, Any] | None) -> dict[str, str | None]:
    """Column -> ladder type of the base copy's quasi-identifiers (``ladder_type`` if stated, else ``type``)."""
    k_report = (report or {}).get("k_anonymity") or {}
    found: dict[str, str | None] = {}
    for entry in k_report.get("quasi_identifiers") or []:
        if isinstance(entry, str):
            found[entry] = None
        elif isinstance(entry, dict) and isinstance(entry.get("column"), str):
            ladder = entry.get("ladder_type") or entry.get("type")
            found[entry["column"]] = str(ladder) if ladder else None
    return found


def joint_refusal(report: Mapping[str, Any], k: int, highest: float | None, average: float | None) -> str | None:
    """Why a joint report does not allow the group's copies, or None when it does.

    Fail closed: ``met`` False is refused with its reason; ``met`` True passes; a report that does not say
    (a measuring-only ``link_tables``) passes only when its ``after`` figures of the joined view meet
    ``k`` and the risk bounds themselves (GB/T 37964-2019 附录B K-匿名模型; 第6章: the de-identified result
    is verified against its target before use).
    """
    met = report.get("met")
    if met is True:
        return None
    if met is False:
        return str(report.get("reason") or "k-anonymity or the risk threshold does not hold on the joined view")
    after = report.get("after") or {}
    achieved = after.get("k")
    if not isinstance(achieved, int | float) or achieved < k:  # None (nothing measured) is refused too
        return f"the joined view is {achieved}-anonymous, below k = {k}"
    prosecutor = after.get("prosecutor") or {}
    for name, bound in (("highest", highest), ("average", average)):
        value = prosecutor.get(name)
        if bound is not None and (not isinstance(value, int | float) or not math.isfinite(value)):
            return f"the joined view's {name} prosecutor risk was not measured"
        if bound is not None and isinstance(value, int | float) and value > bound + _TOLERANCE:
            return f"the joined view's {name} prosecutor risk {value:.4f} is above the threshold {bound:g}"
    return None


def joint_risk(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The joint figures a licence page shows: before/after of the joined view, k achieved, met."""
    if not report:
        return None
    after = report.get("after") or {}
    return {
        "before": report.get("before"),
        "after": report.get("after"),
        "k_achieved": report.get("k_achieved", after.get("k")),
        "met": report.get("met") if report.get("met") is not None else report.get("met_by_registry"),
    }


def linkage_entries(
    datasets: Iterable[tuple[str, str | None]], joint_reports: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``linkage`` of a licence: one entry per link group (a dataset alone, or a joint group).

    ``datasets``: (name, link group or None) of each dataset of the licence; ``joint_reports``: group name
    -> the joint report of its newest copies (absent until they are made)."""
    alone: list[dict[str, Any]] = []
    groups: dict[str, list[str]] = {}
    for name, group in datasets:
        if group:
            groups.setdefault(group, []).append(name)
        else:
            alone.append({"datasets": [name], "joint": False, "key": KEY_ALONE, "risk": None})
    joint = [
        {"datasets": sorted(names), "joint": True, "key": KEY_SHARED, "risk": joint_risk(joint_reports.get(group))}
        for group, names in sorted(groups.items())
    ]
    return joint + alone


__all__ = [
    "KEY_ALONE",
    "KEY_SHARED",
    "PERSON_KEY_TYPES",
    "joint_refusal",
    "joint_risk",
    "linkage_entries",
    "person_key",
    "pseudonym_columns",
    "quasi_identifiers",
    "report_columns",
]
