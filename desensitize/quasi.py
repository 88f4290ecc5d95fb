"""Quasi-identifiers by default in a personal table, and the custodian's rulings against them.

Why: a policy lists the types it knows as quasi-identifiers (birth date, gender, 户籍地 ...), but a
personal table carries more that a neighbour or a colleague knows. Issue 23 measured it: the
social-insurance copy kept 参保单位 verbatim and 参保日期 to the day, neither a quasi-identifier, and
94 % of its rows were unique on the two. GB/T 37964-2019 附录B applies the K-匿名模型 to the
attributes "that, combined with other data, can identify a person" (准标识符), not to a list
fixed in advance; 个人信息保护法 第七十三条 counts information as de-identified only when it
cannot identify a person *without additional information*, and a colleague's knowledge is such.
So in a table of a personal level (``desensitize.policy.PERSONAL_LEVELS``) a column is a
quasi-identifier by default, after its own rule, when it is still in the copy, is not a pseudonym
or a key the custodian kept, not free text, not a sensitive attribute of the policy (those are
l-diversity's target, not k-anonymity's), and is

* a **date** (``basis`` ``date``): datetime dtype, or text of which at least ``DATE_SHARE`` of the
  distinct values read as dates. It is first coarsened to the precision the policy allows
  (``Policy.dates``: L3 a month, written as its first day; L4 the year, an integer), then climbs
  the date ladder (year, 5/10/20-year band, ``*``);
* an **employer or organisation name** (``employer``): type ``company_name`` or a column named
  like 单位/公司/机构/employer; ladder name -> industry + size class -> industry -> ``*``
  (``desensitize.industries``);
* a **place** (``place``): types ``address``, ``household_region``, ``precise_location``
  (the address ladder: district, city, province, ``*``);
* any **high-cardinality** attribute (``high_cardinality``): a column the policy keeps as it is
  (action ``keep``) holding at least ``HIGH_CARDINALITY`` distinct values. Why 20 and why only kept
  columns: a column with fewer values (a status, a sex, a category of a dozen) splits a table of
  a few hundred rows into classes of tens that k-anonymity handles at no cost, while 20 values
  already make classes of 5 impossible in a table of under 100 rows; and a column that an
  explicit rule transformed (a name reduced to its surname, a phone masked) is governed by that
  rule and by the near-unique check (``desensitize.keys``), which make keys of what is still
  near-unique. Numbers climb bands of growing width (midpoints, numbers stay numbers, issue 16),
  text goes to ``*``.

These rules decide before k-anonymity, column by column. What they let through is measured on the data
afterwards (``desensitize.splits``, red team 23): any other kept column — a surname left by its mask,
a category of a few values, a birth month as an integer — that splits the final classes below k is a
quasi-identifier too (``basis`` ``splits classes``) and the search runs again with it.

The policy's own quasi-identifier types keep ``basis`` ``policy`` (a birth date among them is still
coarsened to ``Policy.dates`` first). The custodian may rule a default quasi-identifier out
(``not_quasi``: column -> reason), recorded in the report and the ledger like a kept key
(双鸭山市公共数据管理暂行办法 第三十五条: the custodian answers for the copy); a ruling cannot
remove a type the policy lists (that is the level's policy, changed only by ``keyong policy
propose``).

Imports nothing of Keyong outside ``desensitize``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from desensitize.errors import DesensitizeError
from desensitize.keys import visible_reason
from desensitize.policy import PERSONAL_LEVELS, Policy
from desensitize.splits import SPLITS

__all__ = [
    "BASES",
    "DATE_SHARE",
    "HIGH_CARDINALITY",
    "MAX_QUASI_IDENTIFIERS",
    "NOT_QUASI_REASON_CHARS",
    "PLACE_TYPES",
    "REPORT_QI_TYPES",
    "Found",
    "QuasiIdentifier",
    "RulingError",
    "check_not_quasi",
    "coarsen_date",
    "find_quasi_identifiers",
    "generalized_not_keyed",
    "is_date_column",
    "risk_columns",
]

#: Why a column is a quasi-identifier (report key ``basis``).
BASES = ("policy", "date", "employer", "place", "high_cardinality", SPLITS)
#: Distinct non-null values from which a kept column is a quasi-identifier (see the module docstring).
HIGH_CARDINALITY = 20
#: Most quasi-identifiers the k-anonymity search takes on. Its work grows about with the cube of their number
#: (every step tries each over keys of all): 27 / 52 / 102 of them took 0.2 / 1.3 / 10.7 s on 2,000 rows and
#: 9.3 s for 52 on 20,000 (bench/redteam23a_wide_qi.py), 300 took 230 s. Above it the desensitization is refused
#: naming the bound (red team 23a W: a wide file tied up a core for hours).
MAX_QUASI_IDENTIFIERS = 64
#: Share of a text column's distinct values that must read as dates for it to be a date.
DATE_SHARE = 0.9
#: Place types: quasi-identifiers by default, on the address ladder.
PLACE_TYPES = ("address", "household_region", "precise_location")
#: Types over which the risk is measured at every level, a policy without quasi-identifiers included
#: (L1/L2): the personal quasi-identifier types of the shipped L3/L4 policies (report only).
REPORT_QI_TYPES = ("birth_date", "age", "gender", "ethnicity", "household_region", "address")
#: Longest reason for ruling a column not a quasi-identifier (as ``registry.copies.KEEP_REASON_CHARS``).
NOT_QUASI_REASON_CHARS = 2000
#: Column names that say "employer or organisation" (单位, 公司, 机构 ... and English ones).
EMPLOYER_NAME = re.compile(r"单位|公司|机构|企业|雇主|employer|company|organi[sz]ation|workplace", re.IGNORECASE)
#: Column names that say "a code of it" (企业代码, 单位编号, company_id): an identifier, not a name.
CODE_NAME = re.compile(r"代码|编码|编号|号码|账号|证号|code|_?id$|number|\bno\b", re.IGNORECASE)
#: Text that reads as a date: 2024-03-05, 2024/3/5, 2024.03, 2024年3月5日, 20240305.
_DATE_TEXT = re.compile(
    r"^\s*(?:(?:1[89]|20)\d{2}\s*[-/.年]\s*\d{1,2}(?:\s*[-/.月]\s*\d{1,2}\s*日?)?\s*月?"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?|(?:1[89]|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))\s*$"
)
#: Distinct values looked at first (a column whose first ones do not read as dates is not parsed at all).
_DATE_PROBE = 200
_TEXT_SEPARATORS = re.compile(r"\s*[年月/.]\s*")


class RulingError(ValueError):
    """A custodian's ruling that cannot be applied (it names a type the policy lists as a quasi-identifier)."""


