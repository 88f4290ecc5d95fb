"""What readers see of operators and licences: pydantic views built from the registry's rows.

Kept apart from the services so every part of the licence code (operators, granting, the state
machine, scope admission, destruction) returns the same shapes, and the API serialises them as-is.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

from registry.models import DestructionRow, LicenceRow, OperatorRow


class OperatorView(BaseModel):
    name: str
    uscc: str
    qualification: str
    suspended_reason: str
    created_at: datetime

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class LicenceDatasetView(BaseModel):
    name: str
    epsilon_budget: float
    epsilon_spent: float


class LicenceEventView(BaseModel):
    from_state: str | None
    to_state: str
    by: str
    reason: str
    at: datetime


class LicenceView(BaseModel):
    """A licence as its operator, the agency and regulators read it."""

    id: int
    operator: str
    mode: str
    domains: list[str]
    scenarios: list[str]
    datasets: list[LicenceDatasetView]
    valid_from: date
    valid_until: date
    fee_class: str
    price_cents: int | None
    state: str
    publicity_ends_at: datetime | None
    events: list[LicenceEventView]

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class ScopeDataset(BaseModel):
    """A dataset a job may mount: the desensitized version only (原始数据不出域, 第三十五条)."""

    name: str
    resource_id: int
    version_id: int
    version: int
    path: str  # relative to the instance home
    epsilon_budget: float
    epsilon_spent: float


class ScopeGrant(BaseModel):
    """What an admitted job may use: under which licence, which datasets, for which scenario."""

    licence_id: int
    operator: str
    scenario: str
    datasets: list[ScopeDataset]

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class DestructionView(BaseModel):
    id: int
    licence_id: int
    files: int
    bytes: int
    manifest_sha256: str
    by: str
    at: datetime

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def operator_view(row: OperatorRow) -> OperatorView:
    return OperatorView(
        name=row.name,
        uscc=row.uscc,
        qualification=row.qualification,
        suspended_reason=row.suspended_reason,
        created_at=row.created_at,
    )


def licence_view(row: LicenceRow) -> LicenceView:
    return LicenceView(
        id=row.id,
        operator=row.operator.name,
        mode=row.mode,
        domains=list(row.domains),
        scenarios=list(row.scenarios),
        datasets=[
            LicenceDatasetView(name=d.resource.name, epsilon_budget=d.epsilon_budget, epsilon_spent=d.epsilon_spent)
            for d in row.datasets
        ],
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        fee_class=row.fee_class,
        price_cents=row.price_cents,
        state=row.state,
        publicity_ends_at=row.publicity_ends_at,
        events=[
            LicenceEventView(from_state=e.from_state, to_state=e.to_state, by=e.by, reason=e.reason, at=e.at)
            for e in row.events
        ],
    )


def destruction_view(row: DestructionRow) -> DestructionView:
    return DestructionView(
        id=row.id,
        licence_id=row.licence_id,
        files=row.files,
        bytes=row.bytes,
        manifest_sha256=row.manifest_sha256,
        by=row.by,
        at=row.at,
    )


__all__ = [
    "DestructionView",
    "LicenceDatasetView",
    "LicenceEventView",
    "LicenceView",
    "OperatorView",
    "ScopeDataset",
    "ScopeGrant",
    "destruction_view",
    "licence_view",
    "operator_view",
]
