"""Who records people's identity checks, terms acceptance and training (issue 22), and reading their standing.

SATRE 3.2.02, 1.5.01, 1.5.02, 1.6.04.

The records and the rule "does this person stand" are the registry's (:mod:`registry.people` says why: licence
activation asks it, and the registry cannot import this package). This module is their one writer, because only the
identity service knows whether the person exists, which role they hold and whom they act for:

* **identity checks and training** are recorded by the agency (授权运营实施机构) for anyone but itself, by a
  custodian for the staff of its own department (same organisation) but not itself, and by the host administrator
  (the CLI) for anyone. A person never certifies their own identity or training, and an operator records nothing:
  the company whose access depends on the record does not vouch for it (双鸭山 第四十八条: the agency examines the
  operator's 安全保障能力);
* **terms of use** are accepted by the person themselves (their own authenticated act), or recorded by the agency or
  the host from a signed paper copy; the agency (or the host) publishes a new version, after which only its
  acceptance counts;
* a **regulator** reads every standing and changes nothing (第六十四条); anyone reads their own.

Each record is ledgered in the transaction that adds it (``person.<kind>_recorded``), with the person's role and
organisation as they were then; the organisation of an operator's login is the operator itself.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, Change, NotFoundError, PermissionDeniedError, actor_of
from operators.models import PrincipalRow
from operators.roles import Role
from registry import (
    EXPIRING_DAYS,
    Person,
    Registry,
    Standing,
    current_terms,
    expiring,
    person_standing,
    publish_terms,
    record_identity_check,
    record_terms,
    record_training,
    records_of,
    terms_json,
)

#: Roles that read everyone's standing (the agency licenses and reviews; the regulator supervises).
READERS = frozenset({"agency", "regulator"})


def _person(session: Session, name: str) -> tuple[Person, bool]:
    """The principal ``name`` as a record names it, and whether it is active; 404 when there is none."""
    row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
    if row is None:
        raise NotFoundError(f"no principal {name!r} (see `keyong principal list`)")
    org = row.org or (row.name if row.role == Role.OPERATOR else None)  # an operator's login acts for itself
    return Person(row.name, row.role, org), row.active


def _may_certify(session: Session, actor: Actor, person: Person, what: str) -> None:
    """Who may record an identity check or a training for ``person`` (see the module)."""
    if actor.is_host:
        return
    if actor.name == person.name:
        raise PermissionDeniedError(f"nobody records their own {what}: the agency records it (SATRE 3.2.02, 1.6.04)")
    if actor.role == Role.AGENCY:
        return
    if actor.role == Role.CUSTODIAN and person.role == Role.CUSTODIAN:
        own = session.scalar(select(PrincipalRow.org).where(PrincipalRow.name == actor.name))
        if own and own == person.org:
            return
        raise PermissionDeniedError(f"a custodian records the {what} of its own department's staff only")
    raise PermissionDeniedError(f"role {actor.role!r} may not record a {what}; allowed: agency (custodian: own staff)")


class People:
    """Identity checks, terms of use and training per person, over the registry's records and ledger."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _today(self) -> date:
        return self.registry.config.now().date()

    def _record(self, name: str, by: Any, what: str, write: Any, *, certify: bool = True) -> dict[str, Any]:
        actor = actor_of(by)
        with self.registry.recorder.change(actor) as change:
            person, active = _person(change.session, name)
            if certify:
                _may_certify(change.session, actor, person, what)
            if not active:
                raise PermissionDeniedError(f"principal {name!r} is suspended: restore it before recording its {what}")
            result: dict[str, Any] = write(change, person)
            return result

    def record_identity_check(
        self,
        name: str,
        *,
        evidence_kind: str,
        evidence_ref: str,
        checked_on: date | None = None,
        checked_by: str | None = None,
        expires_on: date | None = None,
        id_number: str | None = None,
        by: Any = None,
    ) -> dict[str, Any]:
        """Record that ``name``'s identity was checked (SATRE 3.2.02); the number, if given, only as a keyed digest."""
        today = self._today()

        def write(change: Change, person: Person) -> dict[str, Any]:
            return record_identity_check(
                change, person, evidence_kind=evidence_kind, evidence_ref=evidence_ref,
                checked_on=checked_on or today, today=today, checked_by=checked_by, expires_on=expires_on,
                id_number=id_number, pepper=self.registry.config.pepper,
            )  # fmt: skip

        return self._record(name, by, "identity check", write)

    def record_training(
        self, name: str, *, course: str, completed_on: date, expires_on: date, by: Any = None
    ) -> dict[str, Any]:
        """Record a completed training with its expiry (SATRE 1.6.04)."""
        today = self._today()

        def write(change: Change, person: Person) -> dict[str, Any]:
            return record_training(
                change, person, course=course, completed_on=completed_on, expires_on=expires_on, today=today
            )

        return self._record(name, by, "training", write)

    def accept_terms(self, name: str, *, version: str, by: Any = None) -> dict[str, Any]:
        """``name`` accepts the current terms of use (their own act; or the agency or host from a signed copy)."""
        actor = actor_of(by)
        if not (actor.is_host or actor.name == name or actor.role == Role.AGENCY):
            raise PermissionDeniedError(
                "terms of use are accepted by the person themselves (or recorded by the agency)"
            )
        today = self._today()

        def write(change: Change, person: Person) -> dict[str, Any]:
            return record_terms(change, person, version=version, today=today)

        return self._record(name, actor, "terms acceptance", write, certify=False)

    def publish_terms(self, version: str, *, title: str, text: str, by: Any = None) -> dict[str, Any]:
        """Publish a new version of the terms of use (agency, host); earlier acceptances stop counting."""
        actor = actor_of(by)
        if not (actor.is_host or actor.role == Role.AGENCY):
            raise PermissionDeniedError(f"role {actor.role!r} may not publish terms of use; allowed: agency")
        with self.registry.recorder.change(actor) as change:
            return publish_terms(change, version=version, title=title, text=text)

    def terms(self, *, with_text: bool = True) -> dict[str, Any] | None:
        """The terms of use in force (anyone may read them), or ``None`` before any is published."""
        with self.registry.recorder.read() as session:
            row = current_terms(session)
            return terms_json(row, with_text=with_text) if row else None

    # --- reading ----------------------------------------------------------------------------------------

    @staticmethod
    def _may_read(viewer: Any, name: str | None) -> Actor:
        actor = actor_of(viewer)
        if actor.is_host or actor.role in READERS or (name is not None and actor.name == name):
            return actor
        raise PermissionDeniedError("a person reads their own standing; the agency and regulators read everyone's")

    def standing(self, name: str, *, viewer: Any = None) -> dict[str, Any]:
        """``name``'s standing today, with its records' history (themselves, agency, regulator, host)."""
        self._may_read(viewer, name)
        with self.registry.recorder.read() as session:
            person, active = _person(session, name)
            out = person_standing(session, name, self._today()).as_json()
            out.update(role=person.role, org=person.org, active=active, records=records_of(session, name))
            return out

    def standings(self, *, viewer: Any = None) -> list[dict[str, Any]]:
        """Every principal's standing today (agency, regulator, host), without the histories."""
        self._may_read(viewer, None)
        today = self._today()
        with self.registry.recorder.read() as session:
            rows = session.scalars(select(PrincipalRow).order_by(PrincipalRow.id)).all()
            out = []
            for row in rows:
                item = person_standing(session, row.name, today).as_json()
                item.update(role=row.role, org=row.org, active=row.active)
                out.append(item)
            return out

    def expiring(self, within_days: int = EXPIRING_DAYS, *, viewer: Any = None) -> list[dict[str, Any]]:
        """Identity checks and trainings in force that expire within ``within_days`` (agency, regulator)."""
        self._may_read(viewer, None)
        with self.registry.recorder.read() as session:
            return expiring(session, self._today(), within_days)

    def standing_of(self, name: str) -> Standing:
        """The rule's answer for ``name`` now (job submission asks it; no permission check: nothing is shown)."""
        with self.registry.recorder.read() as session:
            return person_standing(session, name, self._today())


__all__ = ["READERS", "People"]
