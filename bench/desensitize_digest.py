"""Digests of ``desensitize_table``'s output, to show a speed-up changed nothing it produces.

Why: issue 21 asks for a faster desensitization, and a faster one that writes other values, other
pseudonyms, another report or other guard fingerprints is a different product, not a faster one.
Run on the old code and on the new one, the digests must be identical. Each case digests:

* the frame: column names in order, each column's dtype and values (``hash_pandas_object``,
  nulls included, index left out);
* the report without ``seconds`` and ``rows_per_second`` (the only timed parts);
* the fingerprints: every kind's sorted array, the columns each was built from, and the meta;
* ``kept_rows``.

Cases: seeds 0, 1, 2 of ``samples.residents`` at ``--rows`` rows (default 50,000) under the L2, L3 and
L4 policies without the free-text 备注 column, and the whole table (with 备注) under L4; ``--large``
adds one whole-table case at that many rows, where the stages fork onto the second core.

Run: ``python bench/desensitize_digest.py > after.json`` and compare with the digests of the code
before the change (``--check FILE`` exits non-zero on any difference and names the cases).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import Any

import numpy as np
import pandas as pd
from benchinfo import emit

from desensitize import desensitize_table, load_policy, profile_columns
from samples import residents

PEPPER = b"bench-pepper-not-a-real-key-32by"
NOTES = "备注"
#: Report keys that hold timings, the only parts of a run allowed to differ.
TIMED = ("seconds", "rows_per_second")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


def frame_digest(frame: pd.DataFrame) -> dict[str, Any]:
    """Column order, and per column its dtype and a digest of its values (nulls included)."""
    columns = {}
    for name in frame.columns:
        values = frame[name]
        hashed = pd.util.hash_pandas_object(values, index=False).to_numpy()
        nulls = np.asarray(values.isna(), dtype=bool)
        columns[str(name)] = {"dtype": str(values.dtype), "values": _sha(hashed.tobytes() + nulls.tobytes())}
    return {"names": [str(c) for c in frame.columns], "rows": len(frame), "columns": columns}


def result_digest(result: Any) -> dict[str, Any]:
    report = {k: v for k, v in result.report.items() if k not in TIMED}
    fingerprints = result.fingerprints
    return {
        "frame": frame_digest(result.frame),
        "report": _sha(json.dumps(report, ensure_ascii=False, sort_keys=True, default=str).encode()),
        "fingerprints": {
            "arrays": {
                k: _sha(np.asarray(a, dtype=np.uint64).tobytes()) for k, a in sorted(fingerprints.arrays.items())
            },
            "columns": _sha(json.dumps(fingerprints.columns, ensure_ascii=False, sort_keys=True).encode()),
            "meta": _sha(json.dumps(fingerprints.meta, ensure_ascii=False, sort_keys=True, default=str).encode()),
        },
        "kept_rows": _sha(np.asarray(result.kept_rows, dtype=bool).tobytes()),
    }


def run_case(rows: int, seed: int, level: str, *, whole: bool) -> dict[str, Any]:
    table = residents(rows, seed=seed)
    types = {p.name: p.pii_type for p in profile_columns(table)}
    if not whole:
        table = table.drop(columns=[NOTES])
        types = {c: t for c, t in types.items() if c != NOTES}
    result = desensitize_table(table, types, load_policy(level), pepper=PEPPER)
    return {"case": f"{'whole' if whole else 'structured'}-{level}-seed{seed}-{rows}", **result_digest(result)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--levels", nargs="*", default=["L2", "L3", "L4"])
    parser.add_argument("--large", type=int, default=0, help="also the whole table at this many rows (forks)")
    parser.add_argument("--check", help="a file of digests (this script's output) to compare with")
    args = parser.parse_args(argv)
    cases = [(args.rows, s, lv, False) for s in args.seeds for lv in args.levels]
    cases += [(args.rows, s, "L4", True) for s in args.seeds]
    if args.large:
        cases.append((args.large, 0, "L4", True))
    expected: dict[str, Any] = {}
    if args.check:
        with open(args.check, encoding="utf-8") as handle:
            expected = {d["case"]: d for d in map(json.loads, filter(str.strip, handle))}
    differ = []
    for rows, seed, level, whole in cases:
        digest = run_case(rows, seed, level, whole=whole)
        emit(digest)
        if args.check and expected.get(digest["case"]) != digest:
            differ.append(digest["case"])
    if differ:
        print(f"DIFFERENT: {differ}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
