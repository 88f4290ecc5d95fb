"""数据产品和服务: registered on release with their lineage and an attribution that travels with them.

- 双鸭山市公共数据管理暂行办法 第五十条: products and services are registered (登记); here, when a
  release is approved, with everything needed to trace them back: operator, licence, job, the datasets
  and versions used, the code's hash, the export guard's report, the reviewers and their decisions,
  and the fee class and price the licence sets (第四十四条: 公益 free, 经营性 priced).
- 第五十二条: nothing is released without a pre-release compliance review; registration refuses a
  product whose guard verdict is ``block`` or whose reviews do not hold an approval and no rejection.
- 第四十一条: products must state the data's source and acquisition date. The attribution block
  (providers' names and codes, the creation dates of the versions used) is stored with the product
  and embedded in every delivered artifact by :func:`stamp_artifact`, so it travels with the data.
  (:mod:`registry.attribution`)
- 第四十条: an open objection suspends delivery at once; :mod:`registry.product_states` changes a
  product's state inside the objection's own change so both are ledgered together.

An operator sees only its own products; another's are reported as not found, so their existence
is not revealed (DESIGN.md: an operator never sees another operator's products).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, Change, NotFoundError, PermissionDeniedError, Recorder, RegistryError, require_role
from registry.attribution import (
    ATTRIBUTION_KEY,
    ATTRIBUTION_RULE,
    SIDECAR_SUFFIX,
    build_attribution,
    read_attribution,
    sidecar_path,
    stamp_artifact,
)
from registry.config import RegistryConfig
from registry.freeze import require_not_frozen
from registry.models import LicenceRow, OperatorRow, ProductRow, ResourceRow, VersionRow
from registry.product_states import (
    check_product_name,
    open_objections_on,
    product_name_taken,
    product_row,
    restore_product,
    suspend_product,
    withdraw_product,
)
from registry.product_views import ProductView, attribution_metadata, product_view
from registry.usability import Usability, require_qualified, usability
from registry.usage import record_usage
from registry.vocabulary import FeeClass, ProductState

# Roles that may read every product (the operator reads only its own).
_READ_ALL = ("custodian", "agency", "regulator")
_ROLES = ("custodian", "agency", "operator", "regulator")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VERDICTS = ("pass", "review", "block")
_DECISIONS = ("approve", "reject")


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ProductRegistration:
    """Everything a product is registered with: its operator and licence, the job and what it read,
    the guard's verdict, the reviews, and the files (the release workflow fills it on approval).
    """

    operator: str
    licence_id: int
    job: str
    scenario: str
    datasets: list[dict[str, Any]]  # [{"name", "version"}]
    code_sha256: str
    guard: dict[str, Any]  # {"verdict", "findings"}
    reviews: list[dict[str, Any]]  # [{"reviewer", "decision", "reason"}]
    artifacts: list[dict[str, Any]]  # [{"name", "bytes", "sha256", "path"}]
    by: Actor
    #: Reviewers outvoted by a further reviewer: kept so the lineage shows them.
    dissent: list[dict[str, Any]] | None = None


def _unusable_message(licence: LicenceRow, operator: str, why: Usability) -> str:
    """Why no product is registered under ``licence`` now, phrased for the agency registering it."""
    if why == Usability.NOT_ACTIVE:
        return (
            f"licence {licence.id} is {licence.state}: products are registered only under an active "
            "licence (restore or activate it first)"
        )
    if why == Usability.NOT_YET_VALID:
        return (
            f"licence {licence.id} is valid from {licence.valid_from.isoformat()}: no product may be "
            "registered under it yet"
        )
    if why == Usability.LAPSED:
        return (
            f"licence {licence.id} expired on {licence.valid_until.isoformat()}: no product may be registered under it"
        )
    return (
        f"operator {operator!r} is {licence.operator.qualification}: its products are not registered "
        "until the agency restores it"
    )


def _lineage(
    sources: list[tuple[ResourceRow, VersionRow]],
    code_sha256: str,
    guard: dict[str, Any],
    reviews: list[dict[str, Any]],
    dissent: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The product's lineage: datasets and versions read, code hash, guard report, reviews, dissent."""
    return {
        "datasets": [
            {
                "name": resource.name,
                "version": version.version,
                "kind": version.kind,
                "content_sha256": version.content_sha256,
                "created_at": version.created_at.isoformat(),
            }
            for resource, version in sources
        ],
        "code_sha256": code_sha256,
        "guard": guard,
        "reviews": reviews,
        "dissent": [
            {
                "reviewer": str(d.get("reviewer", "")),
                "decision": str(d.get("decision", "")),
                "reason": str(d.get("reason") or ""),
            }
            for d in dissent or []
        ],
    }


