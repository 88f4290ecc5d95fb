"""A quick screen for direct personal identifiers in short texts (not the full recognizers).

Used where free text must never carry personal data at all — the ledger's entries carry
identifiers and hashes only (issue 3) — so a cheap, conservative pattern screen that refuses
is right; the presidio-based recognizers of issue 5 are for finding PII in data, not for this.
Tokens are matched whole (no letter or digit on either side), so hex digests and other
identifiers that merely contain digit runs are not mistaken for a 公民身份号码 or a phone number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from desensitize.identifiers import is_valid_resident_id

_EDGE_BEFORE = r"(?<![0-9A-Za-z])"
_EDGE_AFTER = r"(?![0-9A-Za-z])"
_RESIDENT_ID = re.compile(_EDGE_BEFORE + r"[1-9]\d{16}[\dXx]" + _EDGE_AFTER)
_MOBILE = re.compile(_EDGE_BEFORE + r"(?:\+?86[- ]?)?1[3-9]\d{9}" + _EDGE_AFTER)


def direct_identifiers(text: str) -> list[str]:
    """Kinds of direct identifiers found in ``text``: 公民身份号码 (checksum-valid), 手机号码."""
    found: list[str] = []
    if any(is_valid_resident_id(m.group()) for m in _RESIDENT_ID.finditer(text)):
        found.append("公民身份号码")
    if _MOBILE.search(text):
        found.append("手机号码")
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield str(value)  # a phone number stored as a number is still a phone number
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def direct_identifiers_in(value: Any) -> list[str]:
    """Kinds of direct identifiers in any string, key or nested item of a JSON-like value."""
    kinds: list[str] = []
    for text in _strings(value):
        for kind in direct_identifiers(text):
            if kind not in kinds:
                kinds.append(kind)
    return kinds
