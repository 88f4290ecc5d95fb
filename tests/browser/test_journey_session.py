"""The console everywhere, in a real browser (issue 18): a deep link survives the login, a forged ``next``
does not take anyone elsewhere, and an unknown page is a 404 page with the role's navigation.

No CLI step: the demo home of the ``console_server`` fixture, the login form and the pages. The pages every
role meets (the login form, the 404 page and the glossary) are saved at 1280 px to ``docs/screenshots/console-*.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.totp_support import wall_code

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


def _log_in_here(page: Any, server: dict[str, Any], role: str) -> None:
    """Fill the login form the page shows (keeping whatever ``next`` it carries) and submit it."""
    page.fill("#api_key", server["tokens"][role])
    page.fill("#totp", wall_code(server["totp"][role]))
    page.click("button[type=submit]")


def test_a_deep_link_lands_on_its_page_after_login(page: Any, console_server: dict[str, Any]) -> None:
    url = console_server["url"]
    page.goto(url + "/console/operator/products")
    page.wait_for_url("**/console/login**")
    assert urlsplit(page.url).query.endswith("next=/console/operator/products")
    assert page.locator("input[name=next]").get_attribute("value") == "/console/operator/products"
    _shot(page, "login")
    _log_in_here(page, console_server, "operator")
    page.wait_for_url("**/console/operator/products")
    assert urlsplit(page.url).path == "/console/operator/products"
    assert page.locator("nav a[aria-current=page]").inner_text() == "产品 Products"

    # an unknown page of the console: the 404 page, with the role's navigation and a way home
    response = page.goto(url + "/console/operator/no-such-page")
    assert response is not None and response.status == 404
    assert "页面不存在" in page.locator("h1").inner_text()
    assert page.locator("nav").get_by_text("作业 Jobs").is_visible()
    assert page.locator("#who").inner_text() == "demo-operator"
    _shot(page, "not-found")
    page.click("#not-found a")
    page.wait_for_url("**/console/operator")

    # the glossary every page's footer links to: the same words the labels use
    page.click("#glossary-link")
    page.wait_for_url("**/console/glossary")
    assert page.locator('#glossary-actions tr[data-action="licence.granted"]').inner_text().endswith("授予授权")
    _shot(page, "glossary")

    # the API's unknown paths keep their JSON 404
    api = page.goto(url + "/no/such/api/path")
    assert api is not None and api.status == 404
    assert api.headers["content-type"].startswith("application/json")


def test_a_forged_next_lands_on_the_roles_home(page: Any, console_server: dict[str, Any]) -> None:
    url = console_server["url"]
    for forged in ("//evil.example/", "https://evil.example/console", "/console/../public"):
        page.goto(url + "/console/login?next=" + forged)
        assert page.locator("input[name=next]").count() == 0
    _log_in_here(page, console_server, "agency")
    page.wait_for_url("**/console/agency**")
    assert urlsplit(page.url).netloc == urlsplit(url).netloc


def test_an_unknown_page_without_a_session_offers_the_login(page: Any, console_server: dict[str, Any]) -> None:
    response = page.goto(console_server["url"] + "/console/nowhere")
    assert response is not None and response.status == 404
    assert page.locator("#who").count() == 0  # no session, no navigation
    page.click("#not-found a")
    page.wait_for_url("**/console/login**")
