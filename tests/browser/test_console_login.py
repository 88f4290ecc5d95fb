"""Logging in and out of the console in a real browser, and what a wrong key or a wrong role gets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.slow


def test_login_lands_on_the_roles_home_and_logout_ends_the_session(page: Any, console_server: dict[str, Any]) -> None:
    login(page, console_server, "operator")
    assert page.locator("#who").inner_text() == "demo-operator"
    page.click("text=退出 Log out")
    page.wait_for_url("**/console/login**")
    page.goto(console_server["url"] + "/console/operator")
    page.wait_for_url("**/console/login**")  # the cookie is gone: back to the form


def test_a_wrong_key_is_refused_with_a_message(page: Any, console_server: dict[str, Any]) -> None:
    page.goto(console_server["url"] + "/console/login")
    page.fill("#api_key", "ky_nope_nope")
    page.click("button[type=submit]")
    assert "登录失败" in page.locator("[role=alert].error").inner_text()  # not the no-live-worker banner


def test_another_roles_page_is_forbidden(page: Any, console_server: dict[str, Any]) -> None:
    login(page, console_server, "operator")
    response = page.goto(console_server["url"] + "/console/regulator")
    assert response is not None and response.status == 403
    assert "Forbidden" in page.content()
