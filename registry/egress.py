"""Custodians have a say on egress (SATRE 3.1.06, 1.5.04; issue 22): per dataset, sign-off or delegation.

Why: the agency's reviewers judge whether an output is safe to release (双鸭山 第五十二条), but the data
are the custodian's (数据持有权, 三权分置: 双鸭山 第四十四条 separates holding, processing and product
rights), so the custodian keeps a say on what leaves derived from them. Per dataset, its custodian
either signs off each release whose outputs derive from it (the default, for every dataset: nothing
needs to be recorded to keep control), or records a *standing delegation* of that say to the agency,
with a reason and optionally an expiry, which it may withdraw at any time.

Whose dataset: a dataset's custodians are the custodian principal that published it (``created_by``,
the rule usage records already follow) and every custodian of its organisation, that is whose ``org``
is the publisher's ``org`` or names the dataset's 提供方 (``provider_name``, or its 统一社会信用代码
``provider_code``). Only *active* custodian principals count. The registry does not own principals, so
it asks the identity service through ``custodians`` (wired by the application: active custodian name
-> org). Without that hook nobody is a dataset's custodian and delegations and sign-offs are refused
(fail closed). The host administrator is never a custodian: a delegation, like a sign-off, is the
custodian's own act through its own authenticated session.

Delegations are rows of their own (one live at a time per dataset), never edited but withdrawn, so the
history stays readable beside the ledger (``dataset.egress_delegated``, ``dataset.egress_withdrawn``,
subject ``dataset:NAME``; reasons ledgered as SHA-256). A release snapshots which of its datasets
were delegated when it was requested (:func:`egress_requirement`): a withdrawal binds new requests,
and a release not yet decided asks again when it is decided (``sandbox.release_review``): a dataset whose
delegation ended meanwhile needs its custodian's sign-off (SATRE 3.1.06: egress by the owner or its
delegate at the time it happens).

The same rule, row and ownership serve a second say (SATRE 1.5.04, issue 22): *access*. A licence becomes
active only with, for every dataset in its scope, its custodian's agreement to that licence
(:mod:`registry.access_consent`) or a standing access delegation to the agency recorded here with
``kind="access"`` (``dataset.access_delegated`` / ``dataset.access_withdrawn``). One class, two
instances (``Registry.egress``, ``Registry.access``): whose dataset it is, how a delegation is
recorded, expires and is withdrawn are decided once, here.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import Actor, Base, NotFoundError, PermissionDeniedError, Recorder, RegistryError, text_sha256, utcnow
from registry.config import RegistryConfig
from registry.freeze import require_not_frozen
from registry.models import ResourceRow

#: The longest reason a delegation or its withdrawal records.
EGRESS_REASON_CHARS = 2000
#: What a delegation hands to the agency: the sign-off of releases, or the agreement to licences.
KINDS = ("egress", "access")
#: ``mode`` of a dataset without a live delegation, per kind: what its custodian does itself then.
_OWN_MODE = {"egress": "signoff", "access": "agreement"}
#: ``custodians()``: every active custodian principal's name -> its organisation (None: none recorded).
Custodians = Callable[[], Mapping[str, str | None]]


class EgressDelegationRow(Base):
    """One standing delegation of a dataset's egress sign-off to the agency, live until withdrawn or expired."""

    __tablename__ = "egress_delegations"
    __table_args__ = (Index("ix_egress_delegations_resource_id_withdrawn_at", "resource_id", "withdrawn_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # "egress" (release sign-off) or "access" (agreement to licences): which say is delegated (0016).
    kind: Mapped[str] = mapped_column(String(16), default="egress", server_default="egress")
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"))
    org: Mapped[str] = mapped_column(String(128))  # the custodian organisation that delegated
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    granted_by: Mapped[str] = mapped_column(String(160))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(nullable=True)
    withdraw_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    def live(self, now: datetime) -> bool:
        return self.withdrawn_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class EgressView:
    """A dataset's egress rule as anyone with the catalog reads it."""

    dataset: str
    # egress: "signoff" (the custodian signs off each release) or "delegated" (to the agency);
    # access: "agreement" (the custodian agrees to each licence) or "delegated".
    mode: str
    organisation: list[str]  # who its custodians are: 提供方名称 and 提供方代码
    delegation: dict[str, Any] | None  # the live one
    history: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "mode": self.mode,
            "organisation": self.organisation,
            "delegation": self.delegation,
            "history": self.history,
        }


def _delegation_json(row: EgressDelegationRow, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "org": row.org,
        "reason": row.reason,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "granted_by": row.granted_by,
        "granted_at": row.granted_at.isoformat(),
        "withdrawn_by": row.withdrawn_by,
        "withdrawn_at": row.withdrawn_at.isoformat() if row.withdrawn_at else None,
        "withdraw_reason": row.withdraw_reason,
        "live": row.live(now),
    }


def _resource(session: Session, name: str) -> ResourceRow:
    row = session.scalar(select(ResourceRow).where(ResourceRow.name == name))
    if row is None:
        raise NotFoundError(f"no dataset {name!r}")
    return row


def is_custodian(name: str, resource: ResourceRow, custodians: Mapping[str, str | None]) -> bool:
    """Whether active custodian ``name`` is one of ``resource``'s custodians (see the module)."""
    if name not in custodians:
        return False
    if name == resource.created_by:
        return True
    org = (custodians[name] or "").strip()
    if not org:
        return False
    publisher_org = (custodians.get(resource.created_by) or "").strip()
    return org == publisher_org or names_organisation(org, resource.provider_name, resource.provider_code)


def names_organisation(org: str, provider_name: str, provider_code: str) -> bool:
    """Whether an organisation on record (its name or its 统一社会信用代码) is the 提供方 named by an entry."""
    org = (org or "").strip()
    return bool(org) and (org == provider_name.strip() or org.upper() == provider_code.strip().upper())


def _active(custodians: Custodians | None) -> Mapping[str, str | None]:
    return dict(custodians()) if custodians is not None else {}


def require_custodian_of(
    session: Session, dataset: str, by: Actor, custodians: Custodians | None, doing: str
) -> tuple[ResourceRow, str]:
    """``dataset``'s row and ``by``'s organisation, or a refusal: only its own custodians act on its egress."""
    resource = _resource(session, dataset)
    if by.is_host or by.role != "custodian":
        raise PermissionDeniedError(
            f"{doing} is the act of a custodian of {dataset!r} through its own session (SATRE 3.1.06); "
            "the host administrator and other roles never act in its name"
        )
    active = _active(custodians)
    if not is_custodian(by.name, resource, active):
        raise PermissionDeniedError(
            f"{by.name!r} is not an active custodian of dataset {dataset!r} (provided by {resource.provider_name}, "
            f"published by {resource.created_by}): it may not do {doing}"
        )
    return resource, (active.get(by.name) or by.name)[:128]


def live_delegations(session: Session, datasets: Iterable[str], now: datetime, kind: str = "egress") -> dict[str, int]:
    """Dataset name -> id of its live delegation of ``kind``, for those of ``datasets`` that have one."""
    names = sorted(set(datasets))
    if not names:
        return {}
    rows = session.execute(
        select(ResourceRow.name, EgressDelegationRow)
        .join(EgressDelegationRow, EgressDelegationRow.resource_id == ResourceRow.id)
        .where(
            ResourceRow.name.in_(names),
            EgressDelegationRow.kind == kind,
            EgressDelegationRow.withdrawn_at.is_(None),
        )
        .order_by(EgressDelegationRow.id)
    ).all()
    return {name: row.id for name, row in rows if row.live(now)}


def egress_requirement(session: Session, datasets: Iterable[str], now: datetime) -> tuple[list[str], dict[str, int]]:
    """Which of ``datasets`` need their custodian's sign-off now, and which are delegated (with the delegation)."""
    names = sorted(set(datasets))
    delegated = live_delegations(session, names, now)
    return [n for n in names if n not in delegated], delegated


def custodian_datasets(
    session: Session, datasets: Iterable[str] | None, by: Actor, custodians: Custodians | None
) -> list[str]:
    """Those of ``datasets`` (all, when None) that ``by`` is a custodian of: what it may sign off or delegate."""
    if by.is_host or by.role != "custodian":
        return []
    active = _active(custodians)
    if by.name not in active:
        return []
    query = select(ResourceRow)
    if datasets is not None:
        query = query.where(ResourceRow.name.in_(sorted(set(datasets))))
    return sorted(r.name for r in session.scalars(query) if is_custodian(by.name, r, active))


def _reason(reason: str, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise RegistryError(f"{what} needs a reason: it is recorded (as its SHA-256 in the ledger)")
    if len(text) > EGRESS_REASON_CHARS:
        raise RegistryError(f"the reason is at most {EGRESS_REASON_CHARS} characters")
    return text


def _expiry(expires: date | datetime | None, now: datetime) -> datetime | None:
    """The end of the delegation: a date means the end of that day (UTC); it must lie in the future."""
    if expires is None:
        return None
    if isinstance(expires, datetime):
        when = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    else:
        when = datetime.combine(expires, time.max, tzinfo=UTC)
    if when <= now:
        raise RegistryError(f"a delegation's expiry must lie in the future, not {when.date().isoformat()}")
    return when


class EgressConsent:
    """Per dataset: the custodian's own say (default) or a standing delegation to the agency; each change ledgered.

    ``kind`` is which say: ``egress`` (release sign-off) or ``access`` (agreement to licences)."""

    def __init__(
        self, recorder: Recorder, config: RegistryConfig, custodians: Custodians | None = None, kind: str = "egress"
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown delegation kind {kind!r}; one of {', '.join(KINDS)}")
        self.recorder = recorder
        self.config = config
        self.custodians = custodians
        self.kind = kind

    def get(self, dataset: str) -> EgressView:
        now = self.config.now()
        with self.recorder.read() as session:
            resource = _resource(session, dataset)
            rows = list(
                session.scalars(
                    select(EgressDelegationRow)
                    .where(EgressDelegationRow.resource_id == resource.id, EgressDelegationRow.kind == self.kind)
                    .order_by(EgressDelegationRow.id)
                )
            )
            live = next((r for r in reversed(rows) if r.live(now)), None)
            return EgressView(
                dataset=resource.name,
                mode="delegated" if live is not None else _OWN_MODE[self.kind],
                organisation=[resource.provider_name, resource.provider_code],
                delegation=_delegation_json(live, now) if live is not None else None,
                history=[_delegation_json(r, now) for r in rows],
            )

    def may_act(self, dataset: str, by: Actor) -> bool:
        """Whether ``by`` is a custodian of ``dataset``'s organisation (the console shows the control then)."""
        with self.recorder.read() as session:
            try:
                require_custodian_of(session, dataset, by, self.custodians, "this")
            except (PermissionDeniedError, NotFoundError):
                return False
        return True

    def datasets_of(self, by: Actor) -> builtins.list[str]:
        """The datasets ``by`` is a custodian of (none for anyone but an active custodian)."""
        with self.recorder.read() as session:
            return custodian_datasets(session, None, by, self.custodians)

    def delegate(self, dataset: str, *, by: Actor, reason: str, expires: date | datetime | None = None) -> EgressView:
        """Record a standing delegation of ``dataset``'s say (of ``kind``) to the agency (its custodian only)."""
        reason = _reason(reason, "a delegation")
        now = self.config.now()
        until = _expiry(expires, now)
        with self.recorder.change(by) as change:
            session = change.session
            # Giving up a say on egress is not done while an incident froze egress; withdrawing is.
            require_not_frozen(session, f"delegating a dataset's {self.kind} say")
            resource, org = require_custodian_of(session, dataset, by, self.custodians, f"an {self.kind} delegation")
            if live_delegations(session, [resource.name], now, self.kind):
                raise RegistryError(
                    f"dataset {resource.name!r} already has a live delegation ({self.kind}): withdraw it first to "
                    "record another"
                )
            row = EgressDelegationRow(
                resource_id=resource.id,
                kind=self.kind,
                org=org,
                reason=reason,
                expires_at=until,
                granted_by=by.name,
                granted_at=now,
            )
            session.add(row)
            session.flush()
            change.log(
                f"dataset.{self.kind}_delegated",
                f"dataset:{resource.name}",
                {
                    "dataset": resource.name,
                    "delegation": row.id,
                    "org": org,
                    "expires_at": until.isoformat() if until else None,
                    "reason_sha256": text_sha256(reason),
                },
            )
        return self.get(resource.name)

    def withdraw(self, dataset: str, *, by: Actor, reason: str) -> EgressView:
        """Withdraw the live delegation: new release requests (licence activations) need the custodian again."""
        reason = _reason(reason, "a withdrawal")
        now = self.config.now()
        with self.recorder.change(by) as change:
            session = change.session
            resource, org = require_custodian_of(session, dataset, by, self.custodians, "a withdrawal")
            live = live_delegations(session, [resource.name], now, self.kind)
            if not live:
                raise RegistryError(
                    f"dataset {resource.name!r} has no live delegation ({self.kind}): its custodian decides itself"
                )
            row = session.get(EgressDelegationRow, live[resource.name])
            if row is None:  # read in this transaction just above: only a concurrent deletion could do this
                raise NotFoundError(f"dataset {resource.name!r} has no live delegation")
            row.withdrawn_by, row.withdrawn_at, row.withdraw_reason = by.name, now, reason
            change.log(
                f"dataset.{self.kind}_withdrawn",
                f"dataset:{resource.name}",
                {"dataset": resource.name, "delegation": row.id, "org": org, "reason_sha256": text_sha256(reason)},
            )
        return self.get(resource.name)


__all__ = [
    "EGRESS_REASON_CHARS",
    "KINDS",
    "Custodians",
    "EgressConsent",
    "EgressDelegationRow",
    "EgressView",
    "custodian_datasets",
    "egress_requirement",
    "is_custodian",
    "live_delegations",
    "names_organisation",
    "require_custodian_of",
]
