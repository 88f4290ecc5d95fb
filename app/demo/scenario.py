"""The demo's scenario: who provides which table, the public facts, the jobs the operator submits, what it
says to the reviewers and what the provider objects to. Data only; ``app.demo.steps`` plays it.
"""

import json
from dataclasses import dataclass

from desensitize import org_code_check_char, uscc_check_char

DEMO_DIR = "demo-data"
# Which table is written in which encoding: one GB18030 file exercises the encoding detection.
ENCODINGS = {"residents": "utf-8", "social_insurance": "utf-8", "market_entities": "gb18030"}
# Who provides each table: 提供方名称, the 统一社会信用代码's 9-character organisation code, 行业分类.
PROVIDERS = {
    "residents": ("双鸭山市公安局", "01234567", "公共安全"),
    "social_insurance": ("双鸭山市人力资源和社会保障局", "01234568", "社会保障"),
    "market_entities": ("双鸭山市市场监督管理局", "01234569", "市场监管"),
}
DEMO_OPERATOR_ORG = "MA1D2E3F4"  # organisation code stem of the demo operator's 统一社会信用代码


def demo_uscc(org_stem: str, kind: str = "11") -> str:
    """A well-formed 统一社会信用代码 in 双鸭山 (230500): ``kind`` 11 is a government organ."""
    org = org_stem[:8] + org_code_check_char(org_stem[:8])
    first17 = f"{kind}230500{org}"
    return first17 + uscc_check_char(first17)


#: The custodian's say on egress (SATRE 3.1.06): these datasets' releases are delegated to the agency, with
#: the custodian's reason; every other dataset's releases wait for the custodian's own sign-off.
DELEGATED = {"residents": "demo: 人口统计汇总类产品委托实施机构审核 · population aggregates delegated to the agency"}
#: The custodian's say on access (SATRE 1.5.04): a standing delegation of its agreement to licences over these
#: datasets to the agency; for every other dataset it agrees to each licence itself (ACCESS_AGREEMENT).
ACCESS_DELEGATED = {
    "social_insurance": "demo: 社保分析类授权委托实施机构决定 · licences over social insurance: the agency decides"
}
ACCESS_AGREEMENT = "数据主管部门同意该授权运营协议使用本数据 · the custodian agrees to this licence over its data"
CUSTODIAN_SIGNOFF = "数据主管部门同意对外提供 · the custodian agrees to this release of its data"

#: (dataset, column, public bounds, public domain) the demo custodian declares.
PUBLIC_FACTS: list[tuple[str, str, list[float] | None, list[str] | None]] = [
    ("social_insurance", "月缴费基数", [3000, 40000], None),  # the statutory contribution-base range
    ("social_insurance", "参保日期", [1995, 2027], None),
    # The insured's birth year (the L4 copy keeps 出生日期 as a year): a century of residents up to the youngest
    # insurable, 16 on AS_OF (samples.world) and so born by 2010; facts about the city, not read off the data.
    ("social_insurance", "出生日期", [1920, 2010], None),
    ("social_insurance", "参保状态", None, ["正常参保", "暂停参保", "终止参保"]),
]
#: The custodian's rulings against default quasi-identifiers (issue 23, red team 23): 参保状态 splits the L4
#: classes, so it would be a quasi-identifier (``desensitize.splits``), and on a small demo's joint copies it
#: went to ``*`` and the dp-train job failed; it is the label of the demo's model and the grouping of its chart
#: and DP query, three public values. Ruled out with this reason, ledgered with the copy, stated in its report.
DEMO_NOT_QUASI: dict[str, dict[str, str]] = {
    "social_insurance": {
        "参保状态": "demo: 参保状态为参保状态预测模型的标签和分布图、均值查询的分组，仅三类公开取值"
        " · the label of the demo's model and the grouping of its chart and query: three public values"
    },
}
DEMO_DP_QUERY = json.dumps(
    {"aggregate": "mean", "column": "月缴费基数", "epsilon": 0.5, "group_by": ["参保状态"]}, ensure_ascii=False
)
#: The model of 参保状态 from the public features that carry its signal (issue 16): the birth year (all insured
#: over 65 are 终止参保) and the contribution base (low bases suspend more often). 参保日期 adds nothing the
#: birth year does not say and costs accuracy at ε 1.0. Ten epochs at a learning rate of 5: features scaled to
#: [0, 1] by their bounds need large weights, and three epochs at 0.5 left the model at the majority class.
#: On the demo's default copy (20,000 residents, seed 20261123) it beats the holdout's majority share by
#: 8-10 points (12 runs); tests/test_demo_model.py checks it.
DEMO_DP_TRAIN_FEATURES = ["出生日期", "月缴费基数"]
DEMO_DP_TRAIN = json.dumps(
    {
        "features": DEMO_DP_TRAIN_FEATURES,
        "label": "参保状态",
        "model": "logistic",
        "epochs": 10,
        "batch_size": 256,
        "learning_rate": 5.0,
        "epsilon": 1.0,
        "delta": 1e-5,
        "max_grad_norm": 1.0,
    },
    ensure_ascii=False,
)

