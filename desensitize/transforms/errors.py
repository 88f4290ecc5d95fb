"""The error of an action that cannot apply to a column.

Why a module of its own: every action module raises it and ``apply_rule`` adds the column's name.
"""

from __future__ import annotations

__all__ = ["TransformError"]


class TransformError(ValueError):
    """An action that cannot apply to a column's values; the message names column and action."""
