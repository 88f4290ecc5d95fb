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

import dataclasses
import json
from dataclasses import dataclass
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

__all__ = ["JOB_COLUMNS", "ReadJobView", "read_job", "read_jobs"]

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
    """Job ``job_id`` as ``JobQueue.get`` shows it to the host; ``NotFoundError("no job N")`` as it raises.

    A stored value the ORM's column type could not give (FINDINGS21a F4, F5) does not fail the read: the
    view shows that field empty and names it in ``malformed`` (:class:`ReadJobView`).
    """
    found = rows(f"{_SELECT} WHERE id = :id", {"id": job_id})
    if not found:
        raise NotFoundError(f"no job {job_id}")
    return _view(found[0], held=_hold(rows, _operator(found[0])))


def read_jobs(rows: Rows, *, operator: str | None = None, state: str | None = None, limit: int = 100) -> list[JobView]:
    """Jobs newest first, as ``JobQueue.list`` gives them to the host (an unknown state is a ``UsageError``
    as it is there). One malformed row is shown with its bad fields named; it hides none of the others."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": max(1, min(limit, 10_000))}
    if operator:
        where.append("operator = :operator")
        params["operator"] = operator
    if state:
        where.append("state = :state")
        params["state"] = JobState.named(state).value
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    found = rows(f"{_SELECT}{clause} ORDER BY id DESC LIMIT :limit", params)
    held, frozen = set(suspended_operator_names(rows)), is_frozen(rows)  # 第三十一条, 第六十一条
    return [_view(row, held=hold_of(_operator(row), held, frozen)) for row in found]


@dataclass(frozen=True, slots=True)
class ReadJobView(JobView):
    """A :class:`JobView` read with plain SQL, which also names the stored columns it could not decode.

    ``malformed`` is empty for every row the platform wrote; only someone editing the database stores a
    value the ORM's types could not give back (text in a timestamp, a BLOB title, JSON that is not JSON or
    holds NaN, nesting past Python's recursion limit, text that is not UTF-8). Such a field is shown empty
    (null, ``[]`` or ``{}``), so the document stays the contract's shape and strict JSON.
    """

    malformed: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        document = JobView.as_json(self)
        if self.malformed:
            document["malformed"] = list(self.malformed)
        return document


def _hold(rows: Rows, operator: str) -> str:
    return hold_of(operator, suspended_operator_names(rows), is_frozen(rows))


def _view(row: Mapping[str, Any], *, held: str) -> JobView:
    values: dict[str, Any] = {}
    malformed: list[str] = []
    for name in JOB_COLUMNS:
        try:
            values[name] = _decoded(name, row[name])
        except (ValueError, TypeError, OverflowError, RecursionError):
            values[name] = _EMPTY.get(name)
            malformed.append(name)
    view = job_view(cast("JobRow", SimpleNamespace(**values)), held=held)
    if not malformed:
        return view  # the very JobView the queue gives (equal to it, the same document)
    fields = {f.name: getattr(view, f.name) for f in dataclasses.fields(JobView)}
    return ReadJobView(**fields, malformed=tuple(malformed))


#: What a malformed column is shown as: the empty value of its type (None for the others).
_EMPTY: dict[str, Any] = {"datasets": {}, "outputs": [], "findings": []}
_INTEGERS = frozenset({"id", "licence_id", "attempts", "max_attempts", "exit_code", "cancel_requested"})
#: Each JSON column's document type, and the type of its items for the lists.
_JSON_TYPES: dict[str, tuple[type, type | None]] = {
    "datasets": (dict, None),
    "resources": (dict, None),
    "outputs": (list, dict),
    "findings": (list, dict),
}


def _decoded(name: str, value: Any) -> Any:
    """``value`` as the ORM's column type gives it; ``ValueError``/``TypeError`` when it could not."""
    if value is None:
        return None
    if name in _JSON:
        return _document(name, value)
    if name in _TIMES:
        return utc(value)
    if name == "cancel_requested" and type(value) is bool:  # PostgreSQL's BOOLEAN
        return value
    if name in _INTEGERS:
        if type(value) is not int:
            raise TypeError(f"{name} is not an integer")
        return bool(value) if name == "cancel_requested" else value
    return _text(value)


def _operator(row: Mapping[str, Any]) -> str:
    """The operator a hold is looked up for ('' when the stored name is not text: no suspension names it)."""
    value = row["operator"]
    return value if isinstance(value, str) else ""


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def _refuse_constant(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _document(name: str, value: Any) -> Any:
    """A JSON column's document: standard JSON only (no NaN or infinity, no lone surrogate), of its type."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, dict | list):  # PostgreSQL's JSON columns arrive decoded
        document: Any = value
    elif isinstance(value, str):
        document = json.loads(value, parse_constant=_refuse_constant)
    else:
        raise TypeError(f"{name} is not JSON text")
    json.dumps(document, allow_nan=False, ensure_ascii=False).encode("utf-8")  # 1e999, "\\ud800" refused
    kind, item = _JSON_TYPES[name]
    if not isinstance(document, kind) or (
        item is not None and not all(isinstance(x, item) for x in cast("list[Any]", document))
    ):
        raise TypeError(f"{name} is not a JSON {kind.__name__}")
    return document


def utc(value: datetime | str) -> datetime:
    """A stored timestamp as ``core.UTCDateTime`` returns it: aware, in UTC (SQLite keeps naive UTC text)."""
    if not isinstance(value, datetime | str):
        raise TypeError("a timestamp is text or a datetime")
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
