"""The generated 城镇职工社会保险 enrolment of 双鸭山: residents insured at the generated employers.

Why: a third table that links to the other two through 身份证号, 姓名 and 参保单位, with a
dependence between contribution base and suspension that analyses and DP models have a signal to
find. Ages are computed against the fixed date ``AS_OF``.

The enrolment record carries the insured person's 出生日期, as a 参保登记 does (and as the 身份证号
already encodes): the status depends most on age (everyone over 65 enrolled is 终止参保), so a model
of 参保状态 needs it (issue 16). The L4 policy generalizes it to the birth year, a quasi-identifier
of k-anonymity, and the demo's dp-train model reads that year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from samples.columns import age_on, frame, table_rng, take, weighted
from samples.world import AS_OF, CONTRIBUTION_BASE_MAX, CONTRIBUTION_BASE_MIN, STREAM_SOCIAL

__all__ = ["social_insurance"]


def social_insurance(
    residents_df: pd.DataFrame, entities_df: pd.DataFrame, seed: int = 0, coverage: float = 0.8
) -> pd.DataFrame:
    """Enrolment in 城镇职工社会保险 of the given residents at the given employers.

    A share ``coverage`` of residents aged 16-65 on ``AS_OF`` are enrolled; about a third
    of those over 65 also appear, with 参保状态 终止参保 (retired).  Columns: 身份证号,
    姓名, 出生日期 (the resident's, datetime64[ns]), 参保单位 (an entity's 企业名称; larger
    registered capital, more employees),
    月缴费基数 (integer yuan, lognormal clipped to [CONTRIBUTION_BASE_MIN,
    CONTRIBUTION_BASE_MAX]), 参保状态 (正常参保 / 暂停参保 / 终止参保), 参保日期 (not before
    1995, the person's 16th birthday, or the employer's founding).
    """
    if not 0.0 <= coverage <= 1.0:
        raise ValueError("coverage must be within [0, 1]")
    if len(entities_df) == 0:
        raise ValueError("social_insurance needs at least one market entity as employer")
    rng = table_rng(seed, STREAM_SOCIAL)
    n = len(residents_df)

    birth = residents_df["出生日期"].to_numpy().astype("datetime64[D]")
    age = age_on(birth, AS_OF)
    working = (age >= 16) & (age <= 65)
    enrolled = working & (rng.random(n) < coverage)
    retired = (age > 65) & (rng.random(n) < 1 / 3)
    rows = np.flatnonzero(enrolled | retired)
    m = len(rows)

    weights = np.sqrt(entities_df["注册资本"].to_numpy(dtype=np.float64)) + 1.0
    employer = weighted(rng, m, weights)

    # Retirees' records keep the base of their last working years, lower than today's wages; low
    # earners suspend contributions more often (about 9 % overall, a third of those at the minimum
    # base). The dependence gives analyses and DP models (issue 8) a signal to find.
    is_retired = retired[rows]
    base = 5200.0 * np.exp(0.45 * rng.standard_normal(m)) * np.where(is_retired, 0.55, 1.0)
    base = np.clip(np.round(base), CONTRIBUTION_BASE_MIN, CONTRIBUTION_BASE_MAX).astype(np.int64)

    suspend = np.clip(0.07 * (5200.0 / base) ** 3, 0.005, 0.35)
    draw = rng.random(m)
    status = np.where(is_retired | (draw >= 1.0 - 0.06), 2, np.where(draw < suspend, 1, 0))

    founded = entities_df["成立日期"].to_numpy().astype("datetime64[D]")[employer]
    lower = np.maximum.reduce([birth[rows] + 5845, founded, np.full(m, np.datetime64("1995-01-01", "D"))])
    # Retirees enrolled before they retired (at 60), unless their employer was founded later.
    today = np.datetime64(AS_OF, "D")
    lower = np.minimum(lower, today)
    upper = np.where(is_retired, np.maximum(np.minimum(birth[rows] + 21915, today), lower), today)
    enrolled_on = lower + (rng.random(m) * ((upper - lower).astype(np.int64) + 1)).astype(np.int64)

    return frame(
        {
            "身份证号": residents_df["公民身份号码"].take(rows),
            "姓名": residents_df["姓名"].take(rows),
            "出生日期": birth[rows].astype("datetime64[ns]"),
            "参保单位": entities_df["企业名称"].take(employer),
            "月缴费基数": base,
            "参保状态": take(("正常参保", "暂停参保", "终止参保"), status),
            "参保日期": enrolled_on.astype("datetime64[ns]"),
        }
    )
