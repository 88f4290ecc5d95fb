"""The generated city: 黑龙江省双鸭山市, its districts, its people's names, its streets and trades.

Why a module of its own: the three generated tables (``samples.population``,
``samples.enterprises``, ``samples.insurance``) and the labelled set draw from one vocabulary, and
the benchmarks read it to build the same tables the slow way. The city's districts and counties
carry their real GB/T 2260 codes; about one person in ten has a 户籍地 elsewhere in China (real
division codes). Street names are generic Chinese street names, not a survey of the city;
population weights of the districts are rounded orders of magnitude, not census figures.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

__all__ = [
    "AS_OF",
    "CITY",
    "CITY_CODE",
    "COMPANY_FORMS",
    "CONTRIBUTION_BASE_MAX",
    "CONTRIBUTION_BASE_MIN",
    "DAYS_1900",
    "ENTITY_KINDS",
    "ETHNICITIES",
    "FEMALE_CHARS",
    "INDUSTRY_SECTIONS",
    "INDUSTRY_WORDS",
    "MALE_CHARS",
    "MIGRANT_SHARE",
    "MOBILE_PREFIXES",
    "NOTES_SHARE",
    "NUM_STR",
    "OTHER_REGIONS",
    "PROVINCE",
    "REGION_CODES",
    "SHOP_FORMS",
    "SHUANGYASHAN_DISTRICTS",
    "SINGLE_GIVEN_SHARE",
    "STREAM_ENTITIES",
    "STREAM_NOTES",
    "STREAM_RESIDENTS",
    "STREAM_SOCIAL",
    "STREETS",
    "SURNAMES",
    "TRADE_CHARS",
    "region_names",
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
SURNAMES: tuple[tuple[str, float], ...] = (
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

MALE_CHARS = tuple(
    dict.fromkeys(
        "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳建国峰亮成志东海文博宏新"
        "春生永民庆福喜德立金山岩石晨昊轩睿泽子天嘉铭然航军兵武彬祥"
    )
)
FEMALE_CHARS = tuple(
    dict.fromkeys(
        "芳娜敏静丽艳娟霞秀玲燕红梅琳丹萍颖雪慧倩婷莉洁晶琴云玉兰凤佳欣悦怡彤萱琪涵雨婉桂英华荣淑珍爽楠月璐薇晓春美霖"
    )
)
SINGLE_GIVEN_SHARE = 0.25

ETHNICITIES: tuple[tuple[str, float], ...] = (
    ("汉族", 0.905), ("满族", 0.040), ("朝鲜族", 0.020), ("蒙古族", 0.010), ("回族", 0.010),
    ("赫哲族", 0.004), ("达斡尔族", 0.003), ("锡伯族", 0.002), ("壮族", 0.002),
    ("鄂伦春族", 0.001), ("鄂温克族", 0.001),
)  # fmt: skip

MOBILE_PREFIXES: tuple[int, ...] = (
    *range(130, 140), 147, *(p for p in range(150, 160) if p != 154), 166,
    *range(170, 179), *range(180, 190), 191, 198, 199,
)  # fmt: skip

STREETS: tuple[str, ...] = (
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
INDUSTRY_WORDS: dict[str, tuple[float, tuple[str, ...]]] = {
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

TRADE_CHARS = tuple(
    dict.fromkeys(
        "鑫盛华恒泰兴隆达源宏远诚信德鼎丰汇金瑞祥福顺利昌永嘉佳博宇星辰龙凯旭东北方正中新天安康"
        "平和润泽海川山林森百万千众合友联创亿通广大鸿骏腾飞越卓晟煜昊睿智铭誉峰岳辉光明宁益富"
        "强荣耀坤乾元亨"
    )
)

# Entity kinds: (position 1-2 of the USCC, share).  91 企业, 92 个体工商户,
# 93 农民专业合作社 (all registered by 工商/市场监管), 51 社会团体 (民政).
ENTITY_KINDS: tuple[tuple[str, float], ...] = (("91", 0.86), ("92", 0.09), ("93", 0.03), ("51", 0.02))
COMPANY_FORMS: tuple[tuple[str, float], ...] = (("有限公司", 0.60), ("有限责任公司", 0.33), ("股份有限公司", 0.07))
SHOP_FORMS: tuple[str, ...] = ("经营部", "商店", "门市部", "商行")

STREAM_RESIDENTS = 0
STREAM_ENTITIES = 1
STREAM_SOCIAL = 2
STREAM_NOTES = 3

#: Share of residents whose record carries a 备注 (free-text remark); the rest are null.
NOTES_SHARE = 0.45

DAYS_1900 = np.datetime64("1900-01-01", "D")

# Small-integer -> decimal string, so that house, building and room numbers are looked up
# instead of formatted row by row.
NUM_STR = tuple(str(i) for i in range(2000))


def region_names() -> dict[str, str]:
    """Division code -> full 户籍地 text, for every code the generator can emit."""
    names = {code: PROVINCE + CITY + name for code, name, _ in SHUANGYASHAN_DISTRICTS}
    names.update(dict(OTHER_REGIONS))
    return names


#: Every division code a resident's 户籍地 can have: the city's districts first, then the others.
REGION_CODES: tuple[str, ...] = (*(c for c, _, _ in SHUANGYASHAN_DISTRICTS), *(c for c, _ in OTHER_REGIONS))
