"""Releases over HTTP by role (issue 7): the operator requests, cannot vote on its own release and
fetches only its own available product; agency principals vote sealed; another operator sees
nothing. Both databases.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import Instance, create_app
from operators import Role
from tests.conftest import bearer_headers
from tests.job_worker_proc import MARKERS_ENV, SCENARIO, FakeResult, fast_runner, licensed
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


def _two_files(kind: str, code: str, *, datasets: Any, out_dir: Path, limits: Any = None) -> FakeResult:
    """The fast runner with a second output, ``note.txt``: a round of two files to vote on."""
    result = fast_runner(kind, code, datasets=datasets, out_dir=out_dir, limits=limits)
    body = f"note:{code}\n".encode()
    (out_dir / "note.txt").write_bytes(body)
    extra = {"name": "note.txt", "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    return dataclasses.replace(result, outputs=[*result.outputs, extra])


def test_an_api_vote_names_every_file_or_none_and_may_be_bound_to_the_round_shown(client: Client) -> None:
    """Red team 18: a vote with ``files`` decides every file of the round (no default vote; a partial map
    is refused, nothing recorded); a vote without ``files`` stays the one-decision-for-all shorthand.
    ``round`` and ``files_sha256``, when sent, must be the release's current round and outputs (F5)."""
    instance, http, headers = client
    body = {"datasets": ["traffic"], "kind": "python", "code": "print(2)", "scenario": SCENARIO}
    job = int(http.post("/jobs", json=body, headers=headers["operator"]).json()["job"])
    instance.worker(runner=_two_files, worker_id="api-two-files").run_pending()
    with instance.engine.begin() as connection:
        connection.execute(text("UPDATE jobs SET verdict = 'pass', findings = '[]' WHERE id = :id"), {"id": job})
    made = http.post("/releases", json={"job": job, "product": "two"}, headers=headers["operator"])
    assert made.status_code == 201, made.text
    release, outputs = made.json()["release"], made.json()["outputs"]
    hashes = {o["name"]: o["sha256"] for o in outputs}
    assert sorted(hashes) == ["note.txt", "result.txt"]
    url, size = f"/releases/{release}/votes", instance.ledger.size()

    partial = http.post(
        url, json={"decision": "approve", "files": {"result.txt": "approve"}}, headers=headers["agency"]
    )
    assert partial.status_code == 409 and "note.txt" in partial.json()["detail"]
    stale = http.post(url, json={"decision": "approve", "round": 2}, headers=headers["agency"])
    assert stale.status_code == 409 and "round 2" in stale.json()["detail"]
    changed = {**hashes, "note.txt": "0" * 64}
    other = http.post(url, json={"decision": "approve", "files_sha256": changed}, headers=headers["agency"])
    assert other.status_code == 409 and "note.txt" in other.json()["detail"]
    fewer = http.post(url, json={"decision": "approve", "files_sha256": {"result.txt": hashes["result.txt"]}},
                      headers=headers["agency"])  # fmt: skip
    assert fewer.status_code == 409
    malformed = http.post(
        url, json={"decision": "approve", "files_sha256": {"note.txt": "xyz"}}, headers=headers["agency"]
    )
    assert malformed.status_code == 422
    assert (
        instance.ledger.size() == size
        and http.get(f"/releases/{release}", headers=headers["agency"]).json()["votes_cast"] == 0
    )

    whole = {"decision": "approve", "files": {"result.txt": "approve", "note.txt": "approve"}}
    first = http.post(url, json={**whole, "round": 1, "files_sha256": hashes}, headers=headers["agency"])
    assert first.status_code == 200, first.text
    shorthand = http.post(url, json={"decision": "approve"}, headers=headers["agency2"])  # no files: all approve
    assert shorthand.status_code == 200 and shorthand.json()["state"] == "approved"
    assert [v["files"] for v in shorthand.json()["votes"]] == [{"note.txt": "approve", "result.txt": "approve"}] * 2

    # F6: an artifact the product lacks is a 404 before anything is ledgered; a real one ledgers only itself.
    fetched = len(instance.ledger.entries(action="product.fetched", limit=1000))
    assert http.get("/products/two/artifacts/nope.txt", headers=headers["operator"]).status_code == 404
    assert len(instance.ledger.entries(action="product.fetched", limit=1000)) == fetched
    got = http.get("/products/two/artifacts/note.txt", headers=headers["operator"])
    assert got.status_code == 200 and got.content.startswith(b"note:print(2)")
    entry = instance.ledger.entries(action="product.fetched", limit=1000)[-1]
    assert [f["name"] for f in entry.payload["files"]] == ["note.txt"]
