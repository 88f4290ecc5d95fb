"""Second-factor codes for the tests: every login (``POST /auth/token``, the console's form, a CLI act by
key) needs the principal's current TOTP code, and a code's time step is accepted once per principal.

In-process (TestClient, the CLI runner, the service called directly) the verifier's clock is
:class:`VirtualClock` (``tests/conftest.py`` installs it for every test): each code a test asks for moves
it one step on, so a test may log in as often as it likes without replaying a step, and a test may
move it to make a code expire. A server in another process (``keyong serve`` in a subprocess) reads the
wall clock: :func:`wall_code` waits for a step not used yet.

The secrets are those the tests were shown: ``keyong init``'s (``InitResult.totp``), the demo's, or one
a test enrolled (:func:`enrol`). :data:`SECRETS` maps an API key to its principal's secret.
"""

from __future__ import annotations

import time
from base64 import b32decode
from typing import Any

from operators import STEP_SECONDS, totp_code

#: API key -> base32 TOTP secret of its principal (filled by the fixtures and :func:`remember`).
SECRETS: dict[str, str] = {}
_WALL_USED: dict[str, int] = {}


def decode(secret: str) -> bytes:
    return b32decode(secret + "=" * (-len(secret) % 8))


class VirtualClock:
    """The verifier's clock in-process: wall time at the start, one step further for each code made."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def step(self, steps: int = 1) -> float:
        self.now += steps * STEP_SECONDS
        return self.now


CLOCK: list[VirtualClock] = [VirtualClock()]


def remember(api_key: str, secret: str) -> str:
    SECRETS[api_key] = secret
    return secret


def remember_all(tokens: dict[str, str], secrets: dict[str, str]) -> None:
    """Keys and secrets by the same names (roles, or reviewers' names), as init and the demo print them."""
    for who, key in tokens.items():
        if who in secrets:
            remember(key, secrets[who])


def code_of(secret: str) -> str:
    """A fresh code of ``secret`` for the in-process verifier (the clock moves one step on)."""
    return totp_code(decode(secret), CLOCK[0].step())


def code_for(api_key: str) -> str:
    """A fresh code of the principal behind ``api_key`` (in-process)."""
    secret = SECRETS.get(api_key)
    assert secret is not None, "no TOTP secret known for this API key: enrol it (tests/totp_support.enrol)"
    return code_of(secret)


def wall_code(secret: str) -> str:
    """A code of ``secret`` for a server in another process: the current step, waiting for the next one
    when this process already used the current one for that secret (the replay guard)."""
    step = int(time.time() // STEP_SECONDS)
    if _WALL_USED.get(secret, -1) >= step:
        time.sleep((step + 1) * STEP_SECONDS - time.time() + 0.05)
        step = int(time.time() // STEP_SECONDS)
    _WALL_USED[secret] = step
    return totp_code(decode(secret), step * STEP_SECONDS)


def wall_code_for(api_key: str) -> str:
    secret = SECRETS.get(api_key)
    assert secret is not None, "no TOTP secret known for this API key"
    return wall_code(secret)


def enrol(identity: Any, api_key: str) -> str:
    """Enrol and confirm the second factor of ``api_key``'s principal as a person does (their key, then a
    first code); returns the secret, remembered for :func:`code_for`."""
    secret = identity.enrol_totp(api_key).secret
    identity.confirm_totp(api_key, code_of(secret))
    return remember(api_key, secret)


def enrol_over_api(client: Any, api_key: str) -> str:
    """Enrol and confirm ``api_key``'s principal's second factor as a person does over the API."""
    enrolled = client.post("/auth/totp/enrol", json={"api_key": api_key})
    assert enrolled.status_code == 201, enrolled.text
    secret = str(enrolled.json()["secret"])
    confirmed = client.post("/auth/totp/confirm", json={"api_key": api_key, "totp": code_of(secret)})
    assert confirmed.status_code == 200, confirmed.text
    return remember(api_key, secret)


def known(client: Any, api_key: str) -> None:
    """Make sure the tests know ``api_key``'s secret: a further key of a principal whose secret is known by
    name (``issue_api_key``, a rotation) takes that one; a principal without a factor enrols over the API."""
    if api_key in SECRETS:
        return
    instance = getattr(client.app.state, "instance", None)
    owner = instance.identity.key_owner(api_key.split("_")[1]) if instance and api_key.count("_") >= 2 else None
    if owner is not None and owner in NAMES and instance.identity.get_principal(owner)["second_factor"]:
        remember(api_key, NAMES[owner])
        return
    enrol_over_api(client, api_key)


def token_body(api_key: str, client: Any = None) -> dict[str, str]:
    """The body of ``POST /auth/token`` for ``api_key`` with a fresh code (in-process); with ``client``, a
    key the tests do not know the secret of is made known (:func:`known`) first."""
    if client is not None:
        known(client, api_key)
    return {"api_key": api_key, "totp": code_for(api_key)}


def login_form(api_key: str, client: Any = None) -> dict[str, str]:
    """The console's login form for ``api_key`` with a fresh code (in-process; ``client`` as for
    :func:`token_body`)."""
    return token_body(api_key, client)


#: Principal name -> base32 secret, for acts that name a principal rather than a key (the CLI's votes by
#: key: any key of that principal goes with its one factor). The latest enrolment of a name wins.
NAMES: dict[str, str] = {}


def create_enrolled(identity: Any, name: str, role: Any, **options: Any) -> str:
    """A principal the host creates with its second factor, as ``keyong init`` does for its demo principals;
    its API key (its secret is remembered by key and by name). ``options``: more of ``create_principal``'s."""
    new = identity.create_principal(name, role, enrol_totp=True, **options)
    NAMES[name] = remember(new.api_key, str(new.totp_secret))
    return str(new.api_key)


def code_by_name(name: str) -> str:
    secret = NAMES.get(name)
    assert secret is not None, f"no TOTP secret known for principal {name!r}: create it enrolled (create_enrolled)"
    return code_of(secret)
