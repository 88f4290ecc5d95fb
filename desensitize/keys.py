"""Near-unique columns of a personal table are keys: found on the copy's values, then pseudonymized.

Why: a column whose values each belong to one row links that row back to a person through a public
register — the 统一社会信用代码 of the business a resident represents, an order, account, licence or
plate number, an integer id — whatever type the profiler gave it (or none). Such a value makes the
row identifiable "借助额外信息" (个人信息保护法 第七十三条(四)), so in a table of personal information
(L3/L4, 第四条 and 第二十八条) it is treated as an identifier: pseudonymized with the instance key
(GB/T 37964-2019 附录A 假名化), the same function and family as the policy's own pseudonyms
(``desensitize.transforms.pseudonyms``, so the guard's fingerprints cover them), or dropped (抑制) if
the policy says so. The same values are redacted from the table's free text (``desensitize.literals``).

Definition (``Policy.near_unique``): the column's *singled-out share* is the share of its rows
holding something whose value — after the column's own rule, since that is what the copy holds — is
held by fewer than ``group`` rows of the column (``group`` = 2: a value of its own, sdcMicro's sample
uniques taken per column). The column is near-unique when that share is *more than* ``share``. A
share of rows is what the issue asks ("identify more than a share of rows") and, unlike
distinct/non-null, it is not raised by a few values shared by many rows nor lowered by a long tail
of singletons. Rows holding nothing — nulls, blank or whitespace-only strings — identify nobody and
are not counted. *Fillers* do not dilute it either, whatever they are written as ("无", "-", "0"),
one or several: values held by at least ``FILLER_SHARE`` of the rows (and ``MIN_REST_ROWS`` rows) are
left out when at least ``MIN_REST_ROWS`` rows hold something else — the residents table where most
people have no enterprise code but each representative has their own is a key.

Which columns are examined — every column except those already handled by a stricter rule:

* dropped or pseudonymized by the policy; free text (redacted; type ``free_text`` or ``redact_text``);
* quasi-identifiers of the policy (generalized by k-anonymity, ``desensitize.kanonymity``, and
  measured against the level's risk threshold, ``desensitize.risk``);
* numbers with noise added by ``randomize`` (their values are not the raw ones any register holds).

Columns the policy itself generalizes (band, round, a date to its year, month or band, an address to
its division) are examined on their values after the rule: an income rounded to 100 among 400
people is still one per row, and nothing else measures a column that is not a quasi-identifier.
Such a column is coarsened further while it stays numeric — its rounding step or band width doubled,
at most ``MAX_DOUBLINGS`` times (report: action ``generalize``, ``to`` the width) — and
pseudonymized when no width settles it or it has none (fail closed). A generalized column of fewer
than ``MIN_GENERALIZED_ROWS`` values is not examined: in a handful of rows every band is one row's.

Masked columns are examined on their masked values: 138****5678 is still near-unique in a table of
a few thousand people and is then pseudonymized (fail closed); 张** is not. Exact amounts (a float
measure) are examined like anything else: a near-unique amount IS a linkage key; a custodian who
needs it classifies the column (e.g. ``income``, rounded or banded) or keeps it with a reason.
Dates are generalized rather than hashed, because a keyed hash of a date serves no analysis: a
near-unique date column becomes the first day of its month, then its year (an integer), and is
pseudonymized only if even the year is near-unique (GB/T 37964-2019 泛化; the representation keys
follow the report contract of numeric generalization).

Dates, employer names and places of a personal table are quasi-identifiers by default (issue 23,
``desensitize.quasi``): k-anonymity generalizes them, so they are not made keys here (``exempt``);
when near-unique they are reported (action ``quasi_identifier``) and their raw values are redacted
from the free text all the same. A custodian who rules one not a quasi-identifier has it examined
here like any other column.

The custodian can keep a near-unique column with a reason (``keep``: column -> reason), recorded in
the report and, by the registry, in the ledger.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from desensitize.policy import NearUnique, Policy, Rule
from desensitize.transforms import as_text, date_month, date_year, describe, pseudonymize, transform_column

__all__ = [
    "BLANK_CHARACTERS",
    "FILLER_SHARE",
    "MAX_DOUBLINGS",
    "MIN_GENERALIZED_ROWS",
    "MIN_REST_ROWS",
    "KeyColumn",
    "check_keep",
    "date_renderings",
    "find_keys",
    "key_literals",
    "singled_out_share",
    "visible_reason",
]


@dataclass(slots=True)
class KeyColumn:
    """A near-unique column and what it became."""

    column: str
    #: The column as it goes into the copy; None when dropped.
    values: pd.Series | None
    #: ``report["columns"][i]["near_unique"]``.
    near_unique: dict[str, Any]
    #: The column report's action, params, technique and basis after this decision (None: unchanged).
    rule: dict[str, Any] | None = None
    #: ``report["columns"][i]["representation"]`` for a generalized date.
    representation: dict[str, Any] | None = None
    #: Whether the copy's column holds pseudonyms (for the guard's fingerprints).
    pseudonyms: bool = False

    @property
    def redact_from_text(self) -> bool:
        """Whether the raw values are removed from free text (not when the custodian kept the column)."""
        return bool(self.near_unique["action"] != "kept")


#: Fewest rows the rest of a column (its rows without the filler) must hold for the filler rule to apply:
#: below it a rare category (one "是" among "否") would make a flag column a key.
MIN_REST_ROWS = 10
#: Share of the rows from which a value held by that many is a filler, not counted (``singled_out_share``).
FILLER_SHARE = 0.05


def _non_null_codes(values: pd.Series) -> np.ndarray:
    """Factorized codes of the rows that hold something: nulls and blank or whitespace-only strings
    (a placeholder identifies nobody, as a null does not) are left out. Only the distinct values are
    looked at in Python."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if values.dtype.kind not in "biufcmM":
        distinct = np.asarray(uniques, dtype=object)
        blank = np.fromiter((isinstance(u, str) and not u.strip() for u in distinct), dtype=bool, count=len(distinct))
        if blank.any():
            codes = np.where(blank[np.maximum(codes, 0)] & (codes >= 0), -1, codes)
    held: np.ndarray = codes[codes >= 0]
    return held


