"""What a desensitized copy's report says of its risk, utility and representation, shaped for display.

Issue 16 ("Shown in ..."): the desensitization report (``desensitize_table(...).report``, stored with
the version by ``registry.copies``) measures re-identification risk and utility and states how each
generalized column is represented. The CLI, the API and the console all show it; this module holds the
one reading of the report they share, so an operator, a custodian and a script see the same figures.

Two readings:

* :func:`report_sections` — everything, for the platform's own roles (custodian, agency, regulator):
  risk before and after, every workload query with its raw and copy answers.
* :func:`public_facts` — what an operator may learn before licensing, "what copy they will get": per
  column its action and representation (top and bottom coding included, stated as the issue asks),
  the risk *after* (k, l, prosecutor highest/average, threshold met) and the utility *summary*. Never a
  raw value nor anything derived from one row: the workload's per-query answers are left out, since a
  relative error beside the copy's own answer gives back the raw aggregate exactly
  (个人信息保护法 第七十三条: 匿名化 means the person can no longer be identified nor the data restored).

Copies made before issue 16 have none of these keys: every reader returns ``None`` for what is absent
(shown as "not measured (copy made before issue 16)"), never a guessed number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

NOT_MEASURED = "not measured (copy made before issue 16) · 未测量（本副本早于第16号议题）"
NO_QI = "n/a, no quasi-identifiers"
#: The representation fields of the shared report contract (issue 16), the only ones shown to operators.
PUBLIC_REPRESENTATION = ("kind", "unit", "width", "bottom_coded_below", "top_coded_at", "label_column")


def _mapping(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


def number_text(value: Any) -> str:
    """A figure as people read it: ``1000.0`` -> ``1000``, ``0.12345`` -> ``0.1235``; ``None`` -> ``—``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def share_text(value: Any) -> str:
    """A share (0..1) as a percentage; ``None`` -> ``—``."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value * 100:.2f}%"


def describe_representation(representation: Mapping[str, Any] | None) -> str | None:
    """One line saying how a generalized column is held, e.g. ``numeric midpoint, width 1000, top-coded at 20000``.

    The kinds are those of the shared report contract (issue 16): ``midpoint`` (and any other numeric
    band kind, stated by name), ``year``, ``month`` and ``band_start_year``. An unknown kind is stated by
    its name and its fields, never hidden: the reader must know the column is not the raw value.
    """
    if not representation:
        return None
    kind = str(representation.get("kind") or "?")
    if kind == "year":
        parts = ["date to year (integer)"]
    elif kind == "month":
        parts = ["date to month (first day of the month)"]
    elif kind == "band_start_year":
        parts = [f"year band start, width {number_text(representation.get('width'))} years"]
    else:
        parts = [f"numeric {kind}"]
        if representation.get("width") is not None:
            unit = representation.get("unit")
            parts.append(f"width {number_text(representation['width'])}" + (f" {unit}" if unit else ""))
        known = {"kind", "unit", "width", "bottom_coded_below", "top_coded_at", "label_column"}
        parts += [f"{key} {number_text(value)}" for key, value in representation.items() if key not in known]
    if representation.get("bottom_coded_below") is not None:
        parts.append(f"bottom-coded below {number_text(representation['bottom_coded_below'])}")
    if representation.get("top_coded_at") is not None:
        parts.append(f"top-coded at {number_text(representation['top_coded_at'])}")
    if representation.get("label_column"):
        parts.append(f"label in column {representation['label_column']}")
    return ", ".join(parts)


def describe_near_unique(near_unique: Mapping[str, Any] | None) -> str | None:
    """The near-unique decision in words: pseudonymized, or kept with the custodian's reason."""
    if not near_unique:
        return None
    share = share_text(near_unique.get("share"))
    threshold = share_text(near_unique.get("threshold"))
    action = near_unique.get("action")
    if action == "kept":
        reason = near_unique.get("reason") or "no reason recorded"
        return f"near-unique ({share} ≥ {threshold}): kept — {reason}"
    if action == "generalize":  # a date (desensitize.keys): to its month or year rather than hashed
        return f"near-unique ({share} ≥ {threshold}): generalized to {near_unique.get('to') or 'a coarser date'}"
    if action == "drop":
        return f"near-unique ({share} ≥ {threshold}): dropped"
    if action == "quasi_identifier":  # a date, employer or place (desensitize.quasi, issue 23)
        return f"near-unique ({share} ≥ {threshold}): a quasi-identifier, generalized by k-anonymity"
    return f"near-unique ({share} ≥ {threshold}): pseudonymized"


