"""The review thread of a release: comments per file or on the whole release, and who reviews it.

Why (issue 18; anchors OpenSAFELY Airlock and SACRO-Viewer): a reviewer who returns a release for
changes must say what to change where the operator reads it, and the operator must be able to answer
(双鸭山市公共数据管理暂行办法 第五十二条: the pre-release compliance review; a returned product is
corrected and reviewed again). So the agency's reviewers and the requesting operator read and post
comments on a release, per round and per file (``file`` None: the whole release); anyone else is
refused as if the release did not exist (an operator never learns another operator's release exists).

Comments are a discussion, not a vote: they show to the operator and the other reviewers at once,
while the votes stay sealed until the round is decided (``sandbox.release_views``). Every comment is
ledgered as ``release.commented`` with its body's SHA-256 only, as reasons and justifications are
(free text never enters the ledger, 第二十条 keeps the record, the database keeps the words).

Assignment is the queue's bookkeeping: one agency reviewer takes a pending release ("assign to me")
so the others see who is on it; it neither grants nor removes a vote (any active reviewer still
votes). Ledgered as ``release.assigned`` / ``release.unassigned``.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import Actor, Base, Change, PermissionDeniedError, Recorder, text_sha256
from registry import RegistryConfig
from sandbox.release_models import ReleaseError, ReleaseRow, ReleaseState
from sandbox.release_views import visible_release

MAX_COMMENT_CHARS = 4000


class ReleaseCommentRow(Base):
    """One comment of the review thread; ``file`` None comments on the whole release."""

    __tablename__ = "release_comments"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    file: Mapped[str | None] = mapped_column(String(255), nullable=True)
    author: Mapped[str] = mapped_column(String(160))
    role: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()


class ReleaseAssignmentRow(Base):
    """The agency reviewer who took a release from the queue (one at a time; none: unassigned)."""

    __tablename__ = "release_assignments"

    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), primary_key=True)
    reviewer: Mapped[str] = mapped_column(String(160))
    assigned_at: Mapped[datetime] = mapped_column()


@dataclass(frozen=True, slots=True)
class CommentView:
    id: int
    release: int
    round: int
    file: str | None
    author: str
    role: str
    body: str
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "release": self.release,
            "round": self.round,
            "file": self.file,
            "author": self.author,
            "role": self.role,
            "body": self.body,
            "created_at": self.created_at.isoformat(),
        }


def _view(row: ReleaseCommentRow) -> CommentView:
    return CommentView(row.id, row.release_id, row.round, row.file, row.author, row.role, row.body, row.created_at)


def _thread_row(session: Session, release_id: int, by: Actor, *, lock: bool = False) -> ReleaseRow:
    """The release if ``by`` takes part in its review: an agency principal, or its requesting operator.

    Custodians and regulators read releases, but the thread is the reviewers' and the operator's own
    conversation (Airlock: the output checkers and the requester); they are refused.
    """
    if by.is_host or by.role not in ("agency", "operator"):
        raise PermissionDeniedError("the review thread is the agency reviewers' and the requesting operator's")
    return visible_release(session, release_id, by, lock=lock)


def has_commented(session: Session, row: ReleaseRow, author: str) -> bool:
    """Whether ``author`` commented on ``row`` in its current round (a return needs one, see ReleaseReview.vote)."""
    query = select(ReleaseCommentRow.id).where(
        ReleaseCommentRow.release_id == row.id,
        ReleaseCommentRow.round == row.round,
        ReleaseCommentRow.author == author,
    )
    return session.scalar(query.limit(1)) is not None


def add_comment(change: Change, row: ReleaseRow, by: Actor, body: str, file: str | None, now: datetime) -> CommentView:
    """Add and ledger one comment in ``change`` (``by`` already checked as a party to the thread)."""
    text = (body or "").strip()
    if not text or len(text) > MAX_COMMENT_CHARS:
        raise ReleaseError(f"a comment is 1-{MAX_COMMENT_CHARS} characters")
    name = (file or "").strip() or None
    if row.state in (ReleaseState.WITHDRAWN, ReleaseState.REJECTED):
        raise ReleaseError(f"release {row.id} is {row.state}: its thread is closed")
    if name is not None and name not in {str(o["name"]) for o in row.outputs or []}:
        raise ReleaseError(f"round {row.round} of release {row.id} has no file {name!r}")
    comment = ReleaseCommentRow(
        release_id=row.id, round=row.round, file=name, author=by.name, role=by.role, body=text, created_at=now
    )
    change.session.add(comment)
    change.session.flush()
    change.log(
        "release.commented",
        f"release:{row.id}",
        {
            "release": row.id,
            "round": row.round,
            "comment": comment.id,
            "file": name,
            "author": by.name,
            "role": by.role,
            "body_sha256": text_sha256(text),
        },
    )
    return _view(comment)


class ReleaseComments:
    """The thread and the queue's assignments; each change is one ledgered transaction."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def list(self, release_id: int, *, viewer: Actor) -> builtins.list[CommentView]:
        """Every round's comments, oldest first."""
        with self.recorder.read() as session:
            row = _thread_row(session, release_id, viewer)
            query = (
                select(ReleaseCommentRow).where(ReleaseCommentRow.release_id == row.id).order_by(ReleaseCommentRow.id)
            )
            return [_view(c) for c in session.scalars(query)]

    def post(self, release_id: int, body: str, *, by: Actor, file: str | None = None) -> CommentView:
        """A comment on one of the round's files (``file``) or on the whole release.

        Refused when empty or longer than ``MAX_COMMENT_CHARS``, on a file the round does not hold,
        and on a withdrawn or rejected release (nothing is left to change; approved ones may still be
        discussed for the record of the next request).
        """
        with self.recorder.change(by) as change:
            row = _thread_row(change.session, release_id, by, lock=True)
            return add_comment(change, row, by, body, file, self.config.now())

    def assignments(self, *, viewer: Actor) -> dict[int, str]:
        """release id -> the reviewer assigned, for the agency's queue."""
        if viewer.is_host or viewer.role != "agency":
            raise PermissionDeniedError("the review queue's assignments are the agency's")
        with self.recorder.read() as session:
            return {a.release_id: a.reviewer for a in session.scalars(select(ReleaseAssignmentRow))}

    def assign(self, release_id: int, *, by: Actor, take: bool = True) -> str | None:
        """``by`` takes the pending release (``take``), or gives back its own assignment; the new assignee.

        Refused for anyone but a named agency principal, for the requesting organisation itself (it
        never reviews its own request), on a decided release, to take one another reviewer holds
        (they unassign first: no silent takeover) and to give back one that is not yours.
        """
        if by.is_host or by.role != "agency":
            raise PermissionDeniedError("a release is assigned to a named agency reviewer")
        with self.recorder.change(by) as change:
            session = change.session
            row = visible_release(session, release_id, by, lock=True)
            if not ReleaseState(row.state).open:
                raise ReleaseError(f"release {release_id} is {row.state}: it is not in the review queue")
            if by.name == row.operator:
                raise PermissionDeniedError(f"{by.name!r} requested release {release_id}: it never reviews it")
            current = session.get(ReleaseAssignmentRow, row.id)
            if take:
                if current is not None and current.reviewer != by.name:
                    raise ReleaseError(f"release {release_id} is assigned to {current.reviewer!r}: they unassign first")
                if current is not None:
                    return by.name  # already yours: nothing changes, nothing is ledgered
                session.add(ReleaseAssignmentRow(release_id=row.id, reviewer=by.name, assigned_at=self.config.now()))
                change.log("release.assigned", f"release:{row.id}", {"release": row.id, "reviewer": by.name})
                return by.name
            if current is None or current.reviewer != by.name:
                raise ReleaseError(f"release {release_id} is not assigned to you")
            session.delete(current)
            change.log("release.unassigned", f"release:{row.id}", {"release": row.id, "reviewer": by.name})
            return None


def require_comment_to_return(session: Session, row: ReleaseRow, by: Actor) -> None:
    """A return ("changes requested") comes with the reviewer's comment in this round (issue 18: 退回须附评论)."""
    if not has_commented(session, row, by.name):
        raise ReleaseError(
            f"changes requested need your comment on release {row.id} first (round {row.round}): say what to change "
            "on the file or the whole release, where the operator reads it"
        )


__all__ = [
    "MAX_COMMENT_CHARS",
    "CommentView",
    "ReleaseAssignmentRow",
    "ReleaseCommentRow",
    "ReleaseComments",
    "add_comment",
    "has_commented",
    "require_comment_to_return",
]
