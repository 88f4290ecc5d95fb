"""The operator's whole job in a real browser (issue 18), with no CLI step: log in, browse the catalog of its
granted datasets (columns, public bounds and domains, a synthetic sample), submit a job from a template with a
title and a purpose (用途), watch it run to done on the page that refreshes itself (``keyong serve`` runs one
worker), read the verdict and the outputs (a passed job's in full), clone it, withdraw a queued job, and
request a release.

The screenshots of the operator's main pages are saved at 1280 px to ``docs/screenshots/operator-*.png``.
Licensed use only (双鸭山 第三十五条): the form offers the licence's datasets and scenarios, the server
checks them again.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TITLE = "参保状态人数"
PURPOSE = "评估各参保状态的人数分布，用于社会保障分析报告 · enrolment by status for a social-insurance report"
SLEEPER = "import time\ntime.sleep(40)\nprint('done')\n"


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(SHOTS / f"operator-{name}.png"), full_page=True)


def _state(page: Any) -> str:
    """The job page's state, or '' while the page is reloading itself."""
    try:
        return page.locator("#job-state").get_attribute("data-state", timeout=2_000) or ""
    except Exception:  # the page navigated (its own refresh) between the look and the read
        return ""


def _wait_state(page: Any, states: tuple[str, ...], seconds: float = 240) -> str:
    """Wait, without reloading: the job page refreshes itself while the job is queued or running."""
    deadline = time.monotonic() + seconds
    while (state := _state(page)) not in states:
        assert time.monotonic() < deadline, f"the job stayed {state!r}"
        time.sleep(1)
    return state


def _job_id(page: Any) -> str:
    found = re.search(r"/operator/jobs/(\d+)", page.url)
    assert found, page.url
    return found.group(1)


def _worker_is_live(page: Any, seconds: float = 90) -> None:
    """``keyong serve`` starts one supervised worker (``--workers 1`` by default); wait for its first beat,
    when the console stops warning that no worker runs."""
    deadline = time.monotonic() + seconds
    while page.locator("#no-live-worker").count():
        assert time.monotonic() < deadline, "keyong serve started no live worker"
        time.sleep(1)
        page.reload()


