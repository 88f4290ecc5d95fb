"""The generated 户籍/常住人口 register of 双鸭山: residents whose identifiers behave like real ones.

Why "behave": identifiers carry valid check characters (so recognizers that verify them fire),
birth date, gender and 户籍地 agree with the 公民身份号码 (so a policy that generalises one column
is consistent with the others), and the clerk's 备注 hides personal data in sentences, as real
registers do, so free-text desensitization has something real to find. Ages are computed against
the fixed date ``AS_OF``, never against the wall clock.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize import resident_id_check_chars
from samples.columns import (
    Text,
    ascii_column,
    code_digits,
    frame,
    int_digits,
    join_text,
    table_rng,
    take,
    unique_redraw,
    weighted,
    ymd,
)
from samples.world import (
    CITY,
    DAYS_1900,
    ETHNICITIES,
    FEMALE_CHARS,
    MALE_CHARS,
    MIGRANT_SHARE,
    MOBILE_PREFIXES,
    NOTES_SHARE,
    NUM_STR,
    OTHER_REGIONS,
    PROVINCE,
    REGION_CODES,
    SHUANGYASHAN_DISTRICTS,
    SINGLE_GIVEN_SHARE,
    STREAM_NOTES,
    STREAM_RESIDENTS,
    STREETS,
    SURNAMES,
    region_names,
)

__all__ = ["draw_names", "local_addresses", "residents"]


def draw_names(rng: np.random.Generator, male: np.ndarray) -> Text:
    """Chinese names: weighted surname + one or two gender-typical given-name characters."""
    n = len(male)
    surname = take([s for s, _ in SURNAMES], weighted(rng, n, [w for _, w in SURNAMES]))
    # One vocabulary: male characters, then female characters, then "" (no second character).
    given = (*MALE_CHARS, *FEMALE_CHARS, "")
    n_male, n_female = len(MALE_CHARS), len(FEMALE_CHARS)

    def draw() -> np.ndarray:
        return np.where(male, rng.integers(0, n_male, n), n_male + rng.integers(0, n_female, n))

    first = draw()
    second = np.where(rng.random(n) < SINGLE_GIVEN_SHARE, len(given) - 1, draw())
    return join_text(surname, take(given, first), take(given, second))


def local_addresses(rng: np.random.Generator, district: np.ndarray, with_flat: bool) -> Text:
    """Addresses in 双鸭山: province + city + district + street + 号 (+ 栋/单元/室)."""
    n = len(district)
    parts: list[Text | str] = [
        PROVINCE + CITY,
        take([name for _, name, _ in SHUANGYASHAN_DISTRICTS], district),
        take(STREETS, rng.integers(0, len(STREETS), n)),
        take(NUM_STR, np.minimum(rng.geometric(1 / 120, n), 999)),
        "号",
    ]
    if with_flat:
        floor = rng.integers(1, 19, n)
        room = floor * 100 + rng.integers(1, 5, n)
        parts += [take(NUM_STR, rng.integers(1, 41, n)), "栋", take(NUM_STR, rng.integers(1, 7, n)), "单元",
                  take(NUM_STR, room), "室"]  # fmt: skip
    return join_text(*parts)


def residents(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` residents of 双鸭山 (户籍/常住人口 register), deterministic in ``seed``.

    Columns: 姓名, 公民身份号码, 性别, 民族, 出生日期 (datetime64[ns]), 手机号码, 住址, 户籍地, 备注.
    备注 is the clerk's free-text remark (null for most rows): the personal data real registers
    hide there — relatives' names and phones, the resident's own ID, former addresses, landlines —
    written in sentences, so free-text desensitization has something real to find.
    The ID's address code is the 户籍地's division code, its birth date is 出生日期, its
    sequence code is odd for 男 and even for 女, its check character is valid
    (GB 11643-1999); IDs and mobile numbers are unique within the table.  Births run from
    1940 to 2008 with more people born in the 1960s-1980s, as in the city's age pyramid.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = table_rng(seed, STREAM_RESIDENTS)

    male = rng.random(n) < 0.505
    birth = _birth_dates(rng, n)
    region, live_district = _home_regions(rng, n)
    region_text = take([region_names()[c] for c in REGION_CODES], region)
    ids = _resident_ids(rng, male, birth, region)
    phones = _mobile_numbers(rng, n)

    ethnicity = take([e for e, _ in ETHNICITIES], weighted(rng, n, [w for _, w in ETHNICITIES]))
    names = draw_names(rng, male)
    address = local_addresses(rng, live_district, with_flat=True)
    notes = _notes(table_rng(seed, STREAM_NOTES), names, ids, male)

    return frame(
        {
            "姓名": names,
            "公民身份号码": ids,
            "性别": take(("女", "男"), male.astype(np.int64)),
            "民族": ethnicity,
            "出生日期": birth.astype("datetime64[ns]"),
            "手机号码": phones,
            "住址": address,
            "户籍地": region_text,
            "备注": notes,
        }
    )


def _birth_dates(rng: np.random.Generator, n: int) -> np.ndarray:
    """Birth dates (datetime64[D]): year by a coarse age pyramid, then a uniform day within the year."""
    years = np.arange(1940, 2009)
    year_weight = np.select(
        [years < 1950, years < 1962, years < 1976, years < 1991, years < 2001],
        [0.45, 1.0, 1.6, 1.35, 0.9],
        0.7,
    )
    year = years[weighted(rng, n, year_weight)]
    year_start = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    year_len = np.where((year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0)), 366, 365)
    return np.asarray(year_start + (rng.random(n) * year_len).astype(np.int64))


def _home_regions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(户籍地 as an index into ``REGION_CODES``, district lived in as an index into the city's districts).

    户籍地: a local district by population share, or one of the migrants' home regions. Locals mostly
    live in their 户籍 district, migrants anywhere in the city.
    """
    n_local = len(SHUANGYASHAN_DISTRICTS)
    migrant = rng.random(n) < MIGRANT_SHARE
    local_district = weighted(rng, n, [w for _, _, w in SHUANGYASHAN_DISTRICTS])
    region = np.where(migrant, n_local + rng.integers(0, len(OTHER_REGIONS), n), local_district)
    moved = migrant | (rng.random(n) < 0.15)
    live_district = np.where(moved, weighted(rng, n, [w for _, _, w in SHUANGYASHAN_DISTRICTS]), local_district)
    return region, live_district


