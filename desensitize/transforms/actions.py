"""One rule of a policy applied to one column, and the rule as the report shows it.

Why one dispatcher: the pipeline asks for an action by its policy name and gets the column back
(or None when dropped); errors name the column, its type and the action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from desensitize.policy import Rule
from desensitize.transforms.arrow import as_text
from desensitize.transforms.banding import LABEL_SUFFIX, band, band_column
from desensitize.transforms.dates import date_band, date_month, date_year
from desensitize.transforms.errors import TransformError
from desensitize.transforms.generalization import generalize_address, round_values
from desensitize.transforms.masking import mask, mask_name
from desensitize.transforms.pseudonyms import pseudonymize
from desensitize.transforms.randomization import randomize

__all__ = ["TextRedactor", "Transformed", "apply_rule", "describe", "redact_text", "transform_column"]

TextRedactor = Callable[..., pd.Series]


def redact_text(
    values: pd.Series, *, redactor: TextRedactor | None = None, names: Iterable[str] = (), keys: Iterable[str] = ()
) -> pd.Series:
    """Each entity in each text replaced by its type (``<CN_MOBILE>``, ``<PERSON>`` …).

    ``redactor`` defaults to ``desensitize.textscan.redact`` (presidio recognizers for Chinese
    identifiers), imported here so that this module does not depend on it at import time. ``names``
    are the person names of the dataset's own name columns: a name in a 备注 is found even when no
    pattern could find it. ``keys`` are the raw values of the table's near-unique columns
    (``desensitize.keys``), which become ``<KEY>``; a redactor is given ``keys=`` only when there are
    some, and one that does not accept them fails (TypeError) rather than leave them in the text.
    """
    if redactor is None:
        from desensitize.textscan import redact

        redactor = redact
    text = as_text(values)
    keys = tuple(keys)
    redacted = redactor(text, names=names, keys=keys) if keys else redactor(text, names=names)
    if len(redacted) != len(values):
        raise TransformError(f"the text redactor returned {len(redacted)} values for {len(values)}")
    out = pd.Series(redacted, dtype="str").set_axis(values.index)
    return out.where(text.notna())


def apply_rule(
    values: pd.Series,
    rule: Rule,
    *,
    pii_type: str | None,
    pepper: bytes,
    column: str,
    text_redactor: TextRedactor | None = None,
    names: Iterable[str] = (),
    keys: Iterable[str] = (),
) -> pd.Series | None:
    """The column after ``rule``; None when the rule drops it. Never modifies ``values``."""
    action, params = rule.action, rule.params
    family = pii_type if pii_type is not None else f"untyped:{column}"
    try:
        if action == "keep":
            return values.copy()
        if action == "drop":
            return None
        if action == "pseudonymize":
            return pseudonymize(values, pepper=pepper, family=family)
        if action == "mask":
            return mask(values, family=pii_type, **params)
        if action == "mask_name":
            return mask_name(values, **params)
        if action == "generalize_address":
            return generalize_address(values, **params)
        if action == "date_year":
            return date_year(values)
        if action == "date_month":
            return date_month(values)
        if action == "date_band":
            return date_band(values, **params)
        if action == "band":
            return band(values, **{k: v for k, v in params.items() if k != "label"})
        if action == "round":
            return round_values(values, **params)
        if action == "randomize":
            return randomize(values, pepper=pepper, column=column, **params)
        if action == "redact_text":
            return redact_text(values, redactor=text_redactor, names=names, keys=keys)
    except TransformError as exc:
        raise TransformError(f"column {column!r} ({pii_type or 'unrecognised'}): action {action!r}: {exc}") from None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as exc:
        raise TransformError(
            f"column {column!r} ({pii_type or 'unrecognised'}) of dtype {values.dtype}: action {action!r} "
            f"does not apply: {exc}"
        ) from None
    raise TransformError(f"column {column!r}: unknown action {action!r}")


def describe(rule: Rule) -> dict[str, Any]:
    """The rule as the report shows it: action, completed params, technique and basis."""
    return {"action": rule.action, "params": dict(rule.params), "technique": rule.technique, "basis": rule.basis}


#: The unit of a banded column's numbers, by column type (None: the report cannot say).
_UNITS = {"age": "year", "income": "yuan"}


@dataclass(slots=True)
class Transformed:
    """One column after its rule: the values (None: dropped), how they read, and any added columns.

    ``representation`` is what the report states for generalized numbers and dates (BRIEF: the
    band width, the top and bottom codes, a year or a band's first year), None for the other
    actions; ``extra`` holds added columns by name (a band's optional label column).
    """

    values: pd.Series | None
    representation: dict[str, Any] | None = None
    extra: dict[str, pd.Series] = field(default_factory=dict)


def _date_representation(rule: Rule) -> dict[str, Any] | None:
    if rule.action == "date_year":
        return {"kind": "year"}
    if rule.action == "date_month":
        return {"kind": "month"}
    if rule.action == "date_band":
        return {"kind": "band_start_year", "width": int(rule.params["width"])}
    return None


def transform_column(
    values: pd.Series,
    rule: Rule,
    *,
    pii_type: str | None,
    pepper: bytes,
    column: str,
    text_redactor: TextRedactor | None = None,
    names: Iterable[str] = (),
    keys: Iterable[str] = (),
) -> Transformed:
    """:func:`apply_rule` with the representation the report states and the columns the rule adds.

    A band computes its midpoints, its representation and its label column in one pass.
    """
    if rule.action != "band":
        out = apply_rule(
            values, rule, pii_type=pii_type, pepper=pepper, column=column, text_redactor=text_redactor, names=names,
            keys=keys,
        )  # fmt: skip
        return Transformed(out, _date_representation(rule))
    params = {k: v for k, v in rule.params.items() if k != "label"}
    label_column = f"{column}{LABEL_SUFFIX}" if rule.params.get("label") else None
    try:
        mid, representation, labels = band_column(
            values, unit=_UNITS.get(pii_type or ""), label_column=label_column, **params
        )
    except TransformError as exc:
        raise TransformError(f"column {column!r} ({pii_type or 'unrecognised'}): action 'band': {exc}") from None
    extra = {label_column: labels} if label_column is not None and labels is not None else {}
    return Transformed(mid, representation, extra)
