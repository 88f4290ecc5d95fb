"""The operator's main path in a real browser (issue 9): log in, see budgets and the jobs chart, submit an
SQL job and see the server's own worker judge it with no other command (issue 17), read its findings,
redacted log and outputs (by name and hash, never a path), and request its release as a product."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.slow

QUERY = "SELECT 性别, count(*) AS 人数 FROM residents GROUP BY 1"


def test_operator_submits_a_job_and_requests_its_release(page: Any, console_server: dict[str, Any]) -> None:
    home = console_server["home"]
    login(page, console_server, "operator")

    # Overview: a gauge per licensed dataset's budget, the jobs-by-verdict chart, the licence.
    gauges = page.locator("#budgets svg.chart")
    assert gauges.count() >= 2
    labels = [gauges.nth(i).get_attribute("aria-label") or "" for i in range(gauges.count())]
    assert any("social_insurance" in label for label in labels) and any("residents" in label for label in labels)
    chart = page.locator("#jobs-chart svg.chart")
    assert "Jobs per day by verdict" in (chart.get_attribute("aria-label") or "")
    assert chart.locator("rect[fill='#b3261e']").count() >= 1  # the demo's blocked exfiltration attempt
    assert int(page.locator("#count-block").inner_text()) >= 1
    assert "人口结构分析" in page.locator("#licences").inner_text()

    # Jobs: submit an SQL aggregate through the form; it is listed as queued.
    page.click("nav >> text=作业 Jobs")
    page.wait_for_url("**/console/operator/jobs")
    page.click("#new-job")  # the form with its templates (issue 18)
    page.wait_for_url("**/console/operator/jobs/new")
    page.select_option("#kind", "sql")
    page.check("input[name=datasets][value=residents]")
    page.select_option("#scenario", "人口结构分析")
    page.fill("#code", QUERY)
    page.click("#submit-form button[value=submit]")
    flash = page.locator(".flash").inner_text()
    found = re.search(r"job (\d+) queued", flash)
    assert found, flash
    job = found.group(1)
    page.click("nav >> text=作业 Jobs")  # the submission leads to the job's page; the list shows it too
    page.wait_for_url("**/console/operator/jobs")
    row = page.locator(f"#jobs tr[data-job='{job}']")
    assert "residents" in row.inner_text()

    # The server's own worker (``keyong serve`` runs one, issue 17) judges it: no other command is run.
    deadline = time.monotonic() + 180
    while "done" not in row.inner_text():
        assert time.monotonic() < deadline, row.inner_text()
        time.sleep(1)
        page.reload()
        row = page.locator(f"#jobs tr[data-job='{job}']")
    verdict = page.locator(f"#jobs tr[data-job='{job}'] [data-verdict]").get_attribute("data-verdict")
    assert verdict in ("pass", "review"), row.inner_text()

    # The job's page: findings table, the redacted log, outputs by name and hash only.
    page.click(f"#jobs a[href$='/operator/jobs/{job}']")
    page.wait_for_url(f"**/console/operator/jobs/{job}")
    assert page.locator("#job-state").get_attribute("data-state") == "done"
    assert page.locator("#findings").is_visible()
    assert page.locator("#log").is_visible()
    outputs = page.locator("#outputs").inner_text()
    assert "result.csv" in outputs and re.search(r"[0-9a-f]{64}", outputs)
    html = page.content()
    assert str(home) not in html and "work/demo-operator" not in html

    # Request its release as a product; the request is listed with its state.
    product = f"性别人数统计-{job}-{int(time.time())}"
    page.fill("#product", product)
    for box in page.locator("#release-form textarea").all():
        box.fill("聚合计数，每组人数远大于最小单元 · aggregate counts, every cell far above the minimum")
    page.click("#release-form button[type=submit]")
    assert "requested" in page.locator(".flash").inner_text()
    listed = page.locator("#releases tbody tr").filter(has_text=product)
    assert "submitted" in listed.inner_text()

    page.click("nav >> text=产品 Products")
    assert product in page.locator("#releases").inner_text()
