"""Guard fingerprints: raw values and pseudonyms found again after formatting noise, rows and QI tuples,
storage, and the pepper as the key (双鸭山市公共数据管理暂行办法 第五十四条: no raw data leaves the platform)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from desensitize.fingerprints import (
    KINDS,
    FingerprintError,
    FingerprintSet,
    fingerprint_key,
    join_normalised,
    normalise_for_fingerprint,
)
from desensitize.transforms import date_year, generalize_address, mask_name, pseudonymize
from samples import synthetic
from tests.test_pipeline import RESIDENT_TYPES

PEPPER = b"instance-pepper-for-tests-0123456789"
OTHER_PEPPER = b"another-instance-pepper-9876543210"
TYPES = {column: kind for column, kind in RESIDENT_TYPES.items() if kind != "free_text"}
QI = ["性别", "民族", "出生日期", "户籍地"]


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return synthetic.residents(300, seed=5)[list(TYPES)]


@pytest.fixture(scope="module")
def desensitized(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "姓名": mask_name(raw["姓名"]),
            "公民身份号码": pseudonymize(raw["公民身份号码"], pepper=PEPPER, family="cn_resident_id"),
            "性别": raw["性别"],
            "民族": raw["民族"],
            "出生日期": date_year(raw["出生日期"]),
            "住址": generalize_address(raw["住址"]),
            "户籍地": raw["户籍地"],
        }
    )


@pytest.fixture(scope="module")
def prints(raw: pd.DataFrame, desensitized: pd.DataFrame) -> FingerprintSet:
    return FingerprintSet.build(
        raw, desensitized, TYPES, pepper=PEPPER, pseudonym_columns=["公民身份号码"], quasi_identifier_columns=QI
    )


def test_raw_identifiers_are_found_after_noise(raw: pd.DataFrame, prints: FingerprintSet) -> None:
    person = raw.iloc[7]
    rid, phone, name, address = person["公民身份号码"], person["手机号码"], person["姓名"], person["住址"]
    probes = [
        rid,
        f"{rid[:6]} {rid[6:14]} {rid[14:]}",
        f"{rid[:6]}-{rid[6:14]}-{rid[14:]}",
        _fullwidth(rid),
        rid.lower(),
        phone,
        f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}",
        f"0086{phone}",
        _fullwidth(phone),
        f" {name[0]} {name[1:]} ",
        address,
        _fullwidth(address),
        address.replace("号", "号 "),
    ]
    found = prints.contains_values(probes)
    assert found.all(), [p for p, f in zip(probes, found, strict=True) if not f]


def test_unrelated_and_short_values_are_not_found(raw: pd.DataFrame, prints: FingerprintSet) -> None:
    rid = raw["公民身份号码"].iloc[0]
    other_id = rid[:-2] + ("00" if rid[-2:] != "00" else "11")
    probes = ["13900000000", other_id, "王小二不存在", "黑龙江省双鸭山市某某路1号", "男", "汉族", "", "x"]
    assert not prints.contains_values(probes).any()
    assert not prints.contains_values(pd.Series([None, np.nan], dtype=object)).any()


def test_pseudonyms_are_found(desensitized: pd.DataFrame, prints: FingerprintSet) -> None:
    pseudonyms = desensitized["公民身份号码"]
    assert prints.contains_values(pseudonyms).all()
    assert prints.contains_values(pseudonyms.str.upper()).all()
    # A pseudonym made with another key is not one of ours.
    foreign = pseudonymize(pd.Series(["230522200608091620"], dtype="str"), pepper=OTHER_PEPPER, family="cn_resident_id")
    assert not prints.contains_values(foreign).any()


def test_raw_and_desensitized_rows_are_found(
    raw: pd.DataFrame, desensitized: pd.DataFrame, prints: FingerprintSet
) -> None:
    assert prints.contains_rows(raw, "rows_raw").all()
    assert prints.contains_rows(desensitized, "rows_desensitized").all()
    assert not prints.contains_rows(raw, "rows_desensitized").any()
    # An export re-formats: dates as text with slashes, numbers as strings, headers renamed.
    exported = raw.copy()
    exported["出生日期"] = exported["出生日期"].dt.strftime("%Y/%m/%d")
    exported["手机号码"] = exported["手机号码"].str.slice(0, 3) + " " + exported["手机号码"].str.slice(3)
    exported.columns = [f"c{i}" for i in range(len(exported.columns))]
    assert prints.contains_rows(exported, "rows_raw").all()
    # A row with one cell changed is not a raw row.
    changed = raw.iloc[:5].copy()
    changed["姓名"] = "某某某"
    assert not prints.contains_rows(changed, "rows_raw").any()


def test_quasi_identifier_tuples(raw: pd.DataFrame, desensitized: pd.DataFrame, prints: FingerprintSet) -> None:
    assert prints.row_columns("qi_rows_raw") == QI
    assert prints.contains_rows(raw[QI], "qi_rows_raw").all()
    assert prints.contains_rows(desensitized[QI], "qi_rows_desensitized").all()
    assert prints.counts()["qi_rows_desensitized"] < prints.counts()["qi_rows_raw"]
    shifted = raw[QI].copy()
    shifted["出生日期"] = shifted["出生日期"] + pd.Timedelta(days=400)
    assert prints.contains_rows(shifted, "qi_rows_raw").mean() < 0.05


def test_row_probe_needs_the_columns(prints: FingerprintSet, raw: pd.DataFrame) -> None:
    with pytest.raises(FingerprintError, match="lacks columns"):
        prints.contains_rows(raw[["姓名", "性别"]], "rows_raw")
    with pytest.raises(FingerprintError, match="unknown row kind"):
        prints.row_columns("values")


def test_counts_and_value_columns(prints: FingerprintSet, raw: pd.DataFrame) -> None:
    counts = prints.counts()
    assert set(counts) == set(KINDS)
    assert counts["rows_raw"] == len(raw)
    # IDs, names (some repeat), phones, addresses and pseudonyms: close to five per person.
    assert 4 * len(raw) < counts["values"] <= 5 * len(raw)
    assert prints.columns["values"] == ["姓名", "公民身份号码", "手机号码", "住址", "公民身份号码 (pseudonyms)"]
    for kind in KINDS:
        array = prints.arrays[kind]
        assert array.dtype == np.uint64 and bool(np.all(array[1:] > array[:-1]))


def test_save_load_round_trip(tmp_path: Path, raw: pd.DataFrame, prints: FingerprintSet) -> None:
    prints.save(tmp_path)
    loaded = FingerprintSet.load(tmp_path, PEPPER)
    assert loaded.counts() == prints.counts()
    for kind in KINDS:
        assert np.array_equal(loaded.arrays[kind], prints.arrays[kind])
        if kind != "values":
            assert loaded.row_columns(kind) == prints.row_columns(kind)
    assert loaded.contains_values(raw["公民身份号码"]).all()
    assert loaded.contains_rows(raw, "rows_raw").all()
    manifest = (tmp_path / "manifest.json").read_text(encoding="utf-8")
    assert fingerprint_key(PEPPER) not in manifest
    assert PEPPER.decode() not in manifest
    assert json.loads(manifest)["normalisation"] == "fp-norm-1"


def test_wrong_pepper_finds_nothing(tmp_path: Path, raw: pd.DataFrame, prints: FingerprintSet) -> None:
    prints.save(tmp_path)
    with pytest.raises(FingerprintError, match="another pepper"):
        FingerprintSet.load(tmp_path, OTHER_PEPPER)
    unchecked = FingerprintSet.load(tmp_path, OTHER_PEPPER, check_key=False)
    assert not unchecked.contains_values(raw["公民身份号码"]).any()
    assert not unchecked.contains_values(raw["手机号码"]).any()
    assert not unchecked.contains_rows(raw, "rows_raw").any()


def test_damaged_files_are_refused(tmp_path: Path, prints: FingerprintSet) -> None:
    prints.save(tmp_path)
    array = np.load(tmp_path / "values.npy")
    array[0] ^= np.uint64(1)
    np.save(tmp_path / "values.npy", array)
    with pytest.raises(FingerprintError, match="sha256"):
        FingerprintSet.load(tmp_path, PEPPER)
    with pytest.raises(FingerprintError, match="manifest"):
        FingerprintSet.load(tmp_path / "absent", PEPPER)


def test_hash_values_is_what_the_set_holds(raw: pd.DataFrame, prints: FingerprintSet) -> None:
    hashes = prints.hash_values(raw["手机号码"])
    assert hashes.dtype == np.uint64 and len(hashes) == len(raw)
    assert prints.contains_hashes(hashes).all()
    assert np.array_equal(hashes, prints.hash_values("+86 " + raw["手机号码"]))


GLUED_PARTS = [
    ("110101", "19900101", "1234"),
    ("１１０１０１", " 1990-0101 ", "123X"),
    ("+86", "138 0279", "0360"),
    ("0086-", "13802790360", ""),
    ("张", "三", ""),
    ("Ab-C", "ＤＥ", "f.g"),
]


@pytest.mark.parametrize("parts", GLUED_PARTS, ids=[str(i) for i in range(len(GLUED_PARTS))])
def test_gluing_normalised_parts_is_normalising_the_glued_string(parts: tuple[str, str, str]) -> None:
    """The guard's split-cells probe normalises each distinct cell once and glues (issue 7's speed
    target); for identifiers' characters that must equal normalising the glued string."""
    arrays = [normalise_for_fingerprint(pa.array([p], pa.large_string())) for p in parts]
    whole = normalise_for_fingerprint(pa.array(["".join(parts)], pa.large_string()))
    assert join_normalised(arrays).to_pylist() == whole.to_pylist()