def singled_out_share(values: pd.Series, group: int = 2, share: float = 0.5) -> float:
    """Share of the rows holding something whose value fewer than ``group`` rows of the column hold.

    Rows holding nothing — nulls and blank/whitespace strings — are not counted. *Fillers* are not
    counted either: values each held by at least ``FILLER_SHARE`` of those rows and by at least
    ``MIN_REST_ROWS`` rows, provided ``MIN_REST_ROWS`` rows hold something else. "无", "-", "0" or
    any other placeholder written instead of a null — one or several (180 "无" and 140 "-" beside 80
    enterprise codes; red team 16b) — would otherwise dilute a key below the threshold: the residents
    table where most people have no enterprise code but each representative has their own. A
    category held by many rows identifies nobody, so leaving it out changes nothing for a plain
    categorical column. 0.0 when no row holds anything.
    """
    codes = _non_null_codes(values)
    if len(codes) == 0:
        return 0.0
    counts = np.bincount(codes)
    filler = counts >= max(MIN_REST_ROWS, FILLER_SHARE * len(codes))
    rest = ~filler[codes]
    if filler.any() and np.count_nonzero(rest) >= MIN_REST_ROWS:
        codes = codes[rest]
    return float(np.count_nonzero(counts[codes] < group) / len(codes))


def check_keep(keep: Mapping[str, str] | None, columns: pd.Index | Collection[str]) -> dict[str, str]:
    """The custodian's kept columns, checked: each names a column of the table and has a reason."""
    checked: dict[str, str] = {}
    for column, reason in (keep or {}).items():
        if column not in columns:
            raise KeyError(f"a kept column must be a column of the table: {column!r} is not")
        if not visible_reason(reason):
            raise ValueError(f"keeping near-unique column {column!r} needs a reason (it is ledgered)")
        checked[column] = reason.strip()
    return checked


#: Characters of a printing category (letters, symbols) that render as blank space: the Hangul fillers
#: (U+115F, U+1160, U+3164, U+FFA0), the braille blank (U+2800), the Khmer inherent vowels (U+17B4/5)
#: and the object replacement character (red team 23 F6: a ruling with a reason no reader could see).
BLANK_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5\ufffc")


def visible_reason(reason: object) -> bool:
    """Whether ``reason`` says something a reader can see: at least one letter, digit, punctuation or
    symbol that prints. Not only whitespace, zero-width or other invisible format characters (a reason
    of one U+200B kept a key verbatim; red team 16b), nor only blank-rendering letters
    (``BLANK_CHARACTERS``) or combining marks with nothing to combine with (red team 23 F6)."""
    if not isinstance(reason, str):
        return False
    return any(
        not ch.isspace() and unicodedata.category(ch)[0] not in "CZM" and ch not in BLANK_CHARACTERS for ch in reason
    )


