"""The cost of treating near-unique columns as keys (issue 16): structured speed and text redaction.

Why: finding near-unique columns and pseudonymizing them must keep the structured target (≥ 300,000
rows/s), and redacting their values from free text must stay vectorized although a key column has
about as many distinct values as rows. Prints one JSON object per line:

* ``structured_without_keys`` / ``structured_with_keys``: ``desensitize_table`` (L4) on ``--rows``
  residents without 备注, then with an enterprise code (uscc, no rule of its own) and an int64 order
  number (unrecognised) added: both found near-unique and pseudonymized, at the cost of two more
  hashed columns; the rate counts the transform and k-anonymity stages, as
  ``bench/desensitize_bench.py`` does;
* ``free_text_keys``: ``textscan.redact`` over a 备注 column of ``--text-rows`` rows quoting the codes
  and order numbers, with the table's names, once without and once with the keys' values (two per
  row), and the share of quoted keys left in the redacted text (must be 0).

Run: ``.venv/bin/python bench/keys_bench.py``.
"""

from __future__ import annotations

import argparse
import functools
import re
from importlib.metadata import version

import numpy as np
import pandas as pd
from benchinfo import best_of, emit, machine

from desensitize import dataset_names, desensitize_table, load_policy, redact
from desensitize.identifiers import uscc_check_char
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
    "企业代码": "uscc",
    "订单号": None,
}


def _with_keys(frame: pd.DataFrame) -> pd.DataFrame:
    n = len(frame)
    bodies = [f"91230100MA{i:07d}" for i in range(n)]
    return frame.assign(
        企业代码=[b + uscc_check_char(b) for b in bodies],
        订单号=np.arange(10_000_001, 10_000_001 + n, dtype=np.int64),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--text-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    info = machine(pandas=version("pandas"), numpy=version("numpy"))

    table = _with_keys(residents(args.rows, seed=7))
    policy = load_policy("L4")
    for label, columns in (("structured_without_keys", list(TYPES)[:-2]), ("structured_with_keys", list(TYPES))):
        structured = table[columns]
        types = {c: TYPES[c] for c in columns}
        seconds, result = best_of(
            args.repeat, functools.partial(desensitize_table, structured, types, policy, pepper=PEPPER)
        )
        stages = result.report["seconds"]
        core = stages["transform"] + stages["k_anonymity"]
        near = {c["name"]: c["near_unique"]["action"] for c in result.report["columns"] if "near_unique" in c}
        emit(
            {
                "bench": label,
                "rows": len(structured),
                "columns": len(columns),
                "rows_per_s": round(len(structured) / core),
                "with_fingerprints_rows_per_s": round(len(structured) / seconds),
                "near_unique": near,
                "machine": info,
            }
        )

    sample = table.head(args.text_rows)
    notes = pd.Series(
        [
            f"代表企业{c}办理，订单号{o}，联系人{n}"
            for c, o, n in zip(sample["企业代码"], sample["订单号"], sample["姓名"], strict=True)
        ],
        dtype="str",
    )
    names = dataset_names(sample, TYPES)
    values = sample["企业代码"].tolist() + sample["订单号"].astype(str).tolist()
    plain_s, _ = best_of(args.repeat, lambda: redact(notes, names=names))
    keyed_s, redacted = best_of(args.repeat, lambda: redact(notes, names=names, keys=values))
    # Every quoted key is a run of letters and digits: left over if such a run of the output is one.
    runs = set(re.findall(r"[0-9A-Za-z]+", "\n".join(redacted.tolist())))
    left = len(runs & set(values))
    emit(
        {
            "bench": "free_text_keys",
            "rows": len(notes),
            "keys": len(values),
            "rows_per_s_without_keys": round(len(notes) / plain_s),
            "rows_per_s_with_keys": round(len(notes) / keyed_s),
            "keys_left_in_text": left,
            "machine": info,
        }
    )


if __name__ == "__main__":
    main()
