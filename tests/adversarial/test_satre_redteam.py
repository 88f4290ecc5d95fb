"""Independent red team of issue 22's defences (SATRE v2): freeze, security events, CLI credentials,
backup and restore, TLS. Each test is one attack, written before the defences' own tests were read;
an attack that broke a defence is kept as the regression of its fix (in the module owning the rule):

- a worker's claim read the freeze without a lock: a freeze committed while a claim was under way let
  that job start after it (``job.started`` after ``platform.frozen`` in the ledger, PostgreSQL) — now the
  freeze is read under a share lock (``registry.freeze``); a fetch checked it only before its
  transaction, so its ``product.fetched`` is now decided under the same lock (``sandbox.release``);
- a refusal in the console (a regulator pressing "unfreeze", an operator downloading what is not
  theirs) was a flash redirect, never a security event, where the API's 403 was one
  (``app.api.security``: a console refusal marks the request);
- twenty forged tokens from one address folded that address's later events into an unnamed ``*``
  principal, so a principal could then be refused without end and never raise an alert; likewise a
  full window (``registry.security_events``: folding raises an alert of its own);
- a tampered backup manifest chose scrypt costs of 4 GiB and minutes before its MAC was checked
  (``app.backup_archive``: the costs a reader accepts are bounded near the writer's);
- ``keyong serve --host localhost`` trusted the name, which the host's resolver may send anywhere
  (``app.transport``: every address it resolves to must be loopback).
"""

from __future__ import annotations

import json
import os
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from app import Instance, Settings, create_app
from app.cli.root import cli
from core import Actor, PermissionDeniedError, RegistryError
from operators import Role
from registry import PlatformFrozenError, SecurityEventKind, SecurityEvents, SecurityPolicy
from registry.security_models import SecurityAlertRow, SecurityEventRow
from tests.conftest import bearer, bearer_headers
from tests.console_support import ORIGIN, console_client, csrf_of
from tests.job_worker_proc import MARKERS_ENV, SCENARIO, fast_runner, licensed

pytestmark = pytest.mark.attack

OPERATOR = "demo-operator"  # the operator principal of `keyong init`
REGULATOR = Actor("demo-regulator", "regulator")
AGENCY = Actor("demo-agency", "agency")


@pytest.fixture
def database_url() -> None:
    """SQLite unless a test asks for PostgreSQL too (``pg_url``)."""
    return None


@pytest.fixture
def keys(initialised: tuple[Instance, dict[str, str]]) -> dict[str, str]:
    return initialised[1]


def _cli(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["--home", str(home), *args], env=env or {})


def _actions_since(instance: Instance, seq: int) -> list[tuple[str, str]]:
    with instance.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT action, subject FROM ledger_entries WHERE seq > :s ORDER BY seq"), {"s": seq}
        ).all()
    return [(str(a), str(s)) for a, s in rows]


def _head(instance: Instance) -> int:
    with instance.engine.connect() as connection:
        return int(connection.execute(text("SELECT COALESCE(MAX(seq), -1) FROM ledger_entries")).scalar_one())


# --- freeze: every door while frozen ------------------------------------------------------------


class Stage:
    """A licensed demo operator with jobs in each state a freeze must stop, over one API client."""

    def __init__(self, instance: Instance, tokens: dict[str, str]) -> None:
        self.instance = instance
        licensed(instance.registry, instance.home, operator=OPERATOR)
        self.keys = dict(tokens)
        self.keys["agency2"] = instance.identity.create_principal("reviewer-2", Role.AGENCY).api_key
        self.http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
        self.headers = bearer_headers(self.http, self.keys)

    def submit(self, code: str = "print(1)", kind: str = "python") -> Any:
        body = {"datasets": ["traffic"], "kind": kind, "code": code, "scenario": SCENARIO}
        return self.http.post("/jobs", json=body, headers=self.headers["operator"])

    def done(self, code: str) -> int:
        job = int(self.submit(code).json()["job"])
        self.instance.worker(runner=fast_runner, worker_id="stage").run_pending()
        with self.instance.engine.begin() as connection:
            connection.execute(text("UPDATE jobs SET verdict = 'pass', findings = '[]' WHERE id = :id"), {"id": job})
        return job

    def request(self, job: int, product: str) -> int:
        made = self.http.post("/releases", json={"job": job, "product": product}, headers=self.headers["operator"])
        assert made.status_code == 201, made.text
        return int(made.json()["release"])

    def vote(self, release: int, who: str = "agency") -> Any:
        return self.http.post(f"/releases/{release}/votes", json={"decision": "approve"}, headers=self.headers[who])


