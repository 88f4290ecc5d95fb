"""Issue 16 in a real browser: the operator's catalog page says what copy each demo dataset would serve
(its columns and how they are held, risk after, utility summary — or that they were not measured), and
the custodian's dataset page carries the re-identification risk and utility sections. The figures
themselves are checked against hand-made reports in ``tests/test_copy_facts_display.py``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.slow

NOT_MEASURED = "not measured (copy made before issue 16)"


def test_operator_reads_what_copy_it_will_get_and_the_custodian_the_measures(
    page: Any, console_server: dict[str, Any]
) -> None:
    login(page, console_server, "operator")
    page.click("nav >> text=目录 Catalog")
    page.wait_for_url("**/console/operator/catalog")
    for name in ("residents", "social_insurance", "market_entities"):
        section = page.locator(f"section[data-dataset='{name}']")
        assert section.count() == 1, name
        text = section.inner_text()
        assert "副本 Copy v" in text, name
        assert section.locator("table.copy-columns tr[data-column]").count() >= 2, name
        measured = section.locator("table.risk-after").count() == 1
        assert measured or NOT_MEASURED in text, name
    assert "pseudonymize" in page.locator("section[data-dataset='residents'] table.copy-columns").inner_text()

    custodian = page.context.browser.new_context(locale="zh-CN")
    other = custodian.new_page()
    try:
        login(other, console_server, "custodian")
        other.goto(console_server["url"] + "/console/custodian/datasets/residents")
        for section in ("#risk", "#utility"):
            assert other.locator(section).count() == 1, section
            body = other.locator(section).inner_text()
            assert NOT_MEASURED in body or other.locator(f"{section} table").count() >= 1, section
        assert other.locator("#actions th:text('表示 Representation')").count() == 1
    finally:
        custodian.close()
