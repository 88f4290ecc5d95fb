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
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.identifiers import (
    USCC_ALPHABET,
    org_code_check_chars,
    resident_id_check_chars,
    uscc_check_chars,
)

__all__ = [
    "AS_OF",
    "CONTRIBUTION_BASE_MAX",
    "CONTRIBUTION_BASE_MIN",
    "INDUSTRY_SECTIONS",
    "OTHER_REGIONS",
    "SHUANGYASHAN_DISTRICTS",
    "generate_all",
    "market_entities",
    "region_names",
    "residents",
    "social_insurance",
    "write_csv",
]

#: Reference date for ages and "today" in the generated world.  Fixed so that the same
#: seed gives byte-identical tables on any day.
AS_OF = _dt.date(2026, 6, 30)

#: Monthly contribution base band in yuan (lower bound about 60 % and upper bound about
#: 300 % of the provincial average wage, the rule of 社会保险缴费基数).
CONTRIBUTION_BASE_MIN = 3000
CONTRIBUTION_BASE_MAX = 25000

PROVINCE = "黑龙江省"
CITY = "双鸭山市"
CITY_CODE = "230500"

#: (GB/T 2260 code, name, rough share of the city's population).
SHUANGYASHAN_DISTRICTS: tuple[tuple[str, str, float], ...] = (
    ("230502", "尖山区", 0.19),
    ("230503", "岭东区", 0.05),
    ("230505", "四方台区", 0.06),
    ("230506", "宝山区", 0.10),
    ("230521", "集贤县", 0.20),
    ("230522", "友谊县", 0.08),
    ("230523", "宝清县", 0.24),
    ("230524", "饶河县", 0.08),
)

#: Real division codes elsewhere in China, for the 户籍地 of migrants: (code, full text).
OTHER_REGIONS: tuple[tuple[str, str], ...] = (
    ("230102", "黑龙江省哈尔滨市道里区"),
    ("230103", "黑龙江省哈尔滨市南岗区"),
    ("230202", "黑龙江省齐齐哈尔市龙沙区"),
    ("230302", "黑龙江省鸡西市鸡冠区"),
    ("230402", "黑龙江省鹤岗市向阳区"),
    ("230602", "黑龙江省大庆市萨尔图区"),
    ("230803", "黑龙江省佳木斯市向阳区"),
    ("230902", "黑龙江省七台河市新兴区"),
    ("220102", "吉林省长春市南关区"),
    ("220202", "吉林省吉林市昌邑区"),
    ("210102", "辽宁省沈阳市和平区"),
    ("150102", "内蒙古自治区呼和浩特市新城区"),
    ("130102", "河北省石家庄市长安区"),
    ("370102", "山东省济南市历下区"),
    ("370202", "山东省青岛市市南区"),
    ("410105", "河南省郑州市金水区"),
    ("110105", "北京市朝阳区"),
    ("310115", "上海市浦东新区"),
    ("440106", "广东省广州市天河区"),
)

#: Share of residents whose 户籍地 is outside 双鸭山.
MIGRANT_SHARE = 0.10

# Surnames with approximate frequency in per cent (national registers, 2020; 于, 姜, 孙
# slightly raised for the north-east), plus a few compound surnames.
_SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.12), ("李", 7.00), ("张", 6.74), ("刘", 5.10), ("陈", 4.61), ("杨", 3.22),
    ("黄", 2.45), ("赵", 2.19), ("吴", 2.00), ("周", 1.95), ("徐", 1.45), ("孙", 1.50),
    ("马", 1.29), ("朱", 1.28), ("胡", 1.16), ("郭", 1.06), ("何", 1.05), ("高", 1.00),
    ("林", 0.97), ("罗", 0.86), ("郑", 0.80), ("梁", 0.79), ("谢", 0.73), ("宋", 0.70),
    ("唐", 0.70), ("许", 0.66), ("韩", 0.64), ("邓", 0.62), ("冯", 0.60), ("于", 0.60),
    ("曹", 0.59), ("彭", 0.56), ("曾", 0.55), ("肖", 0.54), ("田", 0.53), ("董", 0.52),
    ("潘", 0.50), ("袁", 0.49), ("蔡", 0.48), ("蒋", 0.47), ("余", 0.46), ("杜", 0.45),
    ("叶", 0.44), ("程", 0.43), ("魏", 0.42), ("苏", 0.41), ("吕", 0.40), ("姜", 0.40),
    ("丁", 0.39), ("任", 0.38), ("卢", 0.37), ("姚", 0.36), ("沈", 0.35), ("钟", 0.34),
    ("崔", 0.33), ("谭", 0.32), ("陆", 0.31), ("范", 0.30), ("汪", 0.29), ("廖", 0.28),
    ("石", 0.28), ("金", 0.27), ("韦", 0.26), ("贾", 0.26), ("夏", 0.25), ("付", 0.25),
    ("方", 0.24), ("邹", 0.23), ("熊", 0.23), ("白", 0.22), ("孟", 0.22), ("秦", 0.21),
    ("邱", 0.21), ("侯", 0.20), ("江", 0.20), ("尹", 0.19), ("薛", 0.19), ("闫", 0.18),
    ("段", 0.18), ("雷", 0.17), ("龙", 0.16), ("黎", 0.16), ("史", 0.16), ("陶", 0.15),
    ("贺", 0.15), ("毛", 0.14), ("郝", 0.14), ("顾", 0.13), ("龚", 0.13), ("邵", 0.12),
    ("万", 0.12), ("武", 0.12), ("钱", 0.11), ("戴", 0.11), ("严", 0.10), ("孔", 0.10),
    ("常", 0.10), ("欧阳", 0.02), ("司马", 0.005), ("上官", 0.005), ("诸葛", 0.004),
    ("慕容", 0.002),
)  # fmt: skip

