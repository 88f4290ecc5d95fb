"""Independent red team of issue 22's defences not attacked before: the second factor (TOTP), people's
standing, encryption at rest and crypto-shredding, the custodians' egress sign-off and delegation, and
retention's purge. Each test is one attack, written from the code and docs/satre.md before the
defences' own tests were read; an attack that broke a defence is kept as the regression of its fix:

- **TOTP brute force** (RFC 4226 §7.3, RFC 6238 §5.2): a thief holding an API key could try every
  six-digit code without limit (three of a million accepted per try, one step of skew either way), so
  about 330 000 requests found a code. Now :data:`operators.second_factor.MAX_FAILURES` wrong codes in a
  row lock the factor for an exponentially growing number of 30 s steps (capped at an hour); a locked
  factor refuses every code, the right one too, and says how long to wait; a right code ends the run.
- **A delegation withdrawn or expired before the decision** still spared the custodian's sign-off of a
  release requested while it was live (the snapshot was final). SATRE 3.1.06 asks that egress be
  decided by the asset owner or its delegate *when it happens*: now the decision (``settle``) asks the
  delegations again and a dataset whose delegation is no longer live needs its custodian's sign-off
  (``sandbox.release_review``), ledgered as ``release.signoff_required``.
- **A custodian of another organisation purged (or set the retention of) a dataset** that was not its
  own: any custodian destroyed any department's data. Now only a custodian of the dataset (the
  egress rule's :func:`registry.is_custodian`) or the host does (``registry.retention``).

The attacks that held are kept as tests too; ``test_residual_…`` names a risk left open on purpose.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from app import Instance, Settings, create_app
from core import Actor, NotFoundError, PermissionDeniedError, RegistryError
from operators import STEP_SECONDS, AuthenticationError, IdentityError, Role, totp_code
from operators.models import PrincipalRow, TotpRow
from registry import person_standing
from registry.egress import EgressDelegationRow
from registry.people import Person, publish_terms, record_identity_check, record_terms, record_training
from tests.job_worker_proc import MARKERS_ENV, SCENARIO, fast_runner, licensed
from tests.totp_support import CLOCK, code_of, create_enrolled, decode

pytestmark = pytest.mark.attack

TRANSPORT = "双鸭山市交通运输局"  # the provider of tests.test_registry_licences.add_dataset's datasets
HEALTH = "双鸭山市卫生健康委员会"


@pytest.fixture
def database_url() -> None:
    """SQLite unless a test asks for PostgreSQL too."""
    return None


def _ledger_text(instance: Instance) -> str:
    with instance.engine.connect() as connection:
        rows = connection.execute(text("SELECT actor, action, subject, payload FROM ledger_entries")).all()
    return "\n".join(json.dumps([str(c) for c in row], ensure_ascii=False) for row in rows)


def _actions(instance: Instance, action: str) -> list[dict[str, Any]]:
    with instance.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT payload FROM ledger_entries WHERE action = :a ORDER BY seq"), {"a": action}
        ).all()
    return [json.loads(r[0]) if isinstance(r[0], str) else dict(r[0]) for r in rows]


# --- the second factor ----------------------------------------------------------------------------


class Person2FA:
    """A principal with a confirmed factor, and codes of any step relative to the verifier's clock."""

    def __init__(self, instance: Instance, name: str = "rt-alice", role: Role = Role.OPERATOR) -> None:
        self.instance = instance
        self.name = name
        self.key = create_enrolled(instance.identity, name, role)
        from tests.totp_support import NAMES

        self.secret = NAMES[name]

    def code(self, offset_steps: int = 0) -> str:
        """The code of the step ``offset_steps`` from the verifier's current step (clock not moved)."""
        return totp_code(decode(self.secret), CLOCK[0].now + offset_steps * STEP_SECONDS)

    def fresh_step(self) -> None:
        """Move the verifier's clock a few steps on, past any step used before."""
        CLOCK[0].step(3)

    def wrong(self) -> str:
        """A code that is none of the accepted (or the "expired") steps' codes."""
        near = {self.code(s) for s in range(-12, 3)}
        return next(c for c in (f"{(418_273 + 7_919 * n) % 1_000_000:06d}" for n in range(100)) if c not in near)


