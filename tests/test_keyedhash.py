"""The optional C loop of the keyed pseudonyms (``desensitize/transforms/_keyedhash.c``) against its
pure-Python and DuckDB fallbacks and ``hmac.new``: the pseudonyms later jobs join on must be the same
bytes whether the extension was built or not (issue 21, desens22a)."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pyarrow as pa
import pytest

from desensitize.transforms import pseudonyms

PEPPER = b"test-pepper-0123456789abcdef0123"

needs_native = pytest.mark.skipif(
    not pseudonyms.NATIVE, reason="desensitize.transforms._keyedhash is not built (no C compiler or OpenSSL headers)"
)

# Empty, one byte, a value that fills the inner block to 55/56/64 bytes (SHA-256 padding edges),
# multi-block values, CJK and full-width text, an embedded NUL.
VALUES: list[str | None] = [
    "",
    "x",
    "a" * 55,
    "a" * 56,
    "b" * 64,
    "c" * 119,
    "c" * 120,
    "中文地址" * 50,
    "１２３ＡＢＣ",
    "nul\x00inside",
    None,
    "110101199003077777",
]


def _hmac_hex(pepper: bytes, message: str) -> str:
    return hmac.new(pepper, message.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


@needs_native
@pytest.mark.parametrize("pepper", [PEPPER, b"k", bytes(range(64)), bytes(range(100))])
def test_native_equals_hmac_python_and_duckdb(pepper: bytes) -> None:
    messages = pa.array(VALUES, pa.large_string())
    native = pseudonyms._keyed_hex_native(messages, pepper).to_pylist()
    assert native == [None if v is None else _hmac_hex(pepper, v) for v in VALUES]
    assert native == pseudonyms._keyed_hex_python(messages.to_pylist(), pepper)
    assert native == pseudonyms._keyed_hex_duckdb(messages, pepper).to_pylist()


@needs_native
def test_native_prefix_is_hashed_before_each_value() -> None:
    messages = pa.array(VALUES, pa.large_string())
    native = pseudonyms._keyed_hex_native(messages, PEPPER, b"cn_phone\x1f").to_pylist()
    assert native == [None if v is None else _hmac_hex(PEPPER, f"cn_phone\x1f{v}") for v in VALUES]


@needs_native
def test_native_reads_sliced_chunked_and_plain_string_arrays() -> None:
    whole = pa.array([f"v{i}" for i in range(50)] + [None, "尾"], pa.large_string())
    expected = pseudonyms._keyed_hex_python(whole.to_pylist(), PEPPER)
    sliced = whole.slice(7, 30)  # an offset into the offsets buffer
    assert pseudonyms._keyed_hex_native(sliced, PEPPER).to_pylist() == expected[7:37]
    chunked = pa.chunked_array([whole.slice(0, 20), whole.slice(20)])
    assert pseudonyms._keyed_hex_native(chunked, PEPPER).to_pylist() == expected
    small = pa.array(whole.to_pylist(), pa.string())  # 32-bit offsets: cast first
    assert pseudonyms._keyed_hex_native(small, PEPPER).to_pylist() == expected
    assert pseudonyms._keyed_hex_native(pa.array([], pa.large_string()), PEPPER).to_pylist() == []
    assert pseudonyms._keyed_hex_native(pa.array([None, None], pa.large_string()), PEPPER).to_pylist() == [None, None]


@needs_native
def test_native_refuses_offsets_outside_the_data() -> None:
    import numpy as np

    native = pseudonyms._native
    assert native is not None
    pad = bytes(64)
    with pytest.raises(ValueError, match="offsets"):
        native.keyed_hex32(pad, pad, b"", np.array([0, 5], dtype=np.int64), b"abc")
    with pytest.raises(ValueError, match="offsets"):
        native.keyed_hex32(pad, pad, b"", np.array([2, 1], dtype=np.int64), b"abc")
    with pytest.raises(ValueError, match="pads"):
        native.keyed_hex32(b"short", pad, b"", np.array([0, 1], dtype=np.int64), b"abc")


@needs_native
def test_pseudonyms_are_the_same_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = pd.Series(
        [f"1101011990030{i:05d}" for i in range(pseudonyms.DUCKDB_MIN_VALUES + 5)] + [None, " ", "11010119900307777x"],
        dtype="str",
    )
    repeats = pd.Series(["13800000000", "+86 138-0000-0001", None, "13800000000"] * 10, dtype="str")
    with_c = [pseudonyms.pseudonymize(ids, pepper=PEPPER, family="cn_resident_id")]
    with_c.append(pseudonyms.pseudonymize(repeats, pepper=PEPPER, family="cn_phone"))
    with_c.append(pseudonyms.keyed_hex(pa.array(VALUES, pa.large_string()), PEPPER).to_pylist())
    monkeypatch.setattr(pseudonyms, "_native", None)
    without = [pseudonyms.pseudonymize(ids, pepper=PEPPER, family="cn_resident_id")]
    without.append(pseudonyms.pseudonymize(repeats, pepper=PEPPER, family="cn_phone"))
    without.append(pseudonyms.keyed_hex(pa.array(VALUES, pa.large_string()), PEPPER).to_pylist())
    pd.testing.assert_series_equal(with_c[0], without[0])
    pd.testing.assert_series_equal(with_c[1], without[1])
    assert with_c[2] == without[2]
    assert with_c[0].iloc[0] == _hmac_hex(PEPPER, f"cn_resident_id\x1f{ids.iloc[0]}")


# SipHash-2-4 (the guard's fingerprints): every tail length 0-7 of the 8-byte blocks, multi-block and
# multi-byte UTF-8 values, an embedded NUL.
SIP_VALUES = ["", *("abcdefghijklmnopq"[:n] for n in range(1, 18)), "中文地址" * 9, "１２３ＡＢＣ", "nul\x00x", "é😀"]


@needs_native
def test_native_siphash_equals_pandas_hash_array(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C loop gives pandas' ``hash_array`` bytes (its SipHash and splitmix finalizer), for plain,
    large, sliced and chunked arrays; a null falls back to pandas (which hashes it as the text 'None')."""
    from pandas.util import hash_array

    from desensitize import fingerprint_hashes

    key = fingerprint_hashes.fingerprint_key(PEPPER)
    expected = hash_array(pd.Series(SIP_VALUES, dtype=object).to_numpy(), hash_key=key, categorize=False)
    assert fingerprint_hashes._native is not None
    native = fingerprint_hashes._siphash_native(pa.array(SIP_VALUES, pa.large_string()), key)
    assert native.tolist() == expected.tolist()
    assert fingerprint_hashes.siphash(pa.array(SIP_VALUES, pa.string()), key).tolist() == expected.tolist()
    sliced = pa.array(SIP_VALUES, pa.large_string()).slice(3, 10)
    assert fingerprint_hashes._siphash_native(sliced, key).tolist() == expected[3:13].tolist()
    chunked = pa.chunked_array([SIP_VALUES[:5], SIP_VALUES[5:]], pa.large_string())
    assert fingerprint_hashes._siphash_native(chunked, key).tolist() == expected.tolist()
    with_null = pa.array([*SIP_VALUES, None], pa.large_string())
    expected_null = hash_array(pd.Series([*SIP_VALUES, None], dtype=object).to_numpy(), hash_key=key, categorize=False)
    assert fingerprint_hashes.siphash(with_null, key).tolist() == expected_null.tolist()
    monkeypatch.setattr(fingerprint_hashes, "_native", None)
    assert fingerprint_hashes.siphash(pa.array(SIP_VALUES, pa.large_string()), key).tolist() == expected.tolist()


@needs_native
def test_native_siphash_refuses_a_wrong_key_or_offsets() -> None:
    import numpy as np

    from desensitize import fingerprint_hashes

    native = fingerprint_hashes._native
    assert native is not None
    with pytest.raises(ValueError, match="16 bytes"):
        native.siphash24(b"short", np.array([0, 1], dtype=np.int64), b"abc")
    with pytest.raises(ValueError, match="outside"):
        native.siphash24(b"k" * 16, np.array([0, 5], dtype=np.int64), b"abc")
