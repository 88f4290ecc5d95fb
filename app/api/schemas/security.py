"""Response documents of security events, alerts, the platform freeze and incidents (``app.api.security``,
``app.api.incidents``; SATRE 2.5.03 and 2.6.04, 双鸭山 第六十一条).

Keys are exactly those ``registry.security_events.event_json``/``alert_json``, ``registry.FreezeView.as_json``
and ``registry.incidents.incident_json`` write; times are ISO 8601 text, as there.
"""

from pydantic import Field

from app.api.schemas.base import Document, example

_T = "2026-12-01T09:00:00+00:00"
_T2 = "2026-12-01T09:04:10+00:00"


class SecurityEventOut(Document):
    """Refused requests of one kind, from one source, for one principal, counted in one window.

    ``principal`` is the authenticated name or the name a credential claimed, ``-`` when none was, ``*``
    for a row that folds a flood; never a key, token or password (黑龙江 第三十八条)."""

    model_config = example(
        id=7, kind="login_failed", source="10.0.0.8", principal="acme-ops", route="POST /auth/token",
        detail="unknown or revoked API key", count=3, window_start=_T, first_at=_T, last_at=_T2,
        acknowledged_by=None, acknowledged_at=None, note="",
    )  # fmt: skip

    id: int
    kind: str = Field(description="login_failed, token_rejected, forbidden, scope_refused or standing_refused")
    source: str = Field(description="The client address as the server saw it, or * for a folded flood.")
    principal: str
    route: str = Field(description="The route template of the latest one, e.g. GET /jobs/{job_id}.")
    detail: str = Field(description="Why it was refused, in the platform's words.")
    count: int = Field(description="How many such refusals the row counts.")
    window_start: str
    first_at: str
    last_at: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    note: str = Field(description="The regulator's acknowledgement note (empty until acknowledged).")


class SecurityAlertOut(Document):
    """An alert a threshold raised: ``count`` events of ``rule`` for one principal or source (``key``)."""

    model_config = example(
        id=2, rule="failed_logins_principal", key_kind="principal", key="acme-ops", count=5, threshold=5,
        window_minutes=15, state="acknowledged", raised_at=_T, last_at=_T2, acknowledged_by="demo-regulator",
        acknowledged_at=_T2, note="密钥已轮换 key rotated",
    )  # fmt: skip

    id: int
    rule: str = Field(description="The threshold rule, e.g. failed_logins_principal, or alert_flood.")
    key_kind: str = Field(description="principal, source or platform")
    key: str
    count: int
    threshold: int
    window_minutes: int
    state: str = Field(description="open or acknowledged")
    raised_at: str
    last_at: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    note: str


class FreezeOut(Document):
    """Whether the platform is frozen (job intake, job starts, egress and delivery stopped), since when, why
    and by whom; ``since`` is null while it is not frozen."""

    model_config = example(
        frozen=True, since=_T, reason="数据泄露 suspected leak", changed_by="demo-agency", changed_at=_T
    )

    frozen: bool
    since: str | None
    reason: str = Field(description="Why it was last frozen or unfrozen (empty if it never was).")
    changed_by: str
    changed_at: str | None


class IncidentOut(Document):
    """An incident of the register: what happened, how grave, the ledger entries it concerns, its closure."""

    model_config = example(
        id=1, title="API key of an operator leaked", severity="high", description="密钥出现在公开仓库",
        ledger_entries=[41, 42], state="closed", recorded_by="demo-agency", recorded_at=_T,
        closed_by="demo-regulator", closed_at=_T2, close_note="key revoked, operator notified",
    )  # fmt: skip

    id: int
    title: str
    severity: str = Field(description="low, medium, high or critical (事件分级)")
    description: str
    ledger_entries: list[int] = Field(description="Sequence numbers of the ledger entries it concerns.")
    state: str = Field(description="open or closed")
    recorded_by: str
    recorded_at: str
    closed_by: str | None
    closed_at: str | None
    close_note: str


__all__ = ["FreezeOut", "IncidentOut", "SecurityAlertOut", "SecurityEventOut"]