_MALE_CHARS = tuple(
    dict.fromkeys(
        "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳建国峰亮成志东海文博宏新"
        "春生永民庆福喜德立金山岩石晨昊轩睿泽子天嘉铭然航军兵武彬祥"
    )
)
_FEMALE_CHARS = tuple(
    dict.fromkeys(
        "芳娜敏静丽艳娟霞秀玲燕红梅琳丹萍颖雪慧倩婷莉洁晶琴云玉兰凤佳欣悦怡彤萱琪涵雨婉桂英华荣淑珍爽楠月璐薇晓春美霖"
    )
)
_SINGLE_GIVEN_SHARE = 0.25

_ETHNICITIES: tuple[tuple[str, float], ...] = (
    ("汉族", 0.905), ("满族", 0.040), ("朝鲜族", 0.020), ("蒙古族", 0.010), ("回族", 0.010),
    ("赫哲族", 0.004), ("达斡尔族", 0.003), ("锡伯族", 0.002), ("壮族", 0.002),
    ("鄂伦春族", 0.001), ("鄂温克族", 0.001),
)  # fmt: skip

_MOBILE_PREFIXES: tuple[int, ...] = (
    *range(130, 140), 147, *(p for p in range(150, 160) if p != 154), 166,
    *range(170, 179), *range(180, 190), 191, 198, 199,
)  # fmt: skip

_STREETS: tuple[str, ...] = (
    "新兴大街", "中心大街", "建设路", "人民路", "胜利路", "光明路", "和平路", "友谊路", "文化路",
    "团结路", "东平行路", "西平行路", "南环路", "北环路", "站前路", "民主路", "长青路", "湖滨路",
    "迎宾路", "工农路", "解放路", "兴安路", "红旗路", "向阳路", "朝阳路", "育才路", "新华路",
    "北秀路", "东风路", "七星路", "林业路", "矿山路", "电厂路", "学府路", "滨河路", "富强路",
    "安邦路", "振兴大街", "繁荣路", "幸福街",
)  # fmt: skip

#: GB/T 4754-2017 门类 (sections) used by 行业: letter -> name.
INDUSTRY_SECTIONS: dict[str, str] = {
    "A": "农、林、牧、渔业",
    "B": "采矿业",
    "C": "制造业",
    "D": "电力、热力、燃气及水生产和供应业",
    "E": "建筑业",
    "F": "批发和零售业",
    "G": "交通运输、仓储和邮政业",
    "H": "住宿和餐饮业",
    "I": "信息传输、软件和信息技术服务业",
    "J": "金融业",
    "K": "房地产业",
    "L": "租赁和商务服务业",
    "M": "科学研究和技术服务业",
    "N": "水利、环境和公共设施管理业",
    "O": "居民服务、修理和其他服务业",
    "P": "教育",
    "Q": "卫生和社会工作",
    "R": "文化、体育和娱乐业",
    "S": "公共管理、社会保障和社会组织",
}

