"""Compute quotas allocated per operator and per licence by the agency (issue 22, SATRE 2.3.03).

Why it works this way:

* **The agency shares the workers out, in the ledger.** The settings give one default
  (:class:`Quotas`) to every operator; the agency (授权运营实施机构, which grants the 授权运营协议 and its
  terms, 双鸭山 第四十六条) may allocate an operator its own, and a licence of that operator a tighter
  one, each with a reason. Each allocation is ledgered (``quota.allocated``: the old and new limits,
  the reason; actor the agency person, subject ``operator:NAME`` or ``licence:ID``) so a regulator can
  trace who gave whom how much (日志留存, 第五十二条).
* **A licence's quota is never wider than its operator's.** The operator's is the company's share; a
  licence's only divides it. A licence allocation above its operator's current limits is refused, and
  a submission checks both (so lowering an operator's later still binds its licences).
* **Only the agency allocates.** An operator cannot raise its own, and the host without a principal is
  refused by the service itself (fail closed, SATRE 3.1.06); the host acts as the agency only through
  the CLI's own-credential path (``keyong quota set`` with the agency person's key and second factor).
* **Bad values are refused, not clamped**: an integer count, CPU seconds finite, none negative, none
  above :data:`MAX_CONCURRENT` / :data:`MAX_PER_DAY` / :data:`MAX_CPU_SECONDS` (a typo of three zeros
  is not an allocation). 0 is allowed: the agency may stop an operator's compute without suspending it.
* **Not refused while frozen**: a freeze already stops intake (``registry.freeze``), and lowering a
  quota is a containment measure the agency may want during an incident; like licence and budget
  changes, an allocation is an agency decision, not intake, egress or delivery.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import (
    MAX_ROW_ID,
    Actor,
    Base,
    NotFoundError,
    PermissionDeniedError,
    Recorder,
    RegistryError,
    require_role,
    utcnow,
)
from registry.catalog_rules import require_reason
from registry.config import RegistryConfig
from registry.models import LicenceRow, OperatorRow

#: Upper bounds of an allocation: above these a value is a typo, not a share of the workers.
MAX_CONCURRENT = 1000
MAX_PER_DAY = 1_000_000
MAX_CPU_SECONDS = 100_000_000.0  # ~1157 CPU-days in 24 hours: far above any instance's workers

QUOTA_NAMES = ("concurrent", "per_day", "cpu_seconds_per_day")


@dataclass(frozen=True, slots=True)
class Quotas:
    """Compute limits of an operator or a licence; the instance settings give the defaults."""

    concurrent: int = 4  # jobs queued or running at once
    per_day: int = 200  # jobs admitted per rolling 24 hours
    cpu_seconds_per_day: float = 3600.0  # CPU seconds of jobs ended in the rolling 24 hours

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def within(self, ceiling: Quotas) -> list[str]:
        """The names of the limits that exceed ``ceiling``'s (empty when none does)."""
        return [name for name in QUOTA_NAMES if getattr(self, name) > getattr(ceiling, name)]


class QuotaAllocationRow(Base):
    """The agency's allocation to one operator (``licence_id`` NULL) or one licence of it.

    ``scope`` is ``operator:ID`` or ``licence:ID`` (ids, not names) and unique, so two concurrent
    allocations to the same subject cannot leave two rows.
    """

    __tablename__ = "quota_allocations"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(48), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operator_orgs.id"), index=True)
    licence_id: Mapped[int | None] = mapped_column(ForeignKey("licences.id"), nullable=True)
    concurrent: Mapped[int] = mapped_column(Integer)
    per_day: Mapped[int] = mapped_column(Integer)
    cpu_seconds_per_day: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    allocated_by: Mapped[str] = mapped_column(String(160))
    allocated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def quotas(self) -> Quotas:
        return Quotas(self.concurrent, self.per_day, self.cpu_seconds_per_day)


class AllocationView(BaseModel):
    """One allocation as the agency, a regulator or its own operator reads it."""

    operator: str
    licence: int | None
    concurrent: int
    per_day: int
    cpu_seconds_per_day: float
    reason: str
    allocated_by: str
    allocated_at: datetime

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _view(row: QuotaAllocationRow, operator: str) -> AllocationView:
    return AllocationView(
        operator=operator,
        licence=row.licence_id,
        concurrent=row.concurrent,
        per_day=row.per_day,
        cpu_seconds_per_day=row.cpu_seconds_per_day,
        reason=row.reason,
        allocated_by=row.allocated_by,
        allocated_at=row.allocated_at,
    )


