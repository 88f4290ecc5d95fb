"""IP_ADDRESS: the one definition every engine asks.

IPv4 with octets <= 255; IPv6 found by a loose pattern in text and checked by ``ipaddress``, or
matched whole in a cell against the RFC 4291 text forms.
"""

from __future__ import annotations

import ipaddress

import pandas as pd

from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import ALNUM, fullmatch_cells

__all__ = ["IP_ADDRESS", "ip_address_cells", "validate_ip"]

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4_BODY = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_HEX = "[0-9A-Fa-f]{1,4}"
_IPV4 = rf"(?<![{ALNUM}.]){_IPV4_BODY}(?![{ALNUM}]|\.[0-9])"
_IPV6 = (
    rf"(?<![{ALNUM}.])(?:{_HEX}(?::{_HEX}){{7}}|(?:{_HEX}(?::{_HEX}){{0,6}})?::(?:{_HEX}(?::{_HEX}){{0,6}})?)"
    rf"(?![{ALNUM}]|:[0-9A-Fa-f])"
)
# RFC 4291 text forms: eight groups, or "::" standing for one or more zero groups.
_IPV6_CELL = "|".join(
    [rf"(?:{_HEX}:){{7}}{_HEX}", rf"(?:{_HEX}:){{1,7}}:", rf"::(?:{_HEX}:){{0,6}}{_HEX}"]
    + [rf"(?:{_HEX}:){{{k}}}(?::{_HEX}){{1,{7 - k}}}" for k in range(1, 7)]
)


def validate_ip(text: str) -> bool | None:
    """The ``ipaddress`` module decides; an IPv6 candidate without a hex digit ("::") is no address."""
    if not any(c.isalnum() for c in text):
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return None


def ip_address_cells(text: pd.Series) -> pd.Series:
    """Cells holding an IPv4 or IPv6 address."""
    return fullmatch_cells(text, _IPV4_BODY) | fullmatch_cells(text, _IPV6_CELL)


IP_ADDRESS = spec(
    "ChineseIpRecognizer",
    "IP_ADDRESS",
    [("ipv4", _IPV4, 0.8, r"\.[0-9]{1,3}\.[0-9]{1,3}\.", 3), ("ipv6", _IPV6, 0.8, "::|:[0-9A-Fa-f]{1,4}:", 40)],
    ("IP", "IP地址", "登录地址"),
    validate_ip,
    pii_type="ip_address",
    cells=ip_address_cells,
)
