"""Operators and licences (授权运营): who may process which data, for what, until when.

三权分置 (双鸭山市公共数据管理暂行办法 第四十四条): the custodian holds the data, the operator
processes it, and products are operated under licence. An operator (运营机构) is a company with a
valid 统一社会信用代码 and in good standing (第四十八条); a licence (授权运营协议) names its mode
(整体授权, 分领域授权 or 依场景授权, 第四十六条), the datasets in scope, the application scenarios it
allows, validity dates, a privacy budget ε per dataset, and the fee class of the products
(公益 free, 经营性 priced, 第四十四条).

A licence is granted as a draft, publicised (公示, 第四十八条: 公示无异议的 … 签订授权运营协议) for
``publicity_days`` during which objections may be filed, then activated; it may be suspended and
restored, and ends revoked or expired. Every transition is made by the agency with a reason, kept
as a :class:`LicenceEventRow` and in the ledger. When a licence ends, the operator's working copies
and outputs for it are destroyed and the destruction is logged (双鸭山 第六十二条: 以数据覆写、物理销毁
等不可逆方式删除相关数据; DESIGN.md).

Every job passes :meth:`Licences.check_scope` first: a job outside the licence is refused at once and
logged as a violation (第三十一条: 超范围调用、超目的调用), and enough of those suspend the operator.

The work is split along its seams; :class:`Licences` is the one object callers hold:

- :mod:`registry.operators`: registering, suspending and restoring operators;
- :mod:`registry.licence_terms` and :mod:`registry.licence_grants`: the terms of a grant, and the grant;
- :mod:`registry.licence_lifecycle`: the state machine and reads;
- :mod:`registry.scope`: admitting or refusing each job;
- :mod:`registry.workdirs`: each licence's work directory and its destruction;
- :mod:`registry.usability`: the one rule "is this licence usable now", which products and the
  sandbox's queue ask too.
"""

from __future__ import annotations

import builtins
from datetime import date
from pathlib import Path

from core import Actor, Recorder
from registry.config import RegistryConfig
from registry.licence_grants import LicenceGrants
from registry.licence_lifecycle import TRANSITIONS, LicenceLifecycle
from registry.licence_terms import DEFAULT_EPSILON, LicenceTerms
from registry.licence_views import DestructionView, LicenceView, OperatorView, ScopeDataset, ScopeGrant
from registry.monitoring import NOT_SERVED, UNDER_OBJECTION, Monitoring
from registry.operators import Operators
from registry.scope import ScopeAdmission, ScopeRefusedError, UnknownNameError
from registry.usability import LicenceStanding, licence_standing
from registry.vocabulary import FeeClass, LicenceMode, LicenceState
from registry.workdirs import Workdirs


