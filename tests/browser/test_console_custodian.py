"""The custodian's main path in a real browser (issue 9): the catalog with levels, a dataset's column
grading and desensitization report, and declaring a column's public bounds (a refusal shown as well)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.slow


def test_custodian_reads_the_catalog_and_declares_public_bounds(page: Any, console_server: dict[str, Any]) -> None:
    login(page, console_server, "custodian")
    catalog = page.locator("#catalog")
    for name in ("residents", "social_insurance", "market_entities"):
        row = catalog.locator(f"tr[data-dataset='{name}']")
        assert row.count() == 1
        assert row.locator("[data-level]").get_attribute("data-level") in ("L1", "L2", "L3", "L4")
    assert catalog.locator("tr[data-dataset='residents'] [data-level]").get_attribute("data-level") == "L4"

    page.click("#catalog a:text-is('social_insurance')")
    page.wait_for_url("**/console/custodian/datasets/social_insurance")
    columns = page.locator("#columns")
    assert columns.locator("tr[data-column='身份证号'] [data-level]").inner_text() == "L4"
    assert "cn_resident_id" in columns.locator("tr[data-column='身份证号']").inner_text()
    # The report, read as a report: per-column actions and the k-anonymity it reached.
    actions = page.locator("#actions")
    assert "pseudonymize" in actions.locator("tr[data-column='身份证号']").inner_text()
    assert "mask_name" in actions.locator("tr[data-column='姓名']").inner_text()
    assert page.locator("#k-achieved").inner_text().startswith("k = ")
    assert "抑制 suppressed" in page.locator("#suppressed").inner_text()

    # Declare public bounds on a non-personal column; they are shown. Keep what was there to restore it.
    bounds_cell = columns.locator("tr[data-column='参保日期'] td.bounds")
    before = bounds_cell.inner_text().strip("[]— ").replace(" ", "")
    page.select_option("#column", "参保日期")
    page.fill("#bounds", "1990, 2030")
    page.click("#bounds-form button[type=submit]")
    assert "declared" in page.locator(".flash").inner_text()
    assert page.locator("#columns tr[data-column='参保日期'] td.bounds").inner_text() == "[1990, 2030]"

    # A domain over a personal column is refused, with the catalog's reason; nothing changes.
    page.select_option("#column", "姓名")
    page.fill("#domain", "张三, 李四")
    page.click("#bounds-form button[type=submit]")
    assert "personal information" in page.locator(".flash").inner_text()
    assert page.locator("#columns tr[data-column='姓名'] td.domain").inner_text() == "—"

    # Put the demo's bounds back so other tests over this shared server see the demo as it was.
    page.select_option("#column", "参保日期")
    page.fill("#bounds", before)
    page.click("#bounds-form button[type=submit]")
    assert "declared" in page.locator(".flash").inner_text() or "cleared" in page.locator(".flash").inner_text()
