"""A test oracle for the guard's number probe: ``digit_forms`` as it was before the f76c32d shortcut.

Why kept: the shortcut skips decimals proven too short to hide an identifier; the slow form, which
renders every non-integral decimal, is the reference it must agree with. One copy serves both the
unit tests and the red team's attacks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sandbox.guard.probe import IDENTIFIER_DIGITS


def reference_digit_forms(numbers: np.ndarray) -> set[str]:
    """Every identifier-length digit run in the whole part, the fraction, or both joined, of each decimal."""
    values = np.asarray(numbers, dtype=np.float64)
    values = pd.unique(values[np.isfinite(values) & (values != np.floor(values))])
    forms: set[str] = set()
    for text in values.astype(str):
        whole, _, fraction = text.split("e")[0].lstrip("-").partition(".")
        for digits in (whole, fraction, (whole + fraction).lstrip("0")):
            if len(digits) in IDENTIFIER_DIGITS:
                forms.add(digits)
            elif len(digits) + 1 in IDENTIFIER_DIGITS:
                forms.add(digits + "0")
    return forms
