"""Issue 21's shortcuts give what the plain computations give (whole runs: bench/desensitize_digest.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.fingerprint_hashes import (
    FRAGMENT_LENGTHS,
    class_lengths,
    combined_lengths,
    fragments_of,
    long_distinct,
    value_lengths,
)
from desensitize.kanonymity import k_anonymize


def _plain_fragments(pseudonyms: pa.Array) -> pa.Array:
    hexes = pc.filter(pseudonyms, pc.fill_null(pc.match_substring_regex(pseudonyms, r"^[0-9a-f]{20,}$"), False))
    pieces = [pc.utf8_slice_codeunits(hexes, 0, n) for n in FRAGMENT_LENGTHS]
    pieces += [pc.utf8_slice_codeunits(hexes, -n) for n in FRAGMENT_LENGTHS]
    return pc.unique(pa.concat_arrays([p.cast(pa.large_string()) for p in pieces]))


def _pseudonyms(count: int, seed: int = 0) -> list[str | None]:
    rng = np.random.default_rng(seed)
    values: list[str | None] = [rng.bytes(16).hex() for _ in range(count)]
    shared = [v for v in values[:50] if v is not None]
    values += shared[:20]  # repeated whole
    values += [v[:20] + "0" * 12 for v in shared]  # same first pieces, new last ones
    values += ["f" * 16 + v[16:] for v in shared]  # same first pieces of every length
    values += ["0" * 32, "0" * 16 + "f" * 16, None, "", "not hex", "ABCDEF0123456789ABCDEF0123456789"]
    return values


def test_fragments_of_equal_lengths_as_plain_unique() -> None:
    array = pa.array(_pseudonyms(3000), pa.large_string())
    for given in (array, array.slice(5), array.cast(pa.string())):
        fast = fragments_of(given)
        fast.validate(full=True)
        assert fast.equals(_plain_fragments(given.cast(pa.large_string())))


def test_fragments_of_mixed_lengths_as_plain_unique() -> None:
    array = pa.array([*_pseudonyms(500), "1234567890abcdef12345", "a" * 40], pa.large_string())
    assert fragments_of(array).equals(_plain_fragments(array))


def test_combined_lengths_counts_shared_values_once() -> None:
    raw = pa.array(["13800000000", "张三", "0123456789abcdef0123456789abcdef", "x", "abc123", "13800000001"])
    pseudonyms = pa.array(["0123456789abcdef0123456789abcdef", "ffffffffffffffffffffffffffffffff", "13800000000"])
    distinct = long_distinct(raw.cast(pa.large_string()))
    combined = combined_lengths(distinct, class_lengths(distinct), pseudonyms.cast(pa.large_string()))
    both = pa.chunked_array([raw, pseudonyms]).cast(pa.large_string())
    assert combined == value_lengths(both)
    assert combined["hex"] == {"6": 1, "32": 2}  # the pseudonym also among the raw values is one value


def test_k_anonymize_rounds_with_cached_ladders_and_fewer_columns() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    frame = pd.DataFrame(
        {
            "性别": rng.choice(["男", "女"], n),
            "出生日期": pd.to_datetime("1950-01-01") + pd.to_timedelta(rng.integers(0, 20000, n), unit="D"),
            "民族": rng.choice(["汉族", "回族", "满族", "蒙古族"], n),
            "备用": rng.choice(list("abcdefghij"), n),
        }
    )
    qi = {"性别": "gender", "出生日期": "birth_date", "民族": "ethnicity"}
    plain = k_anonymize(frame, qi, k=5)
    cache: dict = {}
    first = k_anonymize(frame, qi, k=5, ladder_cache=cache, columns=[])
    again = k_anonymize(frame, qi, k=5, ladder_cache=cache, columns=["备用"])
    assert set(cache) == {(c, t) for c, t in qi.items()}
    assert list(first.frame.columns) == []  # no l-diversity: not even the quasi-identifiers are copied
    assert len(first.frame) == len(plain.frame)
    assert list(again.frame.columns) == ["备用"]
    with_l = k_anonymize(frame, qi, k=5, ladder_cache=cache, columns=["备用"], sensitive_column="备用")
    assert list(with_l.frame.columns) == list(frame.columns)  # l-diversity reads the quasi-identifiers
    assert with_l.report == k_anonymize(frame, qi, k=5, sensitive_column="备用").report
    for result in (first, again):
        assert result.report == plain.report
        assert np.array_equal(result.kept, plain.kept)
        assert np.array_equal(result.class_ids, plain.class_ids)
        pd.testing.assert_frame_equal(result.frame, plain.frame[result.frame.columns])


def test_step_trials_sizes_as_counting_the_rows() -> None:
    from desensitize.group_keys import dense_ids
    from desensitize.kanonymity import _sizes
    from desensitize.ladders import build_ladder
    from desensitize.step_trials import StepTrials, coarsens

    rng = np.random.default_rng(5)
    n = 3000
    frame = pd.DataFrame(
        {
            "出生日期": pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 30000, n), unit="D"),
            "民族": rng.choice(["汉族", "回族", "满族", None], n),
            "住址": rng.choice(["北京市朝阳区", "北京市海淀区", "上海市浦东新区", "河北省石家庄市长安区"], n),
        }
    )
    ladders = [
        build_ladder(frame["出生日期"], "birth_date", "出生日期"),
        build_ladder(frame["民族"], "ethnicity", "民族"),
        build_ladder(frame["住址"], "address", "住址"),
    ]

    def rows(levels: list[int] | tuple[int, ...]) -> np.ndarray:
        return _sizes([lad.codes[v] for lad, v in zip(ladders, levels, strict=True)],
                      [lad.cards[v] for lad, v in zip(ladders, levels, strict=True)], n)  # fmt: skip

    for levels in ([0, 0, 0], [1, 0, 1], [2, 1, 0]):
        for functional in (lambda i, lv: coarsens(ladders[i], lv), lambda i, lv: False):
            trials = StepTrials(ladders, levels, n, rows, functional)
            for i, ladder in enumerate(ladders):
                if levels[i] < ladder.top:
                    up = list(levels)
                    up[i] += 1
                    assert np.array_equal(trials.sizes(i), rows(up))
                    after = trials.ids_after(i)
                    if functional(i, levels[i]):  # numbered as the rows one level up would be
                        expected = dense_ids([lad.codes[v] for lad, v in zip(ladders, up, strict=True)],
                                             [lad.cards[v] for lad, v in zip(ladders, up, strict=True)], n)  # fmt: skip
                        assert after is not None and np.array_equal(after, expected)
                        again = StepTrials(ladders, up, n, rows, functional, after)
                        fresh = StepTrials(ladders, up, n, rows, functional)
                        for j, other in enumerate(ladders):
                            if up[j] < other.top:
                                assert np.array_equal(again.sizes(j), fresh.sizes(j))
                    else:
                        assert after is None
    # A level that is not a function of the one below is told apart (rows of one code there split above).
    odd = build_ladder(frame["民族"], "ethnicity", "民族")
    values = np.arange(odd.cards[0], dtype=np.int64)
    odd.codes[1], odd.cards[1] = (values // 2)[odd.codes[0]], int(values.max()) // 2 + 1
    odd.codes[2], odd.cards[2] = (values % 2)[odd.codes[0]], 2
    assert coarsens(odd, 0)
    assert not coarsens(odd, 1)
