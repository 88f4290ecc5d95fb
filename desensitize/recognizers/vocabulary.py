"""The words the Chinese recognizers know: surnames, provinces and their codes, the words around names.

Why one module: the free-text patterns (``desensitize.recognizers``) and the column value tests
(``desensitize.validators``) read the same lists, so a surname or a province code is added once.
Surnames and division codes follow the national registers and GB/T 2260; plate abbreviations
GA 36-2018.
"""

from __future__ import annotations

__all__ = [
    "COMPOUND_SURNAMES",
    "ID_PROVINCE_CODES",
    "NAME_PLACEHOLDERS",
    "NAME_STOP_CHARS",
    "PERSON_CONTEXT",
    "PERSON_DENY",
    "PERSON_TITLES",
    "PERSON_VERBS",
    "PROVINCES",
    "PROVINCE_ABBREVIATIONS",
    "PROVINCE_CODES",
    "SINGLE_SURNAMES",
]

#: Single-character surnames: the ~300 most frequent (national registers), which cover well over
#: 95 % of the population.
SINGLE_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆"
    "汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易"
    "乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍"
    "华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师"
    "和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝郜鞠鄂丰衣那来"
)

#: Compound surnames (复姓) in use today.
COMPOUND_SURNAMES: tuple[str, ...] = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "夏侯", "长孙", "宇文",
    "司徒", "轩辕", "端木", "独孤", "南宫", "西门", "百里", "呼延", "澹台", "公冶", "申屠", "太史",
)  # fmt: skip

#: 省级行政区 with their official suffixes (GB/T 2260).
PROVINCES: tuple[str, ...] = (
    "北京市", "天津市", "上海市", "重庆市", "河北省", "山西省", "辽宁省", "吉林省", "黑龙江省", "江苏省",
    "浙江省", "安徽省", "福建省", "江西省", "山东省", "河南省", "湖北省", "湖南省", "广东省", "海南省",
    "四川省", "贵州省", "云南省", "陕西省", "甘肃省", "青海省", "台湾省", "内蒙古自治区", "广西壮族自治区",
    "西藏自治区", "宁夏回族自治区", "新疆维吾尔自治区", "香港特别行政区", "澳门特别行政区",
)  # fmt: skip

#: One-character province abbreviations that open a licence plate (GA 36-2018).
PROVINCE_ABBREVIATIONS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"

#: Words announcing that a person's name follows. Longest first, so that 法定代表人 wins over 代表人.
PERSON_CONTEXT: tuple[str, ...] = tuple(
    sorted(
        {
            "姓名", "名字", "联系人", "法定代表人", "法人代表", "法人", "户主", "申请人", "负责人", "经办人",
            "投诉人", "举报人", "当事人", "患者", "病人", "委托人", "代理人", "收件人", "收货人", "寄件人",
            "监护人", "被保险人", "投保人", "受益人", "驾驶人", "驾驶员", "车主", "机主", "业主", "承租人",
            "出租人", "持卡人", "开户人", "户名", "办理人", "签收人", "报案人", "证人", "对接人", "联络人",
            "填报人", "审核人", "录入人", "来访人", "来电人", "求助人", "参保人", "借款人", "担保人", "户主姓名",
            "被申请人", "嫌疑人", "被告", "原告", "第三人", "房东", "租户", "住户", "职工", "家属", "配偶", "丈夫",
            "妻子", "儿子", "女儿", "父亲", "母亲", "其子", "其女", "其夫", "其妻", "之子", "之女", "紧急联系人",
        },
        key=lambda w: (-len(w), w),
    )
)  # fmt: skip

#: Titles that follow a name (张伟先生, 李娜女士, 王建国同志).
PERSON_TITLES: tuple[str, ...] = (
    "先生", "女士", "同志", "小姐", "老师", "师傅", "医生", "大夫", "主任", "经理", "书记", "局长", "科长",
    "处长", "所长", "院长", "校长", "村长", "组长", "队长", "律师", "警官", "大爷", "大妈", "阿姨", "老人",
)  # fmt: skip

#: Characters that end a name: particles, verbs and nouns that follow names in administrative text
#: and almost never are given-name characters (见 tests: the generated names are never cut short).
NAME_STOP_CHARS = (
    "的了是在与及或等为于从对把被让给到去说称电手身住联性年出证号码户籍地址邮箱座机固话办理申请先女士同也都就又还曾均"
    "代则之后前时经由将已并且而但因所以如果请系即其该此这那你我他她们个位名岁男今昨日身份护照通行驾驶车牌银行卡账户网"
    "统反映表示访问投诉举报现居属父母亲妻夫儿媳外公司单企村镇乡县区市省街组委会工作员签盖"
)

#: Words that start with a surname character but are not names, seen after context words or
#: before titles ("负责人任务", "申请人于本月", "全体同志").
PERSON_DENY: frozenset[str] = frozenset(
    (
        "全体", "各位", "诸位", "广大", "方面", "方式", "方案", "方法", "任务", "任何", "任意", "于是", "于本",
        "于今", "于当", "于上", "于下", "于近", "于昨", "于次", "于某", "于此", "于该", "于其", "于凌", "于每",
        "于一", "于两", "于三", "于去年", "于前日", "于明日", "于明天", "于早上", "于晚上", "于中午", "于傍晚",
        "于周末", "于春节", "于年底", "于年初", "于月底", "于月初", "于同日", "于节后", "和平", "和谐", "高级",
        "高新区", "高速", "金额", "金融", "周末", "周边", "明天", "明年", "明确", "文件", "文化", "石油", "黄金",
        "林业", "马上", "常年", "安全", "安排", "安装", "康复", "温度", "成本", "成员", "成年", "时间", "时候",
        "程序", "余额", "关于", "关系", "包括", "平安", "单位", "管理", "解决", "费用", "许可", "车辆", "连续",
        "项目", "华人", "国家", "应该", "应当", "宁可", "向前", "向上", "向下", "向东", "向西", "向南", "向北",
        "全部", "全面", "全市", "全县", "全区", "全省", "全国", "同时", "同意", "同学", "同事", "本人", "家属",
        "那么", "那里", "那个", "那些", "来自", "来电", "来访", "来信", "来到", "姜汤", "毛巾", "江边", "龙头",
        "白天", "白色", "史上", "严重", "严格", "钱款", "万元", "万人", "路口", "路段", "路面", "邮件",
    )
)  # fmt: skip

#: First two digits of GB/T 2260 division codes: the provinces, plus 10 for national registrations.
PROVINCE_CODES = frozenset(
    (
        "10", "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42",
        "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
    )
)  # fmt: skip
#: A resident ID's address code names a province (10 is no province: national registrations only).
ID_PROVINCE_CODES = PROVINCE_CODES - {"10"}

#: Verbs and particles that follow a person who is the subject of a clause (王小明于5月到窗口办理,
#: 据李娜介绍, 由张伟负责).
PERSON_VERBS: tuple[str, ...] = (
    "于", "已", "在", "称", "说", "表示", "反映", "介绍", "曾", "现", "因", "到", "来电", "来访", "负责", "取得",
    "联系", "办理", "签字", "同意", "申请", "本人",
)  # fmt: skip

#: What name columns hold where no name is known; never taken for a name.
NAME_PLACEHOLDERS: frozenset[str] = frozenset(
    ("不详", "未知", "无名", "暂无", "同上", "待补充", "待定", "本人", "其他", "空白", "匿名", "测试", "null", "none")
)