# Per section: rough share of registered enterprises, and the words that put the industry
# into a company name (the 行业表述 part of 行政区划 + 字号 + 行业 + 组织形式).
_INDUSTRY_WORDS: dict[str, tuple[float, tuple[str, ...]]] = {
    "A": (0.06, ("农业科技", "农业发展", "牧业", "水产养殖", "种植", "林业")),
    "B": (0.02, ("煤业", "矿业", "煤炭开采", "石材")),
    "C": (0.08, ("机械制造", "食品", "木业", "建材", "化工", "服装", "乳业", "米业", "酒业", "电气设备")),
    "D": (0.015, ("热力", "能源", "电力", "燃气", "供水")),
    "E": (0.07, ("建筑工程", "建设", "路桥工程", "装饰工程", "安装工程")),
    "F": (0.30, ("商贸", "贸易", "物资", "医药连锁", "超市", "粮油", "农资", "汽车销售", "五金机电")),
    "G": (0.04, ("物流", "运输", "客运", "仓储", "快递")),
    "H": (0.04, ("餐饮管理", "酒店管理", "饭店", "宾馆")),
    "I": (0.05, ("网络科技", "信息技术", "软件开发", "电子商务", "数据科技")),
    "J": (0.01, ("投资管理", "融资担保", "小额贷款")),
    "K": (0.03, ("房地产开发", "物业管理", "置业")),
    "L": (0.10, ("商务咨询", "人力资源", "广告", "企业管理咨询", "劳务派遣")),
    "M": (0.07, ("技术服务", "检测", "工程设计", "环境检测", "测绘")),
    "N": (0.015, ("环保科技", "环境工程", "园林绿化", "市政工程")),
    "O": (0.04, ("家政服务", "汽车维修", "洗浴", "美容美发")),
    "P": (0.01, ("教育科技", "职业技能培训", "教育咨询")),
    "Q": (0.01, ("医疗管理", "健康管理", "养老服务")),
    "R": (0.02, ("文化传媒", "体育发展", "影视", "旅游开发")),
}

_TRADE_CHARS = tuple(
    dict.fromkeys(
        "鑫盛华恒泰兴隆达源宏远诚信德鼎丰汇金瑞祥福顺利昌永嘉佳博宇星辰龙凯旭东北方正中新天安康"
        "平和润泽海川山林森百万千众合友联创亿通广大鸿骏腾飞越卓晟煜昊睿智铭誉峰岳辉光明宁益富"
        "强荣耀坤乾元亨"
    )
)

# Entity kinds: (position 1-2 of the USCC, share).  91 企业, 92 个体工商户,
# 93 农民专业合作社 (all registered by 工商/市场监管), 51 社会团体 (民政).
_ENTITY_KINDS: tuple[tuple[str, float], ...] = (("91", 0.86), ("92", 0.09), ("93", 0.03), ("51", 0.02))
_COMPANY_FORMS: tuple[tuple[str, float], ...] = (("有限公司", 0.60), ("有限责任公司", 0.33), ("股份有限公司", 0.07))
_SHOP_FORMS: tuple[str, ...] = ("经营部", "商店", "门市部", "商行")

_STREAM_RESIDENTS = 0
_STREAM_ENTITIES = 1
_STREAM_SOCIAL = 2
_STREAM_NOTES = 3

#: Share of residents whose record carries a 备注 (free-text remark); the rest are null.
NOTES_SHARE = 0.45

_DAYS_1900 = np.datetime64("1900-01-01", "D")

# Small-integer -> decimal string, so that house, building and room numbers are looked up
# instead of formatted row by row.
_NUM_STR = tuple(str(i) for i in range(2000))


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _rng(seed: int, stream: int) -> np.random.Generator:
    """The generator of one table.

    Residents use ``PCG64(seed)`` itself; the other tables mix in a stream number so that
    their draws are independent of the residents' while still depending only on ``seed``.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    bitgen = np.random.PCG64(int(seed)) if stream == 0 else np.random.PCG64([int(seed), stream])
    return np.random.Generator(bitgen)


def _weighted(rng: np.random.Generator, n: int, weights: Sequence[float]) -> np.ndarray:
    """Indexes drawn with the given (unnormalised) weights."""
    p = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(n), side="right")


def _cat(*parts: np.ndarray | str) -> np.ndarray:
    """Element-wise string concatenation of arrays and scalars (numpy string ufunc)."""
    out: np.ndarray | str = parts[0]
    for p in parts[1:]:
        out = np.strings.add(out, p)
    return np.asarray(out)


def _ascii_rows(codes: np.ndarray) -> np.ndarray:
    """(n, k) matrix of ASCII codes -> (n,) numpy array of k-character strings, no loop."""
    m = np.ascontiguousarray(codes, dtype=np.uint8)
    return m.view(f"S{m.shape[1]}").ravel().astype(f"<U{m.shape[1]}")


# Text columns are assembled in Arrow, the storage of pandas' ``str`` dtype: taking from a
# small vocabulary and joining pieces element-wise run in C++, and the result becomes a
# pandas column without conversion.  Building the same columns as fixed-width numpy
# unicode arrays and converting them cost about 60 % of the time of a resident table.
Text = pa.Array | pa.ChunkedArray


def _take(vocabulary: Sequence[str], idx: np.ndarray) -> pa.Array:
    """``vocabulary[idx]`` as an Arrow string array."""
    return pa.array(list(vocabulary), type=pa.large_string()).take(pa.array(np.asarray(idx, dtype=np.int64)))


def _join(*parts: Text | str) -> Text:
    """Element-wise concatenation of Arrow string arrays and Python string constants."""
    args = [pa.scalar(p, type=pa.large_string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", type=pa.large_string()))


def _ascii_column(codes: np.ndarray) -> pa.Array:
    """(n, k) matrix of ASCII codes -> Arrow strings of k characters, zero-copy.

    A fixed-width row-major byte matrix already is the data buffer of an Arrow string
    array; only the offsets 0, k, 2k, ... are added.
    """
    m = np.ascontiguousarray(codes, dtype=np.uint8)
    n, k = m.shape
    offsets = np.arange(0, (n + 1) * k, k, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(m)])


def _frame(columns: dict[str, np.ndarray | Text | pd.Series]) -> pd.DataFrame:
    """DataFrame with pandas' default ``str`` dtype for every text column."""
    data: dict[str, pd.Series] = {}
    for name, values in columns.items():
        if isinstance(values, pd.Series):
            data[name] = values.reset_index(drop=True)
        elif isinstance(values, (pa.Array, pa.ChunkedArray)):
            data[name] = pd.Series(values, dtype="str")
        elif values.dtype.kind == "U":
            data[name] = pd.Series(pa.array(values, type=pa.large_string()), dtype="str")
        elif values.dtype.kind == "O":
            data[name] = pd.Series(values, dtype="str")
        else:
            data[name] = pd.Series(values)
    return pd.DataFrame(data)


