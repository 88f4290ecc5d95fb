"""Deterministic synthetic public-data tables of a Chinese prefecture-level city.

Why: Keyong's demo, tests and benchmarks need data that looks and behaves like what a
数据主管部门 actually holds (户籍人口, 社会保险参保, 市场主体登记) without touching anyone's real
records.  "Behaves like" matters more than "looks like": identifiers carry valid check
characters (so recognizers that verify them fire), birth date, gender and 户籍地 agree with
the 公民身份号码 (so a policy that generalises one column is consistent with the others),
and tables link through 身份证号 and 企业名称 / 法定代表人 (so the export guard's record-linkage
rules have something to catch).

The city is 黑龙江省双鸭山市 with its real districts and counties and their GB/T 2260 codes;
about one person in ten has a 户籍地 elsewhere in China (real division codes).  Street
names are generic Chinese street names, not a survey of the city; population weights of the
districts are rounded orders of magnitude, not census figures.

Every table is built column by column with numpy/pandas operations: there is no Python
loop over rows (the only loops run over a handful of columns or over de-duplication rounds
that touch ever fewer rows), so a million residents take seconds.  Output depends only on
``seed``: each table draws from ``numpy.random.Generator(PCG64(...))`` seeded by ``seed``
(and a fixed per-table stream number, so the tables are independent of each other), and
ages are computed against the fixed date ``AS_OF``, never against the wall clock.

This module is the tables' face: the city's vocabulary is ``samples.world``, the column building
blocks ``samples.columns``, and each table family has its module (``samples.population``,
``samples.enterprises``, ``samples.insurance``).
"""

from __future__ import annotations

import os

import pandas as pd

from samples.enterprises import market_entities
from samples.insurance import social_insurance
from samples.population import residents
from samples.world import (
    AS_OF,
    CONTRIBUTION_BASE_MAX,
    CONTRIBUTION_BASE_MIN,
    ETHNICITIES,
    FEMALE_CHARS,
    INDUSTRY_SECTIONS,
    MALE_CHARS,
    MIGRANT_SHARE,
    MOBILE_PREFIXES,
    OTHER_REGIONS,
    SHUANGYASHAN_DISTRICTS,
    STREETS,
    SURNAMES,
    region_names,
)

__all__ = [
    "AS_OF",
    "CONTRIBUTION_BASE_MAX",
    "CONTRIBUTION_BASE_MIN",
    "INDUSTRY_SECTIONS",
    "MIGRANT_SHARE",
    "OTHER_REGIONS",
    "SHUANGYASHAN_DISTRICTS",
    "generate_all",
    "market_entities",
    "region_names",
    "residents",
    "social_insurance",
    "write_csv",
]

# The vocabulary under the names bench/synthetic_bench.py reads, to build the same tables row by row.
_SURNAMES = SURNAMES
_MALE_CHARS = MALE_CHARS
_FEMALE_CHARS = FEMALE_CHARS
_ETHNICITIES = ETHNICITIES
_MOBILE_PREFIXES = MOBILE_PREFIXES
_STREETS = STREETS


def generate_all(residents_n: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The three linked tables for ``residents_n`` residents.

    Entities are one per twenty residents (at least ten), roughly the ratio of 市场主体 to
    population in a north-eastern prefecture city; social insurance covers 80 % of the
    working-age residents.
    """
    people = residents(residents_n, seed)
    entities = market_entities(max(10, residents_n // 20), seed, residents_df=people)
    insurance = social_insurance(people, entities, seed)
    return {"residents": people, "social_insurance": insurance, "market_entities": entities}


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str], encoding: str = "utf-8") -> None:
    """Write ``df`` as CSV: no index, ``\\n`` line ends, dates as YYYY-MM-DD.

    ``encoding`` is "utf-8" (no BOM) or "gb18030"; the latter writes real GB18030 bytes,
    the encoding many government systems still export, so that ingestion's encoding
    detection is exercised on the real thing.
    """
    normalized = encoding.lower().replace("_", "-")
    if normalized not in {"utf-8", "utf8", "gb18030"}:
        raise ValueError(f"encoding must be 'utf-8' or 'gb18030', got {encoding!r}")
    df.to_csv(path, index=False, encoding="gb18030" if normalized == "gb18030" else "utf-8",
              lineterminator="\n", date_format="%Y-%m-%d")  # fmt: skip