@pytest.fixture
def alice(initialised: tuple[Instance, dict[str, str]]) -> Person2FA:
    return Person2FA(initialised[0])


def test_a_code_is_spent_once_even_within_its_window(alice: Person2FA) -> None:
    """The same code twice in its 30 s window: the second exchange is refused (RFC 6238 §5.2)."""
    identity = alice.instance.identity
    alice.fresh_step()
    code = alice.code()
    identity.exchange(alice.key, code)
    with pytest.raises(AuthenticationError, match="already used"):
        identity.exchange(alice.key, code)


def test_codes_beyond_one_step_of_skew_are_refused_and_older_ones_never_after_newer(alice: Person2FA) -> None:
    """Two steps early or late is refused; one step either way is accepted (§6), but once a later step was
    accepted an earlier, never used code is refused (a code recorded an instant ago cannot follow it)."""
    identity = alice.instance.identity
    alice.fresh_step()
    for offset in (2, -2, 5, -9):
        with pytest.raises(AuthenticationError):
            identity.exchange(alice.key, alice.code(offset))
    identity.exchange(alice.key, alice.code(1))  # the authenticator's clock a step ahead
    for offset in (0, -1):
        with pytest.raises(AuthenticationError, match="already used"):
            identity.exchange(alice.key, alice.code(offset))


def test_an_api_key_alone_never_obtains_a_token(initialised: tuple[Instance, dict[str, str]]) -> None:
    """No code, a blank one, a seventh digit, full-width digits, a pending (unconfirmed) factor, none at
    all: 401 over the API, refused in the service, and each a failed login in the security events."""
    instance = initialised[0]
    http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    confirmed = Person2FA(instance, "rt-bob")
    pending = instance.identity.create_principal("rt-carol", Role.OPERATOR).api_key
    pending_secret = instance.identity.enrol_totp(pending).secret
    bare = instance.identity.create_principal("rt-dave", Role.OPERATOR).api_key
    confirmed.fresh_step()
    right = confirmed.code()
    for body in (
        {"api_key": confirmed.key},
        {"api_key": confirmed.key, "totp": ""},
        {"api_key": confirmed.key, "totp": right + "0"},
        {"api_key": confirmed.key, "totp": right.translate(str.maketrans("0123456789", "０１２３４５６７８９"))},
        {"api_key": confirmed.key, "totp": "-" + right[1:]},
        {"api_key": pending, "totp": code_of(pending_secret)},
        {"api_key": bare, "totp": "000000"},
    ):
        answer = http.post("/auth/token", json=body)
        assert answer.status_code in (401, 422), (body, answer.status_code, answer.text)
        assert "access_token" not in answer.text
    with pytest.raises(AuthenticationError):
        instance.identity.exchange(pending, None)
    http.app.state.security_buffer.flush()
    with instance.engine.connect() as connection:
        refused = connection.execute(
            text("SELECT principal FROM security_events WHERE kind = 'login_failed'")
        ).scalars().all()
    assert {"rt-bob", "rt-carol", "rt-dave"} <= set(refused)


