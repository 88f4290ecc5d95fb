"""The one rule for text people read back: visible characters only (issue 17).

Why: names and reasons are printed by the CLI straight to a terminal, rendered in console pages and
compared by people. A control character (ESC, BEL) in a scenario name rewrote the administrator's
terminal when ``keyong licence list`` printed it; a bidi override (U+202E) made a licensed scenario
read as another one; a NUL cannot even be stored in PostgreSQL text (a 500). So a *name* holds no
control, invisible-format, surrogate, private-use, unassigned or line/paragraph-separator character,
and a *text* (a reason, a justification) only adds line breaks and tabs to that. Column headers
(数据项名称) follow the name rule too (:mod:`registry.source_checks`).
"""

from __future__ import annotations

import unicodedata

__all__ = ["REFUSED_CATEGORIES", "invisible_character"]

#: Unicode general categories never accepted in a name, with what to call them in a refusal.
REFUSED_CATEGORIES = {
    "Cc": "control",
    "Cf": "invisible format",
    "Cs": "surrogate",
    "Co": "private-use",
    "Cn": "unassigned",
    "Zl": "line separator",
    "Zp": "paragraph separator",
}
_TEXT_LAYOUT = frozenset("\n\r\t")


def invisible_character(value: str, *, multiline: bool = False) -> tuple[int, str, str] | None:
    """The first refused character of ``value`` as ``(position from 1, "U+XXXX", kind)``, or ``None``.

    ``multiline`` (reasons, justifications) also admits line breaks and tabs.
    """
    for position, char in enumerate(value, start=1):
        if multiline and char in _TEXT_LAYOUT:
            continue
        kind = REFUSED_CATEGORIES.get(unicodedata.category(char))
        if kind is not None:
            return position, f"U+{ord(char):04X}", kind
    return None
