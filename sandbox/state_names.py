"""States looked up by name, where an unknown name is the caller's mistake (a usage error), not a crash.

Why one owner: ``keyong job list --state x`` and ``keyong release list --state x`` were ValueError
tracebacks (red team 21c F4); the job and the release states refuse an unknown name the same way, naming
the states there are.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

__all__ = ["NamedState"]


class NamedState(StrEnum):
    """A ``StrEnum`` of states whose :meth:`named` refuses an unknown name with a ``UsageError``."""

    @classmethod
    def named(cls, text: str) -> Self:
        """The state called ``text``; an unknown name is a usage error naming the states."""
        try:
            return cls(text)
        except ValueError:
            from core import UsageError  # only on the error path: readers start fast (issue 21)

            kind = cls.__name__.removesuffix("State").lower()
            raise UsageError(f"unknown {kind} state {text[:40]!r}: one of {', '.join(s.value for s in cls)}") from None
