"""One rule of a policy applied to one column, and the rule as the report shows it.

Why one dispatcher: the pipeline asks for an action by its policy name and gets the column back
(or None when dropped); errors name the column, its type and the action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import pyarrow as pa

from desensitize.policy import Rule
from desensitize.transforms.arrow import as_text
from desensitize.transforms.errors import TransformError
from desensitize.transforms.generalization import band, date_band, date_year, generalize_address, round_values
from desensitize.transforms.masking import mask, mask_name
from desensitize.transforms.pseudonyms import pseudonymize
from desensitize.transforms.randomization import randomize

__all__ = ["TextRedactor", "apply_rule", "describe", "redact_text"]

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
        if action == "date_band":
            return date_band(values, **params)
        if action == "band":
            return band(values, **params)
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
