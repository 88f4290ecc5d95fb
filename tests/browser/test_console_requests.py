"""Requests with statutory deadlines in a real browser (issue 24): the custodian's queue ordered by due
time, a refusal without reasons held by the form and one with reasons recorded; the regulator's page of
overdue requests across departments."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, update

from app.database import sqlite_url
from registry.request_models import RequestRow
from tests.browser.conftest import KEYONG, login

pytestmark = pytest.mark.slow


def submit(server: dict[str, Any], kind: str) -> int:
    # reqfix24: the catalog obligation runs from the authority, so the agency raises it (red team 24, finding 9).
    who = ["demo-agency", "agency"] if kind == "catalog_update" else ["demo-operator", "operator"]
    done = subprocess.run(
        [*KEYONG, "request", "submit", kind, "--subject", "residents", "--requester", who[0],
         "--requester-role", who[1], "--home", str(server["home"]), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["id"])


def test_custodian_queue_and_regulator_overdue(page: Any, browser: Any, console_server: dict[str, Any]) -> None:
    ids = {kind: submit(console_server, kind) for kind in ("catalog_update", "correction", "data_application")}
    engine = create_engine(sqlite_url(console_server["home"]))
    with engine.begin() as connection:  # the correction's time limit ran out
        connection.execute(
            update(RequestRow)
            .where(RequestRow.id == ids["correction"])
            .values(due_at=datetime.now(UTC) - timedelta(days=1))
        )
    engine.dispose()

    login(page, console_server, "custodian")
    page.goto(console_server["url"] + "/console/custodian/requests")
    queue = [int(n) for n in page.locator("#request-queue tbody tr[data-request]").evaluate_all(
        "rows => rows.map(r => r.dataset.request)")]  # fmt: skip
    mine = [n for n in queue if n in ids.values()]
    assert mine == [ids["correction"], ids["data_application"], ids["catalog_update"]]  # overdue, 1 day, 10 days
    row = page.locator(f"#request-queue tr[data-request='{ids['correction']}']")
    assert row.locator("[data-flag=overdue]").count() == 1

    # The refusal's reasons are required: the browser holds the empty form; with reasons it is recorded.
    refuse = page.locator(f"#request-{ids['data_application']} form[data-act=refuse]")
    refuse.locator("button").click()
    assert refuse.locator("input[name=reason]").evaluate("e => !e.validity.valid")
    refuse.locator("input[name=reason]").fill("申请用途超出有条件共享范围")
    refuse.locator("button").click()
    page.wait_for_url("**/console/custodian/requests?*")
    assert "refused" in page.locator(".flash").inner_text()
    closed = page.locator(f"#request-closed tr[data-request='{ids['data_application']}']")
    assert "申请用途超出有条件共享范围" in closed.inner_text()

    regulator = browser.new_context(locale="zh-CN").new_page()
    try:
        login(regulator, console_server, "regulator")
        regulator.click("nav a:has-text('逾期 Overdue')")
        regulator.wait_for_url("**/console/regulator/requests")
        overdue = regulator.locator(f"#requests-overdue tr[data-request='{ids['correction']}']")
        assert "双鸭山市公安局" in overdue.inner_text()
        assert regulator.locator("#request-departments tr[data-provider='双鸭山市公安局']").count() == 1
    finally:
        regulator.context.close()
