"""Re-identification risk of a table over its quasi-identifiers, as ARX and sdcMicro measure it.

Why: k-anonymity alone says only that the smallest group has k rows; a data-protection officer
reading a copy's report expects the figures ARX and sdcMicro print — how likely an attacker is to
single a person out, on the worst record and on average, and how many records are above the
tolerated risk — before and after desensitization, so the gain (and what is left) is measured,
not asserted. GB/T 37964-2019 第6章 (去标识化过程: 验证审批) asks that the re-identification risk of
the result be assessed against a threshold the controller sets; 个人信息保护法 第七十三条(四) makes
"无法识别特定自然人" the test of 去标识化; 济源示范区政务数据共享管理暂行办法 第五十一条 asks that
sharing and opening be risk-assessed (进行风险评估). The threshold lives in each level's policy
(``desensitize.policy.RiskThreshold``); this module only measures.

Definitions (equivalence class = the rows sharing every quasi-identifier value, a null being a
value of its own — sdcMicro's ``freqCalc`` lets a missing value match every category instead,
which raises the counts and lowers the risk; a value of its own is the stricter reading; f_c its
size in the table, F_c its size in the population):

* **prosecutor** (the attacker knows the target is in the table): a record's risk is 1 / f_c.
  ``highest`` = 1 / min f_c = 1 / k; ``average`` = mean over records of 1 / f_c = classes /
  records; ``records_above_threshold`` = share of records whose risk exceeds the threshold
  (ARX ``RiskModelSampleSummary.ProsecutorRisk``: getHighestRisk, getSuccessRate,
  getRecordsAtRisk; El Emam & Dankar 2008, "Protecting privacy using k-anonymity", JAMIA 15(5)).
* **journalist** (the attacker matches against a population register): 1 / F_c. Keyong's tables
  are usually the whole population (public registers are censuses), so F_c = f_c and journalist
  = prosecutor by default. Given a sampling fraction π (or per-record sampling weights: how
  many people each row stands for), F_c is estimated as f_c / π (resp. the sum of the weights in
  the class), as sdcMicro's ``freqCalc`` estimates F_k from the weights (Templ, Kowarik & Meindl
  2015, "Statistical Disclosure Control for Micro-Data Using the R Package sdcMicro", JSS
  67(4), §3.1: F_k = Σ w_i over the key's records). F_c is never below f_c.
* **marketer** (the attacker re-identifies as many records as possible, matching everyone):
  expected share of records re-identified = Σ_c f_c / F_c / records, which is classes / records
  when the table is the population (ARX ``MarketerRisk.getSuccessRate``).
* **sample uniques**: records alone in their class (f_c = 1), count and share (sdcMicro's
  ``measure_risk`` counts them as the records violating 2-anonymity).
* **k** = min f_c; **l** = distinct l-diversity of the sensitive column: the fewest distinct
  non-null sensitive values in a class (Machanavajjhala et al. 2007; sdcMicro ``ldiversity``).

Without quasi-identifiers there is no linkage key: k, l and the risks are ``None`` with the note
``"n/a, no quasi-identifiers"`` — not k = the number of rows, a vacuous figure.

Everything runs on integer codes (one ``factorize`` per column, a mixed-radix key, ``bincount``):
a few tens of milliseconds on 300,000 rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "NO_QI_NOTE",
    "Codes",
    "class_ids",
    "classes_to_drop",
    "column_codes",
    "measure_risk",
    "required_k",
    "risk_figures",
]

NO_QI_NOTE = "n/a, no quasi-identifiers"


#: Per column, an integer code per row (nulls their own code) and the number of codes.
Codes = dict[str, tuple[np.ndarray, int]]


def column_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer code per row (nulls their own code) and the number of codes.

    Factorizing a column of 300,000 distinct addresses is the costly part of measuring; the
    pipeline does it once per raw column and hands the codes to both risk and utility.
    """
    if isinstance(values.dtype, pd.StringDtype) and hasattr(values.array, "__arrow_array__"):
        # Arrow's own dictionary encoding: a quarter of pd.factorize's time on a million addresses, and
        # the same codes (first appearance order; nulls: the code after the last value).
        array = values.array.__arrow_array__()
        encoded = pc.dictionary_encode(array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array)
        card = len(encoded.dictionary)
        indices = pc.fill_null(encoded.indices, card) if encoded.null_count else encoded.indices
        return indices.to_numpy().astype(np.int64), card + 1
    codes, uniques = pd.factorize(values)
    return np.where(codes < 0, len(uniques), codes).astype(np.int64), len(uniques) + 1


