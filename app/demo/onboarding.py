"""The demo's onboarding (issue 22): its people are known, bound by the terms and trained before a licence.

SATRE 3.2.02, 1.5.02, 1.6.04.

The agency publishes the terms of use; every demo principal accepts them with its own act; the agency records
the identity checks and trainings of the operator's login and the custodian, and the host administrator those of
the agency and regulator principals (nobody certifies themselves, and the agency does not vouch for its
supervisor). The records are ledgered like every other change.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.demo.scenario import DEMO_TERMS, DEMO_TERMS_TITLE, DEMO_TERMS_VERSION, DEMO_TRAINING
from app.instance import DEMO_PRINCIPALS, Instance
from core import Actor
from operators import Role

#: What the checker saw for each demo role's person; the reference is where the evidence is filed.
_EVIDENCE = {
    Role.OPERATOR: ("employer_letter", "demo-HR-2026-0001 (在职证明, 加盖公章)"),
    Role.CUSTODIAN: ("resident_id_in_person", "demo-HR-2026-0002"),
    Role.AGENCY: ("resident_id_in_person", "demo-HR-2026-0003"),
    Role.REGULATOR: ("resident_id_in_person", "demo-HR-2026-0004"),
}


def onboard(instance: Instance) -> list[dict[str, Any]]:
    """Publish the demo terms (once) and record each demo principal's acceptance, identity check and training;
    returns each person's standing."""
    people = instance.people
    agency = Actor(DEMO_PRINCIPALS[Role.AGENCY], Role.AGENCY.value)
    current = people.terms(with_text=False)
    if current is None or current["version"] != DEMO_TERMS_VERSION:
        people.publish_terms(DEMO_TERMS_VERSION, title=DEMO_TERMS_TITLE, text=DEMO_TERMS, by=agency)
    standings = []
    for role, name in DEMO_PRINCIPALS.items():
        certifier = agency if role in (Role.OPERATOR, Role.CUSTODIAN) else None  # None: the host administrator
        standings.append(onboard_person(instance, name, role, by=certifier))
    return standings


def onboard_person(instance: Instance, name: str, role: Role, *, by: Actor | None = None) -> dict[str, Any]:
    """One person's identity check and training (recorded ``by``; the host when ``None``) and their own
    acceptance of the demo terms; their standing."""
    people = instance.people
    today = instance.registry.config.now().date()
    evidence_kind, evidence_ref = _EVIDENCE[role]
    people.record_identity_check(name, evidence_kind=evidence_kind, evidence_ref=evidence_ref, checked_on=today, by=by)
    people.accept_terms(name, version=DEMO_TERMS_VERSION, by=Actor(name, role.value))
    people.record_training(
        name, course=DEMO_TRAINING, completed_on=today, expires_on=today + timedelta(days=365), by=by
    )
    return people.standing(name)


__all__ = ["onboard", "onboard_person"]
