"""How usable a desensitized copy stays: information loss per column and a standard query workload.

Why: a copy that is safe but useless fails the product's promise (可用: usable without being
visible), and a custodian cannot weigh a policy's protection without seeing what it costs. ARX and
sdcMicro report both sides; this module gives the utility side in the same terms, for the report
(report["utility"]) the custodian signs off and operators read in the catalog.

Per quasi-identifier column:

* ``generalization_height`` / ``max_height``: the ladder level reached and the ladder's top
  (ARX's "generalization intensity"), ``suppressed_share``: share of the rows suppressed;
* ``non_uniform_entropy``: Σ_i log2(f(g_i) / f(r_i)) over the rows, with r_i the raw value,
  g_i the copy's value (``*`` for a suppressed row) and f the frequencies in the table — the
  information an analyst lacks to tell the raw values apart again — divided by its value when
  everything is suppressed, Σ_i log2(n / f(r_i)), so 0 = untouched, 1 = nothing left (de Waal &
  Willenborg 1999, "Information loss through global recoding and local suppression", Netherlands
  Official Statistics 14; ARX's ``MetricMDNUEntropy``; Prasser et al. 2016).

Per dataset, a standard workload answered on the raw table and on the copy, with the relative
error |copy − raw| / |raw| of each answer (null when raw = 0): counts by each quasi-identifier and
by each pair of them (the raw values mapped to the copy's generalization level, so categories
compare: what differs is what suppression removed); the mean, median and 90th percentile of each
numeric column by region (the address / 户籍地 column at the copy's level, overall if none); one
ordinary least-squares regression of the first numeric column on the other numeric ones
(coefficients compared; ``numpy.linalg.lstsq``). A query over many cells gives one workload line:
``raw`` / ``copy`` are the whole-table answer, ``relative_error`` the mean relative error over its
cells (a cell the copy lost entirely counts 1.0), ``cells`` and ``max_cell_error`` beside it —
small enough to store as JSON with the copy's version.

Non-numeric columns (today's band labels such as "[1000, 2000)") are skipped, so this works before
and after banded numbers become numeric midpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from desensitize.risk import Codes, column_codes

__all__ = ["MAX_NUMERIC_COLUMNS", "MAX_REGIONS", "REGION_TYPES", "column_loss", "measure_utility", "relative_error"]

#: Column types that name where a person lives: the workload's grouping for numeric statistics.
REGION_TYPES = ("household_region", "address")
#: Beyond this many distinct regions (an address kept whole), numeric statistics are taken overall.
MAX_REGIONS = 500
#: At most this many numeric columns enter the workload (the report stays small).
MAX_NUMERIC_COLUMNS = 10


def relative_error(raw: float | None, copy: float | None) -> float | None:
    """|copy − raw| / |raw|; None when raw is 0 or undefined; 1.0 when the copy lost the answer."""
    if raw is None or not np.isfinite(raw) or raw == 0:
        return None
    if copy is None or not np.isfinite(copy):
        return 1.0
    with np.errstate(over="ignore"):
        error = float(np.abs(np.float64(copy) - np.float64(raw)) / np.abs(np.float64(raw)))
    # Over a raw answer so near 0 that the quotient overflows (subnormal doubles), the error has no number: None,
    # as for 0. Red team 23a F7: +inf reached the report, which PostgreSQL's JSON refuses (a 500 at the API).
    return error if np.isfinite(error) else None


def _finite(value: float | np.floating[Any]) -> float | None:
    """A report's number rounded, or None where it is not finite (JSON, and PostgreSQL's json, hold no inf/NaN)."""
    return round(float(value), 6) if np.isfinite(value) else None


_codes = column_codes


def column_loss(raw: pd.Series, generalized: pd.Series, kept: np.ndarray) -> float:
    """Normalized non-uniform entropy of one column (see the module docstring), in [0, 1].

    ``generalized`` holds the copy's value for every input row (suppressed rows included);
    ``kept`` says which rows the copy keeps.
    """
    return _loss(_codes(raw)[0], _codes(generalized)[0], kept)


def _loss(r: np.ndarray, g: np.ndarray, kept: np.ndarray) -> float:
    n = len(r)
    if n == 0:
        return 0.0
    f_r = np.bincount(r)[r].astype(np.float64)
    # Frequencies in the input, as ARX: f_g >= f_r since g is a function of r.
    f_g = np.bincount(g)[g].astype(np.float64)
    f_g = np.where(kept, f_g, float(n))  # a suppressed row is '*', which stands for every row: frequency n (ARX)
    loss = float(np.maximum(np.log2(f_g / f_r), 0.0).sum())
    most = float(np.log2(n / f_r).sum())
    return round(loss / most, 6) if most > 0 else 0.0


def _line(
    query: str, raw: float | None, copy: float | None, errors: list[float | None], **extra: Any
) -> dict[str, Any]:
    known = [e for e in errors if e is not None]
    return {
        "query": query,
        "raw": None if raw is None or not np.isfinite(raw) else round(float(raw), 6),
        "copy": None if copy is None or not np.isfinite(copy) else round(float(copy), 6),
        "relative_error": _finite(np.mean(known)) if known else None,
        "cells": len(errors),
        "max_cell_error": _finite(max(known)) if known else None,
        **extra,
    }


def _count_errors(codes: np.ndarray, card: int, kept: np.ndarray) -> list[float | None]:
    """Relative error of each non-empty raw cell's count in the copy."""
    raw = np.bincount(codes, minlength=card)
    copy = np.bincount(codes[kept], minlength=card)
    cells = raw > 0
    errors: list[float | None] = (np.abs(copy[cells] - raw[cells]) / raw[cells]).tolist()
    return errors


