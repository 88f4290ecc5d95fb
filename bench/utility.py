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

Then (issue 23) the joint risk of the demo's linked copies, one JSON object (``"bench":
"utility_joint"``) per set of quasi-identifiers: residents and social_insurance generated as the
demo makes them (``--joint-rows``, default the demo's 20,000 residents, seed 20261123), each
desensitized with the shipped policy of its level, their person keys re-keyed with the same group
key (as a licence granting the two jointly does), then ``desensitize.linkage.link_tables``:

* ``baseline``: the named baseline, *the per-table copies joined as they are* — the joint risk an
  operator licensed for both had before issue 23 (share of unique joined records, highest and
  average prosecutor risk per person, k in persons; and the share of unique rows among the rows
  that join, as issue 23 counted it);
* ``after``: the same figures on the linked copies, ``met``, ``risk_reduction``;
* ``utility_lost``: what reaching it cost (persons and rows suppressed per table, per column the
  ladder height reached, distinct values before/after, non-uniform entropy);
* ``seconds``: desensitization of each table, rekeying, and the joint anonymization.

The quasi-identifiers are those the base copies' reports list (``ladder_type`` if given, else
``type``). Two objects: ``"copies": "as made now"`` (base copies with issue 23's default
quasi-identifiers: 参保单位 and 参保日期 already generalized per table), and ``"copies": "as issue 23
found them"`` (the custodian rules the two out with ``not_quasi``, so the base copy keeps them
verbatim, as before issue 23; the bench then adds them back as quasi-identifiers of the joint view,
``added_by_bench``): its baseline is the risk issue 23 measured (99.6 % of joined rows unique), and
its ``after`` what a licence granting the two jointly would now serve from such copies.

Run: ``.venv/bin/python bench/utility.py [--rows 1000000] [--joint-rows 20000] [--joint-only]``;
one JSON object per line, each with the machine it ran on.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
from benchinfo import emit, machine

from desensitize import desensitize_table, load_policy, max_level, profile_columns
from desensitize.linkage import LinkedTable, licence_key, link_tables, rekey
from desensitize.policy import LEVELS
from samples import synthetic

PEPPER = b"bench-utility-pepper-not-a-real-key"
#: The demo's link group (app/demo: the licence grants residents and social insurance together).
JOINT_GROUP = ("residents", "social_insurance")
#: The quasi-identifiers issue 23 names for the demo's social insurance (employer, enrolment date).
ISSUE23_QI: dict[str, dict[str, str]] = {"social_insurance": {"参保单位": "employer", "参保日期": "date"}}


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


def _base_copy(name: str, frame: pd.DataFrame, extra: dict[str, str]) -> tuple[LinkedTable, float, list[str]]:
    """The table desensitized by its level's shipped policy, as ``keyong dataset desensitize`` does;
    the columns of ``extra`` ruled out of the default quasi-identifiers (kept as issue 23 found them)."""
    profiles = profile_columns(frame)
    types = {p.name: p.pii_type for p in profiles}
    policy = load_policy(max_level(profiles))
    started = time.perf_counter()
    rulings = {c: "bench: as issue 23 found the copy" for c in extra if c in frame.columns}
    result = desensitize_table(frame, types, policy, pepper=PEPPER, not_quasi=rulings)
    seconds = time.perf_counter() - started
    report = result.report
    qi = {q["column"]: q.get("ladder_type") or q["type"] for q in report["k_anonymity"]["quasi_identifiers"]}
    added = [c for c in extra if c not in qi and c in result.frame.columns]
    qi.update({c: extra[c] for c in added})
    keys = [c["name"] for c in report["columns"] if c["type"] == "cn_resident_id" and c["action"] == "pseudonymize"]
    sensitive = (report["k_anonymity"].get("l_diversity") or {}).get("column")
    table = LinkedTable(name, result.frame, keys[0], qi, sensitive, policy.k, policy.max_suppression, policy.risk)
    return table, seconds, added


def _inner_unique_share(tables: list[LinkedTable], frames: dict[str, pd.DataFrame]) -> float | None:
    """Share of unique rows among the rows that join (issue 23's count), by plain pandas."""
    joined: pd.DataFrame | None = None
    for t in tables:
        own = frames[t.name][[t.person_key, *t.quasi_identifiers]].dropna(subset=[t.person_key])
        own = own.set_axis(["(person)", *[f"{t.name}.{c}" for c in t.quasi_identifiers]], axis=1)
        joined = own if joined is None else joined.merge(own, on="(person)", how="inner")
    if joined is None or not len(joined):
        return None
    columns = [c for c in joined.columns if c != "(person)"]
    sizes = joined.groupby(columns, dropna=False, sort=False)["(person)"].transform("size")
    return round(float((sizes == 1).mean()), 6)


