"""Releases over HTTP by role (issue 7): the operator requests, cannot vote on its own release and
fetches only its own available product; agency principals vote sealed; another operator sees
nothing. Both databases.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import Instance, create_app
from operators import Role
from tests.conftest import bearer_headers
from tests.job_worker_proc import MARKERS_ENV, SCENARIO, fast_runner, licensed
from tests.recovery_support import confirm

OPERATOR = "demo-operator"  # the principal behind the operator API key of `keyong init`

Client = tuple[Instance, TestClient, dict[str, dict[str, str]]]


@pytest.fixture
def client(
    initialised: tuple[Instance, dict[str, str]], tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Client:
    instance, tokens = initialised
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))
    licensed(instance.registry, instance.home, operator=OPERATOR)
    keys = dict(tokens)
    keys["agency2"] = instance.identity.create_principal("reviewer-2", Role.AGENCY).api_key
    confirm(instance.identity, "reviewer-2")  # made by the host: counts once an agency person confirmed it
    keys["other"] = instance.identity.create_principal("other-ops", Role.OPERATOR).api_key
    http = TestClient(create_app(instance=instance))
    return instance, http, bearer_headers(http, keys)


def _done_job(instance: Instance, http: TestClient, headers: dict[str, str], verdict: str) -> int:
    body = {"datasets": ["traffic"], "kind": "python", "code": "print(1)", "scenario": SCENARIO}
    job = int(http.post("/jobs", json=body, headers=headers).json()["job"])
    instance.worker(runner=fast_runner, worker_id="api-release").run_pending()
    with instance.engine.begin() as connection:
        connection.execute(
            text("UPDATE jobs SET verdict = :v, findings = :f WHERE id = :id"),
            {"v": verdict, "f": json.dumps([]), "id": job},
        )
    return job


def test_release_path_by_role(client: Client) -> None:
    instance, http, headers = client
    blocked = _done_job(instance, http, headers["operator"], "block")
    refused = http.post("/releases", json={"job": blocked, "product": "x"}, headers=headers["operator"])
    assert refused.status_code == 409 and "blocked" in refused.json()["detail"]

    job = _done_job(instance, http, headers["operator"], "pass")
    assert http.post("/releases", json={"job": job, "product": "p"}, headers=headers["agency"]).status_code == 403
    assert http.post("/releases", json={"job": job, "product": "p"}, headers=headers["other"]).status_code == 404
    made = http.post("/releases", json={"job": job, "product": "p"}, headers=headers["operator"])
    assert made.status_code == 201, made.text
    release = made.json()["release"]
    assert str(instance.home) not in made.text

    own_vote = http.post(f"/releases/{release}/votes", json={"decision": "approve"}, headers=headers["operator"])
    assert own_vote.status_code == 403
    assert http.get(f"/releases/{release}", headers=headers["other"]).status_code == 404
    assert http.get("/releases", headers=headers["other"]).json() == []

    first = http.post(f"/releases/{release}/votes", json={"decision": "approve"}, headers=headers["agency"])
    assert first.status_code == 200 and first.json()["state"] == "under_review"
    sealed = http.get(f"/releases/{release}", headers=headers["agency2"]).json()
    assert sealed["votes"] == [] and sealed["votes_cast"] == 1
    pending = http.get("/releases", params={"state": "under_review"}, headers=headers["agency2"]).json()
    assert [p["release"] for p in pending] == [release]
    second = http.post(f"/releases/{release}/votes", json={"decision": "approve"}, headers=headers["agency2"])
    assert second.json()["state"] == "approved" and len(second.json()["votes"]) == 2

    assert http.get("/products/p/artifacts/result.txt", headers=headers["other"]).status_code == 404
    assert http.get("/products/p/artifacts/result.txt", headers=headers["agency"]).status_code == 403
    got = http.get("/products/p/artifacts/result.txt", headers=headers["operator"])
    assert got.status_code == 200 and got.content.startswith(b"python:print(1)")
    # A text file has nowhere inside for its attribution: the download names source and date in a header.
    from urllib.parse import unquote

    carried = json.loads(unquote(got.headers["x-keyong-attribution"]))
    assert carried["product"] == "p" and "数据来源" in carried["statement"]
    assert http.get("/products/p/artifacts/nope.txt", headers=headers["operator"]).status_code == 404

    objection = http.post(
        "/objections",
        json={"target_kind": "product", "target": "p", "reason": "含个人信息"},
        headers=headers["regulator"],
    )
    assert objection.status_code == 201, objection.text
    suspended = http.get("/products/p/artifacts/result.txt", headers=headers["operator"])
    assert suspended.status_code == 409 and "suspended" in suspended.json()["detail"]
