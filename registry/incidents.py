"""The incident register (SATRE 2.6.04): what happened, how grave, which ledger entries it concerns,
and how it was closed.

双鸭山市公共数据管理暂行办法 第六十一条 asks for 应急处置 with 事件分级 (incidents graded by severity) and a
record of the response; 第二十条 for the logs kept. An incident is recorded and closed by the agency
that runs the platform or the regulator that supervises it; both read the register. Linked ledger
entries must exist (a link to nothing proves nothing). The ledger holds each step with the hashes of
the free texts (title, description, note), which may quote what leaked; the register keeps the texts.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core import Actor, NotFoundError, Recorder, RegistryError, require_role, text_sha256
from registry.config import RegistryConfig
from registry.security_models import IncidentRow, still_open

__all__ = ["INCIDENT_ROLES", "SEVERITIES", "Incidents", "incident_json"]

INCIDENT_ROLES = ("agency", "regulator")
SEVERITIES = ("low", "medium", "high", "critical")
MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 8000
MAX_LINKS = 100


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def incident_json(row: IncidentRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "severity": row.severity,
        "description": row.description,
        "ledger_entries": list(row.ledger_entries or []),
        "state": row.state,
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
        "closed_by": row.closed_by,
        "closed_at": _dt(row.closed_at),
        "close_note": row.close_note,
    }


def _text(value: str, what: str, limit: int, *, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise RegistryError(f"an incident needs a {what}")
    if len(text) > limit:
        raise RegistryError(f"the {what} is at most {limit} characters")
    return text


class Incidents:
    """Record, close, read incidents; every change is one ledgered transaction."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def _links(self, entries: Iterable[int]) -> builtins.list[int]:
        links = sorted({int(seq) for seq in entries})
        if len(links) > MAX_LINKS:
            raise RegistryError(f"an incident links at most {MAX_LINKS} ledger entries")
        size = self.recorder.ledger.size()
        missing = [seq for seq in links if seq < 1 or seq > size]
        if missing:
            raise RegistryError(
                f"no ledger entry {', '.join(map(str, missing[:5]))}: the ledger holds entries 1 to {size}"
            )
        return links

    def record(
        self, *, title: str, severity: str, description: str = "", ledger_entries: Iterable[int] = (), by: Actor
    ) -> dict[str, Any]:
        """Open an incident."""
        require_role(by, *INCIDENT_ROLES)
        title = _text(title, "title", MAX_TITLE_CHARS)
        if not title.isprintable():
            raise RegistryError("the title is one line of printable characters")
        description = _text(description, "description", MAX_TEXT_CHARS, required=False)
        severity = (severity or "").strip().lower()
        if severity not in SEVERITIES:
            raise RegistryError(f"unknown severity {severity!r}: one of {', '.join(SEVERITIES)}")
        links = self._links(ledger_entries)
        with self.recorder.change(by) as change:
            row = IncidentRow(
                title=title,
                severity=severity,
                description=description,
                ledger_entries=links,
                state="open",
                recorded_by=by.name,
                recorded_at=self.config.now(),
                close_note="",
            )
            change.session.add(row)
            change.session.flush()
            change.log(
                "incident.recorded",
                f"incident:{row.id}",
                {
                    "severity": severity,
                    "ledger_entries": links,
                    "title_sha256": text_sha256(title),
                    "description_sha256": text_sha256(description),
                },
            )
            return incident_json(row)

    def close(self, incident_id: int, *, note: str, by: Actor) -> dict[str, Any]:
        """Close an open incident with a note saying how it was resolved."""
        require_role(by, *INCIDENT_ROLES)
        note = _text(note, "closing note", MAX_TEXT_CHARS)
        with self.recorder.change(by) as change:
            row = still_open(
                change.session,
                IncidentRow,
                incident_id,
                label="incident",
                is_open=lambda r: r.state == "open",
                closer="closed",
            )
            row.state = "closed"
            row.closed_by = by.name
            row.closed_at = self.config.now()
            row.close_note = note
            change.log("incident.closed", f"incident:{row.id}", {"note_sha256": text_sha256(note)})
            change.session.flush()
            return incident_json(row)

    def get(self, incident_id: int, *, viewer: Actor) -> dict[str, Any]:
        require_role(viewer, *INCIDENT_ROLES)
        with self.recorder.read() as session:
            row = session.get(IncidentRow, incident_id)
            if row is None:
                raise NotFoundError(f"no incident {incident_id}")
            return incident_json(row)

    def list(self, *, viewer: Actor, state: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every incident, newest first; ``state`` open or closed."""
        require_role(viewer, *INCIDENT_ROLES)
        query = select(IncidentRow).order_by(IncidentRow.id.desc())
        if state:
            if state not in ("open", "closed"):
                raise RegistryError(f"unknown incident state {state!r}: open or closed")
            query = query.where(IncidentRow.state == state)
        with self.recorder.read() as session:
            return [incident_json(r) for r in session.scalars(query)]
