"""The error of an action that cannot apply to a column.

Why a module of its own: every action module raises it and ``apply_rule`` adds the column's name. A
``DesensitizeError`` (``desensitize.errors``), so callers catch one type for every refusal.
"""

from __future__ import annotations

from desensitize.errors import DesensitizeError

__all__ = ["TransformError"]


class TransformError(DesensitizeError):
    """An action that cannot apply to a column's values; the message names column and action."""
