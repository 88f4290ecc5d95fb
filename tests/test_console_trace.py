"""The regulator's trace, proof downloads and range export without a browser (issue 18).

A product's whole path is traced (双鸭山 第六十条, 全流程可追溯): job → release → product → fetch → objection, each
step with its ledger entries linked, and back from the product to its job. An entry's proof and checkpoint
note download as files that ``python -m ledger.verify`` accepts together with the export (and a tampered
proof it refuses). Every ledger action the code writes has a Chinese label. Bad ids, unknown products,
bad ranges and other roles are 4xx, never a 500.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import Instance
from app.console.glossary import label as action_label
from core import Actor
from tests.console_support import console_client
from tests.recovery_support import issue_key
from tests.test_release import ACME, R1, R2, done_job
from tests.test_release import instance as instance  # the licensed instance fixture

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = "交通出行月报"


@pytest.fixture
def traced(instance: Instance, tmp_path: Path) -> tuple[Instance, TestClient, int]:
    """A job released as a product, fetched once, with an objection filed against it; a regulator's client."""
    job = done_job(instance, "pass", code="11")
    release = instance.releases.request(job, product=PRODUCT, by=ACME).id
    instance.releases.vote(release, "approve", by=R1)
    instance.releases.vote(release, "approve", by=R2)
    instance.releases.fetch(PRODUCT, tmp_path / "out", by=ACME)
    instance.registry.objections.file("product", PRODUCT, "含可识别信息", by=Actor("demo-regulator", "regulator"))
    return instance, console_client(instance, issue_key(instance.identity, "demo-regulator")), job


def test_trace_goes_from_job_to_release_product_fetch_and_objection_and_back(
    traced: tuple[Instance, TestClient, int],
) -> None:
    instance, regulator, job = traced
    index = regulator.get("/console/regulator/trace")
    assert index.status_code == 200 and PRODUCT in index.text
    page = regulator.get(f"/console/regulator/trace/jobs/{job}")
    assert page.status_code == 200
    for step in ("job", "release", "product", "fetches", "objections"):
        assert f'data-step="{step}"' in page.text, step
    linked = {int(s) for s in re.findall(r'href="/console/regulator/entries/(\d+)"', page.text)}
    for subject in (f"job:{job}", f"product:{PRODUCT}"):
        for entry in instance.ledger.entries(subject=subject, limit=100):
            assert entry.seq in linked, (subject, entry.action)
    fetched = instance.ledger.entries(action="product.fetched", limit=5)
    assert fetched and fetched[0].seq in linked
    assert action_label("product.fetched") in page.text and action_label("objection.filed") in page.text
    back = regulator.get(f"/console/regulator/trace/products/{PRODUCT}")
    assert back.status_code == 200 and f'href="/console/regulator/trace/jobs/{job}"' in back.text
    looked_up = regulator.get(f"/console/regulator/trace?product={PRODUCT}")  # the lookup form, a Chinese name
    assert looked_up.status_code == 200 and f'href="/console/regulator/trace/jobs/{job}"' in looked_up.text
    assert (
        regulator.get(f"/console/regulator/trace?job={job}", follow_redirects=False)
        .headers["location"]
        .endswith(f"/regulator/trace/jobs/{job}")
    )


def test_bad_ids_products_and_ranges_are_4xx(traced: tuple[Instance, TestClient, int]) -> None:
    _, regulator, _ = traced
    assert regulator.get("/console/regulator/trace/jobs/999999").status_code == 404
    assert regulator.get("/console/regulator/trace/jobs/abc").status_code == 422
    assert regulator.get("/console/regulator/trace/jobs/1" + "0" * 30).status_code == 422
    assert regulator.get("/console/regulator/trace/products/nothing-here").status_code == 404
    assert regulator.get("/console/regulator/trace?job=1x", follow_redirects=False).status_code == 303
    assert regulator.get("/console/regulator/entries/999999/proof.json").status_code == 404
    assert regulator.get("/console/regulator/entries/0/proof.json").status_code == 404
    assert regulator.get("/console/regulator/entries/x/proof.json").status_code == 422
    assert regulator.get("/console/regulator/checkpoints/999999/note").status_code == 404
    assert regulator.get("/console/regulator/checkpoints/0/note").status_code == 404
    for query in ("", "from=5&to=2", "from=0", "from=a", "since=2026-13-01", "since=2026-12-02&until=2026-12-01",
                  "from=1&to=999999999"):  # fmt: skip
        got = regulator.get(f"/console/regulator/export/range?{query}")
        assert got.status_code == 400, query