@dataclass(frozen=True, slots=True)
class QuasiIdentifier:
    """One quasi-identifier column: its PII type, the ladder it climbs and why it is one."""

    column: str
    pii_type: str | None
    ladder_type: str | None
    basis: str

    def as_report(self) -> dict[str, Any]:
        return {"basis": self.basis, "ladder_type": self.ladder_type}


def check_not_quasi(rulings: Mapping[str, str] | None, columns: Collection[str]) -> dict[str, str]:
    """The custodian's rulings (column -> reason), checked: a column of the table, a visible reason of
    at most ``NOT_QUASI_REASON_CHARS`` characters. ``KeyError`` / ``ValueError`` otherwise."""
    checked: dict[str, str] = {}
    for column, reason in (rulings or {}).items():
        if column not in columns:
            raise KeyError(f"a column ruled not a quasi-identifier must be a column of the table: {column!r} is not")
        if not visible_reason(reason):
            raise ValueError(f"ruling column {column!r} not a quasi-identifier needs a reason (it is ledgered)")
        text = reason.strip()
        if len(text) > NOT_QUASI_REASON_CHARS:
            raise ValueError(
                f"the reason for ruling column {column!r} not a quasi-identifier is {len(text)} characters; "
                f"at most {NOT_QUASI_REASON_CHARS} (it is ledgered with the copy)"
            )
        checked[column] = text
    return checked


def _date_text(values: pd.Series) -> pd.Series:
    """Text dates as datetimes (what does not read as one: NaT)."""
    text = values.astype("str").str.strip()
    eight = text.str.fullmatch(r"\d{8}")
    normal = text.str.replace("日", "", regex=False).str.replace(_TEXT_SEPARATORS, "-", regex=True).str.strip("-")
    normal = normal.where(~eight, text.str.slice(0, 4) + "-" + text.str.slice(4, 6) + "-" + text.str.slice(6, 8))
    normal = normal.where(normal.str.contains("-", regex=False), normal + "-01")
    parsed = pd.to_datetime(normal, errors="coerce", format="mixed")
    return parsed.where(values.notna())


