"""The agency administrator's whole job in a real browser (issue 18), with no CLI step.

The agency registers an operating company (双鸭山 第四十八条), creates its first login (the key shown once),
records its person's standing (identity check, training, terms: SATRE 3.2.02, 1.6.04), grants it a licence
that goes into 公示 (第四十八条), is refused activation while 公示 runs, and activates it once 公示 has
ended. It also suspends and restores the operator with reasons (第三十一条). The served process reads the wall
clock, so the seven-day 公示 cannot be waited out: the test moves that licence's 公示 end into the past in the
database — the one step not done in the browser, standing for the days passing, not for any action.
Screenshots: docs/screenshots/agency-operators.png, agency-licences.png, agency-findings.png (1280 px).
"""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import login
from tests.test_registry_licences import uscc

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DATASET, SCENARIO = "social_insurance", "社会保障分析"  # the demo's custodian delegated its access agreement


def _flash(page: Any) -> str:
    return str(page.locator(".flash").first.inner_text())


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _end_publicity(home: Path, licence: int) -> None:
    """Seven days pass: the licence's 公示 end moves into the past (the server reads the wall clock)."""
    from sqlalchemy import text

    from app.instance import Instance
    from app.settings import Settings

    instance = Instance.open(Settings(home=home, database_url=None))
    try:
        with instance.engine.begin() as connection:
            connection.execute(
                text("UPDATE licences SET publicity_ends_at = datetime(publicity_ends_at, '-8 days') WHERE id = :id"),
                {"id": licence},
            )
    finally:
        instance.close()


def test_agency_adds_an_operator_and_its_login_and_grants_it_a_licence(
    page: Any, console_server: dict[str, Any]
) -> None:
    url = console_server["url"] + "/console"
    name = f"journey-{uuid.uuid4().hex[:6]}"
    login(page, console_server, "agency")

    # 1. The operator: registered with its USCC, suspended and restored with reasons.
    page.goto(url + "/agency/operators")
    form = page.locator("#add-operator")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=uscc]").fill("91230500MA0000001X")  # a wrong check character is refused
    form.locator("button").click()
    assert "refused" in _flash(page)
    form = page.locator("#add-operator")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=uscc]").fill(uscc(int(uuid.uuid4().int % 9_000_000) + 1))
    form.locator("button").click()
    assert f"operator {name} added" in _flash(page)
    row = page.locator(f"tr[data-operator='{name}']")
    row.locator("input[name=reason]").fill("超范围调用，限期整改（第三十一条）")
    row.locator("button").click()
    assert "suspended" in _flash(page)
    row = page.locator(f"tr[data-operator='{name}']")
    assert "已暂停" in row.inner_text()
    row.locator("input[name=reason]").fill("已整改")
    row.locator("button").click()
    assert "restored" in _flash(page)

    # 2. Its first login: the key is shown once, on the answer page.
    page.goto(url + "/agency/people")
    page.select_option("#first-login select[name=operator]", name)
    page.click("#first-login button")
    key = page.locator("#new-key code.api-key").inner_text()
    assert key.strip() and name in page.locator("#new-key").inner_text()

    # 3. Its person's standing: identity checked, trained, terms signed.
    page.goto(url + "/agency/standing")
    row = page.locator(f"tr[data-person='{name}']")
    row.locator("input[name=ref]").fill("HR-2026-0042")
    row.locator("button", has_text="Identity checked").click()
    assert "recorded" in _flash(page)
    row = page.locator(f"tr[data-person='{name}']")
    row.locator("input[name=course]").fill("数据安全培训")
    row.locator("input[name=expires_on]").fill((date.today() + timedelta(days=365)).isoformat())
    row.locator("button", has_text="Training").click()
    assert "recorded" in _flash(page)
    page.locator(f"tr[data-person='{name}']").locator("button", has_text="Signed terms").click()
    assert "recorded" in _flash(page)
    assert "合格 stands" in page.locator(f"tr[data-person='{name}']").inner_text()

    # 4. The licence: granted into 公示, refused activation during it, active once it has ended.
    page.goto(url + f"/agency/licences?operator={name}")
    grant = page.locator("#grant-form")
    assert grant.locator("select[name=operator]").input_value() == name
    grant.locator(f"input[name=datasets][value='{DATASET}']").check()
    grant.locator("input[name=scenarios]").fill(SCENARIO)
    grant.locator("input[name=publicity_days]").fill("7")
    grant.locator("input[name=reason]").fill("授权运营协议 2026-12")
    grant.locator("button[type=submit]").click()
    assert "granted (publicity)" in _flash(page), _flash(page)
    licence = int(re.search(r"/agency/licences/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    assert "公示中 publicity" in page.locator("#licence-state").inner_text()
    step = page.locator("form[data-step='active']")
    step.locator("input[name=reason]").fill("公示期满无异议")
    step.locator("button").click()
    assert "in publicity" in _flash(page)  # 第四十八条: not before 公示 has ended

    _end_publicity(console_server["home"], licence)
    step = page.locator("form[data-step='active']")
    step.locator("input[name=reason]").fill("公示期满无异议（第四十八条）")
    step.locator("button").click()
    assert "is now active" in _flash(page), _flash(page)
    assert "生效 active" in page.locator("#licence-state").inner_text()
    events = page.locator("#events").inner_text()
    assert "公示中 publicity" in events and "生效 active" in events

    page.goto(url + "/agency/licences")
    assert "生效 active" in page.locator(f"tr[data-licence='{licence}']").inner_text()
    _shot(page, "agency-licences")

    page.goto(url + "/agency/operators")
    row = page.locator(f"tr[data-operator='{name}']").inner_text()
    assert "有 yes" in row and "生效 active" in row
    _shot(page, "agency-operators")

    # 5. Findings, each linked to its licence, operator and jobs.
    page.goto(url + "/agency/findings")
    assert page.locator("#findings").is_visible()
    link = page.locator("#findings a.job-link").first  # the demo's out-of-scope submission, kept as a refused job
    link.click()
    page.wait_for_url("**/agency/jobs/**")
    assert "已拒绝 refused" in page.locator("h1").inner_text()
    page.go_back()
    _shot(page, "agency-findings")