def _joint_line(figures: dict[str, Any], inner: float | None) -> dict[str, Any]:
    prosecutor = figures.get("prosecutor") or {}
    return {
        "records": figures["records"],
        "classes": figures["classes"],
        "k_persons": figures["k"],
        "unique_share": figures["sample_uniques_share"],
        "highest": prosecutor.get("highest"),
        "average": prosecutor.get("average"),
        "records_above_threshold": prosecutor.get("records_above_threshold"),
        "inner_join_unique_row_share": inner,
    }


def _joint(frames: dict[str, pd.DataFrame], rows: int, as_filed: bool) -> dict[str, Any]:
    """One measurement of the demo's linked copies (see the module docstring)."""
    seconds: dict[str, float] = {}
    tables: list[LinkedTable] = []
    added: dict[str, list[str]] = {}
    for name in JOINT_GROUP:
        table, took, extra = _base_copy(name, frames[name], ISSUE23_QI.get(name, {}) if as_filed else {})
        seconds[f"desensitize {name}"] = round(took, 3)
        tables.append(table)
        added[name] = extra
    started = time.perf_counter()
    key = licence_key(PEPPER, 1, JOINT_GROUP)
    for t in tables:
        column = str(t.person_key)
        t.frame = t.frame.copy()
        t.frame[column] = rekey(t.frame[column], key)
    seconds["rekey"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    result = link_tables(tables)
    seconds["link_tables"] = round(time.perf_counter() - started, 3)
    report = result.report
    before = _joint_line(report["before"], _inner_unique_share(tables, {t.name: t.frame for t in tables}))
    after = _joint_line(report["after"], _inner_unique_share(tables, result.frames))
    return {
        "bench": "utility_joint",
        "group": report["group"],
        "copies": "as issue 23 found them" if as_filed else "as made now",
        "residents": rows,
        "rows_in": {t.name: len(t.frame) for t in tables},
        "quasi_identifiers": report["quasi_identifiers"],
        "added_by_bench": added,
        "k_required": report["k_required"],
        "threshold": report["threshold"],
        "seconds": seconds,
        "baseline": {"name": "the per-table copies joined as they are", **before},
        "after": after,
        "met": report["met"],
        "reason": report["reason"],
        "risk_reduction": {
            "baseline": "the per-table copies joined as they are",
            "highest": _reduction(before["highest"], after["highest"]),
            "average": _reduction(before["average"], after["average"]),
            "unique_share": _reduction(before["unique_share"], after["unique_share"]),
        },
        "utility_lost": {
            "persons": report["persons"],
            "persons_suppressed": report["persons_suppressed"],
            "rows_suppressed": report["rows_suppressed"],
            "tables": report["utility"]["tables"],
            "columns": {
                c["column"]: {
                    "height": f"{c['generalization_height']}/{c['max_height']}",
                    "distinct": f"{c['distinct_before']}->{c['distinct_after']}",
                    "nue": c["non_uniform_entropy"],
                }
                for c in report["utility"]["columns"]
            },
            "steps": len(report["steps"]),
        },
    }


def _levels(tables: dict[str, pd.DataFrame], host: dict[str, Any]) -> None:
    """The per-table, per-level measurements (issue 16)."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="residents (the other tables in proportion)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--joint-rows", type=int, default=20_000, help="residents of the linked copies (demo: 20000)")
    parser.add_argument("--joint-seed", type=int, default=20261123, help="seed of the linked copies (the demo's)")
    parser.add_argument("--joint-only", action="store_true", help="only the linked copies (issue 23)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.joint_rows < 1:
        parser.error("--rows and --joint-rows must be at least 1")
    host = machine(numpy=np.__version__, pandas=pd.__version__)
    if not args.joint_only:
        _levels(synthetic.generate_all(args.rows, seed=args.seed), host)
    frames = synthetic.generate_all(args.joint_rows, seed=args.joint_seed)
    for as_filed in (True, False):
        record = _joint(frames, args.joint_rows, as_filed)
        record["machine"] = host
        emit(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
