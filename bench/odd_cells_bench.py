"""What the odd-cell checks add to a desensitization and an ingest (odd23), on ``--rows`` residents.

Why: the checks that turn odd cells into clear refusals must not slow the pipeline (the guide's
throughput target). Each is timed alone, best of ``--repeat``, because their cost is far below the
noise of a whole run. Prints one JSON object per line:

* ``entry``: ``desensitize.cells.check_cells`` over the residents as ``samples`` makes them (Arrow
  strings and datetime64: one dtype test per column), which ``desensitize_table`` and
  ``profile_columns`` now run first;
* ``entry_object_text``: the same with 姓名 and 住址 as ``object`` columns of Python strings (a frame
  built by hand): one ``infer_dtype`` and one Arrow conversion per such column;
* ``exit``: ``desensitize.cells.check_copy`` over the L4 copy (only ``object`` columns are converted);
* ``band_finite``: the infinity test ``desensitize.transforms.banding.numbers`` now makes, over a float
  age column of ``--rows`` values;
* ``ingest_utf8``: ``registry.source_checks.check_utf8`` over the residents as an Arrow table (Parquet
  ingest only: CSV and XLSX text is decoded strictly by Python already).

Run: ``.venv/bin/python bench/odd_cells_bench.py --rows 1000000``.
"""

from __future__ import annotations

import argparse
from importlib.metadata import version

import numpy as np
import pandas as pd
import pyarrow as pa
from benchinfo import best_of, emit, machine

from desensitize import desensitize_table, load_policy
from desensitize.cells import check_cells, check_copy
from desensitize.transforms.banding import numbers
from registry.source_checks import check_utf8
from samples import residents

PEPPER = b"bench-pepper-not-a-real-key-32by"
TYPES = {
    "姓名": "person_name",
    "公民身份号码": "cn_resident_id",
    "性别": "gender",
    "民族": "ethnicity",
    "出生日期": "birth_date",
    "手机号码": "cn_phone",
    "住址": "address",
    "户籍地": "household_region",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    where = machine(pandas=version("pandas"), pyarrow=version("pyarrow"), numpy=version("numpy"))
    table = residents(args.rows).drop(columns=["备注"])  # free text is redacted by presidio: not what is timed
    record = {"rows": args.rows, "machine": where}
    seconds, _ = best_of(args.repeat, lambda: check_cells(table))
    emit({"check": "entry", "seconds": round(seconds, 4), **record})
    hand_made = table.astype({"姓名": object, "住址": object})
    seconds, _ = best_of(args.repeat, lambda: check_cells(hand_made))
    emit({"check": "entry_object_text", "seconds": round(seconds, 4), **record})
    copy = desensitize_table(table, TYPES, load_policy("L4"), pepper=PEPPER).frame
    seconds, _ = best_of(args.repeat, lambda: check_copy(copy))
    objects = sum(pd.api.types.is_object_dtype(t) for t in copy.dtypes)
    emit({"check": "exit", "seconds": round(seconds, 4), "object_columns": objects, **record})
    ages = pd.Series(np.random.default_rng(0).integers(0, 100, args.rows).astype(np.float64))
    seconds, _ = best_of(args.repeat, lambda: numbers(ages))
    emit({"check": "band_finite", "seconds_numbers_total": round(seconds, 4), **record})
    arrow = pa.Table.from_pandas(residents(args.rows), preserve_index=False)
    seconds, _ = best_of(args.repeat, lambda: check_utf8(arrow, "residents"))
    emit({"check": "ingest_utf8", "seconds": round(seconds, 4), **record})


if __name__ == "__main__":
    main()
