"""Independent red team of issue 22's defences (SATRE v2): freeze, security events, CLI credentials,
backup and restore, TLS. Each test is one attack, written before the defences' own tests were read;
an attack that broke a defence is kept as the regression of its fix (in the module owning the rule):

- a worker's claim read the freeze without a lock: a freeze committed while a claim was under way let
  that job start after it (``job.started`` after ``platform.frozen`` in the ledger, PostgreSQL) — now the
  freeze is read under a share lock (``registry.freeze``); a fetch checked it only before its
  transaction, so its ``product.fetched`` is now decided under the same lock (``sandbox.release``);
- a mitigation asked while frozen ledgered ``scope.admitted`` before the freeze refused it
  (``operators.jobs``: the freeze is asked first, as for a submission);
- a job running when the platform froze finished and showed its operator its outputs and log excerpt
  (``sandbox.job_views.hold_of``: held while frozen, as for a suspended operator);
- a refusal in the console (a regulator pressing "unfreeze") was a flash redirect, never a security
  event, where the API's 403 was one (``app.api.security.mark_refused``, from ``Console.flash``);
- twenty forged tokens from one address folded that address's later events into an unnamed ``*``
  principal, so a principal could then be refused without end and never raise an alert; likewise a
  full window (``registry.security_events``: folding raises an ``events_folded`` alert);
- uvicorn believed ``X-Forwarded-For`` from any local process (``app.transport``: only behind a proxy);
- a CLI key file readable by everyone, owned by another account, or ``/dev/zero`` (read without end)
  was accepted (``app.cli.credentials``: the user's own regular file, 0600, at most 4 KiB);
- a tampered backup manifest chose scrypt costs of 4 GiB and minutes before its MAC was checked
  (``app.backup_archive``: the costs a reader accepts are bounded near the writer's);
- ``keyong serve --host localhost`` trusted the name, which the host's resolver may send anywhere
  (``app.transport``: every address it resolves to must be loopback).

The attacks that held are kept as tests too; ``test_residual_…`` names a risk left open on purpose.
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
from core import Actor
from operators import Role
from registry import SecurityEventKind, SecurityEvents, SecurityPolicy
from registry.security_models import SecurityEventRow
from tests.conftest import bearer, bearer_headers
from tests.console_support import ORIGIN, console_client, csrf_of, vote_shown
from tests.job_worker_proc import MARKERS_ENV, SCENARIO, fast_runner, licensed
from tests.recovery_support import confirm
from tests.totp_support import code_by_name, code_for, code_of, create_enrolled, enrol, login_form

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


def _refused(result: Any) -> bool:
    """A CLI refusal: exit 1 with the reason (``Output.fail``), not an exception escaping as a traceback."""
    return result.exit_code == 1 and isinstance(result.exception, SystemExit)


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
        self.keys["agency2"] = create_enrolled(instance.identity, "reviewer-2", Role.AGENCY)
        confirm(instance.identity, "reviewer-2")  # minted by the host: counts once an agency person confirmed it
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
    assert (
        stage.vote(int(http.get("/releases", headers=h["agency"]).json()[0]["release"]), "agency2").status_code == 200
    )
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
    assert _refused(result)


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
    shown = vote_shown(agency.get(f"/console/agency/releases/{pending}").text)  # the round and hashes seen (fix18)
    voted = agency.post(
        f"/console/agency/releases/{pending}/vote",
        data={"csrf": csrf, "decision": "approve", "file:result.txt": "approve", **shown},  # every file chosen
        follow_redirects=False,
    )
    assert voted.status_code == 303 and "vote_refused" in voted.headers["location"]

    code = tmp_path / "job.py"
    code.write_text("print(3)")
    key_file = tmp_path / "agency.key"
    key_file.write_text(keys["agency"])
    key_file.chmod(0o600)
    submit = ["job", "submit", "--operator", OPERATOR, "--dataset", "traffic", "--kind", "python"]
    for args in (
        [*submit, "--file", str(code), "--scenario", SCENARIO],
        ["product", "fetch", "p1", "--to", str(tmp_path / "out")],
        ["release", "approve", str(pending), "--key-file", str(key_file), "--totp", code_for(keys["agency"])],
    ):
        result = _cli(instance.home, *args)
        assert result.exit_code == 1 and "frozen" in result.output, (args[:2], result.output)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert [a for a, _ in _actions_since(instance, mark) if not a.startswith("auth.")] == []  # logins only


def test_a_job_finishing_during_a_freeze_shows_its_operator_nothing_until_unfrozen(
    instance: Instance, keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job running when the regulator freezes the platform finishes (the guard judges it; the agency sees
    all), but its output names, sizes, hashes and the guard's log excerpt are a channel out: they do not
    reach the operator while frozen, as they do not reach a suspended one (双鸭山 第六十一条, 第三十一条)."""
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))
    stage = Stage(instance, keys)
    job = int(stage.submit("print('mid-run')").json()["job"])

    def freezing_runner(*args: Any, **kwargs: Any) -> Any:
        instance.registry.freeze.freeze(reason="事件 incident mid-run", by=REGULATOR)
        return fast_runner(*args, **kwargs)

    instance.worker(runner=freezing_runner, worker_id="mid").run_pending()
    operator, agency = stage.headers["operator"], stage.headers["agency"]
    seen = stage.http.get(f"/jobs/{job}", headers=operator).json()
    assert seen["state"] == "done" and seen["outputs"] == [] and seen["log"] is None, seen
    assert "frozen" in seen["reason"]
    listed = [j for j in stage.http.get("/jobs", headers=operator).json() if j["job"] == job]
    assert listed and listed[0]["outputs"] == []
    assert stage.http.get(f"/jobs/{job}", headers=agency).json()["outputs"]  # the agency sees everything
    instance.registry.freeze.unfreeze(reason="resolved", by=AGENCY)
    assert stage.http.get(f"/jobs/{job}", headers=operator).json()["outputs"]


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
        import sandbox.job_claims as claims_module  # the claim rule's owner (both claims run it)

        looked, go = threading.Event(), threading.Event()
        real = claims_module.suspended_operators

        def slow_look(session: Any) -> Any:  # runs inside the claim, right after it read the freeze
            looked.set()
            go.wait(10)
            return real(session)

        monkeypatch.setattr(claims_module, "suspended_operators", slow_look)
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