def is_date_column(values: pd.Series, pii_type: str | None) -> bool:
    """Whether a column is a date: datetime dtype, type birth_date holding dates, or text mostly dates."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return True
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return False  # numbers stay numbers: a year is already as coarse as any policy allows
    distinct = pd.Series(values.dropna().unique())
    if distinct.empty:
        return False
    text = distinct.astype("str")
    if float(text.head(_DATE_PROBE).str.match(_DATE_TEXT).mean()) < DATE_SHARE:
        return False  # the first values already say no: names, codes, notes are not parsed as dates
    reads = text.str.match(_DATE_TEXT) & _date_text(text).notna()
    return float(reads.mean()) >= DATE_SHARE


def coarsen_date(values: pd.Series, precision: str) -> pd.Series:
    """A date column at ``precision`` (``Policy.dates``): a day or a month as a datetime (a month is its
    first day), a year as an integer (Int64; numbers stay numbers, issue 16). Text that does not read
    as a date becomes null (it is not kept finer than the policy allows)."""
    if precision not in ("day", "month", "year"):
        raise ValueError(f"unknown date precision {precision!r}")
    dates = values if pd.api.types.is_datetime64_any_dtype(values.dtype) else _date_text(values)
    dates = pd.to_datetime(dates)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    if precision == "year":
        return dates.dt.year.astype("Int64").rename(values.name)
    if not _within_nanoseconds(dates):
        return _coarsened_wide(dates, "M" if precision == "month" else "D").rename(values.name)
    if precision == "month":
        return dates.dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]").rename(values.name)
    return dates.dt.normalize().astype("datetime64[ns]").rename(values.name)


def _within_nanoseconds(dates: pd.Series) -> bool:
    """Whether every date fits pandas' nanosecond datetimes (1677-09-21 to 2262-04-11)."""
    present = dates.dropna()
    return present.empty or bool(present.min() >= pd.Timestamp.min and present.max() <= pd.Timestamp.max)


def _coarsened_wide(dates: pd.Series, step: str) -> pd.Series:
    """Dates outside the nanosecond range floored to the month (``M``) or day (``D``) by numpy's calendar
    arithmetic, in the unit they were read in. Red team 23a F10: 9999-12-31, the 长期 (valid for life) of an ID
    card's 有效期至 that real registers hold, overflowed the month coarsening's nanoseconds and was refused
    naming no column; dates within the range keep the nanosecond path (the copies' bytes are unchanged)."""
    unit = np.datetime_data(dates.dtype)[0]
    floored = dates.to_numpy(dtype=f"datetime64[{unit}]").astype(f"datetime64[{step}]").astype(f"datetime64[{unit}]")
    return pd.Series(floored, index=dates.index, name=dates.name)


def _finer_than(values: pd.Series, precision: str) -> bool:
    """Whether a date column holds anything finer than ``precision``."""
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        return True  # text dates and anything else: rewritten at the precision
    dates = pd.to_datetime(values.dropna())
    if precision == "day":
        return bool((dates != dates.dt.normalize()).any())
    if precision == "month":
        return bool((dates.dt.day != 1).any() or (dates != dates.dt.normalize()).any())
    return True  # a year is written as an integer


