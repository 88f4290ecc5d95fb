"""The two DP job kinds, named once (DESIGN.md "Job kinds").

Why here and not beside the other job kinds in ``sandbox.kinds``: planning, cost and sealing need
to name them, and ``dp`` lies below ``sandbox`` (it imports only ``core``). ``sandbox.kinds.JobKind``
takes its DP members' values from :class:`DpKind`, so each kind's name is written once. The
programs that run inside the sandbox (``dp.programs``) cannot import this module (Keyong's code is
not mounted there) and carry their own kind literal, checked against the plan's ``kind``.
"""

from __future__ import annotations

from enum import StrEnum


class DpKind(StrEnum):
    """A job answered by the platform's own DP program, its ε charged before it runs."""

    QUERY = "dp-query"
    TRAIN = "dp-train"


#: The DP kinds as plain strings, in the order they are offered.
DP_KINDS: tuple[str, ...] = tuple(kind.value for kind in DpKind)

__all__ = ["DP_KINDS", "DpKind"]
