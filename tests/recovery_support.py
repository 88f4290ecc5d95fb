"""A second agency person confirming a recovery, for tests whose subject is something else (issue 22, SATRE 3.2.01).

A key issued or rotated for someone by another, a factor reset, or an agency or custodian principal the host made
after ``keyong init`` holds that principal until an agency person other than the recoverer confirms it
(``operators.recovery``). Tests about votes, sign-offs or keys confirm through the service, as that agency person
would over the API; the adapters' own checks are tested in ``tests/test_recovery.py``.
"""

from __future__ import annotations

from typing import Any

from operators import IdentityPermissionError, Principal, Role

FIRST = "demo-agency"  # keyong init's agency principal: the bootstrap exception, never held by its creation
WITNESS = "recovery-witness"


def _witness(identity: Any) -> str:
    """A second agency principal (made by the host, then confirmed by the first) to confirm what the first did."""
    names = {str(p["name"]) for p in identity.list_principals()}
    if WITNESS not in names:
        identity.create_principal(WITNESS, Role.AGENCY)
        identity.confirm_recovery(WITNESS, by=Principal(FIRST, Role.AGENCY), reason="tests: a second reviewer")
    return WITNESS


def confirm(identity: Any, name: str, reason: str = "tests: confirmed by a second person") -> list[str]:
    """Clear ``name``'s recovery holds as an agency person other than the recoverer and ``name`` would."""
    if name != FIRST:
        try:
            return list(identity.confirm_recovery(name, by=Principal(FIRST, Role.AGENCY), reason=reason))
        except IdentityPermissionError:  # the first agency person performed the recovery itself
            pass
    return list(identity.confirm_recovery(name, by=Principal(_witness(identity), Role.AGENCY), reason=reason))


def issue_key(identity: Any, name: str) -> str:
    """A further key the host issues for ``name``, its hold confirmed by a second person: the key, usable."""
    if name == FIRST:
        _witness(identity)  # made (and confirmed by the first) before the first is held
    key = str(identity.issue_api_key(name).api_key)
    confirm(identity, name)
    return key