def _code_digits(codes: Sequence[str]) -> np.ndarray:
    """6-digit division codes -> (len, 6) uint8 digit matrix."""
    return np.array([[int(c) for c in code] for code in codes], dtype=np.uint8)


def _int_digits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers -> (n, width) digit matrix, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values.astype(np.int64)[:, None] // powers[None, :]) % 10).astype(np.uint8)


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """datetime64[D] array -> (year, month, day) int64 arrays."""
    months = days.astype("datetime64[M]")
    year = days.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day


def _unique_redraw(keys: np.ndarray, redraw: Callable[[np.ndarray], np.ndarray], max_rounds: int = 100) -> np.ndarray:
    """Make ``keys`` unique by redrawing duplicates (all but the first occurrence).

    ``redraw(positions)`` returns new keys for those positions and may update the caller's
    own columns as a side effect.  Each round touches only the duplicates, so the loop is
    over rounds (a few), not rows.
    """
    keys = keys.copy()
    for _ in range(max_rounds):
        dup = pd.Series(keys).duplicated(keep="first").to_numpy()
        if not dup.any():
            return keys
        positions = np.flatnonzero(dup)
        keys[positions] = redraw(positions)
    raise ValueError("could not draw unique values: the requested size exhausts the value space")


def region_names() -> dict[str, str]:
    """Division code -> full 户籍地 text, for every code the generator can emit."""
    names = {code: PROVINCE + CITY + name for code, name, _ in SHUANGYASHAN_DISTRICTS}
    names.update(dict(OTHER_REGIONS))
    return names


def _draw_names(rng: np.random.Generator, male: np.ndarray) -> Text:
    """Chinese names: weighted surname + one or two gender-typical given-name characters."""
    n = len(male)
    surname = _take([s for s, _ in _SURNAMES], _weighted(rng, n, [w for _, w in _SURNAMES]))
    # One vocabulary: male characters, then female characters, then "" (no second character).
    given = (*_MALE_CHARS, *_FEMALE_CHARS, "")
    n_male, n_female = len(_MALE_CHARS), len(_FEMALE_CHARS)

    def draw() -> np.ndarray:
        return np.where(male, rng.integers(0, n_male, n), n_male + rng.integers(0, n_female, n))

    first = draw()
    second = np.where(rng.random(n) < _SINGLE_GIVEN_SHARE, len(given) - 1, draw())
    return _join(surname, _take(given, first), _take(given, second))


def _local_addresses(rng: np.random.Generator, district: np.ndarray, with_flat: bool) -> Text:
    """Addresses in 双鸭山: province + city + district + street + 号 (+ 栋/单元/室)."""
    n = len(district)
    parts: list[Text | str] = [
        PROVINCE + CITY,
        _take([name for _, name, _ in SHUANGYASHAN_DISTRICTS], district),
        _take(_STREETS, rng.integers(0, len(_STREETS), n)),
        _take(_NUM_STR, np.minimum(rng.geometric(1 / 120, n), 999)),
        "号",
    ]
    if with_flat:
        floor = rng.integers(1, 19, n)
        room = floor * 100 + rng.integers(1, 5, n)
        parts += [_take(_NUM_STR, rng.integers(1, 41, n)), "栋", _take(_NUM_STR, rng.integers(1, 7, n)), "单元",
                  _take(_NUM_STR, room), "室"]  # fmt: skip
    return _join(*parts)


