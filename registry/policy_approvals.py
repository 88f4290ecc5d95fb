"""Only trusted people change desensitization policies (SATRE 1.2.01; issue 22): four eyes, by digest.

Why: a level's policy decides which technique each column gets (双鸭山 第十一条 分类分级: 针对不同级别
数据采用不同的分级保护措施), and the 数据安全管理制度 and 分类分级 protection measures are set by the
主管部门, not by whoever can write to the host (第六十条: 组织建立公共数据安全管理制度 … 制定公共数据分类
分级标准规范及保护措施). So a policy other than the shipped one governs a copy only once:

* a custodian or agency person proposed it for a level (``policy.proposed``), with a reason, and
* an agency person other than the proposer approved it (``policy.approved``), or refused it
  (``policy.refused``).

What is approved is the policy's canonical digest (:meth:`desensitize.Policy.sha256`, defaults filled
in) for one level; the policy text is stored with the proposal so the approver reads exactly what it
approves. :meth:`registry.copies.Copies.policy_for` then admits a given or ``HOME/policies/LEVEL.json``
file only when its digest is approved for that level (or equals the shipped policy's). Fail closed: a
file edited after approval has another digest and the copy is refused, naming the digest and how to
propose it; the host administrator is no person and neither proposes nor approves.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Index, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import Actor, Base, NotFoundError, PermissionDeniedError, Recorder, RegistryError, text_sha256, utcnow
from desensitize import Policy, PolicyError, load_policy
from registry.config import RegistryConfig

#: Who may propose a policy, and who approves or refuses one (never the proposer).
PROPOSERS = ("custodian", "agency")
APPROVERS = ("agency",)
#: The longest reason recorded.
POLICY_REASON_CHARS = 2000


class PolicyApprovalRow(Base):
    """One proposed policy for a level: its digest, its text, and the agency's decision on it."""

    __tablename__ = "policy_approvals"
    __table_args__ = (Index("ix_policy_approvals_level_sha256", "level", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    level: Mapped[str] = mapped_column(String(2))
    sha256: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(Text)  # canonical JSON: what the approver reads is what applies
    state: Mapped[str] = mapped_column(String(16), default="proposed")  # proposed | approved | refused
    proposed_by: Mapped[str] = mapped_column(String(160))
    proposed_role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True, slots=True)
class PolicyApprovalView:
    id: int
    level: str
    sha256: str
    state: str
    proposed_by: str
    reason: str
    proposed_at: str
    decided_by: str | None
    decided_at: str | None
    decision_reason: str | None
    policy: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _view(row: PolicyApprovalRow) -> PolicyApprovalView:
    return PolicyApprovalView(
        id=row.id,
        level=row.level,
        sha256=row.sha256,
        state=row.state,
        proposed_by=row.proposed_by,
        reason=row.reason,
        proposed_at=row.proposed_at.isoformat(),
        decided_by=row.decided_by,
        decided_at=row.decided_at.isoformat() if row.decided_at else None,
        decision_reason=row.decision_reason,
        policy=json.loads(row.policy),
    )


def shipped_sha256(level: str) -> str:
    """The digest of the policy Keyong ships for ``level`` (always admitted)."""
    return load_policy(level).sha256()


def is_approved(session: Session, level: str, sha256: str) -> bool:
    """Whether a policy of digest ``sha256`` may govern copies of ``level`` data: shipped or approved."""
    if sha256 == shipped_sha256(level):
        return True
    found = session.scalar(
        select(PolicyApprovalRow.id).where(
            PolicyApprovalRow.level == level, PolicyApprovalRow.sha256 == sha256, PolicyApprovalRow.state == "approved"
        )
    )
    return found is not None


def parse_policy(level: str, data: Any) -> Policy:
    """A policy given as data (the API's body), validated as a file would be, and declaring ``level``."""
    if not isinstance(data, dict):
        raise RegistryError("a policy is a JSON object")
    try:
        policy = Policy.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise RegistryError(f"policy not valid: {str(exc).splitlines()[0]}") from None
    if policy.level != level:
        raise RegistryError(f"the policy declares level {policy.level!r}, proposed for {level!r}")
    return policy


def read_policy_file(level: str, path: Path) -> Policy:
    """A policy file for ``level`` (JSON or YAML), or a clear refusal."""
    try:
        return load_policy(level, path)
    except (OSError, PolicyError) as exc:
        raise RegistryError(f"policy for {level} not usable: {exc}") from None


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise RegistryError("a policy proposal or decision needs a reason: it is recorded")
    if len(text) > POLICY_REASON_CHARS:
        raise RegistryError(f"the reason is at most {POLICY_REASON_CHARS} characters")
    return text


def _person(by: Actor, roles: tuple[str, ...], doing: str) -> None:
    if by.is_host or by.role not in roles:
        raise PermissionDeniedError(
            f"{doing} is the act of a person of role {' or '.join(roles)} through its own session (SATRE 1.2.01); "
            "the host administrator and other roles never do it"
        )


class PolicyApprovals:
    """Proposals of desensitization policies and the agency's four-eyes decisions on them; each ledgered."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def propose(self, level: str, policy: Policy, *, by: Actor, reason: str) -> PolicyApprovalView:
        """``by`` (a custodian or agency person) proposes ``policy`` for ``level``."""
        _person(by, PROPOSERS, "proposing a policy")
        reason = _reason(reason)
        if policy.level != level:
            raise RegistryError(f"the policy declares level {policy.level!r}, proposed for {level!r}")
        digest = policy.sha256()
        if digest == shipped_sha256(level):
            raise RegistryError(f"policy {digest} is the shipped {level} policy: it needs no approval")
        with self.recorder.change(by) as change:
            session = change.session
            earlier = session.scalar(
                select(PolicyApprovalRow).where(
                    PolicyApprovalRow.level == level,
                    PolicyApprovalRow.sha256 == digest,
                    PolicyApprovalRow.state.in_(("proposed", "approved")),
                )
            )
            if earlier is not None:
                raise RegistryError(f"policy {digest} for {level} is already {earlier.state} (proposal {earlier.id})")
            row = PolicyApprovalRow(
                level=level,
                sha256=digest,
                policy=policy.canonical_json(),
                state="proposed",
                proposed_by=by.name,
                proposed_role=by.role,
                reason=reason,
                proposed_at=self.config.now(),
            )
            session.add(row)
            session.flush()
            change.log(
                "policy.proposed",
                f"policy:{row.id}",
                {"level": level, "sha256": digest, "reason_sha256": text_sha256(reason)},
            )
            return _view(row)

    def decide(self, proposal: int, approve: bool, *, by: Actor, reason: str) -> PolicyApprovalView:
        """An agency person other than the proposer approves or refuses a proposal (four eyes)."""
        _person(by, APPROVERS, "approving or refusing a policy")
        reason = _reason(reason)
        with self.recorder.change(by) as change:
            row = change.session.get(PolicyApprovalRow, proposal)
            if row is None:
                raise NotFoundError(f"no policy proposal {proposal}")
            if row.state != "proposed":
                raise RegistryError(f"policy proposal {proposal} is already {row.state}")
            if row.proposed_by == by.name:
                raise PermissionDeniedError(
                    f"{by.name!r} proposed policy {proposal}: another agency person decides on it (four eyes)"
                )
            row.state = "approved" if approve else "refused"
            row.decided_by, row.decided_at, row.decision_reason = by.name, self.config.now(), reason
            change.log(
                "policy.approved" if approve else "policy.refused",
                f"policy:{row.id}",
                {
                    "level": row.level,
                    "sha256": row.sha256,
                    "proposed_by": row.proposed_by,
                    "reason_sha256": text_sha256(reason),
                },
            )
            return _view(row)

    def list(self, *, level: str | None = None, state: str | None = None) -> builtins.list[PolicyApprovalView]:
        """Every proposal, oldest first (policies are no secret: every platform role reads them)."""
        with self.recorder.read() as session:
            query = select(PolicyApprovalRow).order_by(PolicyApprovalRow.id)
            if level:
                query = query.where(PolicyApprovalRow.level == level)
            if state:
                query = query.where(PolicyApprovalRow.state == state)
            return [_view(r) for r in session.scalars(query)]

    def get(self, proposal: int) -> PolicyApprovalView:
        with self.recorder.read() as session:
            row = session.get(PolicyApprovalRow, proposal)
            if row is None:
                raise NotFoundError(f"no policy proposal {proposal}")
            return _view(row)

    def require_approved(self, level: str, policy: Policy, source: str) -> None:
        """Refuse ``policy`` (read from ``source``) for ``level`` unless shipped or approved (fail closed)."""
        digest = policy.sha256()
        with self.recorder.read() as session:
            if is_approved(session, level, digest):
                return
        raise RegistryError(
            f"policy {source} for {level} (sha256 {digest}) is not approved (SATRE 1.2.01; 双鸭山 第六十条): a "
            f"custodian or agency person proposes it (`keyong policy propose {level} FILE --reason TEXT`, or POST "
            "/policies) and an agency person other than the proposer approves it (`keyong policy approve ID`); a "
            "file edited after approval has a new digest and needs a new approval"
        )


__all__ = [
    "APPROVERS",
    "PROPOSERS",
    "PolicyApprovalRow",
    "PolicyApprovalView",
    "PolicyApprovals",
    "is_approved",
    "parse_policy",
    "read_policy_file",
    "shipped_sha256",
]
