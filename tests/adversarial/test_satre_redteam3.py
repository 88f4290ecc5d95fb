"""Independent red team of this session's issue-22 defences: recovery holds, sessions ending on credential
change, the custodians' agreement to licence access, four-eyes policy approval, the public register and
upgrade safety. Each test is one attack, written from the code, README and docs/satre.md before the
defences' own tests were read; an attack that broke a defence is kept as the regression of its fix:

- **An agency person made a custodian over the API and was it** (SATRE 3.2.01, 1.5.04): only a custodian
  the *host* made after ``keyong init`` was held unconfirmed; one an agency person made (``POST
  /principals``, whose first key that agency person reads in the response) could act at once, so the
  agency person enrolled its factor, logged in as the custodian of any department's datasets and agreed to
  licences over them, or signed off their egress: the custodian's say became the agency's. Now every
  agency or custodian principal made after init is held until an agency person *other than its maker*
  confirms it (``operators.identity.create_principal``; the console's people page too).
- **The quota service let the host allocate** (``registry.quotas``): ``require_role`` admits the host for any
  role, so only the adapters kept it out. Now the service itself refuses anyone but an agency person (fail
  closed; the CLI and API already passed the agency person's own actor).
- **A database whose schema revision was erased** (``alembic_version`` emptied, tables all there) was
  migrated over from the first revision: refused only by accident (``table principals already exists``,
  reported as an unreachable database on SQLite, a raw ``ProgrammingError`` on PostgreSQL). Now opening it
  refuses with the reason and changes nothing (``app.database.refuse_unversioned_tables``).

The attacks that held are kept as tests too; ``test_residual_…`` names a risk left open on purpose.
"""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from core import Actor, NotFoundError, PermissionDeniedError, RegistryError
from operators import AuthenticationError, IdentityError, IdentityPermissionError, Principal, Role
from tests.recovery_support import confirm
from tests.test_registry_licences import add_dataset, uscc
from tests.totp_support import create_enrolled, token_body

pytestmark = pytest.mark.attack

TRANSPORT = "双鸭山市交通运输局"  # the provider of tests.test_registry_licences.add_dataset's datasets
HEALTH = "双鸭山市卫生健康委员会"
AGENCY = Principal("demo-agency", Role.AGENCY)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str | None:
    """SQLite unless a test asks for PostgreSQL too (``BOTH``)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def _http(instance: Instance) -> TestClient:
    return TestClient(create_app(instance=instance), raise_server_exceptions=False)


def _bearer(http: TestClient, api_key: str) -> dict[str, str]:
    answer = http.post("/auth/token", json=token_body(api_key, http))
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _witness(instance: Instance) -> Principal:
    """A second agency person, made by the host and confirmed by the first."""
    create_enrolled(instance.identity, "rt-witness", Role.AGENCY)
    instance.identity.confirm_recovery("rt-witness", by=AGENCY, reason="a second reviewer")
    return Principal("rt-witness", Role.AGENCY)


# --- recovery holds ------------------------------------------------------------------------------


def test_an_agency_person_cannot_make_a_custodian_and_be_it(initialised: tuple[Instance, dict[str, str]]) -> None:
    """Sybil: the agency person creates a custodian of the transport bureau over the API, reads its key in
    the answer, enrols its factor and logs in: the custodian is held (403) until another agency person
    confirms it; the maker cannot confirm it."""
    instance, keys = initialised
    http = _http(instance)
    agency = _bearer(http, keys["agency"])
    made = http.post("/principals", json={"name": "rt-sybil", "role": "custodian", "org": TRANSPORT}, headers=agency)
    assert made.status_code == 201, made.text
    sybil_key = made.json()["api_key"]
    login = http.post("/auth/token", json=token_body(sybil_key, http))
    if login.status_code == 200:
        me = http.get("/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        assert me.status_code == 403, me.text  # held: it acts nothing
    else:
        assert login.status_code in (401, 403), login.text
    mine = http.post("/principals/rt-sybil/recovery/confirm", json={"reason": "it is me"}, headers=agency)
    assert mine.status_code == 403, mine.text
    with pytest.raises(IdentityPermissionError):
        instance.identity.confirm_recovery("rt-sybil", by=AGENCY, reason="my own sybil")
    witness = _witness(instance)
    assert instance.identity.confirm_recovery("rt-sybil", by=witness, reason="checked in person") == ["unconfirmed"]


def test_an_agency_person_cannot_make_another_agency_person(initialised: tuple[Instance, dict[str, str]]) -> None:
    """The agency does not appoint its own reviewers (the host does): 403 over the API."""
    instance, keys = initialised
    http = _http(instance)
    made = http.post(
        "/principals", json={"name": "rt-agency2", "role": "agency"}, headers=_bearer(http, keys["agency"])
    )
    assert made.status_code == 403, made.text


def test_a_token_from_before_a_recovery_acts_nothing(initialised: tuple[Instance, dict[str, str]]) -> None:
    """The operator's token from before the host issued it a further key: 403 while held, over the API and
    the console; the new key's token too; a second person's confirmation frees both."""
    instance, keys = initialised
    http = _http(instance)
    before = _bearer(http, keys["operator"])
    assert http.get("/me", headers=before).status_code == 200
    new_key = instance.identity.issue_api_key("demo-operator").api_key
    assert http.get("/me", headers=before).status_code == 403
    assert http.get("/licences", headers=before).status_code == 403
    login = http.post("/auth/token", json=token_body(new_key, http))
    if login.status_code == 200:
        fresh = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert http.get("/me", headers=fresh).status_code == 403
    console = http.get("/console", headers=before, follow_redirects=False)
    assert console.status_code != 200 or "demo-operator" not in console.text
    confirm(instance.identity, "demo-operator")
    assert http.get("/me", headers=before).status_code == 200


def test_suspending_and_restoring_does_not_clear_a_hold(initialised: tuple[Instance, dict[str, str]]) -> None:
    """Agency resets the operator's factor (held), then suspends and restores it: still held."""
    instance = initialised[0]
    identity = instance.identity
    identity.reset_totp("demo-operator", by=AGENCY, reason="lost phone")
    identity.set_active("demo-operator", False, by=AGENCY, reason="r")
    identity.set_active("demo-operator", True, by=AGENCY, reason="r")
    with pytest.raises(AuthenticationError, match="held"):
        identity.ensure_not_held("demo-operator")


