"""Each shortcut the export guard takes for speed (issue 15's benchmark) gives exactly what the slow way gives.

A shortcut that found less would open the guard: these compare each one with the plain computation it
replaces, over generated inputs that include the awkward cases (nulls, non-ASCII, scientific notation).
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from desensitize import non_alnum_pattern
from desensitize.letters import NON_ALNUM, strip_non_alnum
from sandbox.guard import combinations, warm
from sandbox.guard.combinations import Combinations
from sandbox.guard.probe import digit_forms
from tests.guard_support import reference_digit_forms

_CODE_POINTS = [*range(0x20, 0x250), *range(0x300, 0x370), *range(0x2000, 0x2070), *range(0x3000, 0x3040)]
_CODE_POINTS += [
    *range(0x4E00, 0x4E40),
    *range(0xFF00, 0xFF60),
    0x1F600,
    0x10400,
    0xE0041,
    0x200B,
    0xFEFF,
    0x0660,
    0x2160,
]
_POOL = [chr(c) for c in _CODE_POINTS]


def _strings(rng: random.Random, n: int) -> pa.Array:
    values = [
        None if rng.random() < 0.1 else "".join(rng.choice(_POOL) for _ in range(rng.randint(0, 12))) for _ in range(n)
    ]
    return pa.array(values, type=pa.large_string())


def test_letters_and_numbers_are_re2s_own_for_the_characters_present() -> None:
    rng = random.Random(7)
    for _ in range(200):
        array = _strings(rng, rng.randint(0, 30))
        assert strip_non_alnum(array).equals(pc.replace_substring_regex(array, NON_ALNUM, ""))
        split = pc.split_pattern_regex(array, non_alnum_pattern(array))
        assert split.equals(pc.split_pattern_regex(array, NON_ALNUM))


def test_a_large_array_gets_the_full_pattern() -> None:
    assert non_alnum_pattern(pa.array(["甲"] * 60_000)) == NON_ALNUM


def test_decimals_proven_short_hide_no_identifier_digits() -> None:
    rng = np.random.default_rng(3)
    numbers = np.concatenate(
        [
            rng.normal(4000, 900, 20_000).round(2),
            rng.random(20_000).round(4),
            rng.random(20_000),
            rng.random(2_000) * 1e6,
            -rng.random(2_000) * 1e-3,
            np.array([0.13812345678, 5234.1308616635, 0.1308616635, 1e-7, 13812345678.5, 123456789.5, np.nan, np.inf]),
        ]
    )
    assert digit_forms(numbers).tolist() == sorted(reference_digit_forms(numbers))


@pytest.mark.parametrize("bitmap", [True, False])
def test_distinct_combinations_are_every_combination_once(bitmap: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not bitmap:
        monkeypatch.setattr(combinations, "BITMAP_MAX", 0)
    rng = np.random.default_rng(11)
    radices = [3, 7, 1, 50]
    codes = [rng.integers(0, r, 5_000) for r in radices]
    found = Combinations(codes, radices)
    for columns in itertools.chain(itertools.permutations(range(4), 2), itertools.permutations(range(4), 3)):
        parts = found.distinct(columns)
        got = sorted(zip(*(p.tolist() for p in parts), strict=True))
        want = sorted(set(zip(*(codes[i].tolist() for i in columns), strict=True)))
        assert got == want


def test_the_warm_up_judges_and_a_failing_one_does_not_stop_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    seconds = warm()
    assert seconds is not None and seconds > 0

    def broken() -> float:
        raise RuntimeError("no disk")

    monkeypatch.setattr("sandbox.guard.warmup._warm", broken)
    assert warm(quiet=True) is None
    with pytest.raises(RuntimeError):
        warm()


def test_after_the_warm_up_the_package_still_gives_the_judge_function() -> None:
    """A worker warms up, then imports ``judge`` from the package: it must get the function (a fresh
    process, since this one may have bound the name already)."""
    import subprocess
    import sys

    probe = (
        "import types; from sandbox.guard import warm; warm(); from sandbox.guard import judge; "
        "assert not isinstance(judge, types.ModuleType) and callable(judge), judge"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