def _named_like_an_employer(column: str, values: pd.Series) -> bool:
    """An untyped text column named like an employer or organisation (单位, 公司 ...), not its code (企业代码)."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
        return False
    return bool(EMPLOYER_NAME.search(column)) and not CODE_NAME.search(column)


def _default_basis(values: pd.Series, pii_type: str | None, action: str, column: str) -> tuple[str, str] | None:
    """(basis, ladder type) of a column that is a quasi-identifier by default, or None."""
    if pii_type == "birth_date" or is_date_column(values, pii_type):
        return "date", "birth_date" if pii_type == "birth_date" else "date"
    if pii_type == "company_name" or (pii_type is None and _named_like_an_employer(column, values)):
        return "employer", "employer"
    if pii_type in PLACE_TYPES:
        return "place", pii_type if pii_type != "precise_location" else "address"
    if action == "keep" and int(values.nunique(dropna=True)) >= HIGH_CARDINALITY:
        numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
        return "high_cardinality", "number" if numeric else "text"
    return None


def _spec(
    values: pd.Series, column: str, pii_type: str | None, action: str, policy: Policy, settled: Collection[str]
) -> QuasiIdentifier | None:
    """Whether (and why) one transformed column is a quasi-identifier (see the module docstring)."""
    if pii_type is not None and pii_type in policy.quasi_identifiers:
        return QuasiIdentifier(column, pii_type, pii_type, "policy")
    if policy.level not in PERSONAL_LEVELS or column in settled:
        return None  # a key: a pseudonym, or a near-unique column the custodian kept with a reason
    if pii_type == "free_text" or action in ("redact_text", "pseudonymize"):
        return None
    if pii_type is not None and pii_type in policy.sensitive:
        return None  # l-diversity's target, not k-anonymity's
    basis = _default_basis(values, pii_type, action, column)
    return None if basis is None else QuasiIdentifier(column, pii_type, basis[1], basis[0])


def generalized_not_keyed(
    out: Mapping[str, pd.Series | None],
    types: Mapping[str, str | None],
    actions: Mapping[str, str],
    policy: Policy,
    not_quasi: Collection[str],
) -> set[str]:
    """Columns that the near-unique check (``desensitize.keys``) leaves alone: the default quasi-identifiers
    with a ladder of their own (dates, employers, places), not ruled out by the custodian.

    Why: k-anonymity generalizes them until every class has k rows; pseudonymizing them instead would
    keep the partition (a colleague counts the rows of an employer's pseudonym) and lose the values an
    analysis needs. A column ruled out is examined again, so a near-unique one still becomes a key
    (fail closed). High-cardinality columns are examined first: a near-unique one is a key.
    """
    exempt: set[str] = set()
    for column, values in out.items():
        if values is None or column in not_quasi:
            continue
        spec = _spec(values, column, types.get(column), actions.get(column, "keep"), policy, ())
        if spec is not None and spec.basis in ("date", "employer", "place"):
            exempt.add(column)
    return exempt


@dataclass(slots=True)
class Found:
    """The quasi-identifiers of a table, the frame with its dates coarsened, and the rulings' report."""

    frame: pd.DataFrame
    quasi_identifiers: dict[str, QuasiIdentifier]
    rulings: list[dict[str, Any]]
    coarsened: dict[str, str]


def find_quasi_identifiers(
    frame: pd.DataFrame,
    types: Mapping[str, str | None],
    actions: Mapping[str, str],
    policy: Policy,
    *,
    settled: Collection[str],
    not_quasi: Mapping[str, str],
) -> Found:
    """The quasi-identifiers of a transformed ``frame`` (see the module docstring).

    ``types``/``actions``: per input column its PII type and the action its rule applied;
    ``settled``: columns that are keys (pseudonyms, or near-unique columns the custodian kept);
    ``not_quasi``: the custodian's rulings, checked (``check_not_quasi``); ``RulingError`` for a ruling
    against a type the policy lists. Columns the transform added (a band's label) are not examined.
    """
    personal = policy.level in PERSONAL_LEVELS
    settled = frozenset(settled)
    found: dict[str, QuasiIdentifier] = {}
    rulings: list[dict[str, Any]] = []
    coarsened: dict[str, str] = {}
    out = frame
    for column in frame.columns:
        if column not in types:
            continue
        spec = _spec(frame[column], column, types[column], actions.get(column, "keep"), policy, settled)
        if spec is not None and spec.basis == "policy" and column in not_quasi:
            raise RulingError(
                f"column {column!r} is of type {spec.pii_type!r}, a quasi-identifier of the {policy.level} policy: a "
                "ruling cannot remove it (propose a policy instead: keyong policy propose)"
            )
        if column in not_quasi:
            rulings.append({"column": column, "reason": not_quasi[column], "was": None if spec is None else spec.basis})
            continue
        if spec is None:
            continue
        if personal and policy.dates is not None and spec.ladder_type in ("date", "birth_date"):
            values = out[column]
            if is_date_column(values, spec.pii_type) and _finer_than(values, policy.dates):
                out = out.copy() if out is frame else out
                out[column] = coarsen_date(values, policy.dates)
                coarsened[column] = policy.dates
        found[column] = spec
    _check_search_size(found)
    ruled = {r["column"] for r in rulings}
    # A ruling on a column the transform dropped (or a label's column) is recorded too: as asked, "was" null.
    rulings += [{"column": c, "reason": r, "was": None} for c, r in not_quasi.items() if c not in ruled]
    return Found(out, found, rulings, coarsened)


def _check_search_size(found: Mapping[str, QuasiIdentifier]) -> None:
    if len(found) > MAX_QUASI_IDENTIFIERS:
        names = ", ".join(repr(c) for c in list(found)[:8])
        raise DesensitizeError(
            f"the table has {len(found):,} quasi-identifiers ({names}, …); the k-anonymity search takes at most "
            f"{MAX_QUASI_IDENTIFIERS} (MAX_QUASI_IDENTIFIERS: its work grows with the cube of their number). Rule "
            "the columns that identify no one not quasi-identifiers (keyong dataset desensitize --not-quasi COL "
            "--reason TEXT), drop or grade them, or split the dataset into tables of related columns",
            stage="k-anonymity",
        )


def risk_columns(frame: pd.DataFrame, types: Mapping[str, str | None]) -> list[str]:
    """Columns over which the risk is reported when the policy names no quasi-identifier (L1/L2)."""
    return [c for c in frame.columns if types.get(c) in REPORT_QI_TYPES and bool(np.any(frame[c].notna()))]
