"""Red team 23a: how desensitization time grows with the number of default quasi-identifiers.

Why: ingest accepts up to ``IngestLimits.max_columns`` (1,000) columns, and in a personal table (L3/L4) every
kept column with 20 or more distinct values is a default quasi-identifier (``desensitize.quasi``). The
k-anonymity search tries every quasi-identifier at every step over keys of all of them, so its work grows
about with the cube of their number: a wide but small file ties up a request (and a core) for hours.

Run: ``PYTHONPATH=. python bench/redteam23a_wide_qi.py COLUMNS [ROWS]`` (prints seconds; no assertion).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from desensitize import desensitize_table, load_policy


def main(columns: int, rows: int) -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"性别": rng.choice(["男", "女"], rows), "民族": rng.choice(["汉", "回"], rows)})
    for j in range(columns):
        frame[f"c{j}"] = rng.integers(0, 30, rows).astype(str)  # 30 distinct values: a default quasi-identifier
    started = time.perf_counter()
    result = desensitize_table(
        frame, {"性别": "gender", "民族": "ethnicity"}, load_policy("L3"), pepper=b"bench-redteam23a-pepper-0123456789"
    )
    seconds = time.perf_counter() - started
    qis = len(result.report["k_anonymity"]["quasi_identifiers"])
    print(f"columns={columns} rows={rows} quasi_identifiers={qis} seconds={seconds:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