def check_quotas(quotas: Quotas) -> Quotas:
    """``quotas`` if every value is a sane limit, else a :class:`RegistryError` naming the bad one."""
    bounds: tuple[tuple[str, float], ...] = (
        ("concurrent", MAX_CONCURRENT),
        ("per_day", MAX_PER_DAY),
        ("cpu_seconds_per_day", MAX_CPU_SECONDS),
    )
    for name, most in bounds:
        value = getattr(quotas, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RegistryError(f"quota {name} must be a number, not {value!r}")
        if name != "cpu_seconds_per_day" and (isinstance(value, float) and not value.is_integer()):
            raise RegistryError(f"quota {name} must be a whole number of jobs, not {value!r}")
        if not math.isfinite(value) or value < 0 or value > most:
            raise RegistryError(f"quota {name} must be between 0 and {most:g}, not {value!r}")
    return Quotas(int(quotas.concurrent), int(quotas.per_day), float(quotas.cpu_seconds_per_day))


def _operator(session: Session, name: str, *, lock: bool = False) -> OperatorRow:
    """The operator's row; ``lock``: held until the transaction ends, so two allocations to one operator (or
    its licences) run one after the other on PostgreSQL and cannot both insert the same scope's row."""
    query = select(OperatorRow).where(OperatorRow.name == name)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFoundError(f"no operator named {name!r}")
    return row


def _allocation(session: Session, scope: str, *, lock: bool = False) -> QuotaAllocationRow | None:
    query = select(QuotaAllocationRow).where(QuotaAllocationRow.scope == scope)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def limits_of(
    session: Session, operator: str, licence_id: int | None, defaults: Quotas
) -> tuple[Quotas, Quotas | None]:
    """The operator's limits (its allocation, else ``defaults``) and its licence's allocation, if any.

    Read in the submitter's transaction. An operator the registry does not know gets the defaults
    (the scope check refused it before this is asked).
    """
    op = session.scalar(select(OperatorRow.id).where(OperatorRow.name == operator))
    if op is None:
        return defaults, None
    own = _allocation(session, f"operator:{op}")
    licence = _allocation(session, f"licence:{licence_id}") if licence_id is not None else None
    return (own.quotas() if own else defaults), (licence.quotas() if licence else None)


class QuotaAllocations:
    """The agency's allocations; reads for the operator itself, the agency and regulators."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def allocate(
        self,
        operator: str,
        *,
        defaults: Quotas,
        licence: int | None = None,
        concurrent: int | None = None,
        per_day: int | None = None,
        cpu_seconds_per_day: float | None = None,
        reason: str,
        by: Actor,
    ) -> AllocationView:
        """Set ``operator``'s quotas (or its ``licence``'s); a value not given keeps the current one.

        The current one is the existing allocation, else the operator's limits (for a licence) or
        ``defaults`` (for an operator). A licence's may not exceed its operator's current limits.
        """
        if by.is_host or by.role != "agency":  # fail closed: never the host in the agency's name (SATRE 3.1.06)
            raise PermissionDeniedError(
                f"role {by.role!r} may not allocate quotas; allowed: an agency person through its own session "
                "(the host administrator never allocates in the agency's name)"
            )
        reason = require_reason(reason)
        if concurrent is None and per_day is None and cpu_seconds_per_day is None:
            raise RegistryError("give at least one quota: --concurrent, --per-day or --cpu-seconds")
        if licence is not None and not 1 <= licence <= MAX_ROW_ID:
            raise NotFoundError(f"no licence {licence}")
        with self.recorder.change(by) as change:
            session = change.session
            op = _operator(session, operator, lock=True)
            own = _allocation(session, f"operator:{op.id}")
            ceiling = own.quotas() if own else defaults
            if licence is not None:
                held = session.scalar(select(LicenceRow).where(LicenceRow.id == licence))
                if held is None or held.operator_id != op.id:
                    raise NotFoundError(f"operator {operator!r} holds no licence {licence}")
            scope = f"operator:{op.id}" if licence is None else f"licence:{licence}"
            row = own if licence is None else _allocation(session, scope, lock=True)
            before = row.quotas() if row else ceiling
            given: dict[str, Any] = {
                "concurrent": concurrent,
                "per_day": per_day,
                "cpu_seconds_per_day": cpu_seconds_per_day,
            }
            after = check_quotas(replace(before, **{k: v for k, v in given.items() if v is not None}))
            if licence is not None and (wider := after.within(ceiling)):
                raise RegistryError(
                    f"a licence's quota may not exceed its operator's: {', '.join(wider)} above operator "
                    f"{operator!r}'s {', '.join(f'{n}={getattr(ceiling, n):g}' for n in wider)}"
                )
            if row is None:
                row = QuotaAllocationRow(scope=scope, operator_id=op.id, licence_id=licence)
                session.add(row)
            row.concurrent, row.per_day, row.cpu_seconds_per_day = (
                after.concurrent,
                after.per_day,
                after.cpu_seconds_per_day,
            )
            row.reason, row.allocated_by, row.allocated_at = reason, by.name, self.config.now()
            session.flush()
            change.log(
                "quota.allocated",
                f"operator:{operator}" if licence is None else f"licence:{licence}",
                {
                    "operator": operator,
                    "licence": licence,
                    "before": before.as_json(),
                    "after": after.as_json(),
                    "reason": reason,
                },
            )
            return _view(row, operator)

    def list(self, operator: str, *, viewer: Actor) -> builtins.list[AllocationView]:
        """``operator``'s allocations (its own first, then per licence); an operator reads its own only."""
        if viewer.role == "operator" and not viewer.is_host and viewer.name != operator:
            raise NotFoundError(f"no operator named {operator!r}")  # another's quotas: as if none existed
        require_role(viewer, "operator", "agency", "regulator")
        with self.recorder.read() as session:
            op = _operator(session, operator)
            rows = session.scalars(
                select(QuotaAllocationRow)
                .where(QuotaAllocationRow.operator_id == op.id)
                .order_by(QuotaAllocationRow.licence_id.is_not(None), QuotaAllocationRow.licence_id)
            ).all()
            return [_view(r, operator) for r in rows]

    def licences_of(self, operator: str) -> builtins.list[tuple[int, str]]:
        """``(id, state)`` of every licence of ``operator``, oldest first (for the per-licence view)."""
        with self.recorder.read() as session:
            op = _operator(session, operator)
            rows = session.execute(
                select(LicenceRow.id, LicenceRow.state).where(LicenceRow.operator_id == op.id).order_by(LicenceRow.id)
            ).all()
            return [(int(r[0]), str(r[1])) for r in rows]


__all__ = [
    "MAX_CONCURRENT",
    "MAX_CPU_SECONDS",
    "MAX_PER_DAY",
    "QUOTA_NAMES",
    "AllocationView",
    "QuotaAllocationRow",
    "QuotaAllocations",
    "Quotas",
    "check_quotas",
    "limits_of",
]
