"""Browser tests of the web console (issue 9): Playwright driving Debian's chromium, against a real
``keyong serve`` (uvicorn) over a home the demo filled. No browser is downloaded: Playwright launches
``/usr/bin/chromium`` (``apt-get install chromium``, done by ``make test``). A failed test leaves a
full-page screenshot under ``tests/browser/artifacts/``.

Where chromium or Playwright is absent the tests skip with the reason, unless
``KEYONG_REQUIRE_BROWSER=1`` (set by ``make test``), where they fail: CI must run them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("KEYONG_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
KEYONG = [sys.executable, "-m", "app.cli"]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return f"Debian's chromium is not installed ({CHROMIUM}); `apt-get install chromium` (make test does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="session")
def browser_available() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("KEYONG_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here but cannot run: {reason}")
    pytest.skip(f"BROWSER TESTS SKIPPED: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory, browser_available: None) -> Iterator[dict[str, Any]]:
    """``keyong demo`` in a fresh home, then ``keyong serve`` on a free port: {"url", "home", "tokens", "totp"}."""
    home = tmp_path_factory.mktemp("console-home") / "home"
    env = {**os.environ, "KEYONG_HOME": str(home)}
    env.pop("KEYONG_DATABASE_URL", None)
    demo = subprocess.run(
        [*KEYONG, "demo", "--home", str(home), "--json", "--residents", "600"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    tokens = json.loads(demo.stdout)["tokens"]
    totp = json.loads(demo.stdout)["totp"]  # each demo principal's second factor, shown once beside its key
    port = _free_port()
    log = (home.parent / "serve.log").open("w")
    server = subprocess.Popen(
        [*KEYONG, "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise AssertionError("keyong serve did not come up: " + (home.parent / "serve.log").read_text()[-3000:])
        time.sleep(0.3)
    try:
        yield {"url": url, "home": home, "tokens": tokens, "totp": totp}
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def browser(browser_available: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: the tests run as root in CI, where chromium's own sandbox cannot start.
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context and page; a screenshot of it when the test failed."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        context.close()


def login(page: Any, server: dict[str, Any], role: str) -> None:
    """Log in through the form with the role's API key and a code of its second factor (the served process
    reads the wall clock); lands on the role's home."""
    from tests.totp_support import wall_code

    page.goto(server["url"] + "/console/login")
    page.fill("#api_key", server["tokens"][role])
    page.fill("#totp", wall_code(server["totp"][role]))
    page.click("button[type=submit]")
    page.wait_for_url(f"**/console/{role}**")
