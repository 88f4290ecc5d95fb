"""Reading a desensitized copy's columns as numbers and group values, for both DP programs.

A copy holds bands ("6000-6999", "[2.5, 5)"), top and bottom codes ("≥20000"), dates and plain
numbers side by side; a DP aggregate needs one number per cell and an exact string per group value.
Runs inside the sandbox like the programs (stdlib + pandas/numpy only, no Keyong code): the host
mounts this file next to ``dp_query.py`` and ``dp_train.py`` under ``/job/``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["group_strings", "numeric_values"]

# --------------------------------------------------------------------------- reading columns

# A desensitized band "lo-hi" ("6000-6999", "1950-1959", "-10--5"); dates are tried first so that
# "2017-03" is March 2017 and not a band.
_BAND = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")
# The desensitizer's other band forms: "[2.5, 5)" for fractions, and the top / bottom codes "≥20000", "<3000".
_HALF_OPEN = re.compile(r"^\s*\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)\s*$")
_CODED = re.compile(r"^\s*(?:≥|>=|<)\s*(-?\d+(?:\.\d+)?)\s*$")
_DATE = re.compile(r"^\s*(\d{4})-(\d{1,2})(?:-(\d{1,2}))?\s*$")


def _decimal_year(timestamps: pd.Series) -> np.ndarray:
    """2017-03-21 -> 2017 + (day_of_year - 1) / days_in_year; NaT -> NaN."""
    year = timestamps.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    day = timestamps.dt.day_of_year.to_numpy(dtype=np.float64, na_value=np.nan)
    leap = timestamps.dt.is_leap_year.to_numpy(dtype=bool, na_value=False)
    return np.asarray(year + (day - 1.0) / np.where(leap, 366.0, 365.0))


def _parse_texts(texts: pd.Series) -> np.ndarray:
    """Numbers for distinct strings (dates, then bands, then plain numbers); NaN where none applies."""
    out = np.full(len(texts), np.nan)
    text = texts.astype("string")

    date = text.str.extract(_DATE)
    is_date = date[0].notna().to_numpy(dtype=bool)
    if is_date.any():
        parts = date[is_date]
        ymd = {"year": pd.to_numeric(parts[0]), "month": pd.to_numeric(parts[1]), "day": pd.to_numeric(parts[2])}
        stamps = pd.to_datetime(pd.DataFrame({**ymd, "day": ymd["day"].fillna(1)}), errors="coerce")
        out[is_date] = _decimal_year(stamps)

    is_band = np.zeros(len(texts), dtype=bool)
    for pattern in (_BAND, _HALF_OPEN):
        band = text.str.extract(pattern)
        lo = pd.to_numeric(band[0], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        hi = pd.to_numeric(band[1], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        found = ~is_date & ~is_band & ~np.isnan(lo) & ~np.isnan(hi) & (lo <= hi)
        out[found] = (lo[found] + hi[found]) / 2.0
        is_band |= found
    # A top- or bottom-coded band is read at its edge (the bounds clip it anyway): biased towards the
    # middle, never beyond what the band says.
    edge = pd.to_numeric(text.str.extract(_CODED)[0], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    coded = ~is_date & ~is_band & ~np.isnan(edge)
    out[coded] = edge[coded]
    is_band |= coded

    rest = ~is_date & ~is_band
    if rest.any():
        cleaned = text[rest].str.strip().str.replace(",", "", regex=False)
        plain = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        out[rest] = np.where(np.isfinite(plain), plain, np.nan)
    return out


def numeric_values(series: pd.Series) -> np.ndarray:
    """A column as float64, NaN where it cannot be read as a number.

    Numbers stay numbers; datetimes and "YYYY-MM-DD" / "YYYY-MM" strings become decimal years; a
    desensitizer's band "lo-hi" or "[lo, hi)" becomes its midpoint, a top / bottom code "≥X" / "<X"
    its edge X; plain numeric strings are parsed. Strings are
    parsed once per distinct value (a 1M-row copy has few distinct bands or dates), all vectorized.
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
    if pd.api.types.is_numeric_dtype(dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isfinite(values), values, np.nan)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _decimal_year(series)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) == 0:
        return np.full(len(series), np.nan)
    if isinstance(dtype, pd.StringDtype):
        texts = pd.Series(uniques, dtype="string")
    else:  # object columns may mix numbers, dates and strings: one Python call per distinct value
        texts = pd.Series(np.asarray(uniques, dtype=object)).map(_as_text)
    parsed = _parse_texts(texts)
    return np.where(codes >= 0, parsed[np.maximum(codes, 0)], np.nan)


def _as_text(value: Any) -> str:
    """One distinct cell as text: mixed object columns may hold numbers or dates next to strings."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return str(value.strftime("%Y-%m-%d"))
    return str(value)


def group_strings(series: pd.Series) -> pd.Series:
    """Cells as the strings group values are compared with: ``str(value)``, 1.0 read as "1", null stays null."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    texts = np.array([_as_text(u) for u in uniques] + [None], dtype=object)
    return pd.Series(texts[codes], index=series.index, dtype=object)