def test_nobody_but_a_second_unheld_agency_person_confirms(initialised: tuple[Instance, dict[str, str]]) -> None:
    """The host, the held person itself, the recoverer, an operator, a regulator, a name that is no
    principal, a held agency person, a suspended one: each refused; the hold stays."""
    instance = initialised[0]
    identity = instance.identity
    witness = _witness(instance)
    identity.reset_totp("demo-operator", by=AGENCY, reason="lost phone")  # the recoverer: demo-agency
    create_enrolled(identity, "rt-held-agency", Role.AGENCY)  # held: unconfirmed
    create_enrolled(identity, "rt-gone-agency", Role.AGENCY)
    identity.confirm_recovery("rt-gone-agency", by=AGENCY, reason="ok")
    identity.set_active("rt-gone-agency", False, reason="left")
    for by in (
        None,
        AGENCY,
        Principal("demo-operator", Role.OPERATOR),
        Principal("demo-operator", Role.AGENCY),  # a forged role on the held person's name
        Principal("demo-regulator", Role.REGULATOR),
        Principal("rt-ghost", Role.AGENCY),
        Principal("rt-held-agency", Role.AGENCY),
        Principal("rt-gone-agency", Role.AGENCY),
    ):
        with pytest.raises((IdentityPermissionError, IdentityError)):
            identity.confirm_recovery("demo-operator", by=by, reason="let me")
    with pytest.raises(AuthenticationError, match="held"):
        identity.ensure_not_held("demo-operator")
    # The held agency person confirming itself, or the witness confirming with an empty reason: refused.
    with pytest.raises((IdentityPermissionError, IdentityError)):
        identity.confirm_recovery("rt-held-agency", by=Principal("rt-held-agency", Role.AGENCY), reason="me")
    with pytest.raises(IdentityError):
        identity.confirm_recovery("demo-operator", by=witness, reason="   ")
    assert identity.confirm_recovery("demo-operator", by=witness, reason="met in person") == ["totp_reset"]


