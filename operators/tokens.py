"""Short-lived JWTs for the API.

Verification pins the algorithm list to the one we sign with, so ``alg: none`` and
algorithm-confusion tokens are rejected before any signature is looked at, and requires every
claim we rely on: a token that omits ``exp`` must not live forever.
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

    def issue(self, subject: str, role: Role, *, now: datetime | None = None) -> IssuedToken:
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        claims = Claims(
            sub=subject,
            role=role,
            jti=uuid.UUID(bytes=secrets.token_bytes(16), version=4).hex,
            issued_at=issued,
            expires_at=issued + self.ttl,
        )
        payload = {
            "sub": claims.sub,
            "role": claims.role.value,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(claims.issued_at.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "jti": claims.jti,
        }
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
        return Claims(
            sub=sub,
            role=role,
            jti=jti,
            issued_at=datetime.fromtimestamp(payload["iat"], UTC),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
