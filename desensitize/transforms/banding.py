"""Numbers generalized (泛化) to bands that stay numbers: the band's midpoint, top and bottom coded.

GB/T 37964-2019 附录A 泛化技术 (incl. 顶层与底层编码 top and bottom coding). Why a number and not a
label such as '[1000, 2000)': a copy is for analysis (数据可用不可见), and ``groupby(...).mean()``,
SQL ``AVG`` and DP programs need numbers. The midpoint is the value that estimates a band's mean
without bias when values spread evenly in it (the lower bound would bias every mean down by half a
width). A column of whole numbers (ages, incomes in yuan) with whole-number bands holds the
integers lo … lo+width-1, whose mean is lo + (width-1)/2 (30-34 -> 32); otherwise the band is the
interval [lo, lo+width) and its midpoint lo + width/2.

Values below ``bottom`` become ``bottom`` and values at or above ``top`` become ``top`` (with
``edges``, the first and last edge code them when no stricter bottom/top is given). The width and
the coding are stated in the report (``band_column``); an optional label column carries
the band as text ('30-34', '≥20000') for readers who want it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from desensitize.transforms.arrow import nfkc, str_series, take_indices, text_arrow
from desensitize.transforms.errors import TransformError

__all__ = ["LABEL_SUFFIX", "band", "band_column", "band_labels", "numbers"]

#: The optional label column of a banded column ``c`` is ``c + LABEL_SUFFIX``.
LABEL_SUFFIX = "_区间"


def numbers(values: pd.Series) -> np.ndarray:
    """float64 values with NaN for null; text must parse as numbers (bad input is an error, not NaN), and
    every number be finite: an infinite age or income has no band (it overflowed the k-anonymity ladder)."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        raise TransformError(f"needs numbers, got {dtype}")
    if pd.api.types.is_numeric_dtype(dtype):
        return _finite(np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan)))
    text = str_series(nfkc(text_arrow(values)), values.index)
    parsed = pd.to_numeric(text.str.replace(",", "", regex=False).str.strip(), errors="coerce")
    bad = parsed.isna() & text.notna()
    if bad.any():
        raise TransformError(f"needs numbers, but {int(bad.sum())} values are not, e.g. {text[bad].iloc[0]!r}")
    return _finite(np.asarray(parsed.to_numpy(dtype=np.float64, na_value=np.nan)))


def _finite(v: np.ndarray) -> np.ndarray:
    infinite = np.isinf(v)
    if infinite.any():
        raise TransformError(
            f"needs finite numbers, but {int(infinite.sum())} values are infinite, the first in record "
            f"{int(np.flatnonzero(infinite)[0]) + 1:,}: leave an unknown value empty instead"
        )
    return v


@dataclass(frozen=True, slots=True)
class _Bands:
    """Per row the band's bounds [lo, hi) (NaN for null), which rows are coded, and the scheme."""

    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    bottom_coded: np.ndarray
    top_coded: np.ndarray
    bottom: float | None
    top: float | None
    integral: bool


def _whole(x: np.ndarray) -> bool:
    finite = x[np.isfinite(x)]
    return bool(np.all(np.floor(finite) == finite))


def _bands(
    values: pd.Series, width: float | None, edges: list[float] | None, bottom: float | None, top: float | None
) -> _Bands:
    if (width is None) == (edges is None):
        raise TransformError("band needs exactly one of width or edges")
    v = numbers(values)
    present = ~np.isnan(v)
    if edges is not None:
        bounds = np.asarray(edges, dtype=np.float64)
        integral = _whole(v) and _whole(bounds)
        position = np.clip(np.searchsorted(bounds, v, side="right") - 1, 0, len(bounds) - 2)
        lo, hi = bounds[position], bounds[position + 1]
        # Outside the edges there is no band: the first edge bottom-codes, the last top-codes.
        bottom = float(bounds[0]) if bottom is None else max(float(bounds[0]), bottom)
        top = float(bounds[-1]) if top is None else min(float(bounds[-1]), top)
    else:
        assert width is not None
        if width <= 0:
            raise TransformError(f"band width must be positive, not {width}")
        integral = _whole(v) and float(width).is_integer()
        lo = np.round(np.floor(v / width) * width, 10)
        hi = lo + width
    bottom_coded = present & (v < bottom) if bottom is not None else np.zeros(len(v), dtype=bool)
    top_coded = present & (v >= top) if top is not None else np.zeros(len(v), dtype=bool)
    lo = np.where(present, lo, np.nan)
    return _Bands(v, lo, np.where(present, hi, np.nan), bottom_coded, top_coded, bottom, top, integral)


