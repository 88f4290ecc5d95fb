"""The public register: what anyone may read without an account (SATRE 1.7.02*).

A TRE publishes its operations, the data it makes available and the projects that used it. The rules
ask the same of an authorized-operation platform: operating companies are selected and **publicised**
(公示) before the agreement is signed (双鸭山市公共数据管理暂行办法 第四十八条), so licences in 公示 are
public by law; the catalog (资源目录, 第十二条) is published; released products are registered (登记, 第五十条) and
carry their data source (第四十一条). This module answers those three questions and a per-dataset usage count,
from the registry's own rows, for :mod:`app.api.public` to serve without authentication.

What is left out, on purpose (fail closed: a field is here only if it is named below):

- catalog entries that are not ``published`` (revoking, revoked) — an entry being withdrawn is not offered;
- licences other than in 公示 or active and in their period (drafts, suspended, revoked, expired);
- products other than ``available`` (suspended by an objection, withdrawn, deleted), and their content;
- every person: no principal name, no ``created_by``/``registered_by``/reviewer, no objection's filer;
- file paths, hashes of the data, job ids, budgets and prices: what the page needs is names and counts.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core import Recorder
from registry.config import RegistryConfig
from registry.models import LicenceDatasetRow, LicenceRow, ProductRow, ResourceRow, UsageRow
from registry.vocabulary import LicenceState, ProductState, ResourceState

#: 双鸭山 第四十八条: 以公平竞争方式遴选运营机构, 并进行公示; 公示无异议的 ... 签订授权运营协议.
PUBLICITY_RULE = "双鸭山市公共数据管理暂行办法 第四十八条"
#: Licence states the public register lists, and those it counts as granted (a draft is not yet anything).
LISTED_LICENCES = (LicenceState.PUBLICITY, LicenceState.ACTIVE)
GRANTED_LICENCES = (
    LicenceState.PUBLICITY,
    LicenceState.ACTIVE,
    LicenceState.SUSPENDED,
    LicenceState.REVOKED,
    LicenceState.EXPIRED,
)


def _value(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


class PublicRegister:
    """Read-only answers for the unauthenticated public page; no viewer, so nothing role-dependent."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def catalog(self) -> list[dict[str, Any]]:
        """Published 资源目录 entries: names, descriptions, level and the providing organisation."""
        with self.recorder.read() as session:
            return [self._entry(row) for row in self._published(session)]

    def licences(self) -> list[dict[str, Any]]:
        """Licences in 公示 (objections may be filed) and active ones within their period."""
        with self.recorder.read() as session:
            public = {row.id: row.name for row in self._published(session)}
            today = self.config.now().date()
            rows = session.scalars(
                select(LicenceRow)
                .where(LicenceRow.state.in_([str(s) for s in LISTED_LICENCES]))
                .options(selectinload(LicenceRow.datasets), selectinload(LicenceRow.operator))
                .order_by(LicenceRow.id)
            )
            return [self._licence(row, public) for row in rows if self._listed(row, today)]

    def products(self) -> list[dict[str, Any]]:
        """Released products that are available: name, operator, datasets used, date; never the content."""
        with self.recorder.read() as session:
            public = {row.name for row in self._published(session)}
            rows = session.scalars(
                select(ProductRow)
                .where(ProductRow.state == str(ProductState.AVAILABLE))
                .options(selectinload(ProductRow.operator))
                .order_by(ProductRow.registered_at, ProductRow.id)
            )
            return [
                {
                    "product": row.name,
                    "operator": row.operator.name,
                    "scenario": row.scenario,
                    "datasets": [d for d in _lineage_datasets(row) if d in public],
                    "released": row.registered_at.date().isoformat(),
                    "fee_class": row.fee_class,
                }
                for row in rows
            ]

    def usage(self) -> list[dict[str, Any]]:
        """Per published dataset: licences granted (and active), jobs admitted and products available."""
        with self.recorder.read() as session:
            resources = self._published(session)
            granted: Counter[int] = Counter()
            active: Counter[int] = Counter()
            for resource_id, state in session.execute(
                select(LicenceDatasetRow.resource_id, LicenceRow.state)
                .join(LicenceRow, LicenceRow.id == LicenceDatasetRow.licence_id)
                .where(LicenceRow.state.in_([str(s) for s in GRANTED_LICENCES]))
            ):
                granted[resource_id] += 1
                active[resource_id] += state == LicenceState.ACTIVE
            jobs = dict(
                session.execute(
                    select(UsageRow.resource_id, func.count(UsageRow.id))
                    .where(UsageRow.event == "job.admitted")
                    .group_by(UsageRow.resource_id)
                ).all()
            )
            products: Counter[str] = Counter()
            for row in session.scalars(select(ProductRow).where(ProductRow.state == str(ProductState.AVAILABLE))):
                products.update(set(_lineage_datasets(row)))
            return [
                {
                    "dataset": row.name,
                    "licences": granted[row.id],
                    "licences_active": active[row.id],
                    "jobs": int(jobs.get(row.id, 0)),
                    "products": products[row.name],
                }
                for row in resources
            ]

    @staticmethod
    def _published(session: Session) -> list[ResourceRow]:
        query = select(ResourceRow).where(ResourceRow.state == str(ResourceState.PUBLISHED)).order_by(ResourceRow.name)
        return list(session.scalars(query))

    @staticmethod
    def _entry(row: ResourceRow) -> dict[str, Any]:
        return {
            "name": row.name,
            "title": row.title,
            "summary": row.summary,
            "industry": row.industry,
            "data_format": row.data_format,
            "coverage_time": row.coverage_time,
            "coverage_region": row.coverage_region,
            "update_frequency": row.update_frequency,
            "provider": row.provider_name,
            "level": row.level,
            "personal_info": row.personal_info,
            "sharing_type": _value(row.sharing_type),
            "opening_type": _value(row.opening_type),
            "operation_status": _value(row.operation_status),
            "operation_scenarios": list(row.operation_scenarios or []),
            "published": row.created_at.date().isoformat(),
        }

    @staticmethod
    def _listed(row: LicenceRow, today: date) -> bool:
        """In 公示, or active and within its period (an active licence past its end is expiring, not listed)."""
        if row.state == LicenceState.PUBLICITY:
            return True
        return row.valid_from <= today <= row.valid_until

    @staticmethod
    def _licence(row: LicenceRow, public: dict[int, str]) -> dict[str, Any]:
        in_publicity = row.state == LicenceState.PUBLICITY
        return {
            "licence": row.id,  # what an objection names (registry.objections)
            "state": row.state,
            "operator": row.operator.name,
            "operator_uscc": row.operator.uscc,  # a company's 统一社会信用代码 is public by design
            "mode": row.mode,
            "domains": list(row.domains or []),
            "scenarios": list(row.scenarios or []),
            "datasets": sorted(public[d.resource_id] for d in row.datasets if d.resource_id in public),
            "valid_from": row.valid_from.isoformat(),
            "valid_until": row.valid_until.isoformat(),
            "fee_class": row.fee_class,
            "publicity_ends_at": row.publicity_ends_at.isoformat() if in_publicity and row.publicity_ends_at else None,
            "rule": PUBLICITY_RULE if in_publicity else None,
        }


def _lineage_datasets(row: ProductRow) -> list[str]:
    """The dataset names in a product's lineage, in order, without repeats; never versions or hashes."""
    names = [str(d.get("name", "")) for d in (row.lineage or {}).get("datasets", []) if isinstance(d, dict)]
    return list(dict.fromkeys(n for n in names if n))


__all__ = ["GRANTED_LICENCES", "LISTED_LICENCES", "PUBLICITY_RULE", "PublicRegister"]
