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
* **Kept keys** (red team 23, F5): a near-unique column the custodian kept with a reason
  (``near_unique.action == "kept"``) is a key: verbatim, the same value under every licence, it joins two
  licences' copies (two operators' outputs) and two datasets of one licence not granted jointly, 1:1,
  though their pseudonyms never do. Decided once, when the base copy is made
  (:func:`kept_key_decision`, recorded as ``report["kept_keys"]``):

  - a kept key of an identifier type (``desensitize.fingerprints.IDENTIFIER_TYPES``) or holding text (a
    card, account, order or plate number) is **re-keyed per licence** like a pseudonym: inside the
    sandbox such a value serves counting, grouping and joining, which a per-licence key keeps (and within
    a joint group the group's key keeps joins across its datasets); the digits themselves serve only to be
    carried out, which the guard refuses (the re-keyed values are fingerprinted like pseudonyms). The
    base copy keeps the value (no job mounts it, issue 23).
  - a kept key holding quantities (an exact amount, a measurement; booleans, timestamps) is kept verbatim: its
    value is what the analysis needs and a keyed hash would destroy it. It is **stated**: listed in the
    licence's and the dataset's ``linkage`` as ``shared_columns`` (the same under every licence: joins
    across licences), and the custodian's ``dataset desensitize`` answer warns.

  A base report made before the decision was recorded lists every kept key as shared (nothing re-keyed:
  what the copy holds is stated, not assumed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


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


def kept_keys(report: Mapping[str, Any] | None) -> list[str]:
    """The near-unique columns the custodian kept with a reason (``near_unique.action == "kept"``)."""
    found: list[str] = []
    for column in report_columns(report):
        near = column.get("near_unique")
        if isinstance(near, dict) and near.get("action") == "kept":
            found.append(column["name"])
    return found


def kept_key_decision(
    report: Mapping[str, Any] | None, types: Mapping[str, str | None], frame: pd.DataFrame
) -> dict[str, list[str]]:
    """``report["kept_keys"]``: which kept keys licence copies re-key (identifier types, text) and which stay
    verbatim, the same under every licence (numbers, dates, booleans): see the module docstring."""
    from desensitize import IDENTIFIER_TYPES

    rekeyed: list[str] = []
    shared: list[str] = []
    for column in kept_keys(report):
        if column not in frame.columns:
            continue
        measure = is_measure(frame[column]) and types.get(column) not in IDENTIFIER_TYPES
        (shared if measure else rekeyed).append(column)
    return {"rekeyed": rekeyed, "shared": shared}


#: An integer of this many digits or more is a number of something (a card, an account), not a quantity.
CODE_DIGITS = 10


def is_measure(values: pd.Series) -> bool:
    """Whether a column holds quantities (an amount, a measurement, a boolean, a timestamp) rather than codes.

    Copies read from the vault hold text, so the values decide: every one a number, none written with a
    leading zero (``000123``) and no integer of ``CODE_DIGITS`` digits or more (cards, accounts, phones).
    Anything else — letters, a leading zero, a long integer, a mixture — is a code: a key."""
    import pandas as pd

    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return True
    if pd.api.types.is_numeric_dtype(dtype):
        finite = values.dropna()
        whole = bool((finite % 1 == 0).all()) if len(finite) else True
        return not (whole and len(finite) and float(finite.abs().max()) >= 10.0 ** (CODE_DIGITS - 1))
    text = values.dropna().astype(str).str.strip()
    text = text[text != ""]
    if text.empty or pd.to_numeric(text, errors="coerce").isna().any():
        return False
    leading_zero = text.str.match(r"^[+-]?0[0-9]")
    long_integer = text.str.fullmatch(rf"[+-]?[0-9]{{{CODE_DIGITS},}}")
    return not bool(leading_zero.any() or long_integer.any())


def _decision(report: Mapping[str, Any] | None) -> dict[str, list[str]]:
    recorded = (report or {}).get("kept_keys")
    kept = kept_keys(report)
    if not isinstance(recorded, dict):  # made before the decision was recorded: nothing re-keyed, all stated
        return {"rekeyed": [], "shared": kept}
    rekeyed = [c for c in recorded.get("rekeyed") or [] if c in kept]
    return {"rekeyed": rekeyed, "shared": [c for c in kept if c not in rekeyed]}


def licence_keyed_columns(report: Mapping[str, Any] | None) -> list[str]:
    """What a licence copy re-keys: the base copy's pseudonym columns and its kept keys marked re-keyed."""
    pseudonyms = pseudonym_columns(report)
    return pseudonyms + [c for c in _decision(report)["rekeyed"] if c not in pseudonyms]


def shared_columns(report: Mapping[str, Any] | None) -> list[str]:
    """Kept keys verbatim in every licence copy (the same under every licence: they join across licences)."""
    return _decision(report)["shared"]


def kept_key_warnings(report: Mapping[str, Any] | None) -> list[str]:
    """What the custodian's keep ruling means for linkage, in words (the ``dataset desensitize`` answer)."""
    decision = _decision(report)
    warnings = [
        f"kept column {c!r} is near-unique: licence copies re-key it per licence like a pseudonym (a text key "
        "joins across licences otherwise); jobs see a per-licence key, not the value, and cannot carry it out"
        for c in decision["rekeyed"]
    ]
    warnings += [
        f"kept column {c!r} is near-unique and stays verbatim in every licence copy: it joins across licences "
        "(two operators' outputs) and across datasets not granted jointly; every licence's linkage lists it"
        for c in decision["shared"]
    ]
    return warnings


SHARED_NOTE = (
    "kept verbatim by the custodian (near-unique): the same values under every licence and dataset, so they "
    "join across licences and across datasets not granted jointly"
)


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
    datasets: Iterable[tuple[str, str | None]],
    joint_reports: Mapping[str, Any],
    shared: Mapping[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """``linkage`` of a licence: one entry per link group (a dataset alone, or a joint group).

    ``datasets``: (name, link group or None) of each dataset of the licence; ``joint_reports``: group name
    -> the joint report of its newest copies (absent until they are made); ``shared``: dataset -> its
    kept keys verbatim in every licence copy (:func:`shared_columns`), listed as the entry's
    ``shared_columns`` (``{"dataset", "column"}``) with ``shared_note`` saying what they do."""
    shared = shared or {}
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
    for entry in joint + alone:
        columns = [{"dataset": d, "column": c} for d in entry["datasets"] for c in shared.get(d, [])]
        entry["shared_columns"] = columns
        entry["shared_note"] = SHARED_NOTE if columns else None
    return joint + alone


__all__ = [
    "CODE_DIGITS",
    "KEY_ALONE",
    "KEY_SHARED",
    "PERSON_KEY_TYPES",
    "SHARED_NOTE",
    "is_measure",
    "joint_refusal",
    "joint_risk",
    "kept_key_decision",
    "kept_key_warnings",
    "kept_keys",
    "licence_keyed_columns",
    "linkage_entries",
    "person_key",
    "pseudonym_columns",
    "quasi_identifiers",
    "report_columns",
    "shared_columns",
]
