"""Response documents of people's standing (``app.api.people``; issue 22, SATRE 3.2.02, 1.5.02, 1.6.04).

Keys are exactly those ``registry.people`` writes (``Standing.as_json``, a record's and the terms' JSON) and
``operators.People`` adds (role, organisation, active, the records' history); dates are ISO 8601 text.
"""

from typing import Any

from pydantic import Field

from app.api.schemas.base import Document, example

_T = "2026-12-01T09:00:00+00:00"
_RECORD: dict[str, Any] = {
    "id": 3, "person": "acme-ops", "role": "operator", "org": "acme-ops", "kind": "training", "on": "2026-11-20",
    "expires_on": "2027-11-20", "recorded_by": "demo-agency", "recorded_at": _T, "course": "数据安全培训",
}  # fmt: skip


class PersonRecordOut(Document):
    """One record about a person: an identity check (evidence kind, where it is filed, who checked; never the
    identity number), a terms-of-use acceptance, or a training with its expiry."""

    model_config = example(**_RECORD)

    id: int
    person: str
    role: str
    org: str | None
    kind: str = Field(description="identity_check, terms or training")
    on: str = Field(description="Checked, accepted or completed on (YYYY-MM-DD).")
    expires_on: str | None
    recorded_by: str
    recorded_at: str


class ExpiringRecordOut(PersonRecordOut):
    """A record in force that expires within the horizon asked (negative ``days_left``: lapsed, not renewed)."""

    model_config = example(**_RECORD, days_left=12)

    days_left: int


class StandingRefusalOut(Document):
    model_config = example(what="training", reason="the training '数据安全培训' of 'acme-ops' expired on 2026-11-30")

    what: str = Field(description="identity_check, terms or training")
    reason: str


class StandingOut(Document):
    """Whether a person may reach data today: identity checked, current terms accepted, training not expired."""

    model_config = example(
        person="acme-ops", today="2026-12-01", ok=True, refusals=[], identity_check=None, terms=None,
        current_terms="2026-12", training=_RECORD, role="operator", org="acme-ops", active=True,
    )  # fmt: skip

    person: str
    today: str
    ok: bool
    refusals: list[StandingRefusalOut]
    identity_check: dict[str, Any] | None
    terms: dict[str, Any] | None
    current_terms: str | None = Field(description="The version in force; only its acceptance counts.")
    training: dict[str, Any] | None
    role: str
    org: str | None
    active: bool


class TermsOut(Document):
    """A published version of the terms of use (its text only where asked for)."""

    model_config = example(
        version="2026-12", title="平台使用条款", text_sha256="0" * 64, published_by="demo-agency", published_at=_T,
        text="1. 仅在授权范围内使用公共数据。",
    )  # fmt: skip

    version: str
    title: str
    text_sha256: str
    published_by: str
    published_at: str
    text: str | None = None


__all__ = ["ExpiringRecordOut", "PersonRecordOut", "StandingOut", "StandingRefusalOut", "TermsOut"]
