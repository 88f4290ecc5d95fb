"""``keyong job show`` and ``keyong job list`` without the ORM: the ``jobs`` table read with plain SQL.

Why a second way to read the table: a command that only reads should start in a blink (issue 21), and
the ORM's way costs the ORM, the core ``Base`` with every domain's models and a full ``Registry`` (over a
second on a small machine). These functions read the columns a :class:`~sandbox.job_views.JobView`
shows, decode them as the ORM's column types do (JSON documents, timestamps as aware UTC, booleans), and
build the view with the same :func:`~sandbox.job_views.job_view`, so the document is the one
``JobQueue.get`` and ``JobQueue.list`` give the host administrator (DESIGN.md, ``keyong job show``).
``tests/test_cli_start.py`` holds the two to the same output, jobs held and frozen included.

Only the host's view is read here (the local CLI is the host administrator's tool): an operator's view
(:meth:`JobView.for_operator`) is the API's and the console's, which keep the ORM path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from core import NotFoundError
from registry import Rows, is_frozen, suspended_operator_names
from sandbox.job_states import JobState
from sandbox.job_views import JobView, hold_of, job_view

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sandbox.models import JobRow

__all__ = ["JOB_COLUMNS", "read_job", "read_jobs"]

#: The ``jobs`` table (``sandbox.models.JobRow``) and the columns a view shows (never ``code``).
JOBS_TABLE = "jobs"
JOB_COLUMNS = (
    "id",
    "operator",
    "licence_id",
    "kind",
    "datasets",
    "scenario",
    "code_sha256",
    "spec_sha256",
    "state",
    "verdict",
    "attempts",
    "max_attempts",
    "worker",
    "claimed_at",
    "heartbeat_at",
    "started_at",
    "finished_at",
    "exit_code",
    "reason",
    "resources",
    "outputs",
    "findings",
    "log_excerpt",
    "created_at",
    "cancel_requested",
    "title",
    "purpose",
)
_JSON = frozenset({"datasets", "resources", "outputs", "findings"})
_TIMES = frozenset({"claimed_at", "heartbeat_at", "started_at", "finished_at", "created_at"})
_SELECT = f"SELECT {', '.join(JOB_COLUMNS)} FROM {JOBS_TABLE}"


def read_job(rows: Rows, job_id: int) -> JobView:
    """Job ``job_id`` as ``JobQueue.get`` shows it to the host; ``NotFoundError("no job N")`` as it raises."""
    found = rows(f"{_SELECT} WHERE id = :id", {"id": job_id})
    if not found:
        raise NotFoundError(f"no job {job_id}")
    return job_view(_record(found[0]), held=_hold(rows, str(found[0]["operator"])))


def read_jobs(rows: Rows, *, operator: str | None = None, state: str | None = None, limit: int = 100) -> list[JobView]:
    """Jobs newest first, as ``JobQueue.list`` gives them to the host (an unknown state raises ``ValueError``
    as it does)."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": max(1, min(limit, 10_000))}
    if operator:
        where.append("operator = :operator")
        params["operator"] = operator
    if state:
        where.append("state = :state")
        params["state"] = JobState(state).value
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    found = rows(f"{_SELECT}{clause} ORDER BY id DESC LIMIT :limit", params)
    held, frozen = set(suspended_operator_names(rows)), is_frozen(rows)  # 第三十一条, 第六十一条
    return [job_view(_record(row), held=hold_of(str(row["operator"]), held, frozen)) for row in found]


def _hold(rows: Rows, operator: str) -> str:
    return hold_of(operator, suspended_operator_names(rows), is_frozen(rows))


def _record(row: Mapping[str, Any]) -> JobRow:
    """The row with the values the ORM's column types would give (``job_view`` reads attributes only)."""
    values = {name: _decoded(name, row[name]) for name in JOB_COLUMNS}
    return cast("JobRow", SimpleNamespace(**values))


def _decoded(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _JSON:
        return json.loads(value) if isinstance(value, str | bytes) else value
    if name in _TIMES:
        return utc(value)
    if name == "cancel_requested":
        return bool(value)
    return value


def utc(value: datetime | str) -> datetime:
    """A stored timestamp as ``core.UTCDateTime`` returns it: aware, in UTC (SQLite keeps naive UTC text)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
