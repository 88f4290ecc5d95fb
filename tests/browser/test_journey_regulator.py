"""The regulator's whole job in a real browser (issue 18), with no CLI step.

The regulator (监管部门) reads the verified ledger in Chinese, opens a product's trace (双鸭山 第六十条: 全流程
可追溯), goes from the product back to its job, opens the job's ledger entry, and downloads the entry's inclusion
proof, the signed checkpoint note, the public key and the ledger export from the page. The standalone verifier
``python -m ledger.verify`` — the documented check, run here as a regulator would run it on their own machine —
accepts the downloaded files, and refuses a tampered copy of the proof. A range of entries downloads too.
Screenshots: docs/screenshots/regulator-ledger.png, regulator-trace.png, regulator-entry.png (1280 px).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _download(page: Any, selector: str, to: Path) -> Path:
    with page.expect_download() as info:
        page.click(selector)
    path = to / info.value.suggested_filename
    info.value.save_as(str(path))
    return path


def test_regulator_traces_a_product_to_its_job_and_verifies_a_proof(
    page: Any, console_server: dict[str, Any], tmp_path: Path
) -> None:
    url = console_server["url"] + "/console"
    login(page, console_server, "regulator")
    assert "校验通过" in page.locator("#verify-status").inner_text()
    assert "." in page.locator("#timeline td.action").first.inner_text()
    labelled = page.locator("#timeline td.action").all_inner_texts()
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in text) for text in labelled)  # actions in Chinese
    _shot(page, "regulator-ledger")

    # A product's trace, then back to its job.
    page.click("nav >> text=追溯 Trace")
    rows = page.locator("#trace-products tbody tr[data-product]")
    activity = [
        int(rows.nth(i).locator("td.fetches").inner_text()) + int(rows.nth(i).locator("td.objections").inner_text())
        for i in range(rows.count())
    ]
    chosen = rows.nth(activity.index(max(activity)))  # the product most fetched and objected to
    product = chosen.get_attribute("data-product")
    chosen.locator("a").first.click()
    page.wait_for_url("**/regulator/trace/products/**")
    assert product in page.locator("h1").inner_text()
    assert page.locator("li[data-step='fetches']").is_visible()
    page.click("#job-link")
    page.wait_for_url("**/regulator/trace/jobs/**")
    for step in ("job", "release", "product", "fetches", "objections"):
        assert page.locator(f"li[data-step='{step}']").count() >= 1, step
    assert product in page.locator("#trace").inner_text()
    _shot(page, "regulator-trace")

    # The job's first ledger entry, its proof and checkpoint downloaded and checked offline.
    page.locator("li[data-step='job'] a.entry-link").first.click()
    page.wait_for_url("**/regulator/entries/**")
    assert "已验证" in page.locator("#proof-status").inner_text()
    assert page.locator("#trace-link").is_visible()
    _shot(page, "regulator-entry")
    proof = _download(page, "#download-proof", tmp_path)
    note = _download(page, "#download-note", tmp_path)
    key = _download(page, "#download-key", tmp_path).read_text(encoding="utf-8").strip()
    export = _download(page, "#download-export", tmp_path)
    command = [sys.executable, "-m", "ledger.verify", str(export), "--public-key", key,
               "--proof", str(proof), "--note", str(note)]  # fmt: skip
    accepted = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert accepted.returncode == 0, accepted.stdout[-3000:] + accepted.stderr[-2000:]
    result = json.loads(accepted.stdout)
    assert result["ok"] is True and result["proof"] is True

    tampered = json.loads(proof.read_text(encoding="utf-8"))
    tampered["path"] = tampered["path"][::-1] if len(tampered["path"]) > 1 else ["00" * 32]
    tampered["entry_hash"] = "f" * 64
    proof.write_text(json.dumps(tampered), encoding="utf-8")
    refused = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert refused.returncode == 1 and json.loads(refused.stdout)["proof"] is False

    # A range of entries, from the ledger page's export form.
    page.goto(url + "/regulator")
    page.fill("#export-range input[name=from]", "1")
    page.fill("#export-range input[name=to]", "5")
    ranged = _download(page, "#export-range button", tmp_path)
    assert [json.loads(line)["seq"] for line in ranged.read_text(encoding="utf-8").splitlines()] == [1, 2, 3, 4, 5]
