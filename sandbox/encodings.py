"""Decoded readings of output strings: what an exfiltrating job would hide a value in.

Why: 个人信息保护法 第七十三条 and GB/T 37964-2019 treat a value that can be restored as not
de-identified; 双鸭山 rules forbid restoring raw records "through reversible models or algorithms".
Base64, hex, URL-encoding and reversal are the cheapest reversible wrappings, so the guard looks
through them before matching fingerprints. Only candidate strings are decoded (a cheap vectorized
shape test first), each distinct candidate once.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Shapes worth decoding; shorter strings cannot hold an identifier of two characters or more.
_HEX = r"^(?:[0-9A-Fa-f]{2}){3,}$"
_BASE64 = r"^[A-Za-z0-9+/_-]{6,}={0,2}$"
_DIGITS_OR_HEX = r"^[0-9A-Fa-f]+$"


def _decode_base64(text: str) -> str | None:
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    decoded = raw.decode("utf-8", errors="ignore")
    return decoded if decoded else None


def _decode_hex(text: str) -> str | None:
    try:
        decoded = bytes.fromhex(text).decode("utf-8", errors="ignore")
    except ValueError:
        return None
    return decoded if decoded else None


def _strings(values: pd.Series) -> pa.Array:
    uniques = pd.Series(values.dropna().astype(str).unique(), dtype=object)
    return pa.array(uniques.tolist(), type=pa.large_string())


def decoded_readings(values: pd.Series, *, reversals: bool = True) -> pd.Series:
    """Distinct decoded readings of ``values``: base64, hex and URL-decoded, one level each; with
    ``reversals`` also each value reversed and each decoding reversed (an attacker may reverse before
    or after encoding). Recognizers skip reversals: reversed digits pass checksums by chance."""
    strings = _strings(values)
    if len(strings) == 0:
        return pd.Series([], dtype=object)
    found: set[str] = set(pc.utf8_reverse(strings).to_pylist()) if reversals else set()
    decoded: set[str] = set()
    hexish = pc.match_substring_regex(strings, _HEX)
    for text in pc.filter(strings, hexish).to_pylist():
        if (value := _decode_hex(text)) is not None:
            decoded.add(value)
    for source in (strings, pc.utf8_reverse(strings)):
        b64 = pc.and_(
            pc.match_substring_regex(source, _BASE64), pc.invert(pc.match_substring_regex(source, _DIGITS_OR_HEX))
        )
        for text in pc.filter(source, b64).to_pylist():
            if (value := _decode_base64(text)) is not None:
                decoded.add(value)
    urlish = pc.match_substring(strings, "%")
    for text in pc.filter(strings, urlish).to_pylist():
        decoded.add(urllib.parse.unquote(text))
        decoded.add(urllib.parse.unquote_plus(text))
    found |= decoded
    if reversals:
        found |= {value[::-1] for value in decoded}
    return pd.Series(sorted(found), dtype=object)


__all__ = ["decoded_readings"]
