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
"""

from __future__ import annotations

import builtins
import hashlib
import math
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, Change, NotFoundError, PermissionDeniedError, Recorder, RegistryError, require_role
from desensitize import is_valid_uscc
from registry.config import RegistryConfig
from registry.eligibility import desensitized_version, is_served, licensing_refusal
from registry.models import (
    DestructionRow,
    LicenceDatasetRow,
    LicenceEventRow,
    LicenceRow,
    ObjectionRow,
    OperatorRow,
    ResourceRow,
)
from registry.monitoring import MONITOR, NOT_SERVED, UNDER_OBJECTION, Monitoring
from registry.usage import record_usage
from registry.vocabulary import FeeClass, LicenceMode, LicenceState, Qualification, ViolationKind

DEFAULT_EPSILON = 3.0
#: δ per dataset: below 1/n for tables up to 100,000 rows (DP-SGD's δ must stay below 1/n).
DEFAULT_DELTA = 1e-5
# The operator's name is its principal's name (operators.identity): same shape, so that it is also
# a safe single path component of its work directory.
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,126}[a-z0-9]$")

S = LicenceState
TRANSITIONS: dict[LicenceState, frozenset[LicenceState]] = {
    S.DRAFT: frozenset({S.PUBLICITY, S.ACTIVE, S.REVOKED, S.EXPIRED}),  # ACTIVE only when publicity_days == 0
    S.PUBLICITY: frozenset({S.ACTIVE, S.REVOKED, S.EXPIRED}),  # ACTIVE only after 公示, without open objection
    S.ACTIVE: frozenset({S.SUSPENDED, S.REVOKED, S.EXPIRED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.REVOKED, S.EXPIRED}),  # ACTIVE = restore
    S.REVOKED: frozenset(),
    S.EXPIRED: frozenset(),
}
"""Which transitions exist at all; the conditions on each are in :meth:`Licences._check_transition`."""

_ACTION = {
    S.PUBLICITY: "licence.publicity_started",
    S.ACTIVE: "licence.activated",
    S.SUSPENDED: "licence.suspended",
    S.REVOKED: "licence.revoked",
    S.EXPIRED: "licence.expired",
}


class ScopeRefusedError(RegistryError):
    """A job was refused by the scope check; the refusal is already logged as a violation."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


# --- views -----------------------------------------------------------------------------------


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


def _operator_view(row: OperatorRow) -> OperatorView:
    return OperatorView(
        name=row.name,
        uscc=row.uscc,
        qualification=row.qualification,
        suspended_reason=row.suspended_reason,
        created_at=row.created_at,
    )


def _licence_view(row: LicenceRow) -> LicenceView:
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


@dataclass
class _Refusal:
    kind: str
    reason: str
    licence_id: int | None = None


def _clean_list(values: Iterable[str] | None) -> list[str]:
    """Strip, drop empties, keep first occurrences in order."""
    seen: list[str] = []
    for value in values or []:
        value = value.strip()
        if value and value not in seen:
            seen.append(value)
    return seen


def _tree_manifest(root: Path) -> tuple[list[str], int]:
    """``"relpath sha256"`` lines (sorted) of every file under ``root``, and their total bytes.

    Symbolic links are recorded by their target text (``symlink:`` prefix) and never followed, so a
    link a job planted cannot make the destruction read or delete anything outside the tree.
    """
    lines: list[str] = []
    total = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(directory)
        names = filenames + [d for d in dirnames if (base / d).is_symlink()]
        for name in names:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                digest = hashlib.sha256(b"symlink:" + os.readlink(path).encode("utf-8", "surrogateescape"))
            else:
                digest = hashlib.sha256()
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
                total += path.stat().st_size
            lines.append(f"{rel} {digest.hexdigest()}")
    return sorted(lines), total


