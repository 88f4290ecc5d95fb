"""Scope admission: every job passes :meth:`ScopeAdmission.check_scope` before it is queued.

A job outside the licence is refused at once and logged as a violation (双鸭山 第三十一条:
超范围调用、超目的调用), and enough of those suspend the operator (:mod:`registry.monitoring`); the
refusal before the last allowed one warns. Violations are for deliberate acts: a name the platform does
not know is a usage error with a suggestion (:mod:`registry.scope_names`), and a dry run
(``dry_run=True``) never counts. An admitted job may mount only its licence's copy of each dataset's
desensitized version (原始数据不出域, 第三十五条), its pseudonyms keyed for the licence (issue 23,
:mod:`registry.linkage`): never the base copy, whose person keys every licence would share.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, Change, PermissionDeniedError, Recorder, RegistryError, UsageError, require_role
from registry.access_consent import consent_refusal
from registry.config import RegistryConfig
from registry.eligibility import desensitized_version, is_served
from registry.licence_lifecycle import LicenceLifecycle
from registry.licence_terms import clean_list
from registry.licence_views import ScopeDataset, ScopeGrant
from registry.linkage import LicenceCopies
from registry.linkage_rules import person_key
from registry.models import (
    LicenceCopyRow,
    LicenceDatasetRow,
    LicenceRow,
    ObjectionRow,
    OperatorRow,
    ResourceRow,
)
from registry.monitoring import MONITOR, NOT_SERVED, UNDER_OBJECTION, Monitoring
from registry.scope_names import unknown_datasets, unknown_scenario
from registry.usability import Usability, usability
from registry.usage import record_usage
from registry.vocabulary import LicenceState, Qualification, ViolationKind

S = LicenceState
_log = logging.getLogger(__name__)


class ScopeRefusedError(RegistryError):
    """A job was refused by the scope check; the refusal is already recorded (a violation unless a dry run).

    ``counted`` says whether it counts towards automatic suspension; ``warning`` is what the platform
    adds when it does (the last warning before suspension, or that access is now closed), and is part
    of ``reason`` too.
    """

    def __init__(
        self,
        kind: str,
        reason: str,
        *,
        counted: bool = False,
        warning: str | None = None,
        suggestions: tuple[str, ...] = (),
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.counted = counted
        self.warning = warning
        self.suggestions = suggestions


class UnknownNameError(ScopeRefusedError, UsageError):
    """The job names a dataset or a scenario the platform does not know: a usage error, never a violation."""


def _joint_key(group: str, report: Mapping[str, Any] | None, resource: ResourceRow) -> str | None:
    """The pseudonymized column a copy granted jointly joins on (None for a dataset analysed alone): the
    guard joins the group's copies on it to re-derive a joined table (数据可用不可见, 双鸭山 第三十五条)."""
    if "+" not in group:
        return None
    return person_key(report, {item.name: item.pii_type for item in resource.items})


@dataclass
class _Refusal:
    kind: str
    reason: str
    licence_id: int | None = None
    suggestions: tuple[str, ...] | None = None  # set for unknown names: a usage error, not a violation


