"""Red team on the export guard's shortcuts of f76c32d (distinct combinations per set of columns, the
per-array letters pattern, decimals proven short, Parquet hidden characters per distinct value, warm-up).

Each attack either judges a crafted output (it must not pass) or compares a shortcut with what the code
before f76c32d computed (RE2's full ``[^\\p{L}\\p{N}]+``, every decimal rendered, every row hashed,
every cell checked), on inputs chosen to sit where the shortcut could differ.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from desensitize import FingerprintSet, letters
from desensitize.letters import NON_ALNUM, non_alnum_pattern, strip_non_alnum
from sandbox.guard import SourceCopy, judge
from sandbox.guard.combinations import Combinations
from sandbox.guard.probe import _short_decimals, digit_forms
from sandbox.guard.readers.strict import hidden_cells
from tests.guard_support import reference_digit_forms

pytestmark = pytest.mark.attack

PEPPER = b"redteam15-pepper-0123456789abcdef"
ROWS = 300
PHONE = "13812345670"  # ends in 0: a decimal drops it (0.1381234567)
ID = "230502198001011234"


@pytest.fixture(scope="module")
def copy() -> tuple[FingerprintSet, SourceCopy]:
    return built_copy()


@functools.cache
def built_copy() -> tuple[FingerprintSet, SourceCopy]:
    """(fingerprints, copy) of a small residents table whose raw phones include :data:`PHONE`."""
    rng = np.random.default_rng(15)
    raw = pd.DataFrame(
        {
            "公民身份号码": [ID] + [f"2305021980{i:04d}{i % 10:03d}X"[:18] for i in range(1, ROWS)],
            "手机号码": [PHONE] + [f"139{i:08d}" for i in range(1, ROWS)],
            "区县": rng.choice(["尖山区", "岭东区", "四方台区", "宝山区"], ROWS),
            "收入": rng.normal(4000, 900, ROWS).round(2),
        }
    )
    desensitized = raw.drop(columns=["手机号码"]).copy()
    desensitized["公民身份号码"] = [hashlib.sha256(v.encode()).hexdigest()[:16] for v in raw["公民身份号码"]]
    prints = FingerprintSet.build(
        raw,
        desensitized,
        {"公民身份号码": "cn_resident_id", "手机号码": "cn_phone"},
        pepper=PEPPER,
        pseudonym_columns=["公民身份号码"],
        quasi_identifier_columns=["区县"],
        workers=1,
    )
    return prints, SourceCopy.from_frame("residents", desensitized)


def _judge(tmp: Path, frame: pd.DataFrame | pa.Table, copy: tuple[FingerprintSet, SourceCopy], *, fmt: str, **kw):
    prints, source = copy
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    path = out / f"t.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif isinstance(frame, pa.Table):
        pq.write_table(frame, path, **kw)
    else:
        frame.to_parquet(path, index=False)
    data = path.read_bytes()
    outputs = [{"name": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    return judge(out, outputs, fingerprints={"residents": prints}, sources={"residents": source})


def _blocked(judged, rules: tuple[str, ...] = ("identifier.", "format.invisible_characters")) -> None:
    """Blocked, for the attack's own reason (a plain table of this copy is 'review': unaccounted)."""
    detail = [f.as_json() for f in judged.findings]
    assert judged.verdict == "block", detail
    assert any(f.rule.startswith(rules) for f in judged.findings), detail


def _noise(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    return rng.uniform(lo, hi, n).round(2)


# --- 3. decimals proven short ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        0.1381234567,  # phone with its trailing zero dropped (10 digits)
        1381234.567,  # 7 whole + 3 fraction
        138123456.7,  # 9 whole + 1 fraction: |v| < 10**9 and one place (not short: 10 digits)
        -0.1381234567,
        1.381234567e-5,  # scientific notation: mantissa digits
    ],
)
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_phone_in_decimal_column_is_caught(tmp_path: Path, copy, value: float, fmt: str) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"区县": ["尖山区"] * 20, "x": np.concatenate([[value], _noise(rng, 19, 1, 100)])})
    _blocked(_judge(tmp_path, frame, copy, fmt=fmt), ("identifier.",))


def _edge_decimals() -> np.ndarray:
    rng = np.random.default_rng(3)
    out: list[float] = []
    for places in range(0, 13):
        k = rng.integers(1, 10**9, 400)
        base = k / 10.0**places
        out += base.tolist()
        out += np.nextafter(base, np.inf).tolist() + np.nextafter(base, -np.inf).tolist()
    for exponent in range(-25, 12):  # every magnitude, 10 to 17 significant digits
        mantissa = rng.integers(10**9, 10**17, 300) / 10.0**16
        out += (mantissa * 10.0**exponent).tolist()
    out += [0.5, -0.25, 1e-9, 9.99999999e8 + 0.5, 999999999.5, 0.999999999, 0.9999999995, 5e-324, 1e-310]
    values = np.asarray(out, dtype=np.float64)
    return np.concatenate([values, -values, values.astype(np.float32).astype(np.float64)])


