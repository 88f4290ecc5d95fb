"""The agency's main path in a real browser: a pending release request, opened with its outputs,
findings and lineage, approved by this reviewer with a reason (sealed: "others sealed"), then decided
once a second independent reviewer voted (双鸭山 第五十二条: review before release)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import KEYONG, login
from tests.totp_support import wall_code

pytestmark = pytest.mark.slow


def _keyong(server: dict[str, Any], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [*KEYONG, *args, "--home", str(server["home"]), "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _second_reviewer(home: Path) -> tuple[str, Path, str]:
    """Another active agency principal and a file with its own API key (the demo has one reviewer; the
    default needs two independent reviewers; a CLI vote needs the reviewer's own key and its second factor,
    issue 22)."""
    from app.instance import Instance
    from app.settings import Settings
    from operators import Role
    from tests.recovery_support import confirm

    name = f"reviewer-{uuid.uuid4().hex[:6]}"
    instance = Instance.open(Settings(home=home, database_url=None))
    try:
        new = instance.identity.create_principal(name, Role.AGENCY, enrol_totp=True)  # as the demo's reviewers
        key, secret = new.api_key, str(new.totp_secret)
        confirm(instance.identity, name)  # made by the host: votes once an agency person confirmed it (SATRE 3.2.01)
    finally:
        instance.close()
    key_file = home / f"{name}.key"
    key_file.write_text(key, encoding="utf-8")
    key_file.chmod(0o600)  # a key file others can read is refused (app.cli.credentials)
    return name, key_file, secret


def test_agency_reviews_and_approves_a_release(page: Any, console_server: dict[str, Any]) -> None:
    product = f"console-review-{uuid.uuid4().hex[:8]}"
    # The demo's SQL job 1 passed the guard: the operator asks for its release as a product.
    release = _keyong(console_server, "release", "request", "1", "--product", product)["release"]

    login(page, console_server, "agency")
    row = page.locator(f"tr[data-release='{release}']")
    assert product in row.inner_text()
    row.locator("a").click()
    page.wait_for_url(f"**/console/agency/releases/{release}")

    outputs = page.locator("#outputs").inner_text()
    assert "result.csv" in outputs and "SDC summary" in outputs
    assert page.locator("#outputs table.full").first.locator("tbody tr").count() >= 1  # the reviewer sees rows
    assert "pass" in page.locator("h2", has_text="Export guard").inner_text()
    lineage = page.locator("#context").inner_text()
    assert "#1" in lineage and "residents" in lineage and "Licence" in lineage

    for radio in page.locator("#vote-form input[type=radio][value=approve]").all():  # no default vote (issue 18)
        radio.check()
    page.fill("#reason", "聚合统计,无个人信息 · aggregate counts only")
    page.click("#vote-form button[type=submit]")
    page.wait_for_url(f"**/console/agency/releases/{release}?msg=*")
    assert "your vote recorded; others sealed" in page.locator(".flash[role=status]").inner_text()
    assert page.locator("#my-vote").is_visible()
    assert page.locator("#votes").inner_text().startswith("1 /")
    assert page.locator("#vote-form").count() == 0  # one vote per reviewer and round

    # A second independent reviewer completes the round; the page then shows the decision and both votes.
    reviewer, key_file, secret = _second_reviewer(console_server["home"])
    code = wall_code(secret)  # the CLI in another process reads the wall clock
    _keyong(console_server, "release", "approve", str(release), "--key-file", str(key_file), "--totp", code)
    page.reload()
    assert page.locator("#release-state").get_attribute("data-state") == "approved"
    votes = page.locator("#votes-table").inner_text()
    assert "demo-agency" in votes and reviewer in votes and "aggregate counts only" in votes
