"""Releases as their readers see them, and the arithmetic of a review round.

Votes are sealed (issue 7): no one sees another reviewer's vote until the round is decided, so the
second reviewer is not anchored by the first; a reviewer sees its own sealed vote. Paths in the home
are the host administrator's, never a remote user's. The decision rule is :func:`outcome_of`:
unanimity of the required reviewers, else, after a further reviewer, a strict majority.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, NotFoundError
from sandbox.release_models import Decision, ReleaseRow, ReleaseSignoffRow, ReleaseState, ReleaseVoteRow, SignOff

#: Roles that read every release (an operator reads its own).
READ_ALL = ("agency", "regulator", "custodian")


def json_sha256(value: Any) -> str:
    """SHA-256 of ``value``'s sorted-key JSON: what the ledger keeps of votes and attributions."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ReleaseView:
    """A release as ``viewer`` may see it: sealed votes of an undecided round are left out."""

    id: int
    job: int
    operator: str
    licence_id: int
    product: str
    fee_class: str
    state: str
    round: int
    required_reviews: int
    votes_needed: int
    verdict: str
    findings: list[dict[str, Any]]
    justifications: dict[str, str]
    outputs: list[dict[str, Any]]
    votes: list[dict[str, Any]]  # decided rounds only (plus the viewer's own sealed vote)
    votes_cast: int  # in the current round
    reason: str | None
    product_id: int | None
    # The custodians' say (SATRE 3.1.06): the round's datasets needing sign-off, those a delegation
    # spared, every sign-off (not sealed: see sandbox.release_signoff) and what is still awaited.
    signoff_required: list[str]
    delegated: dict[str, int]
    signoffs: list[dict[str, Any]]
    signoffs_pending: list[str]
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "release": self.id,
            "job": self.job,
            "operator": self.operator,
            "licence": self.licence_id,
            "product": self.product,
            "fee_class": self.fee_class,
            "state": self.state,
            "round": self.round,
            "required_reviews": self.required_reviews,
            "votes_needed": self.votes_needed,
            "verdict": self.verdict,
            "findings": self.findings,
            "justifications": self.justifications,
            "outputs": self.outputs,
            "votes": self.votes,
            "votes_cast": self.votes_cast,
            "reason": self.reason,
            "product_id": self.product_id,
            "signoff_required": self.signoff_required,
            "delegated": self.delegated,
            "signoffs": self.signoffs,
            "signoffs_pending": self.signoffs_pending,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }


def _vote_json(vote: ReleaseVoteRow) -> dict[str, Any]:
    return {
        "round": vote.round,
        "reviewer": vote.reviewer,
        "decision": vote.decision,
        "files": dict(vote.files or {}),
        "reason": vote.reason,
        "voted_at": vote.voted_at.isoformat(),
    }


def signoff_json(row: ReleaseSignoffRow) -> dict[str, Any]:
    return {
        "round": row.round,
        "dataset": row.dataset,
        "custodian": row.custodian,
        "org": row.org,
        "decision": row.decision,
        "reason": row.reason,
        "signed_at": row.signed_at.isoformat(),
    }


def signoffs_of(session: Session, row: ReleaseRow) -> list[ReleaseSignoffRow]:
    """Every sign-off of ``row``, all rounds, in the order cast."""
    query = select(ReleaseSignoffRow).where(ReleaseSignoffRow.release_id == row.id).order_by(ReleaseSignoffRow.id)
    return list(session.scalars(query))


def pending_signoffs(session: Session, row: ReleaseRow) -> list[str]:
    """The current round's datasets whose custodian has not signed off yet (a refusal decides the release)."""
    signed = {s.dataset for s in signoffs_of(session, row) if s.round == row.round and s.decision == SignOff.APPROVE}
    return [str(d) for d in row.signoff_required or [] if str(d) not in signed]


def _round_decided(row: ReleaseRow) -> bool:
    return not ReleaseState(row.state).open and row.state != ReleaseState.WITHDRAWN


def votes_needed(decisions: Sequence[str], required: int) -> int:
    """How many more votes the round needs before it is decided (0: decided)."""
    if len(decisions) < required:
        return required - len(decisions)
    return 0 if outcome_of(decisions, required) is not None else 1


def outcome_of(decisions: Sequence[str], required: int) -> Decision | None:
    """Unanimity of the required reviewers, else (after a further reviewer) a strict majority."""
    if len(decisions) < required or not decisions:
        return None
    counts = Counter(decisions)
    top, top_count = counts.most_common(1)[0]
    if top_count == len(decisions):
        return Decision(top)
    if len(decisions) > required and top_count * 2 > len(decisions):
        return Decision(top)
    return None


def release_view(session: Session, row: ReleaseRow, viewer: Actor) -> ReleaseView:
    votes = list(
        session.scalars(select(ReleaseVoteRow).where(ReleaseVoteRow.release_id == row.id).order_by(ReleaseVoteRow.id))
    )
    current = [v for v in votes if v.round == row.round]
    sealed = ReleaseState(row.state).open
    shown = [
        _vote_json(v)
        for v in votes
        if v.round != row.round or not sealed or (v.reviewer == viewer.name and viewer.role == "agency")
    ]
    outputs = [dict(o) for o in row.outputs or []]
    if not viewer.is_host:  # paths in the home are the administrator's, never a remote user's
        outputs = [{k: o[k] for k in ("name", "bytes", "sha256") if k in o} for o in outputs]
    return ReleaseView(
        id=row.id,
        job=row.job_id,
        operator=row.operator,
        licence_id=row.licence_id,
        product=row.product,
        fee_class=row.fee_class,
        state=row.state,
        round=row.round,
        required_reviews=row.required_reviews,
        votes_needed=votes_needed([v.decision for v in current], row.required_reviews) if sealed else 0,
        verdict=row.verdict,
        findings=[dict(f) for f in row.findings or []],
        justifications={str(k): str(v) for k, v in (row.justifications or {}).items()},
        outputs=outputs,
        votes=shown,
        votes_cast=len(current),
        reason=row.reason,
        product_id=row.product_id,
        signoff_required=[str(d) for d in row.signoff_required or []],
        delegated={str(k): int(v) for k, v in (row.delegated or {}).items()},
        signoffs=[signoff_json(s) for s in signoffs_of(session, row)],
        signoffs_pending=pending_signoffs(session, row) if sealed else [],
        created_at=row.created_at,
        updated_at=row.updated_at,
        decided_at=row.decided_at,
    )


def visible_release(session: Session, release_id: int, viewer: Actor, *, lock: bool = False) -> ReleaseRow:
    query = select(ReleaseRow).where(ReleaseRow.id == release_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalar(query)
    # An operator never learns that another operator's release exists.
    if row is None or (viewer.role == "operator" and row.operator != viewer.name):
        raise NotFoundError(f"no release {release_id}")
    if not viewer.is_host and viewer.role not in (*READ_ALL, "operator"):
        raise NotFoundError(f"no release {release_id}")
    return row


__all__ = [
    "READ_ALL",
    "ReleaseView",
    "json_sha256",
    "outcome_of",
    "pending_signoffs",
    "release_view",
    "signoff_json",
    "signoffs_of",
    "visible_release",
    "votes_needed",
]
