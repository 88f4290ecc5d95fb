"""Short-lived JWTs for the API.

Verification pins the algorithm list to the one we sign with, so ``alg: none`` and
algorithm-confusion tokens are rejected before any signature is looked at, and requires every
claim we rely on: a token that omits ``exp`` must not live forever.

A token exchanged for an API key carries that key's id in the ``kid`` claim of its payload (not the
header's ``kid``, which would name a signing key): the identity service looks the key up on every
request, so revoking or rotating the key ends the token at once, not when it expires.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from operators.roles import Role

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "role", "iss", "aud", "exp", "iat", "jti")
MIN_KEY_BYTES = 32


class TokenError(Exception):
    """A token was refused; the message says why without echoing the token."""


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified content of a token."""

    sub: str
    role: Role
    jti: str
    issued_at: datetime
    expires_at: datetime
    key_id: str | None = None  # the API key this token was exchanged for (``kid``)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: Claims


class TokenService:
    """Issues and verifies the instance's JWTs with one HMAC key."""

    def __init__(
        self,
        key: bytes,
        *,
        issuer: str,
        audience: str,
        ttl: timedelta,
        leeway: timedelta = timedelta(seconds=5),
    ) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"JWT signing key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._leeway = leeway

    def issue(self, subject: str, role: Role, *, key_id: str | None = None, now: datetime | None = None) -> IssuedToken:
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        claims = Claims(
            sub=subject,
            role=role,
            jti=uuid.UUID(bytes=secrets.token_bytes(16), version=4).hex,
            issued_at=issued,
            expires_at=issued + self.ttl,
            key_id=key_id,
        )
        payload: dict[str, object] = {
            "sub": claims.sub,
            "role": claims.role.value,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(claims.issued_at.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "jti": claims.jti,
        }
        if key_id is not None:
            payload["kid"] = key_id
        return IssuedToken(jwt.encode(payload, self._key, algorithm=ALGORITHM), claims)

    def verify(self, token: str) -> Claims:
        """The claims of a valid token; raises :class:`TokenError` for anything else."""
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenError("token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(f"token algorithm not allowed (only {ALGORITHM})") from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"malformed token: {type(exc).__name__}") from None
        try:
            role = Role.parse(payload["role"])
        except ValueError as exc:
            raise TokenError(f"token carries an {exc}") from None
        sub, jti = payload["sub"], payload["jti"]
        if not isinstance(sub, str) or not sub or not isinstance(jti, str) or not jti:
            raise TokenError("token subject or id is empty")
        key_id = payload.get("kid")
        if key_id is not None and (not isinstance(key_id, str) or not key_id):
            raise TokenError("token key id is malformed")
        return Claims(
            sub=sub,
            role=role,
            jti=jti,
            issued_at=datetime.fromtimestamp(payload["iat"], UTC),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            key_id=key_id,
        )