def test_short_decimal_proof_is_sound() -> None:
    values = _edge_decimals()
    values = values[np.isfinite(values) & (values != np.floor(values))]
    short = _short_decimals(values)
    for v in values[short]:
        text = str(np.float64(v)).split("e")[0]
        digits = "".join(ch for ch in text if ch.isdigit()).lstrip("0")
        assert len(digits) <= 9, (v, text)
    assert set(digit_forms(values)) == reference_digit_forms(values)


# --- 1. keys glued across cells ---------------------------------------------------------------------


def _split_frame(pieces: list[str], rng: np.random.Generator, rows: int, extra_null: bool) -> pd.DataFrame:
    columns = {}
    for j, piece in enumerate(pieces):
        filler = [f"{x:0{len(piece)}d}" for x in rng.integers(0, 10 ** len(piece), rows)]
        filler[0] = filler[rows // 2] = piece  # first and middle row: one combination, twice
        columns[f"c{j}"] = filler
    frame = pd.DataFrame(columns)
    if extra_null:
        frame["note"] = [None if i % 3 else "备注" for i in range(rows)]
    return frame


@pytest.mark.parametrize(
    ("pieces", "order", "rows"),
    [
        (["1381234", "5670"], (1, 0), 40),  # two cells, reversed order
        (["138", "1234", "5670"], (2, 0, 1), 40),  # three cells, shuffled
        (["2305021980", "01011234"], (0, 1), 40),  # an ID over two cells
        (["138", "1234", "5670"], (1, 2, 0), 320),  # ~320**3 possible combinations: hashed, not bitmap
    ],
)
def test_key_split_over_cells_is_caught(tmp_path: Path, copy, pieces, order, rows) -> None:
    rng = np.random.default_rng(rows)
    frame = _split_frame([pieces[i] for i in order], rng, rows, extra_null=True)
    frame.insert(1, "gap", ["岭东区"] * rows)  # not adjacent
    _blocked(_judge(tmp_path, frame, copy, fmt="parquet"), ("identifier.split_cells",))


def test_combinations_equal_every_row_hashed() -> None:
    rng = np.random.default_rng(5)
    for radices in ([3, 5, 7], [1, 4, 2], [300, 300, 300], [2**13, 2**12, 3], [1, 1]):
        rows = 5_000
        codes = [rng.integers(0, r, rows) for r in radices]
        combos = Combinations(codes, radices)
        for width in (2, len(radices)):
            for cols in itertools.permutations(range(len(radices)), width):
                got = set(zip(*[c.tolist() for c in combos.distinct(cols)], strict=True))
                want = set(zip(*[codes[i].tolist() for i in cols], strict=True))
                assert got == want, (radices, cols)


# --- 2. letters and numbers ----------------------------------------------------------------------


def _full(array: pa.Array) -> list:
    return pc.replace_substring_regex(array, NON_ALNUM, "").to_pylist()


def _every_kind() -> list[str]:
    """One character per Unicode category and plane, combining marks, NFKC-changing characters."""
    picks: dict[str, list[str]] = {}
    for cp in itertools.chain(range(0x80, 0x3400), range(0xA000, 0x10000), range(0x10000, 0x20000, 7), [0xE0001]):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        bucket = picks.setdefault(unicodedata.category(ch), [])
        if len(bucket) < 40:
            bucket.append(ch)
    return [c for bucket in picks.values() for c in bucket]


def test_letters_pattern_equals_re2_on_every_category() -> None:
    chars = _every_kind()
    texts = [f"1{c}38{c}1234{c}5670" for c in chars] + ["".join(chars[i : i + 9]) for i in range(0, len(chars), 9)]
    array = pa.array([*texts, None, ""], type=pa.large_string())
    assert strip_non_alnum(array).to_pylist() == _full(array)
    assert non_alnum_pattern(array) != NON_ALNUM  # the per-array pattern was used


@pytest.mark.parametrize("distinct", [letters.FULL_PATTERN_CHARS - 1, letters.FULL_PATTERN_CHARS + 1])
def test_letters_pattern_near_the_character_threshold(distinct: int) -> None:
    chars = [chr(cp) for cp in range(0x2000, 0x2000 + distinct)]  # punctuation, symbols, CJK radicals …
    texts = [f"138{c}12345670" for c in chars]
    array = pa.array(texts, type=pa.large_string())
    assert strip_non_alnum(array).to_pylist() == _full(array)


def test_letters_pattern_with_thousands_of_scattered_characters() -> None:
    """Just under the threshold, none adjacent (RE2 cannot merge them into ranges), assigned or not."""
    chars: list[str] = []
    cp = 0x80
    while len(chars) < letters.FULL_PATTERN_CHARS - 1:
        ch = chr(cp)
        if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(ch)[0] not in "LN":
            chars.append(ch)
            cp += 2
        else:
            cp += 1
    unassigned = [chr(cp) for cp in range(0x30000, 0x30000 + 3 * 3_999, 3)]
    for pool in (chars, unassigned):
        array = pa.array([f"138{c}12345670" for c in pool], type=pa.large_string())
        assert non_alnum_pattern(array) != NON_ALNUM
        assert strip_non_alnum(array).to_pylist() == _full(array)


@pytest.mark.parametrize("rows", [letters.FULL_PATTERN_ROWS, letters.FULL_PATTERN_ROWS + 1])
def test_letters_pattern_near_the_row_threshold(rows: int) -> None:
    base = ["1\u0301381\u20e32345670", "ａｂ\U0001d7d9\u3000x", "\u00a0\u2028z"]
    array = pa.chunked_array([pa.array((base * (rows // 3 + 1))[:rows], type=pa.large_string())])
    assert strip_non_alnum(array).to_pylist() == _full(array)


@pytest.mark.parametrize(
    "text",
    [
        "1\u03013\u03018\u030112345670",  # combining acute accents between digits (Mn)
        "138\U0001d11e1234\U0001d11e5670",  # a musical symbol outside the BMP (So)
        "\U0001d7cf\U0001d7d1\U0001d7d6\U0001d7cf\U0001d7d0\U0001d7d1\U0001d7d2\U0001d7d3\U0001d7d4\U0001d7d5\U0001d7ce",
        "１３８\u200a１２３４\u205f５６７０",  # full-width digits, hair space, math space
        "138\u00ad1234\u00ad5670",  # soft hyphens (Cf)
        "138\u2e3a1234\u30fb5670",  # two-em dash, katakana middle dot
        "电话138\u20dd1234\u20dd5670号",  # enclosing circles (Me)
    ],
)
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_phone_in_unicode_disguise_is_caught(tmp_path: Path, copy, text: str, fmt: str) -> None:
    frame = pd.DataFrame({"区县": ["尖山区", "岭东区"], "备注": [text, "无"]})
    _blocked(_judge(tmp_path, frame, copy, fmt=fmt))


# --- 4. Parquet hidden characters per distinct value ----------------------------------------------


@pytest.mark.parametrize("hidden", ["\u200b", "\u0007", "\ufeff", "\u202e", "\u2060"])
@pytest.mark.parametrize(
    "layout", ["dictionary", "plain", "row_groups", "arrow_dictionary", "dictionary_row_groups", "nulls"]
)
def test_hidden_character_in_parquet_text_is_caught(tmp_path: Path, copy, hidden: str, layout: str) -> None:
    rows = 3_000
    values = ["尖山区", "岭东区", "宝山区"] * (rows // 3)
    values[-1] = f"岭东{hidden}区"  # one cell, in the last row group
    if layout == "nulls":
        values = [None if i % 2 else v for i, v in enumerate(values)]
        values[-1] = f"岭东{hidden}区"
    array = pa.array(values, type=pa.string())
    if layout in ("arrow_dictionary", "dictionary_row_groups"):
        array = array.dictionary_encode()
    table = pa.table({"区县": array, "n": pa.array(np.arange(rows))})
    kw = {"use_dictionary": layout != "plain"}
    if layout in ("row_groups", "dictionary_row_groups"):
        kw["row_group_size"] = 500
    judged = _judge(tmp_path, table, copy, fmt="parquet", **kw)
    _blocked(judged, ("format.invisible_characters",))


def test_hidden_cells_per_distinct_value_equal_per_cell() -> None:
    from sandbox.guard.readers.strict import dictionary_codes

    cells = ["a", "b\u200bc", None, "b\u200bc", "d\u00a0", "e\u180e", "f"] * 50
    array = pa.chunked_array([pa.array(cells[:100]), pa.array(cells[100:])])
    assert bool(hidden_cells(dictionary_codes(array).dictionary)) == bool(hidden_cells(array))


# --- 5. warm-up ------------------------------------------------------------------------------------


def test_warm_up_leaves_the_guard_as_strict(tmp_path: Path, copy) -> None:
    from sandbox.guard import warm

    warm()
    frame = pd.DataFrame({"区县": ["尖山区"] * 5, "x": [0.1381234567, 1.5, 2.5, 3.5, 4.5]})
    _blocked(_judge(tmp_path, frame, copy, fmt="parquet"), ("identifier.",))
