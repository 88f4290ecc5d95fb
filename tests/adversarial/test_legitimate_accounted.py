# ruff: noqa: E501  (job code is test data: one job per line reads best)
"""Issue 15's legitimate analyses: what an analyst writes, run for real in the sandbox and judged
against the copy it read. None may be blocked; the ones the platform can re-derive from the copy
(tables of groups with their measures, a chart it renders itself, a DP answer it signed) pass.

The copy is ``households`` (numbers stay numbers: 月收入, 家庭人数) unless said otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adversarial import run_and_judge
from tests.adversarial.test_dp import insurance_facts, run_dp
from tests.dp_support import copy_form

pytestmark = pytest.mark.attack

HOUSE = "import pandas as pd, numpy as np, json\nh = pd.read_parquet('/data/households.parquet')\n"
CHART = (
    "t = h.groupby('区县').size().rename('户数').reset_index()\nt.to_csv('/out/t.csv', index=False)\n"
    "spec = {'$schema': 'https://vega.github.io/schema/vega-lite/v5.json', 'title': '各区县户数',"
    " 'data': {'url': 't.csv'}, 'mark': 'bar',"
    " 'encoding': {'x': {'field': '区县', 'type': 'nominal', 'title': '区县'},"
    " 'y': {'field': '户数', 'type': 'quantitative', 'title': '户数'}}}\n"
    "json.dump(spec, open('/out/t.vl.json', 'w'), ensure_ascii=False)"
)

# (id, kind, code, expected verdict)
LEGIT: list[tuple[str, str, str, str]] = [
    (
        "means_by_district_no_count",
        "python",
        HOUSE + "h.groupby('区县')['月收入'].mean().round(2).reset_index().to_csv('/out/m.csv', index=False)",
        "pass",
    ),
    (
        "frequencies_count_named_anything",
        "python",
        HOUSE + "h.groupby(['区县', '性别']).size().rename('xyz').reset_index().to_csv('/out/f.csv', index=False)",
        "pass",
    ),
    ("chart_rendered_by_the_platform", "python", HOUSE + CHART, "pass"),
    (
        "median_and_spread_by_age_band",
        "python",
        HOUSE
        + "h.groupby('年龄段')['月收入'].agg(['median', 'std']).round(1).reset_index().to_parquet('/out/s.parquet')",
        "pass",
    ),
    (
        "insured_share_as_percent_strings",
        "python",
        HOUSE
        + "s = h.groupby('区县')['参保状态'].apply(lambda v: f'{(v == \"正常参保\").mean() * 100:.1f}%').rename('参保率')\ns.reset_index().to_csv('/out/r.csv', index=False)",
        "pass",
    ),
    (
        "crosstab_with_margins",
        "python",
        HOUSE + "pd.crosstab(h['区县'], h['年龄段'], margins=True).to_csv('/out/x.csv')",
        "pass",
    ),
    (
        "sql_having_at_least_ten",
        "sql",
        "select 区县, 性别, count(*) as n, round(avg(月收入), 1) as 平均月收入 from households group by 1, 2 having count(*) >= 10 order by 1, 2",
        "pass",
    ),
    (
        "sql_households_per_size",
        "sql",
        "select 家庭人数, count(*) as 户数 from households group by 1 order by 1",
        "pass",
    ),
    (
        "status_shares_as_json",
        "python",
        HOUSE + "h['参保状态'].value_counts(normalize=True).round(4).to_json('/out/s.json', force_ascii=False)",
        "pass",
    ),
    (
        "parquet_with_the_group_as_index",
        "python",
        HOUSE + "h.groupby('区县')[['家庭人数']].sum().to_parquet('/out/p.parquet')",
        "pass",
    ),
    ("income_sum_by_district", "sql", "select 区县, sum(月收入) as 月收入合计 from households group by 1", "pass"),
    (
        "regression_coefficients",
        "python",
        HOUSE
        + "X = np.c_[np.ones(len(h)), h['家庭人数']]\nb, *_ = np.linalg.lstsq(X, h['月收入'].to_numpy(float), rcond=None)\npd.DataFrame({'term': ['const', 'size'], 'coef': b, 'df_resid': len(h) - 2}).to_csv('/out/reg.csv', index=False)",
        "review",
    ),
    (
        "matplotlib_chart",
        "python",
        HOUSE
        + "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nh.groupby('区县').size().plot.bar()\nplt.savefig('/out/c.png')",
        "review",
    ),
    # Found blocked by the red team before the fixes (issue 15): an aggregate grouped by exactly the
    # quasi-identifiers, pandas' describe(), and means with confidence bounds.
    (
        "groups_by_the_quasi_identifiers",
        "python",
        HOUSE
        + "t = h.groupby(['区县', '性别', '年龄段']).agg(户数=('月收入', 'size'), 平均月收入=('月收入', 'mean')).reset_index()\nt[t['户数'] >= 10].to_csv('/out/qi.csv', index=False)",
        "pass",
    ),
    (
        "describe_by_district",
        "python",
        HOUSE + "h.groupby('区县')['月收入'].describe().reset_index().to_csv('/out/describe.csv', index=False)",
        "review",
    ),
    (
        "means_with_confidence_bounds",
        "python",
        HOUSE
        + "g = h.groupby(['区县', '年龄段', '家庭人数'])['月收入']\nt = pd.DataFrame({'户数': g.size(), '平均月收入': g.mean().round(0), '标准误': (g.std() / np.sqrt(g.size())).round(0)}).reset_index()\nt['下限'] = (t['平均月收入'] - 1.96 * t['标准误']).round(0)\nt[t['户数'] >= 10].to_csv('/out/ci.csv', index=False)",
        "review",
    ),
    (
        "report_in_markdown",
        "python",
        HOUSE + "open('/out/r.md', 'w').write('# 户籍分析\\n\\n本报告汇总各区县户数。\\n')",
        "review",
    ),
]


@pytest.mark.parametrize(("name", "kind", "code", "expected"), LEGIT, ids=[x[0] for x in LEGIT])
def test_legitimate_analysis(name: str, kind: str, code: str, expected: str, tmp_path: Path) -> None:
    judged = run_and_judge(kind, code, tmp_path, dataset="households")
    assert judged.verdict == expected, [f.as_json() for f in judged.findings]


@pytest.mark.slow
def test_a_dp_answer_the_platform_signed_passes(tmp_path: Path) -> None:
    frame = copy_form(3000)
    spec = {"aggregate": "count", "epsilon": 0.5, "group_by": ["参保状态"]}
    judged = run_dp("dp-query", spec, insurance_facts(frame), frame, tmp_path)
    assert judged.verdict == "pass", [f.as_json() for f in judged.findings]


def test_at_least_ten_new_legitimate_analyses() -> None:
    assert len(LEGIT) + 1 >= 10