def class_ids(frame: pd.DataFrame, columns: Sequence[str], codes: Codes | None = None) -> np.ndarray:
    """Per row, a dense id of its equivalence class over ``columns`` (nulls equal to each other).

    ``codes``: already computed ``column_codes`` of some of the columns (used instead of ``frame``'s).
    """
    n = len(frame)
    key = np.zeros(n, dtype=np.int64)
    span = 1
    for column in columns:
        codes_, card = codes[column] if codes is not None and column in codes else column_codes(frame[column])
        if span * card >= 2**62:  # re-densify before the mixed-radix key overflows
            key = pd.factorize(key)[0].astype(np.int64)
            span = int(key.max()) + 1 if n else 1
        key = key * card + codes_
        span *= card
    return np.asarray(pd.factorize(key)[0], dtype=np.int64)


def _summary(record_risk: np.ndarray, threshold: float) -> dict[str, float]:
    return {
        "highest": float(record_risk.max()),
        "average": float(record_risk.mean()),
        # A small tolerance so that 1/5 is not "above" 0.2 through floating-point rounding.
        "records_above_threshold": float((record_risk > threshold + 1e-12).mean()),
    }


def _population_sizes(
    ids: np.ndarray,
    sample_sizes: np.ndarray,
    sampling_fraction: float | None,
    weights: np.ndarray | None,
) -> np.ndarray:
    """F_c per class: f_c (census), f_c / fraction, or the sum of the weights (sdcMicro); never below f_c."""
    sizes = sample_sizes.astype(np.float64)
    population: np.ndarray
    if weights is not None:
        population = np.bincount(ids, weights=weights, minlength=len(sizes)).astype(np.float64)
    elif sampling_fraction is not None:
        population = sizes / sampling_fraction
    else:
        return sizes
    return np.asarray(np.maximum(population, sizes), dtype=np.float64)


def risk_figures(
    ids: np.ndarray,
    *,
    threshold: float,
    sampling_fraction: float | None = None,
    weights: np.ndarray | None = None,
    sensitive: pd.Series | None = None,
) -> dict[str, Any]:
    """The RISK object of the report from per-row class ids (see the module docstring)."""
    n = len(ids)
    if n == 0:
        return _empty(0, "empty table")
    sizes = np.bincount(ids)
    classes = len(sizes)
    f = sizes[ids]
    population = _population_sizes(ids, sizes, sampling_fraction, weights)
    big_f = population[ids]  # F_c per record
    uniques = int((sizes == 1).sum())
    return {
        "records": n,
        "classes": classes,
        "k": int(sizes.min()),
        "l": _l_diversity(ids, classes, sensitive) if sensitive is not None else None,
        "note": None,
        "prosecutor": _summary(1.0 / f, threshold),
        "journalist": _summary(1.0 / big_f, threshold),
        "marketer": float((sizes / population).sum() / n),
        "sample_uniques": uniques,
        "sample_uniques_share": uniques / n,
    }


