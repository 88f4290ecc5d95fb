"""使用记录: what was done with each licensed dataset, readable by its provider and by regulators.

黑龙江省政务数据管理暂行办法 第二十八条 and 双鸭山市公共数据管理暂行办法 第二十条: usage is recorded
and the records kept at least three years. Rows here are never deleted by Keyong.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, NotFoundError, PermissionDeniedError, Recorder, utcnow
from registry.config import RegistryConfig
from registry.models import DestructionRow, LicenceDatasetRow, LicenceRow, OperatorRow, ResourceRow, UsageRow


def record_usage(
    session: Session,
    *,
    resource_id: int,
    event: str,
    licence_id: int | None = None,
    operator_id: int | None = None,
    scenario: str = "",
    subject: str = "",
    detail: dict[str, Any] | None = None,
) -> UsageRow:
    """Add one usage record inside the caller's change (and so beside its ledger entry)."""
    row = UsageRow(
        resource_id=resource_id,
        licence_id=licence_id,
        operator_id=operator_id,
        event=event,
        scenario=scenario,
        subject=subject,
        detail=detail or {},
        at=utcnow(),
    )
    session.add(row)
    return row


class UsageRecords:
    """The query side of usage records: for the custodian that provided a dataset, and for regulators.

    黑龙江省政务数据管理暂行办法 第二十八条 (supervision of how shared data is used) and 双鸭山 第二十条:
    the provider and the regulators can see, for each licensed dataset, in which scenarios it was
    used, which jobs were admitted over it, what was released from it, and whether the working
    copies were destroyed. Operators and the agency are refused: these records describe every
    operator's use, and each operator sees only its own work.
    """

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def _resource(self, session: Session, name: str, viewer: Actor) -> ResourceRow:
        if not (viewer.is_host or viewer.role in ("custodian", "regulator")):
            raise PermissionDeniedError(
                f"role {viewer.role!r} may not read usage records: they are kept for the custodian that "
                "provided the dataset and for regulators (黑龙江 第二十八条)"
            )
        resource = session.scalar(select(ResourceRow).where(ResourceRow.name == name))
        if resource is None:
            raise NotFoundError(f"no dataset named {name!r}")
        if viewer.role == "custodian" and resource.created_by != viewer.name:
            raise PermissionDeniedError(
                f"dataset {name!r} was provided by {resource.created_by!r}: only the custodian that provided it "
                "and regulators read its usage records"
            )
        return resource

    def for_dataset(self, name: str, *, viewer: Actor) -> list[dict[str, Any]]:
        """Every usage record of the dataset, oldest first."""
        with self.recorder.read() as session:
            resource = self._resource(session, name, viewer)
            return [self._record(resource, row, operator) for row, operator in self._rows(session, resource)]

    def summary(self, name: str, *, viewer: Actor) -> dict[str, Any]:
        """Per licence: operator, scenarios used, jobs admitted, products released, whether destroyed."""
        with self.recorder.read() as session:
            resource = self._resource(session, name, viewer)
            rows = self._rows(session, resource)
            licences: dict[int | None, dict[str, Any]] = {}
            scoped = session.scalars(
                select(LicenceRow)
                .join(LicenceDatasetRow, LicenceDatasetRow.licence_id == LicenceRow.id)
                .where(LicenceDatasetRow.resource_id == resource.id)
                .order_by(LicenceRow.id)
            )
            for licence in scoped:
                licences[licence.id] = self._licence_entry(licence.id, licence.operator.name, licence)
            for row, operator in rows:
                entry = licences.get(row.licence_id)
                if entry is None:
                    found = session.get(LicenceRow, row.licence_id) if row.licence_id is not None else None
                    entry = self._licence_entry(row.licence_id, operator, found)
                    licences[row.licence_id] = entry
                if row.scenario and row.scenario not in entry["scenarios_used"]:
                    entry["scenarios_used"].append(row.scenario)
                if row.event == "job.admitted":
                    entry["jobs_admitted"].append(row.subject)
                elif row.event == "product.released":
                    entry["products_released"].append(row.subject.removeprefix("product:"))
                elif row.event == "copy.destroyed":
                    entry["destroyed"] = True
                    entry["destroyed_at"] = row.at.isoformat()
                entry["last_used_at"] = row.at.isoformat()
            for licence_id, entry in licences.items():
                if licence_id is not None and not entry["destroyed"]:
                    destruction = session.scalar(
                        select(DestructionRow)
                        .where(DestructionRow.licence_id == licence_id)
                        .order_by(DestructionRow.id.desc())
                    )
                    if destruction is not None:
                        entry["destroyed"] = True
                        entry["destroyed_at"] = destruction.at.isoformat()
            return {
                "dataset": resource.name,
                "provider_name": resource.provider_name,
                "provider_code": resource.provider_code,
                "records": len(rows),
                "licences": list(licences.values()),
                "rule": "黑龙江省政务数据管理暂行办法 第二十八条; 双鸭山市公共数据管理暂行办法 第二十条",
            }

    @staticmethod
    def _licence_entry(licence_id: int | None, operator: str | None, licence: LicenceRow | None) -> dict[str, Any]:
        return {
            "licence_id": licence_id,
            "operator": operator,
            "state": licence.state if licence is not None else None,
            "scenarios_licensed": list(licence.scenarios or []) if licence is not None else [],
            "scenarios_used": [],
            "jobs_admitted": [],
            "products_released": [],
            "destroyed": False,
            "destroyed_at": None,
            "last_used_at": None,
        }

    @staticmethod
    def _rows(session: Session, resource: ResourceRow) -> list[tuple[UsageRow, str | None]]:
        query = (
            select(UsageRow, OperatorRow.name)
            .outerjoin(OperatorRow, UsageRow.operator_id == OperatorRow.id)
            .where(UsageRow.resource_id == resource.id)
            .order_by(UsageRow.at, UsageRow.id)
        )
        return [(row, operator) for row, operator in session.execute(query)]

    @staticmethod
    def _record(resource: ResourceRow, row: UsageRow, operator: str | None) -> dict[str, Any]:
        return {
            "id": row.id,
            "at": row.at.isoformat(),
            "dataset": resource.name,
            "event": row.event,
            "licence_id": row.licence_id,
            "operator": operator,
            "scenario": row.scenario,
            "subject": row.subject,
            "detail": dict(row.detail or {}),
        }
