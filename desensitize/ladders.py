"""Generalization ladders of the quasi-identifier columns, the steps k-anonymity climbs.

Why apart from the search: the ladders say what a generalized copy holds (the values an analyst
computes with), the search (``desensitize.kanonymity``) only which rung each column stops on.
GB/T 37964-2019 附录A 泛化技术: each rung coarsens the previous one.

Ladders (each step coarsens the previous one):

* birth date: date -> year -> 5-year band -> 10-year band -> 20-year band -> ``*``, written as
  numbers: the year (Int64), then the band's first year (Int64; the width is in the report's
  ``representation``), ``*`` as null
* age: value -> 5-year band -> 10-year band -> 20-year band -> ``*``, written as the band's
  midpoint (float64: 30-34 -> 32.0, see ``desensitize.transforms.banding``), ``*`` as NaN
* address, 户籍地: as given -> district (区/县) -> city (市) -> province (省) -> ``*``
* ethnicity: value -> 汉族 / 少数民族 -> ``*``
* gender: never generalized (rows are suppressed instead)
* ladder type ``date`` (a date quasi-identifier by default, issue 23; ``desensitize.quasi``): as
  the birth date, from the precision the policy allows (a month, written as its first day, or a
  year) -> year -> 5/10/20-year band -> ``*``
* ladder type ``employer``: name -> industry + size class -> industry -> ``*``
  (``desensitize.industries``)
* ladder type ``number``: value -> bands of growing width (written as midpoints, float64) -> ``*``
* ladder type ``masked_name`` (the surname a name mask keeps, ``段**``, when it splits the classes:
  ``desensitize.splits``, red team 23 F1): value -> ``**`` (the name masked whole). No rung pools
  rare values first: the greedy search weighs one rung at a time, and a ladder of several pooling
  rungs made it blur every birth date rather than climb them (measured on the demo's residents)
* anything else (ladder type ``text``): value -> ``*``

Every ladder can be built again on its own output and continues coarsening from the rung the
values are on (a licence copy is derived from the base copy, never from raw data).

Why numbers: a copy is for analysis, and a mean age or a count by birth year needs numbers, not
labels such as '1960-1964'. Groups are formed on the values written, so two classes that read as
the same number (a year and a 5-year band starting that year) are one group, and a value that
cannot be read as a date or an age becomes null (suppressed) once its column is generalized.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.industries import employer_rungs
from desensitize.transforms import address_parts

__all__ = ["BAND_WIDTHS", "MASKED_WHOLE", "TOP", "Ladder", "build_ladder"]

#: Band widths (years) the birth-date and age ladders climb through.
BAND_WIDTHS = (5, 10, 20)
TOP = "*"
#: What the top of the ``masked_name`` ladder writes: the whole name masked.
MASKED_WHOLE = "**"


@dataclass(slots=True)
class Ladder:
    """The generalization levels of one column: per level a name, row codes and a label per code.

    Level 0 is the column as given; ``codes[i]`` holds, per row, the level-i category
    (nulls their own category, except at the top where everything is ``*``).
    """

    column: str
    pii_type: str | None
    names: list[str]
    codes: list[np.ndarray]
    cards: list[int]
    labels: list[list[Any]]  # per level >= 1: label per code (None for the null category)
    #: Per level >= 1: the dtype written ("float64" midpoints, "Int64" years; None: text labels).
    dtypes: list[str | None] = field(default_factory=list)
    #: Per level: how the written values read (see ``representation``); None for text and level 0.
    representations: list[dict[str, Any] | None] = field(default_factory=list)

    @property
    def top(self) -> int:
        return len(self.names) - 1

    def values(self, level: int, original: pd.Series) -> pd.Series:
        """The column at ``level``: the original values at 0, numbers (ages, birth dates) or text labels above."""
        if level == 0:
            return original
        dtype = self.dtypes[level] if level < len(self.dtypes) else None
        if dtype is not None:
            table = pd.array(self.labels[level], dtype="Float64" if dtype == "float64" else dtype)
            out = pd.Series(table.take(self.codes[level]), index=original.index)
            return out.astype(np.float64) if dtype == "float64" else out
        table = pa.array(self.labels[level], type=pa.large_string())
        return pd.Series(table.take(pa.array(self.codes[level])), index=original.index, dtype="str")

    def representation(self, level: int) -> dict[str, Any] | None:
        """How the column reads at ``level`` for the report (None: as given, or text labels)."""
        return self.representations[level] if level < len(self.representations) else None


def _level(codes0: np.ndarray, unique_labels: Sequence[Any], *, top: bool = False) -> tuple[np.ndarray, int, list[Any]]:
    """Row codes of one level from a label per distinct value (nulls: own code, or ``*`` at the top)."""
    if top:
        return np.zeros(len(codes0), dtype=np.int64), 1, [unique_labels[0] if len(unique_labels) else TOP]
    label_codes, label_uniques = pd.factorize(np.asarray(unique_labels, dtype=object))
    labels: list[Any] = [*label_uniques, None]
    # A null label (a value unreadable as a date or an age) joins the null code, as it is written.
    label_codes = np.where(label_codes < 0, len(labels) - 1, label_codes).astype(np.int64)
    mapping = np.append(label_codes, len(labels) - 1)  # index -1 (null) -> the null code
    return mapping[codes0], len(labels), labels


#: Ladder types written as years: the birth date, and any date quasi-identifier (issue 23).
_DATE_TYPES = frozenset({"birth_date", "date"})
_RANGE = re.compile(r"^\s*(\d{1,4})\s*-\s*(\d{1,4})\s*$")
_HALF_OPEN = re.compile(r"^\s*\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)\s*$")
_YEAR_AT_START = re.compile(r"^\s*((?:1[89]|20)\d{2})")


def _periods(uniques: pd.Index | pd.api.extensions.ExtensionArray, pii_type: str) -> list[tuple[float, float, str]]:
    """(start, width, label) per distinct value: width 0 for an exact date, 1 for a year or an age.

    Values that are neither (open-ended bands such as '≥80', text) get start NaN: they keep their
    own label up to the top.
    """
    index = pd.Index(uniques)
    if pd.api.types.is_datetime64_any_dtype(index.dtype):
        years = pd.DatetimeIndex(index).year
        return [
            (float(y), 0.0, str(v.date()) if hasattr(v, "date") else str(v)) for y, v in zip(years, index, strict=True)
        ]
    if pd.api.types.is_numeric_dtype(index.dtype) and not pd.api.types.is_bool_dtype(index.dtype):
        numbers = index.to_numpy(dtype=np.float64, na_value=np.nan)
        return [(float(x), 1.0, str(int(x)) if float(x).is_integer() else str(x)) for x in numbers]
    out: list[tuple[float, float, str]] = []
    for value in index:
        text = str(value)
        match = _RANGE.match(text)
        if match:
            lo, hi = int(match.group(1)), int(match.group(2))
            out.append((float(lo), float(hi - lo + 1), text))
            continue
        match = _HALF_OPEN.match(text)
        if match:
            lo_f, hi_f = float(match.group(1)), float(match.group(2))
            out.append((lo_f, hi_f - lo_f, text))
            continue
        match = _YEAR_AT_START.match(text) if pii_type in _DATE_TYPES else None
        if match:
            whole_year = text.strip() == match.group(1)
            out.append((float(match.group(1)), 1.0 if whole_year else 0.0, text))
            continue
        if pii_type == "age" and text.strip().isdigit():
            out.append((float(text), 1.0, text.strip()))
            continue
        out.append((math.nan, math.inf, text))
    return out


def _period_value(start: float, width: float, pii_type: str, whole: bool) -> float | int | None:
    """What a period is written as: its first year (birth date) or its midpoint (age); None if unknown."""
    if math.isnan(start):
        return None
    if pii_type in _DATE_TYPES:
        return int(start)
    return start + (max(width, 1.0) - 1.0) / 2.0 if whole else start + width / 2.0


def _period_steps(uniques: Any, pii_type: str) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """(name, value per distinct value, representation) of each level above the value itself."""
    periods = _periods(uniques, pii_type)
    known = [(s, w) for s, w, _ in periods if not math.isnan(s)]
    whole = all(float(s).is_integer() and (w == 0 or float(w).is_integer()) for s, w in known)
    steps: list[tuple[str, list[Any], dict[str, Any]]] = []
    if any(width == 0 for _, width, _ in periods):
        year_values = [None if math.isnan(s) else int(s) for s, _, _ in periods]
        steps.append(("year", year_values, {"kind": "year"}))
    for width in BAND_WIDTHS:
        values = [
            _period_value(s, w, pii_type, whole)
            if (math.isnan(s) or w >= width)
            else _period_value(math.floor(s / width) * width, width, pii_type, whole)
            for s, w, _ in periods
        ]
        if pii_type in _DATE_TYPES:
            representation: dict[str, Any] = {"kind": "band_start_year", "width": width}
        else:
            representation = {
                "kind": "midpoint",
                "unit": "year",
                "width": float(width),
                "edges": None,
                "whole_numbers": whole,
                "bottom_coded_below": None,
                "top_coded_at": None,
                "label_column": None,
            }
        steps.append((f"{width}-year band", values, representation))
    return steps


def _address_steps(uniques: Any) -> list[tuple[str, list[Any]]]:
    parts = address_parts(pd.Series(pd.Index(uniques).astype("str"), dtype="str"))
    province = pc.fill_null(pc.struct_field(parts, "province"), "").to_pylist()
    city = pc.fill_null(pc.struct_field(parts, "city"), "").to_pylist()
    district = pc.fill_null(pc.struct_field(parts, "district"), "").to_pylist()
    return [
        ("district", [(p + c + d) or TOP for p, c, d in zip(province, city, district, strict=True)]),
        ("city", [(p + c) or TOP for p, c in zip(province, city, strict=True)]),
        ("province", [p or TOP for p in province]),
    ]


_HAN = frozenset({"汉族", "汉"})
#: Band widths of a number ladder, as multiples of its base width (GB/T 37964-2019 附录A 泛化: each
#: rung merges whole bands of the one below, since every multiple divides the next).
_NUMBER_MULTIPLES = (1, 5, 25, 100)


def _nice(width: float) -> float:
    """The 1, 2 or 5 times a power of ten at or above ``width`` (bands a reader recognises)."""
    power = 10.0 ** math.floor(math.log10(width))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= width - 1e-12)


def _number_steps(uniques: Any) -> list[tuple[str, list[Any], dict[str, Any] | None]]:
    """Bands of growing width over a numeric column, written as midpoints (numbers stay numbers, issue 16).

    The base width is a "nice" fortieth of the 5-95 % range of the distinct values, so the first
    rung has some forty bands whatever the unit; each rung above widens it (``_NUMBER_MULTIPLES``).
    """
    numbers = pd.to_numeric(pd.Series(pd.Index(uniques).to_numpy()), errors="coerce").to_numpy(np.float64)
    finite = numbers[np.isfinite(numbers)]
    if len(finite) < 2:
        return []
    low, high = np.quantile(finite, [0.05, 0.95])
    span = float(high - low) or float(finite.max() - finite.min())
    if span <= 0:
        return []
    base = _nice(span / 40.0)
    steps: list[tuple[str, list[Any], dict[str, Any] | None]] = []
    for multiple in _NUMBER_MULTIPLES:
        width = base * multiple
        values = [None if not math.isfinite(x) else (math.floor(x / width) + 0.5) * width for x in numbers]
        representation = {
            "kind": "midpoint", "unit": None, "width": width, "edges": None, "whole_numbers": False,
            "bottom_coded_below": None, "top_coded_at": None, "label_column": None,
        }  # fmt: skip
        steps.append((f"band of {width:g}", values, representation))
    return steps


def build_ladder(values: pd.Series, pii_type: str | None, column: str | None = None) -> Ladder:
    """The generalization ladder of one quasi-identifier column (see the module docstring)."""
    codes0, uniques = pd.factorize(values)
    codes0 = codes0.astype(np.int64)
    n_unique = len(uniques)
    level0 = np.where(codes0 < 0, n_unique, codes0)
    ladder = Ladder(column or str(values.name), pii_type, ["value"], [level0], [n_unique + 1], [[]], [None], [None])
    # Ages and birth dates are written as numbers: float64 midpoints, Int64 years; ``*`` as null.
    dtype = {"age": "float64", "birth_date": "Int64", "date": "Int64", "number": "float64"}.get(pii_type or "")
    steps: list[tuple[str, list[Any], dict[str, Any] | None]]
    if pii_type == "gender":
        steps = []
    elif pii_type in ("birth_date", "age", "date"):
        steps = list(_period_steps(uniques, pii_type))
    elif pii_type == "employer":
        counts = np.bincount(codes0[codes0 >= 0], minlength=n_unique) if n_unique else np.zeros(0, np.int64)
        with_size, industries = employer_rungs(list(uniques), counts.tolist())
        steps = [("industry + size class", with_size, None), ("industry", industries, None)]
    elif pii_type == "number":
        steps = _number_steps(uniques)
    elif pii_type in ("address", "household_region"):
        steps = [(name, labels, None) for name, labels in _address_steps(uniques)] if n_unique else []
    elif pii_type == "ethnicity":
        steps = [("汉族/少数民族", ["汉族" if str(u).strip() in _HAN else "少数民族" for u in uniques], None)]
    else:
        steps = []
    if pii_type != "gender":
        top_label = MASKED_WHOLE if pii_type == "masked_name" else TOP
        steps.append((TOP, [top_label] * n_unique, {"kind": "suppressed", "value": None} if dtype else None))
    distinct_before = n_unique
    for name, unique_labels, representation in steps:
        top = name == TOP
        level_codes, card, level_labels = _level(codes0, unique_labels, top=top)
        distinct = card if top else card - 1
        if not top and distinct >= distinct_before:
            continue  # not coarser than the level below: the same partition, skip it
        ladder.names.append(name)
        ladder.codes.append(level_codes)
        ladder.cards.append(card)
        ladder.labels.append([None] if top and dtype else level_labels)
        ladder.dtypes.append(dtype)
        ladder.representations.append(representation)
        distinct_before = distinct
    return ladder