DEMO_SCENARIOS = ["人口结构分析", "社会保障分析"]
DEMO_SQL = (
    "SELECT 性别, 民族, count(*) AS 人数 FROM residents GROUP BY 性别, 民族 HAVING count(*) >= 10 ORDER BY 人数 DESC"
)
#: Issue 23: the licence grants joint analysis of residents and social insurance, so their copies share one
#: per-licence person key and a job joins them on it (身份证号 = 公民身份号码); only aggregates leave. The guard
#: re-derives the table from the same join of the mounted copies (``residents+social_insurance``): it passes.
DEMO_JOIN_SQL = (
    "SELECT r.性别, s.参保状态, count(*) AS 人数 FROM residents r JOIN social_insurance s "
    "ON r.公民身份号码 = s.身份证号 GROUP BY r.性别, s.参保状态 HAVING count(*) >= 10 ORDER BY r.性别, s.参保状态"
)
#: The link groups the demo licence grants (each joined on its per-licence person key).
DEMO_JOINT = [["residents", "social_insurance"]]
#: A Python analysis with a chart. matplotlib is not in the sandbox, so the script draws the SVG bar chart itself;
#: the CSV beside it holds the same numbers. Images always go to agency review (a soft finding, 双鸭山 第五十二条).
DEMO_PYTHON = """import html
import pandas as pd

df = pd.read_parquet("/data/social_insurance.parquet")
table = df.groupby("参保状态").size().rename("人数").reset_index().sort_values("人数", ascending=False)
table.to_csv("/out/enrolment_by_status.csv", index=False)
width, left, bar, gap, top = 640, 110, 34, 12, 56
peak = max(int(table["人数"].max()), 1)
svg = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + len(table) * (bar + gap) + 16}" '
    'font-family="sans-serif" font-size="14">',
    '<text x="12" y="30" font-size="18">参保状态分布 Enrolment by status</text>',
]
for i, (status, count) in enumerate(zip(table["参保状态"], table["人数"])):
    y = top + i * (bar + gap)
    w = round((width - left - 90) * int(count) / peak)
    svg.append(f'<text x="{left - 8}" y="{y + 22}" text-anchor="end">{html.escape(str(status))}</text>')
    svg.append(f'<rect x="{left}" y="{y}" width="{w}" height="{bar}" fill="#2f6fca"/>')
    svg.append(f'<text x="{left + w + 6}" y="{y + 22}">{int(count)}</text>')
svg.append("</svg>")
with open("/out/enrolment_by_status.svg", "w", encoding="utf-8") as handle:
    handle.write("\\n".join(svg) + "\\n")
print(table.to_string(index=False))
"""

#: An attempt to take records out: the guard recognises the rows and the pseudonyms and blocks it.
DEMO_EXFILTRATION = """import pandas as pd
pd.read_parquet("/data/residents.parquet").head(500).to_csv("/out/residents_sample.csv", index=False)
"""
#: A subtler one: each insured person's pseudonym, hex-encoded into a "summary" column so it does not look like
#: one. The guard decodes hex/base64 before matching the dataset's pseudonyms (双鸭山: no restoring records
#: "through reversible algorithms") and blocks it too.
DEMO_EXFILTRATION_ENCODED = """import pandas as pd
df = pd.read_parquet("/data/social_insurance.parquet").head(300)
summary = pd.DataFrame({"批次": range(1, len(df) + 1), "摘要": [str(v).encode().hex() for v in df["身份证号"]]})
summary.to_csv("/out/contribution_summary.csv", index=False)
"""