# --- security events: evasion, injection, flood, secrets ----------------------------------------


def _flush(http: TestClient) -> None:
    http.app.state.security_buffer.flush()  # type: ignore[attr-defined]


def _forged(sub: str, **extra: Any) -> str:
    claims = {"sub": sub, "role": "agency", "jti": "x", "iat": 1, "exp": 4_000_000_000, **extra}
    return jwt.encode(claims, "not-the-instance-key-but-32-bytes-long!", algorithm="HS256")


def _event_rows(instance: Instance) -> list[SecurityEventRow]:
    with instance.registry.recorder.read() as session:
        return list(session.scalars(select(SecurityEventRow)))


def test_every_kind_of_refused_credential_is_recorded_over_the_api_and_the_console(
    instance: Instance, keys: dict[str, str]
) -> None:
    """Missing, garbage, forged, expired and logged-out tokens over the API; a forged and an ended
    cookie and a failed login in the console: each one is counted, with why (SATRE 2.5.03). A row
    aggregates a window and keeps the last reason, so each is written and read before the next."""
    http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    console = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    operator_key = keys["operator"]
    expired = instance.identity.tokens.issue(
        OPERATOR,
        Role.OPERATOR,
        key_id=operator_key.split("_")[1],
        now=instance.registry.config.now().replace(year=2020),
    ).token
    live = bearer(http, operator_key)
    assert http.post("/auth/logout", headers=live).status_code == 200

    def counted(client: TestClient, kind: str, why: str) -> None:
        _flush(client)
        with instance.registry.recorder.read() as session:
            rows = list(session.scalars(select(SecurityEventRow).where(SecurityEventRow.kind == kind)))
        latest = max(rows, key=lambda r: (r.last_at, r.id))
        assert why in latest.detail, (why, latest.detail)
        total = sum(r.count for r in rows)
        assert total == seen.get(kind, 0) + 1, (why, total)
        seen[kind] = total

    seen: dict[str, int] = {}
    for headers, why in (
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer garbage"}, "malformed token"),
        ({"Authorization": f"Bearer {_forged(OPERATOR)}"}, "signature does not verify"),
        ({"Authorization": f"Bearer {expired}"}, "token expired"),
        (live, "revoked"),
        ({"Authorization": f"Basic {operator_key}"}, "missing bearer token"),
    ):
        assert http.get("/me", headers=headers).status_code == 401
        counted(http, "token_rejected", why)
    for cookie, why in (
        (_forged(OPERATOR), "signature does not verify"),
        (expired, "token expired"),
        ("a.b.c", "malformed token"),
    ):
        console.cookies.set("keyong_console", cookie, path="/console")
        assert console.get("/console/operator", follow_redirects=False).status_code == 303
        counted(console, "token_rejected", why)
    console.cookies.clear()
    wrong = operator_key[:-1] + ("B" if operator_key.endswith("A") else "A")  # never the key itself
    assert console.post("/console/login", data={"api_key": wrong}, follow_redirects=False).status_code == 401
    counted(console, "login_failed", "unknown API key")


