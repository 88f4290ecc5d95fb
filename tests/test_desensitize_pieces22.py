"""Issue 21's second round of shortcuts give what the plain computations give (whole runs:
bench/desensitize_digest.py, with ``--large`` for the forked paths)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import desensitize.forking as forking
from desensitize import DesensitizedTable, desensitize_table, load_policy, profile_columns
from desensitize.fingerprints import FingerprintSet, fingerprint_key
from desensitize.forking import usable_cores
from desensitize.pseudonym_pieces import CopyPrints, copy_prints, pseudonym_pieces
from samples import residents

PEPPER = b"test-pepper-for-pseudonym-pieces"


def _pseudonyms(count: int, seed: int) -> list[str | None]:
    rng = np.random.default_rng(seed)
    values: list[str | None] = [rng.bytes(16).hex() for _ in range(count)]
    shared = [v for v in values[:40] if v is not None]
    values[-40:-20] = shared[:20]  # repeated whole
    values[-20:-10] = [v[:20] + "0" * 12 for v in shared[:10]]  # same first pieces, new last ones
    values[-10:-4] = ["f" * 16 + v[16:] for v in shared[:6]]  # a first piece of every length shared
    values[-4:] = [None, "", "not hex", "ABCDEF0123456789ABCDEF0123456789"]  # not pseudonyms
    return values


def _tables(n: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """A raw table, its transformed copy before suppression, and which rows k-anonymity keeps."""
    raw = pd.DataFrame({"身份证": [f"2305{i:014d}" for i in range(n)], "卡号": [f"62{i:017d}" for i in range(n)]})
    copy = pd.DataFrame({"身份证": _pseudonyms(n, 1), "卡号": _pseudonyms(n, 2)}, dtype="str")
    copy.loc[n // 3, "卡号"] = copy.loc[5, "身份证"]  # one pseudonym in both columns
    kept = np.random.default_rng(3).random(n) > 0.2
    kept[: n // 10] = False  # the first rows' pieces only survive where another kept row has them
    return raw, copy, kept


def _build(raw: pd.DataFrame, copy: pd.DataFrame, rows: np.ndarray, **given: object) -> FingerprintSet:
    types = {"身份证": "cn_resident_id", "卡号": "bank_card"}
    return FingerprintSet.build(
        raw, copy[rows].reset_index(drop=True), types, pepper=PEPPER, pseudonym_columns=["身份证", "卡号"],
        workers=1, **given,
    )  # fmt: skip


def test_picked_fragments_are_the_kept_rows_fragments() -> None:
    raw, copy, kept = _tables(3000)
    pieces = pseudonym_pieces(copy, list(copy.columns), fingerprint_key(PEPPER))
    assert pieces is not None
    plain = _build(raw, copy, kept)
    picked = _build(raw, copy, kept, early=CopyPrints(pieces, {}), kept=kept)
    assert set(plain.arrays) == set(picked.arrays)
    for kind, array in plain.arrays.items():
        assert np.array_equal(array, picked.arrays[kind]), kind
    assert plain.meta == picked.meta
    assert list(plain.meta["fragments"]) == ["10", "12", "16"]
    everything = _build(raw, copy, np.ones(len(copy), dtype=bool))
    assert len(everything.arrays["fragments"]) > len(picked.arrays["fragments"])  # suppression shows


def test_no_kept_pseudonym_no_fragments() -> None:
    raw, copy, _ = _tables(200)
    kept = np.zeros(len(copy), dtype=bool)
    kept[-4:] = True  # only values that are not pseudonyms
    pieces = pseudonym_pieces(copy, list(copy.columns), fingerprint_key(PEPPER))
    picked = _build(raw, copy, kept, early=CopyPrints(pieces, {}), kept=kept)
    assert len(picked.arrays["fragments"]) == 0
    assert picked.meta == _build(raw, copy, kept).meta


def test_pseudonyms_of_several_widths_take_the_general_path() -> None:
    _, copy, _ = _tables(300)
    copy.loc[7, "卡号"] = "a" * 40
    assert pseudonym_pieces(copy, list(copy.columns), fingerprint_key(PEPPER)) is None


def test_pieces_of_other_columns_or_rows_are_not_used() -> None:
    raw, copy, kept = _tables(300)
    key = fingerprint_key(PEPPER)
    plain = _build(raw, copy, kept)
    for pieces in (pseudonym_pieces(copy, ["身份证"], key), pseudonym_pieces(copy.iloc[:-1], list(copy.columns), key)):
        built = _build(raw, copy, kept, early=CopyPrints(pieces, {}), kept=kept)
        assert np.array_equal(built.arrays["fragments"], plain.arrays["fragments"])
        assert built.meta == plain.meta


def test_copy_hashed_ahead_is_the_kept_rows_hashes() -> None:
    raw, copy, kept = _tables(3000)
    rng = np.random.default_rng(4)
    copy["备注"] = pd.Series(
        [f"电话１３８-{i:04d}，<PERSON>" if i % 7 else None for i in range(len(copy))], dtype="str"
    )
    copy["年份"] = rng.integers(1950, 2000, len(copy))  # not strings: left to the fingerprints
    raw["备注"], raw["年份"] = copy["备注"], copy["年份"]
    early = copy_prints(copy, list(copy.columns[:2]), list(copy.columns), fingerprint_key(PEPPER))
    assert set(early.hashes) == {"身份证", "卡号", "备注"}
    plain = _build(raw, copy, kept)
    picked = _build(raw, copy, kept, early=early, kept=kept)
    for kind, array in plain.arrays.items():
        assert np.array_equal(array, picked.arrays[kind]), kind
    assert plain.meta == picked.meta


@pytest.mark.skipif(usable_cores() < 2, reason="the forked paths run only with a second usable core")
def test_forked_whole_table_is_the_inline_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stages forked on a large table (the raw side without its free text, the copy's prints and the raw
    quasi-identifiers' codes during k-anonymity, the free text hashed with the copy) give the inline result."""
    table = residents(6000, seed=5)
    types = {p.name: p.pii_type for p in profile_columns(table)}

    def run() -> DesensitizedTable:
        return desensitize_table(table, types, load_policy("L4"), pepper=PEPPER)

    inline = run()
    monkeypatch.setattr(forking, "MIN_ROWS", 1000)
    forked = run()
    assert forking.worth_forking(len(table))
    pd.testing.assert_frame_equal(inline.frame, forked.frame)
    assert np.array_equal(inline.kept_rows, forked.kept_rows)
    assert {k: v for k, v in inline.report.items() if k not in ("seconds", "rows_per_second")} == {
        k: v for k, v in forked.report.items() if k not in ("seconds", "rows_per_second")
    }
    assert inline.fingerprints.arrays.keys() == forked.fingerprints.arrays.keys()
    for kind, array in inline.fingerprints.arrays.items():
        assert np.array_equal(array, forked.fingerprints.arrays[kind]), kind
    assert inline.fingerprints.meta == forked.fingerprints.meta


