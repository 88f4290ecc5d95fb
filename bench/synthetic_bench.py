"""Benchmark of the synthetic-data generator, against a naive per-row baseline.

Why: the demo, the end-to-end tests and every later benchmark start by generating tables,
and the generator is the first place where "vectorize, never loop over rows" is either
true or not.  This script measures it and prints one JSON object per line:

* ``residents`` and ``generate_all`` at ``--rows`` residents (default 1,000,000);
* ``valid_resident_ids`` over the generated ID column (the column validation later issues use);
* ``naive_residents``: the same residents columns built the obvious way, one row at a time
  with ``random.Random(seed)`` and Python string formatting, on ``--baseline-rows`` rows
  (default 50,000), and the speed-up of the vectorized generator over it.

Each measurement is the best of ``--repeat`` runs (default 3).  Run: ``make bench`` or
``.venv/bin/python bench/synthetic_bench.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random

import numpy as np
import pandas as pd
from benchinfo import best_of, emit, machine

from desensitize import id_check_char, valid_resident_ids
from samples import synthetic


def naive_residents(n: int, seed: int = 0) -> pd.DataFrame:
    """The baseline: the residents table built row by row in pure Python.

    Same columns, same kinds of values and the same rules (check character, parity,
    户籍地 matching the region code, unique IDs) as ``synthetic.residents``, written the way
    a first version usually is: a loop over rows with ``random.Random`` and f-strings,
    collecting dicts, then one DataFrame.
    """
    rnd = random.Random(seed)
    districts = synthetic.SHUANGYASHAN_DISTRICTS
    names = synthetic.region_names()
    local_codes = [c for c, _, _ in districts]
    local_weights = [w for _, _, w in districts]
    other_codes = [c for c, _ in synthetic.OTHER_REGIONS]
    surnames = [s for s, _ in synthetic._SURNAMES]
    surname_weights = [w for _, w in synthetic._SURNAMES]
    ethnicities = [e for e, _ in synthetic._ETHNICITIES]
    ethnicity_weights = [w for _, w in synthetic._ETHNICITIES]
    start, span = dt.date(1940, 1, 1).toordinal(), dt.date(2008, 12, 31).toordinal() - dt.date(1940, 1, 1).toordinal()
    seen_ids: set[str] = set()
    seen_phones: set[str] = set()
    rows = []
    for _ in range(n):
        male = rnd.random() < 0.505
        birth = dt.date.fromordinal(start + rnd.randint(0, span))
        local = rnd.choices(range(len(local_codes)), local_weights)[0]
        code = rnd.choice(other_codes) if rnd.random() < synthetic.MIGRANT_SHARE else local_codes[local]
        while True:
            seq = rnd.randrange(0, 500) * 2 + (1 if male else 0) or 2
            body = f"{code}{birth:%Y%m%d}{seq:03d}"
            pid = body + id_check_char(body)
            if pid not in seen_ids:
                seen_ids.add(pid)
                break
        while True:
            phone = f"{rnd.choice(synthetic._MOBILE_PREFIXES)}{rnd.randrange(100_000_000):08d}"
            if phone not in seen_phones:
                seen_phones.add(phone)
                break
        pool = synthetic._MALE_CHARS if male else synthetic._FEMALE_CHARS
        given = rnd.choice(pool) + ("" if rnd.random() < 0.25 else rnd.choice(pool))
        live = districts[local if rnd.random() > 0.15 else rnd.randrange(len(districts))][1]
        floor = rnd.randint(1, 18)
        rows.append(
            {
                "姓名": rnd.choices(surnames, surname_weights)[0] + given,
                "公民身份号码": pid,
                "性别": "男" if male else "女",
                "民族": rnd.choices(ethnicities, ethnicity_weights)[0],
                "出生日期": birth,
                "手机号码": phone,
                "住址": f"黑龙江省双鸭山市{live}{rnd.choice(synthetic._STREETS)}{rnd.randint(1, 999)}号"
                f"{rnd.randint(1, 40)}栋{rnd.randint(1, 6)}单元{floor * 100 + rnd.randint(1, 4)}室",
                "户籍地": names[code],
            }
        )
    df = pd.DataFrame(rows)
    df["出生日期"] = pd.to_datetime(df["出生日期"])
    return df


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="residents for the vectorized generator")
    parser.add_argument("--baseline-rows", type=int, default=50_000, help="residents for the naive baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    host = machine(numpy=np.__version__, pandas=pd.__version__)

    synthetic.residents(1_000, args.seed)  # warm-up: imports, first allocations

    seconds, people = best_of(args.repeat, lambda: synthetic.residents(args.rows, args.seed))
    residents_rate = args.rows / seconds
    emit({"bench": "residents", "rows": args.rows, "seconds": round(seconds, 3),
          "rows_per_s": round(residents_rate), "machine": host})  # fmt: skip

    seconds, tables = best_of(args.repeat, lambda: synthetic.generate_all(args.rows, args.seed))
    sizes = {name: len(df) for name, df in tables.items()}
    emit({"bench": "generate_all", "rows": args.rows, "rows_total": sum(sizes.values()), "tables": sizes,
          "seconds": round(seconds, 3), "rows_per_s": round(args.rows / seconds), "machine": host})  # fmt: skip

    ids = people["公民身份号码"]
    seconds, valid = best_of(args.repeat, lambda: valid_resident_ids(ids))
    emit({"bench": "valid_resident_ids", "rows": len(ids), "all_valid": bool(valid.all()),
          "seconds": round(seconds, 3), "rows_per_s": round(len(ids) / seconds), "machine": host})  # fmt: skip

    seconds, naive = best_of(args.repeat, lambda: naive_residents(args.baseline_rows, args.seed))
    naive_rate = args.baseline_rows / seconds
    emit({"bench": "naive_residents", "baseline": "per-row pure Python, random.Random(seed)",
          "rows": args.baseline_rows, "seconds": round(seconds, 3), "rows_per_s": round(naive_rate),
          "all_valid": bool(valid_resident_ids(naive["公民身份号码"]).all()),
          "speedup_vectorized_residents": round(residents_rate / naive_rate, 1), "machine": host})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
