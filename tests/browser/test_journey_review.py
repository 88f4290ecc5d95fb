"""The release review's whole journey in a real browser (issue 18), with no CLI step: the operator requests
the release of its chart job; two independent agency reviewers each open it, see the chart image and the full
table (its second page), comment on a file; the round is returned with comments; the operator reads them,
replies and resubmits; both reviewers approve (and the dataset's custodian signs off, its releases not being
delegated); the product exists (双鸭山 第五十二条: review before release).

Setup uses the demo home the fixture gives: the demo has one agency reviewer, and a reviewer never mints a
reviewer (``operators.AGENCY_MANAGES``: the agency's people page adds operators and custodians only), so the
second reviewer is created by the host, as ``keyong init`` creates the demo's, and confirmed by an agency person.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import login
from tests.totp_support import wall_code

pytestmark = pytest.mark.slow
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHART_JOB = 2  # the demo's Python analysis with an SVG chart and its CSV (app.demo.scenario.DEMO_JOBS)


def _second_reviewer(home: Path) -> tuple[str, str, str]:
    from app.instance import Instance
    from app.settings import Settings
    from operators import Role
    from tests.recovery_support import confirm

    name = f"reviewer-{uuid.uuid4().hex[:6]}"
    instance = Instance.open(Settings(home=home, database_url=None))
    try:
        new = instance.identity.create_principal(name, Role.AGENCY, enrol_totp=True)
        confirm(instance.identity, name)
    finally:
        instance.close()
    return name, str(new.api_key), str(new.totp_secret)


def _login_as(page: Any, server: dict[str, Any], key: str, secret: str) -> None:
    page.goto(server["url"] + "/console/login")
    page.fill("#api_key", key)
    page.fill("#totp", wall_code(secret))
    page.click("button[type=submit]")
    page.wait_for_url("**/console/agency**")


def _review(page: Any, server: dict[str, Any], release: int, *, comment_on: str, text: str) -> None:
    """Open the release from the queue, see the chart and the table's second page, comment on a file."""
    page.goto(server["url"] + "/console/agency")
    page.locator(f"tr[data-release='{release}'] a", has_text="Review").click()
    page.wait_for_url(f"**/console/agency/releases/{release}")
    image = page.locator("img.output-image").first
    image.wait_for()
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", image.element_handle())  # drawn, not broken
    table = page.locator("section.output", has=page.locator("table.full")).first
    index = table.get_attribute("id").removeprefix("out-")
    page.goto(server["url"] + f"/console/agency/releases/{release}?t={index}&per=2#out-{index}")
    page.locator(f"p[data-pager='{index}'] a[rel=next]").click()
    page.wait_for_url("**page=2**")
    pager = page.locator(f"p[data-pager='{index}']").inner_text()
    assert "第 2 / 2 页" in pager, pager
    assert page.locator(f"#out-{index} table.full tbody tr").count() >= 1
    assert page.locator("table.sdc[data-sdc]").first.is_visible()  # the SDC summary, though the guard passed
    assert "import pandas" in page.locator("#job-code").inner_text()  # the job's code, read-only
    section = page.locator(f"section.output[data-file='{comment_on}']")
    section.locator("textarea[name=body]").fill(text)
    section.locator("button[type=submit]").click()
    page.wait_for_url(f"**/console/agency/releases/{release}?msg=*")
    assert text in page.locator(f"section.output[data-file='{comment_on}'] .comment").last.inner_text()


def _vote(page: Any, decisions: dict[str, str], *, reason: str = "", comment: str = "") -> str:
    form = page.locator("#vote-form")
    for index, name in enumerate(page.locator("#vote-form tbody tr td:first-child").all_inner_texts()):
        form.locator(f"#d-{index}-{decisions.get(name, 'approve')}").check()
    page.fill("#reason", reason)
    page.fill("#vote-comment", comment)
    form.locator("button[type=submit]").click()
    page.wait_for_url("**msg=*")
    return page.locator(".flash[role=status]").inner_text()


