"""Pseudonymization (假名化): canonical identifiers and their keyed 128-bit pseudonyms.

Pseudonyms (the person key later jobs join and count on): HMAC-SHA256 keyed with the instance
pepper over ``f"{family}\\x1f{normalised value}"``, hex, truncated to 128 bits. ``family`` is the
column type, so 公民身份号码 in one table and 身份证号 in another give the same pseudonym and licensed
joins still work; normalisation (full-width to ASCII, no spaces or hyphens inside numbers, upper-case
check character, no +86 prefix) makes differently typed copies of one identifier agree. Without the
pepper a pseudonym cannot be reversed or recomputed, which is what makes it 去标识化 (个人信息保护法
第七十三条) rather than a plain hash anyone could brute-force over the 10^9 possible ID numbers.
"""

from __future__ import annotations

import hashlib
import importlib
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.transforms.arrow import arrow_strings, mostly_distinct, nfkc, per_distinct, str_series, text_arrow

__all__ = [
    "COMPACT_FAMILIES",
    "DUCKDB_MIN_VALUES",
    "NATIVE",
    "PSEUDONYM_HEX_CHARS",
    "keyed_hex",
    "normalise_identifiers",
    "pseudonymize",
]

#: Hex characters of a pseudonym: 128 bits of HMAC-SHA256.
PSEUDONYM_HEX_CHARS = 32

#: Below this many distinct values the keyed hashes are computed in Python (DuckDB's start-up
#: would dominate); above it in DuckDB, which uses every core. Measured on the 2-core host, 1M
#: distinct IDs: Python hashlib with copied inner/outer states 0.79 s (+0.09 s to build the list),
#: DuckDB sha256(opad || unhex(sha256(ipad || v))) 0.62 s with 2 threads, 1.11 s with one.
DUCKDB_MIN_VALUES = 20_000

#: The optional C loop (``_keyedhash.c``, setup.py): the inner and outer pad states computed once,
#: two SHA-256 compressions per value in libcrypto (the CPU's SHA extensions), ~0.15 s per million
#: IDs on one core where DuckDB took 1.1 CPU-s. Without it, the paths above (same bytes, tested).
_native: ModuleType | None
try:
    _native = importlib.import_module("desensitize.transforms._keyedhash")
except ImportError:  # not built: no compiler or OpenSSL headers
    _native = None
NATIVE = _native is not None

#: Types whose values are codes written with optional separators: compared without spaces,
#: hyphens, dots or middle dots, in upper case (GB 11643-1999's check character 'X' is often typed 'x').
COMPACT_FAMILIES = frozenset(
    {"cn_resident_id", "passport", "travel_permit", "bank_card", "uscc", "license_plate", "cn_phone", "cn_landline"}
)
#: Types compared without any whitespace (a name or an address typed with spaces is the same one).
_SPACELESS_FAMILIES = frozenset({"person_name", "address", "household_region", "company_name"})
_SEPARATORS = r"[\s\-‐‑‒–—―·•.]+"


def normalise_identifiers(values: pd.Series, family: str) -> pa.Array | pa.ChunkedArray:
    """The canonical text of each value of a column of type ``family``; empty values become null.

    Canonical means: surrounding whitespace removed, NFKC (full-width to ASCII), and per family:
    codes without separators and in upper case; mobile numbers without a +86/0086 prefix; landlines
    with a leading 0 instead of +86; e-mails in lower case; names and addresses without spaces.
    """
    raw = text_arrow(values)
    if family in COMPACT_FAMILIES:
        array = _compact(raw)
        if family == "cn_phone":
            array = pc.replace_substring_regex(array, r"^(?:\+86|0086|86)(1[3-9][0-9]{9})$", r"\1")
        elif family == "cn_landline":
            array = pc.replace_substring_regex(array, r"^(?:\+86|0086)0?([1-9][0-9]{8,10})$", r"0\1")
    else:
        array = pc.utf8_trim_whitespace(nfkc(raw))
        if family in _SPACELESS_FAMILIES:
            array = pc.replace_substring_regex(array, r"\s+", "")
        elif family == "email":
            array = pc.utf8_lower(array)
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.large_string()), array)


