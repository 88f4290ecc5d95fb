"""A copy's risk report: the re-identification risk before (raw values) and after (the copy), against
the policy's threshold, and whether the copy meets it.

Why a module of its own: ``desensitize.risk`` only measures (no policy, no k-anonymity result);
this is where the measurements meet the level's threshold (GB/T 37964-2019 第6章 验证审批: the
result's risk assessed against the controller's threshold) and the reason a copy fails is written,
so the pipeline composes the stages without holding the rule.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from desensitize.kanonymity import KAnonymityResult
from desensitize.policy import Policy
from desensitize.risk import NO_QI_NOTE, Codes, measure_risk, risk_figures

__all__ = ["REPORT_ONLY_NOTE", "copy_risk"]

#: The risk's reason when measured over quasi-identifier types the policy does not generalize (L1/L2).
REPORT_ONLY_NOTE = "the policy sets no risk threshold; measured over the personal quasi-identifier types present"


def copy_risk(
    df: pd.DataFrame,
    anonymized: KAnonymityResult,
    qi: list[str],
    policy: Policy,
    raw_codes: Codes,
    *,
    personal: bool = True,
) -> dict[str, Any]:
    """report["risk"]: the risk over the quasi-identifiers of the raw table (original values) and of
    the copy, against the policy's threshold, and whether the copy meets it.

    Fail closed: ``met`` is false (with the reason) whenever a bound is exceeded; the registry
    records it with the copy's version and in the ledger, so a copy above its level's threshold is
    marked, never silently passed. ``personal`` false: ``qi`` are the personal quasi-identifier
    types present in a table whose policy names none (L1/L2), measured for the report only.
    """
    threshold = policy.risk
    at_risk = threshold.at_risk if threshold is not None else 0.2
    l_report = anonymized.report.get("l_diversity") or {}
    sensitive = l_report.get("column") if l_report.get("l") is not None else None
    before = measure_risk(df, qi, threshold=at_risk, sensitive_column=sensitive, codes=raw_codes)
    if personal and anonymized.class_ids is not None and len(anonymized.frame):  # the search's classes
        copy_sensitive = anonymized.frame[sensitive] if sensitive is not None else None
        after = risk_figures(anonymized.class_ids, threshold=at_risk, sensitive=copy_sensitive)
    else:
        after = measure_risk(anonymized.frame, qi, threshold=at_risk, sensitive_column=sensitive)
    reasons: list[str] = []
    if not qi:
        reasons_note: str | None = NO_QI_NOTE
    elif threshold is None:
        reasons_note = "the policy sets no risk threshold" if personal else REPORT_ONLY_NOTE
    elif after["records"] == 0:
        reasons_note = "every row suppressed"
    else:
        reasons_note = None
        prosecutor = after["prosecutor"]
        if threshold.highest is not None and prosecutor["highest"] > threshold.highest + 1e-12:
            reasons.append(f"highest prosecutor risk {prosecutor['highest']:.4f} > {threshold.highest}")
        if threshold.average is not None and prosecutor["average"] > threshold.average + 1e-12:
            reasons.append(
                f"average prosecutor risk {prosecutor['average']:.4f} > {threshold.average} "
                f"({after['classes']} classes in {after['records']} records; generalization and suppression exhausted)"
            )
    steps = list(anonymized.report.get("steps", []))
    extra = anonymized.report.get("suppressed_for_average_risk", 0)
    if extra:
        steps.append({"suppress_rows": extra, "for": "average risk", "how": "smallest classes first"})
    return {
        "quasi_identifiers": qi,
        "threshold": None if threshold is None else {**threshold.model_dump(), "record_threshold": at_risk},
        "before": before,
        "after": after,
        "met": not reasons,
        "reason": "; ".join(reasons) if reasons else reasons_note,
        "steps": steps,
    }
