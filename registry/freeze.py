"""The one rule "is the platform frozen", and freezing and unfreezing it (SATRE 2.6.04, incidents).

When a security incident strikes, the platform stops at once what could make it worse
(双鸭山 第六十一条: 迅速启动应急预案，及时采取技术措施和其他必要措施防止危害扩大): job intake (submissions
are refused), job starts (workers leave queued jobs queued), egress (release requests and review
decisions are refused) and product delivery. Whoever asks (operators' submission, the sandbox's queue
and releases, the registry's products) calls :func:`require_not_frozen` or :func:`frozen_state` in its
own transaction; none decides the question again.

Freezing and unfreezing are ledgered with the actor and the reason (第二十条). A reason is the actor's
free text, so it is bounded; the ledger's screen refuses one that carries personal data, and the
change is then refused with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, Recorder, RegistryError, require_role, text_sha256
from ledger import EntryError
from registry.config import RegistryConfig
from registry.security_models import FreezeRow

__all__ = [
    "FREEZE_REASON_CHARS",
    "FREEZE_ROLES",
    "UNFREEZE_ROLES",
    "Freeze",
    "FreezeView",
    "PlatformFrozenError",
    "frozen_state",
    "require_not_frozen",
]

#: Who may stop the platform: the agency that runs it, and the regulator (stopping changes no data).
FREEZE_ROLES = ("agency", "regulator")
#: Who may restart it: the agency that runs it (the supervisor stops, it does not operate).
UNFREEZE_ROLES = ("agency",)
FREEZE_REASON_CHARS = 2000
_ROW_ID = 1


class PlatformFrozenError(RegistryError):
    """The platform is frozen (an incident): the request is refused until it is unfrozen."""


@dataclass(frozen=True, slots=True)
class FreezeView:
    """The freeze as everyone may read it: frozen or not, since when, why and by whom."""

    frozen: bool
    since: datetime | None
    reason: str
    changed_by: str
    changed_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "frozen": self.frozen,
            "since": self.since.isoformat() if self.since else None,
            "reason": self.reason,
            "changed_by": self.changed_by,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
        }


_THAWED = FreezeView(False, None, "", "", None)


def _view(row: FreezeRow | None) -> FreezeView:
    if row is None:
        return _THAWED
    return FreezeView(bool(row.frozen), row.since, row.reason, row.changed_by, row.changed_at)


def frozen_state(session: Session, *, lock: bool = False) -> FreezeView:
    """The freeze as the caller's transaction sees it.

    ``lock``: read it under a share lock held to the end of the caller's transaction (PostgreSQL; SQLite's
    writers are serialized anyway), so no freeze commits between this look and what the caller then
    does: a freeze waits for the caller, or the caller waits for the freeze and sees it. Without the
    lock a worker's claim that looked just before a freeze started its job after the freeze committed
    (``job.started`` after ``platform.frozen`` in the ledger; the red team's race, issue 22).
    """
    if not lock:
        return _view(session.get(FreezeRow, _ROW_ID))
    query = select(FreezeRow).where(FreezeRow.id == _ROW_ID).with_for_update(read=True)
    return _view(session.scalar(query.execution_options(populate_existing=True)))


def require_not_frozen(session: Session, doing: str) -> None:
    """Refuse ``doing`` while the platform is frozen (the rule every intake, egress and delivery asks);
    the freeze stays as read until the caller's transaction ends (:func:`frozen_state` ``lock``)."""
    state = frozen_state(session, lock=True)
    if state.frozen:
        since = state.since.isoformat(timespec="seconds") if state.since else "an unknown time"
        raise PlatformFrozenError(
            f"the platform is frozen since {since} (an incident, 双鸭山 第六十一条): {doing} is refused "
            "until it is unfrozen (`keyong unfreeze --reason …`)"
        )


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise RegistryError("give a reason: it is recorded in the ledger")
    if len(text) > FREEZE_REASON_CHARS or not text.isprintable():
        raise RegistryError(f"a reason is at most {FREEZE_REASON_CHARS} printable characters (one line)")
    return text


class Freeze:
    """Freeze and unfreeze the platform; each change is one ledgered transaction."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def state(self) -> FreezeView:
        with self.recorder.read() as session:
            return frozen_state(session)

    def freeze(self, *, reason: str, by: Actor) -> FreezeView:
        """Stop job intake, job starts, egress and delivery at once."""
        require_role(by, *FREEZE_ROLES)
        return self._set(True, _reason(reason), by)

    def unfreeze(self, *, reason: str, by: Actor) -> FreezeView:
        """Restore what :meth:`freeze` stopped; queued jobs start again."""
        require_role(by, *UNFREEZE_ROLES)
        return self._set(False, _reason(reason), by)

    def _set(self, frozen: bool, reason: str, by: Actor) -> FreezeView:
        action = "platform.frozen" if frozen else "platform.unfrozen"
        try:
            with self.recorder.change(by) as change:
                session = change.session
                row = session.get(FreezeRow, _ROW_ID, with_for_update=True)
                if row is None:
                    row = FreezeRow(id=_ROW_ID, frozen=False, reason="", changed_by="")
                    session.add(row)
                if bool(row.frozen) == frozen:
                    raise RegistryError(f"the platform is already {'frozen' if frozen else 'not frozen'}")
                now = self.config.now()
                previous_since = row.since
                row.frozen = frozen
                row.since = now if frozen else None
                row.reason = reason
                row.changed_by = by.name
                row.changed_at = now
                payload: dict[str, Any] = {"reason": reason, "reason_sha256": text_sha256(reason)}
                if not frozen and previous_since is not None:
                    payload["frozen_since"] = previous_since.isoformat()
                change.log(action, "platform", payload)
                session.flush()
                return _view(row)
        except EntryError as exc:  # the ledger's screen refused the reason (personal data): nothing changed
            raise RegistryError(f"the reason was refused: {exc}") from None