def _age_on(birth: np.ndarray, as_of: _dt.date) -> np.ndarray:
    """Completed years of age on ``as_of`` for a datetime64 array."""
    y, m, d = _ymd(np.asarray(birth).astype("datetime64[D]"))
    before_birthday = (m > as_of.month) | ((m == as_of.month) & (d > as_of.day))
    return as_of.year - y - before_birthday.astype(np.int64)


# ---------------------------------------------------------------------------
# residents
# ---------------------------------------------------------------------------


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
    rng = _rng(seed, _STREAM_RESIDENTS)

    male = rng.random(n) < 0.505

    # Birth dates: year by a coarse age pyramid, then a uniform day within the year.
    years = np.arange(1940, 2009)
    year_weight = np.select(
        [years < 1950, years < 1962, years < 1976, years < 1991, years < 2001],
        [0.45, 1.0, 1.6, 1.35, 0.9],
        0.7,
    )
    year = years[_weighted(rng, n, year_weight)]
    year_start = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    year_len = np.where((year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0)), 366, 365)
    birth = year_start + (rng.random(n) * year_len).astype(np.int64)
    by, bm, bd = _ymd(birth)

    # 户籍地: local district by population share, or one of the migrants' home regions.
    local_codes = [c for c, _, _ in SHUANGYASHAN_DISTRICTS]
    all_codes = local_codes + [c for c, _ in OTHER_REGIONS]
    n_local = len(local_codes)
    migrant = rng.random(n) < MIGRANT_SHARE
    local_district = _weighted(rng, n, [w for _, _, w in SHUANGYASHAN_DISTRICTS])
    region = np.where(migrant, n_local + rng.integers(0, len(OTHER_REGIONS), n), local_district)
    region_text = _take([region_names()[c] for c in all_codes], region)

    # Where they live: locals mostly in their 户籍 district, migrants anywhere in the city.
    moved = migrant | (rng.random(n) < 0.15)
    live_district = np.where(moved, _weighted(rng, n, [w for _, _, w in SHUANGYASHAN_DISTRICTS]), local_district)

    # Sequence code 001-999 with the gender's parity; redraw until (region, date, seq) unique.
    parity = male.astype(np.int64)

    def draw_seq(size: int, par: np.ndarray) -> np.ndarray:
        seq = rng.integers(0, 500, size) * 2 + par
        return np.where(seq == 0, 2, seq)

    seq = draw_seq(n, parity)
    day_no = (birth - _DAYS_1900).astype(np.int64)
    base_key = (region.astype(np.int64) * 100_000 + day_no) * 1000

    def redraw_seq(pos: np.ndarray) -> np.ndarray:
        seq[pos] = draw_seq(len(pos), parity[pos])
        return base_key[pos] + seq[pos]

    _unique_redraw(base_key + seq, redraw_seq)

    first17 = np.empty((n, 17), dtype=np.uint8)
    first17[:, 0:6] = _code_digits(all_codes)[region]
    first17[:, 6:14] = _int_digits(by * 10000 + bm * 100 + bd, 8)
    first17[:, 14:17] = _int_digits(seq, 3)
    check = resident_id_check_chars(first17)
    id_codes = np.empty((n, 18), dtype=np.uint8)
    id_codes[:, :17] = first17 + ord("0")
    id_codes[:, 17] = check.view(np.uint32).astype(np.uint8) if n else 0
    ids = _ascii_column(id_codes)

    # Mobile numbers: a real operator prefix + 8 digits, unique.
    prefixes = np.array(_MOBILE_PREFIXES, dtype=np.int64)

    def draw_phone(size: int) -> np.ndarray:
        return prefixes[rng.integers(0, len(prefixes), size)] * 100_000_000 + rng.integers(0, 100_000_000, size)

    phone_no = _unique_redraw(draw_phone(n), lambda pos: draw_phone(len(pos)))
    phones = _ascii_column(_int_digits(phone_no, 11) + ord("0"))

    ethnicity = _take([e for e, _ in _ETHNICITIES], _weighted(rng, n, [w for _, w in _ETHNICITIES]))
    names = _draw_names(rng, male)
    address = _local_addresses(rng, live_district, with_flat=True)
    notes = _notes(_rng(seed, _STREAM_NOTES), names, ids, male)

    return _frame(
        {
            "姓名": names,
            "公民身份号码": ids,
            "性别": _take(("女", "男"), male.astype(np.int64)),
            "民族": ethnicity,
            "出生日期": birth.astype("datetime64[ns]"),
            "手机号码": phones,
            "住址": address,
            "户籍地": region_text,
            "备注": notes,
        }
    )