@dataclass(frozen=True, slots=True)
class DemoJob:
    """One job the demo operator submits; ``product`` names what it is released as (None: not releasable)."""

    what: str
    kind: str
    datasets: list[str]
    code: str
    scenario: str
    product: str | None = None


DEMO_JOBS = [
    DemoJob("SQL aggregate 人口性别民族统计", "sql", ["residents"], DEMO_SQL, DEMO_SCENARIOS[0], "人口性别民族统计"),
    DemoJob("Python analysis + SVG chart 参保状态分布图", "python", ["social_insurance"], DEMO_PYTHON,
            DEMO_SCENARIOS[1], "参保状态分布图"),
    # ε is charged to the licence's budget before it runs; the platform signs the answer.
    DemoJob("dp-query 缴费基数均值 (ε 0.5)", "dp-query", ["social_insurance"], DEMO_DP_QUERY, DEMO_SCENARIOS[1],
            "缴费基数差分隐私均值"),
    # The model leaves only with the platform's DP certificate.
    DemoJob("dp-train 参保状态模型 (ε 1.0)", "dp-train", ["social_insurance"], DEMO_DP_TRAIN, DEMO_SCENARIOS[1],
            "参保状态预测模型"),
    DemoJob("export attempt: resident rows", "python", ["residents"], DEMO_EXFILTRATION, DEMO_SCENARIOS[0]),
    DemoJob("export attempt: hex-encoded pseudonyms", "python", ["social_insurance"], DEMO_EXFILTRATION_ENCODED,
            DEMO_SCENARIOS[1]),
    DemoJob("out of scope: market_entities", "sql", ["market_entities"], "SELECT count(*) FROM market_entities",
            DEMO_SCENARIOS[0]),
    # Issue 23: linkage granted, so the two copies join on the licence's own person key.
    DemoJob("SQL join 性别 × 参保状态 (joint analysis)", "sql", ["residents", "social_insurance"], DEMO_JOIN_SQL,
            DEMO_SCENARIOS[1]),
]  # fmt: skip

#: Why each kind of soft finding is acceptable, as the operator justifies it when requesting release.
JUSTIFICATIONS = {
    "sdc.image": "柱状图只画出三类参保状态的汇总人数，与同一产品的 CSV 表数字一致，不含任何个人记录。",
    "sdc.min_cell_count": "小单元格来自合成演示数据的规模；请审核人员核对后决定。",
}
DEFAULT_JUSTIFICATION = "汇总统计结果，不含个人记录；请审核人员按统计披露控制规则核对。"
#: The objection the data provider files against the chart product, and the agency's resolution (第四十条).
OBJECTION_REASON = "图中“暂停参保”人数与本局对外公布的统计口径不一致，请核实后再提供。"
OBJECTION_RESOLUTION = "已核实：产品按脱敏副本全部参保记录统计，口径差异已在产品说明中注明，恢复提供。"
PRODUCTS_DIR = "demo-products"
LEDGER_DIR = "demo-ledger"

# The terms of use every person accepts and the training they complete before a licence opens data (issue 22).
DEMO_TERMS_VERSION = "demo-2026-12"
DEMO_TERMS_TITLE = "可用 Keyong 公共数据授权运营平台使用条款"
DEMO_TERMS = (
    "1. 仅在授权运营协议的范围和应用场景内使用公共数据；原始数据不出域，不得尝试还原个人信息。\n"
    "2. 账号和密钥仅限本人使用，不得转借；发现安全事件立即报告授权运营实施机构。\n"
    "3. 一切操作记入不可篡改的日志，监管部门可随时核验。\n"
)
DEMO_TRAINING = "公共数据安全与个人信息保护培训"