def test_no_key_secret_or_token_is_ever_stored_and_claimed_names_are_tamed(
    instance: Instance, keys: dict[str, str]
) -> None:
    """A key with a wrong secret, a real key pasted as a bearer token, a token whose ``sub`` carries a
    terminal escape, a newline forging a log line and 10 kB: what is stored names the owner or the
    claim, bounded and printable, and never holds a secret."""
    http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    real = keys["agency"]
    wrong_secret = real[:-6] + ("ZZZZZZ" if not real.endswith("ZZZZZZ") else "YYYYYY")
    assert http.post("/auth/token", json={"api_key": wrong_secret}).status_code == 401
    assert http.get("/me", headers={"Authorization": f"Bearer {real}"}).status_code == 401
    valid_token = bearer(http, keys["operator"])["Authorization"].split()[1]
    assert http.post("/auth/token", json={"api_key": valid_token}).status_code in (401, 422)  # a token is no key
    evil = "\x1b[2J\x1b]0;owned\x07evil\n2026-12-06 INFO login ok demo-regulator" + "A" * 10_000
    assert http.get("/me", headers={"Authorization": f"Bearer {_forged(evil)}"}).status_code == 401
    _flush(http)
    rows = _event_rows(instance)
    stored = json.dumps([[r.kind, r.source, r.principal, r.route, r.detail] for r in rows], ensure_ascii=False)
    for secret in (real.split("_", 2)[2], wrong_secret.split("_", 2)[2], valid_token, valid_token.split(".")[2]):
        assert secret not in stored
    assert "demo-agency" in {r.principal for r in rows}  # the key's owner is named, by its public id
    for row in rows:
        for value in (row.principal, row.source, row.route, row.detail):
            assert value.isprintable() and len(value) <= 200, value[:80]
    with instance.engine.connect() as connection:
        ledgered = " ".join(str(p) for p in connection.execute(text("SELECT payload FROM ledger_entries")).scalars())
    assert real.split("_", 2)[2] not in ledgered and valid_token not in ledgered


def test_folding_an_address_never_silences_a_principal_refused_without_end(
    instance: Instance, keys: dict[str, str]
) -> None:
    """Twenty forged tokens with invented names fill the address's share of the window; the operator's
    thirty refused freezes that follow fold into an unnamed ``*`` and no threshold counted them. An
    alert must still be raised: what can no longer be attributed is itself alarming."""
    http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    for i in range(20):
        assert http.get("/me", headers={"Authorization": f"Bearer {_forged(f'ghost-{i}')}"}).status_code == 401
    operator = bearer(http, keys["operator"])
    for _ in range(30):
        assert http.post("/platform/freeze", json={"reason": "probe"}, headers=operator).status_code == 403
    _flush(http)
    regulator = bearer(http, keys["regulator"])
    alerts = http.get("/security/alerts", params={"state": "open"}, headers=regulator).json()
    assert alerts, "thirty refusals after a folded address raised no alert"


def test_a_full_window_does_not_become_a_blind_spot_for_brute_force(instance: Instance) -> None:
    """Events from many invented addresses fill the window; a brute force on one principal afterwards
    folds into ``*``/``*``. The fold itself raises an alert (a small policy keeps this fast)."""
    events = SecurityEvents(
        instance.registry.recorder,
        instance.registry.config,
        SecurityPolicy(max_rows_per_window=12, max_rows_per_source=4),
    )
    for i in range(12):
        events.record(SecurityEventKind.LOGIN_FAILED, source=f"198.51.100.{i}", principal=f"p{i}", route="r")
    for _ in range(40):
        events.record(SecurityEventKind.LOGIN_FAILED, source="203.0.113.7", principal="demo-agency", route="r")
    assert len(_event_rows(instance)) <= 12 + len(SecurityEventKind)
    assert events.alerts(viewer=REGULATOR, state="open"), "a brute force hidden in a full window raised nothing"


def test_a_flood_of_invented_names_and_addresses_stays_bounded(instance: Instance, keys: dict[str, str]) -> None:
    """Thousands of failed logins, each a new key id and a new forged name: the table keeps its bound."""
    http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    for i in range(300):
        http.post("/auth/token", json={"api_key": f"ky_{i:016x}_{'A' * 43}"})
        http.get("/me", headers={"Authorization": f"Bearer {_forged(f'n{i}')}"})
    _flush(http)
    policy = instance.registry.security.policy
    assert len(_event_rows(instance)) <= policy.max_rows_per_window + len(SecurityEventKind)


def test_console_refusals_are_security_events_as_the_apis_403s_are(instance: Instance, keys: dict[str, str]) -> None:
    """The regulator presses "unfreeze" in the console (only the agency may): over the API that is a
    403 and an event; in the console it was a flash redirect and nothing recorded."""
    instance.registry.freeze.freeze(reason="drill", by=REGULATOR)
    regulator = console_client(instance, keys["regulator"])
    csrf = csrf_of(regulator, "/console/regulator/incidents")
    pressed = regulator.post(
        "/console/regulator/incidents/unfreeze", data={"csrf": csrf, "reason": "let me"}, follow_redirects=False
    )
    assert pressed.status_code == 303 and instance.registry.freeze.state().frozen
    _flush(regulator)
    refused = [r for r in _event_rows(instance) if r.kind == "forbidden"]
    assert [(r.principal, r.count) for r in refused] == [("demo-regulator", 1)], refused
    assert "incidents" in refused[0].route and "may not" in refused[0].detail


