"""The regulator's console pages without a browser: role checks, the live verification, filters,
an entry's inclusion proof checked on the server, the export, and usage records.

The regulator reads everything and changes nothing: its pages carry no state-changing form, and the
agency's actions refuse it (tests/test_console_agency.py).
"""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from app.ledger_whole import remembered_head_file
from ledger.verify import check_inclusion_proof
from tests.console_support import console_client as _client
from tests.console_support import flash as _flash


@pytest.fixture
def regulator(initialised: tuple[Instance, dict[str, str]]) -> tuple[Instance, dict[str, str], TestClient]:
    instance, tokens = initialised
    # Some history of several families: logins (auth.*) and a few job-like entries.
    for n in range(3):
        instance.ledger.append(actor="w", role="system", action="job.finished", subject=f"job:{n + 1}", payload={})
    instance.ledger.append(actor="demo-agency", role="agency", action="release.voted", subject="release:1", payload={})
    return instance, tokens, _client(instance, tokens["regulator"])


def _seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', html)]


def test_other_roles_are_forbidden(regulator: tuple[Instance, dict[str, str], TestClient]) -> None:
    instance, tokens, _ = regulator
    for role in ("operator", "agency", "custodian"):
        client = _client(instance, tokens[role])
        for path in ("", "/entries/1", "/export", "/usage"):
            assert client.get(f"/console/regulator{path}").status_code == 403, (role, path)
    anonymous = TestClient(create_app(instance=instance))
    assert anonymous.get("/console/regulator/export", follow_redirects=False).status_code == 303  # to the login


def test_ledger_page_says_when_the_head_is_not_remembered(
    regulator: tuple[Instance, dict[str, str], TestClient],
) -> None:
    """Without the head remembered outside the database (an older home, the file moved aside) the ledger can
    still verify, but a cut-off tail could not be seen: the regulator reads that warning on the page, as the
    CLI and the API's ``warnings`` say it (red team 21d F8)."""
    instance, _, client = regulator
    assert 'id="verify-warnings"' not in client.get("/console/regulator").text
    remembered_head_file(instance.home).unlink()
    page = client.get("/console/regulator")
    assert page.status_code == 200 and 'data-ok="true"' in page.text
    warnings = page.text.split('id="verify-warnings"', 1)[1].split("</section>", 1)[0]
    assert "<li>" in warnings and "head" in warnings.lower()


def test_ledger_page_names_a_problem_without_an_entry_as_it_is(
    regulator: tuple[Instance, dict[str, str], TestClient],
) -> None:
    """A problem that belongs to no entry (the remembered signed checkpoint gone from the database) is shown
    by its kind and detail, not as ``seq None``."""
    instance, _, client = regulator
    instance.ledger.checkpoint()
    head = remembered_head_file(instance.home)
    remembered = json.loads(head.read_text(encoding="utf-8"))
    assert remembered["checkpoint"] is not None
    remembered["checkpoint"]["tree_size"] -= 1  # a signed checkpoint the database does not hold
    head.write_text(json.dumps(remembered), encoding="utf-8")
    page = client.get("/console/regulator")
    assert page.status_code == 200 and 'data-ok="false"' in page.text
    problems = page.text.split('id="problems"', 1)[1].split("</section>", 1)[0]
    assert "<li>truncated: " in problems and "seq None" not in problems


def test_ledger_page_verifies_live_and_filters_newest_first(
    regulator: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, _, client = regulator
    page = client.get("/console/regulator")
    assert page.status_code == 200
    assert 'data-ok="true"' in page.text and "verified ✓" in page.text
    size = instance.ledger.size()
    seqs = _seqs(page.text)
    assert seqs == sorted(seqs, reverse=True) and seqs[0] == size  # newest first
    assert "<svg" in page.text and "job.*" in page.text  # the chart by action family
    assert 'method="post"' not in page.text.replace('method="post" action="/console/logout"', "")

    only = client.get("/console/regulator", params={"action": "job.finished"})
    shown = _seqs(only.text)
    assert len(shown) == 3
    assert all(instance.ledger.get(s).action == "job.finished" for s in shown)

    paged = client.get("/console/regulator", params={"limit": 25, "before": shown[0]})
    assert all(s < shown[0] for s in _seqs(paged.text))


def test_entry_page_shows_a_proof_verified_on_the_server(
    regulator: tuple[Instance, dict[str, str], TestClient],
) -> None:
    instance, _, client = regulator
    seq = instance.ledger.entries(action="job.finished", limit=1)[0].seq
    page = client.get(f"/console/regulator/entries/{seq}")
    assert page.status_code == 200
    assert 'id="proof-status">已验证 verified ✓' in page.text
    proof = instance.ledger.prove(seq)
    assert check_inclusion_proof(proof.as_json(), instance.ledger.public_key)
    for step in proof.path:
        assert step in page.text
    assert proof.root in page.text

    missing = client.get("/console/regulator/entries/99999", follow_redirects=False)
    assert missing.status_code == 303 and "no ledger entry 99999" in _flash(missing)
    assert client.get("/console/regulator/entries/0", follow_redirects=False).status_code == 303


def test_export_is_the_ledger_as_json_lines(regulator: tuple[Instance, dict[str, str], TestClient]) -> None:
    instance, _, client = regulator
    response = client.get("/console/regulator/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    entries = [line for line in lines if "seq" in line and "hash" in line and "action" in line]
    assert len(entries) == instance.ledger.size()
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))


def test_usage_page_lists_datasets_and_survives_an_unknown_one(
    regulator: tuple[Instance, dict[str, str], TestClient],
) -> None:
    _, _, client = regulator
    page = client.get("/console/regulator/usage", params={"dataset": "no-such-dataset"})
    assert page.status_code == 200 and "使用记录" in page.text