def _notes(rng: np.random.Generator, names: Text, ids: Text, male: np.ndarray) -> Text:
    """Free-text 备注: one of a few clerk's templates per row, or null (drawn from their own stream)."""
    n = len(male)
    other = _draw_names(rng, rng.random(n) < 0.5)
    prefixes = np.array(_MOBILE_PREFIXES, dtype=np.int64)
    phone_no = prefixes[rng.integers(0, len(prefixes), n)] * 100_000_000 + rng.integers(0, 100_000_000, n)
    digits = _int_digits(phone_no, 11) + ord("0")
    phone = _ascii_column(digits)
    spaced = _join(_ascii_column(digits[:, :3]), " ", _ascii_column(digits[:, 3:7]), " ", _ascii_column(digits[:, 7:]))
    landline = _join("0469-", _ascii_column(_int_digits(rng.integers(4_000_000, 8_000_000, n), 7) + ord("0")))
    former = _local_addresses(rng, _weighted(rng, n, [w for _, _, w in SHUANGYASHAN_DISTRICTS]), with_flat=False)
    year = _take([str(y) for y in range(1995, 2026)], rng.integers(0, 31, n))
    month = _take(_NUM_STR, rng.integers(1, 13, n))
    templates = [
        _join("紧急联系人", other, "，联系电话", phone),
        _join(year, "年", month, "月迁入，原住址", former),
        _join("户主", names, "，身份证号", ids, "，信息已核实"),
        _join("经办人", other, "于", year, "年", month, "月受理，回访电话", landline),
        _join("家属", other, "（", spaced, "）代为办理"),
        _join(_take(("其子", "其女"), (rng.random(n) < 0.5).astype(np.int64)), other, "在外地务工，电话", phone),
    ]
    choice = rng.integers(0, len(templates), n)
    out = templates[0]
    for k in range(1, len(templates)):
        out = pc.if_else(pa.array(choice == k), templates[k], out)
    return pc.if_else(pa.array(rng.random(n) < NOTES_SHARE), out, pa.nulls(n, type=pa.large_string()))


# ---------------------------------------------------------------------------
# market entities
# ---------------------------------------------------------------------------


def _uscc_index(chars: str) -> np.ndarray:
    lut = {c: i for i, c in enumerate(USCC_ALPHABET)}
    return np.array([lut[c] for c in chars], dtype=np.int64)


# GB 11714 value of each USCC alphabet character (digits 0-9, letters A=10 .. Z=35).
_USCC_TO_ORG_VALUE = np.array(
    [int(c) if c.isdigit() else ord(c) - ord("A") + 10 for c in USCC_ALPHABET], dtype=np.int64
)
_USCC_ASCII = np.frombuffer(USCC_ALPHABET.encode("ascii"), dtype=np.uint8)
_ASCII_TO_USCC_INDEX = np.full(128, -1, dtype=np.int64)
_ASCII_TO_USCC_INDEX[_USCC_ASCII] = np.arange(len(USCC_ALPHABET))
_NEW_CODE_DATE = np.datetime64("2015-10-01", "D")  # 三证合一: "MA…" subject codes from then on


