"""The one definition of an entity that every engine asks: patterns, context, validators, cell test.

Why: presidio is the reference engine for free text (the issue asks for presidio
``PatternRecognizer``s in a ``RecognizerRegistry``), but it analyses one string at a time;
``desensitize.textscan`` scans a whole column at once; ``desensitize.validators`` tests whole cells
of a typed column. All three read a ``RecognizerSpec``, so the rules of an identifier (its format,
its check character, its context words) are written once, in the entity's own module, and cannot
drift apart between engines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CellTest", "PatternSpec", "RecognizerSpec", "spec"]

#: A vectorized test of normalised cells (stripped Arrow strings, full-width mapped to ASCII):
#: True where the cell is a valid value of the entity.
CellTest = Callable[[pd.Series], pd.Series]


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """One regular expression of a recognizer. If it has a group named ``e``, that group is the entity
    (the rest is context, such as 联系人 before a name)."""

    name: str
    regex: str
    score: float
    #: Optional, for the column scanner only (presidio runs every pattern everywhere): every match
    #: contains an occurrence of ``required`` that starts at most ``reach`` characters after the
    #: match's start, so the scanner tries the pattern only there.
    required: str | None = None
    reach: int = 0


@dataclass(frozen=True, slots=True)
class RecognizerSpec:
    """Everything the engines need to know about one recognizer."""

    name: str  # the presidio class name
    entity_type: str
    patterns: tuple[PatternSpec, ...]
    context: tuple[str, ...] = ()
    validator: Callable[[str], bool | None] | None = None
    #: The same check as ``validator`` over a list of candidates (True: checked, False: rejected),
    #: for validators that only answer True or False.
    batch_validator: Callable[[list[str]], np.ndarray] | None = None
    #: The column type of ``desensitize.profiling`` the entity's values make.
    pii_type: str = ""
    #: The entity's test of whole cells, for ``desensitize.validators``.
    cells: CellTest | None = None


def spec(
    name: str,
    entity: str,
    patterns: Iterable[tuple[str, str, float] | tuple[str, str, float, str, int]],
    context: Iterable[str] = (),
    validator: Callable[[str], bool | None] | None = None,
    batch_validator: Callable[[list[str]], np.ndarray] | None = None,
    *,
    pii_type: str = "",
    cells: CellTest | None = None,
) -> RecognizerSpec:
    """A ``RecognizerSpec`` from plain tuples: (name, regex, score[, required, reach]) per pattern."""
    return RecognizerSpec(
        name,
        entity,
        tuple(PatternSpec(*p) for p in patterns),
        tuple(context),
        validator,
        batch_validator,
        pii_type,
        cells,
    )