def test_a_glued_cell_written_as_a_whole_decimal_reads_as_its_number() -> None:
    """``5200.0`` alone normalises to 5200; as a cell among others it is still the number 5200."""
    arrays = [normalise_for_fingerprint(pa.array([p], pa.large_string())) for p in ("13802", "790360.0")]
    assert join_normalised(arrays).to_pylist() == ["13802790360"]


def test_contains_normalised_finds_what_contains_values_finds(tmp_path: Path) -> None:
    raw = synthetic.generate_all(50, seed=2)["residents"]
    prints = FingerprintSet.build(raw, raw, RESIDENT_TYPES, pepper=b"p" * 32)
    probes = pd.Series([str(raw["公民身份号码"].iloc[0]), "１３８", str(raw["手机号码"].iloc[1]), "无关"])
    normalised = normalise_for_fingerprint(pa.array(probes.tolist(), pa.large_string()))
    assert prints.contains_normalised(normalised).tolist() == prints.contains_values(probes).tolist()
    assert prints.contains_normalised(normalised).tolist() == [True, False, True, False]


@pytest.mark.parametrize(
    "values",
    [
        ["13800138000", "张伟", "a1b2"],  # all different: returned as they are
        ["13800138000", "张伟", "13800138000", "a1b2", "张伟"],  # repeats: the hash table's answer
        [],
        ["only"],
    ],
)
def test_distinct_values_are_pc_unique_with_or_without_repeats(values: list[str]) -> None:
    from desensitize.fingerprint_hashes import _unique

    for array in (pa.array(values, pa.large_string()), pa.chunked_array([values[:2], values[2:]], pa.large_string())):
        assert _unique(array).to_pylist() == pc.unique(array).to_pylist()


def test_a_hash_collision_still_gives_the_distinct_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal hashes of different values (a collision, forced here) must not drop a value: pc.unique decides."""
    from desensitize import fingerprint_hashes

    monkeypatch.setattr(fingerprint_hashes, "siphash", lambda values, key: np.zeros(len(values), dtype=np.uint64))
    values = pa.array(["13800138000", "13900139000", "13800138000"], pa.large_string())
    assert fingerprint_hashes._unique(values).to_pylist() == ["13800138000", "13900139000"]
