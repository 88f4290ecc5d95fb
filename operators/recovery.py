"""Credential recovery needs a second person, and changed credentials end open sessions (issue 22; SATRE 3.2.01).

SATRE 3.2.01 asks that no account be used by anyone but its one person. The host administrator (the CLI without a
principal) and any agency person may give someone a new credential: issue a further key, rotate one, reset the
second factor (a lost phone), and the host onboards the agency's reviewers. Whoever does that could then hold the
new credential and be that person: issue a reviewer a key, reset its factor, enrol a new one, vote. Ledgering it
(``principal.key_issued``, ``principal.totp_reset``) made it visible, not impossible. So:

* **A recovery holds the person.** A key issued or rotated for a principal by anyone but that principal, and every
  reset of a second factor, opens a *recovery hold* in the same transaction (``principal.recovery_held``, with the
  kind, the actor who performed it and why). While any hold is open, the principal's authenticated acts are
  refused with the reason: every token is checked at each request (``IdentityService.authenticate_token``: the
  API, the console) and every CLI act by key (``app/cli/credentials.own_actor``), so votes, sign-offs,
  delegations, release requests, product fetches, job submissions and licence acts are all closed, with nothing
  for a route to forget. The person may still enrol and confirm a new factor with the new key (that is how a
  recovery completes), and the key exchange still answers, so the factor's confirmation is kept.
* **A sybil is held the same way.** An agency or custodian principal the host (or an agency person, over the
  API: it reads the first key in the answer) creates after ``keyong init`` is
  *unconfirmed*: agency principals vote on releases and custodians sign off egress, and the host printed the first
  key itself. The principals ``keyong init`` creates are the bootstrap exception: someone has to be first, and the
  instance's ledger begins with them (``instance.initialised``); operators and regulators the host adds are not
  held (an operator's jobs and fetches act for its own company under its licence; a regulator changes nothing).
* **Only a second person clears it** (``principal.recovery_confirmed``, with a reason): an active agency principal
  acting through its own authenticated session (an API or console token, or the CLI with its own key and code),
  not held itself, neither the held person nor anyone who performed one of the open recoveries, and, for an
  agency person held, of the same organisation when both name one. Never the host without a principal. So the host
  alone cannot act as a person any more: it would also need an agency person's key and second factor.
* **Changed credentials end sessions.** A factor reset, a key revoked or rotated and a suspension bump the
  principal's ``credential_epoch``; a token carries the epoch it was issued under (``cep``) and is refused once
  they differ, so no JWT or console session opened before outlives the change (黑龙江 第三十八条: 身份认证、权限管理).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, Change
from operators.errors import AuthenticationError, IdentityError, IdentityPermissionError
from operators.models import PrincipalRow, RecoveryHoldRow, utcnow
from operators.roles import Role

#: Roles a principal made by the host after ``keyong init`` must be confirmed in: they have a say on egress.
CONFIRMED_ROLES = frozenset({Role.AGENCY, Role.CUSTODIAN})
REASON_MAX = 500

__all__ = [
    "CONFIRMED_ROLES",
    "HoldKind",
    "RecoveryHoldError",
    "confirm_holds",
    "end_sessions",
    "hold_message",
    "holds_json",
    "open_hold",
    "open_holds",
]


class HoldKind(StrEnum):
    KEY_ISSUED = "key_issued"  # a further key, issued by someone else
    KEY_ROTATED = "key_rotated"  # a key replaced by someone else
    TOTP_RESET = "totp_reset"  # the second factor deleted (always by someone else)
    UNCONFIRMED = "unconfirmed"  # an agency or custodian principal the host or an agency person made after init


class RecoveryHoldError(AuthenticationError):
    """The principal is held until a second agency person confirms its new credential (a 403 over HTTP)."""


def end_sessions(row: PrincipalRow) -> None:
    """Every token issued to ``row`` before now stops working (its ``cep`` no longer matches)."""
    row.credential_epoch = (row.credential_epoch or 0) + 1


def open_holds(session: Session, row: PrincipalRow) -> list[RecoveryHoldRow]:
    query = select(RecoveryHoldRow).where(RecoveryHoldRow.principal_id == row.id, RecoveryHoldRow.cleared_at.is_(None))
    return list(session.scalars(query.order_by(RecoveryHoldRow.id)))


def open_hold(change: Change, row: PrincipalRow, kind: HoldKind, reason: str) -> None:
    """Hold ``row`` (ledgered ``principal.recovery_held`` in the caller's transaction)."""
    change.session.flush()  # a new principal needs its id
    by = change.actor.name
    text = reason.strip()[:REASON_MAX] or str(kind)
    change.session.add(
        RecoveryHoldRow(principal_id=row.id, kind=str(kind), opened_by=by, opened_at=utcnow(), reason=text)
    )
    change.log("principal.recovery_held", f"principal:{row.name}", {"kind": str(kind), "by": by, "reason": text})


def hold_message(name: str, holds: list[RecoveryHoldRow]) -> str:
    """Why ``name`` may not act, and who may clear it."""
    what = "; ".join(
        f"{h.kind} by {h.opened_by} at {h.opened_at.isoformat(timespec='seconds')} ({h.reason})" for h in holds
    )
    others = ", ".join(sorted({h.opened_by for h in holds}))
    return (
        f"principal {name!r} is held until a second person confirms its credentials (SATRE 3.2.01): {what}. "
        f"An agency person other than {others} confirms it with their own credentials "
        f"(`keyong principal confirm-recovery {name} --reason R --key-file F --totp C`, or "
        f"POST /principals/{name}/recovery/confirm)"
    )


def holds_json(holds: list[RecoveryHoldRow]) -> list[dict[str, object]]:
    return [{"kind": h.kind, "by": h.opened_by, "at": h.opened_at.isoformat(), "reason": h.reason} for h in holds]


def confirm_holds(change: Change, row: PrincipalRow, confirmer: PrincipalRow | None, reason: str) -> list[str]:
    """Clear every open hold of ``row`` for the agency person ``confirmer`` (see the module); the kinds cleared."""
    actor: Actor = change.actor
    text = (reason or "").strip()
    if not text or len(text) > REASON_MAX:
        raise IdentityError(f"a recovery confirmation needs a reason (1 to {REASON_MAX} characters): it is ledgered")
    if actor.is_host or confirmer is None:
        raise IdentityPermissionError(
            "the host administrator cannot confirm a recovery: an agency person confirms it with their own "
            "credentials (--key-file F --totp C, or an API or console session): the host alone never acts as anyone"
        )
    if confirmer.role != Role.AGENCY or actor.role != Role.AGENCY:
        raise IdentityPermissionError(f"role {confirmer.role!r} may not confirm a recovery; allowed: agency")
    if not confirmer.active:
        raise IdentityPermissionError(f"principal {confirmer.name!r} is suspended")
    if confirmer.id == row.id:
        raise IdentityPermissionError("nobody confirms their own recovery: another agency person does")
    if open_holds(change.session, confirmer):
        raise IdentityPermissionError(f"principal {confirmer.name!r} is itself held: it confirms nobody")
    if row.role == Role.AGENCY and row.org and confirmer.org and row.org != confirmer.org:
        raise IdentityPermissionError(f"an agency person of {confirmer.org!r} does not confirm one of {row.org!r}")
    holds = open_holds(change.session, row)
    if not holds:
        raise IdentityError(f"principal {row.name!r} is not held: there is nothing to confirm")
    recoverers = {h.opened_by for h in holds}
    if confirmer.name in recoverers:
        raise IdentityPermissionError(
            f"{confirmer.name!r} performed this recovery: another agency person confirms it (two people, SATRE 3.2.01)"
        )
    now = utcnow()
    for hold in holds:
        hold.cleared_at, hold.cleared_by, hold.clear_reason = now, confirmer.name, text
    kinds = [h.kind for h in holds]
    payload: dict[str, object] = {"kinds": kinds, "recovered_by": sorted(recoverers), "reason": text}
    change.log("principal.recovery_confirmed", f"principal:{row.name}", payload)
    return kinds
