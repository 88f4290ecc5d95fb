"""Red team diff22: the faster desensitization against the code before it (8cb4e6e), input for input.

Why: issue 21's speed-ups (keyed pseudonyms in C, ASCII IDs past the regexes, k-anonymity reusing its
class numbering, the copy's prints and the raw codes computed ahead on the second core) claim the same
output. The differential run (1,648 tables the generator never makes, old and new code in two
processes, forked and inline) found the frames, reports, fingerprints and kept rows identical; what it
found is below, each test failing without its fix.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import desensitize.forking as forking
from desensitize import desensitize_table, load_policy
from desensitize.transforms import pseudonyms
from samples import residents
from tests.test_pipeline import RESIDENT_TYPES

pytestmark = pytest.mark.attack

PEPPER = b"diff22-pepper-not-a-real-key-32b"
TYPES = RESIDENT_TYPES  # the residents' column types as a custodian's catalog gives them


def _raised(table: pd.DataFrame) -> type[BaseException] | None:
    try:
        desensitize_table(table, TYPES, load_policy("L3"), pepper=PEPPER)
    except Exception as exc:  # the type is what is compared
        return type(exc)
    return None


def test_a_raw_quasi_identifier_that_cannot_be_factorized_fails_alike_forked_or_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """diff22 F1: ``desensitize.ahead.raw_codes_ahead`` factorized the raw quasi-identifiers in a forked child,
    whose failure reached the caller as RuntimeError('the forked worker failed: TypeError ...') where 8cb4e6e
    and the inline path raise the TypeError itself: the error depended on the table's size."""
    table = residents(40, seed=3)
    table["户籍地"] = table["户籍地"].astype(object)
    table.loc[[3, 17], "户籍地"] = pd.Series([["黑龙江省", "双鸭山市"]] * 2, index=[3, 17], dtype=object)
    monkeypatch.setattr(forking, "MIN_ROWS", 10**9)
    inline = _raised(table)
    monkeypatch.setattr(forking, "MIN_ROWS", 1)
    monkeypatch.setattr(forking, "usable_cores", lambda: 2)
    forked = _raised(table)
    assert inline is not None
    assert forked is inline


def _hmac_hex(values: list[str | None], prefix: bytes = b"") -> list[str | None]:
    return [
        None if v is None else hmac.new(PEPPER, prefix + v.encode(), hashlib.sha256).hexdigest()[:32] for v in values
    ]


@pytest.mark.skipif(not pseudonyms.NATIVE, reason="the optional C extension _keyedhash is not built here")
def test_the_c_loop_reads_sliced_chunked_and_null_slotted_arrays_as_hmac_does() -> None:
    values = [None if i % 3 == 0 else f"{i:018d}" + "中𠀀" * (i % 4) for i in range(200)]
    whole = pa.array(values, type=pa.large_string())
    for array in (
        whole.slice(1, 100),  # offsets and validity bitmap both start mid-byte
        whole.slice(199),
        whole.slice(200),
        pa.chunked_array([whole.slice(0, 0), whole.slice(5, 7), whole.slice(50)]),
        pa.chunked_array([], type=pa.large_string()),
        pa.array(values[:9], type=pa.string()),
    ):
        expected = _hmac_hex(array.to_pylist())
        assert pseudonyms.keyed_hex(array, PEPPER).to_pylist() == expected
        prefixed = pseudonyms._keyed_hex_native(array, PEPPER, b"cn_resident_id\x1f").to_pylist()
        assert prefixed == _hmac_hex(array.to_pylist(), b"cn_resident_id\x1f")
    # a null slot whose offsets still span bytes (allowed by Arrow): null, not the hash of those bytes
    validity = pa.py_buffer(np.packbits([1, 0, 1], bitorder="little").tobytes())
    offsets = pa.py_buffer(np.array([0, 3, 6, 9], dtype=np.int64).tobytes())
    odd = pa.Array.from_buffers(pa.large_string(), 3, [validity, offsets, pa.py_buffer(b"abcdefghi")])
    assert pseudonyms.keyed_hex(odd, PEPPER).to_pylist() == _hmac_hex(["abc", None, "ghi"])


def test_a_very_long_name_does_not_crash_the_free_text_redaction() -> None:
    """Fixed (diff22 F2, at 8cb4e6e too): a name cell of ~600 characters made the dataset-names recognizer's
    trie builder recurse once per character (RecursionError out of the pipeline); it now builds the same
    expression without recursion."""
    table = residents(10, seed=1)
    table.loc[2, "姓名"] = "王" * 600
    result = desensitize_table(table, TYPES, load_policy("L3"), pepper=PEPPER)
    assert len(result.kept_rows) == 10
