"""Tables of people's standing (issue 22): identity checks, terms of use and their acceptance, training.

SATRE 3.2.02, 1.5.01, 1.5.02, 1.6.04.

Rows are only ever added: the latest record of a kind is what counts, and the history stays, as the ledger's
entries do. A person is named as the identity service names its principal (``principals.name``), and its
organisation is copied from the principal when a record is made, so the registry answers "who stands for this
operator" without reading the identity service's tables (see :mod:`registry.people`).

An identity check keeps who checked what kind of evidence, when, and a reference to where the evidence is filed;
never the identity number itself. When the checker gives the number, only its keyed digest (HMAC-SHA-256 under the
instance's pepper: an 18-digit number with a check digit is too small a space for a plain hash) and a masked
form (its last four characters) are kept (个人信息保护法 第五十一条: 去标识化; 黑龙江 第三十八条).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, utcnow

__all__ = ["PersonRecordRow", "TermsVersionRow"]


class PersonRecordRow(Base):
    """One record about one person: an identity check, a terms-of-use acceptance, or a completed training.

    ``kind`` says which columns mean something: ``identity_check`` (``evidence_kind``, ``evidence_ref``,
    ``evidence_digest``, ``evidence_masked``, ``checked_by``, ``on`` = checked on, ``expires_on`` optional),
    ``terms`` (``terms_version``, ``on`` = accepted on), ``training`` (``course``, ``on`` = completed on,
    ``expires_on``).
    """

    __tablename__ = "person_records"
    __table_args__ = (
        Index("ix_person_records_person_kind", "person", "kind"),
        Index("ix_person_records_org", "org"),
        Index("ix_person_records_expires_on", "expires_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    person: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    org: Mapped[str | None] = mapped_column(String(128), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    on: Mapped[date] = mapped_column(Date())
    expires_on: Mapped[date | None] = mapped_column(Date(), nullable=True)
    evidence_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    evidence_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    evidence_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    evidence_masked: Mapped[str | None] = mapped_column(String(32), nullable=True)
    checked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    terms_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    course: Mapped[str | None] = mapped_column(String(128), nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(160))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class TermsVersionRow(Base):
    """A published version of the platform's terms of use; the latest published is the one people must accept."""

    __tablename__ = "terms_versions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    text_sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    published_by: Mapped[str] = mapped_column(String(160))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