def column_facts(report: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Per column of the report: name, action, representation and near-unique decision (``None`` when absent)."""
    columns = (report or {}).get("columns") or []
    facts = []
    for column in columns if isinstance(columns, Sequence) else []:
        if not isinstance(column, Mapping):
            continue
        representation = _mapping(column.get("representation"))
        near_unique = _mapping(column.get("near_unique"))
        facts.append(
            {
                "name": column.get("name"),
                "action": column.get("action"),
                "representation": representation,
                "described": describe_representation(representation),
                "near_unique": near_unique,
                "near_unique_described": describe_near_unique(near_unique),
            }
        )
    return facts


def risk_of(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``report["risk"]`` as stored, or ``None`` for a copy made before it was measured."""
    return _mapping((report or {}).get("risk"))


def utility_of(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``report["utility"]`` as stored, or ``None`` for a copy made before it was measured."""
    return _mapping((report or {}).get("utility"))


def risk_rows(risk: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """The before/after table: (measure, before, after) as text; ``[]`` when risk was not measured."""
    if not risk:
        return []
    before = _mapping(risk.get("before")) or {}
    after = _mapping(risk.get("after")) or {}

    def model(side: Mapping[str, Any], name: str, key: str) -> Any:
        return (_mapping(side.get(name)) or {}).get(key)

    def k_or_note(side: Mapping[str, Any], key: str) -> str:
        value = side.get(key)
        return str(value) if value is not None else (side.get("note") or "—")

    rows: list[tuple[str, Any, Any, Any]] = [
        ("records 记录", before.get("records"), after.get("records"), number_text),
        ("equivalence classes 等价类", before.get("classes"), after.get("classes"), number_text),
        ("prosecutor highest 检察官风险最高", model(before, "prosecutor", "highest"),
         model(after, "prosecutor", "highest"), number_text),
        ("prosecutor average 检察官风险平均", model(before, "prosecutor", "average"),
         model(after, "prosecutor", "average"), number_text),
        ("prosecutor: records above threshold 超阈值记录", model(before, "prosecutor", "records_above_threshold"),
         model(after, "prosecutor", "records_above_threshold"), share_text),
        ("journalist highest 记者风险最高", model(before, "journalist", "highest"),
         model(after, "journalist", "highest"), number_text),
        ("journalist average 记者风险平均", model(before, "journalist", "average"),
         model(after, "journalist", "average"), number_text),
        ("marketer 营销者风险", before.get("marketer"), after.get("marketer"), number_text),
        ("sample uniques 样本唯一", before.get("sample_uniques"), after.get("sample_uniques"), number_text),
        ("sample uniques share 样本唯一占比", before.get("sample_uniques_share"),
         after.get("sample_uniques_share"), share_text),
    ]  # fmt: skip
    table = [(label, fmt(b), fmt(a)) for label, b, a, fmt in rows]
    table.append(("k", k_or_note(before, "k"), k_or_note(after, "k")))
    table.append(("l", k_or_note(before, "l"), k_or_note(after, "l")))
    return table


def threshold_text(risk: Mapping[str, Any] | None) -> str:
    """The policy's risk threshold as ``key value`` pairs, ``—`` when none is stated."""
    threshold = _mapping((risk or {}).get("threshold")) or {}
    return ", ".join(f"{key} {number_text(value)}" for key, value in threshold.items()) or "—"


def report_sections(report: Mapping[str, Any] | None) -> dict[str, Any]:
    """Everything issue 16 added to the report, shaped for the platform's own roles."""
    risk = risk_of(report)
    utility = utility_of(report)
    k = _mapping((report or {}).get("k_anonymity")) or {}
    return {
        "measured": risk is not None or utility is not None,
        "risk": risk,
        "risk_rows": risk_rows(risk),
        "threshold": threshold_text(risk),
        "met": None if risk is None else risk.get("met"),
        "quasi_identifiers": list((risk or {}).get("quasi_identifiers") or []),
        "steps": [step_label(step) for step in (risk or {}).get("steps") or []],
        "utility": utility,
        "utility_columns": list((utility or {}).get("columns") or []),
        "workload": list((utility or {}).get("workload") or []),
        "summary": _mapping((utility or {}).get("summary")),
        "columns": column_facts(report),
        "k_note": k.get("note"),
    }


def public_facts(version: int, report: Mapping[str, Any] | None) -> dict[str, Any]:
    """What an operator learns of the copy a licence serves: representation, risk after, utility summary.

    No raw value and no raw aggregate: of the workload only the summary of relative errors (a
    per-query relative error beside the copy's own answer restores the raw answer).
    """
    risk = risk_of(report)
    utility = utility_of(report)
    columns = []
    for c in column_facts(report):
        shown = _public_representation(c["representation"])
        columns.append(
            {
                "name": c["name"],
                "action": c["action"],
                "representation": shown,
                "described": describe_representation(shown),
                "near_unique": (c["near_unique"] or {}).get("action"),
            }
        )
    after = _mapping((risk or {}).get("after"))
    prosecutor = _mapping((after or {}).get("prosecutor")) or {}
    risk_after = None
    if after is not None and risk is not None:
        risk_after = {
            "k": after.get("k"),
            "l": after.get("l"),
            "note": after.get("note"),
            "prosecutor_highest": prosecutor.get("highest"),
            "prosecutor_average": prosecutor.get("average"),
            "records_above_threshold": prosecutor.get("records_above_threshold"),
            "marketer": after.get("marketer"),
            "threshold": _mapping(risk.get("threshold")),
            "met": risk.get("met"),
        }
    summary = _mapping((utility or {}).get("summary"))
    return {
        "version": version,
        "measured": risk is not None or utility is not None,
        "note": None if risk is not None or utility is not None else NOT_MEASURED,
        "columns": columns,
        "risk_after": risk_after,
        "utility_summary": summary,
    }


def _public_representation(representation: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Only the contract's representation fields reach an operator (fail closed: a field added later, which
    might hold values read off the data, stays with the platform's roles until it is listed here)."""
    if representation is None:
        return None
    return {key: representation[key] for key in PUBLIC_REPRESENTATION if key in representation}


def newest_copy_facts(versions: Sequence[Any]) -> dict[str, Any] | None:
    """:func:`public_facts` of the newest desensitized version among ``versions`` (``VersionView``s), or ``None``."""
    copies = [v for v in versions if getattr(v, "kind", None) == "desensitized"]
    if not copies:
        return None
    newest = max(copies, key=lambda v: v.version)
    return public_facts(newest.version, newest.report)


__all__ = [
    "NOT_MEASURED",
    "NO_QI",
    "PUBLIC_REPRESENTATION",
    "column_facts",
    "describe_near_unique",
    "describe_representation",
    "newest_copy_facts",
    "number_text",
    "public_facts",
    "report_sections",
    "risk_of",
    "risk_rows",
    "share_text",
    "step_label",
    "threshold_text",
    "utility_of",
]


def step_label(step: Any) -> str:
    """One step of the generalization search as a reader says it: the column, the rung, what it was for."""
    if isinstance(step, dict) and "column" in step:
        why = f", for {step['for']}" if step.get("for") else ""
        return f"{step['column']} → {step.get('to')} ({step.get('violating_rows_after')} rows below k after{why})"
    if isinstance(step, dict) and "suppress_rows" in step:
        return f"{step['suppress_rows']} rows suppressed for {step.get('for')} ({step.get('how')})"
    return str(step)