def test_only_the_regulator_reviews_and_acknowledges_and_a_note_cannot_forge_the_screen(
    instance: Instance, keys: dict[str, str]
) -> None:
    """Operators and custodians cannot read events; the agency reads but cannot acknowledge (nor over the
    console); an acknowledgement's note with a terminal escape does not reach the CLI's screen raw."""
    http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    for _ in range(6):
        http.post(
            "/auth/token", json={"api_key": keys["agency"][:-3] + ("xyz" if keys["agency"][-3:] != "xyz" else "abc")}
        )
    _flush(http)
    h = bearer_headers(http, keys)
    for who in ("operator", "custodian"):
        assert http.get("/security/events", headers=h[who]).status_code == 403
        assert http.get("/security/alerts", headers=h[who]).status_code == 403
    operator = console_client(instance, keys["operator"])
    assert operator.get("/console/regulator/security").status_code == 403
    assert operator.get("/console/agency/security").status_code == 403
    alerts = http.get("/security/alerts", headers=h["agency"]).json()
    assert alerts and alerts[0]["rule"] == "failed_logins_principal" and alerts[0]["key"] == "demo-agency"
    alert = alerts[0]["id"]
    for who in ("agency", "operator", "custodian"):
        acked = http.post(f"/security/alerts/{alert}/acknowledge", json={"note": "mine"}, headers=h[who])
        assert acked.status_code == 403, who
        assert http.post("/security/events/1/acknowledge", json={"note": "x"}, headers=h[who]).status_code == 403
    agency = console_client(instance, keys["agency"])
    assert agency.post(f"/console/regulator/security/alerts/{alert}/acknowledge", data={"note": "x"}).status_code == 403
    assert agency.post(f"/console/agency/security/alerts/{alert}/acknowledge", data={"note": "x"}).status_code in (
        404,
        405,
    )
    note = "ok\x1b[2J\x1b]0;pwned\x07"
    acked = http.post(f"/security/alerts/{alert}/acknowledge", json={"note": note}, headers=h["regulator"])
    assert acked.status_code in (200, 422)
    shown = _cli(instance.home, "security", "alerts")
    assert shown.exit_code == 0 and "\x1b]0;" not in shown.output and "\x1b[2J" not in shown.output


# --- CLI credentials: nobody acts as someone else through the host -------------------------------


@pytest.fixture
def pending(
    instance: Instance, keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Stage, int]:
    """A release awaiting its reviewers' votes."""
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))
    stage = Stage(instance, keys)
    return stage, stage.request(stage.done("print('r')"), "r1")


def _key_file(path: Path, credential: str, mode: int = 0o600) -> Path:
    path.write_text(credential + "\n")
    path.chmod(mode)
    return path


def _votes(instance: Instance) -> list[tuple[str, str]]:
    with instance.engine.connect() as connection:
        rows = connection.execute(text("SELECT actor, role FROM ledger_entries WHERE action = 'release.voted'")).all()
    return [(str(a), str(r)) for a, r in rows]


def test_a_cli_vote_takes_only_the_voters_own_live_agency_credential(
    pending: tuple[Stage, int], tmp_path: Path
) -> None:
    """Another reviewer's key with ``--reviewer``, no key at all, an operator's, a regulator's, a revoked
    key, an expired, a logged-out and a forged token: all exit 1 and no vote is ledgered; the voter's own
    key votes, ledgered as that voter."""
    stage, release = pending
    instance, keys = stage.instance, stage.keys
    home = instance.home
    spare = instance.identity.issue_api_key("reviewer-2").api_key
    instance.identity.revoke_api_key(spare.split("_")[1])
    confirm(instance.identity, "reviewer-2")  # the host issued it: held until a second person confirms
    agency_id = keys["agency"].split("_")[1]
    expired = instance.identity.tokens.issue(
        "demo-agency", Role.AGENCY, key_id=agency_id, now=instance.registry.config.now().replace(year=2020)
    ).token
    ended = bearer(stage.http, keys["agency"])
    stage.http.post("/auth/logout", headers=ended)
    refused = {
        "someone else's key": (["--reviewer", "reviewer-2"], {"KEYONG_API_KEY": keys["agency"]}),
        "no key": (["--reviewer", "reviewer-2"], {}),
        "an operator's key": ([], {"KEYONG_API_KEY": keys["operator"]}),
        "a regulator's key": ([], {"KEYONG_API_KEY": keys["regulator"]}),
        "a revoked key": ([], {"KEYONG_API_KEY": spare}),
        "an expired token": ([], {"KEYONG_API_KEY": expired}),
        "a logged-out token": ([], {"KEYONG_API_KEY": ended["Authorization"].split()[1]}),
        "a forged token": ([], {"KEYONG_API_KEY": _forged("reviewer-2")}),
        "garbage": ([], {"KEYONG_API_KEY": "ky_" + "0" * 16 + "_" + "x" * 43}),
    }
    for what, (extra, env) in refused.items():
        result = _cli(home, "release", "approve", str(release), *extra, env=env)
        assert _refused(result), (what, result.output, result.exception)
    assert _votes(instance) == []
    own = _key_file(tmp_path / "mine.key", keys["agency2"])
    voted = _cli(home, "release", "approve", str(release), "--key-file", str(own), "--totp", code_by_name("reviewer-2"))
    assert voted.exit_code == 0, voted.output
    assert _votes(instance) == [("reviewer-2", "agency")]