def _count_lines(generalized: pd.DataFrame, kept: np.ndarray, coded: Codes) -> list[dict[str, Any]]:
    n, n_kept = len(generalized), int(kept.sum())
    lines = [_line(f"count by {c}", n, n_kept, _count_errors(*coded[c], kept)) for c in generalized.columns]
    pairs = list(combinations(generalized.columns, 2))
    if pairs:
        errors: list[float | None] = []
        for a, b in pairs:
            key, card = _codes(coded[a][0] * coded[b][1] + coded[b][0])
            errors.extend(_count_errors(key, card, kept))
        lines.append(_line(f"count by pairs of quasi-identifiers ({len(pairs)} pairs)", n, n_kept, errors))
    return lines


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def _statistics(values: np.ndarray, groups: np.ndarray, card: int) -> dict[str, np.ndarray]:
    """Mean, median and 90th percentile of ``values`` per group (NaN where a group has no value)."""
    frame = pd.DataFrame({"g": groups, "x": values}).dropna()
    grouped = frame.groupby("g")["x"]
    index = np.arange(card)
    return {
        "mean": grouped.mean().reindex(index).to_numpy(dtype=np.float64),
        "median": grouped.median().reindex(index).to_numpy(dtype=np.float64),
        "p90": grouped.quantile(0.9).reindex(index).to_numpy(dtype=np.float64),
    }