def test_operator_journey(page: Any, console_server: dict[str, Any]) -> None:
    login(page, console_server, "operator")
    _worker_is_live(page)

    # The catalog: the granted datasets come first and open to their columns and a synthetic sample.
    page.click("nav >> text=目录 Catalog")
    page.wait_for_url("**/console/operator/catalog")
    page.click("section[data-dataset='social_insurance'] a.dataset-link")
    page.wait_for_url("**/console/operator/catalog/social_insurance")
    columns = page.locator("#columns").inner_text()
    assert "月缴费基数" in columns and "[3000, 40000]" in columns and "正常参保" in columns
    assert page.locator("#synthetic-sample tbody tr").count() == 10
    assert "合成" in page.locator("#synthetic-notice").inner_text()
    assert "社会保障分析" in page.locator("#dataset-scenarios").inner_text()
    _shot(page, "catalog")
    # An ungranted dataset has no page of its own.
    assert page.goto(console_server["url"] + "/console/operator/catalog/market_entities").status == 404

    # The job form from the dataset's dp-query template; choosing another kind fills that kind's template.
    page.goto(console_server["url"] + "/console/operator/catalog/social_insurance")
    page.click("a[data-kind='dp-query']")
    page.wait_for_url("**/console/operator/jobs/new**")
    assert '"月缴费基数"' in page.locator("#code").input_value()
    assert "group_by" in page.locator("#dp-query-doc").inner_text()
    page.select_option("#kind", "sql")
    sql = page.locator("#code").input_value()
    assert 'FROM "social_insurance"' in sql and '"参保状态"' in sql, sql
    options = page.locator("#scenario option").all_inner_texts()
    assert sorted(options) == ["人口结构分析", "社会保障分析"]
    page.select_option("#scenario", "社会保障分析")
    page.fill("#title", TITLE)
    page.fill("#purpose", PURPOSE)
    _shot(page, "job-form")
    page.click("#submit-form button[value=submit]")
    page.wait_for_url(re.compile(r".*/console/operator/jobs/\d+\?.*"))
    assert "queued" in page.locator(".flash").inner_text()
    job = _job_id(page)
    assert page.locator("#job-title").inner_text() == TITLE
    assert PURPOSE in page.locator("#job-purpose").inner_text()
    assert 'FROM "social_insurance"' in page.locator("#job-code").inner_text()

    # It runs on the server's own worker; the page refreshes itself until the job is done.
    assert _wait_state(page, ("done", "failed")) == "done"
    verdict = page.locator("#job-verdict").get_attribute("data-verdict")
    assert verdict in ("pass", "review"), verdict
    assert "result.csv" in page.locator("#outputs").inner_text()
    assert page.locator("#outputs-note").is_visible()
    _shot(page, "job")

    # Request its release as a product (the existing form).
    product = f"参保状态人数-{job}-{int(time.time())}"
    page.fill("#product", product)
    for box in page.locator("#release-form textarea").all():
        box.fill("聚合计数，每组人数不少于 10 · aggregate counts, every cell at least 10")
    page.click("#release-form button[type=submit]")
    assert "requested" in page.locator(".flash").inner_text()
    assert "已提交 submitted" in page.locator("#releases tbody tr").filter(has_text=product).inner_text()

    # A job the guard passed (the demo's SQL aggregate): its outputs are viewed in the page, each read ledgered.
    page.click("nav >> text=作业 Jobs")
    passed = page.locator("#jobs tbody tr").filter(has=page.locator("[data-verdict='pass']")).filter(has_text="sql")
    passed_id = passed.first.get_attribute("data-job")
    page.goto(console_server["url"] + f"/console/operator/jobs/{passed_id}")
    page.click("#outputs a.view-output[href*='result.csv']")
    page.wait_for_url(f"**/console/operator/jobs/{passed_id}/outputs/result.csv/view")
    assert page.locator("#output-note").is_visible() and page.locator("#output-table tbody tr").count() >= 1
    assert page.locator("#download").is_visible()
    _shot(page, "output")
    page.goto(console_server["url"] + f"/console/operator/jobs/{job}")

    # Clone: the form opens with this job's kind, datasets, code and title.
    page.click("#clone")
    page.wait_for_url(f"**/console/operator/jobs/new?clone={job}")
    assert page.locator("#clone-note").is_visible()
    assert TITLE in page.locator("#title").input_value()
    assert page.locator("#kind").input_value() == "sql"
    assert page.locator("input[name=datasets][value=social_insurance]").is_checked()
    assert 'FROM "social_insurance"' in page.locator("#code").input_value()

    # Resubmit a slow job from the clone, then a second one: the worker runs the first, the second waits queued.
    page.select_option("#kind", "python")
    page.fill("#code", SLEEPER)
    page.fill("#title", "慢作业 slow job")
    page.click("#submit-form button[value=submit]")
    page.wait_for_url(re.compile(r".*/console/operator/jobs/\d+\?.*"))
    slow = _job_id(page)
    page.click("#clone")
    page.wait_for_url(f"**/console/operator/jobs/new?clone={slow}")
    page.click("#submit-form button[value=submit]")
    page.wait_for_url(re.compile(r".*/console/operator/jobs/\d+\?.*"))
    queued = _job_id(page)
    assert queued != slow and _state(page) == "queued", _state(page)

    # The jobs list while they wait: titles, states, and no verdict for what has none.
    page.click("nav >> text=作业 Jobs")
    page.wait_for_url("**/console/operator/jobs")
    assert TITLE in page.locator(f"#jobs tr[data-job='{job}']").inner_text()
    assert page.locator("#live-note").is_visible()
    _shot(page, "jobs")

    # Withdraw the queued job: cancelled at once, and it shows no verdict at all.
    page.goto(console_server["url"] + f"/console/operator/jobs/{queued}")
    page.click("#withdraw-form button[type=submit]")
    assert "withdrawn" in page.locator(".flash").inner_text()
    assert _state(page) == "cancelled"
    assert page.locator("#job-verdict").count() == 0 and page.locator("#no-verdict").is_visible()
    # Withdraw the slow one too (running: its worker stops it), so the server's worker is free again.
    page.goto(console_server["url"] + f"/console/operator/jobs/{slow}")
    if page.locator("#withdraw-form").count():
        page.click("#withdraw-form button[type=submit]")
    assert _wait_state(page, ("cancelled", "failed", "done")) in ("cancelled", "failed", "done")
    page.click("nav >> text=作业 Jobs")
    row = page.locator(f"#jobs tr[data-job='{queued}']")
    assert row.get_attribute("data-state") == "cancelled" and row.locator("[data-verdict]").count() == 0
