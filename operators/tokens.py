"""Short-lived JWTs for the API.

Verification pins the algorithm list to the one we sign with, so ``alg: none`` and
algorithm-confusion tokens are rejected before any signature is looked at, and requires every
claim we rely on: a token that omits ``exp`` must not live forever.

A token exchanged for an API key carries that key's id in the ``kid`` claim of its payload (not the
header's ``kid``, which would name a signing key): the identity service looks the key up on every
request, so revoking or rotating the key ends the token at once, not when it expires. It also carries the
principal's credential epoch when it was issued (``cep``): a factor reset, a key revoked or rotated, or a
suspension bumps it, and the identity service then refuses every token issued before (``operators.recovery``).

The header's ``kid`` names the instance's HMAC signing key (SATRE 2.4.05: keys are rotated). A
:class:`JwtKeyring` holds the current key and, after ``keyong keys rotate --jwt``, the previous one:
a token signed by the previous key is accepted only if it was issued before that key retired and
only until the grace period (the token lifetime plus leeway) has passed, so every token the old
key issued may live out its life and none can be minted with it afterwards. A token naming an
unknown key is refused; one naming none (issued before key ids existed) is checked against the
current key only.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from operators.roles import Role

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "role", "iss", "aud", "exp", "iat", "jti")
MIN_KEY_BYTES = 32


def jwt_key_id(secret: bytes) -> str:
    """The public id of an HMAC signing key: 16 hex digits of a domain-separated SHA-256, never the key."""
    return hashlib.sha256(b"keyong-jwt-kid\x00" + secret).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One HMAC key of the keyring; ``retired_at`` is set once a newer key took over."""

    secret: bytes
    retired_at: datetime | None = None

    @property
    def kid(self) -> str:
        return jwt_key_id(self.secret)


@dataclass(frozen=True, slots=True)
class JwtKeyring:
    """The current signing key and, for one grace period after a rotation, the previous one."""

    current: SigningKey
    previous: SigningKey | None = None

    def __post_init__(self) -> None:
        for key in (self.current, self.previous):
            if key is not None and len(key.secret) < MIN_KEY_BYTES:
                raise ValueError(f"JWT signing key must be at least {MIN_KEY_BYTES} bytes")
        if self.previous is not None and self.previous.retired_at is None:
            raise ValueError("the previous JWT key needs the time it retired")


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
    epoch: int | None = None  # the principal's credential epoch when issued (``cep``)
    #: The login this token continues (``sid``: the first token's jti) and when it happened (``sst``): a
    #: console session renewed while in use keeps both, so logout ends the whole chain and the absolute
    #: maximum counts from the login (issue 18). A token with none is its own session.
    session_id: str | None = None
    session_start: datetime | None = None

    @property
    def sid(self) -> str:
        return self.session_id or self.jti

    @property
    def started_at(self) -> datetime:
        return self.session_start or self.issued_at


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: Claims


class TokenService:
    """Issues JWTs with the keyring's current HMAC key; verifies them by the key their header names.

    ``key`` is one secret, or a callable returning the keyring: called on every issue and verify,
    so a rotation done by another process (``keyong keys rotate --jwt``) takes effect without a
    restart (the caller caches the files it reads).
    """

    def __init__(
        self,
        key: bytes | Callable[[], JwtKeyring],
        *,
        issuer: str,
        audience: str,
        ttl: timedelta,
        leeway: timedelta = timedelta(seconds=5),
    ) -> None:
        if isinstance(key, bytes):
            fixed = JwtKeyring(SigningKey(key))
            self._keyring: Callable[[], JwtKeyring] = lambda: fixed
        else:
            self._keyring = key
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._leeway = leeway

    def issue(
        self,
        subject: str,
        role: Role,
        *,
        key_id: str | None = None,
        now: datetime | None = None,
        epoch: int | None = None,
        renewing: Claims | None = None,
        not_after: datetime | None = None,
    ) -> IssuedToken:
        """A new token; ``renewing``: it continues that token's session (same ``sid`` and ``sst``);
        ``not_after``: it expires no later than this (a session's absolute maximum)."""
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        expires = issued + self.ttl
        if not_after is not None:
            expires = min(expires, not_after.replace(microsecond=0))
        claims = Claims(
            sub=subject,
            role=role,
            jti=uuid.UUID(bytes=secrets.token_bytes(16), version=4).hex,
            issued_at=issued,
            expires_at=expires,
            key_id=key_id,
            epoch=epoch,
            session_id=renewing.sid if renewing else None,
            session_start=renewing.started_at if renewing else None,
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
        if epoch is not None:
            payload["cep"] = epoch
        if claims.session_id is not None and claims.session_start is not None:
            payload["sid"] = claims.session_id
            payload["sst"] = int(claims.session_start.timestamp())
        current = self._keyring().current
        token = jwt.encode(payload, current.secret, algorithm=ALGORITHM, headers={"kid": current.kid})
        return IssuedToken(token, claims)

    def _key_for(self, token: str) -> tuple[bytes, datetime | None]:
        """The secret the token's header names, and the latest ``iat`` it may carry (previous key)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"malformed token: {type(exc).__name__}") from None
        kid = header.get("kid")
        ring = self._keyring()
        if kid is None or kid == ring.current.kid:
            return ring.current.secret, None
        previous = ring.previous
        if previous is not None and previous.retired_at is not None and kid == previous.kid:
            if datetime.now(UTC) > previous.retired_at + self.ttl + self._leeway:
                raise TokenError("token is signed by a retired key")
            return previous.secret, previous.retired_at + self._leeway
        raise TokenError("token names an unknown signing key")

    def verify(self, token: str) -> Claims:
        """The claims of a valid token; raises :class:`TokenError` for anything else."""
        secret, issued_by = self._key_for(token)
        try:
            payload = jwt.decode(
                token,
                secret,
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
        if issued_by is not None and datetime.fromtimestamp(payload["iat"], UTC) > issued_by:
            raise TokenError("token is signed by a retired key")
        key_id = payload.get("kid")
        if key_id is not None and (not isinstance(key_id, str) or not key_id):
            raise TokenError("token key id is malformed")
        epoch = payload.get("cep")
        if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0):
            raise TokenError("token credential epoch is malformed")
        session_id, session_start = payload.get("sid"), payload.get("sst")
        if session_id is not None and (
            not isinstance(session_id, str)
            or not session_id
            or not isinstance(session_start, int)
            or isinstance(session_start, bool)
            or not 0 <= session_start <= payload["iat"]
        ):
            raise TokenError("token session claims are malformed")
        return Claims(
            sub=sub,
            role=role,
            jti=jti,
            issued_at=datetime.fromtimestamp(payload["iat"], UTC),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            key_id=key_id,
            epoch=epoch,
            session_id=session_id,
            session_start=datetime.fromtimestamp(session_start, UTC)
            if session_id is not None and isinstance(session_start, int)
            else None,
        )
