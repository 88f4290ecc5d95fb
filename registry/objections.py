"""异议: objections against a product, a catalog entry or a licence in publicity.

双鸭山市公共数据管理暂行办法 第四十条: whoever holds that published data is wrong, incomplete, or
infringes a trade secret or personal privacy may object; the provider stops it at once (立即中止),
verifies, then withdraws it, restores it, or restores it after correction (撤回数据、恢复开放或依法处理后
开放), and tells the objector the result. Here:

- against a product: delivery stops at once (the product is suspended in the objection's own
  transaction); the agency resolves it;
- against a catalog entry: while the objection is open the entry is not served to jobs (the scope
  check reads open ``ObjectionRow`` rows with ``target_kind == "resource"``); the custodian that
  provided the entry (数据提供部门) or the agency resolves it;
- against a licence in publicity (公示, 第四十八条): its activation is blocked while the objection is
  open (the licences read the row); the agency resolves it.

The objector reads the resolution and its reason. The ledger keeps only hashes of the reason and
of the resolution text: an objection about privacy may well quote personal data, which the ledger
must never hold.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import (
    MAX_ROW_ID,
    Actor,
    NotFoundError,
    PermissionDeniedError,
    Recorder,
    RegistryError,
    require_role,
    text_sha256,
)
from registry.config import RegistryConfig
from registry.models import LicenceRow, ObjectionRow, ProductRow, ResourceRow
from registry.product_states import product_row, restore_product, suspend_product, withdraw_product
from registry.vocabulary import LicenceState, ObjectionOutcome, ObjectionState, ProductState

TARGET_KINDS = ("product", "resource", "licence")
_ROLES = ("custodian", "agency", "operator", "regulator")
_READ_ALL = ("custodian", "agency", "regulator")


class ObjectionView(BaseModel):
    """An objection with its resolution, as the objector and the deciders read it."""

    id: int
    target_kind: str
    target: str  # product name, resource name, or licence id
    target_id: int
    filed_by: str
    filed_role: str
    reason: str
    state: str
    outcome: str | None
    resolution: str
    resolved_by: str | None
    filed_at: datetime
    resolved_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _target_name(session: Session, row: ObjectionRow) -> str:
    if row.target_kind == "product":
        product = session.get(ProductRow, row.target_id)
        return product.name if product is not None else str(row.target_id)
    if row.target_kind == "resource":
        resource = session.get(ResourceRow, row.target_id)
        return resource.name if resource is not None else str(row.target_id)
    return str(row.target_id)


def _view(session: Session, row: ObjectionRow) -> ObjectionView:
    return ObjectionView(
        id=row.id,
        target_kind=row.target_kind,
        target=_target_name(session, row),
        target_id=row.target_id,
        filed_by=row.filed_by,
        filed_role=row.filed_role,
        reason=row.reason,
        state=row.state,
        outcome=row.outcome,
        resolution=row.resolution,
        resolved_by=row.resolved_by,
        filed_at=row.filed_at,
        resolved_at=row.resolved_at,
    )


def _visible(row: ObjectionRow, viewer: Actor) -> bool:
    return viewer.is_host or viewer.role in _READ_ALL or row.filed_by == viewer.name


class Objections:
    """Filing and resolving objections; product suspension and restoration ride in the same change."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def file(self, target_kind: str, target: str, reason: str, *, by: Actor) -> ObjectionView:
        """File an objection (双鸭山 第四十条); anyone with a role may.

        ``target`` is a product's name, a catalog entry's name, or a licence's id. A product stops
        being delivered at once; a licence must be in publicity (objections are what publicity is for).
        """
        require_role(by, *_ROLES)
        if target_kind not in TARGET_KINDS:
            raise RegistryError(f"an objection targets one of {', '.join(TARGET_KINDS)}; got {target_kind!r}")
        reason = (reason or "").strip()
        if not reason:
            raise RegistryError("an objection needs a reason (what is wrong, incomplete or infringing)")
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            product: ProductRow | None = None
            if target_kind == "product":
                product = product_row(session, target)
                if by.role == "operator" and product.operator.name != by.name:
                    # Another operator's product is not visible: do not reveal that it exists.
                    raise NotFoundError(f"no product named {target!r}")
                if product.state == ProductState.WITHDRAWN:
                    raise RegistryError(f"product {target!r} is already withdrawn: it is no longer delivered")
                target_id = product.id
            elif target_kind == "resource":
                resource = session.scalar(select(ResourceRow).where(ResourceRow.name == target))
                if resource is None:
                    raise NotFoundError(f"no catalog entry named {target!r}")
                target_id = resource.id
            else:
                licence = self._licence(session, target)
                if (
                    by.role == "operator"
                    and licence.state != LicenceState.PUBLICITY
                    and licence.operator.name != by.name
                ):
                    # Publicity (公示) is public; another operator's licence out of it is not: neither its
                    # existence nor its state is told (as ``GET /licences/{id}`` answers 404).
                    raise NotFoundError(f"no licence {licence.id} in publicity (公示, 双鸭山 第四十八条)")
                if licence.state != LicenceState.PUBLICITY:
                    raise RegistryError(
                        f"licence {licence.id} is {licence.state}: objections against a licence are filed during "
                        "its publicity (公示, 双鸭山 第四十八条); for a licence in force, object to the agency directly"
                    )
                target_id = licence.id
            row = ObjectionRow(
                target_kind=target_kind,
                target_id=target_id,
                filed_by=by.name,
                filed_role=by.role,
                reason=reason,
                state=ObjectionState.OPEN,
                filed_at=now,
            )
            session.add(row)
            session.flush()
            change.log(
                "objection.filed",
                f"objection:{row.id}",
                {"target_kind": target_kind, "target_id": target_id, "reason_sha256": text_sha256(reason)},
            )
            if product is not None:
                suspend_product(change, product, reason=reason, objection=row.id)
            return _view(session, row)

    @staticmethod
    def _licence(session: Session, target: str) -> LicenceRow:
        try:
            licence_id = int(str(target).strip())
        except ValueError:
            raise NotFoundError(f"no licence {target!r}: name a licence by its number") from None
        licence = session.get(LicenceRow, licence_id) if 1 <= licence_id <= MAX_ROW_ID else None
        if licence is None:
            raise NotFoundError(f"no licence {licence_id}")
        return licence

    def resolve(self, objection_id: int, outcome: ObjectionOutcome | str, reason: str, *, by: Actor) -> ObjectionView:
        """Decide an open objection and tell the objector why (第四十条: 反馈处理结果).

        Products and licences: the agency decides. Catalog entries: the custodian that provided the
        entry (数据提供部门) or the agency. For a product, ``withdraw`` withdraws it for good;
        ``restore`` and ``restore_after_correction`` deliver it again unless another objection on it
        is still open.
        """
        require_role(by, "agency", "custodian")
        try:
            decided = ObjectionOutcome(outcome)
        except ValueError:
            allowed = ", ".join(o.value for o in ObjectionOutcome)
            raise RegistryError(f"outcome must be one of {allowed}; got {outcome!r}") from None
        reason = (reason or "").strip()
        if not reason:
            raise RegistryError("a resolution needs a reason: the objector reads it")
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            row = session.get(ObjectionRow, objection_id)
            if row is None:
                raise NotFoundError(f"no objection {objection_id}")
            self._may_resolve(session, row, by)
            if row.state != ObjectionState.OPEN:
                raise RegistryError(f"objection {objection_id} is already resolved ({row.outcome})")
            row.state = ObjectionState.RESOLVED
            row.outcome = decided
            row.resolution = reason
            row.resolved_by = by.name
            row.resolved_at = now
            session.flush()
            change.log(
                "objection.resolved",
                f"objection:{row.id}",
                {
                    "target_kind": row.target_kind,
                    "target_id": row.target_id,
                    "outcome": str(decided),
                    "resolution_sha256": text_sha256(reason),
                },
            )
            if row.target_kind == "product":
                product = session.get(ProductRow, row.target_id)
                if product is not None:
                    if decided == ObjectionOutcome.WITHDRAW:
                        withdraw_product(change, product, reason=reason, objection=row.id)
                    else:
                        restore_product(change, product, reason=reason, objection=row.id)
            return _view(session, row)

    @staticmethod
    def _may_resolve(session: Session, row: ObjectionRow, by: Actor) -> None:
        if by.is_host or by.role == "agency":
            return
        if row.target_kind != "resource":
            raise PermissionDeniedError(f"objections against a {row.target_kind} are resolved by the agency")
        resource = session.get(ResourceRow, row.target_id)
        if resource is None or resource.created_by != by.name:
            raise PermissionDeniedError(
                "an objection against a catalog entry is resolved by the custodian that provided it "
                "(数据提供部门, 双鸭山 第四十条) or by the agency"
            )

    def get(self, objection_id: int, *, viewer: Actor) -> ObjectionView:
        """One objection: the objector's own, or any for custodian, agency and regulator."""
        require_role(viewer, *_ROLES)
        with self.recorder.read() as session:
            row = session.get(ObjectionRow, objection_id)
            if row is None or not _visible(row, viewer):
                raise NotFoundError(f"no objection {objection_id}")
            return _view(session, row)

    def list(self, *, viewer: Actor) -> builtins.list[ObjectionView]:
        """Objections in filing order: the objector's own, or all for custodian, agency and regulator."""
        require_role(viewer, *_ROLES)
        with self.recorder.read() as session:
            query = select(ObjectionRow).order_by(ObjectionRow.id)
            if not (viewer.is_host or viewer.role in _READ_ALL):
                query = query.where(ObjectionRow.filed_by == viewer.name)
            return [_view(session, row) for row in session.scalars(query)]

    def open_against(self, target_kind: str, target_id: int) -> builtins.list[int]:
        """Ids of the open objections against one target (what scope checks and activation consult)."""
        with self.recorder.read() as session:
            query = select(ObjectionRow.id).where(
                ObjectionRow.target_kind == target_kind,
                ObjectionRow.target_id == target_id,
                ObjectionRow.state == ObjectionState.OPEN,
            )
            return list(session.scalars(query.order_by(ObjectionRow.id)))