@pytest.fixture(params=["sqlite", "postgresql"])
def stage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))
    instance, result = Instance.init(Settings(home=tmp_path / "home", database_url=url))
    try:
        yield Stage(instance, result.tokens)
    finally:
        instance.close()


def test_a_freeze_shuts_every_api_door_with_423_and_holds_the_queue(stage: Stage) -> None:
    """Intake (plain, DP, mitigation), release requests, votes and delivery are 423 while frozen; a queued
    job stays queued; nothing of theirs reaches the ledger until the agency unfreezes (双鸭山 第六十一条)."""
    http, h = stage.http, stage.headers
    released = stage.done("print('p1')")
    stage.vote(stage.request(released, "p1"))
    assert stage.vote(int(http.get("/releases", headers=h["agency"]).json()[0]["release"]), "agency2").status_code == 200
    pending_release = stage.request(stage.done("print('p2')"), "p2")
    unrequested = stage.done("print('p3')")
    queued = int(stage.submit("print('q')").json()["job"])

    frozen = http.post("/platform/freeze", json={"reason": "疑似密钥泄露 suspected key leak"}, headers=h["regulator"])
    assert frozen.status_code == 200 and frozen.json()["frozen"] is True
    mark = _head(stage.instance)

    doors = {
        "submit": stage.submit("print('x')"),
        "dp": stage.submit('{"query": "count"}', kind="dp-query"),
        "mitigate": http.post(f"/jobs/{released}/mitigate", json={"suppress": True}, headers=h["operator"]),
        "request": http.post("/releases", json={"job": unrequested, "product": "p3"}, headers=h["operator"]),
        "vote": stage.vote(pending_release),
        "fetch": http.get("/products/p1/artifacts/result.txt", headers=h["operator"]),
    }
    for door, answer in doors.items():
        assert answer.status_code == 423, (door, answer.status_code, answer.text)
        assert "frozen" in answer.json()["detail"], door
    stage.instance.worker(runner=fast_runner, worker_id="frozen").run_pending()
    assert http.get(f"/jobs/{queued}", headers=h["operator"]).json()["state"] == "queued"
    assert _actions_since(stage.instance, mark) == []  # not one intake, vote, delivery or start recorded
    assert http.get("/healthz").json()["frozen"]["since"]

    # Only the agency restarts the platform: the regulator stops, it does not operate; nobody else either.
    for who in ("regulator", "operator", "custodian"):
        refused = http.post("/platform/unfreeze", json={"reason": "我来解冻"}, headers=h[who])
        assert refused.status_code == 403, (who, refused.text)
    for who in ("operator", "custodian"):
        assert http.post("/platform/freeze", json={"reason": "x"}, headers=h[who]).status_code == 403
    thawed = http.post("/platform/unfreeze", json={"reason": "密钥已轮换 key rotated"}, headers=h["agency"])
    assert thawed.status_code == 200 and thawed.json()["frozen"] is False
    stage.instance.worker(runner=fast_runner, worker_id="thawed").run_pending()
    assert http.get(f"/jobs/{queued}", headers=h["operator"]).json()["state"] == "done"
    assert http.get("/products/p1/artifacts/result.txt", headers=h["operator"]).status_code == 200