def test_residual_two_colluding_agency_people_clear_each_others_recoveries(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """Residual (documented): two agency people together may recover and confirm anyone they manage: the
    rule is two persons, not more; the ledger names both."""
    instance = initialised[0]
    identity = instance.identity
    witness = _witness(instance)
    identity.reset_totp("demo-operator", by=AGENCY, reason="lost phone")
    assert identity.confirm_recovery("demo-operator", by=witness, reason="colluding") == ["totp_reset"]


@pytest.mark.parametrize("change", ["rotate", "revoke_other", "reset", "suspend"])
def test_sessions_end_when_credentials_change(initialised: tuple[Instance, dict[str, str]], change: str) -> None:
    """A token from before a rotation, a revocation of another key, a factor reset or a suspension (and
    restore) is refused afterwards (401), even once any hold is cleared."""
    instance, keys = initialised
    identity = instance.identity
    http = _http(instance)
    extra = identity.issue_api_key("demo-operator").api_key
    confirm(identity, "demo-operator")
    headers = _bearer(http, keys["operator"])
    assert http.get("/me", headers=headers).status_code == 200
    if change == "rotate":
        identity.rotate_api_key(extra.split("_")[1], by=AGENCY)
    elif change == "revoke_other":
        identity.revoke_api_key(extra.split("_")[1], by=AGENCY)
    elif change == "reset":
        identity.reset_totp("demo-operator", by=AGENCY, reason="lost phone")
    else:
        identity.set_active("demo-operator", False, by=AGENCY, reason="r")
        identity.set_active("demo-operator", True, by=AGENCY, reason="r")
    with contextlib.suppress(IdentityError):  # nothing held
        confirm(identity, "demo-operator")
    assert http.get("/me", headers=headers).status_code == 401


def test_a_token_signed_under_an_old_or_absent_epoch_is_refused(initialised: tuple[Instance, dict[str, str]]) -> None:
    """A token the instance itself signed (as one stolen from before) with no ``cep`` or a stale one is
    refused once the epoch moved; a future epoch is refused too."""
    instance, keys = initialised
    identity = instance.identity
    key_id = keys["operator"].split("_")[1]
    identity.set_active("demo-operator", False, by=AGENCY, reason="r")
    identity.set_active("demo-operator", True, by=AGENCY, reason="r")
    for epoch in (None, 0, 2, 99):
        token = identity.tokens.issue("demo-operator", Role.OPERATOR, key_id=key_id, epoch=epoch).token
        with pytest.raises(AuthenticationError):
            identity.authenticate_token(token)
    good = identity.tokens.issue("demo-operator", Role.OPERATOR, key_id=key_id, epoch=1).token
    assert identity.authenticate_token(good).name == "demo-operator"


# --- licence activation needs each custodian's agreement (SATRE 1.5.04) -------------------------


def _licensing(instance: Instance) -> Any:
    """The instance's registry with two transport datasets, an operator that stands, custodians of the
    transport bureau and of health (confirmed)."""
    from tests.people_support import stand

    registry = instance.registry
    add_dataset(registry, "rt-roads")
    add_dataset(registry, "rt-buses")
    registry.licences.add_operator("rt-ops", uscc(61), by=Actor("demo-agency", "agency"))
    stand(registry, "rt-ops")
    for name, org in (("rt-cust-t", TRANSPORT), ("rt-cust-h", HEALTH)):
        instance.identity.create_principal(name, Role.CUSTODIAN, org=org)
        confirm(instance.identity, name)
    return registry


def _grant(registry: Any, datasets: list[str], publicity: int = 0) -> Any:
    return registry.licences.grant(
        "rt-ops",
        datasets=datasets,
        scenarios=["交通出行"],
        valid_until=registry.config.now().date() + timedelta(days=90),
        publicity_days=publicity,
        by=Actor("demo-agency", "agency"),
        reason="协议",
    )


def test_only_the_datasets_own_custodian_agrees(initialised: tuple[Instance, dict[str, str]]) -> None:
    """A custodian of another department, the agency, an operator, a regulator, the host: refused; the
    licence granted with publicity 0 stays a draft and cannot be activated."""
    instance = initialised[0]
    registry = _licensing(instance)
    view = _grant(registry, ["rt-roads"])
    assert view.state == "draft"
    consent = registry.licence_consent
    for by in (
        Actor("rt-cust-h", "custodian"),
        Actor("demo-agency", "agency"),
        Actor("rt-ops", "operator"),
        Actor("demo-regulator", "regulator"),
        Actor.host(),
        Actor("rt-nobody", "custodian"),
    ):
        with pytest.raises((PermissionDeniedError, RegistryError)):
            consent.decide(view.id, "rt-roads", "agree", by=by, reason="yes")
    with pytest.raises(RegistryError):
        registry.licences.transition(view.id, "active", by=Actor("demo-agency", "agency"), reason="go")
    assert registry.licences.activate_due(by=Actor.host()) == []


def test_a_refusal_is_final_and_a_licence_agreed_only_in_part_waits(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """Agreeing after a refusal is refused; a licence over two datasets with one agreed stays a draft."""
    instance = initialised[0]
    registry = _licensing(instance)
    consent = registry.licence_consent
    cust = Actor("rt-cust-t", "custodian")
    refused = _grant(registry, ["rt-roads"])
    consent.decide(refused.id, "rt-roads", "refuse", by=cust, reason="no")
    with pytest.raises(RegistryError):
        consent.decide(refused.id, "rt-roads", "agree", by=cust, reason="changed my mind")
    with pytest.raises(RegistryError):
        registry.licences.transition(refused.id, "active", by=Actor("demo-agency", "agency"), reason="go")
    both = _grant(registry, ["rt-roads", "rt-buses"])
    consent.decide(both.id, "rt-roads", "agree", by=cust, reason="ok")
    with pytest.raises(RegistryError, match="rt-buses"):
        registry.licences.transition(both.id, "active", by=Actor("demo-agency", "agency"), reason="go")


def test_an_egress_delegation_is_no_access_delegation_nor_an_expired_one(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """An egress delegation does not stand for access; an access delegation that expired or was withdrawn
    before the activation does not either, through publicity's end (activate_due) as through a transition."""
    instance = initialised[0]
    registry = _licensing(instance)
    cust = Actor("rt-cust-t", "custodian")
    registry.egress.delegate("rt-roads", by=cust, reason="egress only")
    view = _grant(registry, ["rt-roads"])
    assert view.state == "draft"
    registry.access.delegate("rt-buses", by=cust, reason="standing", expires=registry.config.now().date())
    publicised = _grant(registry, ["rt-buses"], publicity=1)
    assert publicised.state == "publicity"
    instance_clock = registry.config
    later = instance_clock.now() + timedelta(days=3)
    original = registry.config.clock
    try:
        object.__setattr__(registry.config, "clock", lambda: later)
        assert registry.licences.activate_due(by=Actor.host()) == []
        with pytest.raises(RegistryError):
            registry.licences.transition(publicised.id, "active", by=Actor("demo-agency", "agency"), reason="go")
    finally:
        object.__setattr__(registry.config, "clock", original)


def test_a_withdrawn_access_delegation_binds_licences_not_yet_active(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """Delegate, grant in publicity, withdraw: the licence does not activate when publicity ends."""
    instance = initialised[0]
    registry = _licensing(instance)
    cust = Actor("rt-cust-t", "custodian")
    registry.access.delegate("rt-roads", by=cust, reason="standing")
    view = _grant(registry, ["rt-roads"], publicity=1)
    registry.access.withdraw("rt-roads", by=cust, reason="no longer")
    later = registry.config.now() + timedelta(days=3)
    original = registry.config.clock
    try:
        object.__setattr__(registry.config, "clock", lambda: later)
        assert registry.licences.activate_due(by=Actor.host()) == []
    finally:
        object.__setattr__(registry.config, "clock", original)
    assert registry.licences.get(view.id, viewer=Actor.host()).state == "publicity"


# --- four-eyes policy approval (SATRE 1.2.01) -----------------------------------------------------


def _weaker_l2(tmp: Path, suffix: str = ".json", **change: Any) -> Path:
    """The shipped L2 policy with phone numbers kept in clear (a weakening), as a file."""
    data = json.loads(Path("desensitize/policies/L2.json").read_text(encoding="utf-8"))
    data["rules"]["cn_phone"] = {"action": "keep"}
    data.update(change)
    path = tmp / f"L2{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    else:
        import yaml

        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_a_policy_needs_a_second_agency_person_for_its_own_level(
    initialised: tuple[Instance, dict[str, str]], tmp_path: Path
) -> None:
    """Unapproved: refused. The proposer approving, the host, a custodian, an operator: refused. Approved
    for L2, the same rules declared L3 are not admitted for L3; the file edited after approval is refused;
    its YAML twin (same meaning, same digest) is admitted, which is right: the digest is of the meaning."""
    from registry.policy_approvals import read_policy_file

    instance = initialised[0]
    registry = instance.registry
    copies_policy = registry.copies.policy_for
    path = _weaker_l2(tmp_path)
    with pytest.raises(RegistryError, match="not approved"):
        copies_policy("L2", path)
    with pytest.raises(PermissionDeniedError):
        registry.policies.propose("L2", read_policy_file("L2", path), by=Actor.host(), reason="x")
    with pytest.raises(PermissionDeniedError):
        registry.policies.propose("L2", read_policy_file("L2", path), by=Actor("demo-operator", "operator"), reason="x")
    proposal = registry.policies.propose(
        "L2", read_policy_file("L2", path), by=Actor("demo-agency", "agency"), reason="phones are public here"
    )
    for by in (
        Actor("demo-agency", "agency"),
        Actor.host(),
        Actor("rt-cust", "custodian"),
        Actor("demo-operator", "operator"),
        Actor("demo-regulator", "regulator"),
    ):
        with pytest.raises(PermissionDeniedError):
            registry.policies.decide(proposal.id, True, by=by, reason="fine")
    with pytest.raises(RegistryError, match="not approved"):
        copies_policy("L2", path)
    registry.policies.decide(proposal.id, True, by=Actor("rt-witness", "agency"), reason="checked")
    assert copies_policy("L2", path).sha256() == proposal.sha256
    # Approved once: not decided again (a refusal after approval would not un-approve silently).
    with pytest.raises(RegistryError):
        registry.policies.decide(proposal.id, False, by=Actor("rt-witness2", "agency"), reason="no")
    # For another level: the same rules declaring L3, given as the L3 policy.
    other = tmp_path / "l3"
    other.mkdir()
    l3 = _weaker_l2(other, level="L3")
    with pytest.raises(RegistryError):
        copies_policy("L3", l3)
    # Edited after approval: a new digest, refused.
    edited = tmp_path / "edited"
    edited.mkdir()
    with pytest.raises(RegistryError, match="not approved"):
        copies_policy("L2", _weaker_l2(edited, k=2))
    # The YAML twin of the approved JSON: the same meaning, admitted.
    twin = tmp_path / "yaml"
    twin.mkdir()
    assert copies_policy("L2", _weaker_l2(twin, ".yaml")).sha256() == proposal.sha256


def test_a_home_policy_file_is_refused_unless_approved(initialised: tuple[Instance, dict[str, str]]) -> None:
    """HOME/policies/L2.json, weakened and unapproved: the copy's policy is refused, not the shipped one."""
    instance = initialised[0]
    home = instance.home / "policies"
    home.mkdir(exist_ok=True)
    _weaker_l2(home)
    with pytest.raises(RegistryError, match="not approved"):
        instance.registry.copies.policy_for("L2")


# --- the public register -------------------------------------------------------------------------


def test_the_public_register_names_no_person_and_no_unlisted_licence(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """A draft, a revoked and an active licence, with agreement by a named custodian and reasons: the
    register shows only the active one; no principal's name (agency, custodian, host), no reason, no
    path or content hash appears; query strings are 400; odd paths and methods never 5xx."""
    instance = initialised[0]
    registry = _licensing(instance)
    consent = registry.licence_consent
    cust = Actor("rt-cust-t", "custodian")
    draft = _grant(registry, ["rt-roads"])
    revoked = _grant(registry, ["rt-roads"])
    consent.decide(revoked.id, "rt-roads", "agree", by=cust, reason="秘密理由 secret-reason")
    registry.licences.transition(revoked.id, "revoked", by=Actor("demo-agency", "agency"), reason="撤销理由")
    active = _grant(registry, ["rt-buses"])
    consent.decide(active.id, "rt-buses", "agree", by=cust, reason="秘密理由 secret-reason")
    registry.licences.transition(active.id, "active", by=Actor("demo-agency", "agency"), reason="go")
    http = _http(instance)
    whole = http.get("/api/public")
    assert whole.status_code == 200, whole.text
    listed = {item["licence"] for item in whole.json()["licences"]}
    assert listed == {active.id}, (listed, draft.id, revoked.id)
    body = whole.text + http.get("/public").text
    for secret in (
        "demo-agency", "rt-cust-t", "rt-cust-h", "secret-reason", "秘密理由", "撤销理由", "host:",
        "datasets/", str(instance.home), "0" * 64,
    ):  # fmt: skip
        assert secret not in body, secret
    for path in ("/api/public?x=1", "/api/public/licences?state=draft", "/public?x=%00", "/api/public/%2e%2e/"):
        answer = http.get(path)
        assert answer.status_code < 500, (path, answer.status_code)
    assert http.get("/api/public?x=1").status_code == 400
    for method in ("post", "put", "delete"):
        answer = getattr(http, method)("/api/public")
        assert 400 <= answer.status_code < 500, (method, answer.status_code)
    assert whole.headers.get("x-content-type-options") == "nosniff"


# --- upgrade safety --------------------------------------------------------------------------------


@BOTH
def test_a_home_at_an_unknown_schema_revision_is_never_opened(initialised: tuple[Instance, dict[str, str]]) -> None:
    """The alembic revision rewritten to one this code does not know (a newer Keyong's): refused, and nothing
    is migrated (the revision stays); ``upgrade=False`` refuses too."""
    from sqlalchemy import text

    from app import InstanceError

    instance = initialised[0]
    settings = instance.settings
    with instance.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    for upgrade in (True, False):
        with pytest.raises(InstanceError, match="does not know"):
            Instance.open(settings, upgrade=upgrade)
    with instance.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999_future"


def test_consent_over_the_api_only_by_the_datasets_custodian(initialised: tuple[Instance, dict[str, str]]) -> None:
    """Over HTTP: the operator, the agency and another department's custodian cannot agree (403); another
    department's custodian and another operator do not even see the licence's consent (404); odd ids and
    bodies are 4xx; the right custodian's agreement lets the agency activate it."""
    instance, keys = initialised
    registry = _licensing(instance)
    registry.licences.add_operator("rt-other-ops", uscc(62), by=Actor("demo-agency", "agency"))
    http = _http(instance)
    own = create_enrolled(instance.identity, "rt-api-cust-t", Role.CUSTODIAN, org=TRANSPORT)
    other = create_enrolled(instance.identity, "rt-api-cust-h", Role.CUSTODIAN, org=HEALTH)
    for name in ("rt-api-cust-t", "rt-api-cust-h"):
        confirm(instance.identity, name)
    view = _grant(registry, ["rt-roads"])
    body = {"dataset": "rt-roads", "decision": "agree", "reason": "ok"}
    for key in (keys["operator"], keys["agency"], other, keys["regulator"]):
        answer = http.post(f"/licences/{view.id}/consent", json=body, headers=_bearer(http, key))
        assert answer.status_code == 403, answer.text
    seen = http.get(f"/licences/{view.id}/consent", headers=_bearer(http, other))
    assert seen.status_code == 404, seen.text
    mine = _bearer(http, own)
    for path, payload in (
        (f"/licences/{view.id}/consent", {**body, "decision": "AGREE"}),
        (f"/licences/{view.id}/consent", {**body, "reason": ""}),
        (f"/licences/{view.id}/consent", {**body, "dataset": "rt-buses"}),
        (f"/licences/{view.id}/consent", {**body, "extra": 1}),
        ("/licences/0/consent", body),
        ("/licences/99999999999999999999/consent", body),
        ("/licences/-1/consent", body),
    ):
        answer = http.post(path, json=payload, headers=mine)
        assert 400 <= answer.status_code < 500, (path, payload, answer.status_code, answer.text)
    agreed = http.post(f"/licences/{view.id}/consent", json=body, headers=mine)
    assert agreed.status_code == 200, agreed.text
    assert agreed.json()["complete"] is True
    again = http.post(f"/licences/{view.id}/consent", json={**body, "decision": "refuse"}, headers=mine)
    assert again.status_code in (400, 409), again.text
    assert registry.licences.transition(view.id, "active", by=Actor("demo-agency", "agency"), reason="go").state == (
        "active"
    )


def test_restoring_a_suspended_licence_does_not_reopen_a_refused_dataset(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """A suspended licence cannot be made to cover a refusal: decisions are only taken while draft or in 公示,
    so a custodian's refusal after activation is refused (the documented path is to revoke)."""
    instance = initialised[0]
    registry = _licensing(instance)
    cust = Actor("rt-cust-t", "custodian")
    view = _grant(registry, ["rt-roads"])
    registry.licence_consent.decide(view.id, "rt-roads", "agree", by=cust, reason="ok")
    agency = Actor("demo-agency", "agency")
    registry.licences.transition(view.id, "active", by=agency, reason="go")
    registry.licences.transition(view.id, "suspended", by=agency, reason="check")
    with pytest.raises(RegistryError):
        registry.licence_consent.decide(view.id, "rt-roads", "refuse", by=cust, reason="no longer")
    assert registry.licences.transition(view.id, "active", by=agency, reason="back").state == "active"


# --- quotas ----------------------------------------------------------------------------------------


def test_only_the_agency_allocates_quotas_and_a_licence_never_above_its_operator(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """The operator raising its own, the host, a custodian: refused. Non-numbers, NaN, infinity, negatives,
    booleans, fractions of a job, absurd values: refused. A licence above its operator: refused; lowering
    the operator later still binds the licence at submission (both are checked)."""
    from operators.quotas import _refusal, _Use  # the submission's check, given the counts

    instance = initialised[0]
    registry = _licensing(instance)
    cust = Actor("rt-cust-t", "custodian")
    view = _grant(registry, ["rt-roads"])
    registry.licence_consent.decide(view.id, "rt-roads", "agree", by=cust, reason="ok")
    defaults = registry.quotas  # the registry's allocations
    from registry.quotas import Quotas

    base = Quotas()
    agency = Actor("demo-agency", "agency")
    for by in (Actor("rt-ops", "operator"), Actor.host(), cust, Actor("demo-regulator", "regulator")):
        with pytest.raises((PermissionDeniedError, RegistryError)):
            defaults.allocate("rt-ops", defaults=base, concurrent=999, reason="more", by=by)
    for bad in ({"concurrent": float("nan")}, {"cpu_seconds_per_day": float("inf")}, {"per_day": -1},
                {"concurrent": True}, {"concurrent": 1.5}, {"per_day": 10**12}, {"concurrent": "5"}):  # fmt: skip
        with pytest.raises(RegistryError):
            defaults.allocate("rt-ops", defaults=base, reason="typo", by=agency, **bad)
    defaults.allocate("rt-ops", defaults=base, concurrent=2, per_day=10, reason="share", by=agency)
    with pytest.raises(RegistryError, match="may not exceed"):
        defaults.allocate("rt-ops", defaults=base, licence=view.id, concurrent=3, reason="wider", by=agency)
    defaults.allocate("rt-ops", defaults=base, licence=view.id, concurrent=2, per_day=10, reason="all", by=agency)
    defaults.allocate("rt-ops", defaults=base, concurrent=1, reason="lowered", by=agency)
    with pytest.raises(NotFoundError):  # a licence of another operator is not this operator's to divide
        defaults.allocate("rt-other", defaults=base, licence=view.id, concurrent=1, reason="x", by=agency)
    with registry.recorder.read() as session:
        from registry.quotas import limits_of

        own, licence = limits_of(session, "rt-ops", view.id, base)
    assert own.concurrent == 1 and licence is not None and licence.concurrent == 2
    assert _refusal("operator 'rt-ops'", _Use(1, 0, 0.0), own) is not None  # the lowered operator binds


def test_a_held_custodian_agrees_nothing_through_the_cli(
    initialised: tuple[Instance, dict[str, str]], tmp_path: Path
) -> None:
    """A custodian confirmed, whose token was obtained, then held (the host issued it a further key): the CLI
    with its key and a right code, and with the token from before in the key file, is refused; nothing is
    recorded; once a second person confirms, the same key agrees."""
    from typer.testing import CliRunner

    from app.cli import cli
    from tests.totp_support import code_by_name

    instance = initialised[0]
    registry = _licensing(instance)
    key = create_enrolled(instance.identity, "rt-cli-cust", Role.CUSTODIAN, org=TRANSPORT)
    confirm(instance.identity, "rt-cli-cust")
    http = _http(instance)
    token = _bearer(http, key)["Authorization"].split()[1]
    view = _grant(registry, ["rt-roads"])
    instance.identity.issue_api_key("rt-cli-cust")  # held now
    runner = CliRunner()
    key_file, token_file = tmp_path / "key", tmp_path / "token"
    key_file.write_text(key)
    token_file.write_text(token)
    key_file.chmod(0o600)
    token_file.chmod(0o600)
    home = ["--home", str(instance.home)]
    agree = ["licence", "agree", str(view.id), "--dataset", "rt-roads", "--reason", "ok", *home]
    by_key = runner.invoke(cli, [*agree, "--key-file", str(key_file), "--totp", code_by_name("rt-cli-cust")])
    assert by_key.exit_code != 0 and "held" in by_key.output, by_key.output
    by_token = runner.invoke(cli, [*agree, "--key-file", str(token_file)])
    assert by_token.exit_code != 0, by_token.output
    status = registry.licence_consent.get(view.id, viewer=Actor.host()).as_json()
    assert status["datasets"]["rt-roads"]["status"] == "awaiting"
    confirm(instance.identity, "rt-cli-cust")
    done = runner.invoke(cli, [*agree, "--key-file", str(key_file), "--totp", code_by_name("rt-cli-cust")])
    assert done.exit_code == 0, done.output


def test_a_console_session_ends_on_a_factor_reset(initialised: tuple[Instance, dict[str, str]]) -> None:
    """The operator's console cookie from before the agency reset its factor no longer opens the console,
    even once the hold is confirmed (the session's epoch is gone)."""
    from tests.console_support import console_client

    instance, keys = initialised
    http = console_client(instance, keys["operator"])
    before = http.get("/console", follow_redirects=True)
    assert before.status_code == 200 and "demo-operator" in before.text, before.status_code
    instance.identity.reset_totp("demo-operator", by=AGENCY, reason="lost phone")
    confirm(instance.identity, "demo-operator")
    after = http.get("/console", follow_redirects=True)
    assert "demo-operator" not in after.text, after.status_code


def test_db_status_and_upgrade_refuse_a_newer_schema(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """``keyong db status`` says the revision is unknown and ``keyong db upgrade`` refuses (exit 1) without
    changing the revision."""
    from sqlalchemy import text
    from typer.testing import CliRunner

    from app.cli import cli

    instance = initialised[0]
    with instance.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    runner = CliRunner()
    home = ["--home", str(instance.home)]
    upgraded = runner.invoke(cli, ["db", "upgrade", *home])
    assert upgraded.exit_code != 0, upgraded.output
    status = runner.invoke(cli, ["db", "status", *home, "--json"])
    assert "9999_future" in status.output, status.output
    with instance.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999_future"


def test_residual_the_agency_reads_an_operators_first_key(initialised: tuple[Instance, dict[str, str]]) -> None:
    """Residual (documented in ``operators.recovery``): an operator login the agency makes over the API is not
    held: the agency person reads its first key and could act as the operator until the operator's person
    rotates it (operators have no say on egress; their releases still need the reviewers and custodians)."""
    instance, keys = initialised
    http = _http(instance)
    instance.registry.licences.add_operator("rt-first-ops", uscc(63), by=Actor("demo-agency", "agency"))
    made = http.post("/operators/rt-first-ops/login", headers=_bearer(http, keys["agency"]))
    assert made.status_code == 201, made.text
    assert http.get("/me", headers=_bearer(http, made.json()["api_key"])).status_code == 200


def test_the_public_page_is_hardened_and_takes_no_state(initialised: tuple[Instance, dict[str, str]]) -> None:
    """``/public`` (HTML): nosniff, a frame refusal and a content security policy; a cookie of a logged-in
    person does not change what it shows (no name of the person appears); HEAD and odd Accept headers
    never 5xx."""
    from tests.console_support import console_client

    instance, keys = initialised
    anonymous = _http(instance).get("/public")
    assert anonymous.status_code == 200
    headers = {k.lower(): v for k, v in anonymous.headers.items()}
    assert headers.get("x-content-type-options") == "nosniff"
    assert "content-security-policy" in headers or "x-frame-options" in headers
    logged = console_client(instance, keys["agency"]).get("/public")
    assert logged.status_code == 200 and "demo-agency" not in logged.text
    for accept in ("application/json", "*/*", "text/html;q=0", "\x00"):
        assert _http(instance).get("/public", headers={"Accept": accept}).status_code < 500
    assert _http(instance).head("/public").status_code < 500


def test_residual_a_confirmation_does_not_take_the_first_key_from_its_maker(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """Residual (documented): the maker of a custodian reads its first key and may enrol its factor before
    handing it over; a second agency person's confirmation clears the hold but rotates nothing, so the
    confirmer must check that the person, not the maker, enrolled the factor (the ledger says which key
    enrolled it and when). A fix would be to refuse a confirmation until the person rotated the key it was
    given; left to the agency's procedure."""
    instance, keys = initialised
    http = _http(instance)
    made = http.post(
        "/principals",
        json={"name": "rt-quiet-cust", "role": "custodian", "org": TRANSPORT},
        headers=_bearer(http, keys["agency"]),
    )
    key = made.json()["api_key"]
    maker_headers = _bearer(http, key)  # the maker enrols the factor with the key it read
    instance.identity.confirm_recovery("rt-quiet-cust", by=_witness(instance), reason="looked fine")
    assert http.get("/me", headers=maker_headers).status_code == 200


def test_a_custodian_the_agency_makes_in_the_console_is_held_too(initialised: tuple[Instance, dict[str, str]]) -> None:
    """The console's people page is the same act as ``POST /principals``: the custodian it makes is held."""
    from tests.console_support import console_client, csrf_of

    instance, keys = initialised
    from app.console.people_pages import PAGE

    client = console_client(instance, keys["agency"])
    form = {
        "csrf": csrf_of(client, "/console" + PAGE),
        "name": "rt-console-cust",
        "role": "custodian",
        "org": TRANSPORT,
    }
    client.post("/console" + PAGE, data=form, follow_redirects=False)
    assert instance.identity.get_principal("rt-console-cust")["recovery_hold"], "not made or not held"
    with pytest.raises(AuthenticationError, match="held"):
        instance.identity.ensure_not_held("rt-console-cust")


def test_an_access_delegation_spares_no_egress_sign_off(initialised: tuple[Instance, dict[str, str]]) -> None:
    """The other way round: a standing access delegation does not spare the custodian's sign-off of egress."""
    from registry.egress import egress_requirement

    instance = initialised[0]
    registry = _licensing(instance)
    registry.access.delegate("rt-roads", by=Actor("rt-cust-t", "custodian"), reason="access only")
    with registry.recorder.read() as session:
        needed, delegated = egress_requirement(session, ["rt-roads"], registry.config.now())
    assert needed == ["rt-roads"] and delegated == {}


@BOTH
def test_a_home_whose_revision_was_erased_is_not_migrated_over(initialised: tuple[Instance, dict[str, str]]) -> None:
    """The alembic revision row deleted (tables all there): opening, with or without upgrading, refuses with
    the reason instead of running every migration over the existing tables (which failed as "cannot connect
    to the database: table principals already exists" on SQLite and a raw ProgrammingError on PostgreSQL);
    nothing is changed."""
    from sqlalchemy import text

    from app import InstanceError

    instance = initialised[0]
    size = instance.ledger.size()
    with instance.engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
    for upgrade in (True, False):
        with pytest.raises(InstanceError, match="no schema revision"):
            Instance.open(instance.settings, upgrade=upgrade)
    assert instance.ledger.size() == size
    with instance.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0


def test_quota_allocation_over_http_is_the_agencys_and_odd_bodies_are_4xx(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """PUT /quotas/{operator}: the operator raising its own, a custodian, a regulator: 403; NaN, strings,
    huge numbers, negative, unknown keys, a licence id out of range, an unknown operator: 4xx, never 5xx."""
    instance, keys = initialised
    _licensing(instance)
    http = _http(instance)
    body = {"concurrent": 999, "reason": "more"}
    for role in ("operator", "custodian", "regulator"):
        answer = http.put("/quotas/rt-ops", json=body, headers=_bearer(http, keys[role]))
        assert answer.status_code == 403, (role, answer.text)
    agency = _bearer(http, keys["agency"])
    for payload in (
        {"concurrent": "NaN", "reason": "x"},
        {"per_day": 10**30, "reason": "x"},
        {"concurrent": -1, "reason": "x"},
        {"concurrent": 1, "reason": "x", "owner": "me"},
        {"concurrent": 1, "reason": "x", "licence": 10**20},
        {"concurrent": 1, "reason": ""},
        {"reason": "nothing given"},
    ):
        answer = http.put("/quotas/rt-ops", json=payload, headers=agency)
        assert 400 <= answer.status_code < 500, (payload, answer.status_code, answer.text)
    assert http.put("/quotas/rt-nobody", json=body, headers=agency).status_code == 404
    json_headers = {**agency, "Content-Type": "application/json"}
    for raw in (b"{not json", b'{"cpu_seconds_per_day": 1e999, "reason": "x"}', b'{"concurrent": NaN, "reason": "x"}'):
        answer = http.put("/quotas/rt-ops", content=raw, headers=json_headers)
        assert 400 <= answer.status_code < 500, (raw, answer.status_code, answer.text)


def test_a_held_agency_person_confirms_nobody_over_the_api_nor_the_host_on_the_cli(
    initialised: tuple[Instance, dict[str, str]], tmp_path: Path
) -> None:
    """An agency person the host just made (held) confirms the operator's recovery over the API: 403; the
    host on the CLI without a key: refused; the operator stays held."""
    from typer.testing import CliRunner

    from app.cli import cli

    instance = initialised[0]
    http = _http(instance)
    held = create_enrolled(instance.identity, "rt-new-agency", Role.AGENCY)
    instance.identity.reset_totp("demo-operator", by=AGENCY, reason="lost phone")
    answer = http.post("/principals/demo-operator/recovery/confirm", json={"reason": "ok"}, headers=_bearer(http, held))
    assert answer.status_code == 403, answer.text
    cli_answer = CliRunner().invoke(
        cli, ["principal", "confirm-recovery", "demo-operator", "--reason", "host", "--home", str(instance.home)]
    )
    assert cli_answer.exit_code != 0, cli_answer.output
    with pytest.raises(AuthenticationError, match="held"):
        instance.identity.ensure_not_held("demo-operator")
