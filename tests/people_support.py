"""People who stand (issue 22): identity checked, current terms accepted, trained, for fixtures that grant
licences and submit jobs.

Licence activation and job submission refuse people without these records (``registry.people``), so every
fixture that activates a licence or submits a job records them first, here, in one place.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core import Actor
from registry import (
    Person,
    Registry,
    current_terms,
    publish_terms,
    record_identity_check,
    record_terms,
    record_training,
)

TERMS_VERSION = "test-1"


def stand(target: Any, *names: str, org: str | None = None, role: str = "operator", days: int = 1000) -> None:
    """Record for each of ``names`` what makes a person stand, valid ``days`` days from the registry's today.

    ``target`` is an ``Instance`` or a ``Registry``; the person's organisation is ``org``, else (an operator's
    login) its own name. The host records them, as ``keyong people …`` does.
    """
    registry: Registry = getattr(target, "registry", target)
    today = registry.config.now().date()
    done = today - timedelta(days=30)  # before any test clock's today, so a fixed clock and the real one agree
    with registry.recorder.change(Actor.host()) as change:
        terms = current_terms(change.session)
        version = (
            terms.version
            if terms
            else publish_terms(
                change, version=TERMS_VERSION, title="Keyong test terms", text="Use data only as licensed."
            )["version"]
        )
        for name in names:
            person = Person(name, role, org or (name if role == "operator" else None))
            record_identity_check(
                change, person, evidence_kind="resident_id_in_person", evidence_ref="HR-file-0001",
                checked_on=done, today=today,
            )  # fmt: skip
            record_terms(change, person, version=version, today=today)
            record_training(
                change, person, course="数据安全培训", completed_on=done, expires_on=today + timedelta(days=days),
                today=today,
            )  # fmt: skip
