"""Tables of the identity side: principals, their API keys, and the tokens ended before they expire.

API keys are stored only as SHA-256 digests of their secret part: the keys are 256-bit random
strings, so a digest cannot be brute-forced, and a copy of the database gives nobody a key
(黑龙江省政务数据管理暂行办法 第三十八条: account security and access control).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, MetaData, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core import NAMING_CONVENTION, UTCDateTime, utcnow

__all__ = [
    "ApiKeyRow",
    "PrincipalRow",
    "RecoveryHoldRow",
    "RevokedTokenRow",
    "TotpRow",
    "UTCDateTime",
    "metadata",
    "utcnow",
]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PrincipalRow(Base):
    """Someone who can act on the platform: a person or system acting in exactly one role."""

    __tablename__ = "principals"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    org: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the organisation a person acts for
    # Bumped when a factor is reset, a key revoked or rotated, or the principal suspended: a token carries the
    # epoch it was issued under (``cep``), so every session opened before such a change ends at once.
    credential_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    api_keys: Mapped[list[ApiKeyRow]] = relationship(back_populates="principal")


class ApiKeyRow(Base):
    """One API key of a principal; ``key_id`` is public, ``secret_sha256`` the digest of the rest."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    principal: Mapped[PrincipalRow] = relationship(back_populates="api_keys")


class RevokedTokenRow(Base):
    """A JWT ended before its expiry (a console or API logout), by its ``jti``.

    Kept only until the token would have expired anyway: after that the signature check refuses it,
    so the row is swept. The lookup is by primary key, once per request.
    """

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TotpRow(Base):
    """A principal's second factor (RFC 6238 TOTP; SATRE 3.2.04): its secret sealed with AES-256-GCM under
        the instance's ``totp.key`` (never in clear here), whether its first code confirmed it, and the last
        time step a code was accepted for (a code's step is used at most once: the replay guard), and the run of
    wrong codes that locks it for a while (the brute-force guard).

        One row per principal at most; a reset deletes it, so the next login needs a new enrolment.
    """

    __tablename__ = "principal_totp"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"), unique=True)
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)  # 12-byte nonce + AES-GCM ciphertext and tag
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Wrong codes in a row and the step from which codes are tried again (RFC 4226 §7.3 throttling).
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until_step: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RecoveryHoldRow(Base):
    """A credential someone else gave a person, or a voting principal the host made, awaiting a second person
    (``operators.recovery``; SATRE 3.2.01): while a row of the principal is open (``cleared_at`` unset), its
    authenticated acts are refused. ``opened_by`` is the actor who performed the recovery (``host:…`` or an
    agency person), who may not clear it; ``cleared_by`` the agency person who did, with ``clear_reason``."""

    __tablename__ = "principal_recovery_holds"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    opened_by: Mapped[str] = mapped_column(String(160))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str] = mapped_column(String(500))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cleared_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    clear_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


metadata = Base.metadata
