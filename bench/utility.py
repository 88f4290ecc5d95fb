"""Utility and re-identification risk of the demo tables' copies at every level, beside the time taken.

Why: issue 16 asks that a copy be usable (可用) as well as safe, and that both be measured the way
a data-protection officer knows from ARX and sdcMicro. For each demo table (``samples.synthetic``:
residents, social_insurance, market_entities; ``--rows`` residents, the other two in proportion)
and each level L1..L4, this desensitizes the table with the shipped policy (column types from
``profile_columns``, as ``keyong dataset desensitize`` does; free-text columns left out: their
redaction speed is ``bench/desensitize_bench.py``'s subject, and analyses do not run on them) and
prints one JSON object per (table, level):

* ``seconds``: the desensitization's stages (risk and utility measurement included) and its total;
* ``workload``: the summary of the standard workload's relative errors (``desensitize.utility``)
  and the error of each query family;
* ``risk``: prosecutor highest / average, records above the threshold, sample uniques and k,
  before (the raw table: the baseline every level is compared with) and after, and whether the
  level's threshold is met;
* ``vs_baseline``: against the named baseline measured in the same run (after a warm-up run that
  is not reported), the L1 copy of the same table (L1 keeps values and has no quasi-identifiers:
  the least distorted copy Keyong makes): the change in median workload error and the ratio of
  desensitization times; and the raw table's risk against the copy's (``risk_reduction``: how
  much of the highest and average risk is removed).

Run: ``.venv/bin/python bench/utility.py [--rows 1000000]``; one JSON object per line, each with
the machine it ran on.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
from benchinfo import emit, machine

from desensitize import desensitize_table, load_policy, profile_columns
from desensitize.policy import LEVELS
from samples import synthetic

PEPPER = b"bench-utility-pepper-not-a-real-key"


def _risk_line(risk: dict[str, Any] | None) -> dict[str, Any] | None:
    if risk is None:
        return None
    prosecutor = risk.get("prosecutor") or {}
    return {
        "records": risk["records"],
        "classes": risk["classes"],
        "k": risk["k"],
        "highest": prosecutor.get("highest"),
        "average": prosecutor.get("average"),
        "records_above_threshold": prosecutor.get("records_above_threshold"),
        "sample_uniques_share": risk["sample_uniques_share"],
        "note": risk["note"],
    }


def _reduction(before: float | None, after: float | None) -> float | None:
    """Share of the raw table's risk the copy removes (1 = all of it)."""
    if before is None or after is None or before == 0:
        return None
    return round(1.0 - after / before, 6)


def _one(table: str, frame: pd.DataFrame, types: dict[str, str | None], level: str) -> dict[str, Any]:
    started = time.perf_counter()
    result = desensitize_table(frame, types, load_policy(level), pepper=PEPPER)
    seconds = time.perf_counter() - started
    report = result.report
    utility, risk = report["utility"], report["risk"]
    before, after = _risk_line(risk["before"]), _risk_line(risk["after"])
    return {
        "bench": "utility",
        "table": table,
        "level": level,
        "rows_in": report["rows_in"],
        "rows_out": report["rows_out"],
        "seconds": {"wall": round(seconds, 3), **{k: round(v, 3) for k, v in report["seconds"].items()}},
        "rows_per_s": round(len(frame) / seconds) if seconds > 0 else None,
        "workload": {
            **utility["summary"],
            "queries": {line["query"]: line["relative_error"] for line in utility["workload"]},
        },
        "information_loss": {
            c["name"]: {"height": f"{c['generalization_height']}/{c['max_height']}", "nue": c["non_uniform_entropy"]}
            for c in utility["columns"]
        },
        "risk": {"threshold": risk["threshold"], "before": before, "after": after, "met": risk["met"]},
        "risk_reduction": {
            "baseline": "raw table",
            "highest": _reduction((before or {}).get("highest"), (after or {}).get("highest")),
            "average": _reduction((before or {}).get("average"), (after or {}).get("average")),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="residents (the other tables in proportion)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    host = machine(numpy=np.__version__, pandas=pd.__version__)
    tables = synthetic.generate_all(args.rows, seed=args.seed)
    # Warm up (imports, compiled patterns, first allocations) so the first timed run, the L1
    # baseline, is not charged for them.
    for name, frame in tables.items():
        _one(name, frame.head(500), {p.name: p.pii_type for p in profile_columns(frame.head(500))}, "L1")
    for name, frame in tables.items():
        types = {p.name: p.pii_type for p in profile_columns(frame)}
        text = [c for c, t in types.items() if t == "free_text"]
        frame = frame.drop(columns=text)
        types = {c: t for c, t in types.items() if c not in text}
        baseline: dict[str, Any] | None = None
        for level in LEVELS:
            record = _one(name, frame, types, level)
            if baseline is None:
                baseline = record  # L1 comes first
            base_error = baseline["workload"]["median_relative_error"]
            error = record["workload"]["median_relative_error"]
            change = None if error is None or base_error is None else round(error - base_error, 6)
            record["vs_baseline"] = {
                "baseline": f"{name} L1 copy",
                "median_relative_error_change": change,
                "seconds_ratio": round(record["seconds"]["wall"] / baseline["seconds"]["wall"], 3),
            }
            record["machine"] = host
            emit(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
