"""Adversarial export-guard fixtures: generated tables desensitized as a custodian would, their
fingerprints, and real sandboxed jobs (sandbox.kinds.run_job) judged by the guard against the copy
they read (issue 15: ``pass`` only for what the platform re-derives from the copy).

* ``residents``: 600 generated residents, desensitized at L4 (pseudonymized 公民身份号码, masked
  names, generalized QIs) — the copy behind most attacks.
* ``households``: 2,000 generated household heads with numbers that stay numbers (月收入, 家庭人数)
  beside district, sex and age band and a pseudonymized key — the copy behind the legitimate
  statistics (means, medians, shares) and the attacks that need numbers.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from desensitize.fingerprints import FingerprintSet
from desensitize.pipeline import desensitize_table
from desensitize.policy import load_policy
from desensitize.transforms import pseudonymize
from samples import synthetic
from sandbox.guard import Judgement, SourceCopy, judge
from tests.test_pipeline import RESIDENT_TYPES  # the custodian's column types, as the pipeline tests use

PEPPER = b"adversarial-pepper-0123456789abcdef"
DISTRICTS = ["尖山区", "岭东区", "四方台区", "宝山区", "集贤县", "友谊县", "宝清县", "饶河县"]


@functools.cache
def residents() -> tuple[pd.DataFrame, pd.DataFrame, FingerprintSet]:
    """(raw, desensitized, fingerprints) of 2,000 generated residents.

    2,000, not fewer: L4's risk threshold asks k >= 10 (issue 16), and on a smaller table the search
    blurs the birth year away entirely, leaving the guard tests no quasi-identifier to count by.
    """
    raw = synthetic.generate_all(2000, seed=7)["residents"]
    result = desensitize_table(raw, RESIDENT_TYPES, load_policy("L4"), pepper=PEPPER)
    return raw, result.frame, result.fingerprints


@functools.cache
def households() -> tuple[pd.DataFrame, pd.DataFrame, FingerprintSet]:
    """(raw, desensitized, fingerprints) of 2,000 household heads with numeric columns."""
    people = synthetic.generate_all(2000, seed=11)["residents"]
    rng = np.random.default_rng(11)
    raw = pd.DataFrame(
        {
            "公民身份号码": people["公民身份号码"],
            "姓名": people["姓名"],
            "手机号码": people["手机号码"],
            "区县": rng.choice(DISTRICTS, len(people), p=[0.2, 0.15, 0.1, 0.1, 0.15, 0.1, 0.1, 0.1]),
            "性别": people["性别"],
            "年龄段": rng.choice(["20-39", "40-59", "60+"], len(people)),
            "月收入": rng.gamma(4.0, 1500.0, len(people)).round().astype(np.int64),
            "家庭人数": rng.integers(1, 7, len(people)),
            "参保状态": rng.choice(["正常参保", "暂停参保", "终止参保"], len(people), p=[0.8, 0.15, 0.05]),
        }
    )
    copy = raw.drop(columns=["姓名", "手机号码"]).copy()
    copy["公民身份号码"] = pseudonymize(raw["公民身份号码"], pepper=PEPPER, family="cn_resident_id")
    types = {"公民身份号码": "cn_resident_id", "姓名": "person_name", "手机号码": "cn_phone"}
    prints = FingerprintSet.build(
        raw,
        copy,
        types,
        pepper=PEPPER,
        pseudonym_columns=["公民身份号码"],
        quasi_identifier_columns=["区县", "性别", "年龄段"],
        workers=1,
    )
    return raw, copy, prints


FIXTURES = {"residents": residents, "households": households}


def run_and_judge(
    kind: str, code: str, tmp: Path, *, data: pd.DataFrame | None = None, dataset: str = "residents"
) -> Judgement:
    """Run ``code`` in the sandbox over the desensitized copy of ``dataset`` (or ``data`` in its place,
    e.g. a copy that failed desensitization) and judge the result against it."""
    from sandbox.kinds import run_job

    _, desensitized, prints = FIXTURES[dataset]()
    copy = tmp / f"{dataset}.parquet"
    (desensitized if data is None else data).to_parquet(copy, index=False)
    out = tmp / "out"
    result = run_job(kind, code, datasets={dataset: copy}, out_dir=out)
    return judge(
        out,
        result.outputs,
        stdout=result.stdout,
        stderr=result.stderr,
        removed=result.removed,
        fingerprints={dataset: prints},
        sources={dataset: SourceCopy.load(dataset, copy)},
        code=code,
    )