def test_pieces_numbered_by_one_sort_of_their_hashes_are_numbered_as_by_their_numbers() -> None:
    """desens23: one argsort of the hashes numbers the pieces as ``np.unique`` of the numbers and a sort
    of the distinct pieces' hashes did; two pieces with one hash (forced here) take the exact path."""
    from desensitize.fingerprint_hashes import mix
    from desensitize.pseudonym_pieces import _numbered, _numbered_by_pieces

    rng = np.random.default_rng(23)
    numbers = rng.integers(0, 2**40, 50_000, dtype=np.uint64)
    numbers[::11] = numbers[::7][: len(numbers[::11])]  # repeated pieces
    with np.errstate(over="ignore"):
        hashed = mix(numbers ^ np.uint64(0x5EED))
    codes, prints = _numbered(numbers, hashed)
    expected_codes, expected_prints = _numbered_by_pieces(numbers, hashed)
    assert np.array_equal(codes, expected_codes) and np.array_equal(prints, expected_prints)
    assert len(prints) == len(np.unique(numbers))
    collided = np.array([5, 6, 5, 7, 6], dtype=np.uint64)
    one_hash = np.array([9, 9, 9, 3, 9], dtype=np.uint64)  # pieces 5 and 6 share a hash
    codes, prints = _numbered(collided, one_hash)
    assert prints.tolist() == [3, 9, 9] and len(set(codes[[0, 1]].tolist())) == 2
    assert codes[0] == codes[2] and codes[1] == codes[4]
