"""Granting a licence (授权运营协议): its scope by mode, its budgets, then 公示 or activation.

Scope by mode (双鸭山 第四十六条): 整体授权 covers every dataset licensable now; 分领域授权 covers the
licensable datasets of the named 行业分类 (or the named ones, which must lie in those domains);
依场景授权 covers the named datasets. Every dataset must be licensable
(:func:`registry.eligibility.licensing_refusal`) and the operator qualified (第四十八条).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, Change, NotFoundError, Recorder, RegistryError, require_role
from registry.access_consent import consent_refusal
from registry.config import RegistryConfig
from registry.eligibility import licensing_refusal
from registry.licence_lifecycle import LicenceLifecycle
from registry.licence_terms import (
    DEFAULT_DELTA,
    CheckedTerms,
    LicenceTerms,
    budgets,
    check_catalog_scenarios,
    check_joint_scope,
    require_reason,
)
from registry.licence_views import LicenceView, licence_view
from registry.linkage_rules import PERSON_KEY_TYPES
from registry.models import LicenceDatasetRow, LicenceEventRow, LicenceRow, OperatorRow, ResourceRow
from registry.operators import operator_row
from registry.people import operator_people_refusal
from registry.vocabulary import LicenceMode, LicenceState, Qualification

S = LicenceState


class LicenceGrants:
    """The agency's grant of a licence to a qualified operator."""

    def __init__(self, recorder: Recorder, config: RegistryConfig, lifecycle: LicenceLifecycle) -> None:
        self.recorder = recorder
        self.config = config
        self.lifecycle = lifecycle

    def grant(self, operator: str, terms: LicenceTerms, *, by: Actor, reason: str, draft: bool = False) -> LicenceView:
        """Grant a licence: a draft, then 公示 for ``publicity_days`` (or active at once when 0).

        Scope by mode (双鸭山 第四十六条): 整体授权 covers every dataset licensable now (``datasets``
        must be empty); 分领域授权 covers the licensable datasets whose 行业分类 is in ``domains`` (or the
        named ones, which must lie in those domains); 依场景授权 covers the named datasets. Every dataset
        must be licensable (:func:`registry.eligibility.licensing_refusal`), the operator qualified
        (第四十八条), and the fee class consistent (第四十四条: 经营性 needs a price, 公益 has none).
        ``draft`` leaves the licence in draft for the agency to publicise later. With no publicity period it
        becomes active at once only if every dataset's custodian agreed or delegated its agreement to the
        agency (:mod:`registry.access_consent`, SATRE 1.5.04); else it stays a draft until they have, and
        the agency activates it then (``keyong licence activate ID``).
        """
        require_role(by, "agency")
        reason = require_reason(reason, "granting a licence")
        now = self.config.now()
        checked = terms.checked(now.date(), self.config.publicity_days)
        with self.recorder.change(by) as change:
            session = change.session
            op = operator_row(session, operator)
            if op.qualification != Qualification.QUALIFIED:
                raise RegistryError(
                    f"operator {operator!r} is {op.qualification} ({op.suspended_reason}): restore it before "
                    "granting (双鸭山 第四十八条)"
                )
            resources = self._scope_resources(session, checked.mode, checked.names, checked.domains, now)
            check_catalog_scenarios(resources, checked.scenarios)
            check_joint_scope(checked.joint, resources, PERSON_KEY_TYPES)
            epsilons = budgets(checked.epsilon, [r.name for r in resources])
            row = self._new_licence(change, op, resources, epsilons, checked, by=by, reason=reason, now=now)
            if not draft:
                target = S.ACTIVE if checked.publicity_days == 0 else S.PUBLICITY
                people = operator_people_refusal(session, op.name, now.date()) if target == S.ACTIVE else None
                if people:  # active at once: its people must stand now (SATRE 3.2.02, 1.6.04; registry.people)
                    raise RegistryError(f"the licence cannot become active: {people}")
                consent = consent_refusal(session, row, now) if target == S.ACTIVE else None
                if consent:  # SATRE 1.5.04: it stays a draft until every custodian agreed; the agency activates then
                    change.log("licence.awaiting_consent", f"licence:{row.id}", {"refusal": consent})
                else:
                    self.lifecycle.apply(change, row, target, reason=reason, by=by)
            session.flush()
            return licence_view(row)

    @staticmethod
    def _new_licence(
        change: Change,
        op: OperatorRow,
        resources: list[ResourceRow],
        epsilons: dict[str, float],
        terms: CheckedTerms,
        *,
        by: Actor,
        reason: str,
        now: datetime,
    ) -> LicenceRow:
        """The draft licence row, its datasets, its first event and its ``licence.granted`` entry."""
        session = change.session
        row = LicenceRow(
            operator_id=op.id,
            mode=str(terms.mode),
            domains=terms.domains,
            scenarios=terms.scenarios,
            valid_from=terms.valid_from,
            valid_until=terms.valid_until,
            fee_class=str(terms.fee_class),
            price_cents=terms.price_cents,
            state=str(S.DRAFT),
            publicity_days=terms.publicity_days,
            created_by=by.name,
            created_at=now,
            updated_at=now,
        )
        row.operator = op
        groups = {name: "+".join(group) for group in terms.joint for name in group}  # sorted: group_name's form
        row.datasets = [
            LicenceDatasetRow(
                resource_id=r.id,
                resource=r,
                epsilon_budget=epsilons[r.name],
                delta_budget=DEFAULT_DELTA,
                link_group=groups.get(r.name),
            )
            for r in resources
        ]
        session.add(row)
        session.flush()
        session.add(
            LicenceEventRow(licence=row, from_state=None, to_state=str(S.DRAFT), by=by.name, reason=reason, at=now)
        )
        change.log(
            "licence.granted",
            f"licence:{row.id}",
            {
                "operator": op.name,
                "mode": str(terms.mode),
                "datasets": {r.name: epsilons[r.name] for r in resources},
                "domains": terms.domains,
                "scenarios": terms.scenarios,
                "valid_from": terms.valid_from.isoformat(),
                "valid_until": terms.valid_until.isoformat(),
                "fee_class": str(terms.fee_class),
                "price_cents": terms.price_cents,
                "publicity_days": terms.publicity_days,
                "joint": terms.joint,  # issue 23: the link groups granted, nothing else is linkable
                "reason": reason,
            },
        )
        return row

    def _scope_resources(
        self, session: Session, mode: LicenceMode, names: list[str], domains: list[str], now: datetime
    ) -> list[ResourceRow]:
        if mode == LicenceMode.WHOLE:
            if names or domains:
                raise RegistryError("整体授权 covers every licensable dataset: name no datasets or domains")
            candidates = session.scalars(select(ResourceRow).order_by(ResourceRow.name)).all()
            resources = [r for r in candidates if licensing_refusal(r, now) is None]
            if not resources:
                raise RegistryError("no dataset is licensable yet: 整体授权 would cover nothing")
            return resources
        if mode == LicenceMode.DOMAIN:
            if not domains:
                raise RegistryError("分领域授权 needs the domains (行业分类) it covers (--domains)")
            if not names:
                candidates = session.scalars(
                    select(ResourceRow).where(ResourceRow.industry.in_(domains)).order_by(ResourceRow.name)
                ).all()
                resources = [r for r in candidates if licensing_refusal(r, now) is None]
                if not resources:
                    raise RegistryError(f"no licensable dataset in the domains {', '.join(domains)}")
                return resources
        elif domains:
            raise RegistryError("依场景授权 names datasets, not domains: use 分领域授权 for domains")
        if not names:
            raise RegistryError(f"{mode} needs the datasets it covers (--datasets)")
        resources = []
        for name in names:
            resource = session.scalar(select(ResourceRow).where(ResourceRow.name == name))
            if resource is None:
                raise NotFoundError(f"no dataset named {name!r} in the catalog")
            if mode == LicenceMode.DOMAIN and resource.industry not in domains:
                raise RegistryError(
                    f"dataset {name!r} is in 行业分类 {resource.industry!r}, outside the licence's domains "
                    f"{', '.join(domains)}"
                )
            refusal = licensing_refusal(resource, now)
            if refusal:
                raise RegistryError(refusal)
            resources.append(resource)
        return resources


__all__ = ["LicenceGrants"]