def test_a_key_file_others_can_read_or_another_account_owns_is_refused(
    pending: tuple[Stage, int], tmp_path: Path
) -> None:
    """A key file of mode 644 (anyone on the host may have used it), one owned by another account (another
    person's key, readable only because the host is root), ``/dev/zero`` (read without end) and a
    directory are refused before any vote; none was counted."""
    stage, release = pending
    home, agency = stage.instance.home, stage.keys["agency"]
    shared = _key_file(tmp_path / "shared.key", agency, 0o644)
    theirs = _key_file(tmp_path / "theirs.key", agency)
    if os.geteuid() == 0:
        os.chown(theirs, 65534, 65534)
    files = {"mode 644": shared, "/dev/zero": Path("/dev/zero"), "a directory": tmp_path}
    if os.geteuid() == 0:
        files["another account's"] = theirs
    for what, path in files.items():
        started = time.monotonic()
        result = _cli(home, "release", "approve", str(release), "--key-file", str(path))
        refused = result.exit_code in (1, 2) and isinstance(result.exception, SystemExit)  # 2: a usage error
        assert refused, (what, result.output, result.exception)
        assert time.monotonic() - started < 10, what
    assert "chmod 600" in _cli(home, "release", "approve", str(release), "--key-file", str(shared)).output
    assert _votes(stage.instance) == []
    linked = tmp_path / "link.key"
    linked.symlink_to(_key_file(tmp_path / "own.key", agency))
    linked_vote = _cli(home, "release", "approve", str(release), "--key-file", str(linked), "--totp", code_for(agency))
    assert linked_vote.exit_code == 0, linked_vote.output
    assert _votes(stage.instance) == [("demo-agency", "agency")]


def test_host_acts_for_an_operator_name_the_host_and_a_borrowed_operator_key_is_refused(
    pending: tuple[Stage, int], tmp_path: Path
) -> None:
    """Without a key the host submits for an operator and the ledger's actor is the host, the operator
    only the subject; another operator's key cannot submit, fetch or request for this one."""
    stage, _ = pending
    instance = stage.instance
    other = instance.identity.create_principal("other-ops", Role.OPERATOR).api_key
    code = tmp_path / "job.py"
    code.write_text("print(4)")
    submit = ["job", "submit", "--operator", OPERATOR, "--dataset", "traffic", "--kind", "python"]
    submit += ["--file", str(code), "--scenario", SCENARIO, "--json"]
    mark = _head(instance)
    by_host = _cli(instance.home, *submit)
    assert by_host.exit_code == 0, by_host.output
    with instance.engine.connect() as connection:
        actor, role, payload = connection.execute(
            text("SELECT actor, role, payload FROM ledger_entries WHERE action = 'job.queued' AND seq > :s"),
            {"s": mark},
        ).one()
    assert str(actor).startswith("host:") and role != "operator" and json.loads(payload)["operator"] == OPERATOR
    borrowed = _cli(instance.home, *submit, env={"KEYONG_API_KEY": other})
    assert borrowed.exit_code == 1 and "other-ops" in borrowed.output
    fetch = _cli(instance.home, "product", "fetch", "r1", "--to", str(tmp_path / "o"), env={"KEYONG_API_KEY": other})
    assert fetch.exit_code == 1