def test_range_export_holds_exactly_the_range(traced: tuple[Instance, TestClient, int]) -> None:
    instance, regulator, _ = traced
    got = regulator.get("/console/regulator/export/range?from=3&to=7")
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    lines = [json.loads(line) for line in got.text.splitlines()]
    assert [line["seq"] for line in lines] == [3, 4, 5, 6, 7]
    assert lines[0] == instance.ledger.get(3).as_json()  # the export's own line format
    today = instance.ledger.get(1).time[:10]
    dated = regulator.get(f"/console/regulator/export/range?since={today}&until={today}")
    assert len(dated.text.splitlines()) == sum(1 for e in instance.ledger.entries(limit=10_000) if e.time[:10] == today)


@pytest.mark.parametrize("role", ["operator", "agency", "custodian"])
def test_other_roles_are_refused(initialised: tuple[Instance, dict[str, str]], role: str) -> None:
    instance, tokens = initialised
    client = console_client(instance, tokens[role])
    for path in ("/regulator/trace", "/regulator/trace/jobs/1", "/regulator/trace/products/x",
                 "/regulator/entries/1/proof.json", "/regulator/checkpoints/1/note", "/regulator/public-key",
                 "/regulator/export/range?from=1&to=2"):  # fmt: skip
        assert client.get("/console" + path, follow_redirects=False).status_code == 403, path


def test_downloaded_proof_and_note_pass_the_standalone_verifier(
    traced: tuple[Instance, TestClient, int], tmp_path: Path
) -> None:
    instance, regulator, job = traced
    seq = instance.ledger.entries(subject=f"job:{job}", limit=1)[0].seq
    page = regulator.get(f"/console/regulator/entries/{seq}")
    assert 'id="download-proof"' in page.text and "追溯 trace" in page.text
    proof = regulator.get(f"/console/regulator/entries/{seq}/proof.json")
    assert proof.status_code == 200 and "attachment" in proof.headers["content-disposition"]
    size = proof.json()["tree_size"]
    assert f"/regulator/checkpoints/{size}/note" in regulator.get(f"/console/regulator/entries/{seq}").text
    note = regulator.get(f"/console/regulator/checkpoints/{size}/note")
    key = regulator.get("/console/regulator/public-key").text.strip()
    export = regulator.get("/console/regulator/export")
    files = {"proof.json": proof.content, "checkpoint.note": note.content, "ledger.jsonl": export.content}
    for name, body in files.items():
        (tmp_path / name).write_bytes(body)
    command = [sys.executable, "-m", "ledger.verify", str(tmp_path / "ledger.jsonl"), "--public-key", key,
               "--proof", str(tmp_path / "proof.json"), "--note", str(tmp_path / "checkpoint.note")]  # fmt: skip
    accepted = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert json.loads(accepted.stdout)["proof"] is True
    tampered = proof.json()
    tampered["entry_hash"] = ("0" if tampered["entry_hash"][0] != "0" else "1") + tampered["entry_hash"][1:]
    (tmp_path / "proof.json").write_text(json.dumps(tampered))
    refused = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert refused.returncode == 1 and json.loads(refused.stdout)["proof"] is False


def test_the_regulator_reads_every_action_in_chinese_with_its_code() -> None:
    """The ledger pages label actions through the one glossary (``tests/test_console_everywhere.py`` checks that every
    action the code ledgers has a label there)."""
    assert action_label("licence.activated") == "授权生效 licence.activated"
    assert action_label("no.such_action") == "no.such_action"  # an unknown action is shown, never hidden
