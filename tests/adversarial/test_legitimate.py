"""Legitimate analyses over the desensitized residents: they end ``pass`` or ``review``, never ``block``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adversarial import run_and_judge

pytestmark = pytest.mark.attack

READ = "import pandas as pd, numpy as np\nd = pd.read_parquet('/data/residents.parquet')\n"

LEGIT: list[tuple[str, str, str]] = [
    ("sql_count_by_sex", "sql", "select 性别, count(*) as n from residents group by 1 order by 1"),
    ("sql_count_by_age_band", "sql", "select 出生日期 as age_band, count(*) as n from residents group by 1 order by 1"),
    ("sql_count_by_region_band", "sql", "select 户籍地, 出生日期, count(*) as n from residents group by 1, 2"),
    ("sql_share_female", "sql", "select avg(case when 性别 = '女' then 1.0 else 0 end) as rate from residents"),
    ("sql_total", "sql", "select count(*) as n from residents"),
    (
        "sql_ethnic_rate",
        "sql",
        "select 民族, count(*) * 1.0 / (select count(*) from residents) as share from residents group by 1",
    ),
    ("py_crosstab", "python", READ + "pd.crosstab(d['性别'], d['出生日期']).to_csv('/out/t.csv')"),
    (
        "py_mean_birth_decade",
        "python",
        READ
        + "y = d['出生日期'].str[:4].astype(float)\npd.DataFrame({'mean_decade': [y.mean()]}).to_csv('/out/m.csv', index=False)",  # noqa: E501
    ),
    (
        "py_regression",
        "python",
        READ
        + "y = (d['性别'] == '女').astype(float).to_numpy()\nx = d['出生日期'].str[:4].astype(float).to_numpy()\nX = np.c_[np.ones_like(x), x]\nb = np.linalg.lstsq(X, y, rcond=None)[0]\npd.DataFrame({'term': ['const', 'decade'], 'coef': b, 'df_resid': len(y) - 2}).to_csv('/out/reg.csv', index=False)",  # noqa: E501
    ),
    (
        "py_chart_png",
        "python",
        READ
        + "import zlib, struct\ndef chunk(t, b):\n    return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b))\nraw = b''.join(b'\\x00' + bytes([200] * 8) for _ in range(8))\npng = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 8, 8, 8, 0, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')\nopen('/out/chart.png', 'wb').write(png)",  # noqa: E501
    ),
    (
        "py_summary_json",
        "python",
        READ
        + "import json\njson.dump({'rows': int(len(d)), 'female_share': float((d['性别'] == '女').mean())}, open('/out/s.json', 'w'))",  # noqa: E501
    ),
    ("py_print_totals", "python", READ + "print('rows', len(d))\nprint(d['性别'].value_counts().to_dict())"),
    ("sql_count_by_ethnicity", "sql", "select 民族, count(*) as n from residents group by 1 having count(*) >= 10"),
    ("sql_band_by_sex", "sql", "select 性别, 出生日期, count(*) as 人数 from residents group by 1, 2 order by 1, 2"),
    ("sql_distinct_bands", "sql", "select count(distinct 出生日期) as bands from residents"),
    ("sql_notes_share", "sql", "select avg(case when 备注 is null then 0.0 else 1.0 end) as with_note from residents"),
    ("py_rates_json", "python", READ + "d.groupby('性别').size().div(len(d)).rename('rate').to_json('/out/r.json')"),
    (
        "py_parquet_aggregate",
        "python",
        READ + "d.groupby('出生日期').size().rename('n').reset_index().to_parquet('/out/a.parquet')",
    ),
    (
        "py_svg_chart",
        "python",
        READ + "open('/out/c.svg', 'w').write('<svg><rect width=\"%d\" height=\"10\"/></svg>' % len(d))",
    ),
    ("py_markdown_report", "python", READ + "open('/out/r.md', 'w').write('# 汇总\\n\\n共 %d 条记录。\\n' % len(d))"),
    (
        # Noisy means at full precision in stdout, JSON and CSV: a decimal's digits read as a phone
        # number or an old 15-digit id one time in 25 before the recognizers learnt decimals.
        "py_noisy_means_full_precision",
        "python",
        READ
        + "y = d['出生日期'].str[:4].astype(float)\nrng = np.random.default_rng(0)\n"
        + "m = [float(y.mean() * 10 + rng.laplace(0, 50)) for _ in range(120)]\nprint('bootstrap', m)\n"
        + "import json\njson.dump({'means': m}, open('/out/m.json', 'w'))\n"
        + "pd.DataFrame({'mean': m}).to_csv('/out/m.csv', index=False)",
    ),
]


@pytest.mark.parametrize(("name", "kind", "code"), LEGIT, ids=[x[0] for x in LEGIT])
def test_legitimate_analysis_is_not_blocked(name: str, kind: str, code: str, tmp_path: Path) -> None:
    judged = run_and_judge(kind, code, tmp_path)
    assert judged.verdict in ("pass", "review"), [f.as_json() for f in judged.findings]