#: Actions after which a column is not examined (see the module docstring).
_SETTLED = frozenset({"drop", "pseudonymize", "redact_text"})
#: Generalizations, examined on their values after the rule (see the module docstring).
_GENERALIZED = frozenset({"band", "round", "date_year", "date_month", "date_band", "generalize_address"})
#: Fewest rows holding a value for a generalized column to be examined: in a table of a handful of
#: rows every band is one row's, and coarsening until it is not would leave one band for all.
MIN_GENERALIZED_ROWS = 20
#: How many times a near-unique rounded or banded column's width is doubled before it is pseudonymized.
MAX_DOUBLINGS = 10


def _examined(pii_type: str | None, action: str, values: pd.Series | None, policy: Policy) -> bool:
    """Whether a column is examined at all (see the module docstring for the exceptions)."""
    if values is None or action in _SETTLED or pii_type == "free_text":
        return False
    if pii_type is not None and pii_type in policy.quasi_identifiers:
        return False
    if action in _GENERALIZED and int(values.notna().sum()) < MIN_GENERALIZED_ROWS:
        return False
    return not (action == "randomize" and bool(pd.api.types.is_numeric_dtype(values.dtype)))


def _coarser_dates(values: pd.Series) -> Iterator[tuple[str, Rule, pd.Series]]:
    """A date column at the first day of its month, then as its year (nullable integer): the policy's
    own ``date_month`` and ``date_year`` (``desensitize.transforms.dates``)."""
    yield "month", Rule(action="date_month"), date_month(values)
    yield "year", Rule(action="date_year"), date_year(values)


def _coarsened(
    column: str, pii_type: str | None, raw: pd.Series, rule: Rule, near: NearUnique, pepper: bytes, base: dict[str, Any]
) -> KeyColumn | None:
    """A near-unique rounded (banded by width) column with its width doubled until it singles out no
    more than the threshold's share, at most ``MAX_DOUBLINGS`` times; None when no width does or the
    rule has no width (a band by edges): the caller pseudonymizes (fail closed)."""
    name = "to" if rule.action == "round" else "width"
    width = rule.params.get(name) if rule.action in {"round", "band"} else None
    if width is None:
        return None
    for _ in range(MAX_DOUBLINGS):
        width = float(width) * 2
        wider = Rule(action=rule.action, params={**rule.params, name: width})
        out = transform_column(raw, wider, pii_type=pii_type, pepper=pepper, column=column)
        after = singled_out_share(out.values, near.group, near.share)
        if after <= near.share:
            near_unique = {**base, "action": "generalize", "to": width, "share_after": round(after, 4)}
            return KeyColumn(column, out.values, near_unique, rule=describe(wider), representation=out.representation)
    return None


def _decide(
    column: str,
    pii_type: str | None,
    raw: pd.Series,
    copy: pd.Series,
    share: float,
    rule: NearUnique,
    pepper: bytes,
    policy_rule: Rule,
) -> KeyColumn:
    """What a near-unique column (not kept) becomes: a coarser number or date, else pseudonyms or nothing."""
    base = {"share": round(share, 4), "threshold": rule.share, "group": rule.group, "reason": None}
    if (coarser_number := _coarsened(column, pii_type, raw, policy_rule, rule, pepper, base)) is not None:
        return coarser_number
    if pd.api.types.is_datetime64_any_dtype(copy.dtype):
        for to, generalized, coarser in _coarser_dates(copy):
            after = singled_out_share(coarser, rule.group, rule.share)
            if after <= rule.share:
                return KeyColumn(
                    column,
                    coarser,
                    {**base, "action": "generalize", "to": to, "share_after": round(after, 4)},
                    rule=describe(generalized),
                    representation={"kind": to},
                )
    if rule.action == "drop":
        return KeyColumn(column, None, {**base, "action": "drop"}, rule=describe(Rule(action="drop")))
    family = pii_type if pii_type is not None else f"untyped:{column}"  # as desensitize.transforms.apply_rule
    return KeyColumn(
        column,
        pseudonymize(raw, pepper=pepper, family=family),
        {**base, "action": "pseudonymize"},
        rule=describe(Rule(action="pseudonymize")),
        pseudonyms=True,
    )