def test_enrolment_cannot_be_hijacked(initialised: tuple[Instance, dict[str, str]]) -> None:
    """Another principal's key enrols only its own factor; a confirmed factor is not replaced by enrolling
    again (409 over the API), nor reset by its owner or by an operator; the console's login with a key of a
    confirmed principal and no code shows no new secret."""
    instance, keys = initialised
    victim = Person2FA(instance, "rt-victim")
    http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    again = http.post("/auth/totp/enrol", json={"api_key": victim.key})
    assert again.status_code == 409, again.text
    assert "secret" not in again.json()
    with pytest.raises(IdentityError):
        instance.identity.enrol_totp(victim.key)
    # The operator's own key enrols the operator's factor, never the victim's (the name comes from the key).
    mine = http.post("/auth/totp/enrol", json={"api_key": keys["operator"]})
    assert mine.status_code == 409 or mine.json()["principal"] == "demo-operator"
    from operators import Principal

    for by in (Principal("rt-victim", Role.OPERATOR), Principal("demo-operator", Role.OPERATOR)):
        with pytest.raises((PermissionDeniedError, IdentityError)):
            instance.identity.reset_totp("rt-victim", by=by, reason="lost phone")
    with pytest.raises((PermissionDeniedError, IdentityError)):
        instance.identity.reset_totp("demo-agency", by=Principal("demo-agency", Role.AGENCY), reason="mine")
    victim.fresh_step()
    instance.identity.exchange(victim.key, victim.code())  # the victim's factor still works, unchanged
    # The console: a confirmed principal's key without a code is a failed login, never an enrolment page.
    from tests.console_support import ORIGIN

    page = http.post("/console/login", data={"api_key": victim.key, "totp": ""}, headers={"Origin": ORIGIN})
    assert page.status_code == 401
    assert "otpauth://" not in page.text and victim.secret not in page.text


def test_a_sealed_factor_moved_onto_another_principal_does_not_open(initialised: tuple[Instance, Any]) -> None:
    """Copying the attacker's sealed secret onto the victim's row (a database write) gives no factor: the
    secret is sealed with the principal's name as associated data."""
    instance = initialised[0]
    attacker, victim = Person2FA(instance, "rt-mallory"), Person2FA(instance, "rt-trent")
    with instance.engine.begin() as connection:
        ids = dict(connection.execute(select(PrincipalRow.name, PrincipalRow.id)).all())
        sealed = connection.execute(
            select(TotpRow.sealed_secret).where(TotpRow.principal_id == ids["rt-mallory"])
        ).scalar_one()
        connection.execute(
            update(TotpRow).where(TotpRow.principal_id == ids["rt-trent"]).values(sealed_secret=sealed)
        )
    attacker.fresh_step()
    with pytest.raises(AuthenticationError, match="does not open"):
        instance.identity.exchange(victim.key, attacker.code())


def test_brute_forcing_the_code_locks_the_factor(initialised: tuple[Instance, dict[str, str]]) -> None:
    """A thief with the key tries codes: after a run of wrong ones, even the right code is refused until the
    lock ends (RFC 4226 §7.3), over the API too (401 with the wait, a failed login each), and the lock
    grows; the right code after the lock opens and ends the run. (Broke: nothing limited the tries.)"""
    from operators.second_factor import MAX_FAILURES

    instance = initialised[0]
    alice = Person2FA(instance)
    identity = instance.identity
    alice.fresh_step()
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthenticationError, match="wrong"):
            identity.exchange(alice.key, alice.wrong())
    with pytest.raises(AuthenticationError, match="too many wrong"):
        identity.exchange(alice.key, alice.code())  # the right code, refused while locked
    http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    locked = http.post("/auth/token", json={"api_key": alice.key, "totp": alice.code()})
    assert locked.status_code == 401 and "too many wrong" in locked.json()["detail"]
    CLOCK[0].step(2)  # the first lock is one step: over now
    with pytest.raises(AuthenticationError, match="wrong"):
        identity.exchange(alice.key, alice.wrong())  # one more wrong: locked again, longer
    CLOCK[0].step(2)
    with pytest.raises(AuthenticationError, match="too many wrong"):
        identity.exchange(alice.key, alice.code())
    CLOCK[0].step(3)
    identity.exchange(alice.key, alice.code())  # the lock is over: the right code opens, the run ends
    CLOCK[0].step(1)
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(AuthenticationError, match="wrong"):
            identity.exchange(alice.key, alice.wrong())
    identity.exchange(alice.key, alice.code())  # fewer than the limit: not locked
    # Nothing about the codes is in the ledger, and the row keeps no code.
    assert alice.code() not in _ledger_text(instance).replace(alice.key, "")


