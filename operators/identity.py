"""Principals, API keys and the exchange of an API key for a JWT.

An API key looks like ``ky_<key id>_<secret>``. The key id is looked up in the database; only
the SHA-256 digest of the secret is stored and it is compared in constant time. A JWT carries the
id of the key it was exchanged for (``kid``), and every request with a JWT looks up, in one indexed
query, that key, its principal and whether the token itself was ended (logout): revoking or
rotating a key, suspending its principal or logging out takes effect at once, not when the token
expires (黑龙江省政务数据管理暂行办法 第三十八条: account security and access control).

Who manages whom: the host administrator (the local CLI) manages every principal. An agency
principal (over the API and the console) manages operator and custodian principals and its own keys,
never another agency or regulator principal: a reviewer who could mint reviewers, or keys of
another reviewer, would make the independent review of releases one person's vote
(双鸭山市公共数据管理暂行办法 第五十二条), and the supervisor is not appointed by the supervised
(第六十四条). Every change is ledgered in its own transaction (第二十条).

A key alone obtains nothing: the exchange also takes the principal's current TOTP code, and enrolment,
confirmation and reset of that second factor are ledgered here (``operators.second_factor``, SATRE 3.2.04).
A credential given to someone by another (a key issued or rotated, a factor reset) holds that person until a
second agency person confirms it, and changed credentials end open sessions (``operators.recovery``, SATRE 3.2.01).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from core import Actor, JoinedRecorder, Recorder, actor_of
from ledger import Ledger
from operators.errors import (
    AuthenticationError,
    IdentityError,
    IdentityPermissionError,
    UnknownPrincipalError,
)
from operators.models import ApiKeyRow, PrincipalRow, RecoveryHoldRow, TotpRow, utcnow
from operators.organisations import checked_org, clean_org
from operators.recovery import (
    CONFIRMED_ROLES,
    HoldKind,
    confirm_holds,
    end_sessions,
    holds_json,
    open_hold,
)
from operators.roles import Role
from operators.second_factor import SecondFactors, TotpEnrolment
from operators.sessions import Principal, TokenSessions
from operators.tokens import IssuedToken, TokenService

KEY_PREFIX = "ky"
_KEY_RE = re.compile(r"^ky_(?P<key_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")
_KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,126}[a-z0-9]$")
#: Roles an agency principal may create and manage; the others are the host administrator's.
AGENCY_MANAGES = frozenset({Role.OPERATOR, Role.CUSTODIAN})


@dataclass(frozen=True, slots=True)
class NewApiKey:
    principal: Principal
    api_key: str  # shown once; only its digest is kept
    totp_secret: str | None = None  # a second factor the host enrolled with the principal (base32), shown once

    @property
    def key_id(self) -> str:
        """The key's public id (what ``key rotate`` and ``key revoke`` name)."""
        return self.api_key.split("_")[1]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _make_key() -> tuple[str, str, str]:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{KEY_PREFIX}_{key_id}_{secret}", key_id, _digest(secret)


def _may_manage(by: Principal | None, role: Role, name: str) -> None:
    """The host manages anyone; an agency principal operators, custodians and itself (see the module)."""
    if by is None:
        return
    if by.role != Role.AGENCY:
        raise IdentityPermissionError(f"role {by.role.value!r} may not manage principals or keys; allowed: agency")
    if role not in AGENCY_MANAGES and name != by.name:
        raise IdentityPermissionError(
            f"{role.value} principals and their keys are managed by the host administrator "
            "(`keyong principal add`, `keyong key …`): an agency principal manages operators, custodians "
            "and its own keys (independent review, 双鸭山 第五十二条; supervision, 第六十四条)"
        )


def host_actor() -> tuple[str, str]:
    """Ledger actor and role of the local host administrator, acting through the CLI (DESIGN.md)."""
    host = Actor.host()
    return host.name, host.role


