"""The ``releases`` and ``release_votes`` tables: a request to release a job's outputs and its review.

Why two tables: a release is reviewed in rounds (a returned request is resubmitted after a rerun,
and each round is judged afresh), and every round's votes must stay sealed from the other
reviewers until all required reviewers have voted (issue 7). Votes are therefore rows of their
own, keyed by (release, round, reviewer), which also makes "one vote per reviewer per round" a
database constraint rather than a check that two concurrent requests could both pass.

The rows share the registry's ``Base`` (and so its MetaData), so Alembic compares them with the
migrations like every other table (migration ``0006``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, RegistryError, utcnow
from sandbox.state_names import NamedState


class ReleaseState(NamedState):
    """双鸭山 第五十二条: nothing is released before the compliance review decides."""

    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    RETURNED = "returned"  # changes requested: the operator may rerun and resubmit
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"

    @property
    def open(self) -> bool:
        return self in (ReleaseState.SUBMITTED, ReleaseState.UNDER_REVIEW)


class ReleaseError(RegistryError):
    """A release step was refused; the message says why and what would make it acceptable."""


class Decision(StrEnum):
    APPROVE = "approve"
    CHANGES_REQUESTED = "changes_requested"
    REJECT = "reject"


class SignOff(StrEnum):
    """A custodian's word on a release of its dataset (SATRE 3.1.06): it signs off, or it refuses."""

    APPROVE = "approve"
    REFUSE = "refuse"


class ReleaseRow(Base):
    """One operator's request to release a done job's guarded outputs as a named product.

    ``outputs`` is the snapshot of the job's outputs requested (``{"name", "bytes", "sha256",
    "path"}``), ``findings`` the export guard's findings at request time, ``justifications`` the
    operator's text per finding (``{"<index in findings>": text}``); the round's snapshot is what
    the reviewers judge, even if the job row changes later.
    """

    __tablename__ = "releases"
    __table_args__ = (Index("ix_releases_state_created_at", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    operator: Mapped[str] = mapped_column(String(128), index=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    product: Mapped[str] = mapped_column(String(128), index=True)
    fee_class: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default=ReleaseState.SUBMITTED.value)
    round: Mapped[int] = mapped_column(Integer, default=1)
    required_reviews: Mapped[int] = mapped_column(Integer, default=2)
    verdict: Mapped[str] = mapped_column(String(16))
    findings: Mapped[list[Any]] = mapped_column(default=list)
    justifications: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outputs: Mapped[list[Any]] = mapped_column(default=list)
    # The round's datasets whose custodian must sign off (no live delegation when requested), and the
    # delegations that spared the others (dataset -> delegation id): the rule the request was made under.
    signoff_required: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))
    delegated: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # of the withdrawal or the decision
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ReleaseVoteRow(Base):
    """One reviewer's sealed vote in one round: a decision per file and the overall (worst) one.

    ``salt`` makes the ledgered commitment (``vote_sha256``) unguessable, so the ledger proves the
    vote was cast before the others were revealed without revealing it itself.
    """

    __tablename__ = "release_votes"
    __table_args__ = (
        UniqueConstraint("release_id", "round", "reviewer", name="uq_release_votes_release_id_round_reviewer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(160))
    decision: Mapped[str] = mapped_column(String(24))
    files: Mapped[dict[str, Any]] = mapped_column(default=dict)  # file name -> decision
    reason: Mapped[str] = mapped_column(Text, default="")
    salt: Mapped[str] = mapped_column(String(64))
    voted_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReleaseSignoffRow(Base):
    """A custodian's sign-off (or refusal) of one round of a release, for one dataset it is custodian of.

    One per (release, round, dataset), a database constraint: one custodian of the dataset's
    organisation speaks for it. Not sealed, unlike the reviewers' votes (see ``sandbox.release_signoff``).
    """

    __tablename__ = "release_signoffs"
    __table_args__ = (
        UniqueConstraint("release_id", "round", "dataset", name="uq_release_signoffs_release_id_round_dataset"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    dataset: Mapped[str] = mapped_column(String(64))
    custodian: Mapped[str] = mapped_column(String(160))
    org: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["Decision", "ReleaseRow", "ReleaseSignoffRow", "ReleaseState", "ReleaseVoteRow", "SignOff"]
