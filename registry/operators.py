"""Operators (运营机构): the companies licences are granted to, and their standing.

An operator is a company with a valid 统一社会信用代码 in good standing (双鸭山市公共数据管理暂行办法
第四十八条); the agency may close its access (第三十一条: 关停或中断调用服务) and reopen it once it has
rectified. Its name is its principal's name, so it is also a safe single path component of its work
directory.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, NotFoundError, Recorder, RegistryError, require_role
from registry.config import RegistryConfig
from registry.licence_terms import require_reason
from registry.licence_views import OperatorView, operator_view
from registry.models import OperatorRow
from registry.vocabulary import Qualification

# The operator's name is its principal's name (operators.identity): same shape, so that it is also
# a safe single path component of its work directory.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,126}[a-z0-9]$")


def operator_row(session: Session, name: str) -> OperatorRow:
    """The operator named ``name``; "not found" says how to add it."""
    row = session.scalar(select(OperatorRow).where(OperatorRow.name == name))
    if row is None:
        raise NotFoundError(f"no operator named {name!r}: add it with `keyong operator add`")
    return row


class Operators:
    """Register, read, suspend and restore operators (the agency's acts, each ledgered)."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def add_operator(self, name: str, uscc: str, *, by: Actor) -> OperatorView:
        """Register an operating company (运营机构, 双鸭山 第四十八条); ``name`` is its principal's name.

        The 统一社会信用代码 must be well formed with a correct GB 32100 check character.
        """
        require_role(by, "agency")
        name, uscc = name.strip(), uscc.strip()
        if not NAME_RE.match(name):
            raise RegistryError(
                f"operator name {name!r} must be its principal's name: 3-128 lowercase letters, digits, '.', '_' "
                "or '-', starting and ending with a letter or digit"
            )
        from desensitize import is_valid_uscc  # its recognizers load pandas: only when an operator is added

        if not is_valid_uscc(uscc):
            raise RegistryError(
                f"{uscc!r} is not a valid 统一社会信用代码: 18 upper-case characters with a correct check "
                "character (GB 32100-2015)"
            )
        with self.recorder.change(by) as change:
            session = change.session
            if session.scalar(select(OperatorRow).where(OperatorRow.name == name)) is not None:
                raise RegistryError(f"operator {name!r} already exists")
            if session.scalar(select(OperatorRow).where(OperatorRow.uscc == uscc)) is not None:
                raise RegistryError(f"an operator with 统一社会信用代码 {uscc} already exists")
            row = OperatorRow(name=name, uscc=uscc, qualification=Qualification.QUALIFIED, created_at=self.config.now())
            session.add(row)
            session.flush()
            change.log("operator.added", f"operator:{name}", {"uscc": uscc})
            return operator_view(row)

    def get_operator(self, name: str, *, viewer: Actor | None = None) -> OperatorView:
        """One operator; an operator may read only itself (another is "not found")."""
        if viewer is not None:
            require_role(viewer, "agency", "regulator", "operator")
            if viewer.role == "operator" and viewer.name != name:
                raise NotFoundError(f"no operator named {name!r}")
        with self.recorder.read() as session:
            return operator_view(operator_row(session, name))

    def list_operators(self, *, viewer: Actor | None = None) -> list[OperatorView]:
        if viewer is not None:
            require_role(viewer, "agency", "regulator")
        with self.recorder.read() as session:
            return [operator_view(r) for r in session.scalars(select(OperatorRow).order_by(OperatorRow.name))]

    def suspend_operator(self, name: str, *, by: Actor, reason: str) -> OperatorView:
        """Close an operator's access (第三十一条: 关停或中断调用服务); its licences keep their state."""
        require_role(by, "agency")
        reason = require_reason(reason, "suspending an operator")
        with self.recorder.change(by) as change:
            row = operator_row(change.session, name)
            if row.qualification == Qualification.SUSPENDED:
                raise RegistryError(f"operator {name!r} is already suspended ({row.suspended_reason})")
            row.qualification = Qualification.SUSPENDED
            row.suspended_reason = reason
            change.log("operator.suspended", f"operator:{name}", {"reason": reason})
            return operator_view(row)

    def restore_operator(self, name: str, *, by: Actor, reason: str) -> OperatorView:
        """Reopen a suspended operator's access once it has rectified (整改, 第三十一条)."""
        require_role(by, "agency")
        reason = require_reason(reason, "restoring an operator")
        with self.recorder.change(by) as change:
            row = operator_row(change.session, name)
            if row.qualification != Qualification.SUSPENDED:
                raise RegistryError(f"operator {name!r} is not suspended")
            row.qualification = Qualification.QUALIFIED
            row.suspended_reason = ""
            change.log("operator.restored", f"operator:{name}", {"reason": reason})
            return operator_view(row)


__all__ = ["NAME_RE", "Operators", "operator_row"]