class ScopeAdmission:
    """Admit or refuse jobs against the operator's licences; refusals become violations."""

    def __init__(
        self, recorder: Recorder, config: RegistryConfig, monitoring: Monitoring, lifecycle: LicenceLifecycle
    ) -> None:
        self.recorder = recorder
        self.config = config
        self.monitoring = monitoring
        self.lifecycle = lifecycle
        #: Makes the licence copies a job mounts (issue 23; set by ``registry.Registry``). None: no copy is
        #: ever made here, so a job whose copy is missing is refused (fail closed, never the base copy).
        self.linkage: LicenceCopies | None = None

    def check_scope(
        self,
        operator: str,
        datasets: builtins.list[str],
        scenario: str,
        *,
        subject: str = "",
        by: Actor | None = None,
        dry_run: bool = False,
    ) -> ScopeGrant:
        """Admit a job of ``operator`` over ``datasets`` for ``scenario``, or refuse it at once.

        Refused (双鸭山 第三十一条, 黑龙江 第二十七条) when the operator is suspended or has no active
        licence, a dataset is outside its licences (超范围调用), the scenario is not licensed (超目的调用),
        the licence has expired (it is moved to expired on the spot), or a dataset is no longer served
        or under an open objection. A refusal commits its violation and ``scope.refused`` entry in its
        own transaction, then raises :class:`ScopeRefusedError`. An admitted job gets usage records
        (``job.admitted``) and its datasets' ``last_used_at``, and a ``scope.admitted`` entry.

        Names the platform does not know (a dataset not in the catalog, a scenario no licence or catalog
        entry names) are refused as usage errors with a suggestion (:class:`UnknownNameError`,
        :mod:`registry.scope_names`): recorded as ``scope.refused``, never as a violation. A counted
        violation's reason warns when one more would suspend the operator.

        ``dry_run`` (``POST /scope-check``, ``keyong licence check``) answers the same question and
        records it as ``scope.checked`` only: no violation, no usage, no ``last_used_at``.

        ``by`` defaults to the operator itself (the CLI's ``--operator`` names who acts).
        """
        actor = by or Actor(operator, "operator")
        require_role(actor, "operator", "agency")
        if actor.role == "operator" and actor.name != operator:
            raise PermissionDeniedError("an operator may check the scope of its own jobs only")
        names = clean_list(datasets)
        scenario = scenario.strip()
        if not names:
            raise RegistryError("a job must name the datasets it uses")
        if not scenario:
            raise RegistryError("a job must declare its application scenario (应用场景)")
        refusal: _Refusal | None = None
        grant: ScopeGrant | None = None
        # Licence copies are made before, outside this transaction (they write files and their own rows).
        unmade = self._prepare(operator, names)
        with self.recorder.change(actor) as change:
            session = change.session
            op = session.scalar(select(OperatorRow).where(OperatorRow.name == operator))
            if op is None:
                refusal = _Refusal(ViolationKind.NO_LICENCE, f"no operator named {operator!r} is registered")
            elif op.qualification != Qualification.QUALIFIED:
                refusal = _Refusal(
                    ViolationKind.OPERATOR_SUSPENDED,
                    f"operator {operator!r} is suspended ({op.suspended_reason}); the agency must restore it "
                    "(双鸭山 第三十一条)",
                )
            elif (unknown := unknown_datasets(session, names)) is not None:
                refusal = _Refusal(unknown.kind, unknown.reason, suggestions=unknown.suggestions)
            else:
                # Expiry is a fact of the calendar, recorded by the platform even when the job is refused.
                expired = self.lifecycle.expire(change, op.id, by=MONITOR)
                found = self._match(session, op, names, scenario, expired)
                if isinstance(found, _Refusal):
                    # 超目的调用 is a purpose that exists; a scenario no one names is a typo.
                    typo = (
                        unknown_scenario(session, op, scenario) if found.kind == ViolationKind.OUT_OF_PURPOSE else None
                    )
                    refusal = found if typo is None else _Refusal(typo.kind, typo.reason, suggestions=typo.suggestions)
                else:
                    admitted = self._admit(change, op, found, names, scenario, subject, unmade, dry_run=dry_run)
                    if isinstance(admitted, _Refusal):
                        refusal = admitted
                    else:
                        grant = admitted
        if grant is not None:
            return grant
        assert refusal is not None
        self._refuse(operator, names, scenario, subject, actor, refusal, dry_run=dry_run)
        raise AssertionError("unreachable")  # pragma: no cover

    def _match(
        self,
        session: Session,
        op: OperatorRow,
        names: builtins.list[str],
        scenario: str,
        expired: builtins.list[LicenceRow],
    ) -> LicenceRow | _Refusal:
        """The operator's active licence covering every dataset and the scenario, or why there is none."""
        today = self.config.now().date()
        licences = session.scalars(
            select(LicenceRow).where(LicenceRow.operator_id == op.id).order_by(LicenceRow.id)
        ).all()

        def covers(row: LicenceRow) -> bool:
            return set(names) <= {d.resource.name for d in row.datasets}

        # The operator is qualified and lapsed licences were just expired: usable is active and begun.
        active = [r for r in licences if usability(r, today) == Usability.USABLE]
        for row in active:
            if covers(row) and scenario in row.scenarios:
                return row
        lapsed = [r for r in licences if r.state == S.EXPIRED and covers(r) and scenario in r.scenarios]
        if lapsed:
            row = lapsed[-1]
            just = " (expired now)" if row in expired else ""
            return _Refusal(
                ViolationKind.EXPIRED,
                f"licence {row.id} ended on {row.valid_until}{just}: ask the agency for a new one",
                row.id,
            )
        if not active:
            others = ", ".join(
                f"{r.id} ({r.state}{f', valid from {r.valid_from}' if r.valid_from > today else ''})"
                for r in licences
                if not LicenceState(r.state).ended
            )
            detail = f"; its licences: {others}" if others else ""
            waiting = [  # SATRE 1.5.04: say why a licence that would cover the job is not active yet
                f"licence {r.id} {refusal}"
                for r in licences
                if r.state in (S.DRAFT, S.PUBLICITY) and covers(r)
                for refusal in [consent_refusal(session, r, self.config.now())]
                if refusal
            ]
            detail += "".join(f"; {w}" for w in waiting[:1])
            return _Refusal(ViolationKind.NO_LICENCE, f"operator {op.name!r} has no active licence{detail}")
        covering = [r for r in active if covers(r)]
        if not covering:
            licensed = {d.resource.name for r in active for d in r.datasets}
            outside = [n for n in names if n not in licensed]
            if not outside:  # each dataset is licensed, but no single licence holds them all
                return _Refusal(
                    ViolationKind.OUT_OF_SCOPE,
                    f"no single licence of {op.name!r} covers all of {', '.join(names)}: "
                    "a job runs under one licence (超范围调用, 双鸭山 第三十一条)",
                    active[0].id,
                )
            return _Refusal(
                ViolationKind.OUT_OF_SCOPE,
                f"dataset(s) {', '.join(outside)} are outside {op.name!r}'s licences (超范围调用, 双鸭山 第三十一条)",
                active[0].id,
            )
        allowed = sorted({s for r in covering for s in r.scenarios})
        return _Refusal(
            ViolationKind.OUT_OF_PURPOSE,
            f"scenario {scenario!r} is not licensed for {', '.join(names)}; licensed: {', '.join(allowed)} "
            "(超目的调用, 双鸭山 第三十一条)",
            covering[0].id,
        )

    def _admit(
        self,
        change: Change,
        op: OperatorRow,
        licence: LicenceRow,
        names: builtins.list[str],
        scenario: str,
        subject: str,
        unmade: dict[str, str],
        *,
        dry_run: bool = False,
    ) -> ScopeGrant | _Refusal:
        """Check each dataset is still served and free of objections; record the use; or say why not.

        A dry run records nothing of a use: only its ``scope.checked`` entry.
        """
        now = self.config.now()
        by_name = {d.resource.name: d for d in licence.datasets}
        mounts = self._mounts(change, licence, by_name, names, now, unmade)
        if isinstance(mounts, _Refusal):
            return mounts
        grant = ScopeGrant(licence_id=licence.id, operator=op.name, scenario=scenario, datasets=mounts)
        if dry_run:
            change.log(
                "scope.checked",
                f"licence:{licence.id}",
                {"operator": op.name, "admitted": True, "datasets": names, "scenario": scenario, "subject": subject},
            )
            return grant
        for mount in mounts:
            ds = by_name[mount.name]
            ds.last_used_at = now
            usage = record_usage(
                change.session,
                resource_id=mount.resource_id,
                event="job.admitted",
                licence_id=licence.id,
                operator_id=op.id,
                scenario=scenario,
                subject=subject,
                detail={"version_id": mount.version_id},
            )
            usage.at = now
        change.log(
            "scope.admitted",
            f"licence:{licence.id}",
            {
                "operator": op.name,
                "datasets": {m.name: m.version_id for m in mounts},
                "licence_copies": {m.name: m.licence_copy for m in mounts},
                "scenario": scenario,
                "subject": subject,
            },
        )
        return grant

    def _prepare(self, operator: str, names: builtins.list[str]) -> dict[str, str]:
        """Make the missing licence copies of the operator's licences covering ``names``; dataset -> why not."""
        if self.linkage is None:
            return {}
        try:
            return self.linkage.ensure_for(operator, names)
        except Exception as exc:  # the scope check still answers; a missing copy is refused there
            _log.exception("licence copies for %s could not be prepared", operator)
            return dict.fromkeys(names, f"its licence copy could not be made ({type(exc).__name__})")

    @staticmethod
    def _mounts(
        change: Change,
        licence: LicenceRow,
        by_name: dict[str, LicenceDatasetRow],
        names: builtins.list[str],
        now: datetime,
        unmade: dict[str, str],
    ) -> builtins.list[ScopeDataset] | _Refusal:
        """The licence copy of each dataset's current desensitized version, or why one is not served now
        (withdrawn, contested, or no copy made for this licence: never the base copy, issue 23)."""
        mounts: builtins.list[ScopeDataset] = []
        for name in names:
            ds = by_name[name]
            resource = ds.resource
            if not is_served(resource, now):
                return _Refusal(
                    NOT_SERVED,
                    f"dataset {name!r} is no longer served ({resource.state}; 黑龙江 第十六条)",
                    licence.id,
                )
            objection = change.session.scalar(
                select(ObjectionRow.id).where(
                    ObjectionRow.target_kind == "resource",
                    ObjectionRow.target_id == resource.id,
                    ObjectionRow.state == "open",
                )
            )
            if objection is not None:
                return _Refusal(
                    UNDER_OBJECTION,
                    f"dataset {name!r} is under objection {objection} (异议, 双鸭山 第四十条): "
                    "no jobs until it is resolved",
                    licence.id,
                )
            version = desensitized_version(resource)
            if version is None:
                return _Refusal(
                    NOT_SERVED,
                    f"dataset {name!r} has no desensitized version to mount (原始数据不出域, 双鸭山 第三十五条)",
                    licence.id,
                )
            copy = change.session.scalar(
                select(LicenceCopyRow).where(
                    LicenceCopyRow.licence_id == licence.id, LicenceCopyRow.base_version_id == version.id
                )
            )
            if copy is None:
                why = unmade.get(name) or "it has not been made yet"
                return _Refusal(
                    NOT_SERVED,
                    f"dataset {name!r} has no copy for licence {licence.id} (per-licence pseudonyms, issue 23): {why}",
                    licence.id,
                )
            mounts.append(
                ScopeDataset(
                    name=name,
                    resource_id=resource.id,
                    version_id=version.id,
                    version=version.version,
                    path=copy.path,
                    licence_copy=copy.id,
                    link_group=copy.link_group,
                    person_key=_joint_key(copy.link_group, version.report, resource),
                    epsilon_budget=ds.epsilon_budget,
                    epsilon_spent=ds.epsilon_spent,
                )
            )
        return mounts

    def _refuse(
        self,
        operator: str,
        names: builtins.list[str],
        scenario: str,
        subject: str,
        actor: Actor,
        refusal: _Refusal,
        *,
        dry_run: bool = False,
    ) -> None:
        """Commit the refusal's entry (and, for a real attempt, its violation and what it triggers), then raise.

        A dry run is ``scope.checked``; an unknown name is ``scope.refused`` without a violation; anything
        else is ``scope.refused`` and a violation, whose reason carries the monitor's warning.
        """
        reason, warning, counted = refusal.reason, None, False
        with self.recorder.change(actor) as change:
            op = change.session.scalar(select(OperatorRow).where(OperatorRow.name == operator))
            payload: dict[str, object] = {
                "kind": str(refusal.kind),
                "reason": refusal.reason,
                "datasets": names,
                "scenario": scenario,
                "subject": subject,
                "licence": refusal.licence_id,
            }
            if dry_run:
                change.log("scope.checked", f"operator:{operator}", {"admitted": False, **payload})
            else:
                change.log("scope.refused", f"operator:{operator}", payload)
            if not dry_run and refusal.suggestions is None:
                recorded = self.monitoring.record_violation(
                    change,
                    operator=op,
                    operator_name=operator,
                    kind=str(refusal.kind),
                    detail=refusal.reason,
                    subject=subject,
                    licence_id=refusal.licence_id,
                )
                warning, counted = recorded.warning, recorded.counted
                if warning:
                    reason = f"{reason}; {warning}"
        if refusal.suggestions is not None:
            raise UnknownNameError(str(refusal.kind), reason, suggestions=refusal.suggestions)
        raise ScopeRefusedError(str(refusal.kind), reason, counted=counted, warning=warning)


__all__ = ["ScopeAdmission", "ScopeRefusedError", "UnknownNameError"]