def _registered_payload(row: ProductRow, operator: str, lineage: dict[str, Any]) -> dict[str, Any]:
    """The ``product.registered`` ledger entry: ids and hashes of the lineage, never its texts."""
    guard = lineage["guard"]
    return {
        "product_id": row.id,
        "operator": operator,
        "licence_id": row.licence_id,
        "job": row.job,
        "scenario": row.scenario,
        "datasets": [
            {"name": d["name"], "version": d["version"], "content_sha256": d["content_sha256"]}
            for d in lineage["datasets"]
        ],
        "code_sha256": lineage["code_sha256"],
        "guard_verdict": guard["verdict"],
        "guard_sha256": _sha256_json(guard),
        "reviews": [{"reviewer": r["reviewer"], "decision": r["decision"]} for r in lineage["reviews"]],
        "fee_class": row.fee_class,
        "price_cents": row.price_cents,
        "artifacts": [{"name": a["name"], "bytes": a["bytes"], "sha256": a["sha256"]} for a in row.artifacts],
        "attribution_sha256": _sha256_json(row.attribution),
    }


# --- the service -------------------------------------------------------------------------------


def _require_text(value: str, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise RegistryError(f"{what} must not be empty")
    return text


def _visible(row: ProductRow, viewer: Actor) -> bool:
    if viewer.is_host or viewer.role in _READ_ALL:
        return True
    return viewer.role == "operator" and row.operator.name == viewer.name


class Products:
    """Registration, reading and delivery of products; state changes on behalf of the agency."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    # registration ------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        registration: ProductRegistration | None = None,
        /,
        *,
        on_signoff: bool = False,
        **fields: Any,
    ) -> ProductView:
        """Register a released product (双鸭山 第五十条) once its pre-release review passed (第五十二条).

        ``registration`` is a :class:`ProductRegistration`, or its fields given as keywords. Refused
        unless: the licence is the operator's and usable now (:func:`registry.usability.usability`);
        every dataset (and the named version of it) is in the licence; the scenario is one the licence
        grants; the export guard did not block; and the reviews hold at least one approval and no
        rejection, none by the operator itself. Writes one ``product.released`` usage record per
        dataset (黑龙江 第二十八条) and the ``product.registered`` ledger entry (lineage ids and hashes only).
        """
        reg = registration if registration is not None else ProductRegistration(**fields)
        by = reg.by
        # The agency registers. The one exception is the release workflow's (``on_signoff``): a custodian's
        # sign-off that completes a release the agency's reviewers already approved (SATRE 3.1.06), so the
        # ledger names the custodian whose act it was; ``reviews`` must still hold the agency's approvals.
        require_role(by, "agency", *(("custodian",) if on_signoff else ()))
        name = check_product_name(_require_text(name, "product name"))
        job = _require_text(str(reg.job), "job")
        code_sha256 = (reg.code_sha256 or "").lower()
        if not _SHA256.match(code_sha256):
            raise RegistryError("code_sha256 must be the 64-hex-digit SHA-256 of the job's code")
        guard = self._check_guard(reg.guard)
        reviews = self._check_reviews(reg.reviews, reg.operator)
        artifacts = self._check_artifacts(reg.artifacts)
        if not reg.datasets:
            raise RegistryError("a product must name the datasets (and versions) it was made from")
        now = self.config.now()

        with self.recorder.change(by) as change:
            session = change.session
            if product_name_taken(session, name):
                raise RegistryError(f"a product named {name!r} is already registered: choose another name")
            licence = self._usable_licence(session, reg.licence_id, reg.operator, reg.scenario, now)
            sources = self._sources(session, licence, reg.datasets)
            lineage = _lineage(sources, code_sha256, guard, reviews, reg.dissent)
            commercial = licence.fee_class == FeeClass.COMMERCIAL
            row = ProductRow(
                name=name,
                operator_id=licence.operator_id,
                licence_id=licence.id,
                job=job,
                scenario=reg.scenario,
                lineage=lineage,
                attribution=build_attribution(sources),
                fee_class=licence.fee_class,
                price_cents=licence.price_cents if commercial else None,
                artifacts=artifacts,
                state=ProductState.AVAILABLE,
                registered_by=by.name,
                registered_at=now,
            )
            row.operator = licence.operator
            session.add(row)
            session.flush()
            self._record_release(change, row, sources, now)
            change.log("product.registered", f"product:{name}", _registered_payload(row, reg.operator, lineage))
            return product_view(row)

    def _usable_licence(
        self, session: Session, licence_id: int, operator: str, scenario: str, now: datetime
    ) -> LicenceRow:
        """The operator's own licence, usable now and granting ``scenario``; or why not."""
        licence = session.get(LicenceRow, licence_id)
        if licence is None:
            raise NotFoundError(f"no licence {licence_id}")
        if licence.operator.name != operator:
            raise RegistryError(
                f"licence {licence_id} belongs to operator {licence.operator.name!r}, not {operator!r}: "
                "a product is registered under its own operator's licence"
            )
        why = usability(licence, now.date())
        if why != Usability.USABLE:
            raise RegistryError(_unusable_message(licence, operator, why))
        if scenario not in (licence.scenarios or []):
            granted = ", ".join(licence.scenarios or []) or "none"
            raise RegistryError(
                f"scenario {scenario!r} is not licensed by licence {licence_id} (granted: {granted}): "
                "a product serves only the scenarios its licence grants"
            )
        return licence

    @staticmethod
    def _record_release(
        change: Change, row: ProductRow, sources: list[tuple[ResourceRow, VersionRow]], now: datetime
    ) -> None:
        """One ``product.released`` usage record per dataset (黑龙江 第二十八条)."""
        for resource, version in sources:
            usage = record_usage(
                change.session,
                resource_id=resource.id,
                event="product.released",
                licence_id=row.licence_id,
                operator_id=row.operator_id,
                scenario=row.scenario,
                subject=f"product:{row.name}",
                detail={"job": row.job, "version": version.version, "artifacts": len(row.artifacts)},
            )
            usage.at = now

    @staticmethod
    def _check_guard(guard: dict[str, Any]) -> dict[str, Any]:
        verdict = str((guard or {}).get("verdict", ""))
        if verdict not in _VERDICTS:
            raise RegistryError(f"guard verdict must be one of {', '.join(_VERDICTS)}; got {verdict!r}")
        if verdict == "block":
            raise RegistryError(
                "the export guard blocked this output: a blocked output is never released (双鸭山 第五十四条); "
                "change the job so its output passes the guard"
            )
        findings = list((guard or {}).get("findings", []))
        return {"verdict": verdict, "findings": findings}

    @staticmethod
    def _check_reviews(reviews: list[dict[str, Any]], operator: str) -> list[dict[str, Any]]:
        checked: list[dict[str, Any]] = []
        for review in reviews or []:
            reviewer = str(review.get("reviewer", "")).strip()
            decision = str(review.get("decision", ""))
            if not reviewer or decision not in _DECISIONS:
                raise RegistryError('each review needs a reviewer and a decision "approve" or "reject"')
            if reviewer == operator:
                raise RegistryError(f"reviewer {reviewer!r} is the operator itself: reviews must be independent")
            checked.append({"reviewer": reviewer, "decision": decision, "reason": str(review.get("reason", ""))})
        if any(r["decision"] == "reject" for r in checked):
            raise RegistryError("a reviewer rejected this release: a rejected product is not registered (第五十二条)")
        if not any(r["decision"] == "approve" for r in checked):
            raise RegistryError(
                "no reviewer approved this release: products are registered only after a pre-release compliance "
                "review approved them (双鸭山 第五十二条)"
            )
        return checked

    @staticmethod
    def _check_artifacts(artifacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        checked: list[dict[str, Any]] = []
        for artifact in artifacts or []:
            try:
                item: dict[str, Any] = {
                    "name": str(artifact["name"]),
                    "bytes": int(artifact["bytes"]),
                    "sha256": str(artifact["sha256"]).lower(),
                    "path": str(artifact["path"]),
                }
            except (KeyError, TypeError, ValueError):
                raise RegistryError('each artifact needs "name", "bytes", "sha256" and "path"') from None
            if not _SHA256.match(item["sha256"]) or item["bytes"] < 0:
                raise RegistryError(f"artifact {item['name']!r} needs a SHA-256 and a non-negative size")
            checked.append(item)
        return checked

    @staticmethod
    def _sources(
        session: Session, licence: LicenceRow, datasets: list[dict[str, Any]]
    ) -> list[tuple[ResourceRow, VersionRow]]:
        """The (resource, version) pairs named, each within the licence's scope."""
        in_scope = {entry.resource.name: entry.resource for entry in licence.datasets}
        sources: list[tuple[ResourceRow, VersionRow]] = []
        for wanted in datasets:
            dataset = str(wanted.get("name", ""))
            resource = in_scope.get(dataset)
            if resource is None:
                scope = ", ".join(sorted(in_scope)) or "none"
                raise RegistryError(
                    f"dataset {dataset!r} is not in licence {licence.id} (licensed: {scope}): a product may use "
                    "only the datasets its licence grants"
                )
            given: Any = wanted.get("version")
            try:
                number = int(given)
            except (TypeError, ValueError):
                raise RegistryError(f"dataset {dataset!r} needs the version number the job read") from None
            version = next((v for v in resource.versions if v.version == number), None)
            if version is None:
                raise NotFoundError(f"dataset {dataset!r} has no version {number}")
            if any(r.id == resource.id for r, _ in sources):
                raise RegistryError(f"dataset {dataset!r} is named twice")
            sources.append((resource, version))
        return sources

    # reading ------------------------------------------------------------------------------------

    def get(self, name: str, *, viewer: Actor) -> ProductView:
        """One product; an operator asking for another's gets "not found" (existence is not revealed)."""
        require_role(viewer, *_ROLES)
        with self.recorder.read() as session:
            row = session.scalar(select(ProductRow).where(ProductRow.name == name))
            if row is None or not _visible(row, viewer):
                raise NotFoundError(f"no product named {name!r}")
            return product_view(row)

    def list(self, *, viewer: Actor) -> builtins.list[ProductView]:
        """Products in registration order: an operator's own, or all for custodian, agency, regulator."""
        require_role(viewer, *_ROLES)
        with self.recorder.read() as session:
            query = select(ProductRow).order_by(ProductRow.id)
            if not (viewer.is_host or viewer.role in _READ_ALL):
                query = query.join(OperatorRow, ProductRow.operator_id == OperatorRow.id).where(
                    OperatorRow.name == viewer.name
                )
            return [product_view(row) for row in session.scalars(query)]

    def deliverable(self, name: str, *, viewer: Actor) -> ProductView:
        """The product, if it may be delivered now to ``viewer``: only available, only to its operator.

        Suspended (an objection is open, 第四十条) and withdrawn products are not delivered, and nothing
        is delivered to a suspended operator until the agency restores it (第三十一条, 第七十五条:
        :func:`registry.usability.require_qualified`).
        """
        product = self.get(name, viewer=viewer)
        if not viewer.is_host and not (viewer.role == "operator" and viewer.name == product.operator):
            raise PermissionDeniedError(f"product {name!r} is delivered only to its operator {product.operator!r}")
        with self.recorder.read() as session:
            require_not_frozen(session, f"delivery of product {name!r}")  # an incident stops delivery (freeze)
            require_qualified(session, product.operator, f"delivery of product {name!r}")
        if product.state == ProductState.SUSPENDED:
            raise RegistryError(
                f"product {name!r} is suspended while an objection against it is open (双鸭山 第四十条): "
                "it is delivered again once the agency resolves the objection"
            )
        if product.state != ProductState.AVAILABLE:
            raise RegistryError(f"product {name!r} is {product.state}: it is no longer delivered")
        return product

    # state changes by the agency ---------------------------------------------------------------

    def suspend(self, name: str, *, reason: str, by: Actor) -> ProductView:
        """Stop delivery (the agency's own measure; objections do this through :func:`suspend_product`)."""
        require_role(by, "agency")
        reason = _require_text(reason, "reason")
        with self.recorder.change(by) as change:
            row = product_row(change.session, name)
            if not suspend_product(change, row, reason=reason):
                raise RegistryError(f"product {name!r} is {row.state}: only an available product can be suspended")
            return product_view(row)

    def restore(self, name: str, *, reason: str, by: Actor) -> ProductView:
        """Deliver again; refused while an objection on it is open, and for a withdrawn product."""
        require_role(by, "agency")
        reason = _require_text(reason, "reason")
        with self.recorder.change(by) as change:
            row = product_row(change.session, name)
            if row.state != ProductState.SUSPENDED:
                raise RegistryError(f"product {name!r} is {row.state}: only a suspended product can be restored")
            still_open = open_objections_on(change.session, row.id)
            if still_open:
                listed = ", ".join(str(i) for i in still_open)
                raise RegistryError(
                    f"product {name!r} has open objections ({listed}): resolve them first (双鸭山 第四十条)"
                )
            restore_product(change, row, reason=reason)
            return product_view(row)

    def withdraw(self, name: str, *, reason: str, by: Actor) -> ProductView:
        """Withdraw a product for good."""
        require_role(by, "agency")
        reason = _require_text(reason, "reason")
        with self.recorder.change(by) as change:
            row = product_row(change.session, name)
            if not withdraw_product(change, row, reason=reason):
                raise RegistryError(f"product {name!r} is already withdrawn")
            return product_view(row)


__all__ = [
    "ATTRIBUTION_KEY",
    "ATTRIBUTION_RULE",
    "SIDECAR_SUFFIX",
    "ProductRegistration",
    "ProductView",
    "Products",
    "attribution_metadata",
    "build_attribution",
    "open_objections_on",
    "product_name_taken",
    "product_row",
    "read_attribution",
    "restore_product",
    "sidecar_path",
    "stamp_artifact",
    "suspend_product",
    "withdraw_product",
]