class Licences:
    """Operators, licences, their state machine, scope checks and destruction at the end.

    A thin facade: each call is answered by the part that owns it (``operators``, ``grants``,
    ``lifecycle``, ``scope``, ``workdirs``).
    """

    def __init__(self, recorder: Recorder, config: RegistryConfig, monitoring: Monitoring) -> None:
        self.recorder = recorder
        self.config = config
        self.monitoring = monitoring
        self.operators = Operators(recorder, config)
        self.workdirs = Workdirs(config)
        self.lifecycle = LicenceLifecycle(recorder, config, self.workdirs)
        self.grants = LicenceGrants(recorder, config, self.lifecycle)
        self.scope = ScopeAdmission(recorder, config, monitoring, self.lifecycle)

    # --- operators ---------------------------------------------------------------------------

    def add_operator(self, name: str, uscc: str, *, by: Actor) -> OperatorView:
        return self.operators.add_operator(name, uscc, by=by)

    def get_operator(self, name: str, *, viewer: Actor | None = None) -> OperatorView:
        return self.operators.get_operator(name, viewer=viewer)

    def list_operators(self, *, viewer: Actor | None = None) -> builtins.list[OperatorView]:
        return self.operators.list_operators(viewer=viewer)

    def suspend_operator(self, name: str, *, by: Actor, reason: str) -> OperatorView:
        return self.operators.suspend_operator(name, by=by, reason=reason)

    def restore_operator(self, name: str, *, by: Actor, reason: str) -> OperatorView:
        return self.operators.restore_operator(name, by=by, reason=reason)

    # --- granting and the state machine ------------------------------------------------------

    def grant(
        self,
        operator: str,
        *,
        datasets: builtins.list[str] | None = None,
        mode: LicenceMode | str = LicenceMode.SCENARIO,
        domains: builtins.list[str] | None = None,
        scenarios: builtins.list[str],
        valid_until: date,
        valid_from: date | None = None,
        epsilon: float | dict[str, float] = DEFAULT_EPSILON,
        fee_class: FeeClass | str = FeeClass.PUBLIC_WELFARE,
        price_cents: int | None = None,
        publicity_days: int | None = None,
        by: Actor,
        reason: str,
        draft: bool = False,
        joint: builtins.list[builtins.list[str]] | None = None,
    ) -> LicenceView:
        """Grant a licence on these terms (see :meth:`registry.licence_grants.LicenceGrants.grant`);
        ``joint``: the link groups granted for joint analysis (issue 23), each two or more of its datasets."""
        terms = LicenceTerms(
            scenarios=scenarios,
            valid_until=valid_until,
            datasets=datasets,
            mode=mode,
            domains=domains,
            valid_from=valid_from,
            epsilon=epsilon,
            fee_class=fee_class,
            price_cents=price_cents,
            publicity_days=publicity_days,
            joint=joint,
        )
        return self.grants.grant(operator, terms, by=by, reason=reason, draft=draft)

    def transition(self, licence_id: int, to_state: LicenceState | str, *, by: Actor, reason: str) -> LicenceView:
        return self.lifecycle.transition(licence_id, to_state, by=by, reason=reason)

    def suspend(self, operator_name: str, *, by: Actor, reason: str) -> builtins.list[LicenceView]:
        return self.lifecycle.suspend(operator_name, by=by, reason=reason)

    def activate_due(self, *, by: Actor) -> builtins.list[LicenceView]:
        return self.lifecycle.activate_due(by=by)

    def expire_due(self, *, by: Actor) -> builtins.list[LicenceView]:
        return self.lifecycle.expire_due(by=by)

    # --- reading -----------------------------------------------------------------------------

    def get(self, licence_id: int, *, viewer: Actor) -> LicenceView:
        return self.lifecycle.get(licence_id, viewer=viewer)

    def list(
        self, *, viewer: Actor, operator: str | None = None, state: LicenceState | str | None = None
    ) -> builtins.list[LicenceView]:
        return self.lifecycle.list(viewer=viewer, operator=operator, state=state)

    def destructions(self, licence_id: int, *, viewer: Actor) -> builtins.list[DestructionView]:
        return self.lifecycle.destructions(licence_id, viewer=viewer)

    def standing(self, licence_id: int) -> LicenceStanding | None:
        """Licence ``licence_id`` as of now, with whether it is usable (:mod:`registry.usability`)."""
        with self.recorder.read() as session:
            return licence_standing(session, licence_id, self.config.now().date())

    # --- scope checks and work directories ---------------------------------------------------

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
        return self.scope.check_scope(operator, datasets, scenario, subject=subject, by=by, dry_run=dry_run)

    def workdir(self, operator: str, licence_id: int) -> Path:
        return self.workdirs.workdir(operator, licence_id)


__all__ = [
    "NOT_SERVED",
    "TRANSITIONS",
    "UNDER_OBJECTION",
    "DestructionView",
    "LicenceView",
    "Licences",
    "OperatorView",
    "ScopeDataset",
    "ScopeGrant",
    "ScopeRefusedError",
    "UnknownNameError",
]