def _resident_ids(rng: np.random.Generator, male: np.ndarray, birth: np.ndarray, region: np.ndarray) -> pa.Array:
    """GB 11643-1999 numbers: 户籍地 code + birth date + a sequence code of the gender's parity + check.

    The sequence code (001-999) is redrawn until (region, date, sequence) is unique.
    """
    n = len(male)
    by, bm, bd = ymd(birth)
    parity = male.astype(np.int64)

    def draw_seq(size: int, par: np.ndarray) -> np.ndarray:
        seq = rng.integers(0, 500, size) * 2 + par
        return np.asarray(np.where(seq == 0, 2, seq))

    seq = draw_seq(n, parity)
    day_no = (birth - DAYS_1900).astype(np.int64)
    base_key = (region.astype(np.int64) * 100_000 + day_no) * 1000

    def redraw_seq(pos: np.ndarray) -> np.ndarray:
        seq[pos] = draw_seq(len(pos), parity[pos])
        return np.asarray(base_key[pos] + seq[pos])

    unique_redraw(base_key + seq, redraw_seq)

    first17 = np.empty((n, 17), dtype=np.uint8)
    first17[:, 0:6] = code_digits(REGION_CODES)[region]
    first17[:, 6:14] = int_digits(by * 10000 + bm * 100 + bd, 8)
    first17[:, 14:17] = int_digits(seq, 3)
    check = resident_id_check_chars(first17)
    id_codes = np.empty((n, 18), dtype=np.uint8)
    id_codes[:, :17] = first17 + ord("0")
    id_codes[:, 17] = check.view(np.uint32).astype(np.uint8) if n else 0
    return ascii_column(id_codes)


def _mobile_numbers(rng: np.random.Generator, n: int) -> pa.Array:
    """Mobile numbers: a real operator prefix + 8 digits, unique."""
    prefixes = np.array(MOBILE_PREFIXES, dtype=np.int64)

    def draw_phone(size: int) -> np.ndarray:
        return prefixes[rng.integers(0, len(prefixes), size)] * 100_000_000 + rng.integers(0, 100_000_000, size)

    phone_no = unique_redraw(draw_phone(n), lambda pos: draw_phone(len(pos)))
    return ascii_column(int_digits(phone_no, 11) + ord("0"))


def _notes(rng: np.random.Generator, names: Text, ids: Text, male: np.ndarray) -> Text:
    """Free-text 备注: one of a few clerk's templates per row, or null (drawn from their own stream)."""
    n = len(male)
    other = draw_names(rng, rng.random(n) < 0.5)
    prefixes = np.array(MOBILE_PREFIXES, dtype=np.int64)
    phone_no = prefixes[rng.integers(0, len(prefixes), n)] * 100_000_000 + rng.integers(0, 100_000_000, n)
    digits = int_digits(phone_no, 11) + ord("0")
    phone = ascii_column(digits)
    spaced = join_text(ascii_column(digits[:, :3]), " ", ascii_column(digits[:, 3:7]), " ", ascii_column(digits[:, 7:]))
    landline = join_text("0469-", ascii_column(int_digits(rng.integers(4_000_000, 8_000_000, n), 7) + ord("0")))
    former = local_addresses(rng, weighted(rng, n, [w for _, _, w in SHUANGYASHAN_DISTRICTS]), with_flat=False)
    year = take([str(y) for y in range(1995, 2026)], rng.integers(0, 31, n))
    month = take(NUM_STR, rng.integers(1, 13, n))
    templates = [
        join_text("紧急联系人", other, "，联系电话", phone),
        join_text(year, "年", month, "月迁入，原住址", former),
        join_text("户主", names, "，身份证号", ids, "，信息已核实"),
        join_text("经办人", other, "于", year, "年", month, "月受理，回访电话", landline),
        join_text("家属", other, "（", spaced, "）代为办理"),
        join_text(take(("其子", "其女"), (rng.random(n) < 0.5).astype(np.int64)), other, "在外地务工，电话", phone),
    ]
    choice = rng.integers(0, len(templates), n)
    out = templates[0]
    for k in range(1, len(templates)):
        out = pc.if_else(pa.array(choice == k), templates[k], out)
    return pc.if_else(pa.array(rng.random(n) < NOTES_SHARE), out, pa.nulls(n, type=pa.large_string()))