def test_a_freeze_reason_cannot_carry_nul_controls_or_a_book(stage: Stage) -> None:
    """The reason is ledgered free text: a NUL (a 500 in PostgreSQL), a newline forging a second line,
    an ANSI escape or 100 kB are refused as 4xx; nothing is frozen by a refused request."""
    h = stage.headers["agency"]
    for reason in ("a\x00b", "line one\nplatform.unfrozen by demo-agency", "\x1b[2Jclear", "长" * 100_000, "   "):
        answer = stage.http.post("/platform/freeze", json={"reason": reason}, headers=h)
        assert 400 <= answer.status_code < 500, (reason[:20], answer.status_code)
    assert stage.http.get("/platform/freeze", headers=h).json()["frozen"] is False
    result = _cli(stage.instance.home, "freeze", "--reason", "a\x1b[31mred")
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_console_and_cli_doors_are_refused_while_frozen_never_a_500(
    instance: Instance, keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's submit, vote and download, and the CLI's submit, fetch and vote, all meet the freeze:
    a flash or exit 1 naming it, never a 500 or a traceback, and nothing recorded."""
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))
    stage = Stage(instance, keys)
    released = stage.done("print('p1')")
    release = stage.request(released, "p1")
    stage.vote(release)
    stage.vote(release, "agency2")
    pending = stage.request(stage.done("print('p2')"), "p2")
    instance.registry.freeze.freeze(reason="演练 drill", by=REGULATOR)
    mark = _head(instance)

    operator = console_client(instance, keys["operator"])
    csrf = csrf_of(operator, "/console/operator/jobs")
    form = {"csrf": csrf, "kind": "python", "datasets": "traffic", "scenario": SCENARIO, "code": "print(2)"}
    submitted = operator.post("/console/operator/jobs", data=form, follow_redirects=False)
    assert submitted.status_code == 303 and "job_refused" in submitted.headers["location"]
    download = operator.get("/console/operator/products/p1/artifacts/result.txt", follow_redirects=False)
    assert download.status_code == 303 and "not_delivered" in download.headers["location"]
    agency = console_client(instance, keys["agency"])
    csrf = csrf_of(agency, f"/console/agency/releases/{pending}")
    voted = agency.post(
        f"/console/agency/releases/{pending}/vote", data={"csrf": csrf, "decision": "approve"}, follow_redirects=False
    )
    assert voted.status_code == 303 and "vote_refused" in voted.headers["location"]

    code = tmp_path / "job.py"
    code.write_text("print(3)")
    key_file = tmp_path / "agency.key"
    key_file.write_text(keys["agency"])
    key_file.chmod(0o600)
    for args in (
        ["job", "submit", "--operator", OPERATOR, "--dataset", "traffic", "--kind", "python"]
        + ["--file", str(code), "--scenario", SCENARIO],
        ["product", "fetch", "p1", "--to", str(tmp_path / "out")],
        ["release", "approve", str(pending), "--key-file", str(key_file)],
    ):
        result = _cli(instance.home, *args)
        assert result.exit_code == 1 and "frozen" in result.output, (args[:2], result.output)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert [a for a, _ in _actions_since(instance, mark) if not a.startswith("auth.")] == []  # logins only


def test_a_freeze_committed_during_a_claim_is_never_overtaken_by_it(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, two transactions: a worker's claim has looked at the freeze when a regulator freezes.
    Either the claim finishes first (its ``job.started`` precedes ``platform.frozen``) or it sees the
    freeze and starts nothing; a job started after the freeze committed is the attack."""
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))
    instance, result = Instance.init(Settings(home=tmp_path / "home", database_url=pg_url))
    try:
        stage = Stage(instance, result.tokens)
        job = int(stage.submit().json()["job"])
        import sandbox.queue as queue_module

        looked, go = threading.Event(), threading.Event()
        real = queue_module.suspended_operators

        def slow_look(session: Any) -> Any:  # runs inside the claim, right after it read the freeze
            looked.set()
            go.wait(10)
            return real(session)

        monkeypatch.setattr(queue_module, "suspended_operators", slow_look)
        claimed: list[Any] = []
        claim = threading.Thread(target=lambda: claimed.append(instance.jobs.queue.claim("racer")))
        claim.start()
        assert looked.wait(10)
        froze = threading.Thread(target=lambda: instance.registry.freeze.freeze(reason="race", by=REGULATOR))
        froze.start()
        froze.join(1.5)  # with the freeze read under a lock, the freeze waits for the claim here
        go.set()
        claim.join(10)
        froze.join(10)
        actions = [a for a, _ in _actions_since(instance, -1) if a in ("job.started", "platform.frozen")]
        if claimed and claimed[0] is not None:
            assert actions == ["job.started", "platform.frozen"], actions
        else:
            assert actions == ["platform.frozen"]
            assert instance.jobs.show(job).state == "queued"
    finally:
        instance.close()