def market_entities(n: int, seed: int = 0, residents_df: pd.DataFrame | None = None) -> pd.DataFrame:
    """``n`` market entities registered in 双鸭山 (市场主体登记), deterministic in ``seed``.

    Columns: 统一社会信用代码, 企业名称, 法定代表人, 注册资本 (万元, 2 decimals), 行业 (GB/T 4754
    门类), 成立日期 (datetime64[ns]), 住所.  The USCC is GB 32100-valid: position 1-2 the
    kind (91 企业, 92 个体工商户, 93 农民专业合作社, 51 社会团体), 3-8 the registering district,
    9-17 a GB 11714 organization code with a valid check (``MA`` + 6 characters for entities
    founded since the 2015 reform, 8 digits before), 18 the mod-31 check.  Names follow
    行政区划 + 字号 + 行业 + 组织形式 and are distinct.  With ``residents_df`` the
    法定代表人 are residents aged 20-75, so names link across tables.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = _rng(seed, _STREAM_ENTITIES)

    kinds = [k for k, _ in _ENTITY_KINDS]
    kind = _weighted(rng, n, [w for _, w in _ENTITY_KINDS])
    kind_code = np.array(kinds)[kind]
    is_company, is_shop, is_coop, is_assoc = (kind_code == k for k in kinds)

    district = _weighted(rng, n, [w for _, _, w in SHUANGYASHAN_DISTRICTS])
    district_names = np.array([name for _, name, _ in SHUANGYASHAN_DISTRICTS])

    # Founding date: density rising toward the present; cooperatives exist since the 2007 law.
    as_of = np.datetime64(AS_OF, "D")
    start = np.where(is_coop, np.datetime64("2007-07-01", "D"), np.datetime64("1990-01-01", "D"))
    span = (as_of - start).astype(np.int64)
    founded = start + (np.sqrt(rng.random(n)) * span).astype(np.int64)

    # Industry section and industry word.
    sections = list(_INDUSTRY_WORDS)
    section = _weighted(rng, n, [_INDUSTRY_WORDS[s][0] for s in sections])
    section = np.where(is_coop, sections.index("A"), section)
    word_lists = [_INDUSTRY_WORDS[s][1] for s in sections]
    max_words = max(len(w) for w in word_lists)
    word_table = np.array([list(w) + [w[0]] * (max_words - len(w)) for w in word_lists])
    word_count = np.array([len(w) for w in word_lists])
    word = word_table[section, (rng.random(n) * word_count[section]).astype(np.int64)]
    industry = np.array([INDUSTRY_SECTIONS[s] for s in sections])[section]
    industry = np.where(is_assoc, INDUSTRY_SECTIONS["S"], industry)
    coop_words = np.array(("水稻种植", "大豆种植", "玉米种植", "蔬菜种植", "生猪养殖", "肉牛养殖", "农机"))
    word = np.where(is_coop, coop_words[rng.integers(0, len(coop_words), n)], word)

    # Administrative-division prefix and organisational form per kind.
    company_prefix = np.array(["双鸭山", "双鸭山市", "黑龙江"])[_weighted(rng, n, [0.6, 0.25, 0.15])]
    company_prefix = np.where(rng.random(n) < 0.15, district_names[district], company_prefix)
    prefix = np.select(
        [is_company, is_shop, is_coop],
        [company_prefix, _cat(CITY, district_names[district]), district_names[district]],
        CITY,
    )
    company_form = np.array([f for f, _ in _COMPANY_FORMS])[_weighted(rng, n, [w for _, w in _COMPANY_FORMS])]
    shop_form = np.array(_SHOP_FORMS)[rng.integers(0, len(_SHOP_FORMS), n)]
    form = np.select([is_company, is_shop, is_coop], [company_form, shop_form, "农民专业合作社"], "协会")

    trade_pool = np.array(_TRADE_CHARS)
    trade1 = trade_pool[rng.integers(0, len(trade_pool), n)]
    trade2 = trade_pool[rng.integers(0, len(trade_pool), n)]
    names = _cat(prefix, trade1, trade2, word, form)

    def redraw_name(pos: np.ndarray) -> np.ndarray:
        t1 = trade_pool[rng.integers(0, len(trade_pool), len(pos))]
        t2 = trade_pool[rng.integers(0, len(trade_pool), len(pos))]
        return _cat(prefix[pos], t1, t2, word[pos], form[pos])

    names = _unique_redraw(names.astype(object), redraw_name).astype(str)

    # Organization code (positions 9-17), as USCC alphabet indexes.
    new_style = founded >= _NEW_CODE_DATE

    def draw_body(size: int, new: np.ndarray) -> np.ndarray:
        body = np.empty((size, 8), dtype=np.int64)
        body[:, :2] = np.where(new[:, None], _uscc_index("MA")[None, :], rng.integers(0, 10, (size, 2)))
        body[:, 2:] = np.where(new[:, None], rng.integers(0, 31, (size, 6)), rng.integers(0, 10, (size, 6)))
        body[:, 0] = np.where(new, body[:, 0], rng.integers(1, 10, size))  # legacy codes do not start with 0
        return body

    body = draw_body(n, new_style)
    region_digits = _code_digits([c for c, _, _ in SHUANGYASHAN_DISTRICTS])[district].astype(np.int64)
    auth_kind = np.stack([_uscc_index(k) for k in kinds])[kind]  # (n, 2)

    def uscc_strings(rows: np.ndarray, body_rows: np.ndarray) -> np.ndarray:
        org_check = org_code_check_chars(_USCC_TO_ORG_VALUE[body_rows]).view(np.uint32)
        first17 = np.concatenate(
            [auth_kind[rows], region_digits[rows], body_rows, _ASCII_TO_USCC_INDEX[org_check][:, None]], axis=1
        )
        codes = np.empty((len(rows), 18), dtype=np.uint8)
        codes[:, :17] = _USCC_ASCII[first17]
        codes[:, 17] = uscc_check_chars(first17).view(np.uint32) if len(rows) else 0
        return _ascii_rows(codes)

    usccs = uscc_strings(np.arange(n), body)

    def redraw_uscc(pos: np.ndarray) -> np.ndarray:
        body[pos] = draw_body(len(pos), new_style[pos])
        return uscc_strings(pos, body[pos])

    usccs = _unique_redraw(usccs.astype(object), redraw_uscc).astype(str) if n else usccs

    # Registered capital, 万元: lognormal by kind, two decimals.
    median = np.select([is_company, is_shop, is_coop], [100.0, 5.0, 50.0], 3.0)
    sigma = np.select([is_company, is_shop, is_coop], [1.3, 1.0, 1.0], 0.5)
    capital = median * np.exp(sigma * rng.standard_normal(n))
    capital = np.where(is_company & (company_form == "股份有限公司"), capital * 10, capital)
    capital = np.round(np.clip(capital, 0.1, 1_000_000.0), 2)

    # Legal representatives: residents aged 20-75 when given, else freshly drawn names.
    if residents_df is not None and len(residents_df):
        ages = _age_on(residents_df["出生日期"].to_numpy(), AS_OF)
        pool = np.flatnonzero((ages >= 20) & (ages <= 75))
        if len(pool) == 0:
            pool = np.arange(len(residents_df))
        representative = residents_df["姓名"].take(pool[rng.integers(0, len(pool), n)])
    else:
        representative = _draw_names(rng, rng.random(n) < 0.7)

    address = _local_addresses(rng, district, with_flat=False)

    return _frame(
        {
            "统一社会信用代码": usccs,
            "企业名称": names,
            "法定代表人": representative,
            "注册资本": capital,
            "行业": industry,
            "成立日期": founded.astype("datetime64[ns]"),
            "住所": address,
        }
    )


# ---------------------------------------------------------------------------
# social insurance
# ---------------------------------------------------------------------------


def social_insurance(
    residents_df: pd.DataFrame, entities_df: pd.DataFrame, seed: int = 0, coverage: float = 0.8
) -> pd.DataFrame:
    """Enrolment in 城镇职工社会保险 of the given residents at the given employers.

    A share ``coverage`` of residents aged 16-65 on ``AS_OF`` are enrolled; about a third
    of those over 65 also appear, with 参保状态 终止参保 (retired).  Columns: 身份证号,
    姓名, 参保单位 (an entity's 企业名称; larger registered capital, more employees),
    月缴费基数 (integer yuan, lognormal clipped to [CONTRIBUTION_BASE_MIN,
    CONTRIBUTION_BASE_MAX]), 参保状态 (正常参保 / 暂停参保 / 终止参保), 参保日期 (not before
    1995, the person's 16th birthday, or the employer's founding).
    """
    if not 0.0 <= coverage <= 1.0:
        raise ValueError("coverage must be within [0, 1]")
    if len(entities_df) == 0:
        raise ValueError("social_insurance needs at least one market entity as employer")
    rng = _rng(seed, _STREAM_SOCIAL)
    n = len(residents_df)

    birth = residents_df["出生日期"].to_numpy().astype("datetime64[D]")
    age = _age_on(birth, AS_OF)
    working = (age >= 16) & (age <= 65)
    enrolled = working & (rng.random(n) < coverage)
    retired = (age > 65) & (rng.random(n) < 1 / 3)
    rows = np.flatnonzero(enrolled | retired)
    m = len(rows)

    weights = np.sqrt(entities_df["注册资本"].to_numpy(dtype=np.float64)) + 1.0
    employer = _weighted(rng, m, weights)

    # Retirees' records keep the base of their last working years, lower than today's wages; low
    # earners suspend contributions more often (about 9 % overall, a third of those at the minimum
    # base). The dependence gives analyses and DP models (issue 8) a signal to find.
    is_retired = retired[rows]
    base = 5200.0 * np.exp(0.45 * rng.standard_normal(m)) * np.where(is_retired, 0.55, 1.0)
    base = np.clip(np.round(base), CONTRIBUTION_BASE_MIN, CONTRIBUTION_BASE_MAX).astype(np.int64)

    suspend = np.clip(0.07 * (5200.0 / base) ** 3, 0.005, 0.35)
    draw = rng.random(m)
    status = np.where(is_retired | (draw >= 1.0 - 0.06), 2, np.where(draw < suspend, 1, 0))

    founded = entities_df["成立日期"].to_numpy().astype("datetime64[D]")[employer]
    lower = np.maximum.reduce([birth[rows] + 5845, founded, np.full(m, np.datetime64("1995-01-01", "D"))])
    # Retirees enrolled before they retired (at 60), unless their employer was founded later.
    today = np.datetime64(AS_OF, "D")
    lower = np.minimum(lower, today)
    upper = np.where(is_retired, np.maximum(np.minimum(birth[rows] + 21915, today), lower), today)
    enrolled_on = lower + (rng.random(m) * ((upper - lower).astype(np.int64) + 1)).astype(np.int64)

    return _frame(
        {
            "身份证号": residents_df["公民身份号码"].take(rows),
            "姓名": residents_df["姓名"].take(rows),
            "参保单位": entities_df["企业名称"].take(employer),
            "月缴费基数": base,
            "参保状态": _take(("正常参保", "暂停参保", "终止参保"), status),
            "参保日期": enrolled_on.astype("datetime64[ns]"),
        }
    )


# ---------------------------------------------------------------------------
# all tables, CSV
# ---------------------------------------------------------------------------


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
