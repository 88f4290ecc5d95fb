"""The agency's console pages without a browser: who may open them, CSRF, and refusals as messages.

A real release (a done job of the fast runner, judged ``pass``) is reviewed through the console's
forms: the first vote is recorded and sealed, a second vote of the same reviewer is refused with the
registry's reason as the flash (never a 500), a vote without the CSRF token changes nothing, and
neither an operator nor a regulator can open the pages or post the forms.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import Instance
from app.console.session import COOKIE, Sessions
from core import Actor
from operators import Role
from tests.console_support import console_client as _client
from tests.console_support import csrf_in as _csrf
from tests.console_support import flash as _flash
from tests.console_support import vote_shown
from tests.job_worker_proc import MARKERS_ENV, SCENARIO, fast_runner, licensed
from tests.recovery_support import confirm

OPERATOR = "demo-operator"


def _session_csrf(instance: Instance, client: TestClient) -> str:
    """The CSRF token the console binds to this client's session (what its forms would carry)."""
    return Sessions(instance.identity, instance.keys.jwt_key).csrf_for(client.cookies.get(COOKIE) or "")


@pytest.fixture
def reviewed(
    initialised: tuple[Instance, dict[str, str]], tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> tuple[Instance, dict[str, str], int]:
    """An instance with one submitted release of a passed job, and a second agency reviewer."""
    instance, tokens = initialised
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))
    licensed(instance.registry, instance.home, operator=OPERATOR)
    keys = dict(tokens)
    keys["agency2"] = instance.identity.create_principal("reviewer-2", Role.AGENCY).api_key
    confirm(instance.identity, "reviewer-2")  # made by the host: counts once an agency person confirmed it
    operator = Actor(OPERATOR, "operator")
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO, by=operator)
    instance.worker(runner=fast_runner, worker_id="console-agency").run_pending()
    with instance.engine.begin() as connection:
        connection.execute(
            text("UPDATE jobs SET verdict = 'pass', findings = :f WHERE id = :id"), {"f": json.dumps([]), "id": job}
        )
    release = instance.releases.request(job, product="console-product", by=operator).id
    return instance, keys, release


def test_review_page_shows_outputs_lineage_and_records_a_sealed_vote(
    reviewed: tuple[Instance, dict[str, str], int],
) -> None:
    instance, keys, release = reviewed
    agency = _client(instance, keys["agency"])
    listing = agency.get("/console/agency")
    assert listing.status_code == 200 and "console-product" in listing.text
    page = agency.get(f"/console/agency/releases/{release}")
    assert page.status_code == 200
    view = instance.releases.get(release, viewer=Actor("demo-agency", "agency"))
    for output in view.outputs:
        assert output["name"] in page.text and output["sha256"] in page.text
    assert "traffic" in page.text and SCENARIO in page.text  # lineage: dataset and scenario
    assert str(instance.home) not in page.text and "work/" not in page.text  # no host paths, even for the agency
    assert 'id="vote-form"' in page.text
    files = {f"file:{o['name']}": "approve" for o in view.outputs}
    shown = vote_shown(page.text)  # the round and files the page showed (red team 18, F5)

    voted = agency.post(
        f"/console/agency/releases/{release}/vote",
        data={"csrf": _csrf(page.text), "decision": "approve", "reason": "聚合结果,可发布", **files, **shown},
        follow_redirects=False,
    )
    assert voted.status_code == 303 and "your vote recorded; others sealed" in _flash(voted)
    after = agency.get(f"/console/agency/releases/{release}")
    assert 'id="my-vote"' in after.text and 'id="vote-form"' not in after.text
    assert instance.releases.get(release, viewer=Actor("demo-agency", "agency")).votes_cast == 1

    # The other reviewer does not see the first vote (sealed) but may vote.
    second = _client(instance, keys["agency2"]).get(f"/console/agency/releases/{release}")
    assert 'id="vote-form"' in second.text and "聚合结果" not in second.text

    # Voting twice is refused with the registry's reason as the flash message.
    again = agency.post(
        f"/console/agency/releases/{release}/vote",
        data={"csrf": _csrf(page.text), "decision": "approve", **files, **shown},
        follow_redirects=False,
    )
    assert again.status_code == 303 and "already voted" in _flash(again)


def test_a_vote_without_csrf_is_forbidden_and_changes_nothing(reviewed: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, release = reviewed
    agency = _client(instance, keys["agency"])
    size = instance.ledger.size()
    refused = agency.post(f"/console/agency/releases/{release}/vote", data={"decision": "approve"})
    assert refused.status_code == 403
    stale = agency.post(f"/console/agency/releases/{release}/vote", data={"decision": "approve", "csrf": "0" * 64})
    assert stale.status_code == 403
    assert instance.ledger.size() == size
    assert instance.releases.get(release, viewer=Actor("demo-agency", "agency")).votes_cast == 0


def test_operator_and_regulator_cannot_open_or_post_agency_pages(
    reviewed: tuple[Instance, dict[str, str], int],
) -> None:
    instance, keys, release = reviewed
    clients = {role: _client(instance, keys[role]) for role in ("operator", "regulator")}
    size = instance.ledger.size()  # after the logins, which are ledgered themselves
    for role, client in clients.items():
        for path in ("", f"/releases/{release}", "/licences", "/findings", "/objections"):
            assert client.get(f"/console/agency{path}").status_code == 403, (role, path)
        token = _session_csrf(instance, client)  # even with the session's own valid CSRF token
        for path, data in (
            (f"/releases/{release}/vote", {"decision": "approve"}),
            ("/findings/1/resolve", {"resolution": "done"}),
            ("/objections/1/resolve", {"outcome": "restore", "reason": "ok"}),
            ("/budgets/raise", {"licence": "1", "dataset": "traffic", "epsilon": "9", "reason": "more"}),
        ):
            assert client.post(f"/console/agency{path}", data={**data, "csrf": token}).status_code == 403
    assert instance.ledger.size() == size


def test_regulator_pages_show_no_agency_forms(reviewed: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, _ = reviewed
    regulator = _client(instance, keys["regulator"])
    for path in ("/console/regulator", "/console/regulator/usage"):
        page = regulator.get(path)
        assert page.status_code == 200
        assert 'method="post"' not in page.text.replace('method="post" action="/console/logout"', "")


def test_a_vote_on_a_missing_release_is_a_message_not_a_500(reviewed: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, _ = reviewed
    agency = _client(instance, keys["agency"])
    voted = agency.post(
        "/console/agency/releases/999/vote",
        data={"csrf": _session_csrf(instance, agency), "decision": "approve"},
        follow_redirects=False,
    )
    assert voted.status_code == 303 and "no release 999" in _flash(voted)
    assert voted.headers["location"].startswith("/console/agency?")  # back to the list: there is no page 999
    opened = agency.get("/console/agency/releases/999", follow_redirects=False)
    assert opened.status_code == 303 and "no release 999" in _flash(opened)
    resolved = agency.post(
        "/console/agency/findings/999/resolve",
        data={"csrf": _session_csrf(instance, agency), "resolution": "done"},
        follow_redirects=False,
    )
    assert resolved.status_code == 303 and "no finding 999" in _flash(resolved)
