"""The regulator's console pages (issue 9): the ledger as a searchable timeline, live verification,
inclusion proofs, the audit export, and usage records per dataset.

Regulators (监管部门) read everything and change nothing. The pages read through the same calls as
app/api/ledger.py and app/api/products.py. Verification is not taken on trust from a stored flag:
every ledger page recomputes the chain, the Merkle tree and the checkpoint signatures
(``Ledger.verify``), and an entry's inclusion proof is checked on the server with the ledger package's
own standalone verifier (``ledger.verify.check_inclusion_proof``), the same function
``python -m ledger.verify --proof`` runs. Usage records are kept at least three years and shown per
dataset (黑龙江省政务数据管理暂行办法 第二十八条; 双鸭山市公共数据管理暂行办法 第二十条).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.exc import OperationalError

from app.api.ledger import export_response
from app.api.unavailable import BUSY_RETRY_AFTER_SECONDS
from app.bounded_waits import bounded_lock_waits, install_bounded_waits
from app.console import regulator_trace_pages
from app.console.charts import stacked_bars
from app.console.context import Console, PathSeq, decimal
from app.console.glossary import label as action_label
from app.console.session import Session
from app.ledger_whole import instance_verified
from core import Actor, RegistryError
from ledger import Entry, LedgerBusyError, LedgerError, LedgerUnavailableError, gave_up_waiting
from ledger.verify import check_inclusion_proof
from operators import Role

PAGE_SIZES = (25, 50, 100, 200)
#: The chart reads at most this many (newest) matching entries: a picture, not an audit.
CHART_SCAN = 50_000
CHART_DAYS = 30
CHART_FAMILIES = 6
_WINDOW_MAX = 10_000


def newest_first(
    ledger: Any, filters: dict[str, str | None], *, before: int | None, after: int, limit: int
) -> list[Entry]:
    """Up to ``limit`` entries matching ``filters`` with ``after < seq < before``, newest first.

    ``Ledger.entries`` pages oldest first (``after``); walking back in growing seq windows keeps
    each query bounded (a window never spans more entries than the query's limit) and finds the
    newest matches of a sparse filter without reading the whole ledger when they are recent.
    """
    high = (ledger.size() + 1) if before is None else before
    found: list[Entry] = []
    window = max(4 * limit, 256)
    while high - 1 > after and len(found) < limit:
        low = max(after, high - 1 - window)
        chunk = [e for e in ledger.entries(**filters, after=low, limit=_WINDOW_MAX) if e.seq < high]
        found.extend(reversed(chunk))
        high = low + 1
        window = min(window * 2, _WINDOW_MAX)
    return found[:limit]


def per_day_by_family(ledger: Any, filters: dict[str, str | None]) -> tuple[list[str], dict[str, list[int]]]:
    """Entries per day by action family (``job.*``, ``release.*``…) for the last days that have any."""
    counts: Counter[tuple[str, str]] = Counter()
    for entry in newest_first(ledger, filters, before=None, after=0, limit=CHART_SCAN):
        counts[(entry.time[:10], entry.action.split(".", 1)[0])] += 1
    days = sorted({day for day, _ in counts})[-CHART_DAYS:]
    totals: Counter[str] = Counter()
    for (day, family), n in counts.items():
        if day in days:
            totals[family] += n
    top = [family for family, _ in totals.most_common(CHART_FAMILIES)]
    series: dict[str, list[int]] = {f"{family}.*": [counts[(day, family)] for day in days] for family in top}
    rest = [f for f in totals if f not in top]
    if rest:
        series["其他 other"] = [sum(counts[(day, f)] for f in rest) for day in days]
    return days, series


def _int(value: str | None, default: int | None, *, low: int = 0) -> int | None:
    """A query number (ASCII digits, within a ledger position's BIGINT), else ``default`` (red team 18)."""
    number = decimal(value, low=low, high=2**63 - 1)
    return default if number is None else number


def subject_trace(subject: str) -> str | None:
    """The trace page an entry's subject leads to (``job:N``, ``product:NAME``), or ``None``."""
    kind, _, name = subject.partition(":")
    if kind == "job" and name.isascii() and name.isdigit() and len(name) <= 12:
        return f"/regulator/trace/jobs/{name}"
    if kind == "product" and name and "/" not in name:
        return f"/regulator/trace/products/{quote(name, safe='')}"
    return None


def _regulator(console: Console, request: Request) -> tuple[Session, Actor]:
    """The logged-in regulator; anyone else is refused by the session check."""
    session = console.session(request, Role.REGULATOR)
    return session, session.actor


def _known_actions(ledger: Any) -> set[str]:
    return {e.action for e in newest_first(ledger, {}, before=None, after=0, limit=2_000)}


def register(router: APIRouter, console: Console) -> None:
    """The regulator's pages on the console router, in the order they match."""
    _ledger(router, console)
    _entries(router, console)
    _usage(router, console)
    regulator_trace_pages.register(router, console)  # trace, proof and note downloads, range export (issue 18)


def _ledger(router: APIRouter, console: Console) -> None:
    """The ledger as a regulator reads it: verified on every visit, filtered, charted, paged."""
    instance = console.instance
    install_bounded_waits(instance.engine)

    @router.get("/regulator", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        # Every read of the page waits on another session's lock no longer than the verification: the session's
        # principal, the freeze banner, the workers' state, and the page's own reads after the verification (red
        # team 23b F3); a wait past it, or a database failing the verifier's own connections, is the busy page.
        wait_ms = instance.settings.ledger_verify_lock_timeout_ms
        with bounded_lock_waits(wait_ms):
            try:
                return _home(console, request, wait_ms)
            except (LedgerBusyError, LedgerUnavailableError, OperationalError) as exc:
                if isinstance(exc, OperationalError) and not gave_up_waiting(exc):
                    raise
                reason = str(exc).strip().splitlines()[0] if isinstance(exc, OperationalError) else str(exc)
                page = console.render(request, None, "console/regulator/busy.html", status_code=503, reason=reason)
                page.headers["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
                return page


def _home(console: Console, request: Request, wait_ms: int) -> HTMLResponse:
    """The page itself (:func:`_ledger` bounds its waits)."""
    instance = console.instance
    session, _ = _regulator(console, request)
    # The layout's banners read these and say nothing when the read fails (context.py); read here first, a wait
    # behind a lock on them is the busy page, not a page without its freeze banner (red team 23b F3).
    instance.registry.freeze.state()
    instance.roster.live_count()
    q = request.query_params
    filters: dict[str, str | None] = {
        key: (q.get(key) or "").strip() or None for key in ("action", "subject", "actor", "since")
    }
    limit = _int(q.get("limit"), 50, low=1) or 50
    limit = limit if limit in PAGE_SIZES else 50
    after = _int(q.get("after"), 0) or 0
    before = _int(q.get("before"), None, low=1)
    ledger = instance.ledger
    report = instance_verified(ledger.verify(lock_timeout_ms=wait_ms))
    latest = ledger.latest_checkpoint()
    entries = newest_first(ledger, filters, before=before, after=after, limit=limit)
    days, series = per_day_by_family(ledger, filters)
    chart = stacked_bars("每日账本条目(按动作类别)· entries per day by action family", days, series)
    keep = {k: v for k, v in {**filters, "limit": str(limit), "after": str(after) if after else None}.items() if v}
    return console.render(
        request,
        session,
        "console/regulator/index.html",
        report=report,
        latest=latest,
        size=report.entries,
        entries=entries,
        filters=filters,
        limit=limit,
        after=after,
        page_sizes=PAGE_SIZES,
        older=entries[-1].seq if len(entries) == limit and entries[-1].seq - 1 > after else None,
        keep=keep,
        chart=chart,
        actions=sorted({a for a in _known_actions(ledger)}),
        action_label=action_label,
    )


def _entries(router: APIRouter, console: Console) -> None:
    """One entry with its hash, its link and its inclusion proof; the whole ledger as an export."""
    instance = console.instance

    @router.get("/regulator/entries/{seq}", response_class=HTMLResponse)
    def entry(request: Request, seq: PathSeq) -> Response:
        session, _ = _regulator(console, request)
        ledger = instance.ledger
        try:
            found = ledger.get(seq)
        except LedgerError as exc:
            return console.flash(session, "/regulator", "entry_not_found", reason=exc)
        linked = True
        if seq > 1:
            try:
                linked = ledger.get(seq - 1).hash == found.prev_hash
            except LedgerError:
                linked = False
        proof = proof_error = None
        verified = False
        try:
            # Like `keyong ledger prove`: when the entry is newer than the latest signed checkpoint, the
            # ledger signs its current head first (it commits to history, it changes none of it).
            proof = ledger.prove(seq, checkpoint_if_needed=True)
            verified = check_inclusion_proof(proof.as_json(), ledger.public_key)
        except LedgerError as exc:
            proof_error = str(exc)
        return console.render(
            request,
            session,
            "console/regulator/entry.html",
            entry=found,
            payload=json.dumps(found.payload, ensure_ascii=False, indent=2, sort_keys=True),
            hash_ok=found.computed_hash() == found.hash,
            linked=linked,
            proof=proof,
            proof_error=proof_error,
            verified=verified,
            public_key=ledger.public_key_hex,
            action_label=action_label,
            trace=subject_trace(found.subject),
        )

    @router.get("/regulator/export")
    def export(request: Request) -> StreamingResponse:
        _regulator(console, request)
        return export_response(instance.ledger)


def _usage(router: APIRouter, console: Console) -> None:
    """Usage records (使用记录) of one dataset."""
    instance = console.instance

    @router.get("/regulator/usage", response_class=HTMLResponse)
    def usage(request: Request, dataset: str = "") -> HTMLResponse:
        session, actor = _regulator(console, request)
        names = [r.name for r in instance.registry.catalog.list()]
        chosen = dataset if dataset in names else (names[0] if names else "")
        summary: dict[str, Any] | None = None
        records: list[dict[str, Any]] = []
        error = None
        if chosen:
            try:
                summary = instance.registry.usage.summary(chosen, viewer=actor)
                records = instance.registry.usage.for_dataset(chosen, viewer=actor)
            except RegistryError as exc:
                error = str(exc)
        return console.render(
            request,
            session,
            "console/regulator/usage.html",
            names=names,
            chosen=chosen,
            summary=summary,
            records=records[::-1],
            error=error,
            # Issue 23: what each licence serving the dataset can link it with (console/licence_linkage.html).
            licences=[
                view
                for view in instance.registry.licences.list(viewer=actor)
                if chosen in {d.name for d in view.datasets}
            ],
        )
