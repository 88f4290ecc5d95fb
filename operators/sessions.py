"""Sessions of the identity service: accepting a JWT on each request, ending one, and naming who a refused one claims.

Split from ``operators.identity`` (which stays the one service: :class:`IdentityService` mixes this in). A token
is accepted only if it verifies, was not ended (logout), its key is live, its principal active, issued under the
principal's current credential epoch (a factor reset, key revocation or rotation, or a suspension since ends it)
and the principal is not held for a recovery (``operators.recovery``; SATRE 3.2.01): one indexed query per request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import jwt
from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import actor_of
from operators.errors import AuthenticationError, UnknownPrincipalError
from operators.models import ApiKeyRow, PrincipalRow, RecoveryHoldRow, RevokedTokenRow, utcnow
from operators.recovery import RecoveryHoldError, hold_message, open_holds
from operators.roles import Role
from operators.tokens import IssuedToken, TokenError, TokenService

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core import Recorder

__all__ = ["Principal", "TokenSessions"]

_KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts: a name and one role. Passed to routes and recorded as the ledger's actor."""

    name: str
    role: Role


class TokenSessions:
    """Accepting and ending JWTs (mixed into ``IdentityService``, which sets these attributes)."""

    _engine: Engine
    _recorder: Recorder
    tokens: TokenService

    def key_owner(self, key_id: str) -> str | None:
        """The name of the principal holding key ``key_id``, or ``None``."""
        if not isinstance(key_id, str) or not _KEY_ID_RE.match(key_id):
            return None
        with Session(self._engine) as session:
            return session.scalar(select(PrincipalRow.name).join(ApiKeyRow.principal).where(ApiKeyRow.key_id == key_id))

    def ensure_not_held(self, name: str) -> None:
        """Raise :class:`RecoveryHoldError` with the reason while ``name`` is held (a CLI act by key asks it)."""
        with Session(self._engine) as session:
            row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
            if row is None:
                raise UnknownPrincipalError(f"no principal {name!r}")
            holds = open_holds(session, row)
            if holds:
                raise RecoveryHoldError(hold_message(name, holds))

    def claimed_name(self, credential: str) -> str | None:
        """The name a refused credential claims, for the security events (SATRE 2.5.03): the owner of
        an API key's public id, or a JWT's unverified ``sub``; never the credential nor its secret.

        A claimed name is only a claim (a forged token names whom it likes), so it is recorded as such.
        """
        text = (credential or "").strip()
        if text.startswith("ky_"):
            parts = text.split("_")
            return self.key_owner(parts[1]) if len(parts) > 2 else None
        try:
            claims = jwt.decode(text, options={"verify_signature": False})
        except Exception:  # anything that is not a JWT claims nobody
            return None
        sub = claims.get("sub") if isinstance(claims, dict) else None
        return sub[:128] if isinstance(sub, str) and sub else None

    def authenticate_token(self, token: str) -> Principal:
        """The principal a JWT speaks for, if the token verifies, was not ended, its key is live and
        its principal may still act: one indexed query (the key by its unique id, the jti by its
        primary key)."""
        try:
            claims = self.tokens.verify(token)
        except TokenError as exc:
            raise AuthenticationError(str(exc)) from None
        if claims.key_id is None:
            raise AuthenticationError("token carries no key id: exchange an API key at POST /auth/token")
        # logout ends the token and, through its session id, every token renewed from the same login
        ended = exists().where(RevokedTokenRow.jti.in_({claims.jti, claims.sid}))
        held = exists().where(RecoveryHoldRow.principal_id == PrincipalRow.id, RecoveryHoldRow.cleared_at.is_(None))
        columns = (PrincipalRow.name, PrincipalRow.role, PrincipalRow.active, ApiKeyRow.revoked_at, ended)
        query = (
            select(*columns, PrincipalRow.credential_epoch, held)
            .join(ApiKeyRow.principal)
            .where(ApiKeyRow.key_id == claims.key_id)
        )
        with Session(self._engine) as session:
            row = session.execute(query).first()
        if row is None or row[0] != claims.sub:
            raise AuthenticationError("token subject is not a principal of this instance holding its key")
        name, role, active, key_revoked_at, token_ended, epoch, is_held = row
        if key_revoked_at is not None:
            raise AuthenticationError("API key revoked")
        if token_ended:
            raise AuthenticationError("token revoked (logged out)")
        if not active:
            raise AuthenticationError("principal is suspended")
        if role != claims.role.value:
            raise AuthenticationError("token role does not match the principal's role")
        if (claims.epoch or 0) != (epoch or 0):
            raise AuthenticationError(
                "session ended: the principal's credentials changed since (a factor reset, a key revoked or "
                "rotated, a suspension); log in again"
            )
        if is_held:
            self.ensure_not_held(name)
        return Principal(name, claims.role)

    def revoke_token(self, token: str) -> bool:
        """End a JWT before it expires (logout); ``False`` when it was not a live token of this instance.

        Rows of tokens past their expiry are swept here: the signature check refuses those anyway.
        """
        try:
            claims = self.tokens.verify(token)
        except TokenError:
            return False
        now = utcnow()
        payload: dict[str, object] = {"jti": claims.jti, "key_id": claims.key_id}
        if claims.sid != claims.jti:
            payload["sid"] = claims.sid
        try:
            with self._recorder.change(actor_of(Principal(claims.sub, claims.role))) as change:
                session = change.session
                if session.get(RevokedTokenRow, claims.jti) is not None:
                    return False
                session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at < now))
                expiry = claims.expires_at + timedelta(minutes=1)  # past the verifier's leeway
                session.add(RevokedTokenRow(jti=claims.jti, principal=claims.sub, expires_at=expiry, revoked_at=now))
                if claims.sid != claims.jti and session.get(RevokedTokenRow, claims.sid) is None:
                    # every token of the chain was issued by now, so lives at most one ttl more
                    chain_expiry = max(expiry, now + self.tokens.ttl + timedelta(minutes=1))
                    session.add(
                        RevokedTokenRow(jti=claims.sid, principal=claims.sub, expires_at=chain_expiry, revoked_at=now)
                    )
                change.log("auth.token_revoked", f"principal:{claims.sub}", payload)
        except IntegrityError:  # the same token logged out twice at once: it is ended either way
            return False
        return True

    def renew_token(self, token: str, *, max_age: timedelta) -> IssuedToken | None:
        """A fresh token continuing ``token``'s session (a console in use, issue 18), or ``None`` once the
        session reached ``max_age`` since its login (then it simply expires: log in again).

        The token must still be accepted (:meth:`authenticate_token` raises otherwise), so a revoked key, a
        suspension, a changed credential epoch or a logout stops renewal at once. The new token keeps the
        API key, the epoch, the session id and the login time; it never outlives login + ``max_age``.
        Recorded in the ledger as ``auth.token_renewed`` (access belongs to the usage records kept three
        years, 双鸭山市公共数据管理暂行办法 第二十条).
        """
        principal = self.authenticate_token(token)
        try:
            claims = self.tokens.verify(token)
        except TokenError as exc:
            raise AuthenticationError(str(exc)) from None
        limit = claims.started_at + max_age
        now = datetime.now(UTC)
        if now >= limit or claims.key_id is None:
            return None
        with self._recorder.change(actor_of(principal)) as change:
            issued = self.tokens.issue(
                principal.name,
                principal.role,
                key_id=claims.key_id,
                epoch=claims.epoch,
                renewing=claims,
                not_after=limit,
            )
            payload: dict[str, object] = {
                "jti": issued.claims.jti,
                "previous_jti": claims.jti,
                "sid": claims.sid,
                "key_id": claims.key_id,
                "expires_at": issued.claims.expires_at.isoformat(),
            }
            change.log("auth.token_renewed", f"principal:{principal.name}", payload)
        return issued