def test_two_reviewers_return_the_operator_resubmits_both_approve(browser: Any, console_server: dict[str, Any]) -> None:
    server = console_server
    product = f"参保状态分布-{uuid.uuid4().hex[:6]}"
    contexts = [browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}) for _ in range(4)]
    operator, first, second = (c.new_page() for c in contexts[:3])
    for p in (operator, first, second):
        p.set_default_timeout(20_000)
    try:
        # The operator asks, in the browser, for its done chart job to be released.
        login(operator, server, "operator")
        operator.goto(server["url"] + f"/console/operator/jobs/{CHART_JOB}")
        operator.fill("#product", product)
        for area in operator.locator("#release-form textarea").all():
            area.fill("柱状图只画出三类参保状态的汇总人数，与同一产品的 CSV 表数字一致。")
        operator.click("#release-form button[type=submit]")
        operator.wait_for_url("**msg=*")
        release = int(operator.locator("#releases tbody tr").last.get_attribute("data-release"))
        csv_name = "enrolment_by_status.csv"

        # Reviewer 1: the queue, "assign to me", the release in full, a comment on the table.
        login(first, server, "agency")
        row = first.locator(f"tr[data-release='{release}']")
        assert "needs my vote" in row.inner_text() and "分钟" in row.locator("[data-age]").inner_text()
        row.locator("button", has_text="Assign to me").click()
        first.wait_for_url("**msg=*")
        assert "demo-agency" in first.locator(f"tr[data-release='{release}'] [data-assigned]").inner_text()
        first.screenshot(path=str(SHOTS / "agency-queue.png"), full_page=True)
        _review(first, server, release, comment_on=csv_name, text="请把人数取整到 5，再提交。")
        first.goto(server["url"] + f"/console/agency/releases/{release}")
        first.screenshot(path=str(SHOTS / "agency-review.png"), full_page=True)
        # No default vote: submitting with a file left undecided is refused by the server, nothing recorded.
        first.evaluate("document.querySelectorAll('#vote-form input[type=radio]').forEach(r => r.required = false)")
        first.locator("#vote-form button[type=submit]").click()
        first.wait_for_url("**msg=*")
        assert "choose a decision for every file" in first.locator(".flash[role=status]").inner_text()
        said = _vote(first, {csv_name: "changes_requested"}, reason="需取整", comment="表中人数请取整到 5。")
        assert "others sealed" in said

        # Reviewer 2, in its own browser: sees the chart and the table, comments, agrees to return it.
        name, key, secret = _second_reviewer(server["home"])
        _login_as(second, server, key, secret)
        _review(second, server, release, comment_on="enrolment_by_status.svg", text="图表与表格一致，表格请取整。")
        said = _vote(second, {csv_name: "changes_requested"}, reason="同意取整")
        assert "returned" in said

        # The operator reads the comments on its release page, replies and resubmits.
        operator.goto(server["url"] + f"/console/operator/jobs/{CHART_JOB}")
        operator.locator("#release-threads a", has_text=f"#{release}").click()
        operator.wait_for_url(f"**/console/operator/releases/{release}")
        thread = operator.locator("#thread").inner_text()
        assert "请把人数取整到 5" in thread and "表中人数请取整到 5" in thread and name in thread
        assert "需修改" in operator.locator(f"#outputs tr[data-file='{csv_name}']").inner_text()
        operator.fill("#reply-body", "已按要求取整，重新提交。")
        operator.click("#reply-form button[type=submit]")
        operator.wait_for_url("**msg=*")
        assert "已按要求取整" in operator.locator("#thread").inner_text()
        operator.screenshot(path=str(SHOTS / "operator-release-thread.png"), full_page=True)
        operator.click("#resubmit-form button[type=submit]")
        operator.wait_for_url("**msg=*")
        assert "round 2" in operator.locator(".flash[role=status]").inner_text()

        # Round 2: both reviewers approve every file; the product is registered.
        for reviewer in (first, second):
            reviewer.goto(server["url"] + f"/console/agency/releases/{release}")
            assert "已按要求取整" in reviewer.locator("#thread").inner_text()
            said = _vote(reviewer, {}, reason="已取整，可发布")
        # social_insurance's releases are not delegated to the agency: its custodian signs off too (SATRE 3.1.06).
        if "0 more needed" in said:
            assert second.locator("#awaiting-custodian").is_visible()
            custodian = contexts[3].new_page()
            login(custodian, server, "custodian")
            custodian.goto(server["url"] + f"/console/custodian/releases/{release}")
            custodian.select_option("#signoff-decision", "approve")
            custodian.fill("#signoff-reason", "数据主管部门同意对外提供。")
            custodian.click("#signoff-form button[type=submit]")
            custodian.wait_for_url("**msg=*")
            second.reload()
        else:
            assert "approved" in said
        assert second.locator("#release-state").get_attribute("data-state") == "approved"
        operator.goto(server["url"] + "/console/operator/products")
        assert product in operator.locator("body").inner_text()
    finally:
        for c in contexts:
            c.close()
