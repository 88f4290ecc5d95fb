"""The custodian's whole job in a real browser against ``keyong serve`` (issue 18), with no CLI step.

The custodian uploads a small CSV made here, reads the profile the ingest made, corrects one column's
level (双鸭山 第十一条 分类分级), runs desensitization, reads the report as tables (k, l, risk, suppressed rows,
quasi-identifiers with their basis and ladder, utility), publishes the entry's catalog fields
(第十二条), and reads the usage records of a demo dataset (黑龙江 第二十八条). Each main page is saved at
1280 px to ``docs/screenshots/custodian-*.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ROWS = ["区县,年龄段,出行方式,出行次数"] + [
    f"{'东西南北'[i % 4]}城区,{20 + (i % 5) * 10}岁组,{'公交地铁步行'[(i % 3) * 2 : (i % 3) * 2 + 2]},{3 + i % 7}"
    for i in range(60)
]


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"custodian-{name}.png"), full_page=True)


def test_custodian_uploads_grades_desensitizes_publishes_and_reads_usage(
    page: Any, console_server: dict[str, Any], tmp_path: Path
) -> None:
    login(page, console_server, "custodian")
    assert page.locator("#catalog tr[data-dataset='residents']").count() == 1
    _shot(page, "catalog")

    # Upload a small CSV with its catalog fields.
    source = tmp_path / "trips.csv"
    source.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    page.click("#upload-link")
    page.wait_for_url("**/console/custodian/upload")
    page.fill("#upload-name", "trips_survey")
    page.fill("#upload-title", "居民出行调查")
    page.fill("#upload-provider", "市交通运输局")
    page.fill("#upload-provider-code", "91230500MA0000002G")
    page.fill("#upload-industry", "交通出行")
    page.set_input_files("#upload-file", str(source))
    _shot(page, "upload")
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/console/custodian/datasets/trips_survey/profile**")
    assert "raw v1" in page.locator(".flash").inner_text()

    # The profile: every column with the profiler's reading; correct one column's level.
    table = page.locator("#profile-table")
    for column in ("区县", "年龄段", "出行方式", "出行次数"):
        assert table.locator(f"tr[data-column='{column}']").count() == 1
    row = table.locator("tr[data-column='出行方式']")
    before = row.locator("[data-level]").get_attribute("data-level")
    corrected = "L3" if before != "L3" else "L2"
    row.locator("select[data-field='level']").select_option(corrected)
    page.click("#classify-submit")
    page.wait_for_url("**/profile**")
    assert "出行方式" in page.locator(".flash").inner_text()
    assert (
        page.locator("#profile-table tr[data-column='出行方式'] [data-level]").get_attribute("data-level") == corrected
    )
    _shot(page, "profile")

    # Desensitize from the page and read the report as tables.
    # The count of trips is what is studied, not something that identifies: ruled no quasi-identifier
    # (ledgered with its reason), and its l-diversity reported.
    page.select_option("#sensitive", "出行次数")
    page.select_option("#not-quasi", "出行次数")
    page.fill("#not-quasi-reason", "出行次数是调查的目标变量，不用于识别个人")
    page.click("#desensitize-submit")
    page.wait_for_url("**/console/custodian/datasets/trips_survey/report**", timeout=120_000)
    assert "v2" in page.locator(".flash").inner_text()
    assert page.locator("#k-value").inner_text().startswith("k = ")
    assert page.locator("#l-value").inner_text().startswith("l = ")
    assert "出行次数" in page.locator("#rulings").inner_text()
    assert page.locator("#suppressed-rows").inner_text().strip()[0].isdigit()
    qis = page.locator("#qi-table tbody tr")
    assert qis.count() >= 1 and "→" in qis.first.locator(".ladder").inner_text()
    assert page.locator("#risk-table tbody tr").count() >= 3
    assert page.locator("#utility-columns tbody tr").count() >= 1
    body = page.locator("main").inner_text()
    assert "{'" not in body and '{"' not in body  # no Python repr, no JSON dump
    _shot(page, "report")

    # Publish the entry's catalog fields.
    page.click(".custodian-steps a:text('目录信息 Catalog fields')")
    page.wait_for_url("**/trips_survey/catalog")
    page.fill("#f-summary", "全市居民出行抽样调查，按区县与年龄段汇总")
    page.fill("#f-coverage_region", "双鸭山市")
    page.fill("#catalog-reason", "补充摘要与覆盖地域后发布")
    page.click("#catalog-submit")
    assert "published" in page.locator(".flash").inner_text()
    assert page.locator("#f-summary").input_value().startswith("全市居民出行")

    # Usage records of a demo dataset the custodian provided.
    page.click("nav a:text('使用记录 Usage')")
    page.wait_for_url("**/console/custodian/usage")
    rows = page.locator("#usage-index tbody tr[data-dataset]")
    assert rows.count() >= 2
    counts = {
        rows.nth(i).get_attribute("data-dataset"): int(rows.nth(i).locator(".records").inner_text())
        for i in range(rows.count())
    }
    used = max(counts, key=lambda name: counts[name] or 0)
    assert counts[used] > 0, counts
    page.click(f"#usage-index a:text-is('{used}')")
    page.wait_for_url(f"**/console/custodian/datasets/{used}/usage")
    assert page.locator("#usage-records tbody tr[data-event]").count() == counts[used]
    assert page.locator("#usage-licences tbody tr[data-licence]").count() >= 1
    _shot(page, "usage")
