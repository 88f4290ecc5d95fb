"""What readers see of operators and licences: pydantic views built from the registry's rows.

Kept apart from the services so every part of the licence code (operators, granting, the state
machine, scope admission, destruction) returns the same shapes, and the API serialises them as-is.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from registry.eligibility import desensitized_version
from registry.linkage_rules import linkage_entries, shared_columns
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
    link_group: str | None = None


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
    #: What the operator can link (issue 23): one entry per link group, see :func:`licence_linkage`.
    linkage: list[dict[str, Any]] = []

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class ScopeDataset(BaseModel):
    """A dataset a job may mount: the licence's copy of its desensitized version only (原始数据不出域,
    第三十五条; issue 23: its pseudonyms keyed for the licence, never the base copy's)."""

    name: str
    resource_id: int
    version_id: int  # the base desensitized version the licence copy was derived from
    version: int
    path: str  # the licence copy, relative to the instance home
    licence_copy: int | None = None
    link_group: str | None = None
    #: The column its copy joins on (``registry.linkage_rules.person_key``), set only when the licence
    #: grants the dataset jointly with others (a link group ``a+b``): the guard re-derives joined tables.
    person_key: str | None = None
    epsilon_budget: float
    epsilon_spent: float

    def job_spec(self) -> dict[str, Any]:
        """What a job row keeps of the mount: the copy to read, and (granted jointly) its link group and
        person key, so the export guard can join the group's copies as the job could (issue 23)."""
        spec: dict[str, Any] = {"version": self.version, "path": self.path, "licence_copy": self.licence_copy}
        if self.person_key is not None and self.link_group is not None and "+" in self.link_group:
            spec |= {"link_group": self.link_group, "person_key": self.person_key}
        return spec


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
            LicenceDatasetView(
                name=d.resource.name,
                epsilon_budget=d.epsilon_budget,
                epsilon_spent=d.epsilon_spent,
                link_group=d.link_group,
            )
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
        linkage=licence_linkage(row),
    )


def licence_linkage(row: LicenceRow) -> list[dict[str, Any]]:
    """``linkage`` of a licence: per link group, its datasets, whether joint, how keyed, the joint risk.

    ``key`` is "per licence and dataset" for a dataset analysed alone (it joins nothing), "per licence,
    shared by the group" for datasets granted jointly; ``risk`` is the joined view's figures (before and
    after, k achieved, met) of the group's newest copies, None before they are made or for one dataset;
    ``shared_columns`` the kept keys verbatim in its copies (the same under every licence: they join
    across licences, red team 23 F5), with ``shared_note`` saying so.
    """
    reports: dict[str, Any] = {}
    shared: dict[str, list[str]] = {}
    for d in row.datasets:  # before its copy is made: the base copy's kept keys (red team 23, F5)
        base = desensitized_version(d.resource)
        shared[d.resource.name] = shared_columns(base.report) if base is not None else []
    for copy in row.copies:  # oldest first: the newest copy of a group wins
        report = copy.report or {}
        joint = report.get("joint_report")
        if joint:
            reports[copy.link_group] = joint
        if isinstance(report.get("shared_columns"), list):
            shared[copy.resource.name] = [str(c) for c in report["shared_columns"]]
    return linkage_entries(((d.resource.name, d.link_group) for d in row.datasets), reports, shared)


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
    "licence_linkage",
    "licence_view",
    "operator_view",
]
