"""Adversarial export-guard fixtures: a small generated residents table, desensitized at L4, and its
fingerprints; jobs run for real in the sandbox (sandbox.kinds.run_job) and are judged by the guard."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from desensitize import synthetic
from desensitize.fingerprints import FingerprintSet
from desensitize.pipeline import desensitize_table
from desensitize.policy import load_policy
from sandbox.guard import Judgement, judge
from tests.test_pipeline import RESIDENT_TYPES  # the custodian's column types, as the pipeline tests use

PEPPER = b"adversarial-pepper-0123456789abcdef"


@functools.cache
def residents() -> tuple[pd.DataFrame, pd.DataFrame, FingerprintSet]:
    """(raw, desensitized, fingerprints) of 600 generated residents."""
    raw = synthetic.generate_all(600, seed=7)["residents"]
    result = desensitize_table(raw, RESIDENT_TYPES, load_policy("L4"), pepper=PEPPER)
    return raw, result.frame, result.fingerprints


def run_and_judge(kind: str, code: str, tmp: Path, *, data: pd.DataFrame | None = None) -> Judgement:
    """Run ``code`` in the sandbox over the desensitized copy (as ``residents``) and judge the result."""
    from sandbox.kinds import run_job

    _, desensitized, prints = residents()
    copy = tmp / "residents.parquet"
    (desensitized if data is None else data).to_parquet(copy, index=False)
    out = tmp / "out"
    result = run_job(kind, code, datasets={"residents": copy}, out_dir=out)
    return judge(
        out,
        result.outputs,
        stdout=result.stdout,
        stderr=result.stderr,
        removed=result.removed,
        fingerprints={"residents": prints},
    )