def _overall(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return {"mean": float("nan"), "median": float("nan"), "p90": float("nan")}
    return {"mean": float(finite.mean()), "median": float(np.median(finite)), "p90": float(np.quantile(finite, 0.9))}


def _numeric_lines(
    raw: Mapping[str, np.ndarray], copy: Mapping[str, np.ndarray], region: pd.Series | None, region_name: str | None,
    kept: np.ndarray,
) -> list[dict[str, Any]]:  # fmt: skip
    """Mean, median and p90 of each numeric column by region, raw against copy."""
    if region is not None:
        groups, card = _codes(region)
    else:
        groups, card = np.zeros(len(kept), dtype=np.int64), 1
    by = f" by {region_name}" if region is not None else " overall"
    lines = []
    for column, raw_values in raw.items():
        raw_stats = _statistics(raw_values, groups, card)
        copy_stats = _statistics(copy[column], groups[kept], card)
        raw_all, copy_all = _overall(raw_values), _overall(copy[column])
        for name in ("mean", "median", "p90"):
            present = ~np.isnan(raw_stats[name])
            errors = [
                relative_error(r, c) for r, c in zip(raw_stats[name][present], copy_stats[name][present], strict=True)
            ]
            lines.append(_line(f"{name} of {column}{by}", raw_all[name], copy_all[name], errors))
    return lines


def _ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients (intercept first) and R² of ``y`` on ``x``, rows with a NaN left out."""
    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
    design = np.column_stack([np.ones(int(ok.sum())), x[ok]])
    coefficients, *_ = np.linalg.lstsq(design, y[ok], rcond=None)
    residual = y[ok] - design @ coefficients
    total = float(((y[ok] - y[ok].mean()) ** 2).sum()) if ok.any() else 0.0
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else float("nan")
    return coefficients, r2


def _regression_line(raw: Mapping[str, np.ndarray], copy: Mapping[str, np.ndarray]) -> dict[str, Any] | None:
    names = list(raw)
    if len(names) < 2:
        return None
    target, features = names[0], names[1:]
    raw_coef, raw_r2 = _ols(raw[target], np.column_stack([raw[c] for c in features]))
    copy_coef, copy_r2 = _ols(copy[target], np.column_stack([copy[c] for c in features]))
    errors = [relative_error(r, c) for r, c in zip(raw_coef, copy_coef, strict=True)]
    line = _line(f"OLS {target} ~ {' + '.join(features)} (R²; coefficients)", raw_r2, copy_r2, errors)
    line["coefficients"] = {
        "terms": ["(intercept)", *features],
        "raw": [_finite(v) for v in raw_coef],
        "copy": [_finite(v) for v in copy_coef],
    }
    return line


def _numeric_columns(raw: pd.DataFrame, copy: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The columns numeric in both tables (at most MAX_NUMERIC_COLUMNS), as float arrays."""
    names = [c for c in raw.columns if c in copy.columns and _is_number(raw[c]) and _is_number(copy[c])]
    names = names[:MAX_NUMERIC_COLUMNS]
    return (
        {c: raw[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in names},
        {c: copy[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in names},
    )


def _region(
    types: Mapping[str, str | None], generalized: pd.DataFrame, copy: pd.DataFrame, kept: np.ndarray
) -> tuple[pd.Series | None, str | None]:
    """The region of every input row at the copy's level, and its column's name (None: none usable)."""
    for wanted in REGION_TYPES:
        for column, pii_type in types.items():
            if pii_type != wanted or column not in copy.columns:
                continue
            if column in generalized.columns:
                values = generalized[column]
            elif bool(kept.all()):
                values = copy[column].reset_index(drop=True)
            else:
                continue
            if values.nunique(dropna=False) <= MAX_REGIONS:
                return values, column
    return None, None


def measure_utility(
    raw: pd.DataFrame,
    copy: pd.DataFrame,
    *,
    kept: np.ndarray,
    generalized: pd.DataFrame,
    types: Mapping[str, str | None],
    quasi_identifiers: Sequence[Mapping[str, Any]],
    raw_codes: Codes | None = None,
) -> dict[str, Any]:
    """The report's ``utility`` object (see the module docstring).

    ``raw``: the input table; ``copy``: the desensitized table (the rows of ``raw`` where ``kept``,
    in order); ``generalized``: the quasi-identifier columns at the copy's levels for every input
    row; ``quasi_identifiers``: the k-anonymity report's entries (column, level, ladder);
    ``raw_codes``: ``desensitize.risk.column_codes`` of raw columns already computed.
    """
    if len(kept) != len(raw) or int(kept.sum()) != len(copy) or len(generalized) != len(raw):
        raise ValueError("kept, generalized and copy do not describe the same rows of the raw table")
    kept = np.asarray(kept, dtype=bool)
    generalized = generalized.reset_index(drop=True)
    n = len(raw)
    suppressed = (n - int(kept.sum())) / n if n else 0.0
    coded = {c: _codes(generalized[c]) for c in generalized.columns}
    raw_codes = raw_codes or {}
    columns = [
        {
            "name": q["column"],
            "generalization_height": int(q["level"]),
            "max_height": len(q["ladder"]) - 1,
            "suppressed_share": round(suppressed, 6),
            "non_uniform_entropy": _loss(
                (raw_codes.get(q["column"]) or _codes(raw[q["column"]]))[0], coded[q["column"]][0], kept
            ),
        }
        for q in quasi_identifiers
    ]
    workload = _count_lines(generalized, kept, coded)
    raw_numbers, copy_numbers = _numeric_columns(raw, copy)
    region, region_name = _region(types, generalized, copy, kept)
    workload += _numeric_lines(raw_numbers, copy_numbers, region, region_name, kept)
    regression = _regression_line(raw_numbers, copy_numbers)
    if regression is not None:
        workload.append(regression)
    errors = [line["relative_error"] for line in workload if line["relative_error"] is not None]
    return {
        "columns": columns,
        "workload": workload,
        "summary": {
            "queries": len(workload),
            "median_relative_error": _finite(np.median(errors)) if errors else None,
            "max_relative_error": _finite(max(errors)) if errors else None,
            "numeric_columns": list(raw_numbers),
            "region": region_name,
        },
    }