def test_brute_force_through_the_cli_and_confirmation_counts_too(initialised: tuple[Instance, Any]) -> None:
    """The CLI's ``--totp`` (``check_totp``) and the confirmation of a pending factor are doors to the same
    factor: wrong codes there lock it too."""
    from operators.second_factor import MAX_FAILURES

    instance = initialised[0]
    alice = Person2FA(instance, "rt-cli")
    alice.fresh_step()
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthenticationError):
            instance.identity.check_totp("rt-cli", alice.wrong())
    with pytest.raises(AuthenticationError, match="too many wrong"):
        instance.identity.exchange(alice.key, alice.code())
    pending = instance.identity.create_principal("rt-pending", Role.OPERATOR).api_key
    secret = instance.identity.enrol_totp(pending).secret
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthenticationError):
            instance.identity.confirm_totp(pending, "000000" if code_of(secret) != "000000" else "000001")
    with pytest.raises(AuthenticationError, match="too many wrong"):
        instance.identity.confirm_totp(pending, code_of(secret))


def test_a_refused_code_is_a_failed_login_without_the_code(initialised: tuple[Instance, Any]) -> None:
    """Each refused code over the API is a ``login_failed`` security event naming the principal, never
    holding the key's secret or the code (SATRE 2.5.03)."""
    instance = initialised[0]
    alice = Person2FA(instance, "rt-evented")
    http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    alice.fresh_step()
    wrong = alice.wrong()
    assert http.post("/auth/token", json={"api_key": alice.key, "totp": wrong}).status_code == 401
    buffer = getattr(http.app.state, "security_buffer", None)
    if buffer is not None:
        buffer.flush()
    with instance.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM security_events")).mappings().all()
    failed = [r for r in rows if r["kind"] == "login_failed" and r["principal"] == "rt-evented"]
    assert failed, rows
    dump = json.dumps([[r["principal"], r["route"], r["detail"], r["source"]] for r in rows], default=str)
    assert wrong not in dump and alice.key.split("_")[2] not in dump


def test_the_totp_secret_leaks_nowhere(initialised: tuple[Instance, dict[str, str]]) -> None:
    """After enrolment, confirmation, logins and a reset: the base32 secret (and its raw bytes) are in no
    ledger entry, no security event, no principal listing (API and CLI), no database column in clear, and
    the enrolment response is ``no-store``."""
    instance, keys = initialised
    http = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    new = instance.identity.create_principal("rt-secret", Role.OPERATOR).api_key
    enrolled = http.post("/auth/totp/enrol", json={"api_key": new})
    assert enrolled.status_code == 201 and enrolled.headers["cache-control"] == "no-store"
    secret = enrolled.json()["secret"]
    assert http.post("/auth/totp/confirm", json={"api_key": new, "totp": code_of(secret)}).status_code == 200
    token = http.post("/auth/token", json={"api_key": new, "totp": code_of(secret)})
    assert token.status_code == 200
    http.post("/auth/token", json={"api_key": new, "totp": "123456"})
    from tests.totp_support import code_for, remember

    remember(keys["agency"], __import__("tests.totp_support", fromlist=["NAMES"]).NAMES["demo-agency"])
    agency = http.post("/auth/token", json={"api_key": keys["agency"], "totp": code_for(keys["agency"])})
    bearer = {"Authorization": f"Bearer {agency.json()['access_token']}"}
    listing = http.get("/principals", headers=bearer).text
    reset = http.post("/principals/rt-secret/totp/reset", json={"reason": "lost phone"}, headers=bearer)
    assert reset.status_code == 200, reset.text
    raw = decode(secret)
    haystacks = [_ledger_text(instance), listing, reset.text, token.text]
    with instance.engine.connect() as connection:
        for table in ("security_events", "principal_totp", "principals", "api_keys"):
            haystacks.append(json.dumps([list(r) for r in connection.execute(text(f"SELECT * FROM {table}"))], default=str))
    for hay in haystacks:
        assert secret not in hay and secret.lower() not in hay and raw.hex() not in hay
    db = instance.home / "keyong.db"
    if db.exists():
        assert raw not in db.read_bytes() and secret.encode() not in db.read_bytes()