def _l_diversity(ids: np.ndarray, classes: int, sensitive: pd.Series) -> int:
    """Fewest distinct non-null sensitive values in a class (0 if a class has only nulls)."""
    values, uniques = pd.factorize(sensitive)
    present = values >= 0
    width = len(uniques) + 1
    pairs = np.unique(ids[present] * width + values[present])
    return int(np.bincount(pairs // width, minlength=classes).min())


def _empty(records: int, note: str) -> dict[str, Any]:
    return {
        "records": records,
        "classes": None,
        "k": None,
        "l": None,
        "note": note,
        "prosecutor": None,
        "journalist": None,
        "marketer": None,
        "sample_uniques": None,
        "sample_uniques_share": None,
    }


def measure_risk(
    frame: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    *,
    threshold: float = 0.2,
    sensitive_column: str | None = None,
    sampling_fraction: float | None = None,
    weights: str | np.ndarray | None = None,
    codes: Codes | None = None,
) -> dict[str, Any]:
    """Risk figures of ``frame`` over ``quasi_identifiers`` (the report's RISK object).

    ``threshold`` is the record risk above which a record counts as at risk. ``sampling_fraction``
    (0 < π <= 1) or ``weights`` (a column name or one weight per row, each >= 1: how many people
    the row stands for) make the journalist and marketer figures use estimated population class
    sizes; give at most one. ``codes``: precomputed ``column_codes`` of ``frame``'s columns.
    Raises ``KeyError`` for unknown columns, ``ValueError`` for bad parameters.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be within (0, 1]")
    if sampling_fraction is not None and weights is not None:
        raise ValueError("give a sampling fraction or weights, not both")
    if sampling_fraction is not None and not (0.0 < sampling_fraction <= 1.0 and math.isfinite(sampling_fraction)):
        raise ValueError("sampling_fraction must be within (0, 1]")
    missing = [c for c in [*quasi_identifiers, *([sensitive_column] if sensitive_column else [])] if c not in frame]
    if missing:
        raise KeyError(f"columns not in the frame: {missing}")
    row_weights: np.ndarray | None = None
    if weights is not None:
        row_weights = np.asarray(frame[weights] if isinstance(weights, str) else weights, dtype=np.float64)
        if row_weights.shape != (len(frame),) or not np.all(np.isfinite(row_weights)) or np.any(row_weights < 1):
            raise ValueError("weights must be one finite number >= 1 per row")
    if not quasi_identifiers:
        return _empty(len(frame), NO_QI_NOTE)
    ids = class_ids(frame, quasi_identifiers, codes)
    return risk_figures(
        ids,
        threshold=threshold,
        sampling_fraction=sampling_fraction,
        weights=row_weights,
        sensitive=frame[sensitive_column] if sensitive_column is not None else None,
    )


def required_k(k: int, max_highest_risk: float | None) -> int:
    """The k a highest prosecutor risk threshold t implies, at least ``k``: 1/f <= t  <=>  f >= ceil(1/t)."""
    if max_highest_risk is None:
        return k
    if not 0.0 < max_highest_risk <= 1.0:
        raise ValueError("max_highest_risk must be within (0, 1]")
    return max(k, math.ceil(1.0 / max_highest_risk - 1e-9))


def classes_to_drop(ids: np.ndarray, max_average: float) -> np.ndarray:
    """Per class (of dense ``ids``), whether to suppress it so that classes / records <= ``max_average``.

    Removing a class of f records turns C / N into (C - 1) / (N - f), which is lower exactly when
    f < N / C: the smallest classes go first, as few as meet the threshold. If no number of them
    does (it would take every record), none is dropped: suppressing would destroy rows for nothing,
    and the report's risk says the threshold is not met.
    """
    sizes = np.bincount(ids)
    classes, records = len(sizes), len(ids)
    drop = np.zeros(classes, dtype=bool)
    if records == 0 or classes / records <= max_average + 1e-12:
        return drop
    order = np.argsort(sizes, kind="stable")
    dropped_rows = np.cumsum(sizes[order])
    remaining_classes = classes - np.arange(1, classes + 1)
    remaining_rows = records - dropped_rows
    ok = (remaining_rows > 0) & (remaining_classes <= max_average * remaining_rows + 1e-9)
    if ok.any():
        drop[order[: int(np.argmax(ok)) + 1]] = True
    return drop