def band(
    values: pd.Series,
    *,
    width: float | None = None,
    edges: list[float] | None = None,
    bottom: float | None = None,
    top: float | None = None,
) -> pd.Series:
    """Each number replaced by its band's midpoint (float64; nulls stay NaN).

    Bands are ``width`` wide starting at multiples of ``width``, or run between consecutive
    ``edges``. Values below ``bottom`` become ``bottom``, values at or above ``top`` become ``top``
    (top and bottom coding; outside the edges, the first / last edge). See the module docstring
    for the midpoint of whole-number bands.
    """
    return _midpoints(_bands(values, width, edges, bottom, top), values.index)


def _midpoints(b: _Bands, index: pd.Index) -> pd.Series:
    step = 1.0 if b.integral else 0.0
    mid = np.round((b.lo + b.hi - step) / 2.0, 10)
    if b.bottom is not None:
        mid = np.where(b.bottom_coded, b.bottom, mid)
    if b.top is not None:
        mid = np.where(b.top_coded, b.top, mid)
    return pd.Series(mid, index=index, dtype=np.float64)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def band_labels(
    values: pd.Series,
    *,
    width: float | None = None,
    edges: list[float] | None = None,
    bottom: float | None = None,
    top: float | None = None,
) -> pd.Series:
    """The band of each number as text: '30-34' (whole numbers), '[2.5, 5)' (fractions), '<1000', '≥20000'."""
    return _band_text(_bands(values, width, edges, bottom, top), values.index)


def _band_text(b: _Bands, index: pd.Index) -> pd.Series:
    key = np.where(b.bottom_coded, -np.inf, np.where(b.top_coded, np.inf, b.lo))
    upper = {float(lo): float(hi) for lo, hi in zip(b.lo[~np.isnan(b.lo)], b.hi[~np.isnan(b.lo)], strict=True)}

    def label(k: float) -> str:
        if k == -np.inf:
            return f"<{_number(b.bottom or 0)}"
        if k == np.inf:
            return f"≥{_number(b.top or 0)}"
        hi = upper[k]
        return f"{_number(k)}-{_number(hi - 1)}" if b.integral else f"[{_number(k)}, {_number(hi)})"

    return _labels(key, label, index)


def _labels(keys: np.ndarray, label: Callable[[float], str], index: pd.Index) -> pd.Series:
    """A label per key (NaN -> null), formatted once per distinct key."""
    codes, uniques = pd.factorize(keys)
    table = pa.array([label(float(u)) for u in uniques], type=pa.large_string())
    return str_series(table.take(take_indices(codes)), index)


def band_column(
    values: pd.Series,
    *,
    unit: str | None,
    label_column: str | None,
    width: float | None = None,
    edges: list[float] | None = None,
    bottom: float | None = None,
    top: float | None = None,
) -> tuple[pd.Series, dict[str, Any], pd.Series | None]:
    """The banded column (midpoints), how it reads for the report, and its label column if wanted.

    One pass over the values for all three. The representation states the width (or edges), the
    bottom and top codes and how many rows each coded, whether midpoints are those of whole
    numbers, and the label column's name (None: no label column).
    """
    b = _bands(values, width, edges, bottom, top)
    representation = {
        "kind": "midpoint",
        "unit": unit,
        "width": None if width is None else float(width),
        "edges": None if edges is None else [float(e) for e in edges],
        "whole_numbers": b.integral,
        "bottom_coded_below": b.bottom,
        "top_coded_at": b.top,
        "bottom_coded_rows": int(b.bottom_coded.sum()),
        "top_coded_rows": int(b.top_coded.sum()),
        "label_column": label_column,
    }
    labels = _band_text(b, values.index) if label_column is not None else None
    return _midpoints(b, values.index), representation, labels
