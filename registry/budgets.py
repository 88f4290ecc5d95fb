"""Privacy budgets: ε and δ per licence and dataset, charged before a DP job runs (issue 8).

Why it works this way:

* **A hard cap, not an odometer that only reports.** A DP job's (ε, δ) is charged in the same
  transaction that queues it, under a row lock on the licence's dataset budget (``SELECT … FOR
  UPDATE`` on PostgreSQL; SQLite's single writer serialises the same way), so two concurrent jobs
  cannot both spend the last of a budget. A request that would exceed what remains is refused with
  the remaining amount in the message. Composition is basic sequential composition: spends add.
* **Charged before, not refunded after.** The charge is ledgered (``budget.charged``) before the
  job can be claimed; a job that fails after it saw data keeps its charge. Only a job cancelled
  while still queued — it never read a row — gets its charge back (``budget.refunded``).
* **The agency may raise a budget, with a reason, in the ledger** (``budget.raised``): a licence's
  budget is part of the 授权运营协议 the agency grants (双鸭山 第四十六条), and raising it is a
  decision regulators must be able to trace (日志留存, 第五十二条).
"""

from __future__ import annotations

import builtins
import math

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import MAX_ROW_ID, Actor, Change, NotFoundError, PermissionDeniedError, Recorder, RegistryError, require_role
from registry.config import RegistryConfig
from registry.licence_terms import check_epsilon
from registry.models import LicenceDatasetRow, LicenceRow, OperatorRow, ResourceRow

#: Float sums of ε drift in the last bits; a charge within this of the cap is not an overspend.
TOLERANCE = 1e-9


