"""The regulator's main path in a real browser: the ledger verified live, a search by action, an
entry's inclusion proof verified on the server, and the JSON-lines export downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.slow


def test_regulator_verifies_searches_proves_and_exports(
    page: Any, console_server: dict[str, Any], tmp_path: Path
) -> None:
    login(page, console_server, "regulator")
    assert "verified" in page.locator("#verify-status").inner_text()
    assert page.locator("#timeline tbody tr[data-seq]").count() > 0
    assert page.locator("svg.chart").count() >= 1

    page.fill("#ledger-filters input[name=action]", "job.finished")
    page.click("#ledger-filters button[type=submit]")
    page.wait_for_url("**/console/regulator?*action=job.finished*")
    actions = page.locator("#timeline tbody td.action").all_inner_texts()
    assert actions and set(actions) == {"作业完成 job.finished"}  # Chinese label, the code beside it (issue 18)

    page.locator("#timeline tbody tr[data-seq] a").first.click()
    page.wait_for_url("**/console/regulator/entries/*")
    assert "job.finished" in page.locator("#entry").inner_text()
    assert page.locator("#proof-status").inner_text() == "已验证 verified ✓"
    assert page.locator("#audit-path li").count() >= 1

    page.goto(console_server["url"] + "/console/regulator")
    shown = int(page.locator("#entry-count").inner_text())
    with page.expect_download() as download_info:
        page.click("#export")
    target = tmp_path / "ledger.jsonl"
    download_info.value.save_as(target)
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = [line for line in lines if "seq" in line and "action" in line]
    assert len(entries) >= shown > 0