class Licences:
    """Operators, licences, their state machine, scope checks and destruction at the end."""

    def __init__(self, recorder: Recorder, config: RegistryConfig, monitoring: Monitoring) -> None:
        self.recorder = recorder
        self.config = config
        self.monitoring = monitoring

    # --- operators ---------------------------------------------------------------------------

    def add_operator(self, name: str, uscc: str, *, by: Actor) -> OperatorView:
        """Register an operating company (运营机构, 双鸭山 第四十八条); ``name`` is its principal's name.

        The 统一社会信用代码 must be well formed with a correct GB 32100 check character.
        """
        require_role(by, "agency")
        name, uscc = name.strip(), uscc.strip()
        if not _NAME_RE.match(name):
            raise RegistryError(
                f"operator name {name!r} must be its principal's name: 3-128 lowercase letters, digits, '.', '_' "
                "or '-', starting and ending with a letter or digit"
            )
        if not is_valid_uscc(uscc):
            raise RegistryError(
                f"{uscc!r} is not a valid 统一社会信用代码: 18 upper-case characters with a correct check "
                "character (GB 32100-2015)"
            )
        with self.recorder.change(by) as change:
            session = change.session
            if session.scalar(select(OperatorRow).where(OperatorRow.name == name)) is not None:
                raise RegistryError(f"operator {name!r} already exists")
            if session.scalar(select(OperatorRow).where(OperatorRow.uscc == uscc)) is not None:
                raise RegistryError(f"an operator with 统一社会信用代码 {uscc} already exists")
            row = OperatorRow(name=name, uscc=uscc, qualification=Qualification.QUALIFIED, created_at=self.config.now())
            session.add(row)
            session.flush()
            change.log("operator.added", f"operator:{name}", {"uscc": uscc})
            return _operator_view(row)

    def get_operator(self, name: str, *, viewer: Actor | None = None) -> OperatorView:
        """One operator; an operator may read only itself (another is "not found")."""
        if viewer is not None:
            require_role(viewer, "agency", "regulator", "operator")
            if viewer.role == "operator" and viewer.name != name:
                raise NotFoundError(f"no operator named {name!r}")
        with self.recorder.read() as session:
            return _operator_view(self._operator(session, name))

    def list_operators(self, *, viewer: Actor | None = None) -> list[OperatorView]:
        if viewer is not None:
            require_role(viewer, "agency", "regulator")
        with self.recorder.read() as session:
            return [_operator_view(r) for r in session.scalars(select(OperatorRow).order_by(OperatorRow.name))]

    def suspend_operator(self, name: str, *, by: Actor, reason: str) -> OperatorView:
        """Close an operator's access (第三十一条: 关停或中断调用服务); its licences keep their state."""
        require_role(by, "agency")
        reason = self._reason(reason, "suspending an operator")
        with self.recorder.change(by) as change:
            row = self._operator(change.session, name)
            if row.qualification == Qualification.SUSPENDED:
                raise RegistryError(f"operator {name!r} is already suspended ({row.suspended_reason})")
            row.qualification = Qualification.SUSPENDED
            row.suspended_reason = reason
            change.log("operator.suspended", f"operator:{name}", {"reason": reason})
            return _operator_view(row)

    def restore_operator(self, name: str, *, by: Actor, reason: str) -> OperatorView:
        """Reopen a suspended operator's access once it has rectified (整改, 第三十一条)."""
        require_role(by, "agency")
        reason = self._reason(reason, "restoring an operator")
        with self.recorder.change(by) as change:
            row = self._operator(change.session, name)
            if row.qualification != Qualification.SUSPENDED:
                raise RegistryError(f"operator {name!r} is not suspended")
            row.qualification = Qualification.QUALIFIED
            row.suspended_reason = ""
            change.log("operator.restored", f"operator:{name}", {"reason": reason})
            return _operator_view(row)

    # --- granting ----------------------------------------------------------------------------

    def grant(
        self,
        operator: str,
        *,
        datasets: list[str] | None = None,
        mode: LicenceMode | str = LicenceMode.SCENARIO,
        domains: list[str] | None = None,
        scenarios: list[str],
        valid_until: date,
        valid_from: date | None = None,
        epsilon: float | dict[str, float] = DEFAULT_EPSILON,
        fee_class: FeeClass | str = FeeClass.PUBLIC_WELFARE,
        price_cents: int | None = None,
        publicity_days: int | None = None,
        by: Actor,
        reason: str,
        draft: bool = False,
    ) -> LicenceView:
        """Grant a licence: a draft, then 公示 for ``publicity_days`` (or active at once when 0).

        Scope by mode (双鸭山 第四十六条): 整体授权 covers every dataset licensable now (``datasets``
        must be empty); 分领域授权 covers the licensable datasets whose 行业分类 is in ``domains`` (or the
        named ones, which must lie in those domains); 依场景授权 covers the named datasets. Every dataset
        must be licensable (:func:`registry.eligibility.licensing_refusal`), the operator qualified
        (第四十八条), and the fee class consistent (第四十四条: 经营性 needs a price, 公益 has none).
        ``draft`` leaves the licence in draft for the agency to publicise later.
        """
        require_role(by, "agency")
        reason = self._reason(reason, "granting a licence")
        try:
            mode = LicenceMode(mode)
        except ValueError:
            raise RegistryError(f"unknown licence mode {mode!r}; one of {', '.join(LicenceMode)}") from None
        try:
            fee_class = FeeClass(fee_class)
        except ValueError:
            raise RegistryError(f"unknown fee class {fee_class!r}; one of {', '.join(FeeClass)}") from None
        if fee_class == FeeClass.COMMERCIAL and (price_cents is None or price_cents <= 0):
            raise RegistryError(
                "a 经营性 licence needs a positive price (--price-cents; 双鸭山 第四十四条: 政府指导价)"
            )
        if fee_class == FeeClass.PUBLIC_WELFARE and price_cents is not None:
            raise RegistryError("公益 products are free: a 公益 licence takes no price (双鸭山 第四十四条)")
        names, domains, scenarios = _clean_list(datasets), _clean_list(domains), _clean_list(scenarios)
        if not scenarios:
            raise RegistryError("a licence must name the application scenarios (应用场景) it allows")
        now = self.config.now()
        today = now.date()
        valid_from = valid_from or today
        if valid_until < today:
            raise RegistryError(f"valid_until {valid_until} has already passed")
        if valid_until < valid_from:
            raise RegistryError(f"valid_until {valid_until} is before valid_from {valid_from}")
        days = self.config.publicity_days if publicity_days is None else publicity_days
        if days < 0:
            raise RegistryError("publicity days cannot be negative (0 activates at once)")
        with self.recorder.change(by) as change:
            session = change.session
            op = self._operator(session, operator)
            if op.qualification != Qualification.QUALIFIED:
                raise RegistryError(
                    f"operator {operator!r} is {op.qualification} ({op.suspended_reason}): restore it before "
                    "granting (双鸭山 第四十八条)"
                )
            resources = self._scope_resources(session, mode, names, domains, now)
            self._check_catalog_scenarios(resources, scenarios)
            budgets = self._budgets(epsilon, [r.name for r in resources])
            row = LicenceRow(
                operator_id=op.id,
                mode=str(mode),
                domains=domains,
                scenarios=scenarios,
                valid_from=valid_from,
                valid_until=valid_until,
                fee_class=str(fee_class),
                price_cents=price_cents,
                state=str(S.DRAFT),
                publicity_days=days,
                created_by=by.name,
                created_at=now,
                updated_at=now,
            )
            row.operator = op
            row.datasets = [
                LicenceDatasetRow(
                    resource_id=r.id, resource=r, epsilon_budget=budgets[r.name], delta_budget=DEFAULT_DELTA
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
                    "mode": str(mode),
                    "datasets": {r.name: budgets[r.name] for r in resources},
                    "domains": domains,
                    "scenarios": scenarios,
                    "valid_from": valid_from.isoformat(),
                    "valid_until": valid_until.isoformat(),
                    "fee_class": str(fee_class),
                    "price_cents": price_cents,
                    "publicity_days": days,
                    "reason": reason,
                },
            )
            if not draft:
                target = S.ACTIVE if days == 0 else S.PUBLICITY
                self._apply(change, row, target, reason=reason, by=by)
            session.flush()
            return _licence_view(row)

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

    @staticmethod
    def _check_catalog_scenarios(resources: list[ResourceRow], scenarios: list[str]) -> None:
        """A catalog entry that names its 授权运营应用场景 is licensed for those scenarios only.

        The scenarios a custodian publishes in the catalog (双鸭山 第十二条) bound what the agency may
        license the data for (济源 draft 第三十三条: shared data is not used, even indirectly, for other
        purposes; 双鸭山 第四十六条 依场景授权); an entry naming none leaves the choice to the agency.
        """
        for resource in resources:
            allowed = [str(s) for s in resource.operation_scenarios or []]
            outside = [s for s in scenarios if allowed and s not in allowed]
            if outside:
                raise RegistryError(
                    f"dataset {resource.name!r} is catalogued for the scenarios {', '.join(allowed)} only "
                    f"(授权运营应用场景); {', '.join(outside)} would go beyond them: change the catalog entry first"
                )

    @staticmethod
    def _budgets(epsilon: float | dict[str, float], names: list[str]) -> dict[str, float]:
        """ε per dataset: one value for all, or a mapping (datasets it omits get the default)."""
        if isinstance(epsilon, dict):
            unknown = sorted(set(epsilon) - set(names))
            if unknown:
                raise RegistryError(f"privacy budget given for datasets outside the licence: {', '.join(unknown)}")
            budgets = {n: float(epsilon.get(n, DEFAULT_EPSILON)) for n in names}
        else:
            budgets = dict.fromkeys(names, float(epsilon))
        for name, value in budgets.items():
            if not math.isfinite(value) or value <= 0:
                raise RegistryError(f"privacy budget ε for {name!r} must be a positive number, not {value}")
        return budgets

    # --- the state machine -------------------------------------------------------------------

    def transition(self, licence_id: int, to_state: LicenceState | str, *, by: Actor, reason: str) -> LicenceView:
        """Move a licence to ``to_state``; refused when the transition or its conditions do not hold.

        draft → publicity (公示, 第四十八条), or → active only when its publicity period is 0 days;
        publicity → active once 公示 has ended with no open objection; active ⇄ suspended (restore);
        any living state → revoked, or → expired once ``valid_until`` has passed; nothing leaves
        revoked or expired. Ending a licence destroys the operator's copies (第六十二条).
        """
        require_role(by, "agency")
        reason = self._reason(reason, "a licence transition")
        try:
            target = LicenceState(to_state)
        except ValueError:
            raise RegistryError(f"unknown licence state {to_state!r}; one of {', '.join(LicenceState)}") from None
        with self.recorder.change(by) as change:
            row = self._licence(change.session, licence_id)
            refusal = self._check_transition(change.session, row, target)
            if refusal:
                raise RegistryError(refusal)
            self._apply(change, row, target, reason=reason, by=by)
            return _licence_view(row)

    def _check_transition(self, session: Session, row: LicenceRow, target: LicenceState) -> str | None:
        current = LicenceState(row.state)
        now = self.config.now()
        if current.ended:
            return f"licence {row.id} is {current}: nothing follows (grant a new licence instead)"
        if target == current:
            return f"licence {row.id} is already {current}"
        if target not in TRANSITIONS[current]:
            return f"licence {row.id} cannot go from {current} to {target}"
        if target == S.EXPIRED and now.date() <= row.valid_until:
            return f"licence {row.id} is valid until {row.valid_until}: revoke it to end it earlier"
        if target == S.PUBLICITY and row.publicity_days == 0:
            return f"licence {row.id} has a publicity period of 0 days: activate it directly"
        if target != S.ACTIVE:
            return None
        if current == S.DRAFT and row.publicity_days > 0:
            return (
                f"licence {row.id} must be publicised (公示, 双鸭山 第四十八条) for {row.publicity_days} days "
                "before it becomes active: move it to publicity first"
            )
        if current == S.PUBLICITY and row.publicity_ends_at is not None and now < row.publicity_ends_at:
            return f"licence {row.id} is in publicity (公示) until {row.publicity_ends_at.isoformat()}"
        if now.date() > row.valid_until:
            return f"licence {row.id} ended on {row.valid_until}: it can only expire"
        objection = session.scalar(
            select(ObjectionRow.id).where(
                ObjectionRow.target_kind == "licence", ObjectionRow.target_id == row.id, ObjectionRow.state == "open"
            )
        )
        if objection is not None:
            return (
                f"objection {objection} against licence {row.id} is open: it cannot become active until the "
                "objection is resolved (第四十八条: 公示无异议的)"
            )
        if row.operator.qualification != Qualification.QUALIFIED:
            return f"operator {row.operator.name!r} is suspended: restore it first"
        if current != S.SUSPENDED:
            for ds in row.datasets:
                refusal = licensing_refusal(ds.resource, now)
                if refusal:
                    return f"licence {row.id} cannot become active: {refusal}"
        return None

    def _apply(self, change: Change, row: LicenceRow, target: LicenceState, *, reason: str, by: Actor) -> None:
        """Record a transition already checked: state, event, ledger entry; destruction when it ends."""
        now = self.config.now()
        current = LicenceState(row.state)
        row.state = str(target)
        row.updated_at = now
        payload: dict[str, object] = {"from": str(current), "reason": reason}
        if target == S.PUBLICITY:
            row.publicity_ends_at = now + timedelta(days=row.publicity_days)
            payload["ends_at"] = row.publicity_ends_at.isoformat()
        change.session.add(
            LicenceEventRow(
                licence=row, from_state=str(current), to_state=str(target), by=by.name, reason=reason, at=now
            )
        )
        action = "licence.restored" if current == S.SUSPENDED and target == S.ACTIVE else _ACTION[target]
        change.log(action, f"licence:{row.id}", payload, actor=by)
        if target.ended:
            self._destroy(change, row, by=by)
        change.session.flush()

    def suspend(self, operator_name: str, *, by: Actor, reason: str) -> list[LicenceView]:
        """Suspend every active licence of an operator (``keyong licence suspend OPERATOR --reason``)."""
        require_role(by, "agency")
        reason = self._reason(reason, "suspending licences")
        with self.recorder.change(by) as change:
            op = self._operator(change.session, operator_name)
            rows = change.session.scalars(
                select(LicenceRow)
                .where(LicenceRow.operator_id == op.id, LicenceRow.state == str(S.ACTIVE))
                .order_by(LicenceRow.id)
            ).all()
            if not rows:
                raise RegistryError(f"operator {operator_name!r} has no active licence to suspend")
            for row in rows:
                self._apply(change, row, S.SUSPENDED, reason=reason, by=by)
            return [_licence_view(r) for r in rows]

    def activate_due(self, *, by: Actor) -> list[LicenceView]:
        """Activate every licence whose 公示 has ended without an open objection (and that may activate)."""
        require_role(by, "agency")
        done: list[LicenceView] = []
        with self.recorder.change(by) as change:
            rows = change.session.scalars(
                select(LicenceRow).where(LicenceRow.state == str(S.PUBLICITY)).order_by(LicenceRow.id)
            ).all()
            for row in rows:
                if self._check_transition(change.session, row, S.ACTIVE) is None:
                    self._apply(
                        change, row, S.ACTIVE, reason="公示期满无异议 (publicity ended without objection)", by=by
                    )
                    done.append(_licence_view(row))
        return done

    def expire_due(self, *, by: Actor) -> list[LicenceView]:
        """Expire every living licence whose ``valid_until`` has passed, destroying its copies."""
        require_role(by, "agency")
        with self.recorder.change(by) as change:
            return [_licence_view(r) for r in self._expire(change, None, by=by)]

    def _expire(self, change: Change, operator_id: int | None, *, by: Actor) -> list[LicenceRow]:
        today = self.config.now().date()
        living = [str(s) for s in LicenceState if not s.ended]
        query = select(LicenceRow).where(LicenceRow.state.in_(living), LicenceRow.valid_until < today)
        if operator_id is not None:
            query = query.where(LicenceRow.operator_id == operator_id)
        rows = change.session.scalars(query.order_by(LicenceRow.id)).all()
        for row in rows:
            self._apply(change, row, S.EXPIRED, reason=f"valid_until {row.valid_until} passed", by=by)
        return list(rows)

    # --- reading -----------------------------------------------------------------------------

    def get(self, licence_id: int, *, viewer: Actor) -> LicenceView:
        """One licence; an operator sees only its own (another's is "not found", not "forbidden")."""
        require_role(viewer, "agency", "regulator", "operator")
        with self.recorder.read() as session:
            row = session.get(LicenceRow, licence_id)
            if row is None or (viewer.role == "operator" and row.operator.name != viewer.name):
                raise NotFoundError(f"no licence {licence_id}")
            return _licence_view(row)

    def list(
        self, *, viewer: Actor, operator: str | None = None, state: LicenceState | str | None = None
    ) -> builtins.list[LicenceView]:
        """Licences, oldest first; an operator sees only its own whatever ``operator`` says."""
        require_role(viewer, "agency", "regulator", "operator")
        with self.recorder.read() as session:
            query = select(LicenceRow).join(OperatorRow, LicenceRow.operator_id == OperatorRow.id)
            if viewer.role == "operator":
                if operator is not None and operator != viewer.name:
                    return []
                operator = viewer.name
            if operator:
                query = query.where(OperatorRow.name == operator)
            if state:
                query = query.where(LicenceRow.state == str(state))
            return [_licence_view(r) for r in session.scalars(query.order_by(LicenceRow.id))]

    def destructions(self, licence_id: int, *, viewer: Actor) -> builtins.list[DestructionView]:
        """The destruction records of a licence (agency, regulators, and its operator)."""
        self.get(licence_id, viewer=viewer)
        with self.recorder.read() as session:
            rows = session.scalars(
                select(DestructionRow).where(DestructionRow.licence_id == licence_id).order_by(DestructionRow.id)
            )
            return [
                DestructionView(
                    id=r.id,
                    licence_id=r.licence_id,
                    files=r.files,
                    bytes=r.bytes,
                    manifest_sha256=r.manifest_sha256,
                    by=r.by,
                    at=r.at,
                )
                for r in rows
            ]

    # --- scope checks ------------------------------------------------------------------------

    def check_scope(
        self, operator: str, datasets: builtins.list[str], scenario: str, *, subject: str = "", by: Actor | None = None
    ) -> ScopeGrant:
        """Admit a job of ``operator`` over ``datasets`` for ``scenario``, or refuse it at once.

        Refused (双鸭山 第三十一条, 黑龙江 第二十七条) when the operator is suspended or has no active
        licence, a dataset is outside its licences (超范围调用), the scenario is not licensed (超目的调用),
        the licence has expired (it is moved to expired on the spot), or a dataset is no longer served
        or under an open objection. A refusal commits its violation and ``scope.refused`` entry in its
        own transaction, then raises :class:`ScopeRefusedError`. An admitted job gets usage records
        (``job.admitted``) and its datasets' ``last_used_at``, and a ``scope.admitted`` entry.

        ``by`` defaults to the operator itself (the CLI's ``--operator`` names who acts).
        """
        actor = by or Actor(operator, "operator")
        require_role(actor, "operator", "agency")
        if actor.role == "operator" and actor.name != operator:
            raise PermissionDeniedError("an operator may check the scope of its own jobs only")
        names = _clean_list(datasets)
        scenario = scenario.strip()
        if not names:
            raise RegistryError("a job must name the datasets it uses")
        if not scenario:
            raise RegistryError("a job must declare its application scenario (应用场景)")
        refusal: _Refusal | None = None
        grant: ScopeGrant | None = None
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
            else:
                # Expiry is a fact of the calendar, recorded by the platform even when the job is refused.
                expired = self._expire(change, op.id, by=MONITOR)
                found = self._match(session, op, names, scenario, expired)
                if isinstance(found, _Refusal):
                    refusal = found
                else:
                    admitted = self._admit(change, op, found, names, scenario, subject)
                    if isinstance(admitted, _Refusal):
                        refusal = admitted
                    else:
                        grant = admitted
        if grant is not None:
            return grant
        assert refusal is not None
        self._refuse(operator, names, scenario, subject, actor, refusal)
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

        active = [r for r in licences if r.state == S.ACTIVE and r.valid_from <= today]
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
    ) -> ScopeGrant | _Refusal:
        """Check each dataset is still served and free of objections; record the use; or say why not."""
        now = self.config.now()
        by_name = {d.resource.name: d for d in licence.datasets}
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
            mounts.append(
                ScopeDataset(
                    name=name,
                    resource_id=resource.id,
                    version_id=version.id,
                    version=version.version,
                    path=version.path,
                    epsilon_budget=ds.epsilon_budget,
                    epsilon_spent=ds.epsilon_spent,
                )
            )
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
                "scenario": scenario,
                "subject": subject,
            },
        )
        return ScopeGrant(licence_id=licence.id, operator=op.name, scenario=scenario, datasets=mounts)

    def _refuse(
        self, operator: str, names: builtins.list[str], scenario: str, subject: str, actor: Actor, refusal: _Refusal
    ) -> None:
        """Commit the violation (and whatever it triggers) and its ``scope.refused`` entry, then raise."""
        with self.recorder.change(actor) as change:
            op = change.session.scalar(select(OperatorRow).where(OperatorRow.name == operator))
            change.log(
                "scope.refused",
                f"operator:{operator}",
                {
                    "kind": str(refusal.kind),
                    "reason": refusal.reason,
                    "datasets": names,
                    "scenario": scenario,
                    "subject": subject,
                    "licence": refusal.licence_id,
                },
            )
            self.monitoring.record_violation(
                change,
                operator=op,
                operator_name=operator,
                kind=str(refusal.kind),
                detail=refusal.reason,
                subject=subject,
                licence_id=refusal.licence_id,
            )
        raise ScopeRefusedError(str(refusal.kind), refusal.reason)

    # --- destruction -------------------------------------------------------------------------

    def workdir(self, operator: str, licence_id: int) -> Path:
        """Where the sandbox keeps everything for one licence: working copies, outputs, scratch.

        ``<home>/work/<operator>/licence-<id>``; the directory is not created here. Everything under it
        is destroyed when the licence ends, so nothing of a licence may be kept anywhere else.
        """
        if not _NAME_RE.match(operator):
            raise RegistryError(f"{operator!r} is not an operator name")
        return self.config.home / "work" / operator / f"licence-{int(licence_id)}"

    def _destroy(self, change: Change, row: LicenceRow, *, by: Actor) -> DestructionRow:
        """Destroy the licence's work directory and log what was destroyed (双鸭山 第六十二条).

        Every file is hashed (SHA-256), then the tree is deleted; a :class:`DestructionRow` keeps the
        file count, bytes and the SHA-256 of the manifest (sorted ``"relpath sha256\\n"`` lines), so an
        auditor holding a copy can prove which files existed without Keyong keeping any of them. A
        ``copy.destroyed`` usage record is written per dataset and ``licence.destroyed`` to the ledger.

        "Irreversible" here means the files are unlinked from a normal filesystem and nothing of them
        stays reachable through Keyong. It gives no guarantee against remnants on SSDs (wear levelling,
        TRIM timing), snapshots or backups of the volume; the stronger design is crypto-shredding —
        encrypt each licence's work area under its own key and destroy the key — which 第六十二条's
        数据覆写 would approach on storage that cannot overwrite in place.

        The deletion runs last inside the change: if it fails, the transaction rolls back and the
        licence stays as it was, so no destruction is ever recorded that did not happen. (Should the
        commit itself fail after the deletion, the files are gone unrecorded and the licence keeps its
        state; ending it again records an empty destruction — safe for the data, weaker as evidence.)
        """
        root = self.workdir(row.operator.name, row.id)
        lines, total = _tree_manifest(root) if root.is_dir() and not root.is_symlink() else ([], 0)
        manifest = hashlib.sha256("".join(f"{line}\n" for line in lines).encode("utf-8")).hexdigest()
        now = self.config.now()
        record = DestructionRow(
            licence_id=row.id, files=len(lines), bytes=total, manifest_sha256=manifest, by=by.name, at=now
        )
        change.session.add(record)
        change.session.flush()
        for ds in row.datasets:
            usage = record_usage(
                change.session,
                resource_id=ds.resource_id,
                event="copy.destroyed",
                licence_id=row.id,
                operator_id=row.operator_id,
                detail={"destruction": record.id, "manifest_sha256": manifest},
            )
            usage.at = now
        change.log(
            "licence.destroyed",
            f"licence:{row.id}",
            {"destruction": record.id, "files": len(lines), "bytes": total, "manifest_sha256": manifest},
            actor=by,
        )
        if root.is_symlink():
            root.unlink()
        elif root.exists():
            shutil.rmtree(root)
        return record

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _reason(reason: str | None, what: str) -> str:
        reason = (reason or "").strip()
        if not reason:
            raise RegistryError(f"{what} needs a reason (it goes to the ledger)")
        return reason

    @staticmethod
    def _operator(session: Session, name: str) -> OperatorRow:
        row = session.scalar(select(OperatorRow).where(OperatorRow.name == name))
        if row is None:
            raise NotFoundError(f"no operator named {name!r}: add it with `keyong operator add`")
        return row

    @staticmethod
    def _licence(session: Session, licence_id: int) -> LicenceRow:
        row = session.get(LicenceRow, licence_id)
        if row is None:
            raise NotFoundError(f"no licence {licence_id}")
        return row


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
]