class IdentityService(TokenSessions):
    """Principals and credentials of one instance; every change is ledgered in its transaction."""

    def __init__(
        self,
        engine: Engine,
        tokens: TokenService,
        ledger: Ledger,
        totp_key: bytes,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._engine = engine
        self.tokens = tokens
        self._recorder = Recorder(engine, ledger)
        self.second_factor = SecondFactors(totp_key, clock)

    @contextmanager
    def _change(self, by: Principal | None, action: str, subject: str, payload: dict[str, object]) -> Iterator[Session]:
        """A session whose changes commit together with their ledger entry, or not at all.

        ``payload`` may still be filled inside the block: it is read when the change commits.
        """
        with self._recorder.change(actor_of(by)) as change:
            yield change.session
            change.log(action, subject, payload)

    def count_principals(self) -> int:
        with Session(self._engine) as session:
            return session.scalar(select(func.count()).select_from(PrincipalRow)) or 0

    # --- principals ------------------------------------------------------------------------------

    def create_principal(
        self,
        name: str,
        role: Role | str,
        *,
        org: str | None = None,
        by: Principal | None = None,
        alongside: Callable[[Recorder], object] | None = None,
        enrol_totp: bool = False,
        bootstrap: bool = False,
    ) -> NewApiKey:
        """A new principal with a first API key; the key is returned once and never stored.

        ``enrol_totp`` (the host only: ``keyong init``'s and the demo's principals): its second factor is
        enrolled in the same transaction and entry, confirmed, and its secret returned once with the key.

        ``bootstrap`` (``keyong init`` only): an agency or custodian principal the host creates is otherwise
        held *unconfirmed* until an agency person confirms it (``operators.recovery``).

        ``alongside`` runs in the same transaction (given a recorder joined to it), so a principal
        and what it belongs to (``keyong operator add --login``) are created together or not at all.
        """
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise IdentityError(f"principal name {name!r} must be 3-128 characters of a-z, 0-9, '.', '_' or '-'")
        try:
            parsed = Role.parse(role)
        except ValueError as exc:
            raise IdentityError(f"{exc}; one of {', '.join(r.value for r in Role)}") from None
        clean_org(org)  # a malformed text is refused before anything else is looked at
        _may_manage(by, parsed, name)
        if (enrol_totp or bootstrap) and by is not None:
            raise IdentityPermissionError(
                "only the host enrols a second factor for someone (a person enrols their own) or bootstraps an instance"
            )
        api_key, key_id, digest = _make_key()
        secret = None
        payload: dict[str, object] = {"role": parsed.value, "key_id": key_id}
        with self._recorder.change(actor_of(by)) as change:
            session = change.session
            if session.scalar(select(PrincipalRow.id).where(PrincipalRow.name == name)) is not None:
                raise IdentityError(f"principal {name!r} already exists")
            if alongside is not None:
                alongside(JoinedRecorder(change, self._recorder))
                session.flush()
            org = checked_org(session, parsed, name, org)  # after ``alongside``: it may register the operator
            if org:
                payload["org"] = org
            row = PrincipalRow(name=name, role=parsed.value, org=org, created_at=utcnow(), active=True)
            row.api_keys.append(ApiKeyRow(key_id=key_id, secret_sha256=digest, created_at=utcnow()))
            session.add(row)
            if enrol_totp:
                session.flush()
                secret = self.second_factor.enrol(session, row).secret
                self.second_factor.confirm_on_host(session, row)
                payload["second_factor"] = "enrolled_by_host"
            change.log("principal.created", f"principal:{name}", payload)
            if parsed in CONFIRMED_ROLES and not bootstrap:  # its maker (host or agency) read its first key
                who = "the host" if by is None else by.name
                open_hold(change, row, HoldKind.UNCONFIRMED, f"{parsed.value} principal created by {who} after init")
        return NewApiKey(Principal(name, parsed), api_key, secret)

    def set_active(self, name: str, active: bool, *, by: Principal | None = None, reason: str = "") -> None:
        """Suspend or reactivate a principal; takes effect on its very next request."""
        action = "principal.reactivated" if active else "principal.suspended"
        with self._change(by, action, f"principal:{name}", {"reason": reason}) as session:
            row = self._row(session, name)
            _may_manage(by, Role(row.role), name)
            if by is not None and by.name == name:
                raise IdentityPermissionError("a principal does not suspend or reactivate itself")
            if row.active == active:
                raise IdentityError(f"principal {name!r} is already {'active' if active else 'suspended'}")
            row.active = active
            if not active:
                end_sessions(row)  # its tokens stay refused after a reactivation too

    def list_principals(self) -> list[dict[str, object]]:
        """Every principal with its organisation and keys (ids and dates only: secrets are never kept)."""
        with Session(self._engine) as session:
            rows = session.scalars(
                select(PrincipalRow).options(selectinload(PrincipalRow.api_keys)).order_by(PrincipalRow.id)
            ).all()
            factors = {t.principal_id: t.confirmed_at is not None for t in session.scalars(select(TotpRow))}
            held: dict[int, list[RecoveryHoldRow]] = {}
            for hold in session.scalars(select(RecoveryHoldRow).where(RecoveryHoldRow.cleared_at.is_(None))):
                held.setdefault(hold.principal_id, []).append(hold)
            return [
                {
                    "name": r.name,
                    "role": r.role,
                    "active": r.active,
                    "created_at": r.created_at.isoformat(),
                    "org": r.org,
                    "keys": [_key_json(k) for k in sorted(r.api_keys, key=lambda k: k.id)],
                    "second_factor": None if r.id not in factors else ("confirmed" if factors[r.id] else "pending"),
                    "recovery_hold": holds_json(held[r.id]) if r.id in held else None,
                }
                for r in rows
            ]

    def get_principal(self, name: str) -> dict[str, object]:
        """One principal as :meth:`list_principals` shows it."""
        for item in self.list_principals():
            if item["name"] == name:
                return item
        raise UnknownPrincipalError(f"no principal {name!r}")

    # --- keys ------------------------------------------------------------------------------------

    def issue_api_key(self, name: str, *, by: Principal | None = None) -> NewApiKey:
        """An additional API key for an existing, active principal."""
        api_key, key_id, digest = _make_key()
        with self._recorder.change(actor_of(by)) as change:
            row = self._active_row(change.session, name)
            _may_manage(by, Role(row.role), name)
            row.api_keys.append(ApiKeyRow(key_id=key_id, secret_sha256=digest, created_at=utcnow()))
            principal = Principal(row.name, Role(row.role))
            change.log("principal.key_issued", f"principal:{name}", {"key_id": key_id})
            if by is None or by.name != name:
                open_hold(change, row, HoldKind.KEY_ISSUED, f"key {key_id} issued for the principal by another")
        return NewApiKey(principal, api_key)

    def rotate_api_key(self, key_id: str, *, by: Principal | None = None) -> NewApiKey:
        """A new key replacing ``key_id``, which is revoked in the same transaction: its tokens end at once."""
        api_key, new_id, digest = _make_key()
        payload: dict[str, object] = {"key_id": key_id, "new_key_id": new_id}
        with self._recorder.change(actor_of(by)) as change:
            key = self._live_key(change.session, key_id, by)
            if not key.principal.active:
                raise IdentityError(f"principal {key.principal.name!r} is suspended: reactivate it first")
            key.revoked_at = utcnow()
            key.principal.api_keys.append(ApiKeyRow(key_id=new_id, secret_sha256=digest, created_at=utcnow()))
            principal = Principal(key.principal.name, Role(key.principal.role))
            end_sessions(key.principal)
            change.log("principal.key_rotated", f"principal:{principal.name}", payload)
            if by is None or by.name != principal.name:
                open_hold(change, key.principal, HoldKind.KEY_ROTATED, f"key {key_id} replaced by {new_id} by another")
        return NewApiKey(principal, api_key)

    def revoke_api_key(self, key_id: str, *, by: Principal | None = None) -> dict[str, object]:
        """Revoke one key; every token exchanged for it stops working on its next request."""
        with self._recorder.change(actor_of(by)) as change:
            key = self._live_key(change.session, key_id, by)
            key.revoked_at = utcnow()
            end_sessions(key.principal)
            name = key.principal.name
            change.log("principal.key_revoked", f"principal:{name}", {"key_id": key_id})
            return {"principal": name, **_key_json(key)}

    def revoke_api_keys(self, name: str, *, by: Principal | None = None) -> int:
        """Revoke every live key of a principal; returns how many were revoked."""
        revoked: list[str] = []
        with self._change(by, "principal.keys_revoked", f"principal:{name}", {"key_ids": revoked}) as session:
            row = self._row(session, name)
            _may_manage(by, Role(row.role), name)
            end_sessions(row)
            for key in row.api_keys:
                if key.revoked_at is None:
                    key.revoked_at = utcnow()
                    revoked.append(key.key_id)
        return len(revoked)

    def _live_key(self, session: Session, key_id: str, by: Principal | None) -> ApiKeyRow:
        key = None
        if isinstance(key_id, str) and _KEY_ID_RE.match(key_id):
            key = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
        if key is None:
            raise UnknownPrincipalError(f"no API key {key_id!r} (a key id is 16 hex digits: see `principal list`)")
        _may_manage(by, Role(key.principal.role), key.principal.name)
        if key.revoked_at is not None:
            raise IdentityError(f"API key {key_id} was already revoked at {key.revoked_at.isoformat()}")
        return key

    # --- authentication --------------------------------------------------------------------------

    def _check_api_key(self, session: Session, api_key: str) -> ApiKeyRow:
        match = _KEY_RE.match(api_key.strip())
        if match is None:
            raise AuthenticationError("malformed API key")
        key = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == match["key_id"]))
        # Compare against a dummy digest when the id is unknown so timing does not tell
        # which key ids exist.
        expected = key.secret_sha256 if key is not None else "0" * 64
        matches = hmac.compare_digest(expected, _digest(match["secret"]))
        if key is None or not matches:
            raise AuthenticationError("unknown API key")
        if key.revoked_at is not None:
            raise AuthenticationError("API key revoked")
        if not key.principal.active:
            raise AuthenticationError("principal is suspended")
        return key

    def authenticate_api_key(self, api_key: str) -> Principal:
        """The principal an API key belongs to, if it is valid, live and its principal active."""
        with Session(self._engine) as session:
            key = self._check_api_key(session, api_key)
            return Principal(key.principal.name, Role(key.principal.role))

    def exchange(self, api_key: str, totp: str | None, *, confirming: bool = False) -> IssuedToken:
        """``POST /auth/token``: a short-lived JWT for a valid API key and the principal's current TOTP code,
        recorded in the ledger; the code's step is spent in the same transaction (SATRE 3.2.04).

        ``confirming`` (the console's enrolment): the code confirms a pending factor, ledgered with the login.
        The token carries the key's id (``kid``), so it lives only as long as the key does. Access to
        the platform belongs to the usage records kept at least three years
        (双鸭山市公共数据管理暂行办法 第二十条).
        """
        principal = self.authenticate_api_key(api_key)
        key_id = api_key.strip().split("_")[1]
        subject = f"principal:{principal.name}"
        with (
            self.second_factor.counting(self._recorder, principal.name),
            self._recorder.change(actor_of(principal)) as change,
        ):
            key = self._check_api_key(change.session, api_key)  # again inside the write: it may just have been revoked
            if self.second_factor.consume(change.session, key.principal, totp, confirming=confirming):
                change.log("principal.totp_confirmed", subject, {"key_id": key_id})
            key.last_used_at = utcnow()
            epoch = key.principal.credential_epoch or 0  # the session ends when the credentials change
            issued = self.tokens.issue(principal.name, principal.role, key_id=key_id, epoch=epoch)
            payload: dict[str, object] = {
                "jti": issued.claims.jti,
                "key_id": key_id,
                "expires_at": issued.claims.expires_at.isoformat(),
            }
            change.log("auth.token_issued", subject, payload)
        return issued

    # --- the second factor (operators.second_factor) ------------------------------------------------

    def enrol_totp(self, api_key: str) -> TotpEnrolment:
        """A new TOTP secret for the key's principal, shown once; it counts only once a code confirmed it.

        Refused when the principal already has a confirmed factor (only a reset replaces one)."""
        principal = self.authenticate_api_key(api_key)
        payload: dict[str, object] = {"key_id": api_key.strip().split("_")[1]}
        with self._change(principal, "principal.totp_enrolled", f"principal:{principal.name}", payload) as session:
            return self.second_factor.enrol(session, self._check_api_key(session, api_key).principal)

    def totp_state(self, api_key: str) -> str | None:
        """The second factor of a valid key's principal: ``"confirmed"``, ``"pending"`` or ``None`` (the
        console's login offers enrolment unless confirmed); raises ``AuthenticationError`` for a bad key."""
        with Session(self._engine) as session:
            return self.second_factor.state(session, self._check_api_key(session, api_key).principal)

    def confirm_totp(self, api_key: str, totp: str | None) -> str:
        """Confirm the key's principal's pending factor with its first code (ledgered); the principal's name."""
        principal = self.authenticate_api_key(api_key)
        subject = f"principal:{principal.name}"
        with (
            self.second_factor.counting(self._recorder, principal.name),
            self._change(principal, "principal.totp_confirmed", subject, {}) as session,
        ):
            self.second_factor.consume(session, self._check_api_key(session, api_key).principal, totp, confirming=True)
        return principal.name

    def check_totp(self, name: str, totp: str | None) -> None:
        """Spend a code of principal ``name`` (a CLI act by API key: the same second factor as a login)."""
        with self.second_factor.counting(self._recorder, name), self._recorder.change(actor_of(None)) as change:
            self.second_factor.consume(change.session, self._active_row(change.session, name), totp, confirming=False)

    def reset_totp(self, name: str, *, by: Principal | None = None, reason: str) -> None:
        """Delete a principal's second factor so its next login enrols again (the agency or the host;
        never one's own), ledgered with the reason."""
        reason = (reason or "").strip()
        if not reason:
            raise IdentityError("a reset of a second factor needs a reason (it is ledgered)")
        with self._recorder.change(actor_of(by)) as change:
            row = self._row(change.session, name)
            _may_manage(by, Role(row.role), name)
            if by is not None and by.name == name:
                raise IdentityPermissionError(
                    "a principal does not reset its own second factor: the agency or the host does"
                )
            state = self.second_factor.reset(change.session, row)
            end_sessions(row)
            change.log("principal.totp_reset", f"principal:{name}", {"reason": reason, "state": state})
            open_hold(change, row, HoldKind.TOTP_RESET, reason)

    def confirm_recovery(self, name: str, *, by: Principal | None, reason: str) -> list[str]:
        """An agency person other than the recoverer clears ``name``'s holds (``operators.recovery``); the kinds."""
        with self._recorder.change(actor_of(by)) as change:
            row = self._row(change.session, name)
            confirmer = (
                None if by is None else change.session.scalar(select(PrincipalRow).where(PrincipalRow.name == by.name))
            )
            return confirm_holds(change, row, confirmer, reason)

    @staticmethod
    def _row(session: Session, name: str) -> PrincipalRow:
        row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
        if row is None:
            raise UnknownPrincipalError(f"no principal {name!r}")
        return row

    @classmethod
    def _active_row(cls, session: Session, name: str) -> PrincipalRow:
        row = cls._row(session, name)
        if not row.active:
            raise IdentityError(f"principal {name!r} is suspended")
        return row


def _key_json(key: ApiKeyRow) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "live": key.revoked_at is None,
    }
