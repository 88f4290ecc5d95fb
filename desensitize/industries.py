"""Employer names generalized to an industry and a size class: the employer ladder's rungs.

Why: an employer is a quasi-identifier a colleague knows (issue 23: 94 % of the social-insurance
rows were unique on 参保单位 + 参保日期). GB/T 37964-2019 附录A 泛化技术 replaces a value by the
class it belongs to; for an organisation the classes a statistician uses are its industry
(GB/T 4754-2017《国民经济行业分类》门类) and its size. The industry is read from the words a
Chinese organisation name carries (企业名称 = 行政区划 + 字号 + 行业表述 + 组织形式, 《企业名称登记管理
规定》第六条); the size class is how many rows of the table hold that employer (an employer of
one insured person stands out, one of three hundred does not), in the bands of the statistical
size classes (1-9, 10-49, 50-249, 250+).

Labels are re-readable: a value that already is an industry, or an industry with its size class,
stays on the rung it is on when a ladder is built again on a generalized copy (a licence copy is
derived from the base copy, never from raw data).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "INDUSTRIES",
    "OTHER",
    "SIZE_CLASSES",
    "employer_rungs",
    "industry_label",
    "industry_of",
    "size_class",
    "split_label",
]

#: Industries (GB/T 4754-2017 门类, shortened) and the name words that place an organisation in them.
#: Order matters: the first section whose word occurs in the name wins (医药连锁 is retail, not health).
INDUSTRIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("金融", ("银行", "保险", "证券", "基金", "信托", "投资管理", "融资担保", "小额贷款", "金融", "信用社")),
    (
        "批发零售",
        (
            "医药连锁",
            "商贸",
            "贸易",
            "物资",
            "超市",
            "粮油",
            "农资",
            "汽车销售",
            "五金",
            "商店",
            "商行",
            "门市部",
            "经营部",
            "批发",
            "零售",
            "百货",
            "药店",
            "销售",
        ),
    ),
    ("信息技术", ("网络科技", "信息技术", "软件", "电子商务", "数据科技", "通信", "互联网", "计算机", "信息")),
    ("住宿餐饮", ("餐饮", "酒店", "饭店", "宾馆", "旅馆", "食府", "餐厅")),
    ("交通运输", ("物流", "运输", "客运", "仓储", "快递", "邮政", "公交", "铁路", "航空")),
    ("建筑", ("建筑", "建设", "路桥", "装饰工程", "安装工程", "施工")),
    ("房地产", ("房地产", "物业", "置业")),
    ("采矿", ("煤业", "矿业", "煤炭", "石材", "矿")),
    ("电力燃气水", ("热力", "能源", "电力", "燃气", "供水", "水务", "供热")),
    (
        "制造",
        (
            "机械",
            "制造",
            "食品",
            "木业",
            "建材",
            "化工",
            "服装",
            "乳业",
            "米业",
            "酒业",
            "电气",
            "设备",
            "加工",
            "制药",
            "钢",
            "厂",
        ),
    ),
    ("农林牧渔", ("农业", "牧业", "水产", "养殖", "种植", "林业", "农民专业合作社", "农场", "渔业")),
    ("教育", ("学校", "学院", "大学", "中学", "小学", "幼儿园", "教育", "培训")),
    ("卫生", ("医院", "卫生", "医疗", "健康", "诊所", "养老", "疾病预防")),
    (
        "公共管理",
        (
            "人民政府",
            "委员会",
            "管理局",
            "局",
            "街道办事处",
            "社区",
            "协会",
            "学会",
            "商会",
            "联合会",
            "人民法院",
            "人民检察院",
            "党委",
        ),
    ),
    ("商务服务", ("商务咨询", "人力资源", "广告", "企业管理", "劳务派遣", "租赁", "咨询")),
    ("科研技术", ("技术服务", "检测", "工程设计", "测绘", "研究", "科技")),
    ("环境公共设施", ("环保", "环境工程", "园林", "绿化", "市政")),
    ("居民服务", ("家政", "维修", "洗浴", "美容", "美发", "保洁")),
    ("文化体育娱乐", ("文化", "传媒", "体育", "影视", "旅游", "娱乐", "出版")),
)
#: Where a name carries none of the words (GB/T 4754 has no such section: it is the platform's residual).
OTHER = "其他"
_NAMES = frozenset(name for name, _ in INDUSTRIES) | {OTHER}
#: Size classes by rows holding the employer (the statistical 1-9 / 10-49 / 50-249 / 250+ bands).
SIZE_CLASSES: tuple[tuple[int, str], ...] = ((250, "250+"), (50, "50-249"), (10, "10-49"), (1, "1-9"))
_LABEL = re.compile(r"^(?P<industry>[^（）]+)（(?P<size>1-9|10-49|50-249|250\+)）$")


def industry_of(name: object) -> str:
    """The industry of an organisation name (``OTHER`` when no word places it; a label stays its industry)."""
    text = str(name).strip()
    industry, _ = split_label(text)
    if industry is not None:
        return industry
    for section, words in INDUSTRIES:
        if any(word in text for word in words):
            return section
    return OTHER


def size_class(rows: int) -> str:
    """The size class of an employer held by ``rows`` rows of the table."""
    if rows < 1:
        raise ValueError("an employer's size class needs at least one row")
    return next(label for floor, label in SIZE_CLASSES if rows >= floor)


def industry_label(industry: str, size: str) -> str:
    """An employer at the industry + size class rung, e.g. ``制造（10-49）``."""
    return f"{industry}（{size}）"


def split_label(text: str) -> tuple[str | None, str | None]:
    """(industry, size class) of a generalized label; (industry, None) for an industry alone; (None, None) else."""
    match = _LABEL.match(text)
    if match and match.group("industry") in _NAMES:
        return match.group("industry"), match.group("size")
    if text in _NAMES:
        return text, None
    return None, None


def employer_rungs(uniques: Sequence[object], counts: Sequence[int]) -> tuple[list[str], list[str]]:
    """Per distinct employer: its industry + size class label and its industry label.

    ``counts``: rows of the table holding each distinct value. A value already generalized keeps its
    rung (an industry alone stays that industry on both rungs).
    """
    with_size: list[str] = []
    industries: list[str] = []
    for value, count in zip(uniques, counts, strict=True):
        text = str(value).strip()
        industry, _ = split_label(text)
        if industry is not None:
            with_size.append(text)
            industries.append(industry)
            continue
        industry = industry_of(text)
        with_size.append(industry_label(industry, size_class(int(count))))
        industries.append(industry)
    return with_size, industries