def test_a_key_the_host_mints_for_a_reviewer_and_a_factor_it_resets_do_not_vote_until_a_second_person_confirms(
    pending: tuple[Stage, int], tmp_path: Path
) -> None:
    """Formerly a residual risk (SATRE 3.2.01): the host issues reviewer-2 a key, resets its second factor and
    enrols a new one with the minted key. The vote is now refused (the person is held), and so is each way out the
    host could take alone: the held person confirming itself, the host confirming without a key. Only another
    agency person's own key and code clear the hold (ledgered); the trail shows every step (issue 22)."""
    stage, release = pending
    instance = stage.instance
    minted = _cli(instance.home, "key", "issue", "reviewer-2", "--json")
    assert minted.exit_code == 0, minted.output
    key = json.loads(minted.output)["api_key"]
    key_file = _key_file(tmp_path / "k", key)
    alone = _cli(instance.home, "release", "approve", str(release), "--key-file", str(key_file))
    assert alone.exit_code == 1 and "second factor" in alone.output  # the minted key without the person's phone
    reset = _cli(instance.home, "principal", "totp-reset", "reviewer-2", "--reason", "lost phone")
    assert reset.exit_code == 0, reset.output
    secret = enrol(instance.identity, key)  # whoever holds the minted key enrols a new factor
    voted = _cli(
        instance.home, "release", "approve", str(release), "--key-file", str(key_file), "--totp", code_of(secret)
    )
    assert _refused(voted) and "second person" in voted.output, voted.output
    confirm_args = ["principal", "confirm-recovery", "reviewer-2", "--reason", "it is me"]
    itself = _cli(instance.home, *confirm_args, "--key-file", str(key_file), "--totp", code_of(secret))
    assert _refused(itself) and "second person" in itself.output
    by_host = _cli(instance.home, *confirm_args)
    assert _refused(by_host) and "host" in by_host.output
    over_api = stage.http.post(f"/releases/{release}/votes", json={"decision": "approve"},
                               headers=bearer(stage.http, key))  # fmt: skip
    assert over_api.status_code == 403 and _votes(instance) == []

    agency_file = _key_file(tmp_path / "agency.key", stage.keys["agency"])
    confirmed = _cli(
        instance.home, *confirm_args[:3], "--reason", "本人到场, 新手机已核实",
        "--key-file", str(agency_file), "--totp", code_by_name("demo-agency"),
    )  # fmt: skip
    assert confirmed.exit_code == 0, confirmed.output
    voted = _cli(
        instance.home, "release", "approve", str(release), "--key-file", str(key_file), "--totp", code_of(secret)
    )
    assert voted.exit_code == 0, voted.output
    with instance.engine.connect() as connection:
        trail = connection.execute(
            text(
                "SELECT action, actor FROM ledger_entries "
                "WHERE subject = 'principal:reviewer-2' OR action = 'release.voted' ORDER BY seq"
            )
        ).all()
    actions = [(str(a), str(b)) for a, b in trail]
    issued = next(i for i, (a, _) in enumerate(actions) if a == "principal.key_issued")
    assert actions[issued][1].startswith("host:")
    assert [a for a, _ in actions[issued:] if a != "auth.token_issued"] == [
        "principal.key_issued",
        "principal.recovery_held",
        "principal.totp_reset",
        "principal.recovery_held",
        "principal.totp_enrolled",
        "principal.totp_confirmed",
        "principal.recovery_confirmed",
        "release.voted",
    ]
    assert ("principal.recovery_confirmed", "demo-agency") in actions and actions[-1] == ("release.voted", "reviewer-2")


def test_a_reviewer_the_host_mints_does_not_count_until_an_agency_person_confirms_it(
    pending: tuple[Stage, int], tmp_path: Path
) -> None:
    """A sybil: the host creates reviewer-3 (agency, with its factor: it holds key and code). Its vote, by CLI or
    API, is refused as unconfirmed; nothing is counted. (The principals of ``keyong init`` are the bootstrap
    exception; ``tests/test_recovery.py`` attacks the confirmation itself.)"""
    stage, release = pending
    instance = stage.instance
    sybil = create_enrolled(instance.identity, "reviewer-3", Role.AGENCY)
    sybil_file = _key_file(tmp_path / "sybil.key", sybil)
    by_cli = _cli(instance.home, "release", "approve", str(release), "--key-file", str(sybil_file),
                  "--totp", code_by_name("reviewer-3"))  # fmt: skip
    assert _refused(by_cli) and "unconfirmed" in by_cli.output
    by_api = stage.http.post(f"/releases/{release}/votes", json={"decision": "approve"},
                             headers=bearer(stage.http, sybil))  # fmt: skip
    assert by_api.status_code == 403 and "unconfirmed" in by_api.text
    assert _votes(instance) == []
    listed = _cli(instance.home, "principal", "list", "--json")
    assert any(p["name"] == "reviewer-3" and p["recovery_hold"] for p in json.loads(listed.output)["principals"])


# --- backup and restore ---------------------------------------------------------------------------

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def archive(instance: Instance, tmp_path: Path) -> Path:
    from app.backup import create_backup

    product = instance.home / "products" / "p" / "result.csv"
    product.parent.mkdir(parents=True)
    product.write_text("区县,行程\n尖山区,10\n")  # a home file beside the database and the secrets
    out = tmp_path / "home.tar"
    create_backup(instance, out, PASSPHRASE)
    return out


def _rewrite(source: Path, target: Path, change: Any) -> Path:
    """A copy of the tar ``source`` whose members ``change(info, data)`` may alter, drop (None) or add to."""
    with tarfile.open(source, "r:") as old, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as new:
        for info in old:
            data = old.extractfile(info).read()  # type: ignore[union-attr]
            for out_info, out_data in change(info, data) or []:
                new.addfile(out_info, None if out_data is None else __import__("io").BytesIO(out_data))
    return target


