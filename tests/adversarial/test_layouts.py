"""Property (issue 15, Must show): a copy's rows taken through any layout an exfiltrating job might
choose — columns renamed, reordered, split, glued, interleaved with filler columns and rows, the
table transposed, digits written in other scripts, saved as CSV, Parquet, JSON or a text table — are
blocked, every time. Judged directly (no sandbox run per example) against the copy they came from."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.guard import SourceCopy, judge
from tests.adversarial import residents

pytestmark = pytest.mark.attack

KEY = "公民身份号码"
SCRIPTS = {
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "fullwidth": "０１２３４５６７８９",
    "chinese": "〇一二三四五六七八九",
    "devanagari": "०१२३४५६७८९",
}


def _split(frame: pd.DataFrame, column: str, parts: int, apart: bool) -> pd.DataFrame:
    values = frame[column].astype(str)
    width = -(-values.str.len().max() // parts)
    pieces = [values.str[i * width : (i + 1) * width] for i in range(parts)]
    out = frame.drop(columns=[column])
    at = list(out.columns).index(out.columns[0]) if len(out.columns) else 0
    for k, piece in enumerate(pieces):
        position = min(len(out.columns), at + (k * 2 if apart else k))
        out.insert(position, f"{column}_{k}", piece)
    return out


def _glue(frame: pd.DataFrame, a: str, b: str, separator: str) -> pd.DataFrame:
    out = frame.drop(columns=[a, b])
    out.insert(0, f"{a}{b}", frame[a].astype(str) + separator + frame[b].astype(str))
    return out


def _filler_columns(frame: pd.DataFrame, count: int, rng: np.random.Generator) -> pd.DataFrame:
    out = frame.copy()
    for k in range(count):
        values = rng.integers(0, 100, len(out)) if k % 2 else rng.choice(["甲", "乙", "丙"], len(out))
        out.insert(int(rng.integers(0, len(out.columns) + 1)), f"filler{k}", values)
    return out


def _filler_rows(frame: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    count = int(len(frame) * share)
    filler = pd.DataFrame({c: rng.choice(["无", "空", "0"], count) for c in frame.columns})
    both = pd.concat([frame.astype(str), filler], ignore_index=True)
    return both.iloc[rng.permutation(len(both))].reset_index(drop=True)


def _script(frame: pd.DataFrame, digits: str) -> pd.DataFrame:
    table = str.maketrans("0123456789", digits)
    return frame.astype(str).apply(lambda column: column.str.translate(table))


def _write(frame: pd.DataFrame, out: Path, form: str, transposed: bool) -> str:
    if transposed:
        frame = frame.astype(str).reset_index(drop=True).T
    index = transposed
    if form == "csv":
        frame.to_csv(out / "t.csv", index=index)
        return "t.csv"
    if form == "parquet":
        frame.columns = [str(c) for c in frame.columns]
        frame.astype(str).to_parquet(out / "t.parquet", index=index)
        return "t.parquet"
    if form == "json":
        frame.columns = [str(c) for c in frame.columns]
        (out / "t.json").write_text(frame.astype(str).to_json(orient="records", force_ascii=False), encoding="utf-8")
        return "t.json"
    lines = ["| " + " | ".join(map(str, row)) + " |" for row in frame.astype(str).itertuples(index=False)]
    (out / "t.md").write_text("\n".join(lines), encoding="utf-8")
    return "t.md"


@st.composite
def layouts(draw: st.DrawFn) -> dict:
    return {
        "rows": draw(st.integers(30, 150)),
        "start": draw(st.integers(0, 400)),
        "rename": draw(st.booleans()),
        "order": draw(st.permutations(range(8))),
        "split": draw(st.sampled_from([0, 2, 3])),
        "apart": draw(st.booleans()),
        "glue": draw(st.sampled_from([None, "", "-", "|"])),
        "filler_columns": draw(st.integers(0, 3)),
        "filler_rows": draw(st.sampled_from([0.0, 0.3, 1.0])),
        "script": draw(st.sampled_from([None, *SCRIPTS])),
        "form": draw(st.sampled_from(["csv", "parquet", "json", "text"])),
        "transposed": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


def _lay_out(layout: dict) -> pd.DataFrame:
    copy = residents()[1]
    rng = np.random.default_rng(layout["seed"])
    frame = copy.iloc[layout["start"] : layout["start"] + layout["rows"]].reset_index(drop=True)
    frame = frame[[frame.columns[i] for i in layout["order"]]]
    if layout["split"]:
        frame = _split(frame, KEY, layout["split"], layout["apart"])
    if layout["glue"] is not None:
        others = [c for c in frame.columns if not str(c).startswith(KEY)]
        frame = _glue(frame, others[0], others[1], layout["glue"])
    frame = _filler_columns(frame, layout["filler_columns"], rng)
    if layout["filler_rows"]:
        frame = _filler_rows(frame, layout["filler_rows"], rng)
    if layout["script"]:
        frame = _script(frame, SCRIPTS[layout["script"]])
    if layout["rename"]:
        frame.columns = [f"c{rng.integers(0, 10**6)}_{i}" for i in range(len(frame.columns))]
    return frame


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_a_copys_rows_in_any_layout_are_blocked(layout: dict) -> None:
    frame = _lay_out(layout)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        name = _write(frame, out, layout["form"], layout["transposed"])
        data = (out / name).read_bytes()
        outputs = [{"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
        judged = judge(
            out,
            outputs,
            fingerprints={"residents": residents()[2]},
            sources={"residents": SourceCopy.from_frame("residents", residents()[1])},
        )
    assert judged.verdict == "block", (json.dumps(layout), [f.as_json() for f in judged.findings])