class BudgetExhaustedError(RegistryError):
    """A DP request would exceed what remains of a budget; nothing was charged."""

    def __init__(self, reason: str, remaining_epsilon: float, remaining_delta: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.remaining_epsilon = remaining_epsilon
        self.remaining_delta = remaining_delta


class BudgetView(BaseModel):
    licence: int
    operator: str
    dataset: str
    licence_state: str
    epsilon_budget: float
    epsilon_spent: float
    epsilon_remaining: float
    delta_budget: float
    delta_spent: float
    delta_remaining: float

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def _view(row: LicenceDatasetRow) -> BudgetView:
    return BudgetView(
        licence=row.licence_id,
        operator=row.licence.operator.name,
        dataset=row.resource.name,
        licence_state=row.licence.state,
        epsilon_budget=row.epsilon_budget,
        epsilon_spent=row.epsilon_spent,
        epsilon_remaining=max(0.0, row.epsilon_budget - row.epsilon_spent),
        delta_budget=row.delta_budget,
        delta_spent=row.delta_spent,
        delta_remaining=max(0.0, row.delta_budget - row.delta_spent),
    )


class Budgets:
    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    @staticmethod
    def _locked(session: Session, licence_id: int, dataset: str) -> LicenceDatasetRow:
        row = session.scalar(
            select(LicenceDatasetRow)
            .join(ResourceRow, LicenceDatasetRow.resource_id == ResourceRow.id)
            .where(LicenceDatasetRow.licence_id == licence_id, ResourceRow.name == dataset)
            .with_for_update(of=LicenceDatasetRow)
            .execution_options(populate_existing=True)  # the locked row's current spend, not a cached one
        )
        if row is None:
            raise NotFoundError(f"licence {licence_id} holds no budget for dataset {dataset!r}")
        return row

    def charge(
        self, change: Change, licence_id: int, dataset: str, *, epsilon: float, delta: float, subject: str
    ) -> BudgetView:
        """Spend (ε, δ) of ``licence_id``'s budget for ``dataset`` inside the caller's transaction.

        Raises :class:`BudgetExhaustedError` (nothing spent) when the spend would exceed the cap.
        """
        if not (math.isfinite(epsilon) and math.isfinite(delta)) or epsilon <= 0 or delta < 0:
            raise RegistryError(f"a charge is ε > 0 and δ ≥ 0, not ({epsilon}, {delta})")
        row = self._locked(change.session, licence_id, dataset)
        remaining_e = row.epsilon_budget - row.epsilon_spent
        remaining_d = row.delta_budget - row.delta_spent
        if epsilon > remaining_e + TOLERANCE or delta > remaining_d + TOLERANCE * 1e-6:
            raise BudgetExhaustedError(
                f"privacy budget exhausted for {dataset!r} under licence {licence_id}: the request needs "
                f"ε = {epsilon:g}, δ = {delta:g}; remaining ε = {max(0.0, remaining_e):g} of {row.epsilon_budget:g}, "
                f"δ = {max(0.0, remaining_d):g} of {row.delta_budget:g} (the agency may raise it)",
                max(0.0, remaining_e),
                max(0.0, remaining_d),
            )
        row.epsilon_spent = min(row.epsilon_budget, row.epsilon_spent + epsilon)
        row.delta_spent = min(row.delta_budget, row.delta_spent + delta)
        change.session.flush()
        change.log(
            "budget.charged",
            f"licence:{licence_id}",
            {
                "dataset": dataset,
                "epsilon": epsilon,
                "delta": delta,
                "for": subject,
                "epsilon_spent": row.epsilon_spent,
                "delta_spent": row.delta_spent,
            },
        )
        return _view(row)

    def refund(
        self, change: Change, licence_id: int, dataset: str, *, epsilon: float, delta: float, subject: str, why: str
    ) -> BudgetView:
        """Give back a charge of a job that never read data (cancelled while queued)."""
        row = self._locked(change.session, licence_id, dataset)
        row.epsilon_spent = max(0.0, row.epsilon_spent - epsilon)
        row.delta_spent = max(0.0, row.delta_spent - delta)
        change.session.flush()
        change.log(
            "budget.refunded",
            f"licence:{licence_id}",
            {"dataset": dataset, "epsilon": epsilon, "delta": delta, "for": subject, "why": why},
        )
        return _view(row)

    def raise_budget(
        self,
        licence_id: int,
        dataset: str,
        *,
        epsilon: float | None = None,
        delta: float | None = None,
        reason: str,
        by: Actor,
    ) -> BudgetView:
        """Set a higher total ε and/or δ for a dataset of a licence (agency only; never lower than spent)."""
        require_role(by, "agency")
        reason = (reason or "").strip()
        if not reason:
            raise RegistryError("raising a privacy budget needs a reason (it goes to the ledger)")
        if epsilon is None and delta is None:
            raise RegistryError("give the new total ε and/or δ")
        if not 1 <= licence_id <= MAX_ROW_ID:
            raise NotFoundError(f"no licence {licence_id}")
        with self.recorder.change(by) as change:
            row = self._locked(change.session, licence_id, dataset)
            before = (row.epsilon_budget, row.delta_budget)
            if epsilon is not None:
                check_epsilon(epsilon, "the new ε budget")
                if epsilon <= row.epsilon_budget:
                    raise RegistryError(f"the new ε budget must exceed the current {row.epsilon_budget:g}")
                row.epsilon_budget = float(epsilon)
            if delta is not None:
                if not math.isfinite(delta) or not row.delta_budget < delta < 1:
                    raise RegistryError(f"the new δ budget must exceed the current {row.delta_budget:g} and stay < 1")
                row.delta_budget = float(delta)
            change.session.flush()
            change.log(
                "budget.raised",
                f"licence:{licence_id}",
                {
                    "dataset": dataset,
                    "epsilon_budget": [before[0], row.epsilon_budget],
                    "delta_budget": [before[1], row.delta_budget],
                    "reason": reason,
                },
            )
            return _view(row)

    def show(self, operator: str, *, viewer: Actor) -> builtins.list[BudgetView]:
        """Every budget of ``operator``'s licences; an operator sees only its own."""
        if viewer.role == "operator" and not viewer.is_host and viewer.name != operator:
            raise PermissionDeniedError("an operator sees its own budgets only")
        require_role(viewer, "operator", "agency", "regulator")
        with self.recorder.read() as session:
            op = session.scalar(select(OperatorRow).where(OperatorRow.name == operator))
            if op is None:
                raise NotFoundError(f"no operator named {operator!r}")
            rows = session.scalars(
                select(LicenceDatasetRow)
                .join(LicenceRow, LicenceDatasetRow.licence_id == LicenceRow.id)
                .where(LicenceRow.operator_id == op.id)
                .order_by(LicenceDatasetRow.licence_id, LicenceDatasetRow.resource_id)
            ).all()
            return [_view(r) for r in rows]


__all__ = ["TOLERANCE", "BudgetExhaustedError", "BudgetView", "Budgets"]