def _restore(archive: Path, home: Path, passphrase: str = PASSPHRASE) -> Any:
    return CliRunner().invoke(
        cli, ["--home", str(home), "backup", "restore", str(archive)], env={"KEYONG_BACKUP_PASSPHRASE": passphrase}
    )


def test_a_backup_shows_no_secret_no_key_and_no_row_in_clear(
    instance: Instance, keys: dict[str, str], archive: Path
) -> None:
    """Every secret file of the home, the demo principals' API keys and the database's pages are
    nowhere in the archive's bytes, raw or base64; the archive is the owner's alone (0600)."""
    import base64

    blob = archive.read_bytes()
    assert archive.stat().st_mode & 0o077 == 0
    secrets = [p for p in (instance.home / "secrets").rglob("*") if p.is_file()]
    assert secrets
    for path in secrets:
        raw = path.read_bytes().strip()
        for needle in (raw, base64.b64encode(raw)):
            assert needle[:24] not in blob, path.name
    for key in keys.values():
        assert key.encode() not in blob and key.split("_", 2)[2].encode() not in blob
    assert b"SQLite format 3" not in blob and b"ledger_entries" not in blob
    assert "尖山区".encode() not in blob


def test_a_wrong_passphrase_or_a_flipped_bit_restores_nothing(archive: Path, tmp_path: Path) -> None:
    """A wrong passphrase, a bit flipped in a file member, in the manifest or in its MAC: exit 1, no home."""
    target = tmp_path / "restored"
    wrong = _restore(archive, target, "not the passphrase at all")
    assert wrong.exit_code == 1 and "passphrase" in wrong.output and not target.exists()

    def flip(which: str) -> Any:
        def change(info: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
            if info.name == which or (which == "home/" and info.name.startswith("home/") and not flipped):
                flipped.append(info.name)
                data = data[:-1] + bytes([data[-1] ^ 1])
            return [(info, data)]

        flipped: list[str] = []
        return change

    for which in ("home/", "database/keyong.db", "manifest.json", "manifest.mac", "secrets.enc"):
        tampered = _rewrite(archive, tmp_path / f"t-{which.replace('/', '_')}.tar", flip(which))
        result = _restore(tampered, target)
        assert _refused(result), (which, result.output, result.exception)
        assert not target.exists(), which
    assert not list(tmp_path.glob(".restored.restore-*"))  # no staging left behind


def test_members_that_climb_out_link_out_or_hide_are_refused_before_anything_is_written(
    archive: Path, tmp_path: Path
) -> None:
    """``home/../../x``, ``/abs``, a symlink, a hard link, a duplicate member, a device: refused with the
    name, and nothing lands outside (or inside) the target."""
    target = tmp_path / "nested" / "restored"
    escapes: dict[str, Any] = {}
    for name in ("home/../../escaped", "/tmp/escaped-abs", "home/./x", "home//x"):
        info = tarfile.TarInfo(name)
        info.size = 4
        escapes[name] = (info, b"evil")
    for kind, link in ((tarfile.SYMTYPE, "/etc/passwd"), (tarfile.LNKTYPE, "manifest.json"), (tarfile.CHRTYPE, "")):
        info = tarfile.TarInfo(f"home/special-{kind!r}")
        info.type, info.linkname = kind, link
        escapes[info.name] = (info, None)
    for name, (info, data) in escapes.items():

        def change(old: tarfile.TarInfo, old_data: bytes, add: Any = (info, data)) -> list[Any]:
            return [(old, old_data), add] if old.name == "manifest.mac" else [(old, old_data)]

        crafted = _rewrite(archive, tmp_path / "crafted.tar", change)
        result = _restore(crafted, target)
        assert _refused(result), (name, result.output, result.exception)
        assert not target.exists() and not (tmp_path / "escaped").exists(), name
        crafted.unlink()
    duplicate = _rewrite(
        archive, tmp_path / "dup.tar", lambda i, d: [(i, d), (i, d)] if i.name == "secrets.enc" else [(i, d)]
    )
    assert _restore(duplicate, target).exit_code == 1 and not target.exists()


def test_a_restore_never_lands_on_a_live_home(instance: Instance, archive: Path, tmp_path: Path) -> None:
    """Over the live home, over any non-empty directory, through a symlink to an empty one: refused and
    the live home untouched; into an absent path it restores and the ledger verifies."""
    before = sorted(p.name for p in instance.home.iterdir())
    assert _restore(archive, instance.home).exit_code == 1
    assert sorted(p.name for p in instance.home.iterdir()) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    link = tmp_path / "link"
    link.symlink_to(empty)
    assert _restore(archive, link).exit_code == 1 and not any(empty.iterdir())
    restored = _restore(archive, tmp_path / "fresh")
    assert restored.exit_code == 0, restored.output
    clone = Instance.open(Settings(home=tmp_path / "fresh"))
    try:
        assert clone.ledger.verify().ok and clone.instance_id == instance.instance_id  # a restore is the same instance
    finally:
        clone.close()


def test_a_tampered_manifest_cannot_make_the_restore_spend_gigabytes_and_minutes_before_its_mac(
    archive: Path, tmp_path: Path
) -> None:
    """The key-derivation costs are read from the manifest before its MAC can be checked (the MAC's key
    comes from them): scrypt at n=2^20, r=32, p=16 is 4 GiB for each of 16 passes. Refused at once."""

    def costly(info: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if info.name == "manifest.json":
            manifest = json.loads(data)
            manifest["kdf"].update({"n": 2**20, "r": 32, "p": 16})
            data = json.dumps(manifest).encode()
            info.size = len(data)
        return [(info, data)]

    started = time.monotonic()
    result = _restore(_rewrite(archive, tmp_path / "costly.tar", costly), tmp_path / "r")
    assert result.exit_code == 1 and "out of bounds" in result.output, result.output
    assert time.monotonic() - started < 5


# --- TLS: no plain HTTP off the machine ------------------------------------------------------------


def test_no_address_off_the_machine_is_served_in_clear() -> None:
    """Wildcards, LAN and link-local addresses, IPv4-mapped IPv6, short forms, an empty host (uvicorn's
    every interface), other names and ``localhost.``: refused without TLS; loopback forms pass."""
    from app.transport import TransportError, plan_transport

    off_machine = ["0.0.0.0", "::", "[::]", "", " ", "0", "192.168.1.10", "10.0.0.1", "fe80::1", "::ffff:10.0.0.1"]
    off_machine += ["127.1", "2130706433", "example.org", "localhost.", "localhost.localdomain", "127.0.0.1.nip.io"]
    for host in off_machine:
        with pytest.raises(TransportError):
            plan_transport(host, 8000)
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert not plan_transport(host, 8000).secure


def test_localhost_that_resolves_off_the_machine_is_not_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose ``/etc/hosts`` maps localhost to a LAN address (or to both): uvicorn would bind it."""
    from app.transport import TransportError, plan_transport

    def resolving(*addresses: str) -> Any:
        def getaddrinfo(host: str, *_: Any, **__: Any) -> list[Any]:
            assert host == "localhost"
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in addresses
            ]

        return getaddrinfo

    for addresses in (("10.0.0.5",), ("127.0.0.1", "192.168.1.2"), ()):
        monkeypatch.setattr(socket, "getaddrinfo", resolving(*addresses))
        with pytest.raises(TransportError):
            plan_transport("localhost", 8000)
    monkeypatch.setattr(socket, "getaddrinfo", resolving("127.0.0.1", "::1"))
    assert plan_transport("localhost", 8000).host == "localhost"


def test_a_local_process_cannot_choose_the_address_security_events_record() -> None:
    """uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 unless told otherwise: served on loopback (or
    with its own TLS) any local process could spread its refusals over invented addresses. Only behind a
    TLS proxy are the proxy's headers believed."""
    from uvicorn.config import Config

    from app.transport import plan_transport

    for transport, believed in ((plan_transport("127.0.0.1", 8000), False), (plan_transport("::1", 8000), False)):
        config = Config(app=lambda *_: None, **transport.uvicorn_options())
        assert config.proxy_headers is believed
    behind = plan_transport("10.0.0.5", 8000, behind_tls_proxy=True)
    assert Config(app=lambda *_: None, **behind.uvicorn_options()).proxy_headers is True


def test_serve_refuses_before_it_opens_the_home_or_binds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``keyong serve --host 0.0.0.0`` (and a lone --tls-cert) exit 1 with the reason; uvicorn never runs."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("uvicorn ran"))
    for extra in (["--host", "0.0.0.0"], ["--host", "::"], ["--tls-cert", str(tmp_path / "c.pem")]):
        result = _cli(tmp_path / "never", "serve", "--workers", "0", *extra)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (extra, result.exception)
        assert "error:" in result.output, result.output  # the reason in one line, not a traceback
    assert not (tmp_path / "never").exists()


def test_cookies_and_hsts_follow_the_transport(
    instance: Instance, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served over TLS: the session cookie is Secure, HttpOnly, SameSite=Strict and every answer carries
    HSTS; over plain loopback HTTP no HSTS is sent (a browser would ignore it; it claims what is not)."""
    plain = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    login = plain.post("/console/login", data=login_form(keys["agency"]), follow_redirects=False)
    assert "strict-transport-security" not in login.headers
    assert "; secure" not in login.headers["set-cookie"].lower()
    monkeypatch.setattr(instance, "settings", instance.settings.model_copy(update={"transport_secure": True}))
    tls = TestClient(
        create_app(instance=instance), base_url="https://testserver", headers={"origin": "https://testserver"}
    )
    login = tls.post("/console/login", data=login_form(keys["agency"]), follow_redirects=False)
    cookie = login.headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    for answer in (login, tls.get("/healthz"), tls.get("/me")):
        assert answer.headers["strict-transport-security"].startswith("max-age=")
