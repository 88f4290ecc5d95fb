"""Issue 21's third round of shortcuts (desens23) give what the plain computations give (whole runs:
bench/desensitize_digest.py, with ``--large`` for the forked paths)."""

from __future__ import annotations

import pyarrow as pa

from desensitize.fingerprint_hashes import class_lengths, classed_distinct, combined_lengths, long_distinct


def _plain(columns: list[pa.Array]) -> pa.Array:
    return long_distinct(pa.chunked_array(columns, type=pa.large_string()))


def test_classed_distinct_counts_as_the_distinct_values_of_every_column() -> None:
    """Lengths in one column only (no union needed) and shared between columns (made distinct together),
    values of no class (addresses, mixed text, one character) left out without changing a count."""
    names = pa.array(["张三", "李四", "张三", "欧阳娜娜", "王", ""], pa.large_string())
    ids = pa.array(["11010119900307777x", "110101199003071234", "110101199003071234"], pa.large_string())
    phones = pa.array(["13800000000", "13800000001"], pa.large_string())
    mixed = pa.array(["北京市朝阳区1号", "13800000000", "abc-12", "deadbeef00", "李四"], pa.large_string())
    pseudonyms = pa.array(["deadbeef00", "0123456789abcdef0123456789abcdef", "13800000001", "某某"], pa.large_string())
    for columns in ([names, ids, phones], [names, ids, phones, mixed], [mixed, mixed]):
        plain, classed = _plain(columns), classed_distinct(columns)
        assert class_lengths(classed) == class_lengths(plain)
        assert combined_lengths(classed, class_lengths(classed), pseudonyms) == combined_lengths(
            plain, class_lengths(plain), pseudonyms
        )
    assert sorted(classed_distinct([names, ids]).to_pylist()) == sorted(_plain([names, ids]).to_pylist())
    assert sorted(classed_distinct([mixed]).to_pylist()) == ["13800000000", "deadbeef00", "李四"]
    assert len(classed_distinct([])) == 0


def test_all_ascii_columns_skip_nfkc_and_all_alnum_ones_skip_the_strip() -> None:
    """An ID or phone column (ASCII letters and digits only) is returned as it is, not rewritten row by
    row; anything else is what NFKC and the non-alphanumeric regex give (nulls, empty values, full-width)."""
    import pyarrow.compute as pc

    from desensitize.letters import NON_ALNUM, strip_non_alnum
    from desensitize.transforms import nfkc

    ids = pa.array(["11010119900307777X", None, "13800000000"], pa.large_string())
    assert nfkc(ids) is ids and strip_non_alnum(ids) is ids
    for values in (["ab c", "１２", None], ["", "a"], ["ｘ", "a"], [None, None], ["张三", "a-b"]):
        for array in (pa.array(values, pa.string()), pa.chunked_array([values, values], pa.large_string())):
            assert nfkc(array).to_pylist() == pc.utf8_normalize(array, "NFKC").to_pylist()
            assert strip_non_alnum(array).to_pylist() == pc.replace_substring_regex(array, NON_ALNUM, "").to_pylist()