def find_keys(
    raw: pd.DataFrame,
    copy: Mapping[str, pd.Series | None],
    types: Mapping[str, str | None],
    actions: Mapping[str, str],
    policy: Policy,
    *,
    pepper: bytes,
    keep: Mapping[str, str] | None = None,
    exempt: Collection[str] = (),
) -> list[KeyColumn]:
    """The near-unique columns among ``copy`` (column -> values after its rule, None if dropped).

    ``actions`` are the policy's action per column; ``keep`` the custodian's kept columns with their
    reasons (checked by ``check_keep``); ``exempt`` columns that are quasi-identifiers by default
    (dates, employers, places: ``desensitize.quasi``), generalized by k-anonymity as the policy's own
    quasi-identifier types are, never made keys nor kept: a near-unique one is reported with action
    ``quasi_identifier`` and its raw values still leave the free text. Empty when the policy has no
    ``near_unique`` rule.
    """
    rule = policy.near_unique
    if rule is None:
        return []
    kept = check_keep(keep, raw.columns)
    found: list[KeyColumn] = []
    for column, values in copy.items():
        pii_type = types.get(column)
        if values is None or (column not in exempt and not _examined(pii_type, actions[column], values, policy)):
            continue
        share = singled_out_share(values, rule.group, rule.share)
        if share <= rule.share:
            continue
        if column in exempt:  # generalized by k-anonymity; its raw values still leave the free text
            near_unique = {"share": round(share, 4), "threshold": rule.share, "group": rule.group, "reason": None}
            found.append(KeyColumn(column, values, {**near_unique, "action": "quasi_identifier"}))
            continue
        if column in kept:
            near_unique = {"share": round(share, 4), "threshold": rule.share, "group": rule.group}
            found.append(KeyColumn(column, values, {**near_unique, "action": "kept", "reason": kept[column]}))
            continue
        policy_rule = policy.rule_for(pii_type)
        found.append(_decide(column, pii_type, raw[column], values, share, rule, pepper, policy_rule))
    return found


def date_renderings(values: pd.Series) -> set[str]:
    """How a person writes the column's dates in a note, beside ``as_text``'s ``2023-10-24 04:46:47``.

    With a time: ``2023-10-24T04:46:47``, ``2023/10/24 04:46:47``, ``2023年10月24日4时46分47秒`` and
    ``2023年10月24日 04:46:47`` (month and day with and without their zero); at day precision (every
    value at midnight): ``2023-10-24``, ``2023/10/24``, ``2023年10月24日`` (both ways), ``20231024``.
    A near-unique timestamp generalized to its month in the column still links the row if the note
    repeats it in any of these forms (个人信息保护法 第七十三条(四)).
    """
    stamps = pd.DatetimeIndex(pd.Series(values).dropna().unique())
    if stamps.tz is not None:
        stamps = stamps.tz_localize(None)
    if len(stamps) == 0:
        return set()
    day = bool((stamps == stamps.normalize()).all())
    parts = zip(stamps.year, stamps.month, stamps.day, stamps.hour, stamps.minute, stamps.second, strict=True)
    out: set[str] = set()
    for y, m, d, hh, mm, ss in parts:
        ymd = f"{y:04d}-{m:02d}-{d:02d}"
        chinese = (f"{y}年{m}月{d}日", f"{y}年{m:02d}月{d:02d}日")
        if day:
            out.update((ymd, ymd.replace("-", "/"), ymd.replace("-", ""), *chinese))
            continue
        time = f"{hh:02d}:{mm:02d}:{ss:02d}"
        out.update((f"{ymd} {time}", f"{ymd}T{time}", f"{ymd.replace('-', '/')} {time}"))
        for c in chinese:
            out.update((f"{c}{hh}时{mm}分{ss}秒", f"{c}{hh:02d}时{mm:02d}分{ss:02d}秒", f"{c} {time}"))
    return out


def key_literals(raw: pd.DataFrame, keys: list[KeyColumn]) -> tuple[str, ...]:
    """The distinct raw values (as text) of the key columns whose values leave the free text too; a
    date column's values in each of their common renderings (``date_renderings``)."""
    values: set[str] = set()
    for key in keys:
        if key.redact_from_text:
            values.update(as_text(raw[key.column]).dropna().unique().tolist())
            if pd.api.types.is_datetime64_any_dtype(raw[key.column].dtype):
                values.update(date_renderings(raw[key.column]))
    return tuple(sorted(values))
