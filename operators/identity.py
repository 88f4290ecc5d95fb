"""Principals, API keys and the exchange of an API key for a JWT.

An API key looks like ``ky_<key id>_<secret>``. The key id is looked up in the database; only
the SHA-256 digest of the secret is stored and it is compared in constant time. Every request
with a JWT also checks that its principal is still active, so suspending someone takes
effect at once instead of when their token expires.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core import Actor, Recorder, actor_of
from ledger import Ledger
from operators.models import ApiKeyRow, PrincipalRow, utcnow
from operators.roles import Role
from operators.tokens import IssuedToken, TokenError, TokenService

KEY_PREFIX = "ky"
_KEY_RE = re.compile(r"^ky_(?P<key_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,126}[a-z0-9]$")


class IdentityError(Exception):
    """A principal or key operation was refused."""


class AuthenticationError(IdentityError):
    """Credentials were missing, malformed, unknown, revoked or belong to an inactive principal."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts: a name and one role. Passed to routes and recorded as the ledger's actor."""

    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class NewApiKey:
    principal: Principal
    api_key: str  # shown once; only its digest is kept


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _make_key() -> tuple[str, str, str]:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{KEY_PREFIX}_{key_id}_{secret}", key_id, _digest(secret)


def host_actor() -> tuple[str, str]:
    """Ledger actor and role of the local host administrator, acting through the CLI (DESIGN.md)."""
    host = Actor.host()
    return host.name, host.role


class IdentityService:
    """Principals and credentials of one instance; every change is ledgered in its transaction."""

    def __init__(self, engine: Engine, tokens: TokenService, ledger: Ledger) -> None:
        self._engine = engine
        self.tokens = tokens
        self._recorder = Recorder(engine, ledger)

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

    def create_principal(self, name: str, role: Role, *, by: Principal | None = None) -> NewApiKey:
        """A new principal with a first API key; the key is returned once and never stored."""
        if not _NAME_RE.match(name):
            raise IdentityError(f"principal name {name!r} must be 3-128 characters of a-z, 0-9, '.', '_' or '-'")
        role = Role(role)
        api_key, key_id, digest = _make_key()
        payload: dict[str, object] = {"role": role.value, "key_id": key_id}
        with self._change(by, "principal.created", f"principal:{name}", payload) as session:
            if session.scalar(select(PrincipalRow.id).where(PrincipalRow.name == name)) is not None:
                raise IdentityError(f"principal {name!r} already exists")
            row = PrincipalRow(name=name, role=role.value, created_at=utcnow(), active=True)
            row.api_keys.append(ApiKeyRow(key_id=key_id, secret_sha256=digest, created_at=utcnow()))
            session.add(row)
        return NewApiKey(Principal(name, role), api_key)

    def issue_api_key(self, name: str, *, by: Principal | None = None) -> NewApiKey:
        """An additional API key for an existing, active principal."""
        api_key, key_id, digest = _make_key()
        with self._change(by, "principal.key_issued", f"principal:{name}", {"key_id": key_id}) as session:
            row = self._active_row(session, name)
            row.api_keys.append(ApiKeyRow(key_id=key_id, secret_sha256=digest, created_at=utcnow()))
            principal = Principal(row.name, Role(row.role))
        return NewApiKey(principal, api_key)

    def revoke_api_keys(self, name: str, *, by: Principal | None = None) -> int:
        """Revoke every live key of a principal; returns how many were revoked."""
        revoked: list[str] = []
        with self._change(by, "principal.keys_revoked", f"principal:{name}", {"key_ids": revoked}) as session:
            row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
            if row is None:
                raise IdentityError(f"no principal {name!r}")
            for key in row.api_keys:
                if key.revoked_at is None:
                    key.revoked_at = utcnow()
                    revoked.append(key.key_id)
        return len(revoked)

    def set_active(self, name: str, active: bool, *, by: Principal | None = None, reason: str = "") -> None:
        """Suspend or reactivate a principal; takes effect on its very next request."""
        action = "principal.reactivated" if active else "principal.suspended"
        with self._change(by, action, f"principal:{name}", {"reason": reason}) as session:
            row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
            if row is None:
                raise IdentityError(f"no principal {name!r}")
            row.active = active

    def list_principals(self) -> list[dict[str, object]]:
        with Session(self._engine) as session:
            rows = session.scalars(select(PrincipalRow).order_by(PrincipalRow.id)).all()
            return [
                {"name": r.name, "role": r.role, "active": r.active, "created_at": r.created_at.isoformat()}
                for r in rows
            ]

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

    def exchange(self, api_key: str) -> IssuedToken:
        """``POST /auth/token``: a short-lived JWT for a valid API key, recorded in the ledger.

        Access to the platform belongs to the usage records kept at least three years
        (双鸭山市公共数据管理暂行办法 第二十条).
        """
        principal = self.authenticate_api_key(api_key)
        issued = self.tokens.issue(principal.name, principal.role)
        key_id = api_key.strip().split("_")[1]
        payload: dict[str, object] = {
            "jti": issued.claims.jti,
            "key_id": key_id,
            "expires_at": issued.claims.expires_at.isoformat(),
        }
        with self._change(principal, "auth.token_issued", f"principal:{principal.name}", payload) as session:
            key = self._check_api_key(session, api_key)  # again inside the write: it may just have been revoked
            key.last_used_at = utcnow()
        return issued

    def authenticate_token(self, token: str) -> Principal:
        """The principal a JWT speaks for, if the token verifies and the principal may still act."""
        try:
            claims = self.tokens.verify(token)
        except TokenError as exc:
            raise AuthenticationError(str(exc)) from None
        with Session(self._engine) as session:
            row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == claims.sub))
        if row is None:
            raise AuthenticationError("token subject is not a principal of this instance")
        if not row.active:
            raise AuthenticationError("principal is suspended")
        if row.role != claims.role.value:
            raise AuthenticationError("token role does not match the principal's role")
        return Principal(row.name, claims.role)

    @staticmethod
    def _active_row(session: Session, name: str) -> PrincipalRow:
        row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
        if row is None:
            raise IdentityError(f"no principal {name!r}")
        if not row.active:
            raise IdentityError(f"principal {name!r} is suspended")
        return row
