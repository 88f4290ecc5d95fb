"""The one rule "is this licence usable now", and the plain facts other packages read of a licence.

A licence admits work (a job admitted, claimed by a worker, a product registered under it) only
while it is active (授权运营协议 in force after 公示, 双鸭山 第四十八条), inside its validity dates,
and its operator is in good standing (第三十一条: access closes at once when it is suspended). The
scope check, the job queue and product registration all ask :func:`usability`; each phrases the
refusal for its own reader, but none decides the question again.

Other packages (the sandbox's queue and releases) read a licence through :func:`licence_standing`,
never through the registry's table classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import PermissionDeniedError
from registry.models import LicenceRow, OperatorRow
from registry.vocabulary import LicenceState, Qualification


class Usability(StrEnum):
    """Whether a licence is usable now, or the first reason it is not (checked in this order)."""

    USABLE = "usable"
    NOT_ACTIVE = "not_active"  # draft, publicity, suspended, revoked or expired
    NOT_YET_VALID = "not_yet_valid"  # valid_from lies ahead
    LAPSED = "lapsed"  # valid_until has passed, though the state may not say so yet
    OPERATOR_SUSPENDED = "operator_suspended"  # the operator's access is closed (第三十一条)


def usability(licence: LicenceRow, today: date) -> Usability:
    """The rule itself: active, ``valid_from <= today <= valid_until``, and a qualified operator."""
    if licence.state != LicenceState.ACTIVE.value:
        return Usability.NOT_ACTIVE
    if licence.valid_from > today:
        return Usability.NOT_YET_VALID
    if licence.valid_until < today:
        return Usability.LAPSED
    if licence.operator.qualification != Qualification.QUALIFIED.value:
        return Usability.OPERATOR_SUSPENDED
    return Usability.USABLE


@dataclass(frozen=True, slots=True)
class LicenceStanding:
    """Plain facts of one licence as of ``today``, for packages that must not touch its rows."""

    id: int
    operator: str
    operator_qualification: str
    state: str
    valid_from: date
    valid_until: date
    scenarios: tuple[str, ...]
    fee_class: str
    price_cents: int | None
    usability: Usability

    @property
    def usable(self) -> bool:
        return self.usability == Usability.USABLE


def licence_standing(session: Session, licence_id: int | None, today: date) -> LicenceStanding | None:
    """The standing of licence ``licence_id`` read in the caller's transaction, or ``None`` if there is none."""
    row = session.get(LicenceRow, licence_id) if licence_id is not None else None
    if row is None:
        return None
    return LicenceStanding(
        id=row.id,
        operator=row.operator.name,
        operator_qualification=row.operator.qualification,
        state=row.state,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        scenarios=tuple(row.scenarios or ()),
        fee_class=row.fee_class,
        price_cents=row.price_cents,
        usability=usability(row, today),
    )


class OperatorSuspendedError(PermissionDeniedError):
    """The operator's access is closed until the agency restores it (双鸭山 第三十一条, 第七十五条)."""


def require_qualified(session: Session, operator: str, doing: str) -> None:
    """Refuse ``doing`` for a suspended operator: no deliveries, no release requests until restored.

    双鸭山 第三十一条 (关停或中断调用服务，终止其数据使用权限) and 第七十五条 (暂时关闭其获取相关公共数据
    的权限): while suspended, an operator obtains nothing from the platform; the agency's restoration
    (``keyong operator restore``) brings it all back. An operator the registry does not know is left to
    the caller's own checks.
    """
    row = session.scalar(select(OperatorRow).where(OperatorRow.name == operator))
    if row is not None and row.qualification != Qualification.QUALIFIED.value:
        raise OperatorSuspendedError(
            f"operator {operator!r} is suspended ({row.suspended_reason or 'no reason given'}): {doing} is refused "
            "until the agency restores it (双鸭山 第三十一条, 第七十五条: 暂时关闭其获取相关公共数据的权限)"
        )


def suspended_operators(session: Session) -> list[str]:
    """Names of the operators whose access is closed now (第三十一条): the queue holds their jobs."""
    query = select(OperatorRow.name).where(OperatorRow.qualification != Qualification.QUALIFIED.value)
    return list(session.scalars(query.order_by(OperatorRow.name)))


def registered_operators(session: Session) -> dict[str, str]:
    """Every registered operator's name and its 统一社会信用代码, in ``session`` (whatever their standing).

    For the identity service, which answers whether a principal's organisation is a registered operator
    without reaching into the registry's tables."""
    rows = session.execute(select(OperatorRow.name, OperatorRow.uscc).order_by(OperatorRow.name))
    return {name: uscc for name, uscc in rows}


__all__ = [
    "LicenceStanding",
    "OperatorSuspendedError",
    "Usability",
    "licence_standing",
    "registered_operators",
    "require_qualified",
    "suspended_operators",
    "usability",
]