def _compact(raw: pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Codes without separators, in upper case: NFKC, trimmed, separators removed, upper-cased.

    A value of ASCII letters and digits only (most of an ID or phone column) is its own NFKC, has
    nothing to trim or remove, and its upper case is ASCII's: only the other rows take the
    (regular-expression) path, 0.15 s per million IDs less than running it over every row.
    """

    def full(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        return pc.utf8_upper(pc.replace_substring_regex(pc.utf8_trim_whitespace(nfkc(array)), _SEPARATORS, ""))

    plain = pc.fill_null(pc.ascii_is_alnum(raw), False)
    if not pc.any(pc.invert(plain)).as_py():
        return pc.ascii_upper(raw)
    if not pc.any(plain).as_py():
        return full(raw)
    flat, rest = raw.combine_chunks(), pc.invert(plain.combine_chunks())
    return pc.replace_with_mask(pc.ascii_upper(flat), rest, full(pc.filter(flat, rest)))


def _hmac_pads(pepper: bytes) -> tuple[bytes, bytes]:
    """RFC 2104 inner and outer key pads for SHA-256 (block size 64)."""
    key = hashlib.sha256(pepper).digest() if len(pepper) > 64 else pepper
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _keyed_hex_python(messages: list[str | None], pepper: bytes) -> list[str | None]:
    ipad, opad = _hmac_pads(pepper)
    inner, outer = hashlib.sha256(ipad), hashlib.sha256(opad)
    out: list[str | None] = []
    for message in messages:
        if message is None:
            out.append(None)
            continue
        h = inner.copy()
        h.update(message.encode("utf-8"))
        o = outer.copy()
        o.update(h.digest())
        out.append(o.hexdigest()[:PSEUDONYM_HEX_CHARS])
    return out


def _keyed_hex_duckdb(messages: pa.Array | pa.ChunkedArray, pepper: bytes) -> pa.Array:
    import duckdb

    ipad, opad = _hmac_pads(pepper)
    with duckdb.connect() as con:
        con.execute("SET preserve_insertion_order = true")
        con.register("messages", pa.table({"v": messages}))
        result = con.sql(
            "SELECT substr(sha256($opad::BLOB || unhex(sha256($ipad::BLOB || encode(v)))), 1, $n) AS h FROM messages",
            params={"opad": opad, "ipad": ipad, "n": PSEUDONYM_HEX_CHARS},
        ).to_arrow_table()
    return result.column(0).combine_chunks().cast(pa.large_string())


def _keyed_hex_native(messages: pa.Array | pa.ChunkedArray, pepper: bytes, prefix: bytes = b"") -> pa.Array:
    """The C loop over the column's own buffers (no Python object per value); nulls stay null."""
    assert _native is not None
    array = messages.combine_chunks() if isinstance(messages, pa.ChunkedArray) else messages
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    n = len(array)
    _, offsets, data = array.buffers()
    if n == 0 or offsets is None:
        return pa.array([None] * n, type=pa.large_string())
    starts = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + n + 1]
    ipad, opad = _hmac_pads(pepper)
    hexes = _native.keyed_hex32(ipad, opad, prefix, starts, data if data is not None else b"")
    out_offsets = pa.py_buffer(np.arange(0, (n + 1) * PSEUDONYM_HEX_CHARS, PSEUDONYM_HEX_CHARS, dtype=np.int64))
    out = pa.Array.from_buffers(pa.large_string(), n, [None, out_offsets, pa.py_buffer(hexes)])
    if array.null_count:
        out = pc.if_else(pc.is_valid(array), out, pa.scalar(None, pa.large_string()))
    return out


def keyed_hex(messages: pa.Array | pa.ChunkedArray, pepper: bytes) -> pa.Array:
    """HMAC-SHA256(pepper, message) of each string, hex, 128 bits; nulls stay null.

    Three implementations giving identical results (tested against ``hmac.new``): the optional C
    loop when it is built, else Python's hashlib with copied inner/outer states for few values and
    DuckDB's vectorized sha256 for many.
    """
    if not pepper:
        raise ValueError("the pepper must not be empty: pseudonyms without a key are reversible by brute force")
    if _native is not None:
        return _keyed_hex_native(messages, pepper)
    if len(messages) < DUCKDB_MIN_VALUES:
        return pa.array(_keyed_hex_python(messages.to_pylist(), pepper), type=pa.large_string())
    return _keyed_hex_duckdb(messages, pepper)


def pseudonymize(values: pd.Series, *, pepper: bytes, family: str) -> pd.Series:
    """Keyed 128-bit pseudonyms (hex) of the normalised values.

    A column with repeats is hashed once per distinct value; a column of (nearly) distinct values
    such as an ID column is hashed row by row, since factorizing it would cost more than it saves.
    """
    normalised = str_series(normalise_identifiers(values, family), values.index)
    prefix = pa.scalar(f"{family}\x1f", pa.large_string())

    def hash_all(strings: pa.Array | pa.ChunkedArray) -> pa.Array:
        if _native is not None and pepper:  # the C loop hashes the prefix itself: no joined copy
            return _keyed_hex_native(strings, pepper, f"{family}\x1f".encode())
        return keyed_hex(pc.binary_join_element_wise(prefix, strings, pa.scalar("", pa.large_string())), pepper)

    if mostly_distinct(normalised):  # an ID column: factorizing would find nothing to share
        return str_series(hash_all(arrow_strings(normalised)), values.index)
    return str_series(per_distinct(normalised, hash_all), values.index)
